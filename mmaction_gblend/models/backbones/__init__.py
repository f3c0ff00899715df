"""Audio backbones, registered in mmaction2's ``MODELS``."""
from .audio_resnet import AudioBasicBlock, AudioResNet
from .cnn14 import LOG_TO_DB, Cnn14, Cnn14ConvBlock, LoadReport

__all__ = [
    'AudioBasicBlock', 'AudioResNet', 'Cnn14', 'Cnn14ConvBlock', 'LoadReport',
    'LOG_TO_DB'
]
