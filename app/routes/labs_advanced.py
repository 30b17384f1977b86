"""The JSON endpoints of labs 5-7 (issue 11): hidden units, random operations, depth and
curvature, under /api/labs/.

Thin, like the other labs' routes: a pydantic model with limits validates the settings, a
work estimate refuses a request too large for one go (saying which value is the largest
that works, ``LabTooLarge``), and the engine runs it on FastAPI's thread pool while at
most two lab runs share the CPU (the semaphore of app/routes/labs.py, so a class pressing
Run together queues instead of starving the playground). A run that still takes longer
than ``TIME_LIMIT_S`` stops at its next step and answers 422 saying so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.lab_models import LabTooLarge
from app.routes.labs import RUNNING
from engine import depth as depth_lab
from engine import hidden_units, regions, stochastic
from engine.autodiff import no_grad

router = APIRouter()
TIME_LIMIT_S = 10.0  # one request's computing time, after its turn comes
HIDDEN_UNITS = ("relu", "leaky_relu", "prelu", "sigmoid", "tanh", "softplus", "hard_tanh", "abs",
                "maxout", "rbf", "linear")
# depth-vs-width nets: units whose layer has exactly fan_in·width + width parameters
COUNTED_UNITS = ("tanh", "relu", "leaky_relu", "sigmoid", "softplus", "hard_tanh", "abs")
# one request's work, in steps × units × pieces for lab 5 and steps × nets for lab 7; at
# these limits the largest requests took 1.5-4 s on a busy 2-core machine, the defaults
# 0.1-1.3 s
HIDDEN_WORK_LIMIT = 64_000
DEPTH_WORK_LIMIT = 30_000
CURVATURE_PARAMETERS = 1_200  # Lanczos on a bigger net goes to the spectrum job
MAX_SAMPLES = 2_000_000  # lab 6: noise draws per request (repeats × all sample counts)


class LabTimeout(Exception):
    pass


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=1_000_000)

    def check_budget(self) -> None:
        """Raise ``LabTooLarge`` when the request is too large (its limits alone bound it)."""


class HiddenUnitsSettings(_Settings):
    """Lab 5: one net of one kind of hidden unit on a 2-D classification set."""

    activation: Literal[HIDDEN_UNITS] = "relu"  # type: ignore[valid-type]
    depth: int = Field(1, ge=1, le=4, description="hidden layers")
    width: int = Field(6, ge=1, le=16, description="units per hidden layer")
    pieces: int = Field(2, ge=2, le=4, description="maxout: linear pieces per unit")
    slope: float = Field(0.1, ge=0.0, le=1.0, description="leaky slope, PReLU's first slope")
    bias: float | None = Field(None, ge=-2.0, le=2.0,
                               description="every hidden bias at the start; null: the default")
    train_hidden: bool = Field(True, description="false: only the output layer learns")
    dataset: Literal[hidden_units.LAB_DATASETS] = "circle"  # type: ignore[valid-type]
    size: int = Field(300, ge=20, le=600)
    noise: float = Field(0.1, ge=0.0, le=1.0)
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    learning_rate: float = Field(0.01, gt=0.0, le=2.0)
    batch_size: int = Field(20, ge=1, le=300)
    steps: int = Field(600, ge=0, le=2000)
    frames: int = Field(7, ge=2, le=12, description="snapshots the page animates")
    resolution: int = Field(64, ge=8, le=96, description="map cells per side")
    init_scale: float = Field(1.0, gt=0.0, le=5.0)

    def check_budget(self) -> None:
        per_step = self.depth * self.width * (self.pieces if self.activation == "maxout" else 1)
        per_step *= 4 if self.activation == "rbf" else 1  # the generic engine: slower steps
        largest = HIDDEN_WORK_LIMIT // per_step
        if self.steps > largest:
            raise LabTooLarge(
                f"{self.steps} steps of {self.depth} × {self.width} {self.activation} units is "
                f"more than one request may train while a class shares the server; the most "
                f"steps that works with these units is {largest}.", "steps", largest)


class SawtoothSettings(_Settings):
    depth: int = Field(3, ge=1, le=8, description="layers of two rectifiers")
    points: int = Field(512, ge=16, le=2048)


class RandomOperationsSettings(_Settings):
    """Lab 6: y = μ + σz, a cost J(y), the estimators against the exact gradient."""

    cost: Literal[stochastic.COSTS] = "bumpy"  # type: ignore[valid-type]
    target: float = Field(1.0, ge=-5.0, le=5.0, description="c in (y − c)² and 1{y > c}")
    mu: float = Field(0.5, ge=-5.0, le=5.0)
    sigma: float = Field(0.8, gt=0.0, le=5.0)
    largest: int = Field(1024, ge=2, le=16_384, description="most samples per estimate")
    repeats: int = Field(200, ge=2, le=1000, description="independent estimates per count")

    def check_budget(self) -> None:
        draws = self.repeats * sum(stochastic.sample_counts(self.largest))
        if draws > MAX_SAMPLES:
            per_repeat = sum(stochastic.sample_counts(self.largest))
            largest = max(2, MAX_SAMPLES // per_repeat)
            raise LabTooLarge(
                f"{self.repeats} repeats at up to {self.largest} samples draw {draws:,} noise "
                f"values, more than the {MAX_SAMPLES:,} one request may; the most repeats "
                f"that works with these counts is {largest}.", "repeats", largest)


class _NetSettings(_Settings):
    target: Literal[tuple(depth_lab.TARGETS)] = "ripple_2d"  # type: ignore[valid-type]
    activation: Literal[COUNTED_UNITS] = "tanh"  # type: ignore[valid-type]
    size: int = Field(200, ge=20, le=500, description="points, half for training")
    steps: int = Field(800, ge=0, le=4000)
    learning_rate: float = Field(0.01, gt=0.0, le=1.0)
    batch_size: int = Field(50, ge=1, le=250)


class DepthSettings(_NetSettings):
    """Lab 7, part 1: the same parameter budgets spent on 1, 2, 3... layers."""

    budgets: list[int] = Field(default_factory=lambda: [13, 25, 50, 100], min_length=1,
                               max_length=6)
    depths: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1, max_length=4)

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, value: list[int]) -> list[int]:
        if any(not 4 <= b <= 400 for b in value) or len(set(value)) != len(value):
            raise ValueError("budgets must be distinct parameter counts from 4 to 400")
        return value

    @field_validator("depths")
    @classmethod
    def _depths(cls, value: list[int]) -> list[int]:
        if any(not 1 <= d <= 4 for d in value) or len(set(value)) != len(value):
            raise ValueError("depths must be distinct numbers of layers from 1 to 4")
        return value

    def check_budget(self) -> None:
        nets = len(self.budgets) * len(self.depths)
        largest = DEPTH_WORK_LIMIT // nets
        if self.steps > largest:
            raise LabTooLarge(
                f"{nets} nets of {self.steps} steps each is more than one request may train; "
                f"the most steps per net that works with {nets} nets is {largest}.",
                "steps", largest)


class CurvatureSettings(_NetSettings):
    """Lab 7, part 2: one net trained, then its Hessian's top eigenvalues and a slice."""

    depth: int = Field(2, ge=1, le=4)
    width: int = Field(8, ge=1, le=32)
    k: int = Field(5, ge=1, le=10, description="eigenvalues wanted")
    iterations: int = Field(30, ge=1, le=100, description="Lanczos steps (one HVP each)")
    slice_points: int = Field(41, ge=5, le=101)
    span: float = Field(1.0, gt=0.0, le=10.0, description="α runs over ±span")

    def check_budget(self) -> None:
        input_dim = depth_lab.TARGETS[self.target]
        size = depth_lab.parameter_count(input_dim, self.depth, self.width)
        if size > CURVATURE_PARAMETERS:
            largest = depth_lab.width_for_budget(CURVATURE_PARAMETERS, self.depth, input_dim)
            raise LabTooLarge(
                f"a net of {self.depth} × {self.width} units has {size} parameters; this lab "
                f"runs Lanczos in the request up to {CURVATURE_PARAMETERS} (submit a spectrum "
                f"job for larger nets). The widest net that works at depth {self.depth} has "
                f"{largest} units per layer.", "width", largest or 1)
        if self.steps > DEPTH_WORK_LIMIT:
            raise LabTooLarge(f"at most {DEPTH_WORK_LIMIT} steps", "steps", DEPTH_WORK_LIMIT)

    def net(self) -> depth_lab.NetSetting:
        return depth_lab.NetSetting(
            target=self.target, depth=self.depth, width=self.width, activation=self.activation,
            size=self.size, steps=self.steps, learning_rate=self.learning_rate,
            batch_size=self.batch_size, seed=self.seed)


