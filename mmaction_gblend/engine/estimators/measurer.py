"""Per-sample losses of models' heads on G-Blend's T' and V."""
import copy
from typing import Dict, Iterable, Optional

import torch

from ...utils.model_wrappers import unwrap
from ..batchnorm_recalibration import batchnorm_layers, recalibrate_batchnorm
from ..blend_policy import Samples
from ..heldout_evaluation import ModelHeads, measure_models

#: The main model's name among the models measured together (not an
#: identifier, so no modality can be called that).
MAIN = '<main>'


class HeadMeasurer:
    """Measures models' heads on the held-out set V and a training probe
    T', sample by sample, in eval mode, with BatchNorm statistics
    recomputed first.

    Args:
        heldout_loader: V, in a fixed order.
        probe_loader: T', in a fixed order.
        recalibrate_bn: Training batches over which BatchNorm statistics
            are recomputed before a measurement (0: as they are).
        use_accuracy: Record 0/1 correctness instead of losses.
    """

    def __init__(self, heldout_loader: Iterable, probe_loader: Iterable,
                 recalibrate_bn: int, use_accuracy: bool) -> None:
        self.heldout_loader = heldout_loader
        self.probe_loader = probe_loader
        self.recalibrate_bn = recalibrate_bn
        self.use_accuracy = use_accuracy

    def recalibrated_copy(self, model: torch.nn.Module,
                          train_loader: Iterable) -> torch.nn.Module:
        """A copy of ``model`` with recomputed BatchNorm statistics (the
        model itself when there is nothing to recompute)."""
        if not self.recalibrate_bn or not batchnorm_layers(model):
            return unwrap(model)
        twin = copy.deepcopy(unwrap(model))
        recalibrate_batchnorm({MAIN: (twin, None)}, train_loader,
                              self.recalibrate_bn)
        return twin

    def measure(self, models: Dict[str, ModelHeads],
                train_loader: Optional[Iterable],
                probe_loader: Optional[Iterable] = None
                ) -> Dict[str, Samples]:
        """Per-sample values of several models, one pass over each set.

        With ``train_loader``, a model with BatchNorm is measured with
        statistics recomputed on it: the main model (``MAIN``) on a copy,
        the others (copies already) in place. ``probe_loader`` replaces
        T' (the shadow copies' own probe).
        """
        if self.recalibrate_bn and train_loader is not None:
            models = dict(models)
            if MAIN in models and batchnorm_layers(models[MAIN][0]):
                main, heads = models[MAIN]
                models[MAIN] = (copy.deepcopy(unwrap(main)), heads)
            # one pass over the batches for every model
            recalibrate_batchnorm(models, train_loader, self.recalibrate_bn)
        probe = measure_models(models, probe_loader or self.probe_loader)
        heldout = measure_models(models, self.heldout_loader)
        field = 'correct' if self.use_accuracy else 'losses'
        return {
            name: {
                head: dict(train=list(getattr(probe[name][head], field)),
                           heldout=list(getattr(heldout[name][head], field)))
                for head in probe[name]
            }
            for name in models
        }

    def measure_main(self, model: torch.nn.Module,
                     train_loader: Iterable) -> Samples:
        """Every head of the main model (left untouched)."""
        return self.measure({MAIN: (model, None)}, train_loader)[MAIN]
