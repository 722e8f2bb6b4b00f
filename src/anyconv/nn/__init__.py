"""Drop-in replacements for torch.nn's convolution and pooling layers, built on anyconv."""

from .conv import *  # noqa: F403
from .conv import __all__ as _conv_all
from .convert import convert
from .fold import *  # noqa: F403
from .fold import __all__ as _fold_all
from .lazy import *  # noqa: F403
from .lazy import __all__ as _lazy_all
from .pooling import *  # noqa: F403
from .pooling import __all__ as _pool_all
from .unpool import *  # noqa: F403
from .unpool import __all__ as _unpool_all

__all__ = [*_conv_all, *_pool_all, *_unpool_all, *_lazy_all, *_fold_all, "convert"]
