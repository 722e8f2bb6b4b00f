"""Shared test setup: one torch thread (the CI machine has 2 cores and runs 2 workers)."""

import torch

torch.set_num_threads(1)
