"""The main job of `make demo`: naive fusion against G-Blend's final model.

Checks that the demo data loads (one batch per split through the
audio-visual pipeline and the data preprocessor), then trains naive late
fusion and the G-Blend variant the comparison recommends (offline G-Blend:
shadow copies trained without the held-out clips estimate the weights
before training, and the main run trains on all 800 training clips, as
naive fusion does; best of G-Blend's final models on the demo's seeds 0-1,
docs/comparison/core/), tests both on the test split, and
prints the prediction's and every head's accuracy side by side with
G-Blend's final weights and the prediction's mixing weights; the weights
over the training are plotted to a PNG.

The terminal shows progress (which run, which epoch, the time left) and the
table; each run's full log (the config, mmengine's log lines, warnings) goes
to ``console.log`` in its work dir, beside mmengine's own log folder.

    python tools/demo.py [--data-root data/demo_av] [--work-dir work_dirs/demo]
        [--max-epochs N --warmup-epochs W --super-epochs S]  # quick runs
"""
import argparse
import contextlib
import logging
import os
import os.path as osp
import sys
import time
import warnings
from typing import Dict, Optional, TextIO

warnings.filterwarnings('ignore', 'Fail to import ``MultiScaleDeformable')
import mmaction_gblend  # noqa: F401,E402  (platform fixes, registration)
from mmaction.registry import MODELS  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmaction_gblend.engine.hooks import GradientBlendingHook  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAIVE = 'configs/demo/naive-fusion_r3d18-rgb_r18-audio_demo-av.py'
GBLEND = 'configs/demo/gblend-offline-shadow_r3d18-rgb_r18-audio_demo-av.py'
#: The prediction, then every head alone.
HEADS = ('top1', 'rgb_top1', 'audio_top1', 'fused_top1')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default='data/demo_av')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--max-epochs', type=int, help='shorter schedule')
    parser.add_argument('--warmup-epochs', type=int)
    parser.add_argument('--super-epochs', type=int)
    return parser.parse_args(argv)


class _QuietDeprecations(logging.Filter):
    """Drop mmengine's FileClient deprecation notes (from mmaction2's
    DecordInit, once per worker); they say nothing about the demo."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return 'FileClient' not in message and \
            'HardDiskBackend' not in message


def load_config(path: str, args: argparse.Namespace, name: str) -> Config:
    """A demo config pointed at ``--data-root`` and ``--work-dir``."""
    cfg = Config.fromfile(osp.join(REPO, path))
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.num_workers = args.num_workers
        loader.persistent_workers = args.num_workers > 0
        dataset = loader.dataset
        if dataset.type == 'HeldOutSplitDataset':
            dataset = dataset.dataset
        dataset.ann_file = osp.join(args.data_root, f'{split}_list.txt')
        dataset.data_prefix = dict(video=args.data_root)
    if args.max_epochs:
        cfg.train_cfg.max_epochs = args.max_epochs
        cfg.param_scheduler[-1].update(T_max=args.max_epochs,
                                       end=args.max_epochs)
    for hook in cfg.get('custom_hooks', []):
        if hook.type == 'GradientBlendingHook':
            if args.warmup_epochs:
                hook.warmup_epochs = args.warmup_epochs
            if args.super_epochs:
                hook.super_epochs = args.super_epochs
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.experiment_name = name
    cfg.default_hooks.logger.interval = 50
    return cfg


def check_data(cfg: Config) -> None:
    """One batch of each split through pipeline and preprocessor."""
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    for split in ('train', 'val', 'test'):
        loader_cfg = cfg[f'{split}_dataloader'].copy()
        loader_cfg.update(num_workers=0, persistent_workers=False)
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        data = preprocessor(next(iter(loader)), training=split == 'train')
        shapes = ', '.join(f'{k} {tuple(v.shape)}'
                           for k, v in data['inputs'].items())
        print(f'  {split:>5}: {len(loader.dataset)} clips; a batch: {shapes}')


class DemoProgress(Hook):
    """One line per epoch on the terminal: the run, the epoch, the training
    loss, the validation accuracy and the time left (the epochs so far,
    validation included, extrapolated); the estimate before training is
    announced, as it takes about as long as a training of its own."""

    priority = 'VERY_HIGH'  # announce the estimate before the hook runs it

    def __init__(self, name: str, out: TextIO) -> None:
        self.name = name
        self.out = out
        self.line: Optional[str] = None  # the finished epoch's, until val

    def _say(self, line: str) -> None:
        print(f'  [{self.name}] {line}', file=self.out, flush=True)

    def _epoch_done(self, runner, val: str = '') -> None:
        if self.line is None:
            return
        now = time.perf_counter()
        done = runner.epoch  # the loop has counted the epoch by now
        left = (now - self.training) / done * (runner.max_epochs - done)
        self._say(f'{self.line}{val}  {clock(now - self.start)} so far, '
                  f'about {clock(left)} left')
        self.line = None

    def before_train(self, runner) -> None:
        self.start = self.training = time.perf_counter()

    def before_train_epoch(self, runner) -> None:
        self._epoch_done(runner)  # an epoch without validation
        self.estimating = runner.epoch == 0 and any(
            isinstance(h, GradientBlendingHook) and h.mode == 'offline'
            for h in runner.hooks)
        if self.estimating:
            self._say('estimating the blend weights before training (shadow '
                      'copies trained without the held-out clips) ...')

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.estimating:  # the hook estimated in its before_train_epoch
            self.training = time.perf_counter()
            weights = named_weights(runner.model.get_blend_weights())
            self._say(f'weights {weights}, estimated in '
                      f'{clock(self.training - self.start)}; training ...')
            self.estimating = False

    def after_train_epoch(self, runner) -> None:
        loss = runner.message_hub.get_scalar('train/loss').current()
        # the loop counts the epoch after these hooks
        self.line = (f'epoch {runner.epoch + 1:>2}/{runner.max_epochs}  '
                     f'loss {loss:.3f}')

    def after_val_epoch(self, runner, metrics=None) -> None:
        top1 = (metrics or {}).get('acc/top1')
        self._epoch_done(runner, '' if top1 is None else
                         f'  val top-1 {100 * top1:.1f}')

    def after_train(self, runner) -> None:
        self._epoch_done(runner)
        self._say('testing the final model ...')


def clock(seconds: float) -> str:
    """``12:05``: minutes and seconds."""
    return f'{int(seconds // 60)}:{int(seconds % 60):02d}'


def console_log(cfg: Config) -> str:
    """Where a run's full output goes: ``console.log`` in its work dir."""
    return osp.join(cfg.work_dir, 'console.log')


