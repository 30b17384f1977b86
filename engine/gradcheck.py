"""Check the engine's derivatives against central finite differences.

The chapter's back-propagation is only as good as each vector-Jacobian product; this
module compares them with the definition of the derivative, in float64:

- ``numerical_grad`` differentiates any function of arrays by central differences,
  (f(x + ε e_i) − f(x − ε e_i)) / 2ε, one coordinate at a time;
- ``check_grad`` returns the largest relative error between that and ``engine.grad``;
- ``check_hvp`` does the same one order up: a Hessian-vector product from grad of grad
  against central differences of the gradient along the vector.

A function may return a non-scalar tensor; it is then reduced to the scalar Σ w ⊙ f(x)
with fixed random weights ``w`` (the same on both sides), so every output element
counts and a wrong element cannot hide in a sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.autodiff import Tensor, as_tensor, grad, no_grad

Function = Callable[..., Tensor]


def _as_arrays(inputs: Sequence[Any]) -> list[np.ndarray]:
    return [np.array(x.value if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]


def output_weights(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The fixed weights that reduce an output of ``shape`` to a scalar (ones for a scalar)."""
    if shape == ():
        return np.ones(())
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape)


def _objective(function: Function, arrays: Sequence[np.ndarray], weights: np.ndarray) -> float:
    with no_grad():
        value = function(*(as_tensor(a) for a in arrays)).value
    return float(np.sum(value * weights))


def numerical_grad(
    function: Function, inputs: Sequence[Any], eps: float = 1e-6, seed: int = 0
) -> list[np.ndarray]:
    """Central-difference gradient of Σ w ⊙ function(*inputs) with respect to each input."""
    arrays = _as_arrays(inputs)
    with no_grad():
        shape = function(*(as_tensor(a) for a in arrays)).shape
    weights = output_weights(shape, seed)
    gradients = []
    for array in arrays:
        gradient = np.zeros_like(array)
        flat, flat_gradient = array.reshape(-1), gradient.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            upper = _objective(function, arrays, weights)
            flat[i] = original - eps
            lower = _objective(function, arrays, weights)
            flat[i] = original
            flat_gradient[i] = (upper - lower) / (2.0 * eps)
        gradients.append(gradient)
    return gradients


def analytic_grad(
    function: Function, inputs: Sequence[Any], seed: int = 0, create_graph: bool = False
) -> tuple[list[Tensor], list[Tensor]]:
    """``engine.grad`` of Σ w ⊙ function(*inputs): returns (gradients, input leaves)."""
    leaves = [Tensor(a, requires_grad=True) for a in _as_arrays(inputs)]
    output = function(*leaves)
    weights = as_tensor(output_weights(output.shape, seed))
    return grad(output, leaves, create_graph=create_graph, grad_output=weights), leaves


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> float:
    """Largest |a − n| / max(1, |a|, |n|): relative for large entries, absolute for small."""
    analytic, numerical = np.asarray(analytic), np.asarray(numerical)
    if analytic.shape != numerical.shape:
        raise ValueError(f"gradient shapes differ: {analytic.shape} and {numerical.shape}")
    if analytic.size == 0:
        return 0.0
    scale = np.maximum(1.0, np.maximum(np.abs(analytic), np.abs(numerical)))
    error = np.abs(analytic - numerical) / scale
    return float(np.max(np.where(np.isnan(error), np.inf, error)))


def check_grad(
    function: Function, inputs: Sequence[Any], eps: float = 1e-6, seed: int = 0
) -> float:
    """Largest relative error between ``engine.grad`` and central differences."""
    analytic, _ = analytic_grad(function, inputs, seed)
    numerical = numerical_grad(function, inputs, eps, seed)
    return max(
        (relative_error(a.value, n) for a, n in zip(analytic, numerical, strict=True)),
        default=0.0,
    )


def hessian_vector_product(
    function: Function, inputs: Sequence[Any], directions: Sequence[Any], seed: int = 0
) -> list[np.ndarray]:
    """H v for the Hessian of Σ w ⊙ function(*inputs), by differentiating ∇f · v again."""
    gradients, leaves = analytic_grad(function, inputs, seed, create_graph=True)
    directional = None
    for gradient, direction in zip(gradients, _as_arrays(directions), strict=True):
        term = (gradient * as_tensor(direction)).sum()
        directional = term if directional is None else directional + term
    if directional is None:
        return []
    return [g.value for g in grad(directional, leaves)]


def numerical_hvp(
    function: Function,
    inputs: Sequence[Any],
    directions: Sequence[Any],
    eps: float = 1e-5,
    seed: int = 0,
) -> list[np.ndarray]:
    """H v by central differences of the (analytic) gradient along v."""
    arrays, steps = _as_arrays(inputs), _as_arrays(directions)
    upper, _ = analytic_grad(
        function, [a + eps * v for a, v in zip(arrays, steps, strict=True)], seed
    )
    lower, _ = analytic_grad(
        function, [a - eps * v for a, v in zip(arrays, steps, strict=True)], seed
    )
    return [(u.value - l.value) / (2.0 * eps) for u, l in zip(upper, lower, strict=True)]


def check_hvp(
    function: Function,
    inputs: Sequence[Any],
    directions: Sequence[Any] | None = None,
    eps: float = 1e-5,
    seed: int = 0,
) -> float:
    """Largest relative error of the grad-of-grad Hessian-vector product against central
    differences of the gradient; random directions when none are given."""
    arrays = _as_arrays(inputs)
    if directions is None:
        rng = np.random.default_rng(seed + 1)
        directions = [rng.standard_normal(a.shape) for a in arrays]
    analytic = hessian_vector_product(function, arrays, directions, seed)
    numerical = numerical_hvp(function, arrays, directions, eps, seed)
    return max(
        (relative_error(a, n) for a, n in zip(analytic, numerical, strict=True)), default=0.0
    )
