"""PANNs CNN14 as an mmaction2 backbone on our log-mel spectrograms.

CNN14 is the AudioSet-pretrained convolutional network of Kong et al.,
"PANNs: Large-Scale Pretrained Audio Neural Networks for Audio Pattern
Recognition", IEEE/ACM TASLP 28, 2020 (arXiv:1912.10211). The backbone keeps
the part between the front end and the classifier: the per-mel-bin batch
norm ``bn0`` and the six double-convolution blocks, under the published
parameter names, so the published checkpoints (for example
``Cnn14_mAP=0.431.pth``) load by name through :meth:`Cnn14.load_pretrained`.
"""
import copy
import logging
import math
import os
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule

from mmaction_gblend.checkpoint import load_pretrained_state_dict
from .stage_freezing import StageFreezingMixin

ConfigType = Dict
OptMultiConfig = Optional[Union[Dict, List[Dict]]]
StateDictSource = Union[str, os.PathLike, Mapping[str, torch.Tensor]]

#: Factor from natural-log to decibel values of a power spectrogram:
#: ``10 * log10(x) == LOG_TO_DB * log(x)``. Use it as ``Cnn14.input_scale``
#: with ``LogMelSpectrogram(power=2.0, scale='log')``.
LOG_TO_DB = 10.0 / math.log(10.0)


class LoadReport(NamedTuple):
    """What :meth:`Cnn14.load_pretrained` did with a state dict.

    Attributes:
        loaded: Checkpoint keys copied into the backbone.
        dropped: Checkpoint keys of the published model's parts this backbone
            does not have (front end and classifier), ignored on purpose.
        unexpected: Other checkpoint keys the backbone has no place for.
        missing: Backbone keys the checkpoint does not provide (they keep
            their initial values).
    """
    loaded: List[str]
    dropped: List[str]
    unexpected: List[str]
    missing: List[str]


class Cnn14ConvBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU, then average pooling.

    Names follow the published model (``conv1``, ``bn1``, ``conv2``,
    ``bn2``); the pooling has no parameters.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of both convolutions.
        pool_size: Kernel and stride of the average pooling; ``(1, 1)``
            means no pooling.
        norm_cfg: Config of the norm layers.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 pool_size: Tuple[int, int] = (2, 2),
                 norm_cfg: ConfigType = dict(type='BN')) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(pool_size) \
            if tuple(pool_size) != (1, 1) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``[N, C, T, F]``."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.pool(x)


