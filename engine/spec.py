"""The model spec: one JSON-able description of a network, its data and its training.

Shared by the engine, the protocol (``app`` validates the same shape with pydantic),
the URL/JSON export and the torch implementation. Plain dataclasses, numpy only.
``Config.from_dict`` / ``Config.to_dict`` convert to and from JSON objects; the engine
still checks the combinations that only it can judge (e.g. a loss that does not fit
the dataset's task) and raises ``ValueError`` naming the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Input features, each a function of the raw inputs (x1, x2): the "feature crosses".
FEATURES = ("x1", "x2", "x1_squared", "x2_squared", "x1_x2", "sin_x1", "sin_x2")
FEATURE_LABELS = {
    "x1": "x₁",
    "x2": "x₂",
    "x1_squared": "x₁²",
    "x2_squared": "x₂²",
    "x1_x2": "x₁x₂",
    "sin_x1": "sin x₁",
    "sin_x2": "sin x₂",
}
ACTIVATIONS = (
    "tanh",
    "relu",
    "leaky_relu",
    "prelu",
    "sigmoid",
    "softplus",
    "hard_tanh",
    "abs",
    "maxout",
    "rbf",
    "linear",
)
# Output unit + loss (section 6.3.2): Bernoulli (sigmoid), multinoulli (softmax),
# squared / absolute error, Gaussian with fixed or learned precision, mixture density.
LOSSES = ("bernoulli", "softmax", "squared", "absolute", "gaussian", "gaussian_learned", "mixture")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
INITS = ("xavier", "he", "normal", "uniform")


@dataclass
class LayerSpec:
    units: int = 4
    activation: str = "tanh"
    slope: float = 0.01  # leaky ReLU's fixed slope, or PReLU's initial learned slope
    pieces: int = 2  # maxout: linear pieces per unit


@dataclass
class OutputSpec:
    loss: str = "bernoulli"
    precision: float = 1.0  # fixed precision β of the "gaussian" loss
    components: int = 3  # mixture components of the "mixture" loss


@dataclass
class ModelSpec:
    features: list[str] = field(default_factory=lambda: ["x1", "x2"])
    layers: list[LayerSpec] = field(default_factory=lambda: [LayerSpec(4), LayerSpec(2)])
    output: OutputSpec = field(default_factory=OutputSpec)
    init: str = "xavier"
    init_scale: float = 1.0  # multiplies the initial weights (std for "normal")
    seed: int = 0


@dataclass
class TrainingSpec:
    optimizer: str = "sgd"
    learning_rate: float = 0.03
    momentum: float = 0.9  # momentum and Nesterov
    beta1: float = 0.9  # Adam
    beta2: float = 0.999
    epsilon: float = 1e-8
    batch_size: int = 10
    l2: float = 0.0  # penalty λ‖W‖²/2 on weights only: biases are not regularised
    l1: float = 0.0  # penalty λ‖W‖₁ on weights only
    clip_norm: float = 0.0  # clip the whole gradient's norm; 0 turns it off


@dataclass
class DataSpec:
    name: str = "circle"
    size: int = 500
    noise: float = 0.0  # 0..1 on the dataset's own scale
    train_fraction: float = 0.5
    seed: int = 0
    classes: int = 3  # for the multi-class spiral
    # user-supplied points (name == "user"): `inputs` coordinates, then the class label
    # (target "class") or the real target (target "value"), then optionally 1 (training) or
    # 0 (test): [x1, x2, label], [x1, x2, y, train], [x1, y] (one input, regression), ...
    points: list[list[float]] = field(default_factory=list)
    inputs: int = 2  # coordinates per user point: 1 or 2
    target: str = "class"  # "class": labels 0..K-1; "value": regression targets


@dataclass
class Config:
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    data: DataSpec = field(default_factory=DataSpec)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        return _build(cls, raw, "config")

    def copy(self) -> Config:
        return Config.from_dict(self.to_dict())


def _build(kind: type, raw: Any, where: str) -> Any:
    if isinstance(raw, kind):
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object, got {type(raw).__name__}")
    names = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        nested = _NESTED.get((kind, name))
        if nested is None:
            values[name] = value
        elif name == "layers":
            if not isinstance(value, list):
                raise ValueError(f"{where}.layers must be a list")
            values[name] = [_build(nested, v, f"{where}.layers[{i}]") for i, v in enumerate(value)]
        else:
            values[name] = _build(nested, value, f"{where}.{name}")
    return kind(**values)


_NESTED: dict[tuple[type, str], type] = {
    (Config, "model"): ModelSpec,
    (Config, "training"): TrainingSpec,
    (Config, "data"): DataSpec,
    (ModelSpec, "layers"): LayerSpec,
    (ModelSpec, "output"): OutputSpec,
}


def output_units(output: OutputSpec, classes: int) -> int:
    """How many output pre-activations the loss needs."""
    if output.loss == "softmax":
        return classes
    if output.loss == "gaussian_learned":
        return 2  # mean and raw precision
    if output.loss == "mixture":
        return 3 * output.components  # weights, means, raw precisions
    return 1
