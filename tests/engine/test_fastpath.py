"""The layer-wise fast path (Algorithm 6.2) must give the generic engine's gradients.

Every supported hidden unit with every supported output loss, penalties on, odd batch
sizes (one below and one above the size where tanh and σ switch to their exp form),
kinks hit exactly, saturated units: the gradients agree within 1e-10.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import engine
from engine.fastpath import SUPPORTED_LOSSES, SUPPORTED_UNITS, FastPath, unsupported_reason
from engine.nn import MLP
from engine.spec import Config, DataSpec, LayerSpec, ModelSpec, OutputSpec, TrainingSpec
from engine.training import Trainer

CLASSES = 3
TOLERANCE = dict(rtol=1e-10, atol=1e-12)


def model_for(unit: str, loss: str, seed: int = 0, scale: float = 1.0) -> MLP:
    spec = ModelSpec(
        features=["x1", "x2", "x1_x2"],
        layers=[LayerSpec(5, unit, slope=0.2, pieces=3), LayerSpec(3, unit, slope=0.05, pieces=2)],
        output=OutputSpec(loss=loss, precision=2.5),
        init="normal",
        init_scale=scale,
        seed=seed,
    )
    model = MLP(spec, input_dim=2, classes=CLASSES)
    rng = np.random.default_rng(seed + 100)
    for layer in model.all_layers:  # non-zero biases and PReLU slopes
        layer.bias.value = rng.normal(0.0, 0.5, layer.bias.value.shape)
        if layer.slope is not None:
            layer.slope.value = rng.uniform(0.05, 0.5, layer.slope.value.shape)
    return model


def batch(n: int, loss: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.5, (n, 2))
    if loss == "softmax":
        y = rng.integers(0, CLASSES, n).astype(float)
    elif loss == "bernoulli":
        y = rng.integers(0, 2, n).astype(float)
    else:
        y = rng.normal(0.0, 1.0, n)
    return x, y


def generic(model: MLP, x: np.ndarray, y: np.ndarray, l2: float, l1: float):
    cost = model.cost(x, y, l2, l1)
    loss = float(model.loss(model.forward(x), y).value)
    return loss, [g.value for g in engine.grad(cost, model.parameters())]


def assert_same_gradients(model: MLP, x, y, l2=0.0, l1=0.0):
    fast_loss, fast = FastPath(model).gradients(model.features(x), y, l2, l1)
    slow_loss, slow = generic(model, x, y, l2, l1)
    assert fast_loss == pytest.approx(slow_loss, rel=1e-12, abs=1e-12)
    assert len(fast) == len(slow)
    for parameter, a, b in zip(model.parameters(), fast, slow):
        assert a.shape == b.shape, parameter.name
        np.testing.assert_allclose(a, b, **TOLERANCE, err_msg=parameter.name)


@pytest.mark.parametrize("loss", SUPPORTED_LOSSES)
@pytest.mark.parametrize("unit", SUPPORTED_UNITS)
@pytest.mark.parametrize("n", [7, 401])
def test_fast_path_matches_the_generic_engine(unit, loss, n):
    model = model_for(unit, loss)
    x, y = batch(n, loss)
    assert_same_gradients(model, x, y, l2=0.03, l1=0.01)


@pytest.mark.parametrize("unit", SUPPORTED_UNITS)
def test_without_penalties_too(unit):
    model = model_for(unit, "bernoulli", seed=1)
    x, y = batch(13, "bernoulli", seed=1)
    assert_same_gradients(model, x, y)


def test_penalties_leave_biases_alone():
    model = model_for("tanh", "bernoulli")
    x, y = batch(9, "bernoulli")
    path = FastPath(model)
    _, plain = path.gradients(model.features(x), y)
    _, penalised = path.gradients(model.features(x), y, l2=0.5, l1=0.2)
    for parameter, a, b in zip(model.parameters(), plain, penalised):
        if parameter.name.startswith("b"):
            np.testing.assert_array_equal(a, b)
        else:  # ∇Ω = λ₂ W + λ₁ sign(W)
            expected = a + 0.5 * parameter.value + 0.2 * np.sign(parameter.value)
            np.testing.assert_allclose(b, expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("unit", ["relu", "leaky_relu", "prelu", "abs", "hard_tanh", "maxout"])
@pytest.mark.parametrize("level", [0.0, 1.0, -1.0])
def test_kinks_follow_the_generic_engine_conventions(unit, level):
    # zero weights put every hidden pre-activation exactly at the bias: on the kink of
    # ReLU and |·| (0) or of hard tanh (±1); all maxout pieces tie
    model = model_for(unit, "squared")
    for layer in model.layers:
        layer.weights.value = np.zeros_like(layer.weights.value)
        layer.bias.value = np.full_like(layer.bias.value, level)
    x, y = batch(11, "squared")
    assert_same_gradients(model, x, y, l2=0.1)


@pytest.mark.parametrize("unit", ["tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("n", [3, 600])
def test_saturated_units_agree_without_overflow_warnings(unit, n):
    model = model_for(unit, "bernoulli", scale=300.0)
    x, y = batch(n, "bernoulli")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast_loss, fast = FastPath(model).gradients(model.features(x), y)
    slow_loss, slow = generic(model, x, y, 0.0, 0.0)
    assert fast_loss == pytest.approx(slow_loss, rel=1e-10)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_gaussian_loss_includes_its_constant():
    model = model_for("tanh", "gaussian")
    x, y = batch(5, "gaussian")
    loss, outputs = FastPath(model).loss_and_outputs(model.features(x), y)
    np.testing.assert_array_equal(outputs, model.forward(x).value)
    assert loss == pytest.approx(float(model.loss(model.forward(x), y).value), rel=1e-13)


def test_buffers_are_reused_and_results_are_not_aliased():
    model = model_for("tanh", "softmax")
    path = FastPath(model)
    x, y = batch(10, "softmax")
    first = path.outputs(model.features(x))
    x2, _ = batch(10, "softmax", seed=5)
    path.outputs(model.features(x2))
    np.testing.assert_array_equal(first, model.forward(x).value)
    assert len(path._workspaces) == 1


@pytest.mark.parametrize(
    ("unit", "loss"),
    [("rbf", "bernoulli"), ("tanh", "gaussian_learned"), ("tanh", "mixture")],
)
def test_unsupported_models_are_refused_and_the_trainer_falls_back(unit, loss):
    model = model_for(unit, loss)
    assert unsupported_reason(model) is not None
    with pytest.raises(ValueError, match="fast path cannot train"):
        FastPath(model)
    data = "circle" if loss == "bernoulli" else "sine_1d"
    features = ["x1", "x2"] if data == "circle" else ["x1"]
    config = Config(
        model=ModelSpec(features=features, layers=[LayerSpec(4, unit)], output=OutputSpec(loss)),
        data=DataSpec(name=data, size=60),
    )
    trainer = Trainer(config)
    assert not trainer.uses_fast_path and trainer.fast_path_reason
    trainer.step()
    assert trainer.steps == 1


@pytest.mark.parametrize("unit", ["tanh", "prelu", "maxout", "linear"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_trainer_steps_match_generic_steps(unit, optimizer):
    # the same 30 steps with the fast path and with the generic engine
    config = Config(
        model=ModelSpec(layers=[LayerSpec(6, unit, pieces=2), LayerSpec(3, unit)], seed=4),
        training=TrainingSpec(optimizer=optimizer, learning_rate=0.05, batch_size=7, l2=0.01),
        data=DataSpec(name="moons", size=100, noise=0.2),
    )
    fast, slow = Trainer(config), Trainer(config)
    assert fast.uses_fast_path
    slow.fastpath = None
    for _ in range(30):
        assert fast.step() == pytest.approx(slow.step(), rel=1e-9, abs=1e-12)
    for a, b in zip(fast.model.parameters(), slow.model.parameters()):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-9, atol=1e-12)


def test_every_supported_unit_and_loss_is_declared_in_the_spec():
    from engine.spec import ACTIVATIONS, LOSSES

    assert set(SUPPORTED_UNITS) <= set(ACTIVATIONS)
    assert set(SUPPORTED_LOSSES) <= set(LOSSES)
    assert dataclasses.is_dataclass(OutputSpec)


def test_pre_activation_grads_are_the_generic_engines():
    model = model_for("maxout", "softmax")
    x, y = batch(9, "softmax")
    path = FastPath(model)
    assert path.pre_activation_grads(9) is None
    path.gradients(model.features(x), y)
    fast = path.pre_activation_grads(9)
    layers = model.forward_layers(x)
    cost = model.loss(layers[-1][1], y)
    slow = engine.grad(cost, [a for a, _ in layers])
    assert len(fast) == len(slow) == 3
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b.value, **TOLERANCE)