@MODELS.register_module()
class Cnn14(StageFreezingMixin, BaseModule):
    """PANNs CNN14 (Kong et al., 2020) on log-mel input, without its head.

    Reference: Qiuqiang Kong, Yin Cao, Turab Iqbal, Yuxuan Wang, Wenwu Wang,
    Mark D. Plumbley, "PANNs: Large-Scale Pretrained Audio Neural Networks
    for Audio Pattern Recognition", IEEE/ACM Transactions on Audio, Speech,
    and Language Processing 28 (2020), arXiv:1912.10211.

    Layout: ``bn0`` normalises each mel bin (a BatchNorm over the mel axis),
    then ``conv_block1`` .. ``conv_block6`` with 64, 128, 256, 512, 1024,
    2048 channels, each two bias-free 3x3 convolutions with BatchNorm and
    ReLU, followed by 2x2 average pooling (none after block 6), with dropout
    between blocks while training. The published model's STFT/log-mel front
    end, its SpecAugment and mixup, its global pooling and its classifier
    (``fc1``, ``fc_audioset``) are left out: our pipeline computes the
    log-mel features and the recognizer pools and classifies.

    Input ``[N, in_channels, T, F]`` with ``F == mel_bins`` and ``T >= 32``;
    output ``[N, 2048, T // 32, F // 32]`` (5 halvings, each rounding
    down), e.g. ``[N, 1, 100, 64] -> [N, 2048, 3, 2]``.

    What the published checkpoints expect. They were trained on AudioSet at
    32 kHz with 64 mel bins from 50 to 14000 Hz, a 1024-sample Hann window
    and FFT, hop 320 (10 ms, 100 frames per second), centred frames, power
    spectrum, mel filters as librosa's (Slaney) and ``10 * log10`` of the
    mel power (floor 1e-10, no top_db). The closest our pipeline comes::

        dict(type='DecodeAudioTrack', sample_rate=32000),
        dict(type='LogMelSpectrogram', n_fft=1024, hop_length=320,
             n_mels=64, fmin=50, fmax=14000, power=2.0, scale='log',
             num_frames=...),
        # backbone
        dict(type='Cnn14', mel_bins=64, input_scale=4.342944819032518,
             pretrained='Cnn14_mAP=0.431.pth')

    ``scale='log'`` gives ``log(mel + 1e-6)``; ``input_scale`` =
    ``10 / ln 10`` (:data:`LOG_TO_DB`) turns it into decibels. Measured
    against a direct implementation of that front end on a tone in noise,
    the result agrees within 0.004 dB except for the first and last two
    frames (librosa pads the signal with zeros there, PANNs reflects it) and
    below about -60 dB (floor 1e-6 instead of 1e-10). The default
    ``scale='normalized_db'`` maps to [0, 1] and clips, so it is not
    comparable to the pretrained ``bn0`` statistics; with it, fine-tune with
    ``bn0`` in training mode or expect a shift. ``input_scale`` does not
    matter for a network trained from scratch.

    Args:
        in_channels: Channels of the input (1 for the published weights).
        mel_bins: Mel bins of the input, the size of ``bn0``; must equal
            ``LogMelSpectrogram.n_mels`` (64 for the published weights).
        dropout_ratio: Dropout after blocks 1 to 5 in training (0.2 as
            published; the head adds its own after block 6).
        input_scale: Factor applied to the input before ``bn0``.
        frozen_stages: Stages whose parameters are fixed and whose norm
            layers stay in eval mode: 0 freezes ``bn0``, ``k`` also
            ``conv_block1`` .. ``conv_block{k}``; -1 freezes nothing.
        norm_eval: Whether to keep all BatchNorm layers in eval mode during
            training.
        norm_cfg: Config of the norm layers.
        pretrained: Path of a published checkpoint, loaded by
            :meth:`init_weights` through :meth:`load_pretrained`.
        init_cfg: Initialisation when not pretrained; by default Xavier
            (uniform) for convolutions and weight 1 / bias 0 for norms, as
            the published code does.

    Attributes:
        feat_dim (int): Channels of the output, 2048.
    """

    block_channels = (64, 128, 256, 512, 1024, 2048)
    # Parts of the published model this backbone leaves out on purpose.
    dropped_prefixes = ('spectrogram_extractor.', 'logmel_extractor.',
                        'fc1.', 'fc_audioset.')
    # 5 pooled blocks halve the time and mel axes 5 times.
    min_size = 2**5

    def __init__(self,
                 in_channels: int = 1,
                 mel_bins: int = 64,
                 dropout_ratio: float = 0.2,
                 input_scale: float = 1.0,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: ConfigType = dict(type='BN'),
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = [
                     dict(type='Xavier', layer='Conv2d',
                          distribution='uniform'),
                     dict(type='Constant', layer='_BatchNorm', val=1)
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        num_stages = len(self.block_channels)
        if mel_bins < self.min_size:
            raise ValueError(
                f'Cnn14.mel_bins must be at least {self.min_size} (five 2x2 '
                f'poolings), got {mel_bins}')
        self._init_stage_freezing(frozen_stages, num_stages, norm_eval)
        self.in_channels = in_channels
        self.mel_bins = mel_bins
        self.dropout_ratio = dropout_ratio
        self.input_scale = input_scale
        self.norm_cfg = copy.deepcopy(norm_cfg)
        self.pretrained = pretrained

        self.bn0 = build_norm_layer(self.norm_cfg, mel_bins)[1]
        channels = in_channels
        for i, out_channels in enumerate(self.block_channels):
            pool = (1, 1) if i == num_stages - 1 else (2, 2)
            self.add_module(
                f'conv_block{i + 1}',
                Cnn14ConvBlock(channels, out_channels, pool, self.norm_cfg))
            channels = out_channels
        self.dropout = nn.Dropout(dropout_ratio)
        self.feat_dim = channels

        self._freeze_stages()

    def init_weights(self) -> None:
        """Initialise as ``init_cfg`` says, then load ``pretrained``."""
        super().init_weights()
        if self.pretrained is not None:
            self.load_pretrained(self.pretrained)

    def load_pretrained(self,
                        source: StateDictSource,
                        key: Optional[str] = 'model') -> LoadReport:
        """Load a published CNN14 state dict by parameter name.

        The file is read with
        :func:`mmaction_gblend.load_pretrained_state_dict` (no code in it
        runs). Keys of the front end
        (``spectrogram_extractor.*``, ``logmel_extractor.*``) and of the
        classifier (``fc1.*``, ``fc_audioset.*``) are dropped; the rest are
        matched by name. Dropped, unexpected and missing keys are logged to
        the current mmengine logger (``num_batches_tracked`` buffers absent
        from a checkpoint are not reported: they only count steps).

        Args:
            source: Path of a checkpoint file, or a state dict.
            key: Entry of the checkpoint that holds the state dict (the
                published files use ``'model'``); ``None`` tries
                ``state_dict``, ``model`` and ``module``, then the whole
                file. Ignored when ``source`` is a state dict.

        Returns:
            What was loaded, dropped, unexpected and missing.

        Raises:
            ValueError: A kept parameter has another shape than in the
                backbone; the message names every such key. Nothing is
                loaded then.
        """
        if isinstance(source, Mapping):
            state_dict = dict(source)
            name = 'the given state dict'
        else:
            state_dict = load_pretrained_state_dict(source, key=key)
            name = os.fspath(source)

        own = self.state_dict()
        dropped = [k for k in state_dict
                   if k.startswith(self.dropped_prefixes)]
        unexpected = [k for k in state_dict
                      if k not in own and k not in dropped]
        missing = [k for k in own if k not in state_dict
                   and not k.endswith('num_batches_tracked')]
        kept = {k: v for k, v in state_dict.items() if k in own}

        mismatched = [
            f'{k}: checkpoint {tuple(v.shape)}, '
            f'model {tuple(own[k].shape)}{self._shape_hint(k, v)}'
            for k, v in kept.items() if v.shape != own[k].shape
        ]
        if mismatched:
            raise ValueError(
                f'Cnn14: {len(mismatched)} parameter(s) of {name} do not '
                'match the backbone\'s shapes:\n  ' + '\n  '.join(mismatched))

        self.load_state_dict(kept, strict=False)
        print_log(f'Cnn14: loaded {len(kept)} tensors from {name}',
                  logger='current')
        if dropped:
            print_log(
                f'Cnn14: dropped {len(dropped)} keys of the published '
                'front end and classifier, which this backbone leaves out: '
                + ', '.join(dropped), logger='current')
        if unexpected:
            print_log(
                f'Cnn14: unexpected keys in {name}, ignored: '
                + ', '.join(unexpected), logger='current',
                level=logging.WARNING)
        if missing:
            print_log(
                f'Cnn14: keys missing from {name}, left at their initial '
                'values: ' + ', '.join(missing), logger='current',
                level=logging.WARNING)
        return LoadReport(list(kept), dropped, unexpected, missing)

    def _shape_hint(self, key: str, value: torch.Tensor) -> str:
        """Name the config key a shape mismatch most likely comes from."""
        if key.startswith('bn0.') and value.dim() == 1:
            return (f' (the checkpoint has {value.shape[0]} mel bins: set '
                    'Cnn14.mel_bins and LogMelSpectrogram.n_mels to it)')
        if key == 'conv_block1.conv1.weight' and value.dim() == 4:
            return (f' (the checkpoint takes {value.shape[1]} input '
                    'channel(s): set Cnn14.in_channels to it)')
        return ''

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the feature map of a batch of log-mel spectrograms.

        Args:
            x: Log-mel spectrograms ``[N, in_channels, T, F]``.

        Returns:
            The feature map after ``conv_block6``, ``[N, 2048, t, f]``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'Cnn14 expects [N, {self.in_channels}, T, F] inputs, got '
                f'{tuple(x.shape)} (the recognizer should fold views into '
                'the batch)')
        if x.shape[3] != self.mel_bins:
            raise ValueError(
                f'Cnn14 got inputs with {x.shape[3]} mel bins (last axis of '
                f'{tuple(x.shape)}), but Cnn14.mel_bins={self.mel_bins}; '
                'set LogMelSpectrogram.n_mels and Cnn14.mel_bins to the '
                'same value (64 for the published checkpoints)')
        if x.shape[2] < self.min_size:
            raise ValueError(
                f'Cnn14 needs at least {self.min_size} time frames, got '
                f'{x.shape[2]} (LogMelSpectrogram.num_frames)')
        if self.input_scale != 1.0:
            x = x * self.input_scale
        # bn0 normalises each mel bin: move the mel axis to the channels.
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(1, len(self.block_channels) + 1):
            x = getattr(self, f'conv_block{i}')(x)
            if i < len(self.block_channels):
                x = self.dropout(x)
        return x

    def _stage_modules(self, index: int) -> Tuple[nn.Module, ...]:
        """Stage ``index``: 0 is ``bn0``, ``i`` is ``conv_block{i}``."""
        return (self.bn0, ) if index == 0 else (
            getattr(self, f'conv_block{index}'), )
