from .metrics import *  # noqa: F401,F403
from .paired_statistics import *  # noqa: F401,F403
