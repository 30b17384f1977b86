"""engine.hidden_units: derivatives against central differences of the units themselves,
dead and saturated counts against direct computations on hand-set weights, the bias and
the output-only training doing what they say."""

from __future__ import annotations

import numpy as np
import pytest

from engine.autodiff import Tensor
from engine.hidden_units import (
    Fitter,
    HiddenUnitsSetting,
    build_network,
    layer_statistics,
    loss_and_accuracy,
    relative_derivative,
    run_hidden_units,
    set_hidden_bias,
)
from engine.nn import MLP
from engine.spec import LayerSpec, ModelSpec, OutputSpec, TrainingSpec

PEAKS = {"relu": 1.0, "leaky_relu": 1.0, "prelu": 1.0, "sigmoid": 0.25, "tanh": 1.0,
         "softplus": 1.0, "hard_tanh": 1.0, "abs": 1.0, "linear": 1.0}


@pytest.mark.parametrize("activation", sorted(PEAKS))
def test_relative_derivative_is_the_units_slope_over_its_peak(activation):
    model = MLP(ModelSpec(layers=[LayerSpec(3, activation, slope=0.2)]))
    layer = model.layers[0]
    # points away from the kinks (0, ±1) so central differences are exact enough
    a = np.array([[-3.3, -0.7, 0.45], [0.2, 1.6, -1.4], [2.5, -0.3, 0.8]])
    h = 1e-6
    up = layer.activate(Tensor(a + h)).value
    down = layer.activate(Tensor(a - h)).value
    slope = (up - down) / (2 * h)
    np.testing.assert_allclose(relative_derivative(layer, a), np.abs(slope) / PEAKS[activation]
                               if activation == "abs" else slope / PEAKS[activation],
                               atol=1e-6)


def relu_layer(weights, bias):
    model = MLP(ModelSpec(layers=[LayerSpec(len(bias), "relu")]))
    model.layers[0].weights.value = np.array(weights, dtype=float)
    model.layers[0].bias.value = np.array(bias, dtype=float)
    return model


def test_dead_units_are_those_off_on_every_input():
    x = np.random.default_rng(0).uniform(-1, 1, size=(200, 2))
    weights = [[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.5, 0.0]]
    bias = [0.0, -0.9, -5.0, -0.1]  # unit 2 can never turn on in [-1, 1]²; unit 3 is flat
    model = relu_layer(weights, bias)
    a = x @ np.array(weights) + np.array(bias)
    expected = [j for j in range(4) if np.all(a[:, j] <= 0)]
    stats = layer_statistics(model, x)[0]
    assert stats.dead == expected == [2, 3]
    assert stats.saturated == []  # rectifiers are off, not saturated
    assert stats.active_fraction == pytest.approx(np.mean(a > 0))


def test_saturated_tanh_units_are_counted_as_saturated_not_dead():
    x = np.random.default_rng(1).uniform(0.5, 1.0, size=(100, 2))
    model = MLP(ModelSpec(layers=[LayerSpec(3, "tanh")]))
    model.layers[0].weights.value = np.array([[40.0, 0.1, 0.0], [40.0, 0.1, 0.0]])
    model.layers[0].bias.value = np.array([0.0, 0.0, 0.0])
    stats = layer_statistics(model, x, threshold=0.01, share=0.9)[0]
    # unit 0: tanh(40·s) with s ≥ 1: 1 − tanh² underflows to 0 (saturated, a smooth unit
    # is never dead); unit 1 and the constant unit 2 are steep
    assert stats.saturated == [0]
    assert stats.dead == []
    assert stats.saturated_fraction == pytest.approx(1 / 3)


def test_hard_tanh_stuck_beyond_one_is_dead():
    x = np.random.default_rng(1).uniform(-1.0, 1.0, size=(50, 2))
    model = MLP(ModelSpec(layers=[LayerSpec(2, "hard_tanh")]))
    model.layers[0].weights.value = np.array([[0.1, 0.1], [0.1, 0.1]])
    model.layers[0].bias.value = np.array([3.0, 0.0])
    assert layer_statistics(model, x)[0].dead == [0]


