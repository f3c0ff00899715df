"""The strategies of the comparison, one entry each in :data:`STRATEGIES`.

An entry (:class:`Strategy`) says all the comparison knows of a strategy:
its name, its set (``'core'`` or ``'extra'``), its config override (a
function of the :class:`~comparison.derivation.Derivation`), the
references it is paired with, whether it also runs on G-Blend's training
part (``<name>@gblend-part``), what it needs of the base config and the
demo config it reproduces. The settings the overrides apply (the hooks'
options, OGM-GE's, OPM's, the paper's weights, the held-out split) are
read from the configs that hold them (:func:`setting`); the schedules are
scaled to the base config's (:func:`gblend_epochs`,
:func:`ogm_end_epoch`, :func:`opm_start_epoch`).
"""
import copy
import functools
import os.path as osp
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence

from mmaction_gblend.engine.hooks import (GradientBlendingHook,
                                          OnTheFlyModulationHook)
from mmaction_gblend.models.recognizers import FUSED
from . import REPO

if TYPE_CHECKING:  # pragma: no cover
    from .derivation import Derivation

#: The configs the demo settings are read from.
CONFIGS = osp.join(REPO, 'configs')
#: The demo's online G-Blend (trajectory estimator): the online hook's
#: options and the held-out split (fraction, seed) of every G-Blend run.
ONLINE_DEMO = 'demo/gblend-online_r3d18-rgb_r18-audio_demo-av.py'
#: The demo's offline G-Blend: the offline hook's options.
OFFLINE_DEMO = 'demo/gblend-offline-shadow_r3d18-rgb_r18-audio_demo-av.py'
#: OGM-GE with the authors' settings (its window: :func:`ogm_end_epoch`).
OGM_GE_BASE = '_base_/modulation/ogm_ge.py'
#: The demo's OPM (its start: :func:`opm_start_epoch`).
OPM_DEMO = 'demo/opm_r3d18-rgb_r18-audio_demo-av.py'
#: Offline G-Blend's weights on Kinetics-400, fixed (Wang et al. 2020).
PAPER_DEMO = 'demo/paper-weights_r3d18-rgb_r18-audio_demo-av.py'

#: The suffix of a baseline trained on G-Blend's training part.
PART_SUFFIX = '@gblend-part'
#: ``Strategy.paired``: compared with the references trained on the same
#: clips as itself (the whole training set or G-Blend's part) ...
SAME_CLIPS = 'same clips'
#: ... or with every reference.
EVERY_REFERENCE = 'every reference'
SETS = ('core', 'extra')

#: A strategy's config override: ``(derivation, strategy, seed)`` -> the
#: top-level keys it sets (``custom_hooks``: its own hooks, listed after
#: the base config's).
Override = Callable[['Derivation', 'Strategy', Optional[int]], dict]


@dataclass(frozen=True)
class Strategy:
    """One strategy, as :data:`STRATEGIES` describes it.

    Attributes:
        name: Its name; ``{modality}`` in it: one strategy per modality.
        group: The set it belongs to (``'core'`` or ``'extra'``).
        override: Its config override (:data:`Override`).
        paired: The references it is compared with: :data:`SAME_CLIPS` or
            :data:`EVERY_REFERENCE`.
        part_group: A baseline that also runs on G-Blend's training part
            (``<name>@gblend-part``, in this set); ``None``: it does not.
        reference: Its name as a reference of the paired tables (the best
            of the strategies of that name, per training set).
        needs: What it needs of the base config: a function of the
            derivation, the reason it is left out (``None``: kept).
        demo: The demo config it reproduces on the demo's base (a file
            name pattern in configs/demo/, without ``.py``).
        gblend: Whether a GradientBlendingHook sets its weights.
        part: Whether its final model trains on G-Blend's training part
            only (the training set minus the held-out clips V).
        release: An online G-Blend run whose held-out clips join training
            after the last estimate (``release_heldout``).
        source: The strategy it is a variant of (left out with it).
        replay: It replays its source's recorded weights, on the whole
            training set (the run of the same seed).
        modality: The modality of a single-modality strategy.
    """
    name: str
    group: str
    override: Override
    paired: str = SAME_CLIPS
    part_group: Optional[str] = None
    reference: Optional[str] = None
    needs: Optional[Callable[['Derivation'], Optional[str]]] = None
    demo: Optional[str] = None
    gblend: bool = False
    part: bool = False
    release: bool = False
    source: Optional[str] = None
    replay: bool = False
    modality: Optional[str] = None

    @property
    def replay_of(self) -> Optional[str]:
        """The strategy whose recorded weights a replay applies."""
        return self.source if self.replay else None


