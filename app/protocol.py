"""Every message of the session protocol as a pydantic model, and the session config.

The config models mirror ``engine.spec`` field for field (a test holds them equal) and add
the limits of ``Settings``; since the limits come from the environment, the models are
built per set of limits by ``protocol_for(settings)`` and cached. Client messages are a
union discriminated by ``type`` (``patch`` nests a second union on ``op``).
``parse_command`` turns one text message into a command or an ``Error`` that names the
offending field and its limit. Frames travel as msgpack; their models here document
them and let tests check real frames against the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from app.limits import too_deep
from app.settings import Settings
from engine.datasets import DATASETS, MAX_CLASSES
from engine.spec import ACTIVATIONS, FEATURES, INITS, LOSSES, OPTIMIZERS

SCHEMA_VERSION = 1
MAX_PIECES = 5
MAX_COMPONENTS = 10
MAX_WEIGHT = 1e3
MAX_COORDINATE = 1e3
MessageId = Annotated[int | Annotated[str, Field(max_length=64)], Field()]
# "model.layers.1.units": names, or list positions, separated by dots
PatchPath = Annotated[str, Field(min_length=1, max_length=120,
                                 pattern=r"^[a-z_0-9]+(\.[a-z_0-9]+)*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Limits:
    max_layers: int
    max_units: int
    max_points: int
    max_grid: int
    max_warp_lines: int
    max_warp_samples: int
    max_speed: float
    max_steps_per_command: int
    max_epochs_per_command: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


def protocol_for(settings: Settings) -> SimpleNamespace:
    return _protocol(Limits.of(settings))


@lru_cache(maxsize=8)
def _protocol(limits: Limits) -> SimpleNamespace:
    """The models for one set of limits (``SimpleNamespace`` of classes and adapters)."""

    class LayerSpec(Strict):
        """One hidden layer."""

        units: int = Field(4, ge=1, le=limits.max_units)
        activation: Literal[ACTIVATIONS] = "tanh"
        slope: float = Field(0.01, ge=0.0, le=1.0, description="leaky/PReLU negative slope")
        pieces: int = Field(2, ge=1, le=MAX_PIECES, description="maxout pieces per unit")

    class OutputSpec(Strict):
        """The output unit and its loss (section 6.3.2)."""

        loss: Literal[LOSSES] = "bernoulli"
        precision: float = Field(1.0, gt=0.0, le=1e3, description="fixed Gaussian precision β")
        components: int = Field(3, ge=1, le=MAX_COMPONENTS, description="mixture components")

    class ModelSpec(Strict):
        features: list[Literal[FEATURES]] = Field(
            default_factory=lambda: ["x1", "x2"], min_length=1, max_length=len(FEATURES)
        )
        layers: list[LayerSpec] = Field(
            default_factory=lambda: [LayerSpec(units=4), LayerSpec(units=2)],
            max_length=limits.max_layers,
        )
        output: OutputSpec = Field(default_factory=OutputSpec)
        init: Literal[INITS] = "xavier"
        init_scale: float = Field(1.0, gt=0.0, le=10.0)
        seed: int = Field(0, ge=0, le=2**31 - 1)

    class TrainingSpec(Strict):
        optimizer: Literal[OPTIMIZERS] = "sgd"
        learning_rate: float = Field(0.03, gt=0.0, le=10.0)
        momentum: float = Field(0.9, ge=0.0, lt=1.0)
        beta1: float = Field(0.9, ge=0.0, lt=1.0)
        beta2: float = Field(0.999, ge=0.0, lt=1.0)
        epsilon: float = Field(1e-8, gt=0.0, le=1.0)
        batch_size: int = Field(10, ge=1, le=limits.max_points)
        l2: float = Field(0.0, ge=0.0, le=10.0)
        l1: float = Field(0.0, ge=0.0, le=10.0)
        clip_norm: float = Field(0.0, ge=0.0, le=1e6, description="0 turns clipping off")

    class DataSpec(Strict):
        name: Literal[tuple(DATASETS)] = "circle"
        size: int = Field(500, ge=2, le=limits.max_points)
        noise: float = Field(0.0, ge=0.0, le=1.0)
        train_fraction: float = Field(0.5, gt=0.0, lt=1.0)
        seed: int = Field(0, ge=0, le=2**31 - 1)
        classes: int = Field(3, ge=2, le=MAX_CLASSES)
        points: list[Annotated[list[float], Field(min_length=2, max_length=4)]] = Field(
            default_factory=list, max_length=limits.max_points,
            description="user points [x1, x2, label] or [x1, x2, label, train] with train 1 "
            "(training) or 0 (test) (data.name = 'user'); with inputs 1, [x1, y] or "
            "[x1, y, train]",
        )
        # points from a file (issue 12): one or two coordinates, class labels or targets
        inputs: int = Field(2, ge=1, le=2, description="coordinates per user point")
        target: Literal["class", "value"] = Field(
            "class", description="the number after a user point's coordinates: a class "
            "label 0..K-1 or a regression target")

    class Config(Strict):
        """The session's network, training and data: ``engine.spec.Config`` as JSON."""

        model: ModelSpec = Field(default_factory=ModelSpec)
        training: TrainingSpec = Field(default_factory=TrainingSpec)
        data: DataSpec = Field(default_factory=DataSpec)

    class View(Strict):
        """How finely the frames sample the views (``engine.views.ViewSpec``)."""

        grid: int = Field(min(100, limits.max_grid), ge=10, le=limits.max_grid,
                          description="surface cells per side")
        unit_grid: int = Field(min(40, limits.max_grid), ge=4, le=limits.max_grid,
                               description="unit map cells per side")
        warp_lines: int = Field(min(21, limits.max_warp_lines), ge=2, le=limits.max_warp_lines)
        warp_samples: int = Field(
            min(41, limits.max_warp_samples), ge=2, le=limits.max_warp_samples
        )
        gradients: bool = Field(True, description="include weights and gradients in frames")

    Speed = Annotated[float, Field(gt=0.0, le=limits.max_speed, description="steps per second")]

    class Document(Strict):
        """What ``patch`` paths address: the config, the view settings and the speed."""

        model: ModelSpec
        training: TrainingSpec
        data: DataSpec
        view: View
        speed: Speed

    # ----- client → server ----------------------------------------------------------
    class Command(Strict):
        id: MessageId | None = Field(None, description="echoed in the reply")

    class Configure(Command):
        """Load a whole configuration (a preset's ``config``, or an exported one)."""

        type: Literal["configure"]
        config: Config
        view: View | None = None
        speed: Speed | None = None
        weights: dict[str, JsonValue] | None = Field(
            None, description="restore these weights (from `export`) instead of initialising"
        )
        step: int | None = Field(None, ge=0, le=2**53, description="restore the step counter")
        epoch: float | None = Field(None, ge=0.0, le=1e12,
                                    description="restore the passes over the training set")
        play: bool | None = None

    class PatchSet(Command):
        """Change one setting: ``path`` as in ``model.layers.0.activation``."""

        type: Literal["patch"]
        op: Literal["set"]
        path: PatchPath
        value: JsonValue

    class PatchAddLayer(Command):
        type: Literal["patch"]
        op: Literal["add_layer"]
        index: int | None = Field(None, ge=0, le=limits.max_layers,
                                  description="position in model.layers; default: last")
        units: int = Field(4, ge=1, le=limits.max_units)
        activation: Literal[ACTIVATIONS] | None = Field(
            None, description="default: the activation of the neighbouring layer"
        )

    class PatchRemoveLayer(Command):
        type: Literal["patch"]
        op: Literal["remove_layer"]
        index: int | None = Field(None, ge=0, le=limits.max_layers, description="default: last")

    class PatchAddUnit(Command):
        type: Literal["patch"]
        op: Literal["add_unit"]
        layer: int = Field(ge=0, le=limits.max_layers, description="position in model.layers")

    class PatchRemoveUnit(Command):
        type: Literal["patch"]
        op: Literal["remove_unit"]
        layer: int = Field(ge=0, le=limits.max_layers, description="position in model.layers")
        unit: int | None = Field(None, ge=0, le=limits.max_units, description="default: last")

    Patch = Annotated[
        PatchSet | PatchAddLayer | PatchRemoveLayer | PatchAddUnit | PatchRemoveUnit,
        Field(discriminator="op"),
    ]

    class Play(Command):
        type: Literal["play"]
        speed: Speed | None = None

    class Pause(Command):
        type: Literal["pause"]

    class Step(Command):
        """``count`` updates, each on one minibatch."""

        type: Literal["step"]
        count: int = Field(1, ge=1, le=limits.max_steps_per_command)

    class Epoch(Command):
        """Train to the end of the current pass over the training set, ``count`` times."""

        type: Literal["epoch"]
        count: int = Field(1, ge=1, le=limits.max_epochs_per_command)

    class Reset(Command):
        """New initial weights (from ``seed``, or the model's seed) and counters at 0."""

        type: Literal["reset"]
        seed: int | None = Field(None, ge=0, le=2**31 - 1)

    class SetWeight(Command):
        """Edit one entry of a parameter: ``W2`` [i, j] (from unit i of layer 1 to unit j
        of layer 2), ``b2`` [j], ``Wout``/``bout`` for the output layer."""

        type: Literal["set_weight"]
        name: str = Field(pattern=r"^(W|b|α|σ)([1-9][0-9]?|out)$", max_length=4)
        index: list[Annotated[int, Field(ge=0, le=10_000)]] = Field(max_length=2)
        value: float = Field(ge=-MAX_WEIGHT, le=MAX_WEIGHT)

    class AddPoint(Command):
        """Place a point of class ``label`` (turns the data into ``user`` points)."""

        type: Literal["add_point"]
        x: list[Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]] = Field(
            min_length=2, max_length=2
        )
        label: int = Field(ge=0, le=MAX_CLASSES - 1)

    class RemovePoint(Command):
        """Remove the point nearest to ``x``."""

        type: Literal["remove_point"]
        x: list[Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]] = Field(
            min_length=2, max_length=2
        )

    class Ready(Command):
        """The client can take the next frame."""

        type: Literal["ready"]
        warps: bool = Field(True, description="whether the next frame should carry the "
                            "warps (false while the page's warp panel is out of sight)")

    class Export(Command):
        type: Literal["export"]

    class LoadCsv(Command):
        """A CSV file's points (issue 12), parsed and checked here (app/csvdata.py): they
        become the session's data (``data.name`` "user"); a bad file changes nothing."""

        type: Literal["load_csv"]
        text: str = Field(description="the file: x1, x2, label (or x1, x2, y; or x1, y for "
                          "one-input regression), one point a line, header optional")
        task: Literal["classification", "regression"] = Field(
            "classification", description="whether the last column holds class labels "
            "0..K-1 or regression targets")
        name: str | None = Field(None, max_length=200, description="the file's name")

    from app import step_protocol as steps  # the step-through page's messages

    ClientMessage = Annotated[
        Configure | Patch | Play | Pause | Step | Epoch | Reset | SetWeight | AddPoint
        | RemovePoint | Ready | Export | LoadCsv | steps.GraphOpen | steps.GraphStep
        | steps.GraphPaths | steps.GraphCheck | steps.GraphApply,
        Field(discriminator="type"),
    ]

    # ----- server → client (JSON) -----------------------------------------------------
    class NetworkShape(Strict):
        features: list[str]
        input_dim: int
        layers: list[dict[str, Any]] = Field(description="units, activation, width per layer")
        outputs: int
        loss: str
        task: Literal["binary", "multiclass", "regression"]
        classes: int

    class Hello(Strict):
        type: Literal["hello"] = "hello"
        session: str
        schema_version: int = SCHEMA_VERSION
        limits: dict[str, Any]
        config: Config
        view: View
        speed: float
        playing: bool

    class State(Strict):
        """The reply to every accepted command except ``ready`` and ``export``."""

        type: Literal["state"] = "state"
        id: MessageId | None = None
        command: str
        config: Config
        view: View
        speed: float
        playing: bool
        step: int
        epoch: float
        network: NetworkShape
        notes: list[str] = Field(default_factory=list, description="what the server adapted")

    class Error(Strict):
        type: Literal["error"] = "error"
        id: MessageId | None = None
        command: str | None = None
        code: Literal[
            "bad_json", "unknown_command", "invalid", "too_large", "binary_not_accepted",
            "rejected", "diverged", "too_many_sessions", "internal", "too_deep", "rate_limited",
        ]
        field: str | None = Field(None, description="dotted path of the offending field")
        line: int | None = Field(None, description="the line of a file (load_csv) at fault")
        limit: JsonValue = Field(None, description="the limit the value broke, if any")
        message: str

    class ExportMessage(Strict):
        type: Literal["export"] = "export"
        id: MessageId | None = None
        schema_version: int = SCHEMA_VERSION
        config: Config
        view: View
        speed: float
        weights: dict[str, JsonValue]
        step: int
        epoch: float

    ServerJson = Annotated[
        Hello | State | Error | ExportMessage | steps.Graph | steps.GraphEvent
        | steps.GraphPathsMessage | steps.GraphCheckMessage | steps.GraphApplied,
        Field(discriminator="type"),
    ]

    # ----- server → client (msgpack): the frame ------------------------------------------
    class Array(Strict):
        """A little-endian array: ``data`` holds prod(shape) items of ``dtype``; u1/u2
        arrays are quantised: value = lo + q (hi − lo) / 255 (u1) or / 65535 (u2), with
        ``lo``/``hi`` one number or one per index along the first axis."""

        dtype: Literal["f4", "u1", "u2"]
        shape: list[int]
        data: bytes
        lo: float | list[float] | None = None
        hi: float | list[float] | None = None

    class History(Strict):
        step: Array
        epoch: Array
        train_loss: Array
        test_loss: Array
        train_accuracy: Array | None = None
        test_accuracy: Array | None = None

    class FrameData(Strict):
        version: int
        x: Array = Field(description="u2 (input_dim, n), training points first")
        y: Array = Field(description="u1 (n,) class labels, or f4 (n,) regression targets")
        train: int = Field(description="how many of the n points are training points")
        extent: list[list[float]]
        target_extent: list[float] | None = None

    class Surface(Strict):
        kind: Literal["probability", "probabilities", "value", "curve"]
        extent: list[list[float]]
        values: Array | None = None
        x: Array | None = None
        mean: Array | None = None
        std: Array | None = None
        density: Array | None = None
        target_extent: list[float] | None = None
        templates: Array | None = Field(
            None, description="f4 (units, input_dim): RBF templates of the first hidden layer")

    class UnitMaps(Strict):
        activation: str
        values: Array

    class WarpView(Strict):
        dims: int
        projection: Literal["none", "pca"]
        basis: Array | None = None
        centre: Array | None = None
        explained: float | None = None
        bounds: list[list[float]]
        grid: Array
        points: Array
        readout: Array | None = None

    class Warp(Strict):
        units: int
        lines: int
        samples: int
        pre_activation: WarpView
        activation: WarpView

    class Parameter(Strict):
        name: str
        value: Array
        grad: Array

    class LayerGradient(Strict):
        pre_activation_grad: Array
        grad_norm: float

    class Gradients(Strict):
        loss: float
        cost: float
        parameters: list[Parameter]
        layers: list[LayerGradient]

    class Frame(Strict):
        type: Literal["frame"] = "frame"
        session: str
        seq: int
        version: int
        playing: bool
        step: int
        epoch: float
        speed: float = Field(description="training steps/s the learner set")
        achieved_speed: float | None = Field(
            description="steps/s training actually ran at over the last seconds of play "
            "(below `speed` when the server is busy); nil when not playing")
        train_loss: float | None
        test_loss: float | None
        train_accuracy: float | None
        test_accuracy: float | None
        history: History
        network: NetworkShape
        data_version: int
        data: FrameData | None
        surface: Surface
        units: list[UnitMaps]
        warps: list[Warp] | None = Field(
            description="one per hidden layer; nil when the client's `ready` said warps: false")
        gradients: Gradients | None = None
        build_ms: float

    return SimpleNamespace(
        limits=limits,
        Config=Config, View=View, Document=Document, LayerSpec=LayerSpec,
        ModelSpec=ModelSpec, TrainingSpec=TrainingSpec, DataSpec=DataSpec,
        OutputSpec=OutputSpec,
        Configure=Configure, PatchSet=PatchSet, PatchAddLayer=PatchAddLayer,
        PatchRemoveLayer=PatchRemoveLayer, PatchAddUnit=PatchAddUnit,
        PatchRemoveUnit=PatchRemoveUnit, Play=Play, Pause=Pause, Step=Step, Epoch=Epoch,
        Reset=Reset, SetWeight=SetWeight, AddPoint=AddPoint, RemovePoint=RemovePoint,
        Ready=Ready, Export=Export, LoadCsv=LoadCsv,
        Hello=Hello, State=State, Error=Error, ExportMessage=ExportMessage, Frame=Frame,
        NetworkShape=NetworkShape,
        client=TypeAdapter(ClientMessage),
        server=TypeAdapter(ServerJson),
    )


