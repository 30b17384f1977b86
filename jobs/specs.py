"""What a browser may ask a job to do: one pydantic model per kind, told apart by ``kind``.

Defaults are filled in and the intrinsic bounds of each field are declared with
``Field(ge/le)``, so a bad field gives a ``pydantic.ValidationError`` whose location names
it (the app turns that into a 422). The limits an operator may lower (how many points,
nets or epochs a job may cost) are not here: ``size_of`` gives the numbers the app's
settings compare against them.

``config`` and ``weights`` (landscape, spectrum) are a session's ``engine.spec.Config``
as JSON and its ``MLP.state_dict()``; they are checked by building the engine's own
objects, so the engine's message names what is wrong.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator

from engine.datasets import DATASETS, check_compatible, make_dataset
from engine.nn import MLP
from engine.optim import check_training_spec
from engine.spec import ACTIVATIONS, OPTIMIZERS, Config

Backend = Literal["auto", "numpy", "torch"]
MAX_RESOLUTION = 101
MAX_PATH = 1000
# the Hessian is formed entry by entry (one HVP per parameter) only up to this size
EXACT_HESSIAN_PARAMETERS = 400
DIGITS_TOTAL = 10000  # digits shipped in jobs/data/digits.npz
DIGITS_TEST = 2000  # the last 2,000 are the test set; training takes a prefix of the rest
# 2-D classification sets a sweep can use (the regression sets and user points are not)
SWEEP_DATASETS = tuple(
    name for name, info in DATASETS.items() if info.task != "regression" and name != "user"
)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: Backend = Field(
        "auto",
        description="'auto': torch on CUDA when torch and a GPU are there, else the numpy engine",
    )


class DigitsSpec(_Spec):
    """Fig. 6.3: a 784-H-10 MLP trained on 28x28 digits, with 2-D maps of both spaces."""

    kind: Literal["digits"] = "digits"
    epochs: int = Field(3, ge=1, le=100)
    hidden: int = Field(100, ge=1, le=1000, description="hidden tanh units")
    learning_rate: float = Field(0.1, gt=0.0, le=10.0, description="plain SGD step size")
    batch_size: int = Field(32, ge=1, le=1000)
    train_size: int = Field(
        8000, ge=100, le=DIGITS_TOTAL - DIGITS_TEST, description="training digits (2,000 test)"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    map_points: int = Field(500, ge=10, le=2000, description="test digits shown on the maps")


class SweepSpec(_Spec):
    """Depth against width (Figs. 6.9-6.10): a grid of nets on a 2-D dataset, several seeds."""

    kind: Literal["sweep"] = "sweep"
    dataset: str = Field("spiral", description=f"one of {', '.join(SWEEP_DATASETS)}")
    size: int = Field(400, ge=20, le=5000, description="points, half for training")
    noise: float = Field(0.1, ge=0.0, le=1.0)
    depths: list[Annotated[int, Field(ge=1, le=8)]] = Field(
        default_factory=lambda: [1, 2, 3], min_length=1, max_length=8
    )
    widths: list[Annotated[int, Field(ge=1, le=256)]] = Field(
        default_factory=lambda: [2, 4, 8, 16], min_length=1, max_length=12
    )
    seeds: int = Field(2, ge=1, le=10)
    steps: int = Field(1500, ge=1, le=100_000, description="minibatch updates per net")
    batch_size: int = Field(20, ge=1, le=5000)
    activation: str = Field("tanh", description="hidden unit of every layer")
    optimizer: Literal[OPTIMIZERS] = "adam"  # type: ignore[valid-type]
    learning_rate: float = Field(0.01, gt=0.0, le=10.0)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in SWEEP_DATASETS:
            raise ValueError(f"unknown dataset {value!r}; choose from {', '.join(SWEEP_DATASETS)}")
        return value

    @field_validator("depths", "widths")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("a value is listed twice")
        return value

    @field_validator("activation")
    @classmethod
    def _known_activation(cls, value: str) -> str:
        if value not in ACTIVATIONS:
            raise ValueError(f"unknown activation {value!r}; choose from {', '.join(ACTIVATIONS)}")
        return value


class _SessionSpec(_Spec):
    """A session's network: its config (``engine.spec.Config`` as JSON) and weights."""

    config: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,  # {} becomes the engine's default config, filled in
        description="the session's engine.spec.Config as JSON",
    )
    weights: dict[str, list] | None = Field(
        None, description="the session's MLP.state_dict(); null: fresh initial weights"
    )

    @field_validator("config")
    @classmethod
    def _valid_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            config = Config.from_dict(value)
            check_training_spec(config.training)
            dataset = make_dataset(config.data)
            check_compatible(config.model, dataset)
            MLP(config.model, dataset.input_dim, max(dataset.classes, 2))
        except (TypeError, KeyError, IndexError) as error:  # a value of the wrong type
            raise ValueError(f"the engine cannot build this config: {error}") from None
        return config.to_dict()

    @field_validator("weights")
    @classmethod
    def _valid_weights(cls, value: dict[str, list] | None, info: ValidationInfo) -> Any:
        if value is None or "config" not in info.data:
            return value  # a bad config was reported already
        try:
            load_model(info.data["config"], value)
        except (TypeError, KeyError, IndexError) as error:
            raise ValueError(f"weights: {error}") from None
        return value


