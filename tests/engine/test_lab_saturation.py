"""Lab 3's closed forms (Eqs. 6.5 and 6.7) against the engine's autodiff, finite
differences and torch."""

from __future__ import annotations

import numpy as np
import pytest

from engine import functional as F
from engine.autodiff import Tensor, grad
from engine.saturation import (
    correct_class,
    gradient_curve,
    nll_gradient,
    softmax_squared_error,
    squared_gradient,
    three_blobs,
)


def _cases():
    rng = np.random.default_rng(3)
    logits = rng.normal(0.0, 3.0, (7, 4))
    labels = rng.integers(0, 4, 7)
    return logits, labels


def _per_example_autodiff(loss, logits, labels):
    tensor = Tensor(logits, True)
    # the losses are means over examples: times n gives each example's own gradient
    (gradient,) = grad(loss(tensor, labels), [tensor])
    return gradient.value * logits.shape[0]


def test_nll_gradient_is_the_engines():
    logits, labels = _cases()
    expected = _per_example_autodiff(F.softmax_nll, logits, labels)
    np.testing.assert_allclose(nll_gradient(logits, labels), expected, atol=1e-12)


def test_squared_gradient_is_the_engines_and_finite_differences():
    logits, labels = _cases()
    expected = _per_example_autodiff(softmax_squared_error, logits, labels)
    np.testing.assert_allclose(squared_gradient(logits, labels), expected, atol=1e-12)
    step = 1e-6
    for row in range(logits.shape[0]):
        for column in range(logits.shape[1]):
            plus, minus = logits[row].copy(), logits[row].copy()
            plus[column] += step
            minus[column] -= step
            onehot = np.eye(logits.shape[1])[labels[row]]

            def value(a, onehot=onehot):
                p = np.exp(a - a.max())
                p /= p.sum()
                return ((p - onehot) ** 2).sum()

            numeric = (value(plus) - value(minus)) / (2 * step)
            assert squared_gradient(logits[row:row + 1], labels[row:row + 1])[0, column] == (
                pytest.approx(numeric, abs=1e-7)
            )


def test_against_torch():
    torch = pytest.importorskip("torch")
    logits, labels = _cases()
    a = torch.tensor(logits, requires_grad=True)
    p = torch.softmax(a, dim=1)
    onehot = torch.nn.functional.one_hot(torch.tensor(labels), 4).double()
    ((p - onehot) ** 2).sum().backward()
    np.testing.assert_allclose(squared_gradient(logits, labels), a.grad.numpy(), atol=1e-12)
    b = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(b, torch.tensor(labels), reduction="sum").backward()
    np.testing.assert_allclose(nll_gradient(logits, labels), b.grad.numpy(), atol=1e-12)


def test_a_confidently_wrong_example_gets_minus_one_from_nll_and_almost_nothing_from_squared():
    curve = gradient_curve(np.array([-10.0, 0.0, 10.0]), np.array([0.0, 0.0]))
    assert curve["nll"][0] == pytest.approx(-1.0, abs=1e-4)
    assert abs(curve["squared"][0]) < 1e-3
    # both vanish when the answer is right and sure
    assert abs(curve["nll"][2]) < 1e-3 and abs(curve["squared"][2]) < 1e-3
    # at equal scores (p_y = 1/3), Eq. 6.5 gives p_y - 1 = -2/3
    assert curve["nll"][1] == pytest.approx(-2.0 / 3.0)


def test_correct_class_picks_each_examples_label():
    logits, labels = _cases()
    parts = correct_class(logits, labels)
    rows = np.arange(len(labels))
    np.testing.assert_allclose(parts["score"], logits[rows, labels])
    np.testing.assert_allclose(parts["nll"], parts["probability"] - 1.0)


def test_three_blobs_are_balanced_and_seeded():
    x, y = three_blobs(300, 0.5, seed=1)
    assert x.shape == (300, 2) and np.bincount(y.astype(int)).tolist() == [100, 100, 100]
    np.testing.assert_array_equal(three_blobs(300, 0.5, seed=1)[0], x)