# ----- errors ------------------------------------------------------------------------
_LIMIT_KEYS = ("le", "lt", "ge", "gt", "max_length", "min_length", "expected", "pattern")


def field_name(loc: tuple | list) -> str:
    return ".".join(str(part) for part in loc)


def describe(error: ValidationError, strip: int = 0) -> dict[str, Any]:
    """The first problem of a validation error as ``Error`` fields: the dotted field,
    the limit it broke and a sentence that names both."""
    first = error.errors(include_url=False)[0]
    loc = tuple(first.get("loc", ()))[strip:]
    field = field_name(loc) or None
    context = first.get("ctx") or {}
    limit = next((context[k] for k in _LIMIT_KEYS if k in context), None)
    if limit is not None and not isinstance(limit, (int, float, str, bool)):
        limit = str(limit)
    got = first.get("input")
    shown = repr(got) if isinstance(got, (int, float, str, bool)) or got is None else None
    text = first.get("msg", "invalid value")
    if shown is not None and len(shown) <= 60 and first.get("type") != "missing":
        text = f"{text} (got {shown})"
    return {"field": field, "limit": limit, "message": f"{field}: {text}" if field else text}


def parse_command(protocol: SimpleNamespace, text: str, max_depth: int = 32) -> Any:
    """A client command, or an ``Error`` naming what is wrong with the message.

    The nesting is checked before any parser runs: no command nests deeper than a few
    levels, and a parser that recurses per level must never meet 100,000 of them."""
    if too_deep(text, max_depth):
        return protocol.Error(
            code="too_deep", field="message", limit=max_depth,
            message=f"message: brackets nest more than {max_depth} deep "
            f"(the limit is {max_depth} levels)",
        )
    try:
        return protocol.client.validate_json(text)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        kind = first.get("type")
        command, message_id = _peek(text)
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            loc = tuple(first.get("loc", ()))
            if loc and loc[0] == "patch" or command == "patch":
                return protocol.Error(
                    code="unknown_command", id=message_id, command="patch", field="op",
                    limit=["set", "add_layer", "remove_layer", "add_unit", "remove_unit"],
                    message="patch: unknown or missing op; use set, add_layer, remove_layer, "
                    "add_unit or remove_unit",
                )
            what = f"unknown command type {command!r}" if command else "missing command type"
            return protocol.Error(
                code="unknown_command", id=message_id, command=command, field="type",
                limit=sorted(_COMMANDS),
                message=f"{what}; known commands: " + ", ".join(sorted(_COMMANDS)),
            )
        if kind == "json_invalid" or not first.get("loc"):
            return protocol.Error(code="bad_json", message=(
                "a message must be one JSON object with a \"type\" field: "
                + first.get("msg", "")
            ))
        strip = 2 if command == "patch" else 1
        return protocol.Error(code="invalid", id=message_id, command=command,
                              **describe(error, strip))


