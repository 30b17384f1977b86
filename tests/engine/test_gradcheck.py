"""engine.gradcheck as a public utility (the app's own gradient check may call it)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Tensor, gradcheck


def test_numerical_grad_of_a_known_function_leaves_inputs_untouched():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    y = np.array([1.5, -0.5])
    original = (x.copy(), y.copy())
    gx, gy = gradcheck.numerical_grad(lambda a, b: (a * a * b).sum(), [x, y])
    np.testing.assert_allclose(gx, 2 * x * y, rtol=1e-8)
    np.testing.assert_allclose(gy, (x * x).sum(axis=0), rtol=1e-8)
    np.testing.assert_array_equal(x, original[0])
    np.testing.assert_array_equal(y, original[1])


def test_non_scalar_outputs_are_weighted_the_same_on_both_sides():
    x = np.array([0.3, -0.7, 1.1])
    weights = gradcheck.output_weights((3,))
    assert weights.shape == (3,) and np.all(weights > 0)
    (numerical,) = gradcheck.numerical_grad(lambda a: a.exp(), [x])
    np.testing.assert_allclose(numerical, weights * np.exp(x), rtol=1e-8)
    (analytic,), _ = gradcheck.analytic_grad(lambda a: a.exp(), [x])
    np.testing.assert_allclose(analytic.value, weights * np.exp(x), rtol=1e-14)
    assert gradcheck.check_grad(lambda a: a.exp(), [x]) < 1e-8


def test_tensors_are_accepted_as_inputs_and_left_alone():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert gradcheck.check_grad(lambda a: (a * a).sum(), [x]) < 1e-8
    assert x.grad is None
    np.testing.assert_array_equal(x.value, [1.0, 2.0])


def test_hessian_vector_product_of_a_cubic():
    x = np.array([0.5, -1.5])
    direction = np.array([1.0, 2.0])
    (hvp,) = gradcheck.hessian_vector_product(lambda a: (a * a * a).sum(), [x], [direction])
    np.testing.assert_allclose(hvp, 6 * x * direction)
    (numerical,) = gradcheck.numerical_hvp(lambda a: (a * a * a).sum(), [x], [direction])
    np.testing.assert_allclose(numerical, 6 * x * direction, rtol=1e-8)
    assert gradcheck.check_hvp(lambda a: (a * a * a).sum(), [x]) < 1e-8


def test_relative_error_is_relative_for_large_entries_and_absolute_for_small():
    assert gradcheck.relative_error(np.array([1000.0]), np.array([1001.0])) == pytest.approx(
        1 / 1001
    )
    assert gradcheck.relative_error(np.array([1e-9]), np.array([2e-9])) == pytest.approx(1e-9)
    assert gradcheck.relative_error(np.zeros(0), np.zeros(0)) == 0.0
