"""Unit-level step-through of leaky ReLU, PReLU, maxout and RBF nets, node by node.

Every ∂J/∂θ the stepper shows at unit level is compared with torch's on the same weights,
and every node's value and gradient with the matching entry of torch's pre-activations,
activations and output: the forward pass computes what the network computes, and the
backward pass sends the gradient where torch sends it (to the winning maxout piece only,
to each PReLU slope as its own parameter, to RBF templates and widths).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.nn import MLP
from engine.spec import LayerSpec, ModelSpec, OutputSpec
from engine.stepper import Stepper, apply_update, build_graph, gradient_check

torch = pytest.importorskip("torch")

X = np.array([0.6, -0.9])


def model_for(activation: str, loss: str = "bernoulli", seed: int = 5) -> MLP:
    layers = [LayerSpec(3, activation, pieces=3, slope=0.2), LayerSpec(2, activation, pieces=2,
                                                                       slope=0.2)]
    spec = ModelSpec(layers=layers, output=OutputSpec(loss=loss), seed=seed)
    model = MLP(spec, classes=3 if loss == "softmax" else 2)
    if activation == "prelu":  # slopes that differ per unit, so each gets its own gradient
        for layer in model.layers:
            layer.slope.value[:] = np.linspace(0.05, 0.4, layer.slope.value.size)
    return model


def torch_pass(model: MLP, x: np.ndarray, y: float, l2: float, l1: float):
    """The same cost in torch: the parameters (by model name), and every layer's
    pre-activations and activations with their gradients kept."""
    params = {p.name: torch.tensor(p.value, dtype=torch.float64, requires_grad=True)
              for p in model.parameters()}
    h = torch.tensor(np.atleast_2d(model.features(np.atleast_2d(x))), dtype=torch.float64)
    recorded = []
    penalty = torch.zeros((), dtype=torch.float64)
    for layer in model.all_layers:
        weights, bias = params[layer.weights.name], params[layer.bias.name]
        kind = layer.spec.activation
        if kind == "rbf":
            width = params[layer.widths.name]
            a = bias - ((h[:, :, None] - weights[None]) ** 2).sum(1) / width**2
        else:
            a = h @ weights + bias
            penalty = penalty + 0.5 * l2 * (weights**2).sum() + l1 * weights.abs().sum()
        a.retain_grad()
        if layer is model.output:
            out = a
        elif kind == "rbf":
            out = torch.exp(a)
        elif kind == "maxout":
            out = a.reshape(a.shape[0], layer.units, layer.spec.pieces).max(-1).values
        elif kind == "prelu":
            out = torch.nn.functional.prelu(a, params[layer.slope.name])
        elif kind == "leaky_relu":
            out = torch.nn.functional.leaky_relu(a, layer.spec.slope)
        else:
            raise AssertionError(kind)
        out.retain_grad()
        recorded.append((a, out))
        h = out
    z = h
    if model.spec.output.loss == "softmax":
        loss = torch.nn.functional.cross_entropy(z, torch.tensor([int(y)]))
    else:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            z[:, 0], torch.tensor([float(y)], dtype=torch.float64))
    cost = loss + penalty
    cost.backward()
    return cost, params, recorded


CASES = [("leaky_relu", "bernoulli"), ("prelu", "bernoulli"), ("maxout", "bernoulli"),
         ("rbf", "bernoulli"), ("maxout", "softmax"), ("prelu", "softmax")]


@pytest.mark.parametrize(("activation", "loss"), CASES)
def test_every_unit_level_gradient_equals_torchs(activation, loss):
    model = model_for(activation, loss)
    y = 2.0 if loss == "softmax" else 1.0
    graph = build_graph(model, X, y, l2=0.03, l1=0.004, level="unit")
    assert graph.level == "unit" and graph.message == ""
    stepper = Stepper(graph)
    stepper.run_to_end()
    cost, params, _ = torch_pass(model, X, y, 0.03, 0.004)
    assert float(stepper.values[graph.cost.id]) == pytest.approx(cost.item(), abs=1e-12)
    layers = model.all_layers
    covered = {name: np.zeros(p.value.shape, bool) for name, p in
               ((p.name, p) for p in model.parameters())}
    for name, leaf in graph.parameters.items():
        layer_index, kind, index = graph.sources[name]
        tensor_name = getattr(layers[layer_index], kind).name
        expected = params[tensor_name].grad.numpy()[index]
        assert float(stepper.grads[leaf.id]) == pytest.approx(expected, abs=1e-12), name
        covered[tensor_name][index] = True
    # one parameter node per scalar parameter of the model: none is missing from the graph
    assert all(mask.all() for mask in covered.values()), {
        name: int((~mask).sum()) for name, mask in covered.items()}


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu", "maxout", "rbf"])
def test_each_node_value_and_gradient_match_the_network(activation):
    """Forward: each a, h and z node holds the network's number; backward: ∂J/∂node is
    torch's gradient of that pre-activation or activation."""
    model = model_for(activation)
    graph = build_graph(model, X, 1.0, level="unit")
    stepper = Stepper(graph)
    events = stepper.run_to_end()
    _, _, recorded = torch_pass(model, X, 1.0, 0.0, 0.0)
    by_name = {stepper._name(node): node for node in stepper.nodes}
    checked = 0
    for k, (a, h) in enumerate(recorded[:-1], start=1):
        layer = model.layers[k - 1]
        pieces = layer.spec.pieces if activation == "maxout" else 1
        for j in range(layer.units):
            unit = f"{_sub(k)},{_sub(j + 1)}"
            node = by_name[f"h{unit}"]
            assert float(stepper.values[node.id]) == pytest.approx(h[0, j].item(), abs=1e-12)
            assert float(stepper.grads[node.id]) == pytest.approx(h.grad[0, j].item(), abs=1e-12)
            for p in range(pieces):
                name = f"a{unit}" + (f".{_sub(p + 1)}" if activation == "maxout" else "")
                column = j * pieces + p
                node = by_name[name]
                assert float(stepper.values[node.id]) == pytest.approx(a[0, column].item(),
                                                                       abs=1e-12)
                assert float(stepper.grads[node.id]) == pytest.approx(
                    a.grad[0, column].item(), abs=1e-12)
                checked += 1
    z = by_name["z"]
    assert float(stepper.values[z.id]) == pytest.approx(recorded[-1][0][0, 0].item(), abs=1e-12)
    assert checked >= 5
    # each forward event's number is the node's value, each backward event's its gradient
    for event in events:
        store = stepper.values if event["phase"] == "forward" else stepper.grads
        key = "value" if event["phase"] == "forward" else "grad"
        np.testing.assert_allclose(event[key], store[event["node"]])


