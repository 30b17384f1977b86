"""Hidden units and losses of engine.functional: first and second order against finite
differences, numerical stability at extreme logits, and Eq. 6.5."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from functional_cases import FUNCTIONAL_CASES, FunctionalCase

from engine import Tensor, grad, gradcheck
from engine import functional as F
from engine.primitives import PRIMITIVES

FIRST_ORDER_TOLERANCE = 1e-6
SECOND_ORDER_TOLERANCE = 1e-6


def _public_functions() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(F, inspect.isfunction)
        if member.__module__ == F.__name__ and not name.startswith("_")
    }


def test_every_public_function_has_a_case():
    covered = {case.function for case in FUNCTIONAL_CASES}
    missing = sorted(_public_functions() - covered)
    assert not missing, (
        f"engine.functional functions without a case in functional_cases.py: {missing}"
    )


def test_every_hidden_unit_is_a_tested_function():
    covered = {case.function for case in FUNCTIONAL_CASES}
    names = {unit.__name__ for unit in F.HIDDEN_UNITS.values()}
    assert names <= covered


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=lambda case: case.id)
def test_first_order_matches_finite_differences(case: FunctionalCase):
    error = gradcheck.check_grad(case.engine, case.inputs)
    assert error < FIRST_ORDER_TOLERANCE, f"{case.id}: relative error {error:.2e}"


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=lambda case: case.id)
@pytest.mark.parametrize("seed", [0, 1])
def test_hessian_vector_product_matches_finite_differences(case: FunctionalCase, seed: int):
    def with_head(*inputs):
        return PRIMITIVES["sin"](case.engine(*inputs))

    for function in (case.engine, with_head):
        error = gradcheck.check_hvp(function, case.inputs, seed=seed)
        assert error < SECOND_ORDER_TOLERANCE, f"{case.id}: relative error {error:.2e}"


# ----- numerical stability (section 6.2.2: the log undoes the exp) ------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def test_bernoulli_nll_is_finite_and_exact_at_huge_logits():
    logits = np.array([[1000.0], [-1000.0], [1000.0], [-1000.0], [0.0]])
    y = np.array([[1.0], [0.0], [0.0], [1.0], [1.0]])
    z = Tensor(logits, requires_grad=True)
    loss = F.bernoulli_nll(z, y)
    # right and confident: 0; wrong and confident: |z|; undecided: log 2
    np.testing.assert_allclose(loss.item(), (0 + 0 + 1000 + 1000 + np.log(2.0)) / 5)
    (gradient,) = grad(loss, [z])
    # the gradient σ(z) − y does not vanish when the answer is confidently wrong
    np.testing.assert_allclose(gradient.value, (_sigmoid(logits) - y) / 5, atol=1e-15)
    np.testing.assert_allclose(gradient.value[:, 0], [0.0, 0.0, 0.2, -0.2, -0.1], atol=1e-15)
    (first,) = grad(F.bernoulli_nll(z, y), [z], create_graph=True)
    (curvature,) = grad(first.sum(), [z])
    assert np.all(np.isfinite(curvature.value))
    np.testing.assert_allclose(curvature.value[-1], [0.25 / 5])


def test_softmax_nll_is_finite_and_exact_at_huge_logits():
    logits = np.array([[1000.0, -1000.0, 0.0], [1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    labels = np.array([0, 1, 0])
    z = Tensor(logits, requires_grad=True)
    loss = F.softmax_nll(z, labels)
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), (0.0 + 2000.0 + 2000.0) / 3)
    (gradient,) = grad(loss, [z])
    onehot = np.eye(3)[labels]
    softmax = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(gradient.value, (softmax - onehot) / 3, atol=1e-15)


def test_gaussian_nll_keeps_its_gradient_when_the_precision_collapses():
    # β = ζ(raw) ≈ e^raw for very negative raw: −½ log β ≈ −½ raw, a slope of −½ that
    # must survive (it is how a collapsed precision recovers)
    raw = Tensor(np.array([[-40.0], [-60.0]]), requires_grad=True)
    mean = Tensor(np.zeros((2, 1)), requires_grad=True)
    loss = F.gaussian_nll(mean, raw, np.zeros((2, 1)))
    assert np.isfinite(loss.item())
    (gradient,) = grad(loss, [raw])
    np.testing.assert_allclose(gradient.value, [[-0.25], [-0.25]], rtol=1e-9)


def test_softmax_and_log_softmax_are_stable_and_shift_invariant():
    z = np.array([[1000.0, 999.0, -1000.0], [0.0, -1.0, -2000.0]])
    log_p = F.log_softmax(Tensor(z)).value
    assert np.all(np.isfinite(log_p))
    np.testing.assert_allclose(log_p[0], log_p[1], rtol=1e-12)
    np.testing.assert_allclose(F.softmax(Tensor(z)).value.sum(axis=1), [1.0, 1.0])


def test_softmax_nll_gradient_is_softmax_minus_onehot_over_n():
    # Eq. 6.5: ∂J/∂z = (softmax(z) − e_y) / n for the mean over a minibatch
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 4)) * 3.0
    labels = rng.integers(0, 4, size=6)
    z = Tensor(logits, requires_grad=True)
    (gradient,) = grad(F.softmax_nll(z, labels), [z])
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gradient.value, (softmax - np.eye(4)[labels]) / 6, atol=1e-15)


def test_squared_error_gradient_is_the_residual_over_n():
    rng = np.random.default_rng(6)
    prediction, target = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    p = Tensor(prediction, requires_grad=True)
    (gradient,) = grad(F.squared_error(p, target), [p])
    np.testing.assert_allclose(gradient.value, (prediction - target) / 4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: F.squared_error(Tensor(np.zeros((3, 1))), np.zeros((3, 2))), "shape"),
        (lambda: F.bernoulli_nll(Tensor(np.zeros((3, 1))), np.zeros(3)), "shape"),
        (lambda: F.softmax_nll(Tensor(np.zeros((3, 2))), [0, 1, 2]), "labels"),
        (lambda: F.softmax_nll(Tensor(np.zeros((3, 2))), [0, 1]), "labels"),
        (lambda: F.softmax_nll(Tensor(np.zeros((3, 2))), [0, 1, 0.5]), "integer"),
        (lambda: F.squared_error(Tensor(np.zeros((1, 1))), np.array([[np.nan]])), "NaN"),
        (lambda: F.maxout(Tensor(np.zeros((2, 5))), 2), "divisible"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
