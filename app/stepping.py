"""The step-through commands of a session: graph_open, graph_step, graph_paths,
graph_check and graph_apply (``app.step_protocol``, docs/protocol.md).

A session holds at most one open graph, a ``StepThrough``: the engine's ``Graph`` of J
on some training examples, built on copies of the network's parameters, and a
``Stepper`` cursor over it. Stepping, paths and checks never touch the session's
weights; ``graph_apply`` is the one command that writes θ ← θ − ε∇θJ into them. The
numbers all come from ``engine.stepper``; this module picks the examples, validates
what the engine cannot know (indices, names, staleness) and encodes the replies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.session import CommandError, Session
from engine.autodiff import grad
from engine.stepper import (
    Graph,
    Stepper,
    apply_update,
    build_graph,
    figure_6_7_graph,
    gradient_check,
    path_growth,
)

CHECK_ENTRIES = 400  # finite-difference entries per graph_check (each costs 4 passes)
LISTED_PATHS = 500  # chain-rule paths sent per graph_paths
CHECK_THRESHOLD = 1e-6
CHECK_EPSILON = 3e-4


@dataclass
class StepThrough:
    """One open graph and its cursor."""

    graph: Graph
    stepper: Stepper
    preset: str | None
    example: int | None
    batch: list[int] | None
    level: str  # the level asked for
    x: np.ndarray
    y: np.ndarray
    features: list[str]
    weights: list[tuple[str, np.ndarray]]  # the network's weights when the graph was built
    paused: bool = False


def handle(session: Session, command: Any) -> dict[str, Any]:
    """Run one graph_* command on the session (in a worker thread); the reply."""
    kind = command.type
    if kind == "graph_open":
        return open_graph(session, command)
    cursor: StepThrough | None = getattr(session, "step_through", None)
    if cursor is None:
        raise CommandError(
            f"{kind}: no graph is open; send graph_open first", field="type", limit="graph_open"
        )
    if kind == "graph_step":
        return step(cursor, command.action, command.id)
    if kind == "graph_paths":
        return paths(cursor, command.parameter, command.id)
    if kind == "graph_check":
        return check(cursor, command.parameter, command.id)
    return apply(session, cursor, command.learning_rate, command.id)


# ----- graph_open ---------------------------------------------------------------------------
def open_graph(session: Session, command: Any) -> dict[str, Any]:
    paused = session.playing
    session.playing = False  # the graph is a snapshot: training on would make it stale
    if command.preset == "fig_6_7":
        graph = figure_6_7_graph(command.u1)
        cursor = StepThrough(
            graph, Stepper(graph), "fig_6_7", None, None, "unit",
            np.array([[command.u1]]), np.zeros(0), ["u₁"], [], paused,
        )
    else:
        cursor = _network_graph(session, command.example, command.batch, command.level)
        cursor.paused = paused
    session.step_through = cursor
    return graph_message(session, cursor, command.id)


def _network_graph(
    session: Session, example: int | None, batch: list[int] | None, level: str
) -> StepThrough:
    trainer = session.trainer
    dataset = trainer.dataset
    size = len(dataset.x_train)
    if example is not None and batch is not None:
        raise CommandError("batch: give either example or batch, not both", field="batch")
    if batch is None:
        example = 0 if example is None else example
        if example >= size:
            raise CommandError(
                f"example: the training set has examples 0 to {size - 1} (got {example})",
                field="example", limit=size - 1,
            )
        indices = [example]
    else:
        for position, index in enumerate(batch):
            if index >= size:
                raise CommandError(
                    f"batch.{position}: the training set has examples 0 to {size - 1} "
                    f"(got {index})", field=f"batch.{position}", limit=size - 1,
                )
        indices = list(batch)
    x = dataset.x_train[indices]
    y = dataset.y_train[indices]
    training = session.config.training
    model = trainer.model
    graph = build_graph(model, x, y, training.l2, training.l1, level=level)
    return StepThrough(
        graph, Stepper(graph), None, example if batch is None else None, batch, level, x, y,
        list(model.spec.features), _snapshot(session),
    )


def _snapshot(session: Session) -> list[tuple[str, np.ndarray]]:
    return [(p.name, p.value.copy()) for p in session.trainer.model.parameters()]


def _stale(session: Session, cursor: StepThrough) -> bool:
    now = session.trainer.model.parameters()
    if len(now) != len(cursor.weights):
        return True
    return any(
        p.name != name or p.value.shape != value.shape or not np.array_equal(p.value, value)
        for p, (name, value) in zip(now, cursor.weights)
    )


def graph_message(session: Session, cursor: StepThrough, message_id: Any) -> dict[str, Any]:
    graph, stepper = cursor.graph, cursor.stepper
    sources = _sources(session, cursor)
    nodes = []
    for row in stepper.node_table():
        node_id = row["id"]
        leaf = stepper.by_id[node_id].op is None
        kind = graph.kinds.get(node_id, "constant") if leaf else "operation"
        nodes.append({
            "id": node_id, "name": row["name"], "op": row["op"], "kind": kind,
            "parents": row["parents"], "shape": row["shape"], "value": _json(row["value"]),
            "grad": _json(row["grad"]), "requires_grad": bool(row["requires_grad"]),
            "source": sources.get(node_id),
        })
    training = session.config.training
    return {
        "type": "graph", "id": message_id, "level": graph.level, "message": graph.message,
        "preset": cursor.preset, "example": cursor.example, "batch": cursor.batch,
        "x": _json(cursor.x), "y": [float(v) for v in np.asarray(cursor.y).reshape(-1)],
        "features": cursor.features, "nodes": nodes, "cost": graph.cost.id,
        "forward": [node.id for node in stepper.operations],
        "backward": [node.id for node in stepper.backward_nodes],
        "parameters": list(graph.parameters),
        **_cursor_fields(stepper),
        "learning_rate": float(training.learning_rate),
        "l2": float(training.l2) if cursor.preset is None else 0.0,
        "l1": float(training.l1) if cursor.preset is None else 0.0,
        "train_size": int(len(session.trainer.dataset.x_train)),
        "paused": cursor.paused,
    }


def _sources(session: Session, cursor: StepThrough) -> dict[int, dict[str, Any]]:
    """Which entry of which model parameter each parameter node is."""
    if cursor.preset is not None:
        return {}
    layers = session.trainer.model.all_layers
    result = {}
    for name, leaf in cursor.graph.parameters.items():
        layer, attribute, index = cursor.graph.sources[name]
        parameter = getattr(layers[layer], attribute).name
        result[leaf.id] = {"parameter": parameter, "index": list(index) if index else None}
    return result


def _cursor_fields(stepper: Stepper) -> dict[str, Any]:
    return {
        "phase": stepper.phase,
        "position": len(stepper.history),
        "steps": len(stepper.operations) + len(stepper.backward_nodes),
        "next": stepper.next_node(),
    }


# ----- graph_step ---------------------------------------------------------------------------
def step(cursor: StepThrough, action: str, message_id: Any) -> dict[str, Any]:
    stepper = cursor.stepper
    before = _node_states(stepper)
    undone = None
    try:
        if action == "next":
            stepper.step()
        elif action == "forward":
            stepper.step_forward()
        elif action == "backward":
            stepper.step_backward()
        elif action == "run_forward":
            while stepper.phase == "forward":
                stepper.step_forward()
        elif action == "run":
            stepper.run_to_end()
        elif action == "back":
            last = stepper.back()
            undone = None if last is None else last["node"]
        else:
            stepper.reset()
    except ValueError as error:
        raise CommandError(f"action: {error} (action {action!r})", field="action") from None
    after = _node_states(stepper)
    changed = [node_id for node_id, state in after.items() if before.get(node_id) != state]
    return {
        "type": "graph_event", "id": message_id, "action": action,
        "event": _event(stepper.current()), "undone": undone,
        "changed": [
            {"id": node_id, "value": _json(stepper.values.get(node_id)),
             "grad": _json(stepper.grads.get(node_id))}
            for node_id in changed
        ],
        **_cursor_fields(stepper),
    }


def _node_states(stepper: Stepper) -> dict[int, tuple[bool, bool]]:
    """What is known of each node: (value known, gradient known)."""
    return {
        node.id: (node.id in stepper.values, node.id in stepper.grads) for node in stepper.nodes
    }


def _event(event: dict[str, Any] | None) -> dict[str, Any] | None:
    if event is None:
        return None
    terms = [
        {"child": t["child"], "child_name": t["child_name"], "child_grad": _json(t["child_grad"]),
         "local": _json(t["local"]), "contribution": _json(t["contribution"])}
        for t in event.get("terms", [])
    ]
    return {
        "phase": event["phase"], "node": event["node"], "name": event["name"],
        "op": event.get("op"), "value": _json(event.get("value")),
        "grad": _json(event.get("grad")), "formula": event["formula"], "terms": terms,
        "algorithm": event.get("algorithm", ""),
    }


# ----- graph_paths ---------------------------------------------------------------------------
def paths(cursor: StepThrough, parameter: str, message_id: Any) -> dict[str, Any]:
    graph = cursor.graph
    if graph.level != "unit":
        raise CommandError(
            "level: chain-rule paths are listed in the unit-level view (one node per scalar); "
            "open the graph of one example with level 'unit'", field="level", limit="unit",
        )
    leaf = _parameter(graph, parameter)
    try:
        result = cursor.stepper.paths(parameter, limit=LISTED_PATHS)
    except ValueError as error:
        raise CommandError(f"parameter: {error}", field="parameter") from None
    gradient = float(grad(graph.cost, [leaf])[0].value)
    width = max((len(ids) for ids in _layer_widths(cursor)), default=3)
    width = min(max(width, 2), 4)
    return {
        "type": "graph_paths", "id": message_id, "parameter": parameter,
        "paths": [
            {"nodes": p["nodes"], "ids": p["ids"], "product": _finite(p["product"])}
            for p in result["paths"]
        ],
        "count": int(result["count"]), "complete": bool(result["complete"]),
        "sum": _finite(result["sum"]), "gradient": _finite(gradient),
        "arcs": int(result["edges"]), "growth_width": width,
        "growth": path_growth(width=width, depths=(1, 2, 3, 4, 5, 6)),
    }


def _layer_widths(cursor: StepThrough) -> list[list[int]]:
    """Hidden-unit activations per layer, read from the unit names h₁,₂ ..."""
    layers: dict[str, list[int]] = {}
    for node in cursor.stepper.nodes:
        name = node.name or ""
        if name.startswith("h") and "," in name:
            layers.setdefault(name.split(",")[0], []).append(node.id)
    return list(layers.values())


def _parameter(graph: Graph, name: str):
    leaf = graph.parameters.get(name)
    if leaf is None:
        names = list(graph.parameters)
        shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
        raise CommandError(
            f"parameter: no parameter {name!r} in this graph; it has {shown}",
            field="parameter", limit=names[:40],
        )
    return leaf


# ----- graph_check ---------------------------------------------------------------------------
def check(cursor: StepThrough, parameter: str | None, message_id: Any) -> dict[str, Any]:
    graph = cursor.graph
    if parameter is not None:
        _parameter(graph, parameter)
        names = [parameter]
    else:
        names = list(graph.parameters)
    total = sum(int(graph.parameters[name].value.size) for name in names)
    limit = None
    note = ""
    if len(names) > CHECK_ENTRIES:  # many scalar parameters: every k-th of them
        chosen = np.unique(np.linspace(0, len(names) - 1, CHECK_ENTRIES).round().astype(int))
        names = [names[i] for i in chosen]
    if total > CHECK_ENTRIES and len(names) < CHECK_ENTRIES:
        limit = max(2, CHECK_ENTRIES // len(names))
    rows = gradient_check(graph, names, epsilon=CHECK_EPSILON, limit=limit)
    if len(rows) < total:
        note = (f"{len(rows)} of {total} entries, spread over every parameter; check one "
                "parameter to see more of it")
    rows = [
        {"name": r["name"], "backprop": _finite(r["backprop"]), "numeric": _finite(r["numeric"]),
         "relative_error": _finite(r["relative_error"]), "flagged": bool(r["flagged"])}
        for r in rows
    ]
    return {
        "type": "graph_check", "id": message_id, "parameter": parameter, "rows": rows,
        "checked": len(rows), "total": total, "flagged": sum(r["flagged"] for r in rows),
        "max_relative_error": max(
            (r["relative_error"] for r in rows if r["relative_error"] is not None), default=None
        ),
        "threshold": CHECK_THRESHOLD, "epsilon": CHECK_EPSILON, "note": note,
    }


# ----- graph_apply ---------------------------------------------------------------------------
def apply(
    session: Session, cursor: StepThrough, learning_rate: float | None, message_id: Any
) -> dict[str, Any]:
    if cursor.preset is not None:
        raise CommandError(
            "preset: the Fig. 6.7 example has no network to update; open the network's graph",
            field="preset",
        )
    stepper, graph = cursor.stepper, cursor.graph
    if stepper.phase != "done":
        raise CommandError(
            f"graph_apply: finish the backward pass first ({len(stepper.history)} of "
            f"{len(stepper.operations) + len(stepper.backward_nodes)} steps taken; "
            "graph_step with action 'run' completes it)", field="type", limit="run",
        )
    if _stale(session, cursor):
        raise CommandError(
            "weights: the network changed since the graph was opened (training or an "
            "edit); open the graph again", field="weights",
        )
    rate = float(learning_rate if learning_rate is not None
                 else session.config.training.learning_rate)
    grads = {name: stepper.grads[leaf.id] for name, leaf in graph.parameters.items()}
    model = session.trainer.model
    saved = _snapshot(session)
    apply_update(model, graph, grads, rate)
    if not all(np.isfinite(p.value).all() for p in model.parameters()):
        for parameter, (_, value) in zip(model.parameters(), saved):
            parameter.value[...] = value
        raise CommandError(
            f"learning_rate: a step of {rate:g} makes a weight infinite; use a smaller rate",
            field="learning_rate", limit=rate,
        )
    session._changed(data=False, layout=False)  # frames show the new weights
    cost_before = float(stepper.values[graph.cost.id])
    loss_before = _loss_value(stepper.values, stepper)
    fresh = _network_graph(session, cursor.example, cursor.batch, cursor.level)
    session.step_through = fresh
    changes = []
    for name, leaf in graph.parameters.items():
        layer, attribute, index = graph.sources[name]
        before = np.asarray(leaf.value)
        after = getattr(model.all_layers[layer], attribute).value
        after = after[index] if index else after
        changes.append({"name": name, "before": _json(before), "after": _json(after),
                        "grad": _json(grads[name])})
    return {
        "type": "graph_applied", "id": message_id, "learning_rate": rate,
        "cost_before": _finite(cost_before), "cost_after": _finite(fresh.graph.cost.value),
        "loss_before": loss_before,
        "loss_after": _loss_value({n.id: n.value for n in fresh.stepper.nodes}, fresh.stepper),
        "changes": changes, "graph": graph_message(session, fresh, None),
    }


def _loss_value(values: dict[int, Any], stepper: Stepper) -> float | None:
    """L (the loss without the penalty) among the values, if the graph has an L node."""
    node = next((n for n in stepper.nodes if n.name == "L"), None)
    return None if node is None else _finite_or_none(float(values[node.id]))


# ----- JSON ----------------------------------------------------------------------------------
def _json(value: Any) -> Any:
    """Numbers and nested lists for JSON; null for unknown or non-finite entries."""
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return _finite_or_none(float(array))
    if np.isfinite(array).all():
        return array.tolist()
    return [_json(row) for row in array]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _finite(value: float) -> float | None:
    return _finite_or_none(float(value))
