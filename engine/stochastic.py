"""Gradients through a random operation (section 6.5): y = μ + σ z with z ~ N(0, 1).

We want ∂E[J(y)]/∂μ and ∂E[J(y)]/∂σ for a cost J. Two Monte Carlo estimators:

- **reparametrised** (Eq. 6.11): y is a deterministic function of (μ, σ) and the noise z,
  so back-propagating one sample gives J'(y)·∂y/∂μ = J'(y) and J'(y)·∂y/∂σ = J'(y) z.
  It needs J differentiable along y; for a step cost J' is zero almost everywhere and the
  estimate is 0, whatever the true gradient.
- **REINFORCE** (Eq. 6.13): J(y) ∂log p(y)/∂ω, with the Gaussian's score
  ∂log p/∂μ = (y − μ)/σ² = z/σ and ∂log p/∂σ = ((y − μ)² − σ²)/σ³ = (z² − 1)/σ.
  It needs only J's values. Because E[score] = 0 (Eq. 6.14), subtracting a baseline b that
  does not depend on the sample keeps it unbiased (Eq. 6.15); here b is the mean of J over
  the *other* samples of the same batch (an estimate of E[J], as Mnih and Gregor use),
  which is independent of the sample it multiplies.

The exact gradient comes in closed form for the costs offered here, and
``quadrature_gradient`` recomputes it by Gauss–Hermite quadrature of the score identity
(an independent check used by the tests). numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ESTIMATORS = ("reparametrised", "reinforce", "reinforce_baseline")
COSTS = ("quadratic", "bumpy", "step")
_FREQUENCY = 3.0  # the bumpy cost's sin(3y)
_CURVE = 0.1  # and its 0.1 y²


@dataclass(frozen=True)
class Cost:
    """J(y), its derivative J'(y) and the exact ∇(μ, σ) E[J(μ + σz)]."""

    name: str
    target: float  # c: the quadratic's minimum, the step's threshold

    def value(self, y: np.ndarray) -> np.ndarray:
        if self.name == "quadratic":
            return (y - self.target) ** 2
        if self.name == "bumpy":
            return np.sin(_FREQUENCY * y) + _CURVE * y * y
        return (y > self.target).astype(np.float64)  # a step: no useful derivative

    def derivative(self, y: np.ndarray) -> np.ndarray:
        if self.name == "quadratic":
            return 2.0 * (y - self.target)
        if self.name == "bumpy":
            return _FREQUENCY * np.cos(_FREQUENCY * y) + 2.0 * _CURVE * y
        return np.zeros_like(y)  # zero wherever it exists (everywhere but y = c)

    def exact_gradient(self, mu: float, sigma: float) -> tuple[float, float]:
        """∂E[J]/∂μ, ∂E[J]/∂σ in closed form."""
        if self.name == "quadratic":
            # E[(μ + σz − c)²] = (μ − c)² + σ²
            return 2.0 * (mu - self.target), 2.0 * sigma
        if self.name == "bumpy":
            # E[sin(ωy)] = sin(ωμ) e^{−ω²σ²/2};  E[y²] = μ² + σ²
            w = _FREQUENCY
            damping = math.exp(-0.5 * w * w * sigma * sigma)
            d_mu = w * math.cos(w * mu) * damping + 2.0 * _CURVE * mu
            d_sigma = -w * w * sigma * math.sin(w * mu) * damping + 2.0 * _CURVE * sigma
            return d_mu, d_sigma
        # E[1{y > c}] = Φ((μ − c)/σ)
        s = (mu - self.target) / sigma
        density = math.exp(-0.5 * s * s) / math.sqrt(2.0 * math.pi)
        return density / sigma, -density * s / sigma

    def expected(self, mu: float, sigma: float) -> float:
        """E[J(μ + σz)] in closed form."""
        if self.name == "quadratic":
            return (mu - self.target) ** 2 + sigma**2
        if self.name == "bumpy":
            w = _FREQUENCY
            return math.sin(w * mu) * math.exp(-0.5 * w * w * sigma * sigma) + _CURVE * (
                mu * mu + sigma * sigma
            )
        return 0.5 * (1.0 + math.erf((mu - self.target) / (sigma * math.sqrt(2.0))))


def make_cost(name: str, target: float = 0.0) -> Cost:
    if name not in COSTS:
        raise ValueError(f"unknown cost {name!r}; choose from {', '.join(COSTS)}")
    if not math.isfinite(target):
        raise ValueError("the cost's target must be finite")
    return Cost(name, float(target))


