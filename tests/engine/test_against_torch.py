"""The engine against PyTorch in float64: values, gradients and Hessian-vector products
of the same graphs must agree to 1e-8 (torch is an optional extra; CI installs it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from functional_cases import FUNCTIONAL_CASES, FunctionalCase
from primitive_cases import CASES, ENGINE, Case, head, torch_ops

from engine import Tensor, grad, gradcheck
from engine import functional as F

torch = pytest.importorskip("torch")

TORCH = torch_ops()
TOLERANCE = 1e-8


def _assert_close(engine_value: Any, torch_value: Any, what: str) -> None:
    expected = (
        torch_value.detach().numpy(force=True) if hasattr(torch_value, "detach") else torch_value
    )
    np.testing.assert_allclose(
        np.asarray(engine_value), expected, rtol=TOLERANCE, atol=TOLERANCE, err_msg=what
    )


def _directions(inputs: Sequence[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    return [rng.standard_normal(np.shape(x)) for x in inputs]


def _torch_grads(output: Any, leaves: list[Any], weights: np.ndarray, create_graph: bool):
    gradients = torch.autograd.grad(
        output,
        leaves,
        grad_outputs=torch.as_tensor(weights),
        create_graph=create_graph,
        allow_unused=True,
    )
    return [torch.zeros_like(x) if g is None else g for g, x in zip(gradients, leaves, strict=True)]


def _torch_hvp(function: Callable, inputs: Sequence[np.ndarray], directions, seed: int):
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    output = function(*leaves)
    weights = gradcheck.output_weights(tuple(output.shape), seed)
    gradients = _torch_grads(output, leaves, weights, create_graph=True)
    directional = sum(
        (g * torch.as_tensor(v)).sum() for g, v in zip(gradients, directions, strict=True)
    )
    if not directional.requires_grad:  # a function linear in every input
        return [np.zeros(np.shape(x)) for x in inputs]
    second = torch.autograd.grad(directional, leaves, allow_unused=True)
    return [
        np.zeros(np.shape(x)) if s is None else s.numpy(force=True)
        for s, x in zip(second, inputs, strict=True)
    ]


def compare(
    engine_function: Callable,
    torch_function: Callable,
    inputs: Sequence[np.ndarray],
    engine_second: Callable | None = None,
    torch_second: Callable | None = None,
) -> None:
    """Values, weighted gradients and Hessian-vector products (of ``*_second`` when given,
    a function whose gradient depends on the inputs) must agree."""
    leaves = [Tensor(x, requires_grad=True) for x in inputs]
    output = engine_function(*leaves)
    torch_leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    torch_output = torch_function(*torch_leaves)
    assert output.shape == tuple(torch_output.shape)
    _assert_close(output.value, torch_output, "value")
    weights = gradcheck.output_weights(output.shape)
    gradients = grad(output, leaves, grad_output=weights)
    torch_gradients = _torch_grads(torch_output, torch_leaves, weights, create_graph=False)
    for i, (g, t) in enumerate(zip(gradients, torch_gradients, strict=True)):
        _assert_close(g.value, t, f"gradient of input {i}")
    pairs = [(engine_function, torch_function)]
    if engine_second is not None:
        pairs.append((engine_second, torch_second))
    for engine_f, torch_f in pairs:
        for seed in (0, 1):
            directions = _directions(inputs, seed)
            hvp = gradcheck.hessian_vector_product(engine_f, inputs, directions, seed)
            torch_hvp = _torch_hvp(torch_f, inputs, directions, seed)
            for i, (h, t) in enumerate(zip(hvp, torch_hvp, strict=True)):
                _assert_close(h, t, f"Hessian-vector product, input {i}, seed {seed}")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_primitive_graphs_agree_with_torch(case: Case):
    compare(
        lambda *xs: case.build(ENGINE, *xs),
        lambda *xs: case.build(TORCH, *xs),
        case.inputs,
        lambda *xs: head(ENGINE, case.build(ENGINE, *xs)),
        lambda *xs: head(TORCH, case.build(TORCH, *xs)),
    )


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=lambda case: case.id)
def test_functional_agrees_with_torch(case: FunctionalCase):
    compare(
        case.engine,
        lambda *xs: case.torch(torch, *xs),
        case.inputs,
        lambda *xs: ENGINE.sin(case.engine(*xs)),
        lambda *xs: torch.sin(case.torch(torch, *xs)),
    )


# ----- a whole network ------------------------------------------------------------------
_rng = np.random.default_rng(42)
_X = _rng.standard_normal((6, 3))
_LABELS = np.array([0, 2, 1, 1, 0, 2])
_PARAMETERS = [
    _rng.standard_normal((3, 5)) * 0.7,  # weights 1
    _rng.standard_normal(5) * 0.1,  # bias 1
    _rng.standard_normal((5, 4)) * 0.7,  # weights 2
    _rng.standard_normal(4) * 0.1,  # bias 2
    _rng.standard_normal((4, 3)) * 0.7,  # weights 3
    _rng.standard_normal(3) * 0.1,  # bias 3
]


def _engine_mlp(w1, b1, w2, b2, w3, b3):
    # written with Tensor operators and methods, the way model code reads
    h1 = (_X @ w1 + b1).tanh()
    h2 = ENGINE.softplus(h1 @ w2 + b2)
    z = h2 @ w3 + b3
    log_p = z - ENGINE.logsumexp(z, 1).reshape(-1, 1)
    return -log_p[np.arange(6), _LABELS].mean()


def _torch_mlp(w1, b1, w2, b2, w3, b3):
    h1 = torch.tanh(torch.as_tensor(_X) @ w1 + b1)
    h2 = torch.nn.functional.softplus(h1 @ w2 + b2)
    z = h2 @ w3 + b3
    return torch.nn.functional.cross_entropy(z, torch.as_tensor(_LABELS))


def _engine_mlp_functional(w1, b1, w2, b2, w3, b3):
    h1 = F.tanh(_X @ w1 + b1)
    h2 = F.relu(h1 @ w2 + b2) + F.leaky_relu(h1 @ w2 - b2, 0.1)
    return F.softmax_nll(h2 @ w3 + b3, _LABELS)


def _torch_mlp_functional(w1, b1, w2, b2, w3, b3):
    functional = torch.nn.functional
    h1 = torch.tanh(torch.as_tensor(_X) @ w1 + b1)
    h2 = torch.relu(h1 @ w2 + b2) + functional.leaky_relu(h1 @ w2 - b2, 0.1)
    return functional.cross_entropy(h2 @ w3 + b3, torch.as_tensor(_LABELS))


def test_mlp_with_label_picking_agrees_with_torch_cross_entropy():
    compare(_engine_mlp, _torch_mlp, _PARAMETERS)


def test_mlp_from_functional_units_agrees_with_torch():
    compare(_engine_mlp_functional, _torch_mlp_functional, _PARAMETERS)


def test_full_hessian_of_a_small_mlp_agrees_with_torch():
    # every column of the Hessian of the loss with respect to the first layer's weights
    w1 = _PARAMETERS[0]
    rest = _PARAMETERS[1:]

    def engine_loss(weights):
        return _engine_mlp(weights, *[Tensor(p) for p in rest])

    def torch_loss(weights):
        return _torch_mlp(weights, *[torch.as_tensor(p) for p in rest])

    torch_hessian = torch.autograd.functional.hessian(torch_loss, torch.as_tensor(w1))
    for column in range(w1.size):
        direction = np.zeros(w1.size)
        direction[column] = 1.0
        (hvp,) = gradcheck.hessian_vector_product(engine_loss, [w1], [direction.reshape(w1.shape)])
        _assert_close(
            hvp,
            torch_hessian.reshape(w1.size, w1.size)[:, column].reshape(w1.shape),
            f"column {column}",
        )
