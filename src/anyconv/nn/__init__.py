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


def _not_scriptable(self: object) -> None:
    """``torch.jit.script`` calls this first on every submodule: one clear error instead of
    TorchScript's complaint about the first Python construct it cannot compile."""
    raise TypeError(
        f"{type(self).__name__}: torch.jit.script is not supported (anyconv's layers are Python that checks "
        "arguments, then calls torch.ops.anyconv operators); use torch.jit.trace, torch.compile or "
        "torch.export, which all work"
    )


def _mark_not_scriptable() -> None:
    import torch

    for name in __all__:
        cls = globals()[name]
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
            cls.__prepare_scriptable__ = _not_scriptable  # type: ignore[attr-defined]


_mark_not_scriptable()
