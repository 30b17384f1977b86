"""Hidden-unit diagnostics and the training runs of the hidden-units lab (lab 5).

- **Dead units** (section 6.8): a rectifier gets no gradient on an example where it is
  off; one that is off on *every* training input never learns again. Counted here as a
  unit with a flat piece whose derivative g'(a) is exactly zero on every input (a ReLU
  with a ≤ 0 everywhere, a hard tanh stuck beyond ±1). A small positive bias at initialisation
  keeps rectifiers on for more inputs (the chapter's mitigation); ``set_hidden_bias``
  sets it.
- **Saturation**: sigmoid, tanh, hard tanh, softplus and RBF units whose derivative is
  tiny pass almost no gradient back. ``relative_derivative`` puts each unit's g'(a) on
  a 0..1 scale (1 where the unit is steepest); a unit counts as saturated when that is
  below ``threshold`` on at least ``share`` of the inputs.
- **Random rectifier features** (section 6.8, Jarrett et al.): with ``train_hidden``
  off only the output layer learns, on top of the random first layers.

numpy only; training uses the layer-wise fast path where it applies and the generic
engine otherwise (RBF units).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.autodiff import grad, no_grad
from engine.datasets import Dataset, make_dataset
from engine.fastpath import FastPath, unsupported_reason
from engine.nn import MLP, Layer, predict_from_outputs
from engine.optim import Optimizer
from engine.regions import (
    activation_patterns,
    arrangement_count,
    check_piecewise_linear,
    grid,
    kink_lines,
    region_ids,
    shallow_region_bound,
)
from engine.spec import DataSpec, LayerSpec, ModelSpec, OutputSpec, TrainingSpec

SATURATING = ("sigmoid", "tanh", "hard_tanh", "softplus", "rbf")
SMOOTH = ("sigmoid", "tanh", "softplus", "rbf")


def relative_derivative(layer: Layer, pre_activation: np.ndarray) -> np.ndarray:
    """(n, units) g'(a) divided by the unit's largest possible g' (0..1)."""
    kind = layer.spec.activation
    a = np.asarray(pre_activation, dtype=np.float64)
    if kind == "relu":
        return (a > 0).astype(np.float64)
    if kind in ("leaky_relu", "prelu"):
        slope = layer.spec.slope if kind == "leaky_relu" else np.abs(layer.slope.value)
        return np.where(a > 0, 1.0, np.minimum(1.0, np.broadcast_to(slope, a.shape)))
    if kind == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * a))
        return 4.0 * s * (1.0 - s)  # σ' peaks at 1/4
    if kind == "tanh":
        return 1.0 - np.tanh(a) ** 2
    if kind == "softplus":
        return 0.5 * (1.0 + np.tanh(0.5 * a))  # ζ' = σ
    if kind == "hard_tanh":
        return (np.abs(a) < 1.0).astype(np.float64)
    if kind == "rbf":
        # h = exp(a), a = b − ‖x − w‖²/σ²: relative to the unit's peak e^b
        return np.exp(np.minimum(a - layer.bias.value, 0.0))
    if kind == "abs":
        return (a != 0).astype(np.float64)
    if kind == "maxout":
        return np.ones((a.shape[0], a.shape[1] // layer.spec.pieces))
    return np.ones_like(a)  # linear


@dataclass
class LayerStatistics:
    units: int
    dead: list[int]  # units with g'(a) = 0 on every input
    saturated: list[int]  # saturating units with g'(a) < threshold on ≥ share of inputs
    saturated_fraction: float  # of (input, unit) pairs below the threshold (saturating units)
    active_fraction: float  # of (input, unit) pairs with g'(a) > 0

    def to_dict(self) -> dict:
        return {
            "units": self.units,
            "dead": self.dead,
            "saturated": self.saturated,
            "saturated_fraction": self.saturated_fraction,
            "active_fraction": self.active_fraction,
        }


def layer_statistics(
    model: MLP, x: np.ndarray, threshold: float = 0.01, share: float = 0.9
) -> list[LayerStatistics]:
    """Dead and saturated units of every hidden layer on the inputs ``x``."""
    if not (0.0 < threshold < 1.0 and 0.0 < share <= 1.0):
        raise ValueError("threshold must lie in (0, 1) and share in (0, 1]")
    with no_grad():
        layers = model.forward_layers(np.asarray(x, dtype=np.float64))
    result = []
    for layer, (a, _) in zip(model.layers, layers[:-1]):
        derivative = relative_derivative(layer, a.value)
        kind = layer.spec.activation
        # only a unit with a flat piece can be dead; a smooth unit's g' underflowing to 0
        # (tanh far out) is extreme saturation
        flat = np.all(derivative == 0.0, axis=0) & (kind not in SMOOTH)
        dead = np.flatnonzero(flat)
        saturating = kind in SATURATING
        below = derivative < threshold
        saturated = (
            np.flatnonzero((below.mean(axis=0) >= share) & ~flat)
            if saturating
            else np.zeros(0, dtype=int)
        )
        result.append(
            LayerStatistics(
                units=layer.units,
                dead=dead.tolist(),
                saturated=saturated.tolist(),
                saturated_fraction=float(below.mean()) if saturating else 0.0,
                active_fraction=float((derivative > 0).mean()),
            )
        )
    return result


def set_hidden_bias(model: MLP, value: float) -> None:
    """Every hidden bias to ``value`` (RBF biases, log-amplitudes, are left alone)."""
    if not math.isfinite(value):
        raise ValueError("the bias must be finite")
    for layer in model.layers:
        if layer.spec.activation != "rbf":
            layer.bias.value = np.full_like(layer.bias.value, value)


class Fitter:
    """Minibatch training of ``model`` on (features, y), all layers or the output only."""

    def __init__(self, model: MLP, training: TrainingSpec, train_hidden: bool = True,
                 seed: int = 0):
        self.model = model
        self.training = training
        self.fastpath = FastPath(model) if unsupported_reason(model) is None else None
        parameters = model.parameters()
        count = len(model.output.parameters())
        self.trained = list(range(len(parameters))) if train_hidden else list(
            range(len(parameters) - count, len(parameters)))
        self.optimizer = Optimizer([parameters[i] for i in self.trained], training)
        self.rng = np.random.default_rng(seed)
        self.steps = 0

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Minibatch loss and ∇J for every parameter, from raw inputs ``x``."""
        l2, l1 = self.training.l2, self.training.l1
        if self.fastpath is not None:
            return self.fastpath.gradients(self.model.features(x), y, l2, l1)
        loss = self.model.loss(self.model.forward(x), y)
        penalty = self.model.penalty(l2, l1)
        cost = loss if penalty is None else loss + penalty
        return float(loss.value), [g.value for g in grad(cost, self.model.parameters())]

    def run(self, x: np.ndarray, y: np.ndarray, steps: int,
            check: Callable[[], None] | None = None) -> float:
        """``steps`` minibatch updates on raw inputs ``x``; returns the last minibatch loss."""
        n = x.shape[0]
        batch = min(self.training.batch_size, n)
        loss = float("nan")
        for _ in range(steps):
            if check is not None:
                check()
            index = self.rng.choice(n, size=batch, replace=False)
            loss, gradients = self.gradients(x[index], y[index])
            if not math.isfinite(loss):
                raise ValueError(
                    f"training diverged at step {self.steps + 1} (the loss became {loss}): "
                    "lower the learning rate")
            self.optimizer.step([gradients[i] for i in self.trained])
            self.steps += 1
        return loss


def loss_and_accuracy(model: MLP, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy of a Bernoulli or softmax classifier."""
    with no_grad():
        z = model.forward(x)
        loss = float(model.loss(z, y).value)
    if model.spec.output.loss == "softmax":
        predicted = np.argmax(z.value, axis=1)
    else:
        predicted = (z.value[:, 0] > 0).astype(np.float64)
    return loss, float(np.mean(predicted == y))


# ----- the lab's run ----------------------------------------------------------------------
COUNT_RESOLUTION = 320
COUNT_WORK = 2_000_000  # grid cells × pre-activations per frame, for the region count
KINKS = {"relu": 1, "leaky_relu": 1, "prelu": 1, "abs": 1, "hard_tanh": 2}  # per unit
LAB_DATASETS = ("circle", "xor", "gaussians", "spiral", "moons", "two_curves", "checkerboard")


@dataclass
class HiddenUnitsSetting:
    """One run of lab 5: a net of ``depth`` × ``width`` units of one kind on a 2-D set."""

    activation: str = "relu"
    depth: int = 1
    width: int = 6
    pieces: int = 2  # maxout
    slope: float = 0.01  # leaky ReLU's slope, PReLU's initial slope
    bias: float | None = None  # every hidden bias at the start; None: the engine's default
    train_hidden: bool = True  # off: only the output layer learns (random features)
    dataset: str = "circle"
    size: int = 300
    noise: float = 0.1
    optimizer: str = "adam"
    learning_rate: float = 0.01
    batch_size: int = 20
    steps: int = 600
    frames: int = 7  # snapshots from step 0 to ``steps``
    resolution: int = 64
    init_scale: float = 1.0
    seed: int = 0


def one_layer_bound(setting: HiddenUnitsSetting) -> int | None:
    """The most regions one layer of all the net's units could make in the plane (None
    for units that are not piecewise linear)."""
    units = setting.depth * setting.width
    if setting.activation == "maxout":
        return shallow_region_bound(units, 2, math.comb(setting.pieces, 2))
    if setting.activation == "linear":
        return 1
    if setting.activation not in KINKS:
        return None
    kinks = KINKS[setting.activation]
    return shallow_region_bound(units, 2, kinks, parallel=kinks == 2)


def counting_resolution(setting: HiddenUnitsSetting) -> int:
    """Cells per side of the grid the regions are counted on: four times the map's, at
    most ``COUNT_RESOLUTION``, and fewer for wide deep nets (each cell costs a forward
    pass through every pre-activation), never fewer than the map's own."""
    columns = setting.depth * setting.width * (
        setting.pieces if setting.activation == "maxout" else 1)
    affordable = int(math.sqrt(COUNT_WORK / columns))
    return max(setting.resolution, min(4 * setting.resolution, COUNT_RESOLUTION, affordable))


def build_network(setting: HiddenUnitsSetting) -> tuple[MLP, Dataset]:
    """The lab's untrained net (bias set when asked) and its dataset."""
    if setting.dataset not in LAB_DATASETS:
        raise ValueError(
            f"unknown dataset {setting.dataset!r}; choose from {', '.join(LAB_DATASETS)}")
    data = make_dataset(DataSpec(name=setting.dataset, size=setting.size, noise=setting.noise,
                                 seed=0))
    layer = LayerSpec(setting.width, setting.activation, slope=setting.slope,
                      pieces=setting.pieces)
    spec = ModelSpec(
        features=["x1", "x2"],
        layers=[LayerSpec(**vars(layer)) for _ in range(setting.depth)],
        output=OutputSpec("bernoulli"),
        init_scale=setting.init_scale,
        seed=setting.seed,
    )
    model = MLP(spec, input_dim=2, classes=2)
    if setting.bias is not None:
        set_hidden_bias(model, setting.bias)
    return model, data


def run_hidden_units(setting: HiddenUnitsSetting,
                     check: Callable[[], None] | None = None) -> dict:
    """Train one net and snapshot, ``frames`` times, its losses, dead and saturated units,
    linear-region map (piecewise-linear units) and predicted P(y = 1 | x) over the plane."""
    model, data = build_network(setting)
    training = TrainingSpec(optimizer=setting.optimizer, learning_rate=setting.learning_rate,
                            batch_size=setting.batch_size)
    fitter = Fitter(model, training, setting.train_hidden, seed=setting.seed)
    extent = tuple((float(lo), float(hi)) for lo, hi in data.extent)
    points = grid(extent, setting.resolution)
    count_resolution = counting_resolution(setting)
    fine = grid(extent, count_resolution) if count_resolution > setting.resolution else points
    try:
        check_piecewise_linear(model)
        regions_reason = None
    except ValueError as error:
        regions_reason = str(error)
    frames = max(2, setting.frames)
    marks = sorted({round(setting.steps * i / (frames - 1)) for i in range(frames)})
    snapshots = []
    done = 0
    for mark in marks:
        fitter.run(data.x_train, data.y_train, mark - done, check)
        done = mark
        train_loss, train_accuracy = loss_and_accuracy(model, data.x_train, data.y_train)
        test_loss, test_accuracy = loss_and_accuracy(model, data.x_test, data.y_test)
        with no_grad():
            surface = predict_from_outputs(model.spec.output, model.forward(points).value)
        snapshot = {
            "step": mark,
            "train_loss": train_loss,
            "test_loss": test_loss,
            "train_accuracy": train_accuracy,
            "test_accuracy": test_accuracy,
            "layers": [s.to_dict() for s in layer_statistics(model, data.x_train)],
            "surface": np.round(surface, 4).tolist(),
            "regions": None,
            "region_count": None,
        }
        if regions_reason is None:
            ids, count = region_ids(activation_patterns(model, points))
            snapshot["regions"] = ids.tolist()
            # counted on a finer grid than the map's where affordable: thin regions show up
            snapshot["region_count"] = (
                count if fine is points else region_ids(activation_patterns(model, fine))[1])
            lines = kink_lines(model) if setting.depth == 1 else None
            # one layer: the count the lines' geometry predicts (crossings in the window)
            snapshot["arrangement"] = (
                arrangement_count(*lines, extent) if lines is not None else None)
        snapshots.append(snapshot)
    return {
        "extent": [list(e) for e in extent],
        "resolution": setting.resolution,
        "count_resolution": count_resolution,
        "points": {"x": np.round(data.x_train, 4).tolist(), "y": data.y_train.tolist()},
        "parameters": int(sum(p.value.size for p in model.parameters())),
        "units": setting.depth * setting.width,
        "regions_reason": regions_reason,
        "shallow_bound": one_layer_bound(setting),
        "frames": snapshots,
        "units_detail": unit_details(model, data.x_train),
    }


def unit_details(model: MLP, x: np.ndarray) -> dict:
    """What each kind of unit learned: PReLU slopes, RBF templates (first layer, input
    space), the share of inputs each maxout piece wins."""
    detail: dict = {"prelu_slopes": None, "rbf_templates": None, "maxout_share": None}
    first = model.layers[0] if model.layers else None
    kind = first.spec.activation if first is not None else None
    if kind == "prelu":
        detail["prelu_slopes"] = [np.round(layer.slope.value, 4).tolist()
                                  for layer in model.layers]
    elif kind == "rbf":
        detail["rbf_templates"] = {
            "centres": np.round(first.weights.value.T, 4).tolist(),
            "widths": np.round(np.abs(first.widths.value), 4).tolist(),
        }
    elif kind == "maxout":
        with no_grad():
            layers = model.forward_layers(np.asarray(x, dtype=np.float64))
        shares = []
        for layer, (a, _) in zip(model.layers, layers[:-1]):
            pieces = layer.spec.pieces
            winner = np.argmax(a.value.reshape(a.shape[0], -1, pieces), axis=2)
            shares.append([[float(np.mean(winner[:, unit] == piece)) for piece in range(pieces)]
                           for unit in range(winner.shape[1])])
        detail["maxout_share"] = shares
    return detail
