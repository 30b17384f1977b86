"""The MLP built from a spec: every unit and loss trains, live architecture changes keep
the surviving weights bit for bit, weights round-trip, bad specs are refused."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import engine
from engine.datasets import make_dataset
from engine.nn import MLP, identity_sources, transfer
from engine.optim import Optimizer
from engine.spec import (
    ACTIVATIONS,
    LOSSES,
    DataSpec,
    LayerSpec,
    ModelSpec,
    OutputSpec,
    TrainingSpec,
)

# a dataset each loss can model, and the features that suit it
DATA_FOR_LOSS = {
    "bernoulli": ("circle", ["x1", "x2"]),
    "softmax": ("spiral_multiclass", ["x1", "x2"]),
    "squared": ("sine_1d", ["x1"]),
    "absolute": ("skewed_1d", ["x1"]),
    "gaussian": ("sine_1d", ["x1"]),
    "gaussian_learned": ("heteroscedastic_1d", ["x1"]),
    "mixture": ("inverse_sine", ["x1"]),
}


def train_generic(model: MLP, x, y, steps: int, batch: int = 20) -> None:
    """Minibatch Adam with the generic engine: forward, engine.grad, update."""
    parameters = model.parameters()
    optimizer = Optimizer(parameters, TrainingSpec(optimizer="adam", learning_rate=0.02))
    rng = np.random.default_rng(0)
    for _ in range(steps):
        index = rng.choice(len(y), batch, replace=False)
        cost = model.cost(x[index], y[index], l2=1e-4)
        optimizer.step([g.value for g in engine.grad(cost, parameters)])


def full_loss(model: MLP, x, y) -> float:
    with engine.no_grad():
        return float(model.loss(model.forward(x), y).value)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_unit_and_loss_trains(activation, loss):
    name, features = DATA_FOR_LOSS[loss]
    if activation == "linear" and loss == "bernoulli":
        name = "gaussians"  # a linear network can only draw a line
    data = make_dataset(DataSpec(name=name, size=200, noise=0.1, seed=1))
    spec = ModelSpec(
        features=features,
        layers=[LayerSpec(8, activation), LayerSpec(6, activation)],
        output=OutputSpec(loss=loss, components=3),
        seed=2,
    )
    model = MLP(spec, input_dim=data.input_dim, classes=max(data.classes, 2))
    before = full_loss(model, data.x_train, data.y_train)
    train_generic(model, data.x_train, data.y_train, steps=200)
    after = full_loss(model, data.x_train, data.y_train)
    assert np.isfinite(after)
    assert after < before - 0.05 * max(abs(before), 1.0), (before, after)


def small_model(**changes) -> MLP:
    spec = ModelSpec(layers=[LayerSpec(4, "tanh"), LayerSpec(3, "tanh")], seed=7)
    for key, value in changes.items():
        setattr(spec, key, value)
    return MLP(spec, input_dim=2, classes=2)


def spec_with(model: MLP, **changes) -> ModelSpec:
    return dataclasses.replace(model.spec, **changes)


def weights(model: MLP, layer: int) -> np.ndarray:
    return model.all_layers[layer].weights.value


def bias(model: MLP, layer: int) -> np.ndarray:
    return model.all_layers[layer].bias.value


def test_transfer_adding_a_unit_keeps_every_old_weight():
    old = small_model()
    layers = [LayerSpec(5, "tanh"), LayerSpec(3, "tanh")]
    sources = identity_sources(old)
    sources[0].append(None)
    new = transfer(old, spec_with(old, layers=layers), sources)
    np.testing.assert_array_equal(weights(new, 0)[:, :4], weights(old, 0))
    np.testing.assert_array_equal(bias(new, 0)[:4], bias(old, 0))
    np.testing.assert_array_equal(weights(new, 1)[:4], weights(old, 1))
    np.testing.assert_array_equal(bias(new, 1), bias(old, 1))
    np.testing.assert_array_equal(weights(new, 2), weights(old, 2))
    np.testing.assert_array_equal(bias(new, 2), bias(old, 2))
    assert np.any(weights(new, 0)[:, 4] != 0) and np.any(weights(new, 1)[4] != 0)


def test_transfer_removing_a_unit_keeps_the_others():
    old = small_model()
    layers = [LayerSpec(3, "tanh"), LayerSpec(3, "tanh")]
    sources = identity_sources(old)
    sources[0] = [(1, 0), (1, 2), (1, 3)]  # unit 1 of layer 1 goes
    new = transfer(old, spec_with(old, layers=layers), sources)
    np.testing.assert_array_equal(weights(new, 0), weights(old, 0)[:, [0, 2, 3]])
    np.testing.assert_array_equal(bias(new, 0), bias(old, 0)[[0, 2, 3]])
    np.testing.assert_array_equal(weights(new, 1), weights(old, 1)[[0, 2, 3]])
    np.testing.assert_array_equal(weights(new, 2), weights(old, 2))


def test_transfer_adding_a_layer_keeps_the_layers_around_it():
    old = small_model()
    layers = [LayerSpec(4, "tanh"), LayerSpec(2, "relu"), LayerSpec(3, "tanh")]
    sources = identity_sources(old)
    sources = [sources[0], [None, None], [(2, j) for j in range(3)]]
    new = transfer(old, spec_with(old, layers=layers), sources)
    np.testing.assert_array_equal(weights(new, 0), weights(old, 0))
    np.testing.assert_array_equal(bias(new, 0), bias(old, 0))
    np.testing.assert_array_equal(bias(new, 2), bias(old, 1))  # units survive...
    assert weights(new, 2).shape == (2, 3)  # ...but their inputs are new
    np.testing.assert_array_equal(weights(new, 3), weights(old, 2))
    np.testing.assert_array_equal(bias(new, 3), bias(old, 2))


def test_transfer_removing_a_layer():
    old = small_model()
    new = transfer(old, spec_with(old, layers=[LayerSpec(4, "tanh")]), [identity_sources(old)[0]])
    np.testing.assert_array_equal(weights(new, 0), weights(old, 0))
    np.testing.assert_array_equal(bias(new, 0), bias(old, 0))
    # the output layer now reads other units: its weights start afresh, its bias stays
    assert weights(new, 1).shape == (4, 1)
    np.testing.assert_array_equal(bias(new, 1), bias(old, 2))


def test_transfer_changing_features_keeps_the_surviving_inputs():
    old = small_model()
    added = transfer(
        old, spec_with(old, features=["x1", "x1_squared", "x2"]), identity_sources(old)
    )
    np.testing.assert_array_equal(weights(added, 0)[[0, 2]], weights(old, 0))
    np.testing.assert_array_equal(weights(added, 1), weights(old, 1))
    removed = transfer(old, spec_with(old, features=["x2"]), identity_sources(old))
    np.testing.assert_array_equal(weights(removed, 0), weights(old, 0)[[1]])
    np.testing.assert_array_equal(bias(removed, 0), bias(old, 0))


def test_transfer_keeps_prelu_slopes_and_maxout_pieces():
    spec = ModelSpec(layers=[LayerSpec(3, "prelu", slope=0.3), LayerSpec(2, "maxout", pieces=3)])
    old = MLP(spec, 2, 2)
    old.layers[0].slope.value = np.array([0.1, 0.2, 0.3])
    sources = identity_sources(old)
    sources[1] = [(2, 1), None]
    layers = [LayerSpec(3, "prelu", slope=0.3), LayerSpec(2, "maxout", pieces=3)]
    new = transfer(old, spec_with(old, layers=layers), sources)
    np.testing.assert_array_equal(new.layers[0].slope.value, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(weights(new, 1)[:, 0:3], weights(old, 1)[:, 3:6])


def test_state_dict_round_trip_is_exact_and_json_ready():
    source = small_model(seed=1)
    target = small_model(seed=2)
    x = np.random.default_rng(0).normal(size=(6, 2))
    assert not np.array_equal(source.forward(x).value, target.forward(x).value)
    state = json.loads(json.dumps(source.state_dict()))
    target.load_state_dict(state)
    np.testing.assert_array_equal(source.forward(x).value, target.forward(x).value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("W1"), "missing W1"),
        (lambda s: s.update(W1=[[1.0]]), r"W1 has shape \(1, 1\)"),
        (lambda s: s["b1"].__setitem__(0, float("nan")), "b1 contains NaN"),
    ],
)
def test_bad_weights_are_refused(mutate, message):
    model = small_model()
    state = model.state_dict()
    mutate(state)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(state)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"layers": [LayerSpec(4, "swish")]},
            r"model\.layers\[0\]\.activation: unknown activation 'swish'",
        ),
        ({"layers": [LayerSpec(4), LayerSpec(0)]}, r"model\.layers\[1\]\.units"),
        ({"output": OutputSpec(loss="hinge")}, r"model\.output\.loss: unknown loss 'hinge'"),
        ({"features": ["x3"]}, r"model\.features: unknown feature 'x3'"),
        ({"features": []}, r"model\.features"),
        ({"init": "orthogonal"}, r"model\.init: unknown initialisation 'orthogonal'"),
        ({"seed": -1}, r"model\.seed"),
    ],
)
def test_bad_spec_names_the_problem(changes, message):
    spec = ModelSpec(**changes)
    with pytest.raises(ValueError, match=message):
        MLP(spec, 2, 2)


def test_x2_features_need_two_inputs():
    with pytest.raises(ValueError, match=r"model\.features: 'x1_x2' needs x2"):
        MLP(ModelSpec(features=["x1", "x1_x2"]), input_dim=1)


def test_bad_inputs_are_refused():
    model = small_model()
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        model.forward(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        model.forward(np.array([[0.0, np.nan]]))


@pytest.mark.parametrize("loss", ["bernoulli", "softmax", "mixture", "gaussian_learned"])
def test_predictions_have_the_shape_the_ui_draws(loss):
    model = MLP(ModelSpec(output=OutputSpec(loss=loss, components=2)), 2, classes=3)
    x = np.random.default_rng(0).normal(size=(5, 2))
    prediction = model.predict(x)
    if loss == "softmax":
        assert prediction.shape == (5, 3)
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0)
    else:
        assert prediction.shape == (5,)
    if loss == "bernoulli":
        assert np.all((0 < prediction) & (prediction < 1))


def test_penalty_is_on_weights_only():
    model = small_model()
    penalty = model.penalty(l2=2.0, l1=0.0)
    expected = sum((w.value**2).sum() for w in model.weight_tensors())
    assert float(penalty.value) == pytest.approx(expected)
    grads = engine.grad(penalty, model.parameters())
    for parameter, g in zip(model.parameters(), grads):
        if parameter.name.startswith("b"):
            np.testing.assert_array_equal(g.value, 0.0)
        else:
            np.testing.assert_allclose(g.value, 2.0 * parameter.value)
