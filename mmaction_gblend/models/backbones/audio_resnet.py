"""A light 2D ResNet-18/34 for single-channel log-mel spectrograms.

This is the audio encoder the OGM-GE authors train from scratch (Peng et al.,
"Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR
2022): a ResNet with basic blocks whose stem takes one input channel. It is
not mmaction2's ``ResNetAudio``, which only has bottleneck depths (50, 101,
152) and builds its ``ConvAudio`` stem through the registry, so it fails
unless the ``mmaction`` default scope is set. This module uses plain
``torch.nn`` convolutions and resolves only the norm layer through mmcv (norm
layers live in mmengine's root registry), so it builds under any scope or
none.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init

from .stage_freezing import StageFreezingMixin

ConfigType = Dict
OptMultiConfig = Optional[Union[Dict, List[Dict]]]


class AudioBasicBlock(nn.Module):
    """The two-convolution residual block of ResNet-18/34.

    Attribute names follow torchvision (``conv1``, ``bn1``, ``conv2``,
    ``bn2``, ``downsample.0``/``.1``) so that checkpoints of torchvision-style
    audio ResNets (such as OGM-GE's) load by name.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        stride: Stride of the first convolution (and of the shortcut).
        norm_cfg: Config of the norm layers.
    """

    expansion = 1

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: ConfigType = dict(type='BN')) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1,
            bias=False)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(
                    in_channels, out_channels, 1, stride=stride, bias=False),
                build_norm_layer(norm_cfg, out_channels)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``[N, C, T, F]``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class AudioResNet(StageFreezingMixin, BaseModule):
    """ResNet-18/34 on log-mel spectrograms, returning the last feature map.

    The network of the audio branch of OGM-GE (Peng et al., CVPR 2022),
    trained from scratch: a 7x7 stem convolution on the single log-mel
    channel, an optional 3x3 max pooling, then ``num_stages`` stages of basic
    blocks with ``base_channels * 2**i`` channels. Time and frequency are the
    two spatial axes of the 2D convolutions.

    Input ``[N, in_channels, T, F]`` (``N`` samples x views, ``T`` frames,
    ``F`` mel bins), output ``[N, feat_dim, t, f]``, not pooled. With the
    defaults, ``t = ceil(T / 32)`` and ``f = ceil(F / 32)``, e.g.
    ``[N, 1, 100, 40] -> [N, 512, 4, 2]``.

    Args:
        depth: 18 or 34.
        in_channels: Channels of the input spectrogram.
        base_channels: Channels of the first stage; stage ``i`` has
            ``base_channels * 2**i``. 64 is the published ResNet-18; 16 or
            32 are much cheaper for small data sets.
        num_stages: Number of residual stages, 1 to 4.
        strides: Stride of the first block of each stage, one per stage.
        stem_stride: Stride of the stem convolution.
        stem_pool: Whether the stem ends with a 3x3, stride 2 max pooling.
        frozen_stages: Stages whose parameters are fixed and whose norm
            layers stay in eval mode: 0 freezes the stem, ``k`` the stem and
            stages 1..k; -1 freezes nothing.
        norm_eval: Whether to keep all BatchNorm layers in eval mode during
            training (running statistics fixed; affine parameters still
            learn unless frozen).
        norm_cfg: Config of the norm layers.
        zero_init_residual: Whether to initialise the last norm layer of
            each block to zero, so each block starts as the identity.
        init_cfg: Weight initialisation; by default Kaiming (fan out) for
            convolutions and weight 1 / bias 0 for norm layers.

    Attributes:
        feat_dim (int): Channels of the output, ``base_channels *
            2**(num_stages - 1)``.
    """

    arch_settings = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

    def __init__(self,
                 depth: int = 18,
                 in_channels: int = 1,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 stem_stride: int = 2,
                 stem_pool: bool = True,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: ConfigType = dict(type='BN'),
                 zero_init_residual: bool = False,
                 init_cfg: OptMultiConfig = [
                     dict(
                         type='Kaiming',
                         layer='Conv2d',
                         mode='fan_out',
                         nonlinearity='relu'),
                     dict(
                         type='Constant',
                         layer=['_BatchNorm', 'GroupNorm'],
                         val=1)
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'AudioResNet.depth must be one of '
                           f'{sorted(self.arch_settings)}, got {depth} '
                           '(use ResNetAudio for bottleneck depths)')
        if not 1 <= num_stages <= 4:
            raise ValueError('AudioResNet.num_stages must be in 1..4, '
                             f'got {num_stages}')
        strides = tuple(strides)
        if len(strides) != num_stages:
            raise ValueError(
                f'AudioResNet.strides needs one stride per stage '
                f'(num_stages={num_stages}), got {strides}')
        self._init_stage_freezing(frozen_stages, num_stages, norm_eval)
        self.depth = depth
        self.in_channels = in_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = strides
        self.stem_stride = stem_stride
        self.stem_pool = stem_pool
        self.norm_cfg = copy.deepcopy(norm_cfg)
        self.zero_init_residual = zero_init_residual

        self.conv1 = nn.Conv2d(
            in_channels, base_channels, 7, stride=stem_stride, padding=3,
            bias=False)
        self.bn1 = build_norm_layer(self.norm_cfg, base_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) \
            if stem_pool else nn.Identity()

        self.res_layers: List[str] = []
        channels = base_channels
        stage_blocks = self.arch_settings[depth][:num_stages]
        for i, (num_blocks, stride) in enumerate(zip(stage_blocks, strides)):
            out_channels = base_channels * 2**i
            blocks = []
            for j in range(num_blocks):
                blocks.append(
                    AudioBasicBlock(
                        channels, out_channels, stride if j == 0 else 1,
                        norm_cfg=self.norm_cfg))
                channels = out_channels
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.res_layers.append(name)
        self.feat_dim = channels

        self._freeze_stages()

    def init_weights(self) -> None:
        """Initialise as ``init_cfg`` says, then zero the residual norms."""
        first_time = not self._is_init
        super().init_weights()
        # Only after a fresh random init: zeroing after a 'Pretrained'
        # init_cfg would destroy the loaded weights.
        pretrained = isinstance(self.init_cfg, dict) and \
            self.init_cfg.get('type') == 'Pretrained'
        if first_time and self.zero_init_residual and not pretrained:
            for m in self.modules():
                if isinstance(m, AudioBasicBlock):
                    constant_init(m.bn2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the feature map of a batch of spectrograms.

        Args:
            x: Log-mel spectrograms ``[N, in_channels, T, F]``.

        Returns:
            The last stage's feature map ``[N, feat_dim, t, f]``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'AudioResNet expects [N, {self.in_channels}, T, F] inputs, '
                f'got {tuple(x.shape)} (the recognizer should fold views '
                'into the batch)')
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.res_layers:
            x = getattr(self, name)(x)
        return x

    def _stage_modules(self, index: int) -> Tuple[nn.Module, ...]:
        """Modules of stage ``index``: 0 is the stem, ``i`` is layer ``i``."""
        if index == 0:
            return (self.conv1, self.bn1)
        return (getattr(self, f'layer{index}'), )
