"""engine.views, the frame builder: its float32 forward pass, quantisation, projections
and bounds, held to the float64 engine."""

from __future__ import annotations

import numpy as np
import pytest

from engine.datasets import make_dataset
from engine.nn import MLP
from engine.spec import ACTIVATIONS, DataSpec, LayerSpec, ModelSpec, OutputSpec
from engine.views import (
    Axes,
    FrameBuilder,
    ViewSpec,
    forward,
    principal_axes,
    quantise,
    stable_bounds,
)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_forward_matches_the_engine_for_every_unit(activation):
    spec = ModelSpec(
        features=["x1", "x2", "x1_x2"],
        layers=[LayerSpec(5, activation, slope=0.2, pieces=3), LayerSpec(3, activation)],
        output=OutputSpec("softmax"), seed=3,
    )
    model = MLP(spec, input_dim=2, classes=3)
    for layer in model.layers:  # give biases and PReLU slopes something to do
        layer.bias.value[...] = np.linspace(-0.5, 0.5, layer.bias.value.size)
        if layer.slope is not None:
            layer.slope.value[...] = np.linspace(0.05, 0.3, layer.slope.value.size)
    x = np.random.default_rng(0).uniform(-3, 3, (300, 2))
    ours = forward(model, model.features(x), buffers={})
    reference = model.forward_layers(x)
    assert len(ours) == len(reference)
    for (a, h), (ref_a, ref_h) in zip(ours, reference):
        assert a.dtype == np.float32 and h.shape == ref_h.shape
        scale = max(1.0, float(np.abs(ref_a.value).max()))
        np.testing.assert_allclose(a, ref_a.value, atol=2e-5 * scale)
        np.testing.assert_allclose(h, ref_h.value, atol=2e-5 * scale)


def test_buffers_are_reused_and_results_stay_correct():
    model = MLP(ModelSpec(layers=[LayerSpec(6), LayerSpec(4)]))
    buffers: dict = {}
    x = model.features(np.random.default_rng(1).normal(size=(50, 2)))
    first = [h.copy() for _, h in forward(model, x, buffers)]
    arrays = {key: id(array) for key, array in buffers.items()}
    model.layers[0].weights.value *= 2.0
    second = forward(model, x, buffers)
    assert {key: id(array) for key, array in buffers.items()} == arrays
    assert not np.allclose(first[0], second[0][1])
    first_layer = model.layers[0]
    expected = np.tanh(x @ first_layer.weights.value + first_layer.bias.value)
    np.testing.assert_allclose(second[0][1], expected, atol=1e-5)


@pytest.mark.parametrize("bits", [8, 16])
def test_quantise_round_trips_within_half_a_step(bits):
    scales = np.array([1.0, 10.0, 0.1], dtype=np.float32).reshape(3, 1, 1)
    values = np.random.default_rng(2).normal(size=(3, 40, 50)).astype(np.float32) * scales
    whole = quantise(values, bits)
    rows = quantise(values, bits, per_row=True)
    top = 255 if bits == 8 else 65535
    assert whole.data.dtype == (np.uint8 if bits == 8 else np.uint16)
    step = (values.max() - values.min()) / top
    assert np.abs(whole.decode() - values).max() <= 0.5 * step + 1e-5
    for i in range(3):
        step = (values[i].max() - values[i].min()) / top
        assert np.abs(rows.decode()[i] - values[i]).max() <= 0.5 * step + 1e-5
    assert rows.lo.shape == (3,) and isinstance(whole.lo, float)


def test_quantise_survives_non_finite_values_and_flat_arrays():
    values = np.array([[np.nan, np.inf, -np.inf, 0.25]], dtype=np.float32)
    q = quantise(values, 8, 0.0, 1.0)
    assert q.data.tolist() == [[0, 255, 0, 64]]
    q = quantise(np.array([np.nan, 1.0, 3.0], np.float32), 16)
    assert (q.lo, q.hi) == (1.0, 3.0)
    flat = quantise(np.full((2, 5), 7.0, np.float32), 8, per_row=True)
    np.testing.assert_allclose(flat.decode(), 7.0)