class LandscapeSpec(_SessionSpec):
    """The cost on a plane through the weights (the training set's J = L + Ω)."""

    kind: Literal["landscape"] = "landscape"
    directions: Literal["random", "hessian"] = Field(
        "random",
        description="'random': two filter-normalised random directions; "
        "'hessian': the gradient and the top Hessian eigenvector",
    )
    resolution: int = Field(41, ge=3, le=MAX_RESOLUTION, description="points per side")
    span: float = Field(
        1.0,
        gt=0.0,
        le=100.0,
        description="alpha and beta run over ±span; 1 moves each unit's weights by their own "
        "length (random) or θ by its own norm (hessian)",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the random directions")
    rows_per_piece: int = Field(8, ge=1, le=MAX_RESOLUTION, description="rows per Dask task")
    path: list[dict[str, list]] | None = Field(
        None, max_length=MAX_PATH, description="weight snapshots to project on the plane"
    )

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: list[dict[str, list]] | None, info: ValidationInfo) -> Any:
        if value is None or "config" not in info.data:
            return value
        model = load_model(info.data["config"], None)
        for index, snapshot in enumerate(value):
            try:
                model.load_state_dict(snapshot)  # checks every name, shape and value
            except (ValueError, TypeError, KeyError, IndexError) as error:
                raise ValueError(f"path[{index}]: {error}") from None
        return value


class SpectrumSpec(_SessionSpec):
    """Top-k eigenvalues of the Hessian of the training cost, by Lanczos on HVPs."""

    kind: Literal["spectrum"] = "spectrum"
    k: int = Field(10, ge=1, le=100)
    iterations: int = Field(40, ge=1, le=500, description="Lanczos steps (one HVP each)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of Lanczos's start vector")


JobSpec = Annotated[
    DigitsSpec | SweepSpec | LandscapeSpec | SpectrumSpec, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter = TypeAdapter(JobSpec)
AnySpec = DigitsSpec | SweepSpec | LandscapeSpec | SpectrumSpec


def parse_spec(data: dict[str, Any]) -> AnySpec:
    """Validate a job spec (a JSON object); raises ``pydantic.ValidationError``."""
    return _ADAPTER.validate_python(data)


def load_model(config: dict[str, Any] | Config, weights: dict[str, list] | None) -> MLP:
    """The engine network a session's config describes, with ``weights`` when given."""
    config = Config.from_dict(config) if isinstance(config, dict) else config
    dataset = make_dataset(config.data)
    model = MLP(config.model, dataset.input_dim, max(dataset.classes, 2),
                inputs=dataset.x_train)  # as a live session builds it (RBF templates)
    if weights is not None:
        model.load_state_dict(weights)
    return model


def sweep_config(spec: SweepSpec, depth: int, width: int, seed: int) -> Config:
    """The engine config of one net of a sweep: ``depth`` hidden layers of ``width`` units.

    The data are the same for every net (data seed 0); ``seed`` sets the initial weights
    and the minibatch order.
    """
    classes = 3 if spec.dataset == "spiral_multiclass" else 2
    return Config.from_dict(
        {
            "model": {
                "features": ["x1", "x2"],
                "layers": [{"units": width, "activation": spec.activation}] * depth,
                "output": {"loss": "softmax" if classes > 2 else "bernoulli"},
                "seed": seed,
            },
            "training": {
                "optimizer": spec.optimizer,
                "learning_rate": spec.learning_rate,
                "batch_size": spec.batch_size,
            },
            "data": {"name": spec.dataset, "size": spec.size, "noise": spec.noise, "seed": 0},
        }
    )


def parameter_count(spec: AnySpec) -> int:
    """How many parameters one net of the job has (the largest one for a sweep)."""
    if isinstance(spec, DigitsSpec):
        return 784 * spec.hidden + spec.hidden + spec.hidden * 10 + 10
    if isinstance(spec, SweepSpec):
        config = sweep_config(spec, max(spec.depths), max(spec.widths), 0)
        model = load_model(config, None)
    else:
        model = load_model(spec.config, None)
    return int(sum(p.value.size for p in model.parameters()))


def size_of(spec: AnySpec) -> dict[str, float]:
    """The numbers the app's limits compare, per kind (all finite, non-negative)."""
    if isinstance(spec, DigitsSpec):
        steps = spec.epochs * math.ceil(spec.train_size / spec.batch_size)
        return {
            "epochs": spec.epochs,
            "train_size": spec.train_size,
            "hidden": spec.hidden,
            "steps": steps,
            "parameters": parameter_count(spec),
        }
    if isinstance(spec, SweepSpec):
        nets = len(spec.depths) * len(spec.widths) * spec.seeds
        return {
            "nets": nets,
            "steps": spec.steps,
            "total_steps": nets * spec.steps,
            "parameters": parameter_count(spec),
        }
    data = spec.config["data"]
    data_size = float(len(data["points"]) if data["name"] == "user" else data["size"])
    if isinstance(spec, LandscapeSpec):
        return {
            "points": spec.resolution**2,
            "path": len(spec.path or []),
            "parameters": parameter_count(spec),
            "data": data_size,
        }
    return {
        "parameters": parameter_count(spec),
        "iterations": spec.iterations,
        "k": spec.k,
        "data": data_size,
    }
