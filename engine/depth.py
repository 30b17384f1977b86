"""Depth against width, and the curvature of the trained net (lab 7).

Section 6.6: one hidden layer can approximate any continuous function on a bounded set
given enough units, but the chapter cites families of functions that need far fewer
units when the net is deeper. ``compare_depths`` fits the same target with the same
parameter budget spent on 1, 2, 3... hidden layers and reports the error against the
parameter count.

Section 6.4.5: the trained net's Hessian is rarely formed; ``curvature`` gets its top
eigenvalues by Lanczos on Hessian-vector products (grad of grad, ``engine.curvature``),
forms the whole Hessian only when it is small, and draws the cost along the top
eigenvector, where a quadratic with that eigenvalue as its curvature should fit it.

The nets are ``engine.spec.Config``s on the engine's own regression sets, so the jobs
(spectrum, landscape) can take the same config and weights. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.autodiff import no_grad
from engine.curvature import HessianVectorProduct, flatten, full_hessian, lanczos, unflatten
from engine.datasets import Dataset, make_dataset
from engine.hidden_units import Fitter
from engine.nn import MLP
from engine.spec import Config, TrainingSpec

TARGETS = {"sine_1d": 1, "ripple_2d": 2}  # the engine's regression sets, by input count
# the Hessian is formed column by column (one product each) up to this many parameters
MAX_EXACT_PARAMETERS = 400


def parameter_count(input_dim: int, depth: int, width: int) -> int:
    """Weights and biases of ``depth`` tanh-like layers of ``width`` units, one output."""
    if depth < 1 or width < 1:
        raise ValueError("depth and width must be at least 1")
    return (input_dim + 1) * width + (depth - 1) * (width + 1) * width + width + 1


def width_for_budget(budget: int, depth: int, input_dim: int) -> int | None:
    """The largest width whose net has at most ``budget`` parameters (None: not even 1)."""
    if parameter_count(input_dim, depth, 1) > budget:
        return None
    width = 1
    while parameter_count(input_dim, depth, width + 1) <= budget:
        width += 1
    return width


@dataclass
class NetSetting:
    """One regression net of lab 7 and how it is trained."""

    target: str = "sine_1d"
    depth: int = 1
    width: int = 8
    activation: str = "tanh"
    size: int = 200
    steps: int = 1500
    learning_rate: float = 0.01
    batch_size: int = 50
    seed: int = 0

    def config(self) -> Config:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose from {', '.join(TARGETS)}")
        features = ["x1", "x2"][: TARGETS[self.target]]
        return Config.from_dict({
            "model": {
                "features": features,
                "layers": [{"units": self.width, "activation": self.activation}] * self.depth,
                "output": {"loss": "squared"},
                "seed": self.seed,
            },
            "training": {"optimizer": "adam", "learning_rate": self.learning_rate,
                         "batch_size": self.batch_size},
            "data": {"name": self.target, "size": self.size, "noise": 0.0, "seed": 0},
        })


@dataclass
class Fit:
    model: MLP
    dataset: Dataset
    config: Config
    train_error: float  # mean squared error ‖f(x) − y‖² / n (no ½)
    test_error: float
    parameters: int = field(default=0)


def mean_squared_error(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    with no_grad():
        prediction = model.forward(x).value[:, 0]
    return float(np.mean((prediction - y) ** 2))


def fit(setting: NetSetting, check: Callable[[], None] | None = None) -> Fit:
    """Train the net of ``setting`` (deterministic for its seed)."""
    config = setting.config()
    dataset = make_dataset(config.data)
    model = MLP(config.model, dataset.input_dim, 2)
    training = TrainingSpec(optimizer="adam", learning_rate=setting.learning_rate,
                            batch_size=setting.batch_size)
    Fitter(model, training, seed=setting.seed).run(
        dataset.x_train, dataset.y_train, setting.steps, check)
    return Fit(
        model, dataset, config,
        mean_squared_error(model, dataset.x_train, dataset.y_train),
        mean_squared_error(model, dataset.x_test, dataset.y_test),
        int(sum(p.value.size for p in model.parameters())),
    )


def compare_depths(base: NetSetting, budgets: list[int], depths: list[int],
                   check: Callable[[], None] | None = None, curve_points: int = 121) -> dict:
    """Error against parameter count, one curve per depth, each point the widest net of
    that depth within the budget; plus, for a 1-D target, each depth's fitted curve at
    the largest budget."""
    input_dim = TARGETS.get(base.target)
    if input_dim is None:
        raise ValueError(f"unknown target {base.target!r}; choose from {', '.join(TARGETS)}")
    curves = []
    fits_at_largest: dict[int, Fit] = {}
    for depth in depths:
        points = []
        for budget in sorted(budgets):
            width = width_for_budget(budget, depth, input_dim)
            if width is None:
                continue  # even one unit per layer is over budget
            setting = NetSetting(**{**vars(base), "depth": depth, "width": width})
            result = fit(setting, check)
            points.append({"budget": budget, "width": width, "parameters": result.parameters,
                           "train_error": result.train_error, "test_error": result.test_error})
            fits_at_largest[depth] = result
        curves.append({"depth": depth, "points": points})
    answer: dict = {"target": base.target, "curves": curves, "fits": None}
    any_fit = next(iter(fits_at_largest.values()), None)
    if input_dim == 1 and any_fit is not None:
        low, high = any_fit.dataset.extent[0]
        x = np.linspace(low, high, curve_points).reshape(-1, 1)
        with no_grad():
            answer["fits"] = {
                "x": x[:, 0].tolist(),
                "data": {"x": any_fit.dataset.x_train[:, 0].tolist(),
                         "y": any_fit.dataset.y_train.tolist()},
                "curves": [{"depth": depth, "width": f.model.layers[0].units,
                            "parameters": f.parameters,
                            "y": f.model.forward(x).value[:, 0].tolist()}
                           for depth, f in fits_at_largest.items()],
            }
    return answer


def largest_exact_width(depth: int, input_dim: int, limit: int = MAX_EXACT_PARAMETERS) -> int:
    """The widest net of this depth whose Hessian ``curvature`` will still form."""
    return width_for_budget(limit, depth, input_dim) or 0


def curvature(
    fitted: Fit,
    k: int = 5,
    iterations: int = 30,
    slice_points: int = 41,
    span: float = 1.0,
    seed: int = 0,
    max_exact: int = MAX_EXACT_PARAMETERS,
    check: Callable[[], None] | None = None,
) -> dict:
    """Top-k Hessian eigenvalues of the training cost J = ½ mean (f − y)² at the trained
    weights by Lanczos; the exact top-k when the net has at most ``max_exact``
    parameters (else the reason and the widest net that would do); the cost along the
    top eigenvector v, J(θ + α v), beside its quadratic model J + α gᵀv + ½ λ α²."""
    model, dataset = fitted.model, fitted.dataset
    params = model.parameters()
    x, y = dataset.x_train, dataset.y_train
    cost = model.cost(x, y)
    hvp = HessianVectorProduct(cost, params)
    size = hvp.size

    def after_step(step: int, ritz: np.ndarray) -> None:
        if check is not None:
            check()

    top = lanczos(hvp, size, k, iterations, seed=seed, callback=after_step)
    exact = None
    exact_reason = None
    if size <= max_exact:
        hessian = full_hessian(hvp, size, check)
        exact = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))[::-1][:k].tolist()
    else:
        depth, input_dim = len(model.layers), dataset.input_dim
        exact_reason = (
            f"this net has {size} parameters: its Hessian would hold {size * size:,} numbers "
            f"and take {size} Hessian-vector products to form; this lab forms it up to "
            f"{max_exact} parameters (width {largest_exact_width(depth, input_dim, max_exact)}"
            f" at depth {depth}). Lanczos needs only {top.iterations} products."
        )
    theta = flatten([p.value for p in params])
    shapes = [p.shape for p in params]
    gradient = hvp.gradient
    direction = top.vectors[:, 0]
    alphas = np.linspace(-span, span, slice_points)
    costs = []
    for alpha in alphas:
        if check is not None:
            check()
        for p, value in zip(params, unflatten(theta + alpha * direction, shapes)):
            p.value = value.copy()
        with no_grad():
            costs.append(float(model.cost(x, y).value))
    for p, value in zip(params, unflatten(theta, shapes)):
        p.value = value.copy()
    centre = float(cost.value)
    slope = float(gradient @ direction)
    quadratic = centre + slope * alphas + 0.5 * float(top.eigenvalues[0]) * alphas**2
    return {
        "parameters": size,
        "cost": centre,
        "gradient_norm": float(np.linalg.norm(gradient)),
        "eigenvalues": top.eigenvalues.tolist(),
        "residuals": top.residuals.tolist(),
        "iterations": top.iterations,
        "exact": exact,
        "exact_reason": exact_reason,
        "slice": {"alphas": alphas.tolist(), "cost": costs, "quadratic": quadratic.tolist()},
    }