def _deadline() -> Callable[[], None]:
    stop = time.monotonic() + TIME_LIMIT_S

    def check() -> None:
        if time.monotonic() > stop:
            raise LabTimeout
    return check


def _bounded(settings: BaseModel, work: Callable[[Callable[[], None]], dict]) -> dict:
    """Check the budget, wait for a turn, run with a deadline; errors become 422s."""
    try:
        settings.check_budget()  # type: ignore[attr-defined]
    except LabTooLarge as error:
        raise HTTPException(422, {"message": error.message, "field": error.field,
                                  "largest": error.largest}) from None
    with RUNNING:
        try:
            return _finite(work(_deadline()))
        except LabTimeout:
            raise HTTPException(422, {
                "message": f"this setting took longer than {TIME_LIMIT_S:g} s, the most one "
                "request may take while a class shares the server: ask for fewer steps, "
                "units or samples."}) from None
        except ValueError as error:  # the engine names what it cannot do
            raise HTTPException(422, {"message": str(error)}) from None


def _finite(value):
    """JSON has no NaN or infinity: those become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


@router.post("/api/labs/hidden-units/run")
def run_hidden_units(settings: HiddenUnitsSettings) -> dict:
    """Lab 5: train one net; snapshots of its dead and saturated units, its linear-region
    map (piecewise-linear units) and its prediction over the plane."""
    setting = hidden_units.HiddenUnitsSetting(**settings.model_dump())
    return _bounded(settings, lambda check: hidden_units.run_hidden_units(setting, check))


@router.post("/api/labs/hidden-units/sawtooth")
def sawtooth(settings: SawtoothSettings) -> dict:
    """Lab 5: the tent map composed ``depth`` times by 2 rectifiers a layer (section 6.6's
    deep-against-shallow count): its curve, its regions and one layer's bound."""

    def work(check: Callable[[], None]) -> dict:
        model = regions.sawtooth_network(settings.depth)
        result = regions.region_map(model, ((0.0, 1.0),), settings.points)
        x = regions.grid(((0.0, 1.0),), settings.points)
        with no_grad():
            y = model.forward(x).value[:, 0]
        units = 2 * settings.depth
        return {"x": x[:, 0].tolist(), "y": y.tolist(), "regions": result.ids.tolist(),
                "count": result.count, "units": units,
                "shallow_bound": regions.shallow_region_bound(units, 1)}

    return _bounded(settings, work)


