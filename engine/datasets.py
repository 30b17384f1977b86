"""Seeded toy datasets for the playground: what the network is asked to learn.

Every generator first draws the clean points, then one standard-normal (or standard
exponential) draw per coordinate that ``noise`` (0..1) scales. The random stream is
therefore the same for every noise level, so moving the noise slider moves the
points smoothly instead of drawing a new cloud. The examples are then shuffled and
split into a training and a test set by ``train_fraction``.

Classification sets live in about [-3, 3]² with integer labels stored as float64
(0/1 for binary tasks, 0..K-1 for multi-class ones); regression sets have inputs in
about [-3, 3] and real-valued targets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.spec import DataSpec, ModelSpec

MAX_SIZE = 5000
MAX_CLASSES = 10

# Which tasks each output unit and loss can model (section 6.3.2 of the chapter).
LOSS_TASKS = {
    "bernoulli": ("binary",),
    "softmax": ("binary", "multiclass"),
    "squared": ("binary", "multiclass", "regression"),
    "absolute": ("binary", "multiclass", "regression"),
    "gaussian": ("regression",),
    "gaussian_learned": ("regression",),
    "mixture": ("regression",),
}
_FEATURES_NEEDING_X2 = ("x2", "x2_squared", "x1_x2", "sin_x2")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    task: str  # "binary" | "multiclass" | "regression"
    input_dim: int
    description: str


@dataclass
class Dataset:
    x_train: np.ndarray  # (n_train, input_dim) float64
    y_train: np.ndarray  # (n_train,) float64: class labels or real targets
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    classes: int  # 2 for binary, K for multi-class, 0 for regression
    input_dim: int
    extent: tuple[tuple[float, float], ...]  # padded bounding box per input dimension
    name: str
    # padded range of the targets, for drawing regression curves; None for classification
    target_extent: tuple[float, float] | None = None

    @property
    def x(self) -> np.ndarray:
        """All inputs, training examples first."""
        return np.concatenate([self.x_train, self.x_test])

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([self.y_train, self.y_test])


# ----- generators: (rng, n, noise, spec) -> (x, y) ---------------------------------------
Generator = Callable[[np.random.Generator, int, float, DataSpec], tuple[np.ndarray, np.ndarray]]


def _halves(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def _circle(rng, n, noise, spec):
    radius = 2.5
    inner, outer = _halves(n)
    r = np.concatenate(
        [
            rng.uniform(0.0, 0.5 * radius, inner),
            rng.uniform(0.7 * radius, radius, outer),
        ]
    )
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    x += 0.5 * noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.ones(inner), np.zeros(outer)])
    return x, y


def _xor(rng, n, noise, spec):
    # a gap around the axes keeps the four quadrants apart when there is no noise
    magnitude = rng.uniform(0.3, 3.0, (n, 2))
    sign = np.where(rng.uniform(size=(n, 2)) < 0.5, -1.0, 1.0)
    x = magnitude * sign
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float64)
    x += 0.6 * noise * rng.standard_normal((n, 2))
    return x, y


def _gaussians(rng, n, noise, spec):
    positive, negative = _halves(n)
    centres = np.concatenate(
        [np.tile([1.5, 1.5], (positive, 1)), np.tile([-1.5, -1.5], (negative, 1))]
    )
    x = centres + (0.4 + 1.2 * noise) * rng.standard_normal((n, 2))
    y = np.concatenate([np.ones(positive), np.zeros(negative)])
    return x, y


def _spiral_arms(rng, n, noise, arms, turns, start):
    counts = [n // arms + (1 if k < n % arms else 0) for k in range(arms)]
    points, labels = [], []
    for arm, count in enumerate(counts):
        t = rng.uniform(0.0, 1.0, count)
        radius = 0.2 + 2.8 * t
        angle = start + 2.0 * math.pi * (turns * t + arm / arms)
        points.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        labels.append(np.full(count, float(arm)))
    x = np.concatenate(points)
    x += 0.35 * noise * rng.standard_normal((n, 2))
    return x, np.concatenate(labels)


def _spiral(rng, n, noise, spec):
    return _spiral_arms(rng, n, noise, arms=2, turns=1.25, start=0.0)


def _spiral_multiclass(rng, n, noise, spec):
    return _spiral_arms(rng, n, noise, arms=spec.classes, turns=0.6, start=0.0)


def _moons(rng, n, noise, spec):
    upper, lower = _halves(n)
    t = rng.uniform(0.0, math.pi, n)
    x = np.empty((n, 2))
    x[:upper, 0] = np.cos(t[:upper])
    x[:upper, 1] = np.sin(t[:upper])
    x[upper:, 0] = 1.0 - np.cos(t[upper:])
    x[upper:, 1] = 0.5 - np.sin(t[upper:])
    x = 2.0 * (x - [0.5, 0.25])
    x += 0.3 * noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.ones(upper), np.zeros(lower)])
    return x, y


def _two_curves(rng, n, noise, spec):
    # Fig. 6.2 draws each class along its own curve. Ours: one steep S-shaped curve,
    # shifted up for one class and down for the other. Near x1 = 0 a separating line must
    # be steep, far out it must be flat: no line separates them, but a 2-2-1 tanh network
    # bends the plane until one does.
    upper, lower = _halves(n)
    x1 = rng.uniform(-2.5, 2.5, n)
    offset = np.concatenate([np.full(upper, 0.5), np.full(lower, -0.5)])
    x2 = 1.5 * np.tanh(2.0 * x1) + offset
    x = np.stack([x1, x2], axis=1)
    x += 0.25 * noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.ones(upper), np.zeros(lower)])
    return x, y


def _checkerboard(rng, n, noise, spec):
    x = rng.uniform(-3.0, 3.0, (n, 2))
    cells = np.floor(x / 1.5).astype(np.int64)
    y = ((cells[:, 0] + cells[:, 1]) % 2 == 0).astype(np.float64)
    x += 0.4 * noise * rng.standard_normal((n, 2))
    return x, y


def _sine_1d(rng, n, noise, spec):
    x = rng.uniform(-3.0, 3.0, (n, 1))
    y = np.sin(1.5 * x[:, 0]) + 0.5 * noise * rng.standard_normal(n)
    return x, y


def _heteroscedastic_1d(rng, n, noise, spec):
    # the spread grows linearly from nothing at the left edge: a learned precision
    # (gaussian_learned) can follow it, a fixed one cannot
    x = rng.uniform(-3.0, 3.0, (n, 1))
    spread = (0.1 + 0.4 * noise) * (x[:, 0] + 3.0)
    y = 0.3 * x[:, 0] + 0.5 * np.sin(x[:, 0]) + spread * rng.standard_normal(n)
    return x, y


def _skewed_1d(rng, n, noise, spec):
    # exponential (one-sided) noise: the conditional mean (squared error) and the
    # conditional median (absolute error) differ
    x = rng.uniform(-3.0, 3.0, (n, 1))
    y = np.sin(x[:, 0]) + (0.2 + 0.8 * noise) * rng.standard_exponential(n)
    return x, y


def _inverse_sine(rng, n, noise, spec):
    # Draw t, compute x = t + 0.3 sin(2πt), then predict t from x: for the same x there
    # are up to three plausible targets, a multimodal p(y | x) for a mixture density.
    t = rng.uniform(0.0, 1.0, n)
    x = t + 0.3 * np.sin(2.0 * math.pi * t) + (0.03 + 0.1 * noise) * rng.standard_normal(n)
    return (4.0 * (x - 0.5)).reshape(n, 1), 2.0 * t - 1.0


def _ripple_2d(rng, n, noise, spec):
    x = rng.uniform(-3.0, 3.0, (n, 2))
    radius = np.sqrt((x * x).sum(axis=1))
    y = np.cos(2.0 * radius) * np.exp(-radius * radius / 8.0)
    y += 0.3 * noise * rng.standard_normal(n)
    return x, y


_SETS: list[tuple[DatasetInfo, Generator | None]] = [
    (
        DatasetInfo(
            "circle",
            "Circle",
            "binary",
            2,
            "One class inside a disc, the other on a ring around it: no line separates "
            "them, but the squared features x₁², x₂² or one hidden layer do.",
        ),
        _circle,
    ),
    (
        DatasetInfo(
            "xor",
            "XOR",
            "binary",
            2,
            "The class is the sign of x₁·x₂, the XOR of the two signs: the classic function "
            "a linear model cannot learn and one hidden layer can.",
        ),
        _xor,
    ),
    (
        DatasetInfo(
            "gaussians",
            "Two Gaussians",
            "binary",
            2,
            "Two Gaussian clouds; noise widens them until they overlap. Linearly separable "
            "when clean: a logistic regression is enough.",
        ),
        _gaussians,
    ),
    (
        DatasetInfo(
            "spiral",
            "Spiral",
            "binary",
            2,
            "Two interleaved spiral arms: hard for shallow nets, a showcase for how deeper "
            "layers warp the plane.",
        ),
        _spiral,
    ),
    (
        DatasetInfo(
            "moons",
            "Two moons",
            "binary",
            2,
            "Two interlocking half circles with a curved boundary between them.",
        ),
        _moons,
    ),
    (
        DatasetInfo(
            "two_curves",
            "Two curves (Fig. 6.2)",
            "binary",
            2,
            "One curve per class, as in Fig. 6.2: no straight line separates them in the input "
            "space, but a network with 2 hidden units warps the space until a line does.",
        ),
        _two_curves,
    ),
    (
        DatasetInfo(
            "checkerboard",
            "Checkerboard",
            "binary",
            2,
            "A 4 × 4 board of alternating squares: many linear regions, a test of capacity.",
        ),
        _checkerboard,
    ),
    (
        DatasetInfo(
            "spiral_multiclass",
            "Spiral, K classes",
            "multiclass",
            2,
            "K spiral arms (3 by default), one class each: a multinoulli output with a "
            "softmax over K units.",
        ),
        _spiral_multiclass,
    ),
    (
        DatasetInfo(
            "sine_1d",
            "Sine",
            "regression",
            1,
            "y = sin(1.5x) plus Gaussian noise: squared error makes the network estimate "
            "the conditional mean E[y | x].",
        ),
        _sine_1d,
    ),
    (
        DatasetInfo(
            "heteroscedastic_1d",
            "Growing noise",
            "regression",
            1,
            "Noise whose spread grows with x: a heteroscedastic Gaussian output learns a "
            "precision β(x) that shrinks where the data are spread out.",
        ),
        _heteroscedastic_1d,
    ),
    (
        DatasetInfo(
            "skewed_1d",
            "Skewed noise",
            "regression",
            1,
            "One-sided (exponential) noise above a sine: squared error estimates the "
            "conditional mean, absolute error the conditional median.",
        ),
        _skewed_1d,
    ),
    (
        DatasetInfo(
            "inverse_sine",
            "Inverse sine (multimodal)",
            "regression",
            1,
            "x = t + 0.3 sin(2πt), and the task is to predict t from x: several targets "
            "share one input, so p(y | x) has several peaks. A mixture density output can "
            "model them; a single Gaussian averages them.",
        ),
        _inverse_sine,
    ),
    (
        DatasetInfo(
            "ripple_2d",
            "Ripple",
            "regression",
            2,
            "A damped ripple cos(2r)·exp(−r²/8) over the plane: 2-D regression.",
        ),
        _ripple_2d,
    ),
    (
        DatasetInfo(
            "user",
            "Your points",
            "binary",
            2,
            "Points placed by hand or read from a file, each [x₁, x₂, label]; labels 0/1 "
            "give a binary task, more labels a multi-class one. Points from a file may "
            "instead carry regression targets, over one or two inputs.",
        ),
        None,  # read from data.points by make_dataset
    ),
]

DATASETS: dict[str, DatasetInfo] = {info.name: info for info, _ in _SETS}
_GENERATORS: dict[str, Generator] = {
    info.name: generator for info, generator in _SETS if generator is not None
}


# ----- validation ---------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_data_spec(data: DataSpec) -> None:
    """Raise ValueError naming the first field of ``data`` that cannot make a dataset."""
    if data.name not in DATASETS:
        raise ValueError(
            f"data.name: unknown dataset {data.name!r}; choose from {', '.join(DATASETS)}"
        )
    if data.name != "user":
        if not _is_int(data.size) or not 2 <= data.size <= MAX_SIZE:
            raise ValueError(
                f"data.size must be an integer from 2 to {MAX_SIZE}, got {data.size!r}"
            )
    if not _is_number(data.noise) or not 0.0 <= data.noise <= 1.0:
        raise ValueError(f"data.noise must lie in [0, 1], got {data.noise!r}")
    if not _is_number(data.train_fraction) or not 0.0 < data.train_fraction < 1.0:
        raise ValueError(
            f"data.train_fraction must lie strictly between 0 and 1, got {data.train_fraction!r}"
        )
    if not _is_int(data.seed) or data.seed < 0:
        raise ValueError(f"data.seed must be a non-negative integer, got {data.seed!r}")
    if data.name == "spiral_multiclass" and (
        not _is_int(data.classes) or not 2 <= data.classes <= MAX_CLASSES
    ):
        raise ValueError(
            f"data.classes must be an integer from 2 to {MAX_CLASSES}, got {data.classes!r}"
        )


USER_TARGETS = ("class", "value")


def _user_points(data: DataSpec) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """Rows of ``data.inputs`` coordinates and a label (or a real target, for ``target``
    "value"), with an optional last number (1 for training, 0 for test) that pins a point's
    side of the split, so that adding or removing a point never reshuffles the others."""
    points = data.points
    inputs, target = data.inputs, data.target
    if not _is_int(inputs) or inputs not in (1, 2):
        raise ValueError(f"data.inputs: user points have 1 or 2 coordinates, got {inputs!r}")
    if target not in USER_TARGETS:
        raise ValueError(f"data.target must be 'class' or 'value', got {target!r}")
    if inputs == 1 and target == "class":
        # the views draw one-input data as a curve ŷ(x): a regression picture
        raise ValueError("data.inputs: points with one coordinate need target 'value' "
                         "(one-input data are regression data here)")
    if not isinstance(points, (list, tuple, np.ndarray)) or not 2 <= len(points) <= MAX_SIZE:
        count = len(points) if hasattr(points, "__len__") else points
        raise ValueError(f"data.points: place from 2 to {MAX_SIZE} points, got {count!r}")
    coordinates = ["x1", "x2"][:inputs]
    last = "label" if target == "class" else "y"
    shape = f"[{', '.join([*coordinates, last])}] or [{', '.join([*coordinates, last])}, train]"
    width = inputs + 1
    rows = []
    sides: list[float] = []
    for index, row in enumerate(points):
        if not isinstance(row, (list, tuple, np.ndarray)) or len(row) not in (width, width + 1):
            raise ValueError(f"data.points[{index}] must be {shape}, got {row!r}")
        if not all(_is_number(v) for v in row):
            raise ValueError(f"data.points[{index}] must hold numbers, got {row!r}")
        if not all(math.isfinite(float(v)) for v in row):
            raise ValueError(f"data.points[{index}] contains NaN or infinity")
        if len(row) == width + 1 and float(row[width]) not in (0.0, 1.0):
            raise ValueError(f"data.points[{index}]: train must be 1 (training) or 0 (test)")
        rows.append([float(v) for v in row[:width]])
        sides.append(float(row[width]) if len(row) == width + 1 else np.nan)
    array = np.array(rows)
    labels = array[:, inputs]
    pinned = np.array(sides)
    pinned_or_none = None if np.all(np.isnan(pinned)) else pinned
    if target == "value":
        return array[:, :inputs], labels, 0, pinned_or_none
    limit = max(2, data.classes if _is_int(data.classes) else 2)
    limit = min(limit, MAX_CLASSES)
    for index, label in enumerate(labels):
        if label != round(label) or not 0 <= label < limit:
            raise ValueError(
                f"data.points[{index}]: label {label:g} is not a class; use an integer "
                f"from 0 to {limit - 1}"
            )
    classes = max(2, int(labels.max()) + 1)
    return array[:, :inputs], labels, classes, pinned_or_none


def _user_split(pinned: np.ndarray | None, n: int, data: DataSpec) -> tuple[np.ndarray, ...]:
    # one uniform draw per row index: the same rows get the same draws when points are
    # appended, so unpinned points keep their side too
    draws = np.random.default_rng(data.seed).random(n) < data.train_fraction
    train = draws if pinned is None else np.where(np.isnan(pinned), draws, pinned == 1.0)
    if not train.any():
        train[0] = True
    if train.all():
        train[-1] = False
    return np.flatnonzero(train), np.flatnonzero(~train)


def _padded(low: float, high: float) -> tuple[float, float]:
    span = high - low
    pad = 0.1 * span if span > 0 else 1.0
    return (float(low - pad), float(high + pad))


def make_dataset(data: DataSpec) -> Dataset:
    """Build the dataset that ``data`` describes (deterministic for a given seed)."""
    check_data_spec(data)
    info = DATASETS[data.name]
    rng = np.random.default_rng(data.seed)
    pinned: np.ndarray | None = None
    if data.name == "user":
        x, y, classes, pinned = _user_points(data)
        task = "regression" if classes == 0 else "binary" if classes == 2 else "multiclass"
    else:
        x, y = _GENERATORS[data.name](rng, data.size, float(data.noise), data)
        task = info.task
        classes = {"binary": 2, "multiclass": int(data.classes), "regression": 0}[task]
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = x.shape[0]
    if data.name == "user":
        train, test = _user_split(pinned, n, data)
    else:
        order = rng.permutation(n)
        n_train = min(max(int(round(n * data.train_fraction)), 1), n - 1)
        train, test = order[:n_train], order[n_train:]
    extent = tuple(_padded(x[:, d].min(), x[:, d].max()) for d in range(x.shape[1]))
    target_extent = _padded(y.min(), y.max()) if task == "regression" else None
    return Dataset(
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        task=task,
        classes=classes,
        input_dim=x.shape[1],
        extent=extent,
        name=data.name,
        target_extent=target_extent,
    )


def check_compatible(model: ModelSpec, dataset: Dataset) -> None:
    """Raise ValueError when the model's output unit or features do not fit the data."""
    loss = model.output.loss
    tasks = LOSS_TASKS.get(loss)
    if tasks is None:
        raise ValueError(
            f"model.output.loss: unknown loss {loss!r}; choose from {tuple(LOSS_TASKS)}"
        )
    if dataset.task not in tasks:
        needs = " or ".join(tasks)
        raise ValueError(
            f"model.output.loss: the {loss!r} output models {needs} targets, but dataset "
            f"{dataset.name!r} is a {dataset.task} task"
        )
    if dataset.input_dim < 2:
        for feature in model.features:
            if feature in _FEATURES_NEEDING_X2:
                raise ValueError(
                    f"model.features: {feature!r} needs x2, but dataset {dataset.name!r} "
                    "has one input (x1)"
                )
