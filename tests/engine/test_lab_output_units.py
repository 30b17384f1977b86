"""Lab 4's distributions: the learned-precision and mixture NLLs of the engine against the
densities written out and against torch; the lab's data follow their stated truth."""

from __future__ import annotations

import numpy as np
import pytest

from engine import functional as F
from engine.autodiff import Tensor
from engine.lab_training import snapshot_steps, train
from engine.nn import MLP, output_loss
from engine.output_units import (
    bernoulli_data,
    bernoulli_truth,
    distribution,
    gaussian_nll,
    mixture_nll,
    softmax_data,
    softmax_truth,
)
from engine.spec import LayerSpec, ModelSpec, OutputSpec, TrainingSpec


def _softplus(a):
    return np.log1p(np.exp(a))


def test_learned_precision_nll_is_the_density_written_out():
    rng = np.random.default_rng(0)
    mean, raw, y = rng.normal(size=(3, 20, 1))
    engine = F.gaussian_nll(Tensor(mean), Tensor(raw), y).value
    direct = gaussian_nll(mean, _softplus(raw), y).mean()
    assert engine == pytest.approx(direct, rel=1e-12)


def test_mixture_nll_is_the_density_written_out():
    rng = np.random.default_rng(1)
    logits, means, raw = rng.normal(size=(3, 15, 4))
    y = rng.normal(size=15)
    weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    engine = F.mixture_nll(Tensor(logits), Tensor(means), Tensor(raw), y).value
    direct = mixture_nll(weights, means, _softplus(raw), y).mean()
    assert engine == pytest.approx(direct, rel=1e-12)


def test_nlls_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits, means, raw = rng.normal(size=(3, 10, 3))
    y = rng.normal(size=10)
    precision = _softplus(raw)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.tensor(logits)),
        torch.distributions.Normal(torch.tensor(means), torch.tensor(1 / np.sqrt(precision))),
    )
    expected = -mixture.log_prob(torch.tensor(y)).mean().item()
    assert F.mixture_nll(Tensor(logits), Tensor(means), Tensor(raw), y).value == pytest.approx(
        expected, rel=1e-10)
    normal = torch.distributions.Normal(torch.tensor(means[:, :1]),
                                        torch.tensor(1 / np.sqrt(precision[:, :1])))
    expected = -normal.log_prob(torch.tensor(y.reshape(-1, 1))).mean().item()
    engine = F.gaussian_nll(Tensor(means[:, :1]), Tensor(raw[:, :1]), y.reshape(-1, 1)).value
    assert engine == pytest.approx(expected, rel=1e-10)


def test_lab_data_follow_their_truth():
    x, y = bernoulli_data(20000, seed=0)
    right = x[:, 0] > 2.0
    assert y[right].mean() == pytest.approx(bernoulli_truth(x[right, 0]).mean(), abs=0.02)
    x, y = softmax_data(30000, seed=0)
    middle = np.abs(x[:, 0]) < 0.2
    counts = np.bincount(y[middle].astype(int), minlength=3) / middle.sum()
    np.testing.assert_allclose(counts, softmax_truth(x[middle, 0]).mean(axis=0), atol=0.03)


def test_a_learned_precision_is_largest_where_the_noise_is_smallest():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (600, 1))
    y = 0.05 * (x[:, 0] + 3.2) * rng.standard_normal(600)  # spread grows to the right
    spec = ModelSpec(features=["x1"], layers=[LayerSpec(8, "tanh")],
                     output=OutputSpec(loss="gaussian_learned"), seed=0)
    model = MLP(spec, input_dim=1)
    train(model, x, y, lambda z, t: output_loss(spec.output, z, t),
          TrainingSpec(optimizer="adam", learning_rate=0.02, batch_size=50), 1500, 2,
          lambda m: {})
    precision = np.asarray(distribution(model, np.array([[-2.5], [2.5]]))["precision"])
    # the true precision is 1 / (0.05 (x + 3.2))²: 1 / 0.035² against 1 / 0.285², a ratio
    # of about 66 that a short run only partly reaches
    assert precision[0] > 3 * precision[1]


def test_snapshot_steps_and_clipping_counts():
    assert snapshot_steps(100, 3) == [0, 25, 100]
    assert snapshot_steps(2, 10) == [0, 1, 2]
    spec = ModelSpec(features=["x1"], layers=[LayerSpec(4, "tanh")],
                     output=OutputSpec(loss="squared"), seed=0)
    model = MLP(spec, input_dim=1)
    x = np.linspace(-1, 1, 20).reshape(-1, 1)
    run = train(model, x, 5 * x[:, 0], lambda z, t: output_loss(spec.output, z, t),
                TrainingSpec(learning_rate=0.01, clip_norm=1e-6), 7, 2, lambda m: {})
    assert run.clipped_steps == 7 and [s["step"] for s in run.snapshots] == [0, 7]
