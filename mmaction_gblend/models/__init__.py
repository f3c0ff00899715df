"""Models: recognizer, heads, fusions, backbones (registered in MODELS)."""
from .backbones import *  # noqa: F401,F403
from .fusions import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .modulation import *  # noqa: F401,F403
from .recognizers import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