def test_a_positive_bias_at_the_start_leaves_fewer_dead_rectifiers():
    counts = {}
    for bias in (-0.5, 0.0, 0.5):
        dead = 0
        for seed in range(8):
            setting = HiddenUnitsSetting(depth=4, width=6, bias=bias, seed=seed,
                                         dataset="spiral")
            model, data = build_network(setting)
            dead += sum(len(s.dead) for s in layer_statistics(model, data.x_train))
        counts[bias] = dead
    assert counts[0.5] < counts[0.0] < counts[-0.5], counts


def test_set_hidden_bias_sets_every_hidden_bias_only():
    model = MLP(ModelSpec(layers=[LayerSpec(3, "relu"), LayerSpec(2, "relu")]))
    set_hidden_bias(model, 0.7)
    assert all(np.all(layer.bias.value == 0.7) for layer in model.layers)
    assert np.all(model.output.bias.value == 0.0)
    with pytest.raises(ValueError):
        set_hidden_bias(model, float("nan"))


def test_output_only_training_keeps_the_random_hidden_layer():
    setting = HiddenUnitsSetting(width=32, dataset="circle")
    model, data = build_network(setting)
    hidden = [p.value.copy() for p in model.layers[0].parameters()]
    output = model.output.weights.value.copy()
    fitter = Fitter(model, TrainingSpec(optimizer="adam", learning_rate=0.01, batch_size=20),
                    train_hidden=False)
    fitter.run(data.x_train, data.y_train, 50)
    for before, parameter in zip(hidden, model.layers[0].parameters()):
        np.testing.assert_array_equal(before, parameter.value)
    assert not np.allclose(output, model.output.weights.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_rectifier_features_with_a_trained_output_beat_a_linear_model(seed):
    # section 6.8: random rectifier weights pass on enough for the top layer to classify
    results = {}
    for activation in ("relu", "linear"):
        setting = HiddenUnitsSetting(activation=activation, width=64, train_hidden=False,
                                     steps=800, dataset="circle", frames=2, seed=seed)
        results[activation] = run_hidden_units(setting)["frames"][-1]["test_accuracy"]
    assert results["relu"] > 0.9
    assert results["linear"] < 0.8


def test_a_run_reports_frames_from_step_zero_with_region_maps():
    setting = HiddenUnitsSetting(steps=60, frames=4, resolution=80)
    result = run_hidden_units(setting)
    assert [f["step"] for f in result["frames"]] == [0, 20, 40, 60]
    first = result["frames"][0]
    model, data = build_network(setting)
    assert first["layers"] == [s.to_dict() for s in layer_statistics(model, data.x_train)]
    assert first["train_loss"] == pytest.approx(loss_and_accuracy(model, data.x_train,
                                                                  data.y_train)[0])
    assert len(first["regions"]) == 80 * 80
    assert first["region_count"] <= result["shallow_bound"] == 22
    # the count on the fine grid (320²) finds every region the lines' geometry predicts
    for frame in result["frames"]:
        assert frame["region_count"] <= frame["arrangement"]["regions"]
    assert first["region_count"] == first["arrangement"]["regions"]
    smooth = run_hidden_units(HiddenUnitsSetting(activation="tanh", steps=10, frames=2))
    assert smooth["frames"][-1]["regions"] is None
    assert "not piecewise linear" in smooth["regions_reason"]


def test_unit_details_show_what_each_kind_learned():
    prelu = run_hidden_units(HiddenUnitsSetting(activation="prelu", slope=0.25, steps=100,
                                                frames=2, resolution=8))
    slopes = prelu["units_detail"]["prelu_slopes"][0]
    assert len(slopes) == 6 and any(abs(s - 0.25) > 1e-4 for s in slopes)  # they learned
    rbf = run_hidden_units(HiddenUnitsSetting(activation="rbf", steps=10, frames=2,
                                              resolution=8))
    assert len(rbf["units_detail"]["rbf_templates"]["centres"]) == 6
    maxout = run_hidden_units(HiddenUnitsSetting(activation="maxout", pieces=3, steps=10,
                                                 frames=2, resolution=8))
    shares = maxout["units_detail"]["maxout_share"][0]
    assert len(shares) == 6 and all(sum(s) == pytest.approx(1.0) for s in shares)


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        build_network(HiddenUnitsSetting(dataset="sine_1d"))
    assert OutputSpec  # the lab's nets are Bernoulli classifiers