def test_principal_axes_are_sign_fixed_and_follow_the_previous_frame():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(400, 6)) * [5, 3, 1, 0.5, 0.2, 0.1]
    first = principal_axes(points)
    assert np.allclose(first.basis.T @ first.basis, np.eye(2))
    assert np.allclose(np.abs(first.basis[:, 0]), np.eye(6)[0], atol=0.15)
    assert first.basis[np.abs(first.basis[:, 0]).argmax(), 0] > 0
    assert 0.9 < first.explained <= 1.0
    # mirrored data would flip a fresh fit; aligned to the previous axes it does not
    mirrored = principal_axes(-points, first)
    assert np.all(np.sum(mirrored.basis * first.basis, axis=0) > 0.99)
    # a slow rotation of the data turns the axes slowly, never swapping them
    previous = first
    for angle in np.linspace(0.05, 1.0, 20):
        rotation = np.eye(6)
        rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        axes = principal_axes(points @ rotation.T, previous)
        assert np.all(np.sum(axes.basis * previous.basis, axis=0) > 0.99)
        previous = axes
    # overflowing activations keep the previous picture instead of failing
    broken = points.copy()
    broken[0, 0] = np.inf
    assert principal_axes(broken, previous) is previous
    fresh = principal_axes(broken)
    assert isinstance(fresh, Axes) and np.allclose(fresh.basis, np.eye(6, 2))


def test_bounds_grow_at_once_and_shrink_only_when_half_empty():
    bounds = stable_bounds(None, [0.0, -1.0], [1.0, 1.0])
    np.testing.assert_allclose(bounds, [[-0.1, 1.1], [-1.2, 1.2]])
    assert stable_bounds(bounds, [0.1, -0.9], [0.9, 0.9]) is bounds  # inside: unchanged
    grown = stable_bounds(bounds, [0.0, -1.0], [2.0, 1.0])
    assert grown[0][1] >= 2.0
    assert stable_bounds(grown, [0.4, -0.5], [0.6, 0.5]) != grown  # far too big: refit


def test_frame_builder_on_every_kind_of_data():
    builder = FrameBuilder()
    spec = ViewSpec(grid=20, unit_grid=10, warp_lines=4, warp_samples=5)
    cases = [
        ("circle", "bernoulli", ["x1", "x2"], "probability"),
        ("spiral_multiclass", "softmax", ["x1", "x2"], "probabilities"),
        ("ripple_2d", "squared", ["x1", "x2", "x1_squared"], "value"),
        ("sine_1d", "absolute", ["x1"], "curve"),
        ("heteroscedastic_1d", "gaussian_learned", ["x1"], "curve"),
        ("inverse_sine", "mixture", ["x1", "sin_x1"], "curve"),
    ]
    for name, loss, features, kind in cases:
        dataset = make_dataset(DataSpec(name=name, size=60))
        model = MLP(ModelSpec(features=features, layers=[LayerSpec(5), LayerSpec(3, "relu")],
                              output=OutputSpec(loss)),
                    dataset.input_dim, max(dataset.classes, 2))
        builder.forget_layout()
        views = builder.build(model, dataset, spec)
        assert views["surface"]["kind"] == kind
        n = len(dataset.x_train) + len(dataset.x_test)
        for warp in views["warps"]:
            for stage in ("pre_activation", "activation"):
                assert warp[stage]["points"].data.shape[1] == n
        if dataset.input_dim == 2:
            assert warp["activation"]["grid"].data.shape == (3, 2 * 4 * 5)
            assert views["units"][0]["values"].data.shape == (5, 10, 10)
        else:
            assert warp["activation"]["grid"].data.shape == (3, 20)
            assert views["units"][0]["values"].shape == (5, 20)
        assert len(views["gradients"]["layers"]) == 3
