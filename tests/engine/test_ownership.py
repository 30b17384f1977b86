"""What the faster backward pass (issue 13) must not change: every array ``grad`` returns
is the caller's own (no aliasing of each other, of the seed, of a value or of a view),
gradients summed in place stay right on graphs that fan out, ``ndarray <op> Tensor``
records the Tensor's operation, and the allocator setting follows its switch."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from engine import Tensor, grad
from engine import primitives as P
from tests.conftest import ROOT


def leaf(value) -> Tensor:
    return Tensor(np.asarray(value, dtype=np.float64), requires_grad=True)


def test_the_same_input_twice_gets_two_separate_arrays():
    x = leaf([1.0, 2.0])
    first, second = grad((x * x).sum(), [x, x])
    np.testing.assert_array_equal(first.value, [2.0, 4.0])
    first.value[0] = 100.0
    np.testing.assert_array_equal(second.value, [2.0, 4.0])


def test_an_add_whose_gradient_goes_to_both_inputs_gives_each_its_own_array():
    # add's VJP hands the same array to both parents
    a, b = leaf(np.ones((2, 3))), leaf(np.ones((2, 3)))
    seed = np.arange(6.0).reshape(2, 3).copy()  # an array of its own, not a view
    ga, gb = grad(a + b, [a, b], grad_output=seed)
    np.testing.assert_array_equal(ga.value, seed)
    np.testing.assert_array_equal(gb.value, seed)
    assert not np.shares_memory(ga.value, gb.value)
    assert not np.shares_memory(ga.value, seed) and not np.shares_memory(gb.value, seed)
    ga.value += 1.0
    np.testing.assert_array_equal(seed, np.arange(6.0).reshape(2, 3))


def test_the_gradient_of_an_input_with_respect_to_itself_is_not_the_seed():
    x = leaf([3.0, 4.0])
    seed = np.array([1.0, -1.0])
    (g,) = grad(x, [x], grad_output=seed)
    assert g.value is not seed and not np.shares_memory(g.value, seed)
    g.value[:] = 0.0
    np.testing.assert_array_equal(seed, [1.0, -1.0])


def test_gradients_that_are_views_are_copied_into_writable_arrays():
    x = leaf(np.arange(6.0))
    w = leaf(np.ones((3, 2)))
    (g,) = grad((P.reshape(x, (3, 2)) * w).sum(), [x])  # reshape's VJP returns a view
    np.testing.assert_array_equal(g.value, np.ones(6))
    assert g.value.flags.writeable and g.value.base is None
    y = leaf(np.ones(4))
    (h,) = grad(P.broadcast_to(y, (3, 4)).sum(), [y])
    np.testing.assert_array_equal(h.value, np.full(4, 3.0))
    assert h.value.flags.writeable


def test_a_gradient_never_aliases_a_value_of_the_graph():
    x = leaf([1.0, 2.0, 3.0])
    c = leaf([5.0, 6.0, 7.0])
    gx, gc = grad((x * c).sum(), [x, c])
    np.testing.assert_array_equal(gx.value, c.value)
    assert not np.shares_memory(gx.value, c.value) and not np.shares_memory(gc.value, x.value)


@pytest.mark.parametrize("create_graph", [False, True])
def test_fan_out_sums_in_place_without_touching_shared_gradients(create_graph):
    x = leaf([1.0, -2.0, 0.5])
    a = x * 1.0
    b = a + a  # a gets b's gradient array twice
    c = b + a  # then a gets c's gradient array, which is also b's
    d = c + x + x * 2.0 + x * 3.0  # and x five ways
    (gx,) = grad(d.sum(), [x], create_graph=create_graph)
    np.testing.assert_allclose(gx.value, np.full(3, 9.0))
    ga, gb, gc = grad(d.sum(), [a, b, c], create_graph=create_graph)
    np.testing.assert_allclose(ga.value, np.full(3, 3.0))
    np.testing.assert_allclose(gb.value, np.full(3, 1.0))
    np.testing.assert_allclose(gc.value, np.full(3, 1.0))


def test_grad_of_grad_through_a_square_with_a_constant_and_a_learned_exponent():
    x = leaf([0.5, 1.5])
    (first,) = grad((x**2).sum(), [x], create_graph=True)
    (second,) = grad(first.sum(), [x])
    np.testing.assert_allclose(first.value, 2 * x.value)
    np.testing.assert_allclose(second.value, [2.0, 2.0])
    p = leaf(2.0)  # a learned exponent keeps the general formula's mixed derivative
    (gp,) = grad(grad((x**p).sum(), [x], create_graph=True)[0].sum(), [p])
    # d/dp Σ p x^(p−1) = Σ x^(p−1) (1 + p log x)
    want = np.sum(x.value ** (2.0 - 1.0) * (1.0 + 2.0 * np.log(x.value)))
    np.testing.assert_allclose(gp.value, want)


def test_an_ndarray_or_numpy_scalar_on_the_left_records_the_tensors_operation():
    x = np.ones((4, 2))
    w = leaf(np.full((2, 3), 0.5))
    cases = (
        (x @ w, "matmul"),
        (np.ones(3) + w, "add"),
        (2.0 - w, "subtract"),
        (np.float64(2.0) * w, "multiply"),
        (np.array(3.0) / w, "divide"),
    )
    for result, name in cases:
        assert isinstance(result, Tensor) and result.op.name == name
    (g,) = grad((x @ w).sum(), [w])
    np.testing.assert_array_equal(g.value, np.full((2, 3), 4.0))


def _allocator_applied(extra_env: dict[str, str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    env.update(extra_env)
    code = "import engine, engine.allocator as a; print(a.applied)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_allocator_setting_follows_the_platform_and_its_switches():
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert _allocator_applied({}) == str(glibc)
    assert _allocator_applied({"BACKPROP_LAB_MALLOC": "default"}) == "False"
    assert _allocator_applied({"MALLOC_TRIM_THRESHOLD_": "131072"}) == "False"
