"""anyconv's functional ops: convolution, transposed convolution, unfold/fold (and pooling)."""

from ._aliases import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from .conv import conv
from .conv_transpose import conv_transpose
from .fold import fold, unfold
from .pooling import *  # noqa: F403
from .pooling import __all__ as _pool_all

__all__ = [
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "fold",
    "unfold",
    *_pool_all,
]
