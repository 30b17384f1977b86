"""Conditional statistics computed straight from data (section 6.2): the mean and median of
y within bins of x, the targets that squared error and absolute error make a network
estimate. Lab 2 draws them beside the two fits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Binned:
    centres: np.ndarray  # (bins,) the middle of each bin of x
    mean: np.ndarray  # (bins,) mean of y in the bin; NaN where the bin is empty
    median: np.ndarray  # (bins,) median of y in the bin; NaN where the bin is empty
    counts: np.ndarray  # (bins,) examples per bin


def binned_statistics(x: np.ndarray, y: np.ndarray, bins: int, low: float, high: float) -> Binned:
    """Mean and median of ``y`` over ``bins`` equal bins of ``x`` in [low, high]."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if bins < 1 or not high > low:
        raise ValueError("binned_statistics needs bins >= 1 and high > low")
    edges = np.linspace(low, high, bins + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    inside = (x >= low) & (x <= high)
    mean = np.full(bins, np.nan)
    median = np.full(bins, np.nan)
    counts = np.zeros(bins, dtype=np.int64)
    for index in range(bins):
        values = y[inside & (which == index)]
        counts[index] = values.size
        if values.size:
            mean[index] = values.mean()
            median[index] = np.median(values)
    return Binned(0.5 * (edges[:-1] + edges[1:]), mean, median, counts)


def mean_gap(curve: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute distance between two curves where both are defined."""
    keep = np.isfinite(curve) & np.isfinite(reference)
    if not keep.any():
        raise ValueError("the curves share no defined point")
    return float(np.mean(np.abs(curve[keep] - reference[keep])))
