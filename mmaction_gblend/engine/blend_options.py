"""The G-Blend hook's options: which are invalid, which a mode ignores.

Checked when ``GradientBlendingHook`` is built, before any training: a
typo in a many-GPU run's config fails in seconds, not at the first
estimate hours in. The schedule's lengths are checked by
:func:`~.blend_schedule.blend_schedule`, the weight policy's options by
:class:`~.blend_policy.BlendPolicy`, the replay's and the release's by
their modules; the rest here.
"""
import logging
from typing import Dict, List, Optional

from mmengine.logging import print_log

from ..blending import check_blend_weights
from ..datasets.group_split import check_group_spec
from ..utils.choices import check_flag, check_integer
from .blend_schedule import AT_START, HOOK_KEY, blend_schedule
from .heldout_release import check_release_option
from .history_file import check_history_file
from .weight_replay import ReplaySource, replay_option

#: Options of an estimate, which ``fixed`` and ``replay`` ignore.
ESTIMATE_OPTIONS = (
    'estimator', 'warmup_epochs', 'super_epochs', 'heldout_fraction',
    'heldout_group', 'probe_size', 'exclude_heldout', 'measure_pipeline',
    'measure_batch_size', 'use_accuracy', 'overfit_floor', 'min_weight',
    'prediction_floor', 'smoothing', 'noise_scale', 'bootstrap',
    'shadow_fraction', 'offline_horizon', 'recalibrate_bn',
    'trajectory_correction', 'shadow_check')


def ignored_options(options: Dict[str, object],
                    defaults: Dict[str, object]) -> List[str]:
    """The options given other values than their ``defaults`` that the
    other options make meaningless (``options``: the hook's arguments)."""
    mode, estimator = options['mode'], options['estimator']
    ignored = []
    if mode in ('fixed', 'replay'):
        ignored += ESTIMATE_OPTIONS
    elif mode == 'offline':
        # one estimate: nothing to smooth towards, no later super-epochs
        ignored += ['smoothing', 'super_epochs']
        if estimator in AT_START:
            ignored.append('warmup_epochs')  # its horizon: offline_horizon
    if estimator != 'shadow':
        ignored.append('shadow_fraction')
    if estimator != 'trajectory':
        ignored.append('trajectory_correction')
    return [k for k in dict.fromkeys(ignored) if options[k] != defaults[k]]


def _check_other_options(options: Dict[str, object]) -> None:
    """Refuse the hook's invalid options that the schedule, the policy and
    the replay and release checks do not cover, naming the key."""
    if options['mode'] == 'fixed' and not isinstance(options['weights'],
                                                     dict):
        raise ValueError(f"{HOOK_KEY}.weights must be a dict for mode='fixed'")
    weights = options['weights']
    if isinstance(weights, dict):
        # the values now; the heads against the model's in before_train
        check_blend_weights(weights, None, f'{HOOK_KEY}.weights')
    elif weights not in ('uniform', None):
        raise ValueError(f"{HOOK_KEY}.weights must be 'uniform', None or a "
                         f'dict, got {weights!r}')
    if not 0 < options['heldout_fraction'] < 1:
        raise ValueError(f'{HOOK_KEY}.heldout_fraction must be in (0, 1), '
                         f'got {options["heldout_fraction"]!r}')
    check_group_spec(options['heldout_group'], f'{HOOK_KEY}.heldout_group')
    if not 0 < options['shadow_fraction'] <= 1:
        raise ValueError(f'{HOOK_KEY}.shadow_fraction must be in (0, 1], '
                         f'got {options["shadow_fraction"]}')
    pipeline = options['measure_pipeline']
    if isinstance(pipeline, str) and pipeline not in ('val', 'train') or \
            not isinstance(pipeline, (str, list, tuple)):
        raise ValueError(
            f"{HOOK_KEY}.measure_pipeline must be 'val', 'train' or a list "
            f'of transforms, got {pipeline!r}')
    # (key, least value, None allowed: the default derived from the data)
    for key, least, optional in (('recalibrate_bn', 0, False),
                                 ('seed', 0, False), ('probe_size', 1, True),
                                 ('measure_batch_size', 1, True)):
        check_integer(f'{HOOK_KEY}.{key}', options[key], least, optional)
    for key in ('trajectory_correction', 'shadow_check', 'release_heldout'):
        check_flag(f'{HOOK_KEY}.{key}', options[key])
    if options['exclude_heldout'] not in (None, True, False):
        raise ValueError(f'{HOOK_KEY}.exclude_heldout must be None, True or '
                         f'False, got {options["exclude_heldout"]!r}')
    check_history_file(options['history_file'], f'{HOOK_KEY}.history_file')
    if options['estimator'] == 'first_order' and options['use_accuracy']:
        raise ValueError(f"{HOOK_KEY}.use_accuracy: estimator='first_order' "
                         'differentiates losses (a 0/1 correctness has no '
                         "gradient); use the losses or estimator='shadow'")


def check_hook_options(options: Dict[str, object],
                       defaults: Dict[str, object]) -> Optional[ReplaySource]:
    """Check every option of ``GradientBlendingHook`` (``options``: its
    arguments, ``defaults``: their defaults) but the weight policy's
    (:class:`~.blend_policy.BlendPolicy`), and warn about those the others
    make meaningless, by name. Returns the replay source (mode
    ``'replay'``), read and checked.

    Raises:
        ValueError: Naming the config key of an invalid option.
    """
    mode, horizon = options['mode'], options['offline_horizon']
    # the lengths, against the longest training that could hold them
    blend_schedule(mode, options['estimator'],
                   max(options['warmup_epochs'], horizon or 1, 1) + 1,
                   options['warmup_epochs'], options['super_epochs'],
                   horizon)
    source = replay_option(mode, options['replay'], options['replay_epochs'])
    check_release_option(options['release_heldout'], mode,
                         options['exclude_heldout'])
    _check_other_options(options)
    for key in ignored_options(options, defaults):
        print_log(f'{HOOK_KEY}.{key}={options[key]!r} has no effect with '
                  f'mode={mode!r}, estimator={options["estimator"]!r}: '
                  'ignored', logger='current', level=logging.WARNING)
    return source
