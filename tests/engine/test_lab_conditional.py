"""Lab 2: binned conditional statistics, and that absolute error's fit lands on the median
and squared error's on the mean."""

from __future__ import annotations

import numpy as np
import pytest

from engine.conditional import binned_statistics, mean_gap
from engine.datasets import make_dataset
from engine.lab_training import train
from engine.nn import MLP, output_loss
from engine.spec import DataSpec, ModelSpec, OutputSpec, TrainingSpec


def test_binned_statistics_by_hand():
    x = np.array([0.1, 0.2, 0.3, 1.1, 1.2, 1.9])
    y = np.array([1.0, 2.0, 9.0, 4.0, 6.0, 5.0])
    binned = binned_statistics(x, y, bins=2, low=0.0, high=2.0)
    np.testing.assert_allclose(binned.centres, [0.5, 1.5])
    np.testing.assert_allclose(binned.mean, [4.0, 5.0])
    np.testing.assert_allclose(binned.median, [2.0, 5.0])
    assert binned.counts.tolist() == [3, 3]


def test_empty_bins_are_nan_and_mean_gap_skips_them():
    binned = binned_statistics(np.array([0.1]), np.array([3.0]), bins=2, low=0.0, high=2.0)
    assert np.isnan(binned.mean[1]) and binned.counts.tolist() == [1, 0]
    assert mean_gap(binned.mean, np.array([2.0, 100.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        binned_statistics(np.zeros(2), np.zeros(3), 2, 0.0, 1.0)


def _fit(loss: str, x, y):
    spec = ModelSpec(features=["x1"], layers=[], output=OutputSpec(loss=loss), seed=0)
    model = MLP(spec, input_dim=1)
    training = TrainingSpec(optimizer="adam", learning_rate=0.05, batch_size=len(y))
    train(model, x, y, lambda z, t: output_loss(model.spec.output, z, t), training,
          steps=1500, snapshots=2, probe=lambda m: {})
    return float(model.forward(np.zeros((1, 1))).value[0, 0])


def test_a_constant_fit_lands_on_the_mean_or_the_median():
    # no hidden layer and a zero input: the network is one number b, fitted to skewed y
    rng = np.random.default_rng(0)
    y = rng.standard_exponential(400)
    x = np.zeros((400, 1))
    assert _fit("squared", x, y) == pytest.approx(y.mean(), abs=2e-3)
    assert _fit("absolute", x, y) == pytest.approx(np.median(y), abs=2e-2)


def test_absolute_error_fit_tracks_the_binned_median_on_skewed_data():
    from engine.spec import LayerSpec

    data = make_dataset(DataSpec(name="skewed_1d", size=1000, noise=0.5, train_fraction=0.9))
    spec = ModelSpec(features=["x1"], layers=[LayerSpec(16, "tanh")],
                     output=OutputSpec(loss="absolute"), seed=0)
    model = MLP(spec, input_dim=1)
    training = TrainingSpec(optimizer="adam", learning_rate=0.01, batch_size=50)
    train(model, data.x_train, data.y_train,
          lambda z, t: output_loss(spec.output, z, t), training, 3000, 2, lambda m: {})
    binned = binned_statistics(data.x_train[:, 0], data.y_train, 12, -3.0, 3.0)
    fit = model.forward(binned.centres.reshape(-1, 1)).value[:, 0]
    to_median, to_mean = mean_gap(fit, binned.median), mean_gap(fit, binned.mean)
    assert to_median < to_mean
    assert to_median < 0.15
