"""RBF units start with their templates on training examples (the chapter: such units can
be initialised as a subset of the input examples, w_i = x⁽ᵗ⁾), in every place that builds
a network for a dataset: a new trainer, a reset, an architecture change (new data keeps
the trained templates, like every other hidden weight)."""

from __future__ import annotations

import numpy as np

from engine.autodiff import as_tensor, no_grad
from engine.nn import MLP, example_templates, identity_sources, transfer
from engine.spec import Config, DataSpec, LayerSpec, ModelSpec, OutputSpec
from engine.training import Trainer
from engine.views import FrameBuilder, rbf_templates


def rows_of(points: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(row) for row in np.asarray(points)}


def rbf_config(units: int = 6, layers: tuple[str, ...] = ("rbf",), size: int = 200) -> Config:
    config = Config()
    config.model = ModelSpec(layers=[LayerSpec(units, kind) for kind in layers], seed=4)
    config.data = DataSpec(name="circle", size=size, seed=2)
    return config


def test_a_trainers_rbf_templates_are_distinct_training_inputs():
    trainer = Trainer(rbf_config())
    templates = trainer.model.layers[0].weights.value.T  # (units, features)
    assert templates.shape == (6, 2)
    assert rows_of(templates) <= rows_of(trainer.dataset.x_train)
    assert len(rows_of(templates)) == 6  # no example used twice
    # not drawn from the test set, and not the random templates of a dataset-free network
    free = MLP(trainer.config.model, 2, 2).layers[0].weights.value.T
    assert not rows_of(free) & rows_of(trainer.dataset.x_train)


def test_a_deeper_rbf_layers_templates_are_training_inputs_seen_through_the_layers_below():
    trainer = Trainer(rbf_config(units=4, layers=("tanh", "rbf")))
    model = trainer.model
    with no_grad():
        below = model.layers[0].activate(
            model.layers[0].pre_activation(as_tensor(trainer.dataset.x_train))).value
    templates = model.layers[1].weights.value.T
    assert all(np.isclose(below, row).all(axis=1).any() for row in templates)


def test_a_reset_and_a_new_unit_start_on_training_examples():
    config = rbf_config()
    config.model.output = OutputSpec(loss="softmax")
    trainer = Trainer(config)
    trainer.reset(seed=9)
    assert rows_of(trainer.model.layers[0].weights.value.T) <= rows_of(trainer.dataset.x_train)
    before = trainer.model.layers[0].weights.value.copy()
    trainer.replace_data(DataSpec(name="spiral_multiclass", size=150, seed=3, classes=3))
    # new data keeps the hidden layers, templates included (only the output grows)
    np.testing.assert_array_equal(trainer.model.layers[0].weights.value, before)
    # one more RBF unit: the old ones keep their (trained) templates, the new one an example
    old = trainer.model
    old.layers[0].weights.value += 0.05  # as if trained away from the examples
    kept = old.layers[0].weights.value.copy()
    spec = ModelSpec(layers=[LayerSpec(7, "rbf")], output=OutputSpec(loss="softmax"), seed=4)
    sources = [identity_sources(old)[0] + [None]]
    new = transfer(old, spec, sources, inputs=trainer.dataset.x_train)
    np.testing.assert_array_equal(new.layers[0].weights.value[:, :6], kept)
    assert tuple(new.layers[0].weights.value[:, 6]) in rows_of(trainer.dataset.x_train)


def test_fresh_units_only_and_no_examples_change_nothing_else():
    model = MLP(ModelSpec(layers=[LayerSpec(5, "rbf")]), 2, 2)
    before = model.layers[0].weights.value.copy()
    inputs = np.arange(20.0).reshape(10, 2)
    example_templates(model, inputs, {0: [1, 3]})
    after = model.layers[0].weights.value
    np.testing.assert_array_equal(after[:, [0, 2, 4]], before[:, [0, 2, 4]])
    assert rows_of(after[:, [1, 3]].T) <= rows_of(inputs)
    example_templates(model, np.zeros((0, 2)))  # no examples: nothing to draw from
    np.testing.assert_array_equal(model.layers[0].weights.value, after)
    # more units than examples: every example is used before any repeats
    small = MLP(ModelSpec(layers=[LayerSpec(5, "rbf")]), 2, 2, inputs=inputs[:3])
    assert rows_of(small.layers[0].weights.value.T) == rows_of(inputs[:3])


def test_the_surface_carries_the_templates_of_a_first_rbf_layer_only():
    trainer = Trainer(rbf_config())
    frame = FrameBuilder().build(trainer.model, trainer.dataset, warps=False, gradients=False)
    templates = frame["surface"]["templates"]
    assert templates.dtype == np.float32 and templates.shape == (6, 2)
    np.testing.assert_allclose(templates, trainer.model.layers[0].weights.value.T, rtol=1e-6)
    for layers in (("tanh",), ("tanh", "rbf")):
        other = Trainer(rbf_config(layers=layers))
        assert rbf_templates(other.model) is None
        frame = FrameBuilder().build(other.model, other.dataset, warps=False, gradients=False)
        assert "templates" not in frame["surface"]
    crossed = rbf_config()
    crossed.model.features = ["x1", "x2", "x1_x2"]  # templates in a space the plane is not
    assert rbf_templates(Trainer(crossed).model) is None
