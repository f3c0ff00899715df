"""A stock mmaction2 RGB recognizer config, with an audio branch added.

``AddAudioBranch`` (a model builder registered in MODELS) takes the
``model`` of any mmaction2 RGB recognition config (``Recognizer2D`` such as
TSN/TSM, ``Recognizer3D`` such as I3D/SlowOnly/SlowFast) and builds a
:class:`MultiHeadRecognizer` with that backbone as the ``rgb`` branch, an
audio branch, a fusion and one head per modality plus the fused one::

    model = dict(_delete_=True, type='AddAudioBranch',
                 recognizer={{_base_.model}})

The class count, the RGB feature width, dropout, clip averaging and the RGB
data preprocessor are read from the stock config.
"""
import copy
from typing import Optional

from mmaction.registry import MODELS

from ...utils.choices import check_choice

__all__ = ['DEFAULT_AUDIO_BRANCH', 'add_audio_branch']

#: A ResNet-18 on log-mel spectrograms, trained from scratch.
DEFAULT_AUDIO_BRANCH = dict(
    backbone=dict(type='AudioResNet', depth=18), feat_dim=512)
_INPUT_FORMATS = dict(Recognizer2D='NCHW', Recognizer3D='NCTHW')


@MODELS.register_module(name='AddAudioBranch')
def add_audio_branch(recognizer: dict,
                     audio: Optional[dict] = None,
                     rgb_feat_dim: Optional[int] = None,
                     fusion: Optional[dict] = None,
                     **kwargs):
    """Build a ``MultiHeadRecognizer`` from a stock RGB recognizer config.

    Args:
        recognizer: The stock ``model`` config (``Recognizer2D`` or
            ``Recognizer3D`` with ``backbone``, ``cls_head`` and
            ``data_preprocessor``).
        audio: The audio branch (``backbone``, ``feat_dim``); default
            :data:`DEFAULT_AUDIO_BRANCH`.
        rgb_feat_dim: Channels of the RGB backbone's output; default the
            stock head's ``in_channels``.
        fusion: Fusion config; default the G-Blend paper's concatenation
            with two FC layers (``ConcatFusion``).
        **kwargs: More ``MultiHeadRecognizer`` arguments (``blend_weights``,
            ``opm``, ``score_source``, ...).

    Returns:
        The built ``MultiHeadRecognizer``.

    Raises:
        ValueError: Naming the key, for a recognizer type without a known
            input format or a config without ``backbone``/``cls_head``.
    """
    stock = copy.deepcopy(dict(recognizer))
    kind = check_choice('AddAudioBranch.recognizer.type', stock.get('type'),
                        sorted(_INPUT_FORMATS))
    for key in ('backbone', 'cls_head'):
        if key not in stock:
            raise ValueError(f'AddAudioBranch.recognizer has no {key!r}')
    head = stock['cls_head']
    feat_dim = rgb_feat_dim or head.get('in_channels')
    if not feat_dim:
        raise ValueError('AddAudioBranch: set rgb_feat_dim (the stock '
                         "cls_head has no 'in_channels')")
    audio = dict(copy.deepcopy(audio or DEFAULT_AUDIO_BRANCH))
    audio.setdefault('input_key', 'audios')
    rgb_preprocessor = stock.get('data_preprocessor') or dict(
        type='ActionDataPreprocessor', format_shape=_INPUT_FORMATS[kind])
    cfg = dict(
        type='MultiHeadRecognizer',
        num_classes=head['num_classes'],
        branches=dict(
            rgb=dict(backbone=stock['backbone'], feat_dim=feat_dim,
                     input_key='imgs', input_format=_INPUT_FORMATS[kind]),
            audio=audio),
        fusion=fusion or dict(type='ConcatFusion'),
        head=dict(type='ClassifierHead',
                  dropout_ratio=head.get('dropout_ratio', 0.5)),
        average_clips=head.get('average_clips') or 'prob',
        data_preprocessor=dict(
            type='MultiModalDataPreprocessor',
            preprocessors=dict(imgs=rgb_preprocessor,
                               audios=dict(type='ActionDataPreprocessor'))))
    cfg.update(kwargs)
    return MODELS.build(cfg)
