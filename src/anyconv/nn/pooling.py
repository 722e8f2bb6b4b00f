"""anyconv's pooling modules (to be filled in)."""

import torch

__all__: list[str] = []
# torch.nn class -> anyconv.nn class, used by anyconv.nn.convert
TORCH_EQUIVALENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {}