def _sub(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def test_maxout_sends_the_gradient_to_the_winning_piece_only_and_says_which_won():
    model = model_for("maxout")
    graph = build_graph(model, X, 1.0, level="unit")
    stepper = Stepper(graph)
    events = stepper.run_to_end()
    maxima = [node for node in stepper.nodes if node.op is not None
              and node.op.name == "unit_max"]
    assert len(maxima) == 5
    for node in maxima:
        values = [float(stepper.values[p.id]) for p in node.parents]
        winner = int(np.argmax(values))
        grads = [float(stepper.grads[p.id]) for p in node.parents]
        assert grads[winner] == pytest.approx(float(stepper.grads[node.id]))
        assert all(g == 0.0 for i, g in enumerate(grads) if i != winner)
        forward = next(e for e in events if e["phase"] == "forward" and e["node"] == node.id)
        assert f"piece {winner + 1} ({stepper._name(node.parents[winner])}) wins" in (
            forward["formula"])
        # the losing pieces' parameters get no gradient from this example
        for loser in (p for i, p in enumerate(node.parents) if i != winner):
            for parameter in loser.parents:
                if graph.kinds.get(parameter.id) == "parameter":
                    assert float(stepper.grads[parameter.id]) == 0.0


def test_prelu_slopes_are_parameter_nodes_with_their_own_gradient():
    model = model_for("prelu")
    graph = build_graph(model, X, 1.0, level="unit")
    stepper = Stepper(graph)
    stepper.run_to_end()
    slopes = [name for name in graph.parameters if name.startswith("α")]
    assert len(slopes) == 5
    nonzero = 0
    for name in slopes:
        leaf = graph.parameters[name]
        (child,) = stepper.children[leaf.id]
        assert child.op.name == "prelu" and child.parents[1] is leaf
        pre_activation = float(stepper.values[child.parents[0].id])
        # ∂J/∂α = ∂J/∂h · min(0, a): zero exactly when the unit's input is positive
        expected = float(stepper.grads[child.id]) * min(0.0, pre_activation)
        assert float(stepper.grads[leaf.id]) == pytest.approx(expected, abs=1e-15)
        nonzero += pre_activation < 0
    assert nonzero >= 1  # the example reaches the negative side of at least one unit


def test_rbf_unit_level_gradients_pass_a_finite_difference_check():
    model = model_for("rbf")
    graph = build_graph(model, X, 1.0, l2=0.01, level="unit")
    names = [n for n in graph.parameters if n[0] in "cσb"]
    rows = gradient_check(graph, names)
    assert len(rows) == len(names) and not any(row["flagged"] for row in rows)


@pytest.mark.parametrize("activation", ["prelu", "maxout", "rbf"])
def test_the_update_writes_every_unit_level_gradient_into_the_network(activation):
    """θ ← θ − ε ∂J/∂θ reaches the PReLU slopes, every maxout piece and the RBF templates
    and widths: the model afterwards equals the same step taken with torch's gradients."""
    model = model_for(activation)
    graph = build_graph(model, X, 1.0, l2=0.02, level="unit")
    stepper = Stepper(graph)
    stepper.run_to_end()
    _, params, _ = torch_pass(model, X, 1.0, 0.02, 0.0)
    expected = {name: model_value - 0.5 * params[name].grad.numpy()
                for name, model_value in ((p.name, p.value.copy()) for p in model.parameters())}
    grads = {name: stepper.grads[leaf.id] for name, leaf in graph.parameters.items()}
    apply_update(model, graph, grads, 0.5)
    for parameter in model.parameters():
        np.testing.assert_allclose(parameter.value, expected[parameter.name], atol=1e-12)
