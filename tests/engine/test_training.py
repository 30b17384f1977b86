"""The live session's Trainer: minibatches and counters, evaluation, divergence roll-back,
and live changes of training settings, architecture, data and initial weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import engine
from engine.nn import MLP, identity_sources, transfer
from engine.spec import Config, DataSpec, LayerSpec, ModelSpec, OutputSpec, TrainingSpec
from engine.training import DivergenceError, Trainer


def config(**parts) -> Config:
    base = Config(
        model=ModelSpec(layers=[LayerSpec(6, "tanh"), LayerSpec(3, "tanh")], seed=3),
        training=TrainingSpec(learning_rate=0.1, batch_size=10),
        data=DataSpec(name="circle", size=500, noise=0.1, train_fraction=0.5, seed=2),
    )
    return dataclasses.replace(base, **parts)


def regression_config(**training) -> Config:
    return config(
        model=ModelSpec(
            features=["x1"], layers=[LayerSpec(8, "tanh")], output=OutputSpec(loss="squared")
        ),
        training=TrainingSpec(**training),
        data=DataSpec(name="sine_1d", size=200),
    )


def weights_of(trainer: Trainer) -> list[np.ndarray]:
    return [p.value.copy() for p in trainer.model.parameters()]


def assert_same_weights(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def record_batches(trainer: Trainer) -> list[np.ndarray]:
    """Make the fast path remember every minibatch of features it is given."""
    seen: list[np.ndarray] = []
    original = trainer.fastpath.loss_and_grads

    def recording(features, y, grads, l2=0.0, l1=0.0):
        seen.append(features.copy())
        return original(features, y, grads, l2, l1)

    trainer.fastpath.loss_and_grads = recording
    return seen


# ----- counters and minibatches ----------------------------------------------------------
def test_steps_and_fractional_epochs():
    trainer = Trainer(config())  # 250 training points, batches of 10
    assert trainer.steps == 0 and trainer.epochs == 0.0
    for _ in range(30):
        trainer.step()
    assert trainer.steps == 30
    assert trainer.epochs == pytest.approx(1.2)
    trainer.epoch()  # finishes the current pass
    assert trainer.epochs == pytest.approx(2.0) and trainer.steps == 50
    trainer.epoch()  # a whole pass
    assert trainer.epochs == pytest.approx(3.0) and trainer.steps == 75



def test_restored_counters_carry_on_and_never_go_back():
    trained = Trainer(config())  # 250 training points, batches of 10
    for _ in range(33):
        trained.step()
    restored = Trainer(config())
    restored.restore_counters(trained.steps, trained.epochs)
    assert restored.steps == 33 and restored.epochs == pytest.approx(trained.epochs)
    restored.epoch()  # the pass goes on from where the old one was, and ends
    assert restored.epochs == pytest.approx(2.0) and restored.steps == 33 + 17
    # a fraction between two examples moves on to the next one: epochs never go back
    restored.restore_counters(7, 3.0041)
    assert 3.0041 <= restored.epochs <= 3.0041 + 1 / 250
    restored.restore_counters(7, 3.9999)  # past the last example: the next pass
    assert restored.epochs == 4.0 and restored.steps == 7


def test_each_epoch_visits_every_training_example_once_in_a_new_order():
    trainer = Trainer(config(training=TrainingSpec(batch_size=40)))  # 6 × 40 + 10
    seen = record_batches(trainer)
    trainer.epoch()
    assert [len(b) for b in seen] == [40] * 6 + [10]
    first = np.concatenate(seen)
    trainer.epoch()
    second = np.concatenate(seen[7:])
    expected = trainer.dataset.x_train
    key = lambda rows: np.lexsort(rows.T)  # noqa: E731
    np.testing.assert_array_equal(first[key(first)], expected[key(expected)])
    np.testing.assert_array_equal(second[key(second)], expected[key(expected)])
    assert not np.array_equal(first, second)


def test_batch_larger_than_the_training_set_is_the_whole_set():
    trainer = Trainer(config(training=TrainingSpec(batch_size=1000)))
    seen = record_batches(trainer)
    trainer.step()
    assert len(seen[0]) == 250 and trainer.epochs == 1.0


def test_training_is_deterministic_for_a_config():
    first, second = Trainer(config()), Trainer(config())
    for _ in range(40):
        assert first.step() == second.step()
    assert_same_weights(weights_of(first), weights_of(second))


def test_training_lowers_the_loss():
    trainer = Trainer(config(training=TrainingSpec(optimizer="adam", learning_rate=0.03)))
    before = trainer.evaluate()
    for _ in range(10):
        trainer.epoch()
    after = trainer.evaluate()
    assert after["train_loss"] < 0.6 * before["train_loss"]
    assert after["test_accuracy"] > 0.9


# ----- evaluation ---------------------------------------------------------------------------
def test_evaluate_matches_the_generic_engine():
    trainer = Trainer(config())
    trainer.epoch()
    result = trainer.evaluate()
    assert set(result) == {"train_loss", "test_loss", "train_accuracy", "test_accuracy"}
    model, data = trainer.model, trainer.dataset
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        with engine.no_grad():
            z = model.forward(x)
            loss = float(model.loss(z, y).value)
        accuracy = np.mean((model.predict(x) > 0.5) == (y == 1))
        assert result[f"{split}_loss"] == pytest.approx(loss, rel=1e-12)
        assert result[f"{split}_accuracy"] == pytest.approx(accuracy)


def test_evaluate_multiclass_and_regression():
    multiclass = Trainer(
        config(
            model=ModelSpec(layers=[LayerSpec(8)], output=OutputSpec(loss="softmax")),
            data=DataSpec(name="spiral_multiclass", size=90, classes=3),
        )
    )
    result = multiclass.evaluate()
    z = multiclass.model.forward(multiclass.dataset.x_test).value
    expected = np.mean(np.argmax(z, axis=1) == multiclass.dataset.y_test)
    assert result["test_accuracy"] == pytest.approx(expected)
    regression = Trainer(regression_config()).evaluate()
    assert regression["train_accuracy"] is None and regression["test_accuracy"] is None
    assert regression["train_loss"] > 0


def test_generic_fallback_trains_a_mixture_density():
    trainer = Trainer(
        config(
            model=ModelSpec(
                features=["x1"], layers=[LayerSpec(10)], output=OutputSpec("mixture", components=3)
            ),
            training=TrainingSpec(optimizer="adam", learning_rate=0.02, batch_size=25),
            data=DataSpec(name="inverse_sine", size=300),
        )
    )
    assert not trainer.uses_fast_path
    before = trainer.evaluate()["train_loss"]
    for _ in range(8):
        trainer.epoch()
    assert trainer.evaluate()["train_loss"] < before - 0.3


# ----- divergence ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges_and_rolls_back():
    trainer = Trainer(regression_config(learning_rate=1e6))
    with pytest.raises(DivergenceError, match="diverged at step") as caught:
        for _ in range(500):
            before = weights_of(trainer)
            trainer.step()
    assert "learning rate" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.step == trainer.steps + 1
    assert_same_weights(weights_of(trainer), before)
    assert all(np.isfinite(w).all() for w in before)
    # stopped until the settings change
    with pytest.raises(DivergenceError):
        trainer.step()
    trainer.set_training(TrainingSpec(learning_rate=1e-3))
    assert trainer.diverged is None
    trainer.reset()
    trainer.step()


def test_non_finite_weights_after_an_update_are_rolled_back():
    trainer = Trainer(config())
    trainer.step()
    original = trainer.fastpath.loss_and_grads

    def poisoned(features, y, grads, l2=0.0, l1=0.0):
        loss = original(features, y, grads, l2, l1)
        grads[0][0, 0] = np.inf  # a finite loss, an infinite gradient
        return loss

    trainer.fastpath.loss_and_grads = poisoned
    before = weights_of(trainer)
    with pytest.raises(DivergenceError, match="weight became infinite or NaN"):
        trainer.step()
    assert_same_weights(weights_of(trainer), before)
    assert trainer.steps == 1


# ----- live changes -------------------------------------------------------------------------
def test_set_training_keeps_weights_and_momentum():
    trainer = Trainer(config(training=TrainingSpec(optimizer="momentum", learning_rate=0.05)))
    for _ in range(5):
        trainer.step()
    before = weights_of(trainer)
    velocity = trainer.optimizer._velocity[0].copy()
    trainer.set_training(TrainingSpec(optimizer="momentum", learning_rate=0.01, batch_size=25))
    assert_same_weights(weights_of(trainer), before)
    np.testing.assert_array_equal(trainer.optimizer._velocity[0], velocity)
    assert trainer.optimizer.spec.learning_rate == 0.01
    seen = record_batches(trainer)
    trainer.step()
    assert len(seen[0]) == 25
    trainer.set_training(TrainingSpec(optimizer="adam"))
    assert trainer.optimizer.spec.optimizer == "adam" and trainer.optimizer.steps == 0
    trainer.step()


def test_set_training_uses_the_new_learning_rate():
    # SGD from the same weights on the same batch: the step scales with the rate
    first, second = Trainer(config()), Trainer(config())
    second.set_training(TrainingSpec(learning_rate=0.3, batch_size=10))
    start = weights_of(first)
    first.step()
    second.step()
    for a, b, w in zip(weights_of(first), weights_of(second), start):
        np.testing.assert_allclose(b - w, 3.0 * (a - w), rtol=1e-9, atol=1e-15)


def test_set_training_refuses_bad_settings():
    trainer = Trainer(config())
    with pytest.raises(ValueError, match=r"training\.batch_size"):
        trainer.set_training(TrainingSpec(batch_size=0))
    assert trainer.config.training.batch_size == 10


def test_penalties_and_clipping_change_the_update():
    plain = Trainer(config())
    clipped = Trainer(config(training=TrainingSpec(learning_rate=1.0, clip_norm=1e-3)))
    start = weights_of(clipped)
    clipped.step()
    moved = np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(weights_of(clipped), start)))
    assert moved == pytest.approx(1e-3, rel=1e-6)
    decayed = Trainer(config(training=TrainingSpec(learning_rate=0.1, l2=1.0)))
    plain.step()
    decayed.step()
    for parameter, a, b, w in zip(
        plain.model.parameters(), weights_of(plain), weights_of(decayed), start
    ):
        if parameter.name.startswith("W"):  # an extra −ε λ W on weights only
            np.testing.assert_allclose(b, a - 0.1 * w, rtol=1e-9, atol=1e-15)
        else:
            np.testing.assert_array_equal(a, b)


def test_loaded_weights_are_trained():
    # load_state_dict replaces the tensors' arrays; the trainer must train the new ones
    source, target = Trainer(config()), Trainer(config())
    source.step()
    target.step()  # both now wait for the same second minibatch
    for parameter in source.model.parameters():
        parameter.value += 0.05  # in place: other weights than the target's
    target.model.load_state_dict(source.model.state_dict())
    assert source.step() == target.step()
    assert_same_weights(weights_of(source), weights_of(target))


def test_replace_model_keeps_transferred_weights_and_continues():
    trainer = Trainer(config())
    for _ in range(5):
        trainer.step()
    old = trainer.model
    sources = identity_sources(old)
    sources[0].append(None)
    layers = [LayerSpec(7, "tanh"), LayerSpec(3, "tanh")]
    new = transfer(old, dataclasses.replace(old.spec, layers=layers), sources)
    kept = new.layers[0].weights.value[:, :6].copy()
    trainer.replace_model(new)
    assert trainer.model is new and trainer.steps == 5 and trainer.optimizer.steps == 0
    np.testing.assert_array_equal(trainer.model.layers[0].weights.value[:, :6], kept)
    trainer.step()
    assert trainer.steps == 6 and trainer.config.model.layers[0].units == 7
    assert not np.array_equal(trainer.model.layers[0].weights.value[:, :6], kept)


def test_replace_model_refuses_a_model_that_does_not_fit_the_data():
    trainer = Trainer(config())
    with pytest.raises(ValueError, match="model.output.loss"):
        trainer.replace_model(MLP(ModelSpec(output=OutputSpec(loss="mixture")), 2, 2))
    with pytest.raises(ValueError, match="outputs"):
        trainer.replace_model(MLP(ModelSpec(output=OutputSpec(loss="softmax")), 2, 3))


def test_replace_data_keeps_a_fitting_model():
    trainer = Trainer(config())
    trainer.epoch()
    before = weights_of(trainer)
    trainer.replace_data(DataSpec(name="xor", size=100))
    assert trainer.dataset.name == "xor" and trainer.config.data.name == "xor"
    assert_same_weights(weights_of(trainer), before)
    trainer.step()
    assert trainer.epochs == pytest.approx(0.2)


def test_replace_data_with_more_classes_rebuilds_only_the_output():
    trainer = Trainer(
        config(
            model=ModelSpec(layers=[LayerSpec(8)], output=OutputSpec(loss="softmax")),
            data=DataSpec(name="spiral_multiclass", size=90, classes=3),
        )
    )
    hidden = trainer.model.layers[0].weights.value.copy()
    trainer.replace_data(DataSpec(name="spiral_multiclass", size=90, classes=5))
    assert trainer.model.output.units == 5
    np.testing.assert_array_equal(trainer.model.layers[0].weights.value, hidden)
    trainer.epoch()
    assert trainer.evaluate()["train_accuracy"] is not None


def test_replace_data_refuses_another_task_and_changes_nothing():
    trainer = Trainer(config())
    with pytest.raises(ValueError, match=r"model\.output\.loss"):
        trainer.replace_data(DataSpec(name="sine_1d"))
    with pytest.raises(ValueError, match=r"data\.name"):
        trainer.replace_data(DataSpec(name="nope"))
    assert trainer.dataset.name == "circle"
    trainer.step()


def test_reset_draws_new_weights_and_zeroes_the_counters():
    trainer = Trainer(config())
    initial = weights_of(trainer)
    trainer.epoch()
    trainer.reset()
    assert trainer.steps == 0 and trainer.epochs == 0.0
    assert_same_weights(weights_of(trainer), initial)
    trainer.reset(seed=11)
    assert trainer.config.model.seed == 11
    assert not np.array_equal(weights_of(trainer)[0], initial[0])


@pytest.mark.parametrize(
    ("part", "value", "field"),
    [
        ("data", DataSpec(name="moons", size=1), "data.size"),
        ("training", TrainingSpec(learning_rate=-1.0), "training.learning_rate"),
        ("model", ModelSpec(layers=[LayerSpec(3, "swish")]), "model.layers[0].activation"),
        ("model", ModelSpec(output=OutputSpec(loss="gaussian")), "model.output.loss"),
    ],
)
def test_bad_config_names_the_field(part, value, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.").replace("[", r"\[")):
        Trainer(config(**{part: value}))
