"""Progress display: a tqdm bar on a terminal when tqdm is installed, else nothing per step.

Per-epoch summary lines are printed by the training loop either way, so logs written to a
file or a pipe stay plain text.
"""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Steps of one epoch: ``update(n, **postfix)`` then ``close()``."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