def quadrature_gradient(
    value: Callable[[np.ndarray], np.ndarray], mu: float, sigma: float, nodes: int = 120
) -> tuple[float, float]:
    """∇(μ, σ) E[J] = E[J(y) · score] by Gauss–Hermite quadrature (probabilists' form):
    uses only J's values, so it checks either estimator without sharing its formula."""
    z, weights = np.polynomial.hermite_e.hermegauss(nodes)
    weights = weights / math.sqrt(2.0 * math.pi)
    j = value(mu + sigma * z)
    d_mu = np.sum(weights * j * z) / sigma
    d_sigma = np.sum(weights * j * (z * z - 1.0)) / sigma
    return float(d_mu), float(d_sigma)


def per_sample(cost: Cost, mu: float, sigma: float, z: np.ndarray, estimator: str) -> np.ndarray:
    """(..., n, 2) one-sample gradient estimates (∂/∂μ, ∂/∂σ) for noise draws ``z`` of
    shape (..., n): the last axis is one batch (the baseline averages within it)."""
    check_distribution(mu, sigma)
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 0:
        z = z.reshape(1)
    y = mu + sigma * z  # Eq. 6.11
    if estimator == "reparametrised":
        slope = cost.derivative(y)
        return np.stack([slope, slope * z], axis=-1)
    score = np.stack([z / sigma, (z * z - 1.0) / sigma], axis=-1)
    j = cost.value(y)
    if estimator == "reinforce":
        return j[..., None] * score
    if estimator == "reinforce_baseline":
        n = z.shape[-1]
        if n < 2:
            raise ValueError("the baseline needs at least 2 samples (it averages the others)")
        # leave-one-out: sample i's baseline does not depend on sample i
        baseline = (j.sum(axis=-1, keepdims=True) - j) / (n - 1)
        return (j - baseline)[..., None] * score
    raise ValueError(f"unknown estimator {estimator!r}; choose from {', '.join(ESTIMATORS)}")


def check_distribution(mu: float, sigma: float) -> None:
    if not math.isfinite(mu):
        raise ValueError("μ must be finite")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"σ must be a positive number, got {sigma}")


@dataclass
class Estimate:
    mean: np.ndarray  # (2,) the average of the per-sample estimates
    standard_error: np.ndarray  # (2,) their standard deviation / √n
    variance: np.ndarray  # (2,) the per-sample variance


def estimate(cost: Cost, mu: float, sigma: float, samples: int, estimator: str,
             rng: np.random.Generator) -> Estimate:
    """The n-sample estimate of the gradient with its standard error."""
    if samples < 2:
        raise ValueError("an estimate with a standard error needs at least 2 samples")
    values = per_sample(cost, mu, sigma, rng.standard_normal(samples), estimator)
    variance = values.var(axis=0, ddof=1)
    return Estimate(values.mean(axis=0), np.sqrt(variance / samples), variance)


def sample_counts(largest: int) -> list[int]:
    """2, 4, 8, ... up to ``largest`` (included)."""
    counts, n = [], 2
    while n < largest:
        counts.append(n)
        n *= 2
    counts.append(largest)
    return counts


def compare(cost: Cost, mu: float, sigma: float, largest: int, repeats: int,
            seed: int) -> dict:
    """Every estimator at sample counts 2, 4, ..., ``largest``: the spread of ``repeats``
    independent n-sample estimates (their mean and standard deviation, per parameter)
    beside the exact gradient. All estimators see the same noise draws, so differences
    between them are the estimators', not the draws'."""
    check_distribution(mu, sigma)
    if not 2 <= largest:
        raise ValueError("largest must be at least 2")
    if repeats < 2:
        raise ValueError("repeats must be at least 2")
    rng = np.random.default_rng(seed)
    counts = sample_counts(largest)
    draws = [rng.standard_normal((repeats, n)) for n in counts]
    exact = cost.exact_gradient(mu, sigma)
    curves: dict[str, dict[str, list]] = {}
    for estimator in ESTIMATORS:
        means, spreads, variances = [], [], []
        for z in draws:
            estimates = per_sample(cost, mu, sigma, z, estimator).mean(axis=1)  # (repeats, 2)
            means.append(estimates.mean(axis=0).tolist())
            spreads.append(estimates.std(axis=0, ddof=1).tolist())
            per = per_sample(cost, mu, sigma, z[-1], estimator)
            variances.append(per.var(axis=0, ddof=1).tolist())
        curves[estimator] = {"mean": means, "std": spreads, "sample_variance": variances}
    return {
        "counts": counts,
        "repeats": repeats,
        "exact": list(exact),
        "expected_cost": cost.expected(mu, sigma),
        "estimators": curves,
    }