_COMMANDS = {
    "configure", "patch", "play", "pause", "step", "epoch", "reset", "set_weight",
    "add_point", "remove_point", "ready", "export", "load_csv",
    "graph_open", "graph_step", "graph_paths", "graph_check", "graph_apply",
}


def _peek(text: str) -> tuple[str | None, Any]:
    import json

    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # parse_command checks the depth first; belt and braces
        return None, None
    if not isinstance(raw, dict):
        return None, None
    kind = raw.get("type")
    message_id = raw.get("id")
    if not isinstance(message_id, (int, str)) or isinstance(message_id, bool):
        message_id = None
    elif isinstance(message_id, str) and len(message_id) > 64:
        message_id = None
    return (kind if isinstance(kind, str) and len(kind) <= 40 else None), message_id


def json_schema(settings: Settings) -> dict[str, Any]:
    """The JSON Schema of the session config and of every message (GET /api/schema)."""
    protocol = protocol_for(settings)
    return {
        "schema_version": SCHEMA_VERSION,
        "config": protocol.Config.model_json_schema(),
        "view": protocol.View.model_json_schema(),
        "client_messages": protocol.client.json_schema(),
        "server_messages": protocol.server.json_schema(),
        "frame": protocol.Frame.model_json_schema(),
        "limits": {k: v for k, v in vars(protocol.limits).items()},
    }