@router.post("/api/labs/random-operations/compare")
def compare_estimators(settings: RandomOperationsSettings) -> dict:
    """Lab 6: the reparametrised and REINFORCE estimates (with and without a baseline)
    against sample count, beside the exact gradient; and J(y) with p(y) to draw."""

    def work(check: Callable[[], None]) -> dict:
        cost = stochastic.make_cost(settings.cost, settings.target)
        result = stochastic.compare(cost, settings.mu, settings.sigma, settings.largest,
                                    settings.repeats, settings.seed)
        y = np.linspace(settings.mu - 4 * settings.sigma, settings.mu + 4 * settings.sigma, 161)
        density = np.exp(-0.5 * ((y - settings.mu) / settings.sigma) ** 2) / (
            settings.sigma * math.sqrt(2 * math.pi))
        result["curve"] = {"y": y.tolist(), "cost": cost.value(y).tolist(),
                           "density": density.tolist()}
        return result

    return _bounded(settings, work)


@router.post("/api/labs/depth-and-curvature/compare")
def compare_depths(settings: DepthSettings) -> dict:
    """Lab 7: error against parameter count, one curve per depth."""
    base = depth_lab.NetSetting(
        target=settings.target, activation=settings.activation, size=settings.size,
        steps=settings.steps, learning_rate=settings.learning_rate,
        batch_size=settings.batch_size, seed=settings.seed)
    return _bounded(settings, lambda check: depth_lab.compare_depths(
        base, settings.budgets, settings.depths, check))


@router.post("/api/labs/depth-and-curvature/curvature")
def curvature(settings: CurvatureSettings) -> dict:
    """Lab 7: train one net, then its Hessian's top eigenvalues (Lanczos on HVPs, exact
    when small) and the cost along the top eigenvector; with the config and weights a
    spectrum or landscape job needs to go further."""

    def work(check: Callable[[], None]) -> dict:
        fitted = depth_lab.fit(settings.net(), check)
        result = depth_lab.curvature(fitted, settings.k, settings.iterations,
                                     settings.slice_points, settings.span, settings.seed,
                                     check=check)
        result.update(train_error=fitted.train_error, test_error=fitted.test_error,
                      config=fitted.config.to_dict(), weights=fitted.model.state_dict())
        return result

    return _bounded(settings, work)
