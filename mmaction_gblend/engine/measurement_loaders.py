"""The data loaders G-Blend measures on and its shadow copies train on.

Built from the run's own ``train_dataloader`` config, so every setting a
user gave it (workers, collate function, persistent workers) carries over.
"""
import copy
from typing import List, Optional, Sequence, Union

from mmengine.runner import Runner

from ..datasets.dataset_wrappers import dataset_pipeline
from ..datasets.heldout_split_configs import measurement_config

HOOK_NAME = 'GradientBlendingHook'


def measure_pipeline(runner: Runner, option: Union[str, Sequence[dict]]
                     ) -> Optional[List[dict]]:
    """The pipeline measurement loaders run (``None``: the training one).

    Args:
        runner: The run (its ``val_dataloader`` for ``'val'``).
        option: ``'val'``, ``'train'`` or a list of transforms.
    """
    if option == 'train':
        return None
    if option != 'val':
        return list(option)
    if not runner.cfg.get('val_dataloader'):
        raise ValueError(
            f"{HOOK_NAME}.measure_pipeline='val' needs a val_dataloader; set "
            "measure_pipeline='train' or give a list of transforms")
    return dataset_pipeline(runner.cfg.val_dataloader['dataset'])


class LoaderFactory:
    """Builds loaders over parts of a held-out split with the training
    loader's settings.

    Args:
        runner: The run.
        pipeline: The hook's ``measure_pipeline`` option.
        probe_size: Samples of T' (``None``: as many as held out).
        batch_size: Batch size of measurement loaders (``None``: the
            training batch size).
    """

    def __init__(self, runner: Runner, pipeline: Union[str, Sequence[dict]],
                 probe_size: Optional[int], batch_size: Optional[int]) -> None:
        self.runner = runner
        self.pipeline = measure_pipeline(runner, pipeline)
        self.probe_size = probe_size
        self.batch_size = batch_size

    def measurement(self, split: dict, part: str):
        """V (``'heldout'``) or T' (``'probe'``) of ``split``, in a fixed
        order, with the measurement pipeline."""
        cfg = copy.deepcopy(self.runner.cfg.train_dataloader)
        cfg['dataset'] = measurement_config(split, part, self.pipeline,
                                            self.probe_size)
        cfg['sampler'] = dict(type='DefaultSampler', shuffle=False,
                              round_up=False)
        cfg.pop('batch_sampler', None)
        # persistent_workers as the training loader's (as mmaction2's val
        # loaders): with them the workers start once, not at every pass,
        # which on a small held-out set is most of a pass's time
        # (benchmarks/README.md, cost model)
        if self.batch_size:
            cfg['batch_size'] = self.batch_size
        return Runner.build_dataloader(cfg, seed=self.runner.seed)

    def training(self, dataset: dict):
        """A training loader (sampler, pipeline and all) over ``dataset``."""
        cfg = copy.deepcopy(self.runner.cfg.train_dataloader)
        cfg['dataset'] = dataset
        return Runner.build_dataloader(cfg, seed=self.runner.seed)
