"""engine.curvature against independent computations: Hessian-vector products against
central differences of the engine's gradient, the full Hessian against finite differences
and (where torch is installed) torch's Hessian, Lanczos against numpy's eigvalsh."""

from __future__ import annotations

import numpy as np
import pytest

from engine import grad
from engine.curvature import (
    HessianVectorProduct,
    filter_normalized_direction,
    flatten,
    full_hessian,
    hessian_vector_product,
    lanczos,
    unflatten,
)
from engine.datasets import make_dataset
from engine.nn import MLP
from engine.spec import Config

# small nets with smooth units (finite differences need no kinks), several outputs/losses
CONFIGS = {
    "tanh-bernoulli-l2": (
        {"layers": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "tanh"}]},
        {"name": "circle", "size": 40, "noise": 0.2},
        0.01,
    ),
    "softplus-softmax": (
        {
            "layers": [{"units": 4, "activation": "softplus"}],
            "output": {"loss": "softmax"},
            "features": ["x1", "x2", "x1_x2"],
        },
        {"name": "spiral_multiclass", "size": 30, "classes": 3},
        0.0,
    ),
    "sigmoid-gaussian-learned": (
        {
            "layers": [{"units": 3, "activation": "sigmoid"}],
            "output": {"loss": "gaussian_learned"},
            "features": ["x1"],
        },
        {"name": "heteroscedastic_1d", "size": 30, "noise": 0.3},
        0.0,
    ),
    "rbf-mixture": (
        {
            "layers": [{"units": 3, "activation": "rbf"}],
            "output": {"loss": "mixture", "components": 2},
            "features": ["x1"],
        },
        {"name": "inverse_sine", "size": 30, "noise": 0.1},
        0.0,
    ),
}


def _problem(name: str):
    model_raw, data_raw, l2 = CONFIGS[name]
    config = Config.from_dict({"model": {**model_raw, "seed": 3}, "data": data_raw})
    dataset = make_dataset(config.data)
    model = MLP(config.model, dataset.input_dim, max(dataset.classes, 2))
    return model, dataset.x_train, dataset.y_train, l2


def _gradient_at(model: MLP, x, y, l2: float, theta: np.ndarray) -> np.ndarray:
    params = model.parameters()
    saved = [p.value for p in params]
    for p, value in zip(params, unflatten(theta.copy(), [p.shape for p in params])):
        p.value = value
    try:
        return flatten([g.value for g in grad(model.cost(x, y, l2=l2), params)])
    finally:
        for p, value in zip(params, saved):
            p.value = value


def _operator(model: MLP, x, y, l2: float) -> HessianVectorProduct:
    return HessianVectorProduct(model.cost(x, y, l2=l2), model.parameters())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_hvp_matches_central_differences_of_the_gradient(name: str) -> None:
    model, x, y, l2 = _problem(name)
    theta = flatten([p.value for p in model.parameters()])
    operator = _operator(model, x, y, l2)
    rng = np.random.default_rng(0)
    epsilon = 1e-5
    for _ in range(3):
        v = rng.standard_normal(theta.size)
        exact = operator(v)
        plus = _gradient_at(model, x, y, l2, theta + epsilon * v)
        minus = _gradient_at(model, x, y, l2, theta - epsilon * v)
        estimate = (plus - minus) / (2 * epsilon)
        scale = max(1.0, float(np.abs(exact).max()))
        np.testing.assert_allclose(exact, estimate, rtol=0, atol=1e-6 * scale)
    # the one-shot function agrees with the operator
    v = rng.standard_normal(theta.size)
    np.testing.assert_allclose(
        hessian_vector_product(model.cost(x, y, l2=l2), model.parameters(), v), operator(v)
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_full_hessian_is_symmetric_and_matches_finite_differences(name: str) -> None:
    model, x, y, l2 = _problem(name)
    operator = _operator(model, x, y, l2)
    hessian = full_hessian(operator, operator.size)
    assert hessian.shape == (operator.size, operator.size)
    assert operator.calls == operator.size
    scale = max(1.0, float(np.abs(hessian).max()))
    np.testing.assert_allclose(hessian, hessian.T, rtol=0, atol=1e-12 * scale)
    theta = flatten([p.value for p in model.parameters()])
    epsilon = 1e-5
    estimate = np.empty_like(hessian)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = epsilon
        plus = _gradient_at(model, x, y, l2, theta + step)
        minus = _gradient_at(model, x, y, l2, theta - step)
        estimate[:, i] = (plus - minus) / (2 * epsilon)
    np.testing.assert_allclose(hessian, estimate, rtol=0, atol=1e-6 * scale)
    # not a trivial matrix: the net's cost curves in many directions
    assert np.count_nonzero(np.abs(hessian) > 1e-6 * scale) > operator.size


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_lanczos_top_k_matches_eigvalsh_of_the_full_hessian(name: str) -> None:
    model, x, y, l2 = _problem(name)
    operator = _operator(model, x, y, l2)
    hessian = full_hessian(operator, operator.size)
    expected = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))[::-1]
    steps: list[int] = []
    result = lanczos(
        operator,
        operator.size,
        k=5,
        iterations=operator.size,
        seed=1,
        callback=lambda step, values: steps.append(step),
    )
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(result.eigenvalues, expected[:5], rtol=0, atol=1e-8 * scale)
    assert steps == list(range(1, result.iterations + 1))
    # the Ritz vectors are eigenvectors: H y = θ y
    for value, vector in zip(result.eigenvalues, result.vectors.T):
        np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-10)
        np.testing.assert_allclose(hessian @ vector, value * vector, atol=1e-6 * scale)


