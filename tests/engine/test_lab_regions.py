"""engine.regions on hand-checkable nets: counts known from geometry, not from the code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.nn import MLP
from engine.regions import (
    activation_patterns,
    region_ids,
    region_map,
    sawtooth_network,
    shallow_region_bound,
)
from engine.spec import LayerSpec, ModelSpec, OutputSpec


def one_layer(weights: np.ndarray, bias: np.ndarray, activation: str = "relu",
              pieces: int = 2) -> MLP:
    fan_in = weights.shape[0]
    spec = ModelSpec(
        features=["x1", "x2"][:fan_in],
        layers=[LayerSpec(weights.shape[1] // (pieces if activation == "maxout" else 1),
                          activation, pieces=pieces)],
        output=OutputSpec("squared"),
    )
    model = MLP(spec, input_dim=fan_in)
    model.layers[0].weights.value = np.asarray(weights, dtype=float)
    model.layers[0].bias.value = np.asarray(bias, dtype=float)
    return model


def test_one_relu_layer_on_a_line_makes_n_plus_one_regions():
    # kinks at x = -b/w = -2, -1, 0.5, 2.5: four distinct points inside (-3, 3)
    weights = np.array([[1.0, -2.0, 1.0, 0.5]])
    bias = np.array([2.0, -2.0, -0.5, -1.25])
    model = one_layer(weights, bias)
    result = region_map(model, ((-3.0, 3.0),), 600)
    assert result.count == 5 == shallow_region_bound(4, 1)


def test_kinks_outside_the_window_or_shared_make_fewer_regions():
    # two units share the kink x = 1; one kink (x = 10) lies outside the window
    weights = np.array([[1.0, 2.0, 1.0]])
    bias = np.array([-1.0, -2.0, -10.0])
    assert region_map(one_layer(weights, bias), ((-3.0, 3.0),), 600).count == 2


def test_lines_in_general_position_cut_the_plane_into_one_plus_n_plus_n_choose_2():
    # lines x1 = 0, x2 = 0, x1 + x2 = 1, x1 - x2 = -2: no two parallel, no three through a
    # point, all six crossings inside [-4, 4]², every region wider than the grid spacing
    weights = np.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, -1.0]])
    bias = np.array([0.0, 0.0, -1.0, 2.0])
    result = region_map(one_layer(weights, bias), ((-4.0, 4.0), (-4.0, 4.0)), 400)
    assert result.count == 1 + 4 + math.comb(4, 2) == 11 == shallow_region_bound(4, 2)


def test_three_lines_through_one_point_make_six_regions_not_seven():
    weights = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    bias = np.zeros(3)
    assert region_map(one_layer(weights, bias), ((-2.0, 2.0), (-2.0, 2.0)), 300).count == 6


def test_region_ids_follow_the_sign_pattern_of_each_line():
    weights = np.array([[1.0, 0.0], [0.0, 1.0]])
    model = one_layer(weights, np.zeros(2))
    x = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [2.0, 3.0]])
    patterns = activation_patterns(model, x)
    np.testing.assert_array_equal(patterns, [[1, 1], [0, 1], [0, 0], [1, 0], [1, 1]])
    ids, count = region_ids(patterns)
    np.testing.assert_array_equal(ids, [0, 1, 2, 3, 0])
    assert count == 4


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu", "abs"])
def test_other_two_piece_units_kink_where_relu_does(activation):
    weights = np.array([[1.0, -2.0, 1.0, 0.5]])
    bias = np.array([2.0, -2.0, -0.5, -1.25])
    assert region_map(one_layer(weights, bias, activation), ((-3.0, 3.0),), 600).count == 5


def test_hard_tanh_has_two_kinks_per_unit():
    # a = x kinks at ±1; a = x - 1.5 at 0.5 and 2.5: four kinks, five pieces
    model = one_layer(np.array([[1.0, 1.0]]), np.array([0.0, -1.5]), "hard_tanh")
    assert region_map(model, ((-3.0, 3.0),), 600).count == 5


def test_maxout_pieces_meet_where_their_filters_are_equal():
    # one unit, three filters 0, x and 1 - x on a line: max(x, 1 - x) >= 0.5, so the
    # zero filter never wins and the only switch is at x = 0.5
    model = one_layer(np.array([[0.0, 1.0, -1.0]]), np.array([0.0, 0.0, 1.0]), "maxout", 3)
    assert region_map(model, ((-3.0, 3.0),), 600).count == 2
    # a second unit max(x - 2, -x - 2): switch at 0, a new boundary
    model = one_layer(
        np.array([[0.0, 1.0, -1.0, 1.0, -1.0, 0.0]]),
        np.array([0.0, 0.0, 1.0, -2.0, -2.0, -9.0]),
        "maxout",
        3,
    )
    assert region_map(model, ((-3.0, 3.0),), 600).count == 3


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_the_sawtooth_net_has_two_to_the_depth_regions(depth):
    model = sawtooth_network(depth)
    x = np.linspace(0.0, 1.0, 1025).reshape(-1, 1)
    # its output is the tent map composed depth times (computed here directly)
    expected = x[:, 0].copy()
    for _ in range(depth):
        expected = np.where(expected <= 0.5, 2 * expected, 2 - 2 * expected)
    np.testing.assert_allclose(model.forward(x).value[:, 0], expected, atol=1e-12)
    result = region_map(model, ((0.0, 1.0),), 512)
    assert result.count == 2**depth
    if depth >= 3:  # one layer with the same 2·depth units makes at most 2·depth + 1
        assert result.count > shallow_region_bound(2 * depth, 1)


def test_deeper_random_nets_on_the_plane_count_at_least_one_region_per_pattern_seen():
    spec = ModelSpec(layers=[LayerSpec(6, "relu"), LayerSpec(6, "relu")],
                     output=OutputSpec("squared"), seed=3)
    model = MLP(spec)
    result = region_map(model, ((-3.0, 3.0), (-3.0, 3.0)), 200)
    # every id is a distinct pattern: recount with a set of tuples
    patterns = activation_patterns(model, np.array(
        [[x1, x2] for x2 in np.linspace(-3 + 0.015, 3 - 0.015, 200)
         for x1 in np.linspace(-3 + 0.015, 3 - 0.015, 200)]))
    assert result.count == len({tuple(row) for row in patterns})
    assert result.ids.shape == (200, 200)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus", "rbf"])
def test_smooth_units_have_no_regions(activation):
    model = MLP(ModelSpec(layers=[LayerSpec(3, activation)], output=OutputSpec("squared")))
    with pytest.raises(ValueError, match="not piecewise linear"):
        region_map(model, ((-1.0, 1.0), (-1.0, 1.0)), 10)


def test_feature_crosses_are_refused():
    spec = ModelSpec(features=["x1", "x1_squared"], layers=[LayerSpec(3, "relu")])
    with pytest.raises(ValueError, match="raw inputs"):
        region_map(MLP(spec), ((-1.0, 1.0), (-1.0, 1.0)), 10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("activation", ["relu", "abs", "hard_tanh"])
def test_a_trained_looking_layer_matches_the_line_arrangement_formula(seed, activation):
    # random lines: the grid count equals 1 + lines + crossings in the box whenever no
    # region is thinner than the grid (checked: the nearest crossing pair is far apart)
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(2, 4))
    bias = rng.uniform(-1.5, 1.5, size=4)
    model = one_layer(weights, bias, activation)
    from engine.regions import arrangement_count, kink_lines

    normals, offsets = kink_lines(model)
    extent = ((-3.0, 3.0), (-3.0, 3.0))
    expected = arrangement_count(normals, offsets, extent)
    counted = region_map(model, extent, 700).count
    assert counted == expected["regions"], (counted, expected)
    kinks = 2 if activation == "hard_tanh" else 1
    assert counted <= shallow_region_bound(4, 2, kinks, parallel=kinks == 2)


def test_the_hard_tanh_bound_counts_parallel_pairs():
    # 1 unit: two parallel lines, three strips
    assert shallow_region_bound(1, 2, 2, parallel=True) == 3
    assert shallow_region_bound(2, 2, 2, parallel=True) == 1 + 4 + 6 - 2
