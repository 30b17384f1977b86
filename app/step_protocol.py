"""The step-through page's messages (docs/protocol.md, "Stepping through a pass").

Commands open the computational graph of the session's network on one training example
(or a minibatch, or the chapter's Fig. 6.7 example), step it node by node, list the
chain-rule paths of a parameter, check gradients by finite differences and apply the
update. ``app.protocol`` adds them to its unions; ``app.stepping`` carries them out.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue

from app.protocol import MessageId, Strict

MAX_BATCH = 64  # examples in a layer-level minibatch graph
MAX_EXAMPLE = 100_000
ParameterName = Annotated[str, Field(min_length=1, max_length=40)]
ExampleIndex = Annotated[int, Field(ge=0, le=MAX_EXAMPLE)]


# ----- client → server --------------------------------------------------------------------
class GraphCommand(Strict):
    id: MessageId | None = Field(None, description="echoed in the reply")


class GraphOpen(GraphCommand):
    """Build the graph of J on training example ``example`` (default 0) or on the
    minibatch ``batch``, at ``level``; or the Fig. 6.7 graph with ``preset``. Pauses
    training: stepping never changes the session's weights."""

    type: Literal["graph_open"]
    example: ExampleIndex | None = Field(None, description="index into the training set")
    batch: list[ExampleIndex] | None = Field(
        None, min_length=1, max_length=MAX_BATCH, description="training-set indices"
    )
    level: Literal["auto", "unit", "layer"] = Field(
        "auto", description="unit: one node per scalar (nets of at most 40 units); layer: "
        "matrices and vectors; auto: unit when it can"
    )
    preset: Literal["fig_6_7"] | None = Field(
        None, description="fig_6_7: u₂ = u₁², u₃ = exp(u₁ + u₂) instead of the network"
    )
    u1: float = Field(0.8, ge=-3.0, le=3.0, description="u₁ of the Fig. 6.7 example")


class GraphStep(GraphCommand):
    """Move the cursor: one ``forward`` or ``backward`` step, the ``next`` step of
    whichever pass comes next, ``run_forward`` to the end of the forward pass, ``run``
    to the end of both, ``back`` one step, or ``reset`` to the start."""

    type: Literal["graph_step"]
    action: Literal["next", "forward", "backward", "run_forward", "run", "back", "reset"]


class GraphPaths(GraphCommand):
    """Every chain-rule path from ``parameter`` to J (unit-level graphs)."""

    type: Literal["graph_paths"]
    parameter: ParameterName


class GraphCheck(GraphCommand):
    """Finite differences beside back-propagation for ``parameter`` (all when omitted)."""

    type: Literal["graph_check"]
    parameter: ParameterName | None = None


class GraphApply(GraphCommand):
    """θ ← θ − ε∇θJ with the gradients of the completed backward pass, written into the
    session's network (``learning_rate`` ε defaults to the session's)."""

    type: Literal["graph_apply"]
    learning_rate: float | None = Field(None, gt=0.0, le=10.0)


CLIENT = (GraphOpen, GraphStep, GraphPaths, GraphCheck, GraphApply)
COMMANDS = {"graph_open", "graph_step", "graph_paths", "graph_check", "graph_apply"}


# ----- server → client --------------------------------------------------------------------
class ParameterSource(Strict):
    parameter: str = Field(description="the model's parameter (W1, b1, ..., Wout, bout)")
    index: list[int] | None = Field(None, description="the entry, for unit-level scalars")


class GraphNode(Strict):
    id: int
    name: str
    op: str = Field(description="the primitive, or input / parameter / constant for leaves")
    kind: Literal["input", "parameter", "constant", "operation"]
    parents: list[int]
    shape: list[int]
    value: JsonValue = Field(description="null until the forward pass computes it")
    grad: JsonValue = Field(description="∂J/∂node; null until the backward pass reaches it")
    requires_grad: bool
    source: ParameterSource | None = None


