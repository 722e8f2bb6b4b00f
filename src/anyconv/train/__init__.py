"""Training on anyconv's layers: ``train(TrainConfig(...))``, checkpoints, distributed data parallel.

Examples:
    >>> from anyconv.train import TrainConfig
    >>> TrainConfig().model, TrainConfig().dataset
    ('mnist1d_cnn', 'mnist1d')
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .loop import evaluate, train

__all__ = ["TrainConfig", "evaluate", "load_checkpoint", "save_checkpoint", "train"]
