"""Why the loss must undo the output unit's exponent (section 6.3.2, the softmax part).

With p = softmax(a) and a one-hot target e_y, the negative log-likelihood −log p_y sends
∂L/∂a = p − e_y (Eq. 6.5): about −1 to the correct class's score a_y whenever p_y ≈ 0. The
squared error ‖p − e_y‖² sends Σ_j 2(p_j − y_j) p_j (1_{i=j} − p_i) (Eq. 6.7), which
vanishes when p_y ≈ 0 however wrong the answer: a confidently wrong example stops
teaching. These closed forms are what lab 3 draws; tests hold them to the engine's
autodiff and to finite differences.
"""

from __future__ import annotations

import numpy as np

from engine import functional as F
from engine.autodiff import Tensor

CONFIDENTLY_WRONG = 0.05  # p_y below this: the network is sure the answer is another class


def _probabilities(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _onehot(labels: np.ndarray, classes: int) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    onehot = np.zeros((labels.size, classes))
    onehot[np.arange(labels.size), labels] = 1.0
    return onehot


def nll_gradient(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """∂(−log p_y)/∂a = p − e_y for each example (Eq. 6.5); logits (n, classes)."""
    logits = np.asarray(logits, dtype=np.float64)
    return _probabilities(logits) - _onehot(labels, logits.shape[1])


def squared_gradient(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """∂‖softmax(a) − e_y‖²/∂a for each example (Eq. 6.7); logits (n, classes)."""
    logits = np.asarray(logits, dtype=np.float64)
    p = _probabilities(logits)
    error = 2.0 * (p - _onehot(labels, logits.shape[1]))
    # Σ_j e_j p_j (1_{i=j} − p_i) = e_i p_i − p_i Σ_j e_j p_j
    return error * p - p * (error * p).sum(axis=1, keepdims=True)


def softmax_squared_error(logits: Tensor, labels: np.ndarray) -> Tensor:
    """Mean over examples of ‖softmax(a) − e_y‖²: squared error on the probabilities."""
    onehot = _onehot(labels, logits.shape[1])
    diff = F.softmax(logits, axis=1) - onehot
    return (diff * diff).sum() / float(logits.shape[0])


def correct_class(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per example: the correct class's score a_y, its probability p_y, and the gradient
    each loss sends to a_y."""
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(logits.shape[0])
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    return {
        "score": logits[rows, labels],
        "probability": _probabilities(logits)[rows, labels],
        "nll": nll_gradient(logits, labels)[rows, labels],
        "squared": squared_gradient(logits, labels)[rows, labels],
    }


def gradient_curve(scores: np.ndarray, others: np.ndarray) -> dict[str, np.ndarray]:
    """∂L/∂a_y as a_y sweeps ``scores`` with the other classes' scores fixed at ``others``:
    the two curves lab 3 draws."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    others = np.broadcast_to(np.asarray(others, dtype=np.float64), (scores.shape[0], len(others)))
    logits = np.concatenate([scores, others], axis=1)
    labels = np.zeros(scores.shape[0], dtype=np.int64)
    return {
        "nll": nll_gradient(logits, labels)[:, 0],
        "squared": squared_gradient(logits, labels)[:, 0],
    }


def three_blobs(size: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian clouds in the plane, one class each, centred on a triangle."""
    rng = np.random.default_rng(seed)
    labels = np.arange(size) % 3
    angles = 2.0 * np.pi * labels / 3.0 + np.pi / 2.0
    centres = 1.8 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x = centres + spread * rng.standard_normal((size, 2))
    order = rng.permutation(size)
    return x[order], labels[order].astype(np.float64)
