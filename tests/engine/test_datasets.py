"""Datasets: deterministic by seed, right shapes and splits, noise moves points, bad
input is refused with a message naming the field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.datasets import DATASETS, check_compatible, make_dataset
from engine.spec import DataSpec, LayerSpec, ModelSpec, OutputSpec

USER_POINTS = [[0.0, 0.0, 0], [1.0, 1.0, 1], [2.0, -1.0, 1], [-1.0, 0.5, 0], [0.5, 2.0, 0]]
GENERATED = [name for name in DATASETS if name != "user"]


def spec(dataset: str, /, **changes) -> DataSpec:
    base = DataSpec(name=dataset, size=200, points=USER_POINTS if dataset == "user" else [])
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_is_well_formed(name):
    data = make_dataset(spec(name))
    info = DATASETS[name]
    assert data.name == name
    assert data.input_dim == info.input_dim
    n = len(USER_POINTS) if name == "user" else 200
    assert data.x_train.shape[0] + data.x_test.shape[0] == n
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == np.float64 and y.dtype == np.float64
        assert x.ndim == 2 and x.shape[1] == data.input_dim
        assert y.shape == (x.shape[0],)
        assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    assert len(data.extent) == data.input_dim
    everything = np.concatenate([data.x_train, data.x_test])
    for d, (low, high) in enumerate(data.extent):
        assert low < everything[:, d].min() and everything[:, d].max() < high
    if data.task == "regression":
        assert data.classes == 0
        low, high = data.target_extent
        assert low < data.y.min() and data.y.max() < high
    else:
        assert data.target_extent is None
        labels = np.unique(data.y)
        assert set(labels) <= set(range(data.classes))
        if name != "user":
            assert len(labels) == data.classes  # every class is present
        if data.task == "binary":
            assert data.classes == 2


@pytest.mark.parametrize("name", GENERATED)
def test_same_seed_same_data_other_seed_other_data(name):
    first, again = make_dataset(spec(name, seed=3)), make_dataset(spec(name, seed=3))
    other = make_dataset(spec(name, seed=4))
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.x_train, other.x_train)


@pytest.mark.parametrize("name", GENERATED)
def test_noise_moves_the_points(name):
    clean = make_dataset(spec(name, noise=0.0))
    noisy = make_dataset(spec(name, noise=0.5))
    if name == "inverse_sine":  # its targets are exact; the inputs carry the noise
        assert not np.allclose(clean.x_train, noisy.x_train)
    elif DATASETS[name].task == "regression":
        assert not np.allclose(clean.y_train, noisy.y_train)
    else:
        assert not np.allclose(clean.x_train, noisy.x_train)
        # the same draws, scaled: labels and the split stay put
        np.testing.assert_array_equal(clean.y_train, noisy.y_train)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.8])
def test_train_fraction_splits(fraction):
    data = make_dataset(spec("moons", size=300, train_fraction=fraction))
    assert data.x_train.shape[0] == round(300 * fraction)
    assert data.x_test.shape[0] == 300 - round(300 * fraction)


def test_tiny_sets_keep_one_example_on_each_side():
    data = make_dataset(spec("xor", size=2, train_fraction=0.99))
    assert data.x_train.shape[0] == 1 and data.x_test.shape[0] == 1


def test_clean_binary_sets_are_labelled_by_their_rule():
    circle = make_dataset(spec("circle"))
    radius = np.sqrt((circle.x * circle.x).sum(axis=1))
    np.testing.assert_array_equal(circle.y, (radius < 1.5).astype(float))
    xor = make_dataset(spec("xor"))
    np.testing.assert_array_equal(xor.y, (xor.x[:, 0] * xor.x[:, 1] > 0).astype(float))


def test_two_curves_are_not_linearly_separable():
    # least squares is a reasonable line; two_curves must defeat it, gaussians not
    def linear_accuracy(name):
        data = make_dataset(spec(name, size=1000))
        design = np.column_stack([data.x, np.ones(len(data.y))])
        coefficients, *_ = np.linalg.lstsq(design, 2 * data.y - 1, rcond=None)
        return np.mean((design @ coefficients > 0) == (data.y > 0.5))

    assert linear_accuracy("gaussians") == 1.0
    assert linear_accuracy("two_curves") < 0.95


def test_heteroscedastic_noise_grows_with_x():
    data = make_dataset(spec("heteroscedastic_1d", size=2000, noise=0.5))
    x, y = data.x[:, 0], data.y
    residual = y - (0.3 * x + 0.5 * np.sin(x))
    assert residual[x < -1].std() * 3 < residual[x > 1].std()


def test_inverse_sine_is_multimodal():
    data = make_dataset(spec("inverse_sine", size=3000))
    near_middle = np.abs(data.x[:, 0]) < 0.1
    targets = data.y[near_middle]
    # three groups of targets (t near 0.2, 0.5 and 0.8) share the same inputs
    for low, high in ((-0.8, -0.4), (-0.2, 0.2), (0.4, 0.8)):
        assert np.mean((low < targets) & (targets < high)) > 0.2


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_multiclass_spiral_has_the_requested_classes(classes):
    data = make_dataset(spec("spiral_multiclass", classes=classes))
    assert data.classes == classes
    assert set(np.unique(data.y)) == set(range(classes))


def test_user_points_binary_and_multiclass():
    binary = make_dataset(spec("user"))
    assert binary.task == "binary" and binary.classes == 2
    points = USER_POINTS + [[3.0, 3.0, 2]]
    multi = make_dataset(spec("user", points=points, classes=3))
    assert multi.task == "multiclass" and multi.classes == 3
    np.testing.assert_array_equal(np.sort(multi.y), np.sort([p[2] for p in points]))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "foo"}, "data.name"),
        ({"size": 1}, "data.size"),
        ({"size": 5001}, "data.size"),
        ({"size": 10.5}, "data.size"),
        ({"train_fraction": 0.0}, "data.train_fraction"),
        ({"train_fraction": 1.0}, "data.train_fraction"),
        ({"noise": -0.1}, "data.noise"),
        ({"noise": 1.5}, "data.noise"),
        ({"seed": "x"}, "data.seed"),
    ],
)
def test_bad_spec_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make_dataset(spec("circle", **changes))


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'foo'; choose from circle"):
        make_dataset(spec("foo"))


def test_bad_classes_for_the_multiclass_spiral():
    with pytest.raises(ValueError, match=r"data\.classes"):
        make_dataset(spec("spiral_multiclass", classes=1))


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[0, 0, 0]], r"data\.points: place from 2"),
        ([[0, 0, 0], [1, float("nan"), 1]], r"data\.points\[1\] contains NaN"),
        ([[0, 0, 0], [1, 1, 0.5]], r"data\.points\[1\]: label 0.5 is not a class"),
        ([[0, 0, 0], [1, 1, -1]], r"label -1 is not a class"),
        ([[0, 0, 0], [1, 1, 7]], r"label 7 is not a class"),
        ([[0, 0, 0], [1, 1]], r"data\.points\[1\] must be \[x1, x2, label\]"),
        ([[0, 0, 0], [1, "a", 1]], r"data\.points\[1\] must hold numbers"),
    ],
)
def test_bad_user_points(points, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(spec("user", points=points))


def model(loss: str, features=("x1", "x2")) -> ModelSpec:
    return ModelSpec(features=list(features), layers=[LayerSpec(4)], output=OutputSpec(loss=loss))


@pytest.mark.parametrize(
    ("loss", "fits"),
    [
        ("bernoulli", {"binary"}),
        ("softmax", {"binary", "multiclass"}),
        ("squared", {"binary", "multiclass", "regression"}),
        ("absolute", {"binary", "multiclass", "regression"}),
        ("gaussian", {"regression"}),
        ("gaussian_learned", {"regression"}),
        ("mixture", {"regression"}),
    ],
)
def test_check_compatible_matches_loss_and_task(loss, fits):
    for name, task in (
        ("circle", "binary"),
        ("spiral_multiclass", "multiclass"),
        ("ripple_2d", "regression"),
    ):
        data = make_dataset(spec(name))
        if task in fits:
            check_compatible(model(loss), data)
        else:
            with pytest.raises(ValueError, match=rf"model\.output\.loss: the '{loss}' output"):
                check_compatible(model(loss), data)


def test_check_compatible_refuses_x2_features_on_1d_data():
    data = make_dataset(spec("sine_1d"))
    check_compatible(model("squared", ["x1", "x1_squared", "sin_x1"]), data)
    for feature in ("x2", "x2_squared", "x1_x2", "sin_x2"):
        with pytest.raises(ValueError, match=rf"model\.features: '{feature}' needs x2"):
            check_compatible(model("squared", ["x1", feature]), data)


def test_two_curves_are_separated_by_a_2_2_1_tanh_network():
    # Fig. 6.2: two tanh hidden units are enough to make the classes linearly separable
    from engine.spec import Config, TrainingSpec
    from engine.training import Trainer

    trainer = Trainer(
        Config(
            model=ModelSpec(layers=[LayerSpec(2, "tanh")], seed=2),
            training=TrainingSpec(optimizer="adam", learning_rate=0.05, batch_size=20),
            data=DataSpec(name="two_curves", size=400, seed=2),
        )
    )
    for _ in range(60):
        trainer.epoch()
    result = trainer.evaluate()
    assert result["train_accuracy"] == 1.0 and result["test_accuracy"] == 1.0


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_can_be_trained_on(name):
    from engine.spec import Config
    from engine.training import Trainer

    data = spec(name, size=60)
    task = make_dataset(data).task
    loss = {"binary": "bernoulli", "multiclass": "softmax", "regression": "squared"}[task]
    features = ["x1", "x2"] if DATASETS[name].input_dim == 2 else ["x1"]
    trainer = Trainer(Config(model=model(loss, features), data=data))
    before = trainer.evaluate()
    trainer.epoch()
    after = trainer.evaluate()
    assert np.isfinite(after["train_loss"]) and after != before


def test_user_points_keep_their_side_of_the_split_when_points_are_added():
    rows = [[0.1 * i, -0.1 * i, i % 2] for i in range(40)]
    before = make_dataset(DataSpec(name="user", points=rows, train_fraction=0.5, seed=4))
    after = make_dataset(
        DataSpec(name="user", points=rows + [[2.0, 2.0, 1]], train_fraction=0.5, seed=4)
    )
    # the first 40 points are split the same way; only the new one is added
    assert before.x_train.tolist() == [p for p in after.x_train.tolist() if p != [2.0, 2.0]]
    assert before.x_test.tolist() == [p for p in after.x_test.tolist() if p != [2.0, 2.0]]


def test_user_points_pin_their_side_with_a_fourth_number():
    rows = [[0.0, 0.0, 0, 1], [1.0, 1.0, 1, 0], [2.0, 2.0, 0, 1], [3.0, 3.0, 1, 1]]
    data = make_dataset(DataSpec(name="user", points=rows, train_fraction=0.5))
    assert data.x_train.tolist() == [[0.0, 0.0], [2.0, 2.0], [3.0, 3.0]]
    assert data.x_test.tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match=r"data.points\[0\]: train must be 1"):
        make_dataset(DataSpec(name="user", points=[[0.0, 0.0, 0, 2]] + rows[1:]))
    with pytest.raises(ValueError, match=r"data.points\[1\] must be \[x1, x2, label\]"):
        make_dataset(DataSpec(name="user", points=[rows[0], [1.0, 1.0]]))


# ----- points from a file (issue 12): one input, regression targets ---------------------
def test_user_points_with_regression_targets_over_one_and_two_inputs():
    one = make_dataset(DataSpec(name="user", points=[[0.0, 1.5, 1], [1.0, -2.0, 1], [2.0, 0.25, 0]],
                                inputs=1, target="value"))
    assert (one.task, one.input_dim, one.classes) == ("regression", 1, 0)
    assert one.x_test.tolist() == [[2.0]] and one.y_test.tolist() == [0.25]
    assert one.target_extent[0] < -2.0 < 1.5 < one.target_extent[1]
    two = make_dataset(DataSpec(name="user", points=[[0, 0, 0.5], [1, 1, 7.5], [2, 1, -3.0]],
                                target="value"))
    assert (two.task, two.input_dim) == ("regression", 2)
    assert sorted(two.y.tolist()) == [-3.0, 0.5, 7.5]  # real targets, not classes


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"inputs": 1, "target": "class", "points": [[0, 0], [1, 1]]},
         r"data\.inputs: points with one coordinate need target 'value'"),
        ({"inputs": 3, "points": [[0, 0, 0], [1, 1, 1]]}, r"data\.inputs: user points have 1"),
        ({"target": "probability", "points": [[0, 0, 0], [1, 1, 1]]}, r"data\.target must be"),
        ({"inputs": 1, "target": "value", "points": [[0, 0], [1, 1, 1, 1]]},
         r"data\.points\[1\] must be \[x1, y\] or \[x1, y, train\]"),
        ({"inputs": 1, "target": "value", "points": [[0, 0], [1, float("inf")]]},
         r"data\.points\[1\] contains NaN or infinity"),
    ],
)
def test_bad_user_points_from_a_file(fields, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(DataSpec(name="user", **fields))
