"""Hidden units and output units/losses of the chapter, built from engine primitives.

Every function takes and returns ``Tensor``s; each is a short composition of the
primitives, so first and second derivatives come from the primitives' VJPs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine import primitives as P
from engine.autodiff import Tensor, as_tensor, unary_operator

# ----- hidden units ----------------------------------------------------------------


def relu(a: Tensor) -> Tensor:
    """Rectified linear unit g(a) = max(0, a)."""
    return P.relu(a)


def leaky_relu(a: Tensor, slope: float = 0.01) -> Tensor:
    """max(0, a) + slope · min(0, a): a small fixed slope for negative inputs."""
    return P.relu(a) - slope * P.relu(-a)


def prelu(a: Tensor, slope: Tensor) -> Tensor:
    """Parametric ReLU: like leaky ReLU but the negative slope α is learned."""
    return P.relu(a) - slope * P.relu(-a)


def sigmoid(a: Tensor) -> Tensor:
    """Logistic sigmoid σ(a) = 1 / (1 + e^−a)."""
    return P.sigmoid(a)


# the operator itself (one Python frame per call, as for ``a.tanh()``)
tanh = unary_operator(P.tanh)
tanh.__doc__ = """tanh(a), the zero-centred sigmoid: tanh(a) = 2σ(2a) − 1."""


def softplus(a: Tensor) -> Tensor:
    """ζ(a) = log(1 + e^a), a smooth version of the rectifier."""
    return P.softplus(a)


def hard_tanh(a: Tensor) -> Tensor:
    """max(−1, min(1, a)): piecewise-linear and saturating."""
    return P.hard_tanh(a)


def absolute(a: Tensor) -> Tensor:
    """Absolute-value rectification |a|."""
    return P.absolute(a)


def identity(a: Tensor) -> Tensor:
    """A linear unit: h = a."""
    return a


def maxout(a: Tensor, pieces: int) -> Tensor:
    """Maxout: the last axis holds ``units × pieces`` pre-activations; each unit keeps
    the largest of its ``pieces`` (a learned piecewise-linear convex function)."""
    if pieces < 1 or a.shape[-1] % pieces:
        raise ValueError(
            f"maxout needs a last dimension divisible by pieces={pieces}, got shape {a.shape}"
        )
    grouped = a.reshape(a.shape[:-1] + (a.shape[-1] // pieces, pieces))
    return P.max_(grouped, axis=-1)


def rbf(x: Tensor, centres: Tensor, widths: Tensor) -> Tensor:
    """Gaussian radial basis units h_i = exp(−‖x − w_i‖² / σ_i²).

    ``x`` is (n, d), ``centres`` is (d, units) like a weight matrix, ``widths`` is (units,).
    """
    diff = x.reshape(x.shape + (1,)) - centres.reshape((1,) + centres.shape)
    squared = (diff * diff).sum(axis=1)
    return P.exp(-squared / (widths * widths))


def log_softmax(z: Tensor, axis: int = -1) -> Tensor:
    """log softmax(z)_i = z_i − log Σ_j exp(z_j), computed stably."""
    lse = P.logsumexp(z, axis=axis)
    return z - _keep(lse, axis, z.ndim)


def softmax(z: Tensor, axis: int = -1) -> Tensor:
    return P.exp(log_softmax(z, axis))


def _keep(reduced: Tensor, axis: int, ndim: int) -> Tensor:
    axis = axis % ndim
    shape = list(reduced.shape)
    shape.insert(axis, 1)
    return reduced.reshape(tuple(shape))


HIDDEN_UNITS = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "prelu": prelu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softplus": softplus,
    "hard_tanh": hard_tanh,
    "abs": absolute,
    "maxout": maxout,
    "rbf": rbf,
    "linear": identity,
}

# ----- losses (means over the examples of a minibatch) ------------------------------


def _targets(y: Any) -> Tensor:
    target = y if isinstance(y, Tensor) else as_tensor(y)
    if not np.all(np.isfinite(target.value)):
        raise ValueError("targets contain NaN or infinity")
    return target


def _check_same_shape(prediction: Tensor, target: Tensor, loss: str) -> None:
    if prediction.shape != target.shape:
        raise ValueError(
            f"{loss}: prediction shape {prediction.shape} does not match "
            f"target shape {target.shape}"
        )


def squared_error(prediction: Tensor, y: Any) -> Tensor:
    """Mean squared error ½‖f(x) − y‖²: the Gaussian NLL with unit precision, up to a
    constant; its minimiser is the conditional mean."""
    target = _targets(y)
    _check_same_shape(prediction, target, "squared_error")
    diff = prediction - target
    return 0.5 * (diff * diff).sum() / float(prediction.shape[0])


def absolute_error(prediction: Tensor, y: Any) -> Tensor:
    """Mean absolute error ‖f(x) − y‖₁: the Laplace NLL; its minimiser is the median."""
    target = _targets(y)
    _check_same_shape(prediction, target, "absolute_error")
    return P.absolute(prediction - target).sum() / float(prediction.shape[0])


def bernoulli_nll(logits: Tensor, y: Any) -> Tensor:
    """Eq. 6.3: −log P(y | x) for a sigmoid output p = σ(z), from the logit z.

    −log σ(z) for y = 1 and −log(1 − σ(z)) for y = 0 combine into ζ(z) − y z, which
    never takes the log of a rounded 0 and keeps a gradient σ(z) − y that does not
    vanish when the answer is confidently wrong.
    """
    target = _targets(y)
    _check_same_shape(logits, target, "bernoulli_nll")
    return P.bernoulli_nll(logits, target)


def softmax_nll(logits: Tensor, labels: Any) -> Tensor:
    """Softmax output with integer labels: −log softmax(z)_y = log Σ exp(z) − z_y.

    Its gradient with respect to z is p − e_y (Eq. 6.5), divided by the batch size.
    """
    labels = np.asarray(labels.value if isinstance(labels, Tensor) else labels)
    if logits.ndim != 2:
        raise ValueError(f"softmax_nll expects logits of shape (n, classes), got {logits.shape}")
    labels = labels.reshape(-1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"softmax_nll: {labels.shape[0]} labels for {logits.shape[0]} rows of logits"
        )
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise ValueError("softmax_nll labels must be integers")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"softmax_nll labels must lie in [0, {logits.shape[1] - 1}]")
    onehot = np.zeros(logits.shape)
    onehot[np.arange(logits.shape[0]), labels] = 1.0
    return P.softmax_nll(logits, onehot)


_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_nll(mean: Tensor, raw_precision: Tensor, y: Any) -> Tensor:
    """Heteroscedastic Gaussian: −log N(y; μ, β⁻¹) with a learned diagonal precision
    β = ζ(raw) (softplus keeps it positive).  Per dimension:
    ½ β (y − μ)² − ½ log β + ½ log 2π.
    """
    target = _targets(y)
    _check_same_shape(mean, target, "gaussian_nll")
    _check_same_shape(raw_precision, target, "gaussian_nll (precision)")
    precision = P.softplus(raw_precision)
    diff = target - mean
    per_dim = 0.5 * precision * diff * diff - 0.5 * P.log(precision) + _HALF_LOG_TWO_PI
    return per_dim.sum() / float(mean.shape[0])


def fixed_gaussian_nll(mean: Tensor, y: Any, precision: float = 1.0) -> Tensor:
    """Gaussian with a fixed precision β: ½ β (y − μ)² − ½ log β + ½ log 2π."""
    target = _targets(y)
    _check_same_shape(mean, target, "fixed_gaussian_nll")
    diff = target - mean
    constant = -0.5 * math.log(precision) + _HALF_LOG_TWO_PI
    return (0.5 * precision * diff * diff + constant).sum() / float(mean.shape[0])


def mixture_nll(weight_logits: Tensor, means: Tensor, raw_precisions: Tensor, y: Any) -> Tensor:
    """Mixture density network output for a scalar target.

    ``weight_logits``, ``means`` and ``raw_precisions`` are (n, components): mixture
    weights by softmax, precisions by softplus. −log Σ_i π_i N(y; μ_i, β_i⁻¹) is
    computed with log-sum-exp so that far-away components do not underflow.
    """
    target = _targets(y)
    if target.ndim == 1:
        target = target.reshape((target.shape[0], 1))
    if target.shape != (means.shape[0], 1):
        raise ValueError(
            f"mixture_nll expects targets of shape (n, 1) for n={means.shape[0]}, "
            f"got {target.shape}"
        )
    if not (weight_logits.shape == means.shape == raw_precisions.shape):
        raise ValueError(
            "mixture_nll: weights, means and precisions must share a shape, got "
            f"{weight_logits.shape}, {means.shape}, {raw_precisions.shape}"
        )
    log_weights = log_softmax(weight_logits, axis=1)
    precision = P.softplus(raw_precisions)
    diff = target - means
    log_density = 0.5 * P.log(precision) - _HALF_LOG_TWO_PI - 0.5 * precision * diff * diff
    return -P.logsumexp(log_weights + log_density, axis=1).sum() / float(means.shape[0])
