"""MNIST-1D generated in process (Greydanus & Kobak, 2020, "Scaling down deep learning").

Each example is one of ten hand-made 12-point templates (one per digit) sent through a fixed
chain of random transformations, then resampled to 40 points:

1. pad the template with ``p ~ U{36..60}`` zeros at the end and resample it linearly to
   ``template_len + padding_max = 72`` points;
2. scale the amplitude by ``1 + scale_coeff * (u - 0.5)``, ``u ~ U[0, 1)``;
3. roll it right by ``k ~ U{0..max_translation-1}`` points;
4. where the signal is exactly zero (the padding), put correlated noise
   ``gaussian_filter(corr_noise_scale * N(0, 1), sigma=2)`` (reflect boundaries);
   then add i.i.d. noise ``iid_noise_scale * N(0, 1)`` everywhere;
5. shear: subtract ``c * linspace(-1/2, 1/2)``, ``c = shear_scale * (u - 0.5)``;
6. resample linearly to ``final_seq_length = 40`` points.

The examples are made class by class (``num_samples // 10`` each), shuffled, the whole set is
standardised to mean 0 and std 1, and the first ``train_split`` of it is the training set.
The random draws are made in the order above from one ``numpy.random.RandomState(seed)``, so
``seed=42`` reproduces the public dataset (the ``mnist1d`` package's ``make_dataset``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The paper's defaults (mnist1d.data.get_dataset_args).
NUM_SAMPLES = 5000
TRAIN_SPLIT = 0.8
TEMPLATE_LEN = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
FINAL_SEQ_LENGTH = 40
SEED = 42
_SIGMA = 2.0  # smoothing of the correlated noise, in samples
_EPS = 1e-8  # keeps the template nonzero so that step 4 sees only the padding as zero

_DIGITS = (
    (5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5),
    (5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5),
    (5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5),
    (5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5),
    (5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5),
    (5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5),
    (5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5),
    (5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5),
)


@dataclass(frozen=True)
class Mnist1D:
    """The generated arrays: ``x (n_train, 40)``, ``y (n_train,)``, ``x_test``, ``y_test``, ``t (40,)``."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    t: np.ndarray


def templates() -> tuple[np.ndarray, np.ndarray]:
    """The ten digit templates ``(10, 12)`` (standardised, starting at 0, divided by 6) and their time axis."""
    x = np.asarray(_DIGITS, dtype=np.float64)
    x = x - x.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    x = x - x[:, :1]
    return x / 6.0, np.linspace(-5, 5, TEMPLATE_LEN) / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling of ``x`` to ``n`` points spanning the same interval."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _smooth(x: np.ndarray, sigma: float = _SIGMA, truncate: float = 4.0) -> np.ndarray:
    """Gaussian smoothing with reflected ends (``scipy.ndimage.gaussian_filter`` in 1-d)."""
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(x, radius, mode="symmetric")
    return np.convolve(padded, taps, mode="valid")


def _transform(x: np.ndarray, t: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    low, high = PADDING
    p = low + int(rng.rand() * (high - low + 1))
    dense = TEMPLATE_LEN + high
    x = _resample(np.concatenate([x + _EPS, np.zeros(p)]), dense)  # (72,)
    t = _resample(t, dense)
    x = x * (1 + SCALE_COEFF * (rng.rand() - 0.5))
    k = rng.choice(MAX_TRANSLATION)
    x = np.concatenate([x[-k:], x[:-k]]) if k else x
    mask = x != 0
    x = mask * x + (1 - mask) * _smooth(CORR_NOISE_SCALE * rng.randn(*x.shape))
    x = x + IID_NOISE_SCALE * rng.randn(*x.shape)
    x = x - SHEAR_SCALE * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))
    return _resample(x, FINAL_SEQ_LENGTH), _resample(t, FINAL_SEQ_LENGTH)


def make_mnist1d(num_samples: int = NUM_SAMPLES, train_split: float = TRAIN_SPLIT, seed: int = SEED) -> Mnist1D:
    """Generate MNIST-1D: ``num_samples // 10`` examples of each digit, shuffled and standardised.

    Args:
        num_samples: total number of examples (train + test); the paper uses 5000.
        train_split: fraction of them in the training set (0.8: 4000 train, 1000 test).
        seed: seed of the ``numpy.random.RandomState`` that draws every transformation.

    Shape:
        ``x: (floor(n * train_split), 40)``, ``x_test: (n - floor(n * train_split), 40)``,
        where ``n = 10 * (num_samples // 10)``.

    Examples:
        >>> d = make_mnist1d(num_samples=100)
        >>> d.x.shape, d.x_test.shape, sorted(set(d.y.tolist()) | set(d.y_test.tolist())) == list(range(10))
        ((80, 40), (20, 40), True)
    """
    from ..core.args import as_int
    from ..core.errors import value_error

    num_samples = as_int("make_mnist1d", "num_samples", num_samples, "an int >= 10")
    if num_samples < 10:
        value_error("make_mnist1d", "num_samples", num_samples, "an int >= 10")
    if not 0.0 < float(train_split) < 1.0:
        value_error("make_mnist1d", "train_split", train_split, "a number strictly between 0 and 1")
    rng = np.random.RandomState(seed)
    xt, tt = templates()
    xs, ys = [], []
    new_t = tt
    for label in range(10):
        for _ in range(num_samples // 10):
            x, new_t = _transform(xt[label], tt, rng)
            xs.append(x)
            ys.append(label)
    order = rng.permutation(len(ys))
    x_all = np.stack(xs)[order]  # (n, 40)
    y_all = np.asarray(ys, dtype=np.int64)[order]
    std = x_all.std()
    new_t = new_t / std
    x_all = (x_all - x_all.mean()) / std
    split = int(len(y_all) * train_split)
    return Mnist1D(x_all[:split], y_all[:split], x_all[split:], y_all[split:], new_t)