def test_lanczos_finds_the_extreme_eigenvalues_in_few_steps() -> None:
    # a known spectrum with a clear top: the largest converge long before n steps
    rng = np.random.default_rng(4)
    n = 300
    basis, _ = np.linalg.qr(rng.standard_normal((n, n)))
    spectrum = np.concatenate([[50.0, 40.0, 30.0], rng.uniform(-1.0, 1.0, n - 3)])
    matrix = basis @ np.diag(spectrum) @ basis.T
    result = lanczos(lambda v: matrix @ v, n, k=3, iterations=40, seed=0)
    assert result.iterations == 40
    np.testing.assert_allclose(result.eigenvalues, [50.0, 40.0, 30.0], rtol=1e-9)
    assert np.all(result.residuals < 1e-6)


def test_lanczos_stops_on_an_invariant_subspace_without_spurious_copies() -> None:
    # three distinct eigenvalues: the Krylov space has dimension 3, so Lanczos stops there
    n = 60
    diagonal = np.repeat([5.0, 2.0, -1.0], 20)
    result = lanczos(lambda v: diagonal * v, n, k=10, iterations=50, seed=2)
    assert result.iterations == 3
    np.testing.assert_allclose(result.eigenvalues, [5.0, 2.0, -1.0], atol=1e-10)


def test_lanczos_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k must be"):
        lanczos(lambda v: v, 3, k=0, iterations=3)
    with pytest.raises(ValueError, match="at least one parameter"):
        lanczos(lambda v: v, 0, k=1, iterations=3)
    with pytest.raises(ValueError, match="non-finite product at step 1"):
        lanczos(lambda v: v * np.nan, 3, k=1, iterations=3)


def test_hvp_rejects_a_vector_of_the_wrong_size_and_a_non_scalar_cost() -> None:
    model, x, y, l2 = _problem("tanh-bernoulli-l2")
    operator = _operator(model, x, y, l2)
    with pytest.raises(ValueError, match="entries"):
        operator(np.zeros(operator.size + 1))
    with pytest.raises(ValueError, match="scalar"):
        HessianVectorProduct(model.forward(x), model.parameters())


def test_flatten_and_unflatten_round_trip() -> None:
    arrays = [np.arange(6.0).reshape(2, 3), np.array([7.0, 8.0]), np.array([[9.0]])]
    vector = flatten(arrays)
    assert vector.tolist() == [0, 1, 2, 3, 4, 5, 7, 8, 9]
    for a, b in zip(arrays, unflatten(vector, [a.shape for a in arrays])):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="cannot fill"):
        unflatten(vector[:-1], [a.shape for a in arrays])


def test_filter_normalised_direction_scales_each_unit_to_its_weights() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(5, 4)) * np.array([0.1, 1.0, 10.0, 3.0])  # columns differ
    bias = np.array([0.5, -2.0, 0.0, 1.0])
    direction = filter_normalized_direction([weights, bias], np.random.default_rng(1))
    np.testing.assert_allclose(
        np.linalg.norm(direction[0], axis=0), np.linalg.norm(weights, axis=0), rtol=1e-12
    )
    assert not np.allclose(direction[0] / weights, (direction[0] / weights)[0, 0])  # random
    np.testing.assert_array_equal(direction[1], np.zeros(4))
    with_biases = filter_normalized_direction(
        [weights, bias], np.random.default_rng(1), biases=True
    )
    np.testing.assert_allclose(np.abs(with_biases[1]), np.abs(bias))
    # the same seed gives the same direction
    again = filter_normalized_direction([weights, bias], np.random.default_rng(1))
    np.testing.assert_array_equal(again[0], direction[0])


# ----- against torch (float64) -------------------------------------------------------
def test_full_hessian_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    model, x, y, l2 = _problem("tanh-bernoulli-l2")
    params = model.parameters()
    operator = _operator(model, x, y, l2)
    hessian = full_hessian(operator, operator.size)
    shapes = [p.shape for p in params]
    features = torch.tensor(model.features(x))
    target = torch.tensor(y).reshape(-1, 1)

    def cost(theta):  # the same net written directly in torch
        w1, b1, w2, b2, w3, b3 = [
            theta[start : start + int(np.prod(s))].reshape(s)
            for start, s in zip(np.cumsum([0] + [int(np.prod(s)) for s in shapes])[:-1], shapes)
        ]
        h = torch.tanh(features @ w1 + b1)
        h = torch.tanh(h @ w2 + b2)
        z = h @ w3 + b3
        loss = (torch.nn.functional.softplus(z, threshold=50) - target * z).mean()
        return loss + 0.5 * l2 * sum((w * w).sum() for w in (w1, w2, w3))

    theta = torch.tensor(flatten([p.value for p in params]))
    expected = torch.autograd.functional.hessian(cost, theta).numpy()
    np.testing.assert_allclose(hessian, expected, rtol=0, atol=1e-10)
    top = lanczos(operator, operator.size, k=3, iterations=operator.size, seed=0)
    np.testing.assert_allclose(top.eigenvalues, np.linalg.eigvalsh(expected)[::-1][:3], atol=1e-9)