# the settings, where they live ---------------------------------------------


@functools.lru_cache(maxsize=None)
def _config(path: str) -> dict:
    from mmengine.config import Config
    return Config.fromfile(osp.join(CONFIGS, path)).to_dict()


def setting(config: str, key: str, without: Sequence[str] = ()) -> dict:
    """A dict of a config under configs/, without the keys a strategy sets
    itself.

    Args:
        config: The config, relative to configs/.
        key: Its dotted path; in a list, the element of that ``type``
            (``'custom_hooks.GradientBlendingHook'``).
        without: The keys left out.
    """
    value = _config(config)
    for part in key.split('.'):
        value = next(v for v in value if v.get('type') == part) \
            if isinstance(value, list) else value[part]
    return {k: copy.deepcopy(v) for k, v in value.items() if k not in without}


def heldout_split() -> dict:
    """G-Blend's held-out split on the demo: ``fraction`` and ``seed``
    (the same seed for every training seed)."""
    split = setting(ONLINE_DEMO, 'train_dataloader.dataset')
    return dict(fraction=split['fraction'], seed=split['seed'])


def epochs_text(n: int) -> str:
    """``'1 epoch'``, ``'4 epochs'``."""
    return f'{n} epoch' + ('' if n == 1 else 's')


def gblend_epochs(max_epochs: int) -> int:
    """The G-Blend warm-up and super-epoch length for a schedule: a third of
    it, at least 1 (the demo's 4 of 12 epochs)."""
    return max(1, max_epochs // 3)


def ogm_end_epoch(max_epochs: int) -> int:
    """OGM-GE's last modulated epoch (included) for a schedule: the first
    half is modulated, epochs 0 to ``max_epochs // 2 - 1``, at least epoch
    0 (the demo's 0-5 of 12 epochs; the CVPR setting, 0-50 of 100, is
    about the first half)."""
    return max(0, max_epochs // 2 - 1)


def opm_start_epoch(max_epochs: int) -> int:
    """OPM's first epoch for a schedule: after a warm-up of a sixth of it,
    rounded down (the demo's 2 of 12 epochs; the authors': 5 of 100)."""
    return max_epochs // 6


def plain(value):
    """A config value as plain dicts and lists."""
    if hasattr(value, 'to_dict'):
        return value.to_dict()
    if isinstance(value, list):
        return [plain(v) for v in value]
    return copy.deepcopy(value)


def replacing(value: dict, present: bool) -> dict:
    """``value`` replacing the base's dict (``_delete_``) where the base has
    the key (mmengine keeps a ``_delete_`` under a new key)."""
    return dict(_delete_=True, **value) if present else dict(value)


# the overrides -------------------------------------------------------------


def single_modality(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """The modality's branch alone: no fusion, no blend weights."""
    model_cfg = d.cfg.model
    model = dict(
        branches=replacing({s.modality: plain(model_cfg.branches[s.modality])},
                           True),
        fusion=None, blend_weights=None)
    if 'predict_head' in model_cfg:
        model['predict_head'] = None
    return dict(model=model)


def fixed_weights(d: 'Derivation', weights: Dict[str, float]) -> dict:
    """The override that trains with fixed blend weights (by head)."""
    return dict(model=dict(blend_weights=replacing(
        weights, 'blend_weights' in d.cfg.model)))


def naive_fusion(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """The fused head's loss alone."""
    return fixed_weights(d, {h: float(h == FUSED) for h in d.heads})


def aux_heads(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """Every head the same weight."""
    return fixed_weights(d, {h: 1 / len(d.heads) for h in d.heads})


def paper_weights(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """The paper's Kinetics weights, fixed: a yardstick, not an estimate."""
    return fixed_weights(d, setting(PAPER_DEMO, 'model.blend_weights'))


def ogm_ge(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """OGM-GE in the first half of the schedule."""
    wrapper = setting(OGM_GE_BASE, 'ogm_ge_optim_wrapper', ('end_epoch', ))
    return dict(custom_hooks=[dict(type=OnTheFlyModulationHook.__name__)],
                optim_wrapper=dict(wrapper,
                                   end_epoch=ogm_end_epoch(d.max_epochs)))


def opm(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """OPM after a warm-up of a sixth of the schedule."""
    settings = dict(setting(OPM_DEMO, 'model.opm', ('start_epoch', )),
                    start_epoch=opm_start_epoch(d.max_epochs))
    return dict(model=dict(opm=replacing(settings, 'opm' in d.cfg.model)),
                custom_hooks=[dict(type=OnTheFlyModulationHook.__name__)])


def opm_ogm_ge(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """OPM and OGM-GE in one training (one hook drives both)."""
    return dict(opm(d, s, seed), **ogm_ge(d, s, seed))


def gblend_online(estimator: str, d: 'Derivation', s: Strategy,
                  seed=None) -> dict:
    """Online G-Blend with ``estimator``: warm-up and super-epochs of
    :func:`gblend_epochs`; a release run returns V after the last
    estimate."""
    epochs = gblend_epochs(d.max_epochs)
    hook = dict(setting(ONLINE_DEMO, 'gblend_hook',
                        ('estimator', 'warmup_epochs', 'super_epochs')),
                estimator=estimator, warmup_epochs=epochs,
                super_epochs=epochs)
    if s.release:
        hook['release_heldout'] = True
    return dict(custom_hooks=[hook])


def gblend_replay(d: 'Derivation', s: Strategy,
                  seed: Optional[int] = None) -> dict:
    """The weights recorded by the source's run of the same seed."""
    if seed is None:
        raise ValueError(f'{s.name}: a replay\'s config needs the seed of '
                         'the run it replays')
    return dict(custom_hooks=[dict(type=GradientBlendingHook.__name__,
                                   mode='replay',
                                   replay=d.replay_source(s.name, seed))])


def gblend_offline(d: 'Derivation', s: Strategy, seed=None) -> dict:
    """Offline G-Blend: the main run on the whole training set, the shadow
    copies on it minus V (the hook's split: the same V as the online
    runs')."""
    hook = setting(OFFLINE_DEMO, 'custom_hooks.GradientBlendingHook',
                   ('heldout_fraction', 'seed'))
    hook.update(heldout_fraction=d.heldout_fraction, seed=d.heldout_seed,
                **{'heldout_' + k: v for k, v in d.group().items()})
    return dict(custom_hooks=[hook])


# what a strategy needs -----------------------------------------------------


def paper_modalities(d: 'Derivation') -> Optional[str]:
    """The paper's weights are for its modalities only."""
    mods = [h for h in setting(PAPER_DEMO, 'model.blend_weights')
            if h != FUSED]
    if sorted(mods) == sorted(d.modalities):
        return None
    return (f"the paper's weights are for {' + '.join(mods)}, the config "
            f"has {', '.join(d.modalities)}")


def two_modalities(d: 'Derivation') -> Optional[str]:
    """The modulation strategies compare two modalities."""
    if len(d.modalities) == 2:
        return None
    return ('they need exactly two modalities, the config has '
            f'{len(d.modalities)}')


def warmup_shorter(d: 'Derivation') -> Optional[str]:
    """The trajectory estimator estimates after its warm-up."""
    epochs = gblend_epochs(d.max_epochs)
    if epochs < d.max_epochs:
        return None
    return (f'its warm-up ({epochs_text(epochs)}) must be shorter than the '
            f'training ({epochs_text(d.max_epochs)})')


# the strategies ------------------------------------------------------------

_ONLINE = 'gblend-online-'
#: The name ending of the demo's two-modality configs.
_AV = '_r3d18-rgb_r18-audio_demo-av'

#: The strategies, in the report's order (each baseline's ``@gblend-part``
#: run comes after the baselines, before the strategies without one).
STRATEGIES: List[Strategy] = [
    Strategy('{modality}-only', 'core', single_modality, part_group='core',
             reference='best single modality', demo='{modality}-only_*'),
    Strategy('naive-fusion', 'core', naive_fusion, part_group='core',
             reference='naive fusion', demo='naive-fusion' + _AV),
    Strategy('aux-heads', 'core', aux_heads, part_group='extra',
             demo='aux-heads' + _AV),
    Strategy('paper-weights', 'core', paper_weights, part_group='extra',
             needs=paper_modalities, demo='paper-weights' + _AV),
    Strategy('ogm-ge', 'extra', ogm_ge, part_group='extra',
             needs=two_modalities, demo='ogm-ge' + _AV),
    Strategy('opm', 'extra', opm, part_group='extra', needs=two_modalities,
             demo='opm' + _AV),
    Strategy('opm-ogm-ge', 'extra', opm_ogm_ge, part_group='extra',
             needs=two_modalities, demo='opm-ogm-ge' + _AV),
    # online G-Blend on its part, the same run returning V after the last
    # estimate, a replay of its weights on the whole training set
    Strategy(_ONLINE + 'shadow', 'extra',
             functools.partial(gblend_online, 'shadow'), EVERY_REFERENCE,
             gblend=True, part=True, demo=_ONLINE + 'shadow' + _AV),
    Strategy(_ONLINE + 'shadow-release', 'extra',
             functools.partial(gblend_online, 'shadow'), EVERY_REFERENCE,
             gblend=True, release=True, source=_ONLINE + 'shadow'),
    Strategy(_ONLINE + 'shadow-replay', 'extra', gblend_replay,
             EVERY_REFERENCE, gblend=True, replay=True,
             source=_ONLINE + 'shadow'),
    # the cheap estimator's are the core set's
    Strategy(_ONLINE + 'trajectory', 'core',
             functools.partial(gblend_online, 'trajectory'), EVERY_REFERENCE,
             needs=warmup_shorter, gblend=True, part=True,
             demo='gblend-online' + _AV),
    Strategy(_ONLINE + 'trajectory-release', 'core',
             functools.partial(gblend_online, 'trajectory'), EVERY_REFERENCE,
             gblend=True, release=True, source=_ONLINE + 'trajectory',
             demo='gblend-online-release' + _AV),
    Strategy(_ONLINE + 'trajectory-replay', 'core', gblend_replay,
             EVERY_REFERENCE, gblend=True, replay=True,
             source=_ONLINE + 'trajectory', demo='gblend-replay' + _AV),
    # the first-order estimator (cheap, from epoch 0): its online run
    Strategy(_ONLINE + 'first_order', 'extra',
             functools.partial(gblend_online, 'first_order'),
             EVERY_REFERENCE, gblend=True, part=True),
    # shadow copies over the whole schedule: about two runs' time
    Strategy('gblend-offline', 'extra', gblend_offline, EVERY_REFERENCE,
             gblend=True, demo='gblend-offline-shadow' + _AV),
]
