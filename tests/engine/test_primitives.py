"""Every primitive's VJPs against central finite differences in float64.

First order: ``engine.grad`` against differences of the function. Second order: the
Hessian-vector product from grad of grad against differences of the gradient. Shapes
sweep scalars, vectors, matrices and broadcast pairs (see primitive_cases.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from primitive_cases import CASES, ENGINE, Case, head, primitive_factories

from engine import Tensor, grad, gradcheck, trace
from engine.autodiff import Primitive, as_tensor
from engine.primitives import PRIMITIVES

FIRST_ORDER_TOLERANCE = 1e-6
SECOND_ORDER_TOLERANCE = 1e-6


def _function(case: Case):
    return lambda *inputs: case.build(ENGINE, *inputs)


def _function_with_head(case: Case):
    return lambda *inputs: head(ENGINE, case.build(ENGINE, *inputs))


def test_no_primitive_is_left_untested():
    covered = {case.primitive for case in CASES}
    missing = sorted(set(PRIMITIVES) - covered)
    assert not missing, f"primitives without a gradient test case in primitive_cases.py: {missing}"
    known = set(PRIMITIVES) | set(primitive_factories())
    assert covered <= known, f"cases name unknown primitives: {covered - known}"


def test_no_parametric_primitive_is_left_untested():
    # primitives made per fan-in by a cached factory (unit_sum, stack, ...) are not in
    # the PRIMITIVES table, but the same rule holds for them
    factories = primitive_factories()
    assert factories, "expected the unit-level factories of engine.primitives"
    missing = sorted(set(factories) - {case.primitive for case in CASES})
    assert not missing, f"parametric primitives without a test case: {missing}"


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_records_its_primitive(case: Case):
    leaves = [Tensor(x, requires_grad=True) for x in case.inputs]
    output = case.build(ENGINE, *leaves)
    assert case.primitive in {node["op"] for node in trace(output)}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_first_order_matches_finite_differences(case: Case):
    error = gradcheck.check_grad(_function(case), case.inputs)
    assert error < FIRST_ORDER_TOLERANCE, f"{case.id}: relative error {error:.2e}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_gradient_has_the_input_shape(case: Case):
    gradients, leaves = gradcheck.analytic_grad(_function(case), case.inputs)
    assert [g.shape for g in gradients] == [leaf.shape for leaf in leaves]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_recorded_and_plain_backward_passes_agree(case: Case):
    # grad runs the VJPs on plain arrays, grad(create_graph=True) on recorded Tensors
    plain, _ = gradcheck.analytic_grad(_function(case), case.inputs)
    recorded, _ = gradcheck.analytic_grad(_function(case), case.inputs, create_graph=True)
    for p, r in zip(plain, recorded, strict=True):
        np.testing.assert_allclose(r.value, p.value, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
@pytest.mark.parametrize("seed", [0, 1])
def test_hessian_vector_product_matches_finite_differences(case: Case, seed: int):
    for function in (_function(case), _function_with_head(case)):
        error = gradcheck.check_hvp(function, case.inputs, seed=seed)
        assert error < SECOND_ORDER_TOLERANCE, f"{case.id}: relative error {error:.2e}"


# ----- the checks themselves can fail --------------------------------------------------
_wrong_square = Primitive("wrong_square", np.square, (lambda g, out, x: g * x,))
# right first derivative 2x, but taken from a constant copy of x: grad of grad is lost
_flat_square = Primitive(
    "flat_square",
    np.square,
    (lambda g, out, x: g * (2.0 * (x.value if isinstance(x, Tensor) else x)),),
)


def test_check_grad_catches_a_wrong_vjp():
    inputs = [np.array([0.5, -1.0, 2.0])]
    assert gradcheck.check_grad(lambda x: _wrong_square(x), inputs) > 0.1


def test_check_hvp_catches_a_vjp_that_is_not_differentiable():
    inputs = [np.array([0.5, -1.0, 2.0])]
    assert gradcheck.check_grad(lambda x: _flat_square(x), inputs) < FIRST_ORDER_TOLERANCE
    assert gradcheck.check_hvp(lambda x: _flat_square(x), inputs) > 0.1


def test_relative_error_flags_wrong_sums_nan_and_shape_mismatch():
    def bias_gradient(b):
        return PRIMITIVES["add"](as_tensor(np.zeros((3, 4))), b)

    analytic, _ = gradcheck.analytic_grad(bias_gradient, [np.ones(4)])
    numerical = gradcheck.numerical_grad(bias_gradient, [np.ones(4)])
    assert gradcheck.relative_error(analytic[0].value, numerical[0]) < FIRST_ORDER_TOLERANCE
    # a mean over the batch instead of the sum of Algorithm 6.4 would be caught
    assert gradcheck.relative_error(analytic[0].value / 3.0, numerical[0]) > 0.1
    assert gradcheck.relative_error(np.array([np.nan]), np.array([0.0])) == np.inf
    with pytest.raises(ValueError, match="shapes differ"):
        gradcheck.relative_error(np.zeros(3), np.zeros((3, 1)))


# ----- extremes: saturating units stay finite with the right gradient --------------------
def test_sigmoid_and_softplus_are_stable_at_large_inputs():
    x = Tensor([-1000.0, -40.0, 0.0, 40.0, 1000.0], requires_grad=True)
    sigma = PRIMITIVES["sigmoid"](x)
    zeta = PRIMITIVES["softplus"](x)
    assert np.all(np.isfinite(sigma.value)) and np.all(np.isfinite(zeta.value))
    np.testing.assert_allclose(sigma.value, [0.0, np.exp(-40.0), 0.5, 1.0, 1.0], atol=1e-300)
    np.testing.assert_allclose(zeta.value, [0.0, np.exp(-40.0), np.log(2.0), 40.0, 1000.0])
    (d_sigma,) = grad(sigma.sum(), [x])
    (d_zeta,) = grad(zeta.sum(), [x])
    np.testing.assert_allclose(d_zeta.value, sigma.value)
    np.testing.assert_allclose(d_sigma.value, sigma.value * (1.0 - sigma.value), atol=1e-300)
    assert np.all(np.isfinite(d_sigma.value))


def test_tanh_saturates_with_a_zero_gradient():
    x = Tensor([-1000.0, 1000.0], requires_grad=True)
    (gradient,) = grad(PRIMITIVES["tanh"](x).sum(), [x])
    np.testing.assert_array_equal(gradient.value, [0.0, 0.0])


def test_logsumexp_is_stable_for_huge_logits():
    x = Tensor([[1000.0, 1000.0], [-1000.0, -1000.0], [1000.0, -1000.0]], requires_grad=True)
    out = PRIMITIVES["logsumexp"](x, axis=1)
    np.testing.assert_allclose(out.value, [1000.0 + np.log(2.0), -1000.0 + np.log(2.0), 1000.0])
    (gradient,) = grad(out.sum(), [x])
    np.testing.assert_allclose(gradient.value, [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])


def test_max_sends_the_gradient_to_one_winner_on_ties():
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    (gradient,) = grad(PRIMITIVES["max"](x, axis=1).sum(), [x])
    assert gradient.value.sum(axis=1).tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(gradient.value, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def test_piecewise_linear_units_have_zero_second_derivative():
    x = Tensor([-1.5, -0.5, 0.5, 1.5], requires_grad=True)
    for name in ("relu", "abs", "hard_tanh"):
        (first,) = grad(PRIMITIVES[name](x).sum(), [x], create_graph=True)
        (second,) = grad(first.sum(), [x])
        np.testing.assert_array_equal(second.value, np.zeros(4), err_msg=name)
