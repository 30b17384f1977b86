"""Cases for engine.functional, each with an independent torch formulation.

Shared by test_functional.py (finite differences) and test_against_torch.py. Every input
listed in ``inputs`` is differentiated; targets and labels are constants of the case.
Inputs stay away from kinks (relu, abs, hard tanh, maxout ties, |prediction − target|).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import functional as F


@dataclass(frozen=True)
class FunctionalCase:
    function: str  # the name in engine.functional
    label: str
    engine: Callable[..., Any]  # engine(*tensors) -> Tensor
    torch: Callable[..., Any]  # torch(torch_module, *torch_tensors) -> torch.Tensor
    inputs: tuple[np.ndarray, ...]

    @property
    def id(self) -> str:
        return f"{self.function}-{self.label}"


_rng = np.random.default_rng(11)


def smooth(*shape: int, scale: float = 1.5) -> np.ndarray:
    return _rng.uniform(-scale, scale, size=shape)


def away_from_zero(*shape: int) -> np.ndarray:
    signs = np.where(_rng.permutation(int(np.prod(shape))) % 2 == 0, 1.0, -1.0)
    return signs.reshape(shape) * _rng.uniform(0.3, 1.5, size=shape)


def distinct(*shape: int) -> np.ndarray:
    size = int(np.prod(shape))
    return (_rng.permutation(size) * 0.3 - 0.15 * size + _rng.uniform(0, 0.1, size)).reshape(shape)


def hard_tanh_pieces(*shape: int) -> np.ndarray:
    pieces = _rng.permutation(int(np.prod(shape))) % 3
    low, high = np.array([-2.5, -0.8, 1.2])[pieces], np.array([-1.2, 0.8, 2.5])[pieces]
    return _rng.uniform(low, high).reshape(shape)


def _torch_softplus(torch: Any, x: Any) -> Any:
    return torch.nn.functional.softplus(x)


def _build() -> list[FunctionalCase]:
    cases: list[FunctionalCase] = []

    def add(function: str, label: str, engine: Callable, torch: Callable, *inputs: np.ndarray):
        cases.append(FunctionalCase(function, label, engine, torch, tuple(inputs)))

    # ----- hidden units -----
    add("relu", "matrix", F.relu, lambda t, a: t.relu(a), away_from_zero(4, 3))
    add(
        "leaky_relu",
        "default",
        F.leaky_relu,
        lambda t, a: t.nn.functional.leaky_relu(a, 0.01),
        away_from_zero(4, 3),
    )
    add(
        "leaky_relu",
        "slope0.2",
        lambda a: F.leaky_relu(a, 0.2),
        lambda t, a: t.nn.functional.leaky_relu(a, 0.2),
        away_from_zero(4, 3),
    )
    add(
        "prelu",
        "per-unit-slope",
        F.prelu,
        lambda t, a, s: t.nn.functional.prelu(a, s),
        away_from_zero(4, 3),
        _rng.uniform(0.05, 0.5, 3),
    )
    add("sigmoid", "matrix", F.sigmoid, lambda t, a: t.sigmoid(a), smooth(4, 3, scale=4.0))
    add("tanh", "matrix", F.tanh, lambda t, a: t.tanh(a), smooth(4, 3, scale=2.5))
    add("softplus", "matrix", F.softplus, _torch_softplus, smooth(4, 3, scale=4.0))
    add(
        "hard_tanh",
        "matrix",
        F.hard_tanh,
        lambda t, a: t.nn.functional.hardtanh(a),
        hard_tanh_pieces(4, 3),
    )
    add("absolute", "matrix", F.absolute, lambda t, a: t.abs(a), away_from_zero(4, 3))
    add("identity", "matrix", F.identity, lambda t, a: a * 1.0, smooth(4, 3))
    add(
        "maxout",
        "pieces2",
        lambda a: F.maxout(a, 2),
        lambda t, a: a.reshape(4, 3, 2).amax(dim=-1),
        distinct(4, 6),
    )
    add(
        "maxout",
        "pieces3",
        lambda a: F.maxout(a, 3),
        lambda t, a: a.reshape(4, 2, 3).amax(dim=-1),
        distinct(4, 6),
    )

    def torch_rbf(t: Any, x: Any, centres: Any, widths: Any) -> Any:
        diff = x[:, :, None] - centres[None, :, :]
        return t.exp(-(diff**2).sum(dim=1) / widths**2)

    add(
        "rbf",
        "units3",
        F.rbf,
        torch_rbf,
        smooth(4, 2, scale=1.0),
        smooth(2, 3, scale=1.0),
        _rng.uniform(0.7, 1.5, 3),
    )
    add("softmax", "last-axis", F.softmax, lambda t, z: t.softmax(z, dim=-1), smooth(4, 3))
    add(
        "softmax",
        "axis0",
        lambda z: F.softmax(z, axis=0),
        lambda t, z: t.softmax(z, dim=0),
        smooth(4, 3),
    )
    add(
        "log_softmax",
        "last-axis",
        F.log_softmax,
        lambda t, z: t.log_softmax(z, dim=-1),
        smooth(4, 3),
    )
    add(
        "log_softmax",
        "axis0",
        lambda z: F.log_softmax(z, axis=0),
        lambda t, z: t.log_softmax(z, dim=0),
        smooth(4, 3),
    )

    # ----- losses -----
    n = 5
    y_regression = smooth(n, 2)
    add(
        "squared_error",
        "two-outputs",
        lambda p: F.squared_error(p, y_regression),
        lambda t, p: 0.5 * ((p - t.as_tensor(y_regression)) ** 2).sum() / n,
        smooth(n, 2),
    )
    add(
        "absolute_error",
        "two-outputs",
        lambda p: F.absolute_error(p, y_regression),
        lambda t, p: t.nn.functional.l1_loss(p, t.as_tensor(y_regression), reduction="sum") / n,
        y_regression + away_from_zero(n, 2),
    )
    y_binary = (_rng.uniform(size=(n, 1)) > 0.5).astype(np.float64)
    add(
        "bernoulli_nll",
        "logits",
        lambda z: F.bernoulli_nll(z, y_binary),
        lambda t, z: (
            t.nn.functional.binary_cross_entropy_with_logits(
                z, t.as_tensor(y_binary), reduction="sum"
            )
            / n
        ),
        smooth(n, 1, scale=3.0),
    )
    labels = np.array([0, 2, 1, 2, 0])
    add(
        "softmax_nll",
        "three-classes",
        lambda z: F.softmax_nll(z, labels),
        lambda t, z: t.nn.functional.cross_entropy(z, t.as_tensor(labels)),
        smooth(n, 3, scale=2.0),
    )
    y_scalar = smooth(n, 1)

    def torch_gaussian(t: Any, mean: Any, raw: Any) -> Any:
        variance = 1.0 / t.nn.functional.softplus(raw)
        loss = t.nn.functional.gaussian_nll_loss(
            mean, t.as_tensor(y_scalar), variance, full=True, reduction="sum"
        )
        return loss / n

    add(
        "gaussian_nll",
        "learned-precision",
        lambda mean, raw: F.gaussian_nll(mean, raw, y_scalar),
        torch_gaussian,
        smooth(n, 1),
        smooth(n, 1),
    )

    def torch_fixed_gaussian(t: Any, mean: Any) -> Any:
        normal = t.distributions.Normal(mean, 1.0 / math.sqrt(2.0))
        return -normal.log_prob(t.as_tensor(y_regression)).sum() / n

    add(
        "fixed_gaussian_nll",
        "precision2",
        lambda mean: F.fixed_gaussian_nll(mean, y_regression, precision=2.0),
        torch_fixed_gaussian,
        smooth(n, 2),
    )

    def torch_mixture(t: Any, weight_logits: Any, means: Any, raw: Any) -> Any:
        d = t.distributions
        scale = 1.0 / t.sqrt(t.nn.functional.softplus(raw))
        mixture = d.MixtureSameFamily(d.Categorical(logits=weight_logits), d.Normal(means, scale))
        return -mixture.log_prob(t.as_tensor(y_scalar[:, 0])).sum() / n

    add(
        "mixture_nll",
        "three-components",
        lambda w, m, r: F.mixture_nll(w, m, r, y_scalar),
        torch_mixture,
        smooth(n, 3),
        smooth(n, 3),
        smooth(n, 3),
    )
    add(
        "mixture_nll",
        "flat-targets",
        lambda w, m, r: F.mixture_nll(w, m, r, y_scalar[:, 0]),
        torch_mixture,
        smooth(n, 3),
        smooth(n, 3),
        smooth(n, 3),
    )
    return cases


FUNCTIONAL_CASES: list[FunctionalCase] = _build()
