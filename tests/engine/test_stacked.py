"""Stacked training (engine.stacked) must leave each session where its own solo run would.

Every session of a group gets its own data, seed, learning rate, optimiser settings,
penalties and clipping; after a stacked run each trainer's weights, optimiser state,
counters, minibatch order and shuffling generator match a solo run of the same steps
within 1e-10, across every optimiser, every stacked unit and every stacked loss, with
different step counts per session, deadlines, epoch callbacks and divergence.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.spec import Config, DataSpec, LayerSpec, ModelSpec, OutputSpec, TrainingSpec
from engine.stacked import STACKED_LOSSES, STACKED_UNITS, group_key, train_stacked
from engine.training import DivergenceError, Trainer

TOLERANCE = dict(rtol=1e-10, atol=1e-12)
DATA = {"bernoulli": "circle", "softmax": "spiral_multiclass", "squared": "circle",
        "absolute": "circle", "gaussian": "sine_1d"}


def config(unit: str = "tanh", loss: str = "bernoulli", optimizer: str = "sgd", seed: int = 0,
           rate: float = 0.03, size: int = 200, **training) -> Config:
    features = ["x1"] if loss == "gaussian" else ["x1", "x2", "x1_x2"]
    return Config(
        model=ModelSpec(features=features,
                        layers=[LayerSpec(5, unit, slope=0.2), LayerSpec(3, unit, slope=0.2)],
                        output=OutputSpec(loss=loss, precision=2.5), seed=seed),
        training=TrainingSpec(optimizer=optimizer, learning_rate=rate, batch_size=10,
                              **training),
        data=DataSpec(name=DATA[loss], size=size, noise=0.1, train_fraction=0.5, seed=seed,
                      classes=3),
    )


def assert_same(stacked: Trainer, solo: Trainer) -> None:
    np.testing.assert_allclose(stacked._flat, solo._flat, **TOLERANCE)
    np.testing.assert_allclose(stacked.optimizer._velocity[0], solo.optimizer._velocity[0],
                               **TOLERANCE)
    if solo.optimizer._second:
        np.testing.assert_allclose(stacked.optimizer._second[0], solo.optimizer._second[0],
                                   **TOLERANCE)
    assert stacked.steps == solo.steps
    assert stacked.optimizer.steps == solo.optimizer.steps
    assert stacked.epochs == pytest.approx(solo.epochs, abs=1e-12)
    assert stacked._position == solo._position
    np.testing.assert_array_equal(stacked._order, solo._order)
    if solo.last_loss is None:
        assert stacked.last_loss is None
    else:
        assert stacked.last_loss == pytest.approx(solo.last_loss, rel=1e-10, abs=1e-12)
    # the shuffling generator is where the solo run left it: the next passes agree too
    assert (stacked._shuffle_rng.bit_generator.state == solo._shuffle_rng.bit_generator.state)


def solo_run(trainer: Trainer, count: int) -> None:
    for _ in range(count):
        trainer.step()


def group(configs: list[Config]) -> tuple[list[Trainer], list[Trainer]]:
    # a deep copy would not keep the parameters as views of the flat array: build twice
    return [Trainer(c) for c in configs], [Trainer(c) for c in configs]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_every_optimiser_matches_solo_runs(optimizer):
    configs = [config(optimizer=optimizer, seed=s, rate=0.01 * (s + 1),
                      momentum=0.5 + 0.1 * s, beta1=0.8 + 0.05 * s, l2=0.001 * s,
                      l1=0.002 * (s % 2), clip_norm=0.05 if s == 1 else 0.0)
               for s in range(4)]
    stacked, solo = group(configs)
    assert len({group_key(t) for t in stacked}) == 1
    counts = [57, 3, 30, 0]  # some sessions stop early, one does not train at all
    result = train_stacked(stacked, counts)
    assert result.done == counts and result.interrupted == []
    for trainer, reference, count in zip(stacked, solo, counts):
        solo_run(reference, count)
        assert_same(trainer, reference)
    # a second run continues from where the first left every session
    train_stacked(stacked, [25, 25, 25, 25])
    for trainer, reference in zip(stacked, solo):
        solo_run(reference, 25)
        assert_same(trainer, reference)


@pytest.mark.parametrize("unit", STACKED_UNITS)
def test_every_stacked_unit_matches_solo_runs(unit):
    stacked, solo = group([config(unit=unit, seed=s, optimizer="momentum") for s in range(3)])
    train_stacked(stacked, [40, 40, 22])
    for trainer, reference, count in zip(stacked, solo, [40, 40, 22]):
        solo_run(reference, count)
        assert_same(trainer, reference)


@pytest.mark.parametrize("loss", STACKED_LOSSES)
def test_every_stacked_loss_matches_solo_runs(loss):
    stacked, solo = group([config(loss=loss, seed=s, optimizer="adam", rate=0.01)
                           for s in range(3)])
    train_stacked(stacked, [35, 12, 35])
    for trainer, reference, count in zip(stacked, solo, [35, 12, 35]):
        solo_run(reference, count)
        assert_same(trainer, reference)


def test_sessions_with_different_data_sizes_share_a_group():
    stacked, solo = group([config(seed=1, size=200), config(seed=2, size=300),
                           config(seed=3, size=120)])
    assert len({group_key(t) for t in stacked}) == 1
    train_stacked(stacked, [44, 44, 44])  # 10, 15 and 6 steps per pass: several passes
    for trainer, reference in zip(stacked, solo):
        solo_run(reference, 44)
        assert_same(trainer, reference)


@pytest.mark.parametrize("loss", STACKED_LOSSES)
def test_each_pass_reports_the_counters_and_evaluation_of_a_solo_run(loss):
    stacked, solo = group([config(loss=loss, seed=s) for s in range(3)])
    seen: list[tuple[int, int, float, dict]] = []

    def on_epoch(index: int, steps: int, epochs: float, evaluation: dict) -> None:
        seen.append((index, steps, epochs, evaluation))

    stacked[1].step()  # one session is part-way through a pass
    solo[1].step()
    train_stacked(stacked, [25, 25, 25], on_epoch=on_epoch)
    expected = []
    for index, reference in enumerate(solo):
        for _ in range(25):
            before = int(reference.epochs)
            reference.step()
            if int(reference.epochs) > before:
                expected.append((index, reference.steps, reference.epochs,
                                 reference.evaluate()))
    seen.sort(key=lambda e: (e[0], e[1]))
    expected.sort(key=lambda e: (e[0], e[1]))
    assert [e[:2] for e in seen] == [e[:2] for e in expected]
    assert len(seen) == 6 and len(expected) == 6  # passes of 10 steps: two ends in 25 steps
    for (_, _, epochs, evaluation), (_, _, solo_epochs, solo_evaluation) in zip(seen, expected):
        assert epochs == pytest.approx(solo_epochs, abs=1e-12)
        assert evaluation.keys() == solo_evaluation.keys()
        for key, value in solo_evaluation.items():
            if value is None:  # accuracy of a regression
                assert evaluation[key] is None
            else:
                assert evaluation[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key


def test_a_deadline_stops_every_session_at_the_same_step():
    stacked, solo = group([config(seed=s) for s in range(3)])
    result = train_stacked(stacked, [10_000, 10_000, 5], deadline=0.0)  # already past
    assert result.done == [1, 1, 1]
    for trainer, reference in zip(stacked, solo):
        solo_run(reference, 1)
        assert_same(trainer, reference)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the solo step's overflow
def test_a_diverging_session_is_left_to_its_solo_step():
    # linear units under squared error with a huge learning rate blow up exponentially
    stacked, solo = group([config(unit="linear", loss="squared", seed=0, rate=0.01),
                           config(unit="linear", loss="squared", seed=1, rate=5.0),
                           config(unit="linear", loss="squared", seed=2, rate=0.02)])
    result = train_stacked(stacked, [3000, 3000, 3000])
    assert result.interrupted == [0, 1, 2]  # every session that was still training
    done = result.done[1]
    assert done < 3000 and set(result.done) == {done}  # all stopped before that step
    for trainer, reference in zip(stacked, solo):
        solo_run(reference, done)
        assert_same(trainer, reference)
    with pytest.raises(DivergenceError):  # its solo step reports the divergence exactly
        stacked[1].step()
    with pytest.raises(DivergenceError):
        solo[1].step()
    np.testing.assert_array_equal(stacked[1]._flat, solo[1]._flat)  # the last finite weights
    assert group_key(stacked[1]) is None  # diverged: trains alone until reset or new settings
    stacked[0].step()  # the others go on
    stacked[2].step()


def test_sessions_that_cannot_stack_have_no_group_key():
    assert group_key(Trainer(config(unit="maxout"))) is None
    assert group_key(Trainer(config(unit="prelu"))) is None
    odd = Trainer(config(size=210))  # 105 training points: the last minibatch is short
    assert group_key(odd) is None
    a, b = Trainer(config(seed=0)), Trainer(config(seed=5, rate=0.5, l2=0.1))
    assert group_key(a) == group_key(b)  # rates and penalties are per session
    assert group_key(a) != group_key(Trainer(config(optimizer="adam")))
    with pytest.raises(ValueError, match="group key"):
        train_stacked([a, Trainer(config(optimizer="adam"))], [1, 1])
