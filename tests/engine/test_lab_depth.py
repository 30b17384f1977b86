"""engine.depth: parameter counts against the built nets, and the curvature summary
against a Hessian built by central differences of the gradient (an independent
computation: first derivatives only), the slice's curvature against the top eigenvalue."""

from __future__ import annotations

import numpy as np
import pytest

from engine.autodiff import grad
from engine.curvature import flatten, unflatten
from engine.depth import (
    MAX_EXACT_PARAMETERS,
    NetSetting,
    compare_depths,
    curvature,
    fit,
    largest_exact_width,
    parameter_count,
    width_for_budget,
)
from engine.nn import MLP


@pytest.mark.parametrize("input_dim,depth,width", [(1, 1, 5), (1, 3, 4), (2, 2, 7), (2, 4, 1)])
def test_parameter_count_matches_the_built_net(input_dim, depth, width):
    setting = NetSetting(target="sine_1d" if input_dim == 1 else "ripple_2d", depth=depth,
                         width=width)
    config = setting.config()
    model = MLP(config.model, input_dim, 2)
    assert parameter_count(input_dim, depth, width) == sum(p.value.size for p in
                                                           model.parameters())


@pytest.mark.parametrize("budget", [8, 20, 61, 300])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_width_for_budget_is_the_widest_that_fits(budget, depth):
    width = width_for_budget(budget, depth, 1)
    if width is None:
        assert parameter_count(1, depth, 1) > budget
    else:
        assert parameter_count(1, depth, width) <= budget < parameter_count(1, depth, width + 1)


def finite_difference_hessian(fitted, h=1e-5):
    model, data = fitted.model, fitted.dataset
    params = model.parameters()
    shapes = [p.shape for p in params]
    theta = flatten([p.value for p in params])

    def gradient(vector):
        for p, value in zip(params, unflatten(vector, shapes)):
            p.value = value.copy()
        return flatten([g.value for g in grad(model.cost(data.x_train, data.y_train), params)])

    columns = []
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        columns.append((gradient(theta + step) - gradient(theta - step)) / (2 * h))
    gradient(theta)  # put the weights back
    hessian = np.array(columns).T
    return 0.5 * (hessian + hessian.T)


def test_curvature_matches_a_finite_difference_hessian():
    fitted = fit(NetSetting(depth=2, width=4, steps=300, size=60))
    result = curvature(fitted, k=4, iterations=40)
    expected = np.linalg.eigvalsh(finite_difference_hessian(fitted))[::-1][:4]
    np.testing.assert_allclose(result["exact"], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result["eigenvalues"], expected, rtol=1e-5, atol=1e-7)
    assert result["parameters"] == parameter_count(1, 2, 4)


def test_the_slice_bends_like_the_top_eigenvalue():
    fitted = fit(NetSetting(depth=1, width=6, steps=400, size=60))
    result = curvature(fitted, k=1, iterations=40, slice_points=41, span=1e-3)
    alphas = np.array(result["slice"]["alphas"])
    cost = np.array(result["slice"]["cost"])
    middle = len(alphas) // 2
    assert alphas[middle] == 0.0
    step = alphas[1] - alphas[0]
    second = (cost[middle + 1] - 2 * cost[middle] + cost[middle - 1]) / step**2
    assert second == pytest.approx(result["eigenvalues"][0], rel=1e-3)
    assert cost[middle] == pytest.approx(result["cost"])
    np.testing.assert_allclose(result["slice"]["quadratic"], cost, rtol=1e-4, atol=1e-9)


def test_the_weights_are_unchanged_after_the_slice():
    fitted = fit(NetSetting(depth=1, width=3, steps=50, size=40))
    before = [p.value.copy() for p in fitted.model.parameters()]
    curvature(fitted, k=2, iterations=10)
    for old, p in zip(before, fitted.model.parameters()):
        np.testing.assert_array_equal(old, p.value)


def test_a_hessian_too_large_to_form_says_why_and_offers_the_largest_that_works():
    fitted = fit(NetSetting(depth=2, width=12, steps=10, size=40))
    assert fitted.parameters > 100
    result = curvature(fitted, k=3, iterations=20, max_exact=100)
    assert result["exact"] is None
    width = largest_exact_width(2, 1, 100)
    assert parameter_count(1, 2, width) <= 100 < parameter_count(1, 2, width + 1)
    assert f"width {width} at depth 2" in result["exact_reason"]
    assert len(result["eigenvalues"]) == 3
    assert largest_exact_width(1, 1) == width_for_budget(MAX_EXACT_PARAMETERS, 1, 1)


def test_compare_depths_keeps_every_net_within_its_budget():
    base = NetSetting(target="sine_1d", steps=200, size=60)
    result = compare_depths(base, [10, 40], [1, 3])
    for curve in result["curves"]:
        for point in curve["points"]:
            assert point["parameters"] <= point["budget"]
            assert point["parameters"] == parameter_count(1, curve["depth"], point["width"])
    # depth 3 with a budget of 10: 1 unit per layer has 8 parameters, 2 would have 17
    assert result["curves"][1]["points"][0]["width"] == 1
    assert len(result["fits"]["curves"]) == 2
    assert len(result["fits"]["x"]) == len(result["fits"]["curves"][0]["y"])


def test_training_lowers_the_error():
    untrained = fit(NetSetting(target="ripple_2d", depth=2, width=6, steps=0, size=100))
    trained = fit(NetSetting(target="ripple_2d", depth=2, width=6, steps=800, size=100))
    assert trained.train_error < 0.5 * untrained.train_error


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match="unknown target"):
        NetSetting(target="circle").config()