def train_and_test(cfg: Config, tag: str) -> Dict[str, float]:
    """Train, then test the final model; return the test metrics. The
    terminal gets :class:`DemoProgress`'s lines, ``console.log`` in the work
    dir everything else the run prints."""
    out = sys.stdout
    os.makedirs(cfg.work_dir, exist_ok=True)
    log = console_log(cfg)
    start = time.perf_counter()
    with open(log, 'w') as f, contextlib.redirect_stdout(f), \
            contextlib.redirect_stderr(f):
        try:
            # the logger's handler keeps the stream it was built with: this
            # file, for the whole run
            runner = Runner.from_cfg(cfg)
            runner.register_hook(DemoProgress(tag, out))
            runner.train()
            metrics = runner.test()
        except BaseException:
            print(f'\n{tag} failed: the full log is {log}', file=out)
            raise
    metrics['minutes'] = (time.perf_counter() - start) / 60
    metrics['weights'] = runner.model.get_blend_weights()
    metrics['mix'] = runner.model.get_prediction_weights()
    metrics['clips'] = len(runner.train_dataloader.dataset)
    print(f'  [{tag}] done in {clock(60 * metrics["minutes"])}, test top-1 '
          f'{100 * metrics["acc/top1"]:.1f}', file=out, flush=True)
    return metrics


def named_weights(weights: Dict[str, float]) -> str:
    """``rgb 0.491, audio 0.029, fused 0.479``: every weight beside its
    head's name (the model's head order is not the reader's)."""
    order = [h for h in ('rgb', 'audio', 'fused') if h in weights]
    order += sorted(h for h in weights if h not in order)
    return ', '.join(f'{h} {weights[h]:.3f}' for h in order)


def table(results: Dict[str, Dict]) -> str:
    rows = ['| run | clips at the end | prediction top-1 | RGB head | '
            'audio head | fused head | final blend weights | prediction '
            'mixes | minutes |', '|---|---|---|---|---|---|---|---|---|']
    for name, m in results.items():
        accs = ' | '.join(f'{100 * m[f"acc/{k}"]:.1f}' for k in HEADS)
        rows.append(f'| {name} | {m["clips"]} | {accs} | '
                    f'{named_weights(m["weights"])} | '
                    f'{named_weights(m["mix"])} | {m["minutes"]:.1f} |')
    return '\n'.join(rows)


def plot_weights(work_dir: str) -> Optional[str]:
    from importlib.util import module_from_spec, spec_from_file_location
    spec = spec_from_file_location(
        'plot_blend_weights',
        osp.join(REPO, 'tools', 'analysis', 'plot_blend_weights.py'))
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    history = module.read_history(work_dir)
    return module.plot(history, osp.join(work_dir, 'blend_weights.png'))


def main(argv=None) -> Dict[str, Dict]:
    args = parse_args(argv)
    if not osp.isfile(osp.join(args.data_root, 'train_list.txt')):
        raise SystemExit(
            f'No demo data in {args.data_root}: run '
            f'`python tools/data/make_demo_dataset.py --out {args.data_root}` '
            '(or `make demo`) first')
    MMLogger.get_current_instance().addFilter(_QuietDeprecations())
    init_default_scope('mmaction')
    naive = load_config(NAIVE, args, 'naive-fusion')
    gblend = load_config(GBLEND, args, 'gblend-offline')
    print(f'Demo data in {args.data_root}:')
    check_data(naive)
    results = {}
    runs = (('naive fusion', naive),
            ('offline G-Blend, main run on all clips', gblend))
    for i, (name, cfg) in enumerate(runs, 1):
        print(f'\nRun {i} of {len(runs)}: {name}, '
              f'{cfg.train_cfg.max_epochs} epochs; full log in '
              f'{console_log(cfg)}', flush=True)
        results[name] = train_and_test(cfg, cfg.experiment_name)
    print('\nTest split of the demo data (accuracy, %):\n')
    print(table(results))
    png = plot_weights(gblend.work_dir)
    history = osp.join(gblend.work_dir, 'gblend_history.jsonl')
    print(f'\nG-Blend history: {history}\nweights over the training and '
          f'OGR plotted in {png}')
    return results


if __name__ == '__main__':
    main()
