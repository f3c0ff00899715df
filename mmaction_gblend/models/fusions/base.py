"""Common base of the fusion modules and the helpers they share.

A multi-head recognizer has one branch per modality; each branch's backbone
gives a feature map ``[B, C_m, *spatial_m]`` (3 spatial dims for video
``[B, C, t, h, w]``, 2 for audio ``[B, C, t, f]``, none for features that are
already pooled ``[B, C]``). A fusion module takes the dict of these maps and
returns one fused feature vector ``[B, out_channels]`` for the fused
classification head (a single ``Linear`` built by the recognizer with
``in_channels=fusion.out_channels``).
"""
import numbers
from typing import Dict, List, Mapping, Optional, Union

from mmengine.model import BaseModule
from torch import Tensor

from ..utils import global_avg_pool, to_tokens  # noqa: F401 (re-exported)


def check_positive_int(owner: str,
                       name: str,
                       value: object,
                       allow_zero: bool = False) -> int:
    """Validate a configuration value that must be a positive integer.

    Args:
        owner: Class name, for the message.
        name: Config key, for the message.
        value: The value to check.
        allow_zero: Whether 0 is accepted.

    Returns:
        ``value`` as a Python ``int``.

    Raises:
        ValueError: If ``value`` is not an integer (bools are rejected) or is
            negative, or zero when ``allow_zero`` is False.
    """
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or value < lowest:
        kind = 'a non-negative' if allow_zero else 'a positive'
        raise ValueError(
            f'{owner}: `{name}` must be {kind} int, got {value!r}')
    return int(value)


