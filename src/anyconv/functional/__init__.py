"""anyconv's functional ops: convolution, transposed convolution, unfold/fold (and pooling)."""

from ._aliases import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from ._pool_aliases import *  # noqa: F403
from ._pool_aliases import __all__ as _pool_alias_all
from .adaptive import adaptive_avg_pool, adaptive_max_pool
from .conv import conv
from .conv_transpose import conv_transpose
from .fold import fold, unfold
from .fractional import *  # noqa: F403
from .fractional import __all__ as _fractional_all
from .pooling import *  # noqa: F403
from .pooling import __all__ as _pool_all
from .unpool import *  # noqa: F403
from .unpool import __all__ as _unpool_all

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
    *_pool_alias_all,
    "adaptive_avg_pool",
    "adaptive_max_pool",
    *_fractional_all,
    *_unpool_all,
]
