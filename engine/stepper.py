"""Forward and backward passes one node at a time (Algorithms 6.1-6.4, Figs. 6.6-6.8).

``unit_graph`` builds the cost of one example with one node per scalar (inputs,
weights, biases, pre-activations a, activations h, loss), ``layer_graph`` the same
cost over a minibatch with matrices and vectors (x, W, b, a, h, loss, Ω, J).
A ``Stepper`` walks such a graph: each forward step computes one node from its
parents' values; each backward step, in exactly the reverse order, computes
∂J/∂u for one node as the sum over its children of (child's gradient × local
derivative), keeping every term so the page can show it (Algorithm 6.4).

The stepper works on copies of the parameters: stepping never changes a training
session's weights; ``apply_update`` is the one call that does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import primitives as P
from engine.autodiff import Tensor, as_tensor, no_grad
from engine.nn import MLP, output_loss

UNIT_LEVEL_ACTIVATIONS = (
    "tanh", "relu", "sigmoid", "softplus", "hard_tanh", "abs", "linear",
    "leaky_relu", "prelu", "maxout", "rbf",
)
UNIT_LEVEL_LOSSES = ("bernoulli", "softmax", "squared", "absolute", "gaussian")
UNIT_LEVEL_LIMIT = 40  # scalar units (inputs + hidden + outputs) for the unit-level view
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(number: int) -> str:
    return str(number).translate(_SUBSCRIPTS)


@dataclass
class Graph:
    """A cost and what the page needs to show it."""

    cost: Tensor
    level: str  # "unit" or "layer"
    parameters: dict[str, Tensor]  # display name -> leaf (copies of the model's values)
    sources: dict[str, tuple[int, str, tuple[int, ...]]] = field(default_factory=dict)
    # display name -> (layer index in model.all_layers, "weights"/"bias"/..., index)
    message: str = ""
    kinds: dict[int, str] = field(default_factory=dict)  # node id -> input/parameter/...


def unit_level_problem(model: MLP) -> str | None:
    """Why the unit-level view cannot show this network, or None if it can."""
    # a maxout unit shows each of its pieces' pre-activations as a node of its own
    scalars = len(model.spec.features) + sum(
        layer.units * (layer.spec.pieces if layer.spec.activation == "maxout" else 1)
        for layer in model.layers)
    scalars += model.output.units
    if scalars > UNIT_LEVEL_LIMIT:
        return (
            f"this network has {scalars} scalar units; the unit-level view shows at most "
            f"{UNIT_LEVEL_LIMIT}, so the layer view is shown"
        )
    for layer in model.layers:
        if layer.spec.activation not in UNIT_LEVEL_ACTIVATIONS:
            return (
                f"{layer.spec.activation} units combine several numbers per unit; "
                "the layer view is shown"
            )
    if model.spec.output.loss not in UNIT_LEVEL_LOSSES:
        return f"the {model.spec.output.loss} loss is shown in the layer view"
    return None


def unit_graph(model: MLP, x: np.ndarray, y: Any, l2: float = 0.0, l1: float = 0.0) -> Graph:
    """J for one example, one node per scalar (like Fig. 6.8 and micrograd's graphs)."""
    problem = unit_level_problem(model)
    if problem:
        raise ValueError(problem)
    features = model.features(np.asarray(x, dtype=np.float64).reshape(1, -1))[0]
    kinds: dict[int, str] = {}
    parameters: dict[str, Tensor] = {}
    sources: dict[str, tuple[int, str, tuple[int, ...]]] = {}
    h: list[Tensor] = []
    for i, name in enumerate(model.spec.features):
        node = as_tensor(features[i]).named(f"x{_sub(i + 1)}" if len(h) < 9 else name)
        kinds[node.id] = "input"
        h.append(node)
    weights_for_penalty: list[Tensor] = []
    builder = _UnitBuilder(parameters, sources, kinds, weights_for_penalty)
    for k, layer in enumerate(model.all_layers, start=1):
        is_output = layer is model.output
        activation = layer.spec.activation
        next_h: list[Tensor] = []
        for j in range(layer.units):
            if is_output:
                next_h.append(builder.affine(layer, k, h, j, j, _unit_name(
                    "z", k, j, True, layer.units), output=True))
                continue
            if activation == "rbf":
                unit = builder.rbf(layer, k, h, j)
            elif activation == "maxout":
                unit = builder.maxout(layer, k, h, j)
            else:
                a = builder.affine(layer, k, h, j, j, _unit_name("a", k, j, False, layer.units))
                if activation == "leaky_relu":
                    unit = P.leaky_relu(a, slope=float(layer.spec.slope))
                elif activation == "prelu":
                    unit = P.prelu(a, builder.parameter(
                        layer.slope.value[j], f"α{_sub(k)},{_sub(j + 1)}", (k - 1, "slope", (j,))))
                elif activation == "linear":
                    unit = a + 0.0
                else:
                    unit = _UNIT_OPS[activation](a)
            next_h.append(unit.named(_unit_name("h", k, j, False, layer.units)))
        h = next_h
    loss = _unit_loss(model, h, y).named("L")
    cost = _add_penalty(loss, weights_for_penalty, l2, l1)
    return Graph(cost, "unit", parameters, sources, kinds=kinds)


def _unit_name(letter: str, layer: int, unit: int, is_output: bool, units: int) -> str:
    if is_output:
        return letter if units == 1 else f"{letter}{_sub(unit + 1)}"
    return f"{letter}{_sub(layer)},{_sub(unit + 1)}"


def _weight_name(layer: int, i: int, j: int, is_output: bool, units: int) -> str:
    if is_output:
        return f"w{_sub(i + 1)}" if units == 1 else f"W{_sub(i + 1)},{_sub(j + 1)}"
    return f"W{_sub(layer)}:{_sub(i + 1)},{_sub(j + 1)}"


class _UnitBuilder:
    """Scalar parameter nodes and the pre-activation nodes of one unit, recording each
    parameter's display name, its place in the model and its kind."""

    def __init__(self, parameters: dict[str, Tensor],
                 sources: dict[str, tuple[int, str, tuple[int, ...]]],
                 kinds: dict[int, str], penalised: list[Tensor]):
        self.parameters = parameters
        self.sources = sources
        self.kinds = kinds
        self.penalised = penalised

    def parameter(self, value: Any, name: str, source: tuple[int, str, tuple[int, ...]]
                  ) -> Tensor:
        node = Tensor(value, requires_grad=True, name=name)
        self.parameters[name] = node
        self.sources[name] = source
        self.kinds[node.id] = "parameter"
        return node

    def affine(self, layer: Any, k: int, h: list[Tensor], j: int, column: int, name: str,
               output: bool = False, piece: str = "") -> Tensor:
        """a = b + Σ_i w_i h_i for column ``column`` of the layer's weights."""
        units = layer.units
        bias_name = _unit_name("b", k, j, output, units) + piece
        operands: list[Tensor] = [self.parameter(layer.bias.value[column], bias_name,
                                                 (k - 1, "bias", (column,)))]
        for i, h_i in enumerate(h):
            weight = self.parameter(layer.weights.value[i, column],
                                    _weight_name(k, i, j, output, units) + piece,
                                    (k - 1, "weights", (i, column)))
            self.penalised.append(weight)
            operands += [weight, h_i]
        return P.unit_sum(len(h))(*operands).named(name)

    def maxout(self, layer: Any, k: int, h: list[Tensor], j: int) -> Tensor:
        """One affine node per piece, then their max (the chapter's max_i(b_i + w_i · x))."""
        pieces = layer.spec.pieces
        parts = [
            self.affine(layer, k, h, j, j * pieces + p,
                        _unit_name("a", k, j, False, layer.units) + f".{_sub(p + 1)}",
                        piece=f".{_sub(p + 1)}")
            for p in range(pieces)
        ]
        return P.unit_max(pieces)(*parts)

    def rbf(self, layer: Any, k: int, h: list[Tensor], j: int) -> Tensor:
        """a = b − ‖h − w‖² / σ², h = exp(a): a template match (templates are not
        penalised, like the layer view's weight_tensors)."""
        unit = f"{_sub(k)},{_sub(j + 1)}"
        operands: list[Tensor] = [
            self.parameter(layer.bias.value[j], f"b{unit}", (k - 1, "bias", (j,))),
            self.parameter(layer.widths.value[j], f"σ{unit}", (k - 1, "widths", (j,))),
        ]
        for i, h_i in enumerate(h):
            operands += [self.parameter(layer.weights.value[i, j],
                                        f"c{_sub(k)}:{_sub(i + 1)},{_sub(j + 1)}",
                                        (k - 1, "weights", (i, j))), h_i]
        a = P.rbf_sum(len(h))(*operands).named(f"a{unit}")
        return P.exp(a)


_UNIT_OPS = {
    "tanh": P.tanh,
    "relu": P.relu,
    "sigmoid": P.sigmoid,
    "softplus": P.softplus,
    "hard_tanh": P.hard_tanh,
    "abs": P.absolute,
}


def _unit_loss(model: MLP, outputs: list[Tensor], y: Any) -> Tensor:
    kind = model.spec.output.loss
    target = float(np.asarray(y).reshape(-1)[0])
    z = outputs[0]
    if kind == "bernoulli":
        return P.bernoulli_nll(z, as_tensor(target).named("y"))
    if kind == "softmax":
        onehot = np.zeros((1, len(outputs)))
        onehot[0, int(target)] = 1.0
        stacked = P.stack(len(outputs))(*outputs).named("z")
        row = stacked.reshape(1, len(outputs)).named("zᵀ")
        return P.softmax_nll(row, as_tensor(onehot).named("e_y"))
    diff = (z - as_tensor(target).named("y")).named("z − y")
    if kind == "squared":
        return 0.5 * (diff * diff).named("(z − y)²")
    if kind == "absolute":
        return P.absolute(diff)
    precision = model.spec.output.precision
    constant = -0.5 * np.log(precision) + 0.5 * np.log(2.0 * np.pi)
    scaled = ((0.5 * precision) * (diff * diff).named("(z − y)²")).named("β/2 (z − y)²")
    return scaled + as_tensor(constant).named("½ log(2π/β)")


def _add_penalty(loss: Tensor, weights: list[Tensor], l2: float, l1: float) -> Tensor:
    """J = L + Ω, with Ω on weights only (biases are not penalised)."""
    if not weights or not (l2 or l1):
        return _rename_cost(loss)
    if weights[0].ndim == 0:  # unit level: one Ω node with an arc from every weight
        penalty = P.scalar_penalty(len(weights))(*weights, l2=float(l2), l1=float(l1))
    else:
        # the same operations as MLP.penalty, with names for the page
        terms = []
        for w in weights:
            if l2:
                squares = (w * w).named(f"{w.name}²").sum().named(f"Σ{w.name}²")
                half = as_tensor(0.5 * l2).named("λ₂/2")
                terms.append((half * squares).named(f"λ₂/2·Σ{w.name}²"))
            if l1:
                sizes = P.absolute(w).named(f"|{w.name}|").sum().named(f"Σ|{w.name}|")
                terms.append((as_tensor(l1).named("λ₁") * sizes).named(f"λ₁·Σ|{w.name}|"))
        penalty = terms[0]
        for count, term in enumerate(terms[1:], start=2):
            penalty = (penalty + term).named(f"Ω{_sub(count)}")  # the first terms' sum
    penalty.named("Ω")
    return (loss + penalty).named("J")


def _rename_cost(loss: Tensor) -> Tensor:
    # without a penalty J = L + Ω with Ω = 0: the chapter's cost, one node per symbol
    return (loss + as_tensor(0.0).named("Ω")).named("J")


def layer_graph(model: MLP, x: np.ndarray, y: Any, l2: float = 0.0, l1: float = 0.0) -> Graph:
    """J over a minibatch with one node per matrix or vector (Algorithms 6.1 and 6.2)."""
    clone = copy.deepcopy(model)
    kinds: dict[int, str] = {}
    parameters: dict[str, Tensor] = {}
    sources: dict[str, tuple[int, str, tuple[int, ...]]] = {}
    for k, layer in enumerate(clone.all_layers):
        for kind in ("weights", "bias", "slope", "widths"):
            tensor = getattr(layer, kind)
            if tensor is not None:
                tensor.grad = None
                parameters[tensor.name] = tensor
                sources[tensor.name] = (k, kind, ())
                kinds[tensor.id] = "parameter"
    features = as_tensor(clone.features(np.asarray(x, dtype=np.float64))).named("x")
    kinds[features.id] = "input"
    h = features
    for k, layer in enumerate(clone.layers, start=1):
        a = layer.pre_activation(h).named(f"a{_sub(k)}")
        h = layer.activate(a)
        if h is a:
            h = a + 0.0
        h.named(f"h{_sub(k)}")
    z = clone.output.pre_activation(h).named("z")
    loss = output_loss(clone.spec.output, z, np.asarray(y, dtype=np.float64)).named("L")
    _name_targets(loss, z, "e_y" if clone.spec.output.loss == "softmax" else "y")
    cost = _add_penalty(loss, clone.weight_tensors(), l2, l1)
    return Graph(cost, "layer", parameters, sources, kinds=kinds)


def _name_targets(loss: Tensor, z: Tensor, name: str) -> None:
    """The loss's array constants (between z and L) are the targets."""
    stack, seen = [loss], {loss.id, z.id}
    while stack:
        node = stack.pop()
        for parent in node.parents:
            if parent.id in seen:
                continue
            seen.add(parent.id)
            if parent.op is None and parent.name is None and np.ndim(parent.value) > 0:
                parent.name = name
            stack.append(parent)


def _name_the_rest(cost: Tensor) -> None:
    """Names for what the builders left unnamed: constants by their value and the
    intermediate results u₁, u₂, … in forward order (the chapter's u⁽ⁱ⁾)."""
    count = 0
    for node in _forward_order(cost):
        if node.name:
            continue
        if node.op is None:
            node.name = _fmt(node.value) if np.ndim(node.value) == 0 else "c"
        else:
            count += 1
            node.name = f"u{_sub(count)}"


def build_graph(
    model: MLP, x: np.ndarray, y: Any, l2: float = 0.0, l1: float = 0.0, level: str = "auto"
) -> Graph:
    """The unit-level graph for one example when the net is small enough, else the
    layer graph (with a message saying why)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if level not in ("auto", "unit", "layer"):
        raise ValueError(f"level must be 'auto', 'unit' or 'layer', got {level!r}")
    problem = unit_level_problem(model)
    if level in ("auto", "unit") and x.shape[0] == 1 and problem is None:
        graph = unit_graph(model, x[0], y[0], l2, l1)
    else:
        graph = layer_graph(model, x, y, l2, l1)
        if level == "unit" and x.shape[0] > 1:
            graph.message = "a minibatch is shown in the layer view"
        elif level != "layer":
            graph.message = problem or ""
    _name_the_rest(graph.cost)
    return graph


# ----- the stepper --------------------------------------------------------------------


_SHOWN_ENTRIES = 4  # arrays up to this size appear with their numbers in formulas


def _fmt(value: Any) -> str:
    if value is None:
        return "?"
    array = np.asarray(value)
    if array.ndim == 0:
        return f"{float(array):.4g}"
    if array.size <= _SHOWN_ENTRIES and array.ndim <= 2:
        rows = array.reshape(1, -1) if array.ndim == 1 else array
        text = "; ".join(" ".join(f"{float(v):.4g}" for v in row) for row in rows)
        return f"[{text}]"
    return f"[{array.shape[0]}×{array.shape[1]}]" if array.ndim == 2 else f"[{array.size}]"


def _wrap(name: str) -> str:
    """A name inside ∂J/∂(…) needs parentheses when it is itself an expression."""
    return f"({name})" if any(c in name for c in " ·/+−×") else name


class Stepper:
    """A cursor over a graph: forward steps, then backward steps in reverse order."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes = _forward_order(graph.cost)
        self.by_id = {node.id: node for node in self.nodes}
        self.operations = [node for node in self.nodes if node.op is not None]
        self.children: dict[int, list[Tensor]] = {node.id: [] for node in self.nodes}
        for node in self.nodes:
            for parent in node.parents:
                if node not in self.children[parent.id]:
                    self.children[parent.id].append(node)
        # backward visits every node that leads to a parameter, in reverse order
        self.backward_nodes = [node for node in reversed(self.nodes) if node.requires_grad]
        self.values: dict[int, np.ndarray] = {}
        self.grads: dict[int, np.ndarray] = {}
        self.history: list[tuple[str, int]] = []
        self.reset()

    # ----- cursor ------------------------------------------------------------------
    def reset(self) -> None:
        self.values = {node.id: node.value for node in self.nodes if node.op is None}
        self.grads = {}
        self.history = []

    @property
    def phase(self) -> str:
        forward_done = sum(1 for kind, _ in self.history if kind == "forward")
        if forward_done < len(self.operations):
            return "forward"
        if len(self.grads) < len(self.backward_nodes):
            return "backward"
        return "done"

    def step(self) -> dict[str, Any]:
        """One step in whichever pass comes next."""
        phase = self.phase
        if phase == "forward":
            return self.step_forward()
        if phase == "backward":
            return self.step_backward()
        raise ValueError("both passes are complete: reset, or go back a step")

    def step_forward(self) -> dict[str, Any]:
        done = sum(1 for kind, _ in self.history if kind == "forward")
        if done >= len(self.operations):
            raise ValueError("the forward pass is complete")
        node = self.operations[done]
        operands = [self.values[p.id] for p in node.parents]
        self.values[node.id] = node.op.forward(*operands, **node.params)
        self.history.append(("forward", node.id))
        return self._forward_event(node)

    def step_backward(self) -> dict[str, Any]:
        if self.phase != "backward":
            raise ValueError("finish the forward pass before stepping backward")
        node = self.backward_nodes[len(self.grads)]
        total, terms = self._backward_terms(node)
        self.grads[node.id] = total
        self.history.append(("backward", node.id))
        return self._backward_event(node, terms)

    def current(self) -> dict[str, Any] | None:
        """The last step taken, described as when it was taken (None before the first)."""
        if not self.history:
            return None
        kind, node_id = self.history[-1]
        node = self.by_id[node_id]
        if kind == "forward":
            return self._forward_event(node)
        return self._backward_event(node, self._backward_terms(node)[1])

    def next_node(self) -> int | None:
        """The node the next step computes (None when both passes are complete)."""
        phase = self.phase
        if phase == "forward":
            done = sum(1 for kind, _ in self.history if kind == "forward")
            return self.operations[done].id
        if phase == "backward":
            return self.backward_nodes[len(self.grads)].id
        return None

    def _forward_event(self, node: Tensor) -> dict[str, Any]:
        return {
            "phase": "forward",
            "node": node.id,
            "name": self._name(node),
            "op": node.op.name,
            "value": self.values[node.id],
            "formula": self.formula(node),
        }

    def _backward_event(self, node: Tensor, terms: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "phase": "backward",
            "node": node.id,
            "name": self._name(node),
            "grad": self.grads[node.id],
            "terms": terms,
            "formula": self.backward_formula(node, terms),
            "algorithm": self.algorithm_line(node),
        }

    def _backward_terms(self, node: Tensor) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """∂J/∂node as the sum over its children of (child's gradient × local
        derivative), from the children's gradients known so far (Algorithm 6.4)."""
        terms: list[dict[str, Any]] = []
        if node is self.graph.cost:
            return np.ones_like(np.asarray(self.values[node.id], dtype=np.float64)), terms
        total = np.zeros_like(np.asarray(self.values[node.id], dtype=np.float64))
        for child in self.children[node.id]:
            if child.id not in self.grads:
                continue  # the child does not lead to the cost
            child_grad = self.grads[child.id]
            contribution = np.zeros_like(total)
            # a local derivative is one number only between scalar nodes
            scalar = total.ndim == 0 and np.ndim(child_grad) == 0
            local = np.zeros_like(total) if scalar else None
            operands = [self.values[p.id] for p in child.parents]
            for position, parent in enumerate(child.parents):
                if parent is not node or child.op.vjps[position] is None:
                    continue
                vjp = child.op.vjps[position]
                part = _fit(
                    vjp(child_grad, self.values[child.id], *operands, **child.params),
                    total.shape,
                )
                contribution = contribution + part
                if local is not None:
                    unit = _fit(vjp(1.0, self.values[child.id], *operands, **child.params), ())
                    local = local + unit
            total = total + contribution
            terms.append(
                {
                    "child": child.id,
                    "child_name": self._name(child),
                    "child_grad": child_grad,
                    "local": local,
                    "contribution": contribution,
                }
            )
        return total, terms

    def back(self) -> dict[str, Any] | None:
        """Undo the last step."""
        if not self.history:
            return None
        kind, node_id = self.history.pop()
        if kind == "forward":
            del self.values[node_id]
        else:
            del self.grads[node_id]
        return {"phase": kind, "node": node_id, "undone": True}

    def run_to_end(self) -> list[dict[str, Any]]:
        events = []
        while self.phase != "done":
            events.append(self.step())
        return events

    # ----- what the page shows --------------------------------------------------------
    def _name(self, node: Tensor) -> str:
        return node.name or f"{node.op.name if node.op else 'c'}#{node.id}"

    def formula(self, node: Tensor) -> str:
        """The node's defining formula, then the same with its parents' numbers."""
        name = self._name(node)
        value = _fmt(self.values.get(node.id))
        parents = node.parents
        names = [self._name(p) for p in parents]
        numbers = [_fmt(self.values.get(p.id)) for p in parents]
        op = node.op.name
        if op == "unit_sum":
            symbolic = " + ".join(
                [names[0]] + [f"{names[i]}·{names[i + 1]}" for i in range(1, len(names), 2)]
            )
            numeric = " + ".join(
                [numbers[0]]
                + [f"({numbers[i]})({numbers[i + 1]})" for i in range(1, len(numbers), 2)]
            )
            return f"{name} = {symbolic} = {numeric} = {value}"
        if op == "unit_max":
            winner = int(np.argmax([float(self.values[p.id]) for p in parents]))
            return (
                f"{name} = max({', '.join(names)}) = max({', '.join(numbers)}) = {value}: "
                f"piece {winner + 1} ({names[winner]}) wins, so the backward pass sends "
                "the gradient to it alone"
            )
        if op == "rbf_sum":
            pairs = range(2, len(names), 2)
            symbolic = " + ".join(f"({names[i + 1]} − {names[i]})²" for i in pairs)
            numeric = " + ".join(f"({numbers[i + 1]} − {numbers[i]})²" for i in pairs)
            return (
                f"{name} = {names[0]} − [{symbolic}] / {names[1]}² = "
                f"{numbers[0]} − [{numeric}] / ({numbers[1]})² = {value}"
            )
        if op in ("leaky_relu", "prelu"):
            slope = _fmt(node.params["slope"]) if op == "leaky_relu" else numbers[1]
            alpha = "α" if op == "leaky_relu" else names[1]
            return (
                f"{name} = max(0, {names[0]}) + {alpha}·min(0, {names[0]}) with {alpha} = "
                f"{slope}: max(0, {numbers[0]}) + ({slope})·min(0, {numbers[0]}) = {value}"
            )
        if op == "penalty":
            weights = np.array([float(self.values[p.id]) for p in parents])
            l2, l1 = node.params["l2"], node.params["l1"]
            return (
                f"{name} = λ₂/2 Σw² + λ₁ Σ|w| over {len(parents)} weights, λ₂ = {l2:g}, "
                f"λ₁ = {l1:g}: {l2 / 2:g}·{_fmt(weights @ weights)} + "
                f"{l1:g}·{_fmt(np.abs(weights).sum())} = {value}"
            )
        if op == "affine":
            shapes = f"{numbers[0]}·{numbers[1]} + {numbers[2]}"
            return f"{name} = {names[0]} {names[1]} + {names[2]}  ({shapes}) = {value}"
        if len(parents) == 2 and node.op.symbol and op not in ("bernoulli_nll", "softmax_nll"):
            symbol = node.op.symbol
            symbolic = f"{names[0]} {symbol} {names[1]}"
            return f"{name} = {symbolic} = {numbers[0]} {symbol} {numbers[1]} = {value}"
        if op == "bernoulli_nll":
            z, y = numbers
            return f"{name} = ζ({names[0]}) − y·{names[0]} with y = {y}: ζ({z}) − {y}·{z} = {value}"
        if op == "softmax_nll":
            return f"{name} = log Σ exp({names[0]}) − {names[0]}_y = {value}"
        arguments = ", ".join(names)
        return f"{name} = {op}({arguments}) = {op}({', '.join(numbers)}) = {value}"

    def backward_formula(self, node: Tensor, terms: list[dict[str, Any]]) -> str:
        name = self._name(node)
        top = self._name(self.graph.cost)
        if node is self.graph.cost:
            return f"∂{top}/∂{name} = 1"
        if not terms:
            return f"∂{top}/∂{_wrap(name)} = 0"
        pieces = []
        numbers = []
        name = _wrap(name)
        for term in terms:
            child = _wrap(term["child_name"])
            pieces.append(f"∂{top}/∂{child} · ∂{child}/∂{name}")
            if term["local"] is not None:
                numbers.append(f"({_fmt(term['child_grad'])})({_fmt(term['local'])})")
            else:
                numbers.append(_fmt(term["contribution"]))
        total = _fmt(self.grads[node.id])
        shown = " + ".join(numbers)
        middle = "" if shown == total else f" = {shown}"
        return f"∂{top}/∂{name} = " + " + ".join(pieces) + middle + f" = {total}"

    def algorithm_line(self, node: Tensor) -> str:
        """The matching line of Algorithm 6.2 in the layer view (row-vector minibatches,
        a = h W + b, so the chapter's W⁽ᵏ⁾ᵀ g appears as g Wᵀ)."""
        if self.graph.level != "layer" or node.name is None:
            return ""
        name = node.name
        children = self.children.get(node.id, [])
        if node is self.graph.cost:
            return "g ← ∇_J J = 1"
        if name == "L":
            return "∇_L J = 1 (J = L + Ω): the loss starts the backward pass"
        if name == "Ω":
            return "∇_Ω J = 1: the penalty's gradient λ∇_W Ω joins each ∇_W J"
        if node.op is not None and node.op.name == "affine":
            losses = {child.op.name for child in children if child.op is not None}
            if name == "z" or losses & {"bernoulli_nll", "softmax_nll"}:
                if "bernoulli_nll" in losses:
                    return "g ← ∇_z J = (σ(z) − y) / m: the sigmoid output unit's gradient"
                if "softmax_nll" in losses:
                    return "g ← ∇_z J = (p − e_y) / m: the softmax output unit's gradient"
                return "g ← ∇_ŷ J = ∇_ŷ L(ŷ, y): the output unit's gradient"
            return f"g ← ∇_{name} J = g ⊙ f′({name}) (element-wise)"
        for child in children:
            if child.op is not None and child.op.name == "affine":
                if child.parents[0] is node and node.id not in self.graph.kinds:
                    weights = self._name(child.parents[1])
                    return f"g ← ∇_{name} J = g {weights}ᵀ (propagate to the layer below)"
        if self.graph.kinds.get(node.id) == "parameter":
            affine = next((c for c in children if c.op is not None and c.op.name == "affine"), None)
            if affine is not None and affine.parents[1] is node:
                below = self._name(affine.parents[0])
                penalty = ""
                for child in children:
                    label = self._name(child)
                    if label.endswith("²"):
                        penalty += f" + λ₂ {name}"
                    elif label.startswith("|"):
                        penalty += f" + λ₁ sign({name})"
                return f"∇_{name} J = h⁽ᵏ⁻¹⁾ᵀ g = {below}ᵀ g{penalty}"
            if affine is not None and affine.parents[2] is node:
                return f"∇_{name} J = Σ over the minibatch's rows of g"
        return ""

    def node_table(self) -> list[dict[str, Any]]:
        """Every node with what is known of it so far (for drawing the graph)."""
        rows = []
        for node in self.nodes:
            rows.append(
                {
                    "id": node.id,
                    "name": self._name(node),
                    "op": node.op.name
                    if node.op is not None
                    else self.graph.kinds.get(node.id, "constant"),
                    "parents": [p.id for p in node.parents],
                    "shape": list(np.shape(node.value)),
                    "value": self.values.get(node.id),
                    "grad": self.grads.get(node.id),
                    "requires_grad": node.requires_grad,
                }
            )
        return rows

    # ----- chain-rule paths (Figs. 6.5 and 6.7) -------------------------------------------
    def local_derivative(self, parent: Tensor, child: Tensor) -> float:
        """∂child/∂parent for scalar nodes (the label on one arc)."""
        operands = [self.by_id[p.id].value for p in child.parents]
        total = 0.0
        for position, p in enumerate(child.parents):
            if p is parent and child.op.vjps[position] is not None:
                part = child.op.vjps[position](1.0, child.value, *operands, **child.params)
                total += float(np.sum(part)) if np.ndim(child.value) == 0 else np.nan
        return total

    def _vector_chain(self, node: Tensor) -> list[Tensor]:
        """From a non-scalar node down its single line of children to the first scalar."""
        chain = [node]
        while np.ndim(chain[-1].value) != 0:
            after = [c for c in self.children[chain[-1].id] if c.requires_grad]
            if len(after) != 1:
                raise ValueError(f"paths through the vector node {self._name(chain[-1])} branch")
            chain.append(after[0])
        return chain

    def _chain_derivative(self, start: Tensor, chain: list[Tensor]) -> float:
        """∂(last of chain)/∂start along the chain, by vector-Jacobian products."""
        g: Any = 1.0
        for position in range(len(chain) - 1, -1, -1):
            node = chain[position]
            parent = chain[position - 1] if position else start
            operands = [p.value for p in node.parents]
            total = np.zeros(np.shape(parent.value))
            for index, p in enumerate(node.parents):
                if p is parent and node.op.vjps[index] is not None:
                    part = node.op.vjps[index](g, node.value, *operands, **node.params)
                    total = total + _fit(part, total.shape)
            g = total
        return float(g)

    def paths(self, parameter: str, limit: int = 2000) -> dict[str, Any]:
        """Every path from a parameter to J with the product of local derivatives along
        it; their sum equals the back-propagated gradient (unit-level graphs)."""
        if self.graph.level != "unit":
            raise ValueError("paths are listed in the unit-level view only")
        start = self.graph.parameters.get(parameter)
        if start is None:
            raise ValueError(f"unknown parameter {parameter!r}")
        cost = self.graph.cost
        count = _count_paths(start, cost, self.children)
        listed: list[dict[str, Any]] = []
        stack: list[tuple[Tensor, list[Tensor], float]] = [(start, [start], 1.0)]
        while stack and len(listed) < limit:
            node, path, product = stack.pop()
            if node is cost:
                listed.append(
                    {
                        "nodes": [self._name(n) for n in path],
                        "ids": [n.id for n in path],
                        "product": product,
                    }
                )
                continue
            for child in self.children[node.id]:
                if not child.requires_grad:
                    continue
                if np.ndim(child.value) == 0:
                    local = self.local_derivative(node, child)
                    stack.append((child, path + [child], product * local))
                    continue
                # a vector node (the softmax's z): one arc on to the next scalar node
                chain = self._vector_chain(child)
                local = self._chain_derivative(node, chain)
                stack.append((chain[-1], path + chain, product * local))
        total = float(sum(item["product"] for item in listed))
        return {
            "parameter": parameter,
            "paths": listed,
            "count": count,
            "complete": len(listed) == count,
            "sum": total,
            "edges": sum(len(n.parents) for n in self.nodes if n.op is not None),
        }


def _fit(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    if value.shape == shape:
        return value
    return np.asarray(P.sum_to_shape(value, shape), dtype=np.float64)


def _forward_order(root: Tensor) -> list[Tensor]:
    seen: set[int] = set()
    nodes: list[Tensor] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        nodes.append(node)
        stack.extend(node.parents)
    # a node is created after its parents, so ids give a forward order
    nodes.sort(key=lambda n: n.id)
    return nodes


def _count_paths(start: Tensor, cost: Tensor, children: dict[int, list[Tensor]]) -> int:
    memo: dict[int, int] = {cost.id: 1}
    order = [start]
    stack = [start]
    seen = {start.id}
    while stack:  # collect the nodes reachable from start
        node = stack.pop()
        for child in children[node.id]:
            if child.id not in seen:
                seen.add(child.id)
                order.append(child)
                stack.append(child)
    for node in sorted(order, key=lambda n: -n.id):
        if node.id in memo:
            continue
        memo[node.id] = sum(memo.get(child.id, 0) for child in children[node.id])
    return memo.get(start.id, 0)


def path_growth(
    width: int = 3, depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
) -> list[dict[str, int]]:
    """For nets of one width and growing depth: how many chain-rule paths lead from a
    first-layer weight to J, against the number of arcs back-propagation visits."""
    from engine.spec import LayerSpec, ModelSpec

    rows = []
    for depth in depths:
        spec = ModelSpec(layers=[LayerSpec(width, "tanh") for _ in range(depth)])
        model = MLP(spec)
        graph = unit_graph(model, np.zeros(2), 1.0) if unit_level_problem(model) is None else None
        if graph is None:
            break
        stepper = Stepper(graph)
        first = next(name for name in graph.parameters if name.startswith("W₁"))
        start = graph.parameters[first]
        rows.append(
            {
                "depth": depth,
                "paths": _count_paths(start, graph.cost, stepper.children),
                "arcs": sum(len(n.parents) for n in stepper.nodes if n.op is not None),
            }
        )
    return rows


def figure_6_7_graph(u1: float = 0.8) -> Graph:
    """The chapter's worked example: u₂ = u₁², u₃ = exp(u₁ + u₂). There are two paths
    from u₁ to u₃, and ∂u₃/∂u₁ = e^(u₁+u₂) (1 + 2u₁) sums them."""
    first = Tensor(float(u1), requires_grad=True, name="u₁")
    second = (first * first).named("u₂")
    exponent = (first + second).named("u₁+u₂")
    third = P.exp(exponent).named("u₃")
    return Graph(third, "unit", {"u₁": first}, kinds={first.id: "input"})


# ----- checks and the update ------------------------------------------------------------


def gradient_check(
    graph: Graph,
    names: list[str] | None = None,
    epsilon: float = 3e-4,
    limit: int | None = None,
    points: int = 4,
    floor: float = 1e-5,
) -> list[dict[str, Any]]:
    """Central finite differences beside back-propagated gradients, flagged when the
    relative error is above 1e-6.

    ``points`` = 2: (J(θ+ε) − J(θ−ε)) / 2ε; ``points`` = 4 (the default): the
    fourth-order stencil (−J(θ+2ε) + 8J(θ+ε) − 8J(θ−ε) + J(θ−2ε)) / 12ε. With two
    points and a small ε, rounding in J (about 1e-16 |J| / ε) swamps gradients below
    about 1e-4 and trained networks get flagged for nothing; four points reach a smaller
    truncation error at a larger ε. The relative error is
    |numeric − backprop| / max(|numeric| + |backprop|, floor · max(1, |J|)): gradients
    below the floor are compared in absolute terms, since rounding would set their
    relative error. A flag next to a ReLU, |·| or hard-tanh kink can be genuine: the
    differences straddle the kink. ``limit``: at most this many entries per parameter,
    evenly spread over it.
    """
    from engine.autodiff import grad

    if points not in (2, 4):
        raise ValueError(f"points must be 2 or 4, got {points!r}")
    names = list(graph.parameters) if names is None else names
    for name in names:
        if name not in graph.parameters:
            raise ValueError(f"unknown parameter {name!r}")
    tensors = [graph.parameters[name] for name in names]
    backprop = grad(graph.cost, tensors)
    replay = _Replay(graph.cost)
    floor = floor * max(1.0, abs(replay.cost()))
    stencil = (
        ((1.0, 0.5), (-1.0, -0.5))
        if points == 2
        else ((2.0, -1 / 12), (1.0, 8 / 12), (-1.0, -8 / 12), (-2.0, 1 / 12))
    )
    rows = []
    for name, tensor, analytic in zip(names, tensors, backprop):
        indices = list(np.ndindex(tensor.shape))
        if limit is not None and len(indices) > limit:
            chosen = np.unique(np.linspace(0, len(indices) - 1, max(limit, 1)).round())
            indices = [indices[int(i)] for i in chosen]
        for index in indices:
            original = tensor.value[index] if tensor.ndim else float(tensor.value)
            numeric = 0.0
            for step, weight in stencil:
                _set(tensor, index, original + step * epsilon)
                numeric += weight * replay(tensor)
            _set(tensor, index, original)
            numeric /= epsilon
            exact = float(analytic.value[index]) if tensor.ndim else float(analytic.value)
            error = abs(numeric - exact) / max(abs(numeric) + abs(exact), floor)
            label = name if not tensor.ndim else f"{name}[{','.join(map(str, index))}]"
            rows.append(
                {
                    "name": label,
                    "backprop": exact,
                    "numeric": numeric,
                    "relative_error": error,
                    "flagged": error > 1e-6,
                }
            )
    return rows


def _set(tensor: Tensor, index: tuple[int, ...], value: float) -> None:
    if tensor.ndim:
        tensor.value[index] = value
    else:
        tensor.value = np.asarray(value, dtype=np.float64)


class _Replay:
    """Re-runs the recorded forward computation after one leaf changed, recomputing only
    the nodes downstream of it (the rest keep the values of the unperturbed pass)."""

    def __init__(self, root: Tensor):
        self.root = root
        self.order = _forward_order(root)
        self.children: dict[int, list[Tensor]] = {node.id: [] for node in self.order}
        for node in self.order:
            for parent in node.parents:
                self.children[parent.id].append(node)
        self.base: dict[int, np.ndarray] = {}
        with no_grad():
            for node in self.order:
                self.base[node.id] = (
                    node.value
                    if node.op is None
                    else node.op.forward(*[self.base[p.id] for p in node.parents], **node.params)
                )
        self._downstream: dict[int, list[Tensor]] = {}

    def cost(self) -> float:
        return float(self.base[self.root.id])

    def downstream(self, leaf: Tensor) -> list[Tensor]:
        if leaf.id not in self._downstream:
            reached = {leaf.id}
            for node in self.order:  # forward order: parents come first
                if node.op is not None and any(p.id in reached for p in node.parents):
                    reached.add(node.id)
            self._downstream[leaf.id] = [n for n in self.order if n.id in reached and n.op]
        return self._downstream[leaf.id]

    def __call__(self, leaf: Tensor) -> float:
        values = dict(self.base)
        values[leaf.id] = leaf.value
        with no_grad():
            for node in self.downstream(leaf):
                values[node.id] = node.op.forward(
                    *[values[p.id] for p in node.parents], **node.params
                )
        return float(values[self.root.id])


def apply_update(
    model: MLP, graph: Graph, grads: dict[str, np.ndarray], learning_rate: float
) -> None:
    """θ ← θ − ε ∇θ J, written into the model (the one call that changes its weights)."""
    layers = model.all_layers
    for name, gradient in grads.items():
        layer_index, kind, index = graph.sources[name]
        target = getattr(layers[layer_index], kind)
        if index:
            target.value[index] -= learning_rate * float(gradient)
        else:
            target.value -= learning_rate * np.asarray(gradient)
