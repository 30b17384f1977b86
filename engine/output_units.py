"""Output units read as conditional distributions p(y | x) (section 6.3.2): what lab 4
trains and draws. Data whose true p(y | x) is known for the Bernoulli and softmax units,
and the distribution each trained output layer stands for, evaluated over a grid of x.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autodiff import no_grad
from engine.lab_training import drawn
from engine.nn import MLP


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(a, -500.0, 500.0)))


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def _softmax(a: np.ndarray) -> np.ndarray:
    shifted = np.exp(a - a.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def bernoulli_truth(x: np.ndarray) -> np.ndarray:
    """P(y = 1 | x): rises from 0.05 on the left to 0.95 on the right, never reaching 0 or 1."""
    return 0.05 + 0.9 * _sigmoid(2.0 * np.asarray(x, dtype=np.float64))


def softmax_truth(x: np.ndarray) -> np.ndarray:
    """P(y = k | x) for 3 classes: class 0 on the left, 1 in the middle, 2 on the right."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    scores = np.stack([-2.0 * x, 1.5 - 0.5 * x * x, 2.0 * x], axis=1)
    return _softmax(scores)


def sample_classes(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row drawn from the row's probabilities."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.uniform(0.0, 1.0, (probabilities.shape[0], 1))
    return np.minimum((draws > cumulative).sum(axis=1), probabilities.shape[1] - 1)


def bernoulli_data(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, (size, 1))
    y = (rng.uniform(0.0, 1.0, size) < bernoulli_truth(x[:, 0])).astype(np.float64)
    return x, y


def softmax_data(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, (size, 1))
    return x, sample_classes(softmax_truth(x[:, 0]), rng).astype(np.float64)


def distribution(model: MLP, grid: np.ndarray) -> dict[str, list]:
    """The distribution the model's output layer stands for at each grid point."""
    with no_grad():
        z = model.forward(grid).value
    loss = model.spec.output.loss
    if loss == "bernoulli":
        return {"probability": drawn(_sigmoid(z[:, 0]))}
    if loss == "softmax":
        return {"probabilities": drawn(_softmax(z).T)}
    if loss == "gaussian_learned":
        precision = _softplus(z[:, 1])
        return {"mean": drawn(z[:, 0]), "precision": drawn(precision),
                "spread": drawn(1.0 / np.sqrt(precision))}
    if loss == "mixture":
        k = model.spec.output.components
        precision = _softplus(z[:, 2 * k : 3 * k])
        return {"weights": drawn(_softmax(z[:, :k]).T), "means": drawn(z[:, k : 2 * k].T),
                "spreads": drawn(1.0 / np.sqrt(precision).T)}
    raise ValueError(f"lab 4 draws no distribution for the loss {loss!r}")


def gaussian_nll(mean: np.ndarray, precision: np.ndarray, y: np.ndarray) -> np.ndarray:
    """−log N(y; μ, 1/β) per example, written out from the density."""
    density = np.sqrt(precision / (2.0 * math.pi)) * np.exp(-0.5 * precision * (y - mean) ** 2)
    return -np.log(density)


def mixture_nll(weights: np.ndarray, means: np.ndarray, precisions: np.ndarray,
                y: np.ndarray) -> np.ndarray:
    """−log Σ_i π_i N(y; μ_i, 1/β_i) per example, summing the densities directly;
    arrays (n, components), y (n,)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    density = np.sqrt(precisions / (2.0 * math.pi)) * np.exp(-0.5 * precisions * (y - means) ** 2)
    return -np.log((weights * density).sum(axis=1))