class Graph(Strict):
    type: Literal["graph"] = "graph"
    id: MessageId | None = None
    level: Literal["unit", "layer"]
    message: str = Field(description="why the layer view is shown instead of the unit view")
    preset: Literal["fig_6_7"] | None = None
    example: int | None = None
    batch: list[int] | None = None
    x: JsonValue = Field(description="the raw inputs, one row per example")
    y: list[float] = Field(description="the targets, one per example")
    features: list[str]
    nodes: list[GraphNode] = Field(description="in forward (topological) order")
    cost: int = Field(description="the id of J")
    forward: list[int] = Field(description="the forward pass's nodes, in order")
    backward: list[int] = Field(description="the backward pass's nodes, in order")
    parameters: list[str] = Field(description="names graph_paths and graph_check accept")
    phase: Literal["forward", "backward", "done"]
    position: int = Field(description="steps taken")
    steps: int = Field(description="steps in both passes")
    next: int | None = Field(description="the node the next step computes")
    learning_rate: float
    l2: float
    l1: float
    train_size: int
    paused: bool = Field(description="opening the graph paused training")


class GraphTerm(Strict):
    child: int
    child_name: str
    child_grad: JsonValue
    local: JsonValue = Field(description="∂child/∂node between scalar nodes, else null")
    contribution: JsonValue


class GraphStepEvent(Strict):
    phase: Literal["forward", "backward"]
    node: int
    name: str
    op: str | None = None
    value: JsonValue = None
    grad: JsonValue = None
    formula: str
    terms: list[GraphTerm] = Field(default_factory=list)
    algorithm: str = Field("", description="the line of Algorithm 6.2 (layer view)")


class NodeState(Strict):
    id: int
    value: JsonValue
    grad: JsonValue


class GraphEvent(Strict):
    type: Literal["graph_event"] = "graph_event"
    id: MessageId | None = None
    action: str
    event: GraphStepEvent | None = Field(description="the step now last taken")
    undone: int | None = Field(None, description="the node whose step `back` undid")
    changed: list[NodeState] = Field(description="nodes whose value or gradient changed")
    phase: Literal["forward", "backward", "done"]
    position: int
    steps: int
    next: int | None


class PathRow(Strict):
    nodes: list[str]
    ids: list[int]
    product: float | None


class GrowthRow(Strict):
    depth: int
    paths: int
    arcs: int


class GraphPathsMessage(Strict):
    type: Literal["graph_paths"] = "graph_paths"
    id: MessageId | None = None
    parameter: str
    paths: list[PathRow]
    count: int = Field(description="all paths from the parameter to J")
    complete: bool = Field(description="every path is listed")
    sum: float | None = Field(description="Σ over the listed paths of their products")
    gradient: float | None = Field(description="∂J/∂parameter by back-propagation")
    arcs: int = Field(description="arcs in the graph: back-propagation's work")
    growth_width: int
    growth: list[GrowthRow] = Field(description="paths vs arcs for nets of growing depth")


class CheckRow(Strict):
    name: str
    backprop: float | None
    numeric: float | None
    relative_error: float | None
    flagged: bool


class GraphCheckMessage(Strict):
    type: Literal["graph_check"] = "graph_check"
    id: MessageId | None = None
    parameter: str | None
    rows: list[CheckRow]
    checked: int
    total: int = Field(description="entries the parameters hold")
    flagged: int
    max_relative_error: float | None
    threshold: float
    epsilon: float
    note: str


class ParameterChange(Strict):
    name: str
    before: JsonValue
    after: JsonValue
    grad: JsonValue


class GraphApplied(Strict):
    type: Literal["graph_applied"] = "graph_applied"
    id: MessageId | None = None
    learning_rate: float
    cost_before: float | None
    cost_after: float | None
    loss_before: float | None = Field(description="L without the penalty (null: no L node)")
    loss_after: float | None
    changes: list[ParameterChange]
    graph: Graph = Field(description="the graph again, at the new weights")


SERVER = (Graph, GraphEvent, GraphPathsMessage, GraphCheckMessage, GraphApplied)