class BaseFusion(BaseModule):
    """Base of all fusions: validated modalities and channels, input checks.

    Subclasses set ``self.out_channels`` in ``__init__`` and implement
    :meth:`fuse`; :meth:`forward` checks the inputs first, so every fusion
    fails with the same clear messages. Modalities are always looked up by
    name and processed in config order (``self.modalities``), never in the
    insertion order of the dict passed to ``forward``.

    Args:
        in_channels: Channels of each modality's feature map, e.g.
            ``dict(rgb=2048, audio=512)``. Its order is the config order;
            ``MultiHeadRecognizer`` passes the modalities sorted by name, so
            a config whose keys were re-ordered (mmengine's dump sorts
            them) builds the same model.
        init_cfg: mmengine initialisation config.

    Raises:
        ValueError: If ``in_channels`` is not a dict of positive ints keyed
            by non-empty names without dots, or has fewer than
            ``min_modalities`` (2) or more than ``max_modalities`` entries.
    """

    #: Fewest modalities a fusion accepts.
    min_modalities: int = 2
    #: Most modalities a fusion accepts; ``None`` for no limit.
    max_modalities: Optional[int] = None
    #: Width of the fused feature vector, set by each subclass.
    out_channels: int

    def __init__(self,
                 in_channels: Dict[str, int],
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = self._validate_in_channels(in_channels)
        self.modalities: List[str] = list(self.in_channels)

    @classmethod
    def accepts(cls, count: int) -> bool:
        """Whether the fusion takes ``count`` modalities (before building
        it, so a recognizer can name the config key that is wrong)."""
        return count >= cls.min_modalities and (cls.max_modalities is None
                                                or count <= cls.max_modalities)

    @classmethod
    def arity(cls) -> str:
        """How many modalities it takes, in words: ``'exactly 2'``, ..."""
        if cls.max_modalities == cls.min_modalities:
            return f'exactly {cls.min_modalities}'
        if cls.max_modalities is None:
            return f'at least {cls.min_modalities}'
        return f'{cls.min_modalities} to {cls.max_modalities}'

    # -- construction-time checks ---------------------------------------
    def _validate_in_channels(self, in_channels: object) -> Dict[str, int]:
        owner = type(self).__name__
        if not isinstance(in_channels, Mapping) or not in_channels:
            raise ValueError(
                f'{owner}: `in_channels` must be a non-empty dict mapping '
                f'modality names to channel counts, got {in_channels!r}')
        checked = {}
        for name, channels in in_channels.items():
            # Names become submodule keys (nn.ModuleDict), which forbid dots.
            if not isinstance(name, str) or not name or '.' in name:
                raise ValueError(
                    f'{owner}: `in_channels` keys must be non-empty modality '
                    f'names without dots, got {name!r}')
            checked[name] = check_positive_int(owner, f'in_channels[{name!r}]',
                                               channels)
        count = len(checked)
        if not self.accepts(count):
            raise ValueError(
                f'{owner}: `in_channels` must name {self.arity()} '
                f'modalities, got {count}: {list(checked)}')
        return checked

    def _check_modality_arg(self, key: str, value: object) -> str:
        """Check that config key ``key`` names one of the modalities."""
        if value not in self.in_channels:
            raise ValueError(
                f'{type(self).__name__}: `{key}` must be one of the '
                f'modalities in `in_channels` {self.modalities}, got '
                f'{value!r}')
        return value

    # -- forward-time checks ----------------------------------------------
    def check_inputs(self, feats: Mapping[str, Tensor]) -> None:
        """Check that ``feats`` holds exactly the configured modalities.

        Args:
            feats: Feature maps by modality name.

        Raises:
            TypeError: If ``feats`` is not a mapping or holds a non-tensor.
            ValueError: If a modality is missing or unexpected, a map has
                fewer than 2 dims, the wrong channel count, or a batch size
                that differs from the other modalities'.
        """
        owner = type(self).__name__
        if not isinstance(feats, Mapping):
            raise TypeError(
                f'{owner}: expected a dict of feature maps by modality, got '
                f'{type(feats).__name__}')
        missing = [m for m in self.modalities if m not in feats]
        extra = [m for m in feats if m not in self.in_channels]
        if missing or extra:
            raise ValueError(
                f'{owner}: got modalities {list(feats)}, expected exactly '
                f'{self.modalities}' +
                (f'; missing {missing}' if missing else '') +
                (f'; unexpected {extra}' if extra else ''))
        batch = None
        for name in self.modalities:
            x = feats[name]
            if not isinstance(x, Tensor):
                raise TypeError(f'{owner}: modality {name!r}: expected a '
                                f'tensor, got {type(x).__name__}')
            expected = self.in_channels[name]
            if x.dim() < 2 or x.shape[1] != expected:
                got = x.shape[1] if x.dim() >= 2 else 'no channel dim'
                raise ValueError(
                    f'{owner}: modality {name!r}: expected a map '
                    f'[B, {expected}, *spatial] ({expected} channels from '
                    f'`in_channels`), got channels={got}, shape '
                    f'{tuple(x.shape)}')
            if batch is None:
                batch = (name, x.shape[0])
            elif x.shape[0] != batch[1]:
                raise ValueError(
                    f'{owner}: modality {name!r} has batch size '
                    f'{x.shape[0]}, but {batch[0]!r} has {batch[1]}')

    def forward(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Fuse the modalities' feature maps into one vector per sample.

        Args:
            feats: Feature map ``[B, C_m, *spatial_m]`` of each configured
                modality, by name; insertion order does not matter.

        Returns:
            Fused features ``[B, out_channels]``.
        """
        self.check_inputs(feats)
        return self.fuse(feats)

    def fuse(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Fuse inputs already checked by :meth:`check_inputs`.

        Args:
            feats: Feature maps by modality name.

        Returns:
            ``[B, out_channels]``.
        """
        raise NotImplementedError

    @property
    def has_linear_parts(self) -> bool:
        """Whether :meth:`linear_parts` splits this fusion's output."""
        return False

    def linear_parts(self, feats: Mapping[str, Tensor]
                     ) -> Optional[Dict[str, Tensor]]:
        """Each modality's additive share of the fused features, if any.

        A fusion that is a sum of one linear map per modality
        (:attr:`has_linear_parts`) returns ``{m: part_m}`` with
        ``fuse(feats) == sum_m part_m`` (up to dropout); the per-modality
        scores of on-the-fly modulation are then read off the fused head
        exactly (``score_source='linear_split'``). Any other fusion returns
        ``None`` (the default).

        Args:
            feats: Feature maps by modality name.

        Returns:
            ``{modality: [B, out_channels]}`` in config order, or ``None``.
        """
        return None

    def pooled(self, feats: Mapping[str, Tensor]) -> List[Tensor]:
        """Globally pooled ``[B, C_m]`` features, in config order."""
        return [global_avg_pool(feats[m]) for m in self.modalities]

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'out_channels={self.out_channels}')
