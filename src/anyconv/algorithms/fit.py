"""Fitting cost-model coefficients to measured times (numpy only): ``anyconv tune`` and ``benchmarks/fit_auto.py``.

Each algorithm's predicted time is linear in its named features (``cost_features``), so its
coefficients are fitted by non-negative least squares **on relative error**: row ``i`` is
``features_i / t_i`` and the target 1, so a 0.1 ms call weighs as much as a 100 ms one. Columns are
scaled to a maximum of 1 first (features span 1 to 1e10). :func:`nnls` is Lawson and Hanson's
active-set method (as ``scipy.optimize.nnls``), written here so that the package needs numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

Row = tuple[Mapping[str, float], float]  # (features, measured ms)


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """``argmin ||a x - b||`` subject to ``x >= 0`` (Lawson & Hanson, *Solving Least Squares Problems*, 1974).

    Examples:
        >>> import numpy as np
        >>> nnls(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([2.0, -1.0])).tolist()
        [2.0, 0.0]
    """
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tol = 10 * np.finfo(float).eps * max(m, n) * max(1.0, float(np.abs(a).sum(axis=0).max(initial=0.0)))
    grad = a.T @ (b - a @ x)
    limit = max_iter or 3 * n + 10
    for _ in range(limit):
        if passive.all() or not (grad[~passive] > tol).any():
            break
        passive[int(np.argmax(np.where(passive, -np.inf, grad)))] = True
        for _ in range(limit):
            s = np.zeros(n)
            s[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (s[passive] > tol).all():
                break
            bad = passive & (s <= tol)
            alpha = float(np.min(x[bad] / np.maximum(x[bad] - s[bad], 1e-300)))
            x = x + alpha * (s - x)
            passive &= x > tol
            x[~passive] = 0.0
        x = s
        grad = a.T @ (b - a @ x)
    return np.maximum(x, 0.0)


def predict(coef: Mapping[str, float], feats: Mapping[str, float]) -> float:
    """``sum(coef[f] * feats[f])`` (a feature without a coefficient costs nothing)."""
    return sum(coef.get(k, 0.0) * v for k, v in feats.items())


def relative_errors(coef: Mapping[str, float], rows: Sequence[Row]) -> list[float]:
    """``|predicted / measured - 1|`` per row."""
    return [abs(predict(coef, f) / t - 1.0) for f, t in rows]


def fit_nnls(rows: Sequence[Row]) -> dict[str, float]:
    """Coefficients fitted to ``rows`` by NNLS on relative error (features named by the first row)."""
    names = list(rows[0][0])
    a = np.array([[f.get(k, 0.0) for k in names] for f, _ in rows], dtype=float)
    t = np.array([t for _, t in rows], dtype=float)
    scale = a.max(axis=0)
    scale[scale <= 0] = 1.0
    sol = nnls((a / scale) / t[:, None], np.ones_like(t))
    return {k: float(v) for k, v in zip(names, sol / scale)}


def fit_scale(base: Mapping[str, float], rows: Sequence[Row]) -> float:
    """The factor ``s`` minimising the relative error of ``s * base``'s predictions (1 without rows)."""
    r = [predict(base, f) / t for f, t in rows]
    den = sum(v * v for v in r)
    return sum(r) / den if den > 0 else 1.0


def fit_algorithm(base: Mapping[str, float] | None, rows: Sequence[Row], min_rows_per_feature: int = 3
                  ) -> tuple[dict[str, float], str]:
    """Coefficients for one algorithm and how they were made.

    ``"nnls"``: a full fit, when there are at least ``min_rows_per_feature`` rows per feature the rows
    exercise and it predicts better than a scaled ``base`` (features the rows never exercise keep
    ``base``'s coefficient times the scale); ``"scaled"``: ``base`` times one factor (too few rows, or
    the full fit no better); ``"nnls (no base)"``: no ``base`` to scale.
    """
    s = fit_scale(base, rows) if base else 1.0
    scaled = {k: s * v for k, v in (base or {}).items()}
    used = [k for k in rows[0][0] if any(f.get(k, 0.0) for f, _ in rows)] if rows else []
    if not rows or (base and len(rows) < min_rows_per_feature * max(1, len(used))):
        return scaled, "scaled"
    full = fit_nnls(rows)
    for k in rows[0][0]:
        if k not in used and k in scaled:
            full[k] = scaled[k]
    if not base:
        return full, "nnls (no base)"
    if np.median(relative_errors(full, rows)) < np.median(relative_errors(scaled, rows)):
        return full, "nnls"
    return scaled, "scaled"


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive values (``nan`` for none)."""
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else float("nan")


def regret(picks: Sequence[tuple[str, Mapping[str, float]]]) -> tuple[float, float, int]:
    """``(geometric mean, worst, hits)`` of pick's time / fastest time over ``(pick, times)`` pairs."""
    ratios = [times[p] / min(times.values()) for p, times in picks]
    hits = sum(r == 1.0 for r in ratios)
    return geomean(ratios), max(ratios, default=float("nan")), hits
