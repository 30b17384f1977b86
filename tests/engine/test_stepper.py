"""The node-by-node stepper against the engine's own gradients, paths and checks."""

import numpy as np
import pytest

from engine import grad
from engine.nn import MLP
from engine.spec import LayerSpec, ModelSpec, OutputSpec
from engine.stepper import (
    Stepper,
    apply_update,
    build_graph,
    figure_6_7_graph,
    gradient_check,
    path_growth,
)


def small_model(activation="tanh", loss="bernoulli", units=(2,), classes=2, seed=3):
    spec = ModelSpec(
        layers=[LayerSpec(u, activation) for u in units], output=OutputSpec(loss=loss), seed=seed
    )
    return MLP(spec, classes=classes)


def engine_gradients(model, x, y, l2, l1):
    cost = model.cost(np.atleast_2d(x), np.atleast_1d(y), l2=l2, l1=l1)
    return cost.item(), [g.value for g in grad(cost, model.parameters())]


def stepped_gradients(model, graph, stepper):
    """Map the stepper's per-scalar gradients back onto the model's parameter shapes."""
    result = [np.zeros_like(p.value) for p in model.parameters()]
    index_of = {id(p): i for i, p in enumerate(model.parameters())}
    layers = model.all_layers
    for name, leaf in graph.parameters.items():
        layer_index, kind, where = graph.sources[name]
        target = index_of[id(getattr(layers[layer_index], kind))]
        if where:
            result[target][where] = stepper.grads[leaf.id]
        else:
            result[target] = stepper.grads[leaf.id]
    return result


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "softplus", "abs", "linear"])
@pytest.mark.parametrize("loss", ["bernoulli", "squared", "absolute", "gaussian"])
def test_unit_level_steps_reproduce_engine_gradients(activation, loss):
    model = small_model(activation, loss, units=(3, 2))
    x, y = np.array([0.7, -0.4]), 1.0
    graph = build_graph(model, x, y, l2=0.02, l1=0.003)
    assert graph.level == "unit"
    stepper = Stepper(graph)
    stepper.run_to_end()
    cost, expected = engine_gradients(model, x, y, 0.02, 0.003)
    assert float(stepper.values[graph.cost.id]) == pytest.approx(cost, abs=1e-12)
    for got, want in zip(stepped_gradients(model, graph, stepper), expected):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_softmax_unit_level_and_layer_level_agree_with_engine():
    model = small_model("tanh", "softmax", units=(3,), classes=3)
    x, y = np.array([0.3, 0.9]), 2
    for level in ("unit", "layer"):
        graph = build_graph(model, x, y, l2=0.01, level=level)
        assert graph.level == level
        stepper = Stepper(graph)
        stepper.run_to_end()
        _, expected = engine_gradients(model, x, y, 0.01, 0.0)
        for got, want in zip(stepped_gradients(model, graph, stepper), expected):
            np.testing.assert_allclose(got, want, atol=1e-12)


def test_layer_level_minibatch_matches_engine_and_follows_algorithm_6_2():
    model = small_model("relu", "bernoulli", units=(4, 3))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 2)), (rng.random(6) > 0.5).astype(float)
    graph = build_graph(model, x, y, l2=0.05)
    assert graph.level == "layer"
    stepper = Stepper(graph)
    events = stepper.run_to_end()
    _, expected = engine_gradients(model, x, y, 0.05, 0.0)
    for got, want in zip(stepped_gradients(model, graph, stepper), expected):
        np.testing.assert_allclose(got, want, atol=1e-12)
    lines = {e["name"]: e["algorithm"] for e in events if e["phase"] == "backward"}
    assert "f′(a₁)" in lines["a₁"] and "g W" in lines["h₁"]
    assert lines["W1"].startswith("∇_W1 J = h") and "Σ" in lines["b1"]


def test_backward_order_is_exactly_the_reverse_of_forward():
    graph = build_graph(small_model(units=(2, 2)), np.array([0.1, 0.2]), 0.0)
    stepper = Stepper(graph)
    events = stepper.run_to_end()
    forward = [e["node"] for e in events if e["phase"] == "forward"]
    backward = [e["node"] for e in events if e["phase"] == "backward"]
    operations_needing_grad = [n for n in forward if stepper.by_id[n].requires_grad]
    backward_operations = [n for n in backward if stepper.by_id[n].op is not None]
    assert backward_operations == operations_needing_grad[::-1]
    assert backward[0] == graph.cost.id


def test_backward_terms_sum_to_the_gradient_and_show_numbers():
    graph = build_graph(small_model(units=(2,)), np.array([0.5, -1.0]), 1.0)
    stepper = Stepper(graph)
    while stepper.phase == "forward":
        event = stepper.step()
        assert " = " in event["formula"]
    assert "tanh(" in next(stepper.formula(n) for n in stepper.operations if n.op.name == "tanh")
    while stepper.phase == "backward":
        event = stepper.step()
        if event["terms"]:
            total = sum(np.asarray(t["contribution"]) for t in event["terms"])
            np.testing.assert_allclose(total, event["grad"], atol=1e-15)
            for term in event["terms"]:
                np.testing.assert_allclose(
                    term["child_grad"] * term["local"], term["contribution"], atol=1e-15
                )
    with pytest.raises(ValueError, match="complete"):
        stepper.step()


def test_back_undoes_one_step_and_forward_is_required_first():
    stepper = Stepper(build_graph(small_model(), np.array([0.5, -1.0]), 1.0))
    with pytest.raises(ValueError, match="forward pass"):
        stepper.step_backward()
    first = stepper.step()
    stepper.step()
    stepper.back()
    again = stepper.step()
    assert again["node"] != first["node"]
    np.testing.assert_allclose(again["value"], stepper.values[again["node"]])
    stepper.reset()
    assert stepper.phase == "forward" and not stepper.grads


def test_stepping_never_changes_the_models_weights_until_update():
    model = small_model(units=(3,))
    before = [p.value.copy() for p in model.parameters()]
    x, y = np.array([0.5, -1.0]), 1.0
    graph = build_graph(model, x, y)
    stepper = Stepper(graph)
    stepper.run_to_end()
    gradient_check(graph)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.value, b)
    loss_before = model.cost(x.reshape(1, 2), np.array([y])).item()
    grads = {name: stepper.grads[leaf.id] for name, leaf in graph.parameters.items()}
    apply_update(model, graph, grads, learning_rate=0.1)
    loss_after = model.cost(x.reshape(1, 2), np.array([y])).item()
    assert loss_after < loss_before
    _, expected = engine_gradients(small_model(units=(3,)), x, y, 0.0, 0.0)
    np.testing.assert_allclose(model.parameters()[0].value, before[0] - 0.1 * expected[0])


def test_chain_rule_paths_sum_to_the_gradient():
    graph = build_graph(small_model(units=(3, 3)), np.array([0.2, 0.4]), 1.0, l2=0.1)
    stepper = Stepper(graph)
    stepper.run_to_end()
    for name in ("W₁:₁,₁", "b₁,₂", "w₂"):
        result = stepper.paths(name)
        assert result["complete"]
        assert result["sum"] == pytest.approx(
            float(stepper.grads[graph.parameters[name].id]), abs=1e-12
        )
    # a first-layer weight reaches J through each of the 3 second-layer units, plus Ω
    assert stepper.paths("W₁:₁,₁")["count"] == 3 + 1
    with pytest.raises(ValueError, match="unknown parameter"):
        stepper.paths("W₉:₁,₁")


def test_figure_6_7_two_paths():
    graph = figure_6_7_graph(0.8)
    stepper = Stepper(graph)
    stepper.run_to_end()
    u1 = 0.8
    expected = np.exp(u1 + u1**2) * (1 + 2 * u1)
    assert float(stepper.grads[graph.parameters["u₁"].id]) == pytest.approx(expected)
    result = stepper.paths("u₁")
    assert result["count"] == 2 and result["sum"] == pytest.approx(expected)


def test_paths_grow_exponentially_while_arcs_grow_linearly():
    rows = path_growth(width=3, depths=(1, 2, 3, 4))
    assert [r["paths"] for r in rows] == [1, 3, 9, 27]
    arcs = [r["arcs"] for r in rows]
    steps = np.diff(arcs)
    assert np.all(steps == steps[0])  # each layer adds the same number of arcs


def test_gradient_check_agrees_and_flags_a_wrong_gradient():
    graph = build_graph(small_model("sigmoid", units=(3,)), np.array([0.5, -0.2]), 0.0, l2=0.01)
    rows = gradient_check(graph)
    assert rows and not any(r["flagged"] for r in rows)
    assert max(r["relative_error"] for r in rows) < 1e-6
    with pytest.raises(ValueError, match="unknown parameter"):
        gradient_check(graph, ["nope"])


def test_large_or_unsupported_networks_fall_back_to_the_layer_view():
    big = small_model(units=(16, 16, 16))
    graph = build_graph(big, np.array([0.1, 0.2]), 1.0, level="unit")
    assert graph.level == "layer" and "at most" in graph.message
    mixture = small_model("maxout", loss="mixture", units=(3,))
    graph = build_graph(mixture, np.array([0.1, 0.2]), 1.0, level="unit")
    assert graph.level == "layer" and "mixture" in graph.message
    with pytest.raises(ValueError, match="level"):
        build_graph(mixture, np.array([0.1, 0.2]), 1.0, level="pixels")


def test_gradient_check_flags_a_wrong_derivative():
    from engine.autodiff import Primitive, Tensor, apply
    from engine.stepper import Graph

    # x³ with the derivative 2x² (it is 3x²): back-propagation is wrong, the check says so
    cube = Primitive("cube", lambda x: x**3, (lambda g, out, x: g * 2.0 * x * x,))
    weight = Tensor(np.array([0.7, -1.3, 0.0]), requires_grad=True, name="w")
    graph = Graph(apply(cube, weight).sum().named("J"), "layer", {"w": weight})
    rows = gradient_check(graph)
    assert [r["flagged"] for r in rows] == [True, True, False]  # at 0 both say 0
    assert rows[0]["numeric"] == pytest.approx(3 * 0.7**2, rel=1e-9)
    assert rows[0]["relative_error"] == pytest.approx(1 / 5, rel=1e-6)  # |3 − 2| / (3 + 2)


def test_gradient_check_of_a_trained_net_has_no_false_flags_and_can_sample():
    model = small_model("tanh", units=(4, 4))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(float)
    for _ in range(300):  # train until the gradients are small
        cost = model.cost(x, y, l2=1e-3)
        for p, g in zip(model.parameters(), grad(cost, model.parameters())):
            p.value -= 0.5 * g.value
    graph = build_graph(model, x[:1], y[:1], l2=1e-3)
    rows = gradient_check(graph)
    assert min(abs(r["backprop"]) for r in rows) < 1e-3
    assert not any(r["flagged"] for r in rows)
    layer = build_graph(model, x, y, l2=1e-3)
    sampled = gradient_check(layer, ["W2"], limit=5)
    assert len(sampled) == 5  # of 16 entries, evenly spread: the first and the last among them
    assert sampled[0]["name"] == "W2[0,0]" and sampled[-1]["name"] == "W2[3,3]"
    with pytest.raises(ValueError, match="points"):
        gradient_check(layer, points=3)


def test_every_node_has_a_readable_name():
    model = small_model("tanh", "squared", units=(2,))
    for level in ("unit", "layer"):
        graph = build_graph(model, np.array([0.5, -0.5]), 0.3, l2=0.1, l1=0.01, level=level)
        stepper = Stepper(graph)
        names = [row["name"] for row in stepper.node_table()]
        assert not any("#" in name for name in names), names
        assert "y" in names and "J" in names and "L" in names and "Ω" in names
    layer = build_graph(model, np.ones((3, 2)), np.zeros(3), l2=0.1, l1=0.01, level="layer")
    names = {row["name"] for row in Stepper(layer).node_table()}
    assert {"W1²", "ΣW1²", "λ₂/2", "|Wout|", "λ₁·Σ|Wout|"} <= names


def test_current_and_next_describe_the_cursor():
    graph = build_graph(small_model(units=(2,)), np.array([0.5, -1.0]), 1.0)
    stepper = Stepper(graph)
    assert stepper.current() is None and stepper.next_node() == stepper.operations[0].id
    first = stepper.step()
    second = stepper.step()
    assert stepper.current()["formula"] == second["formula"]
    stepper.back()
    assert stepper.current() == first
    stepper.run_to_end()
    assert stepper.next_node() is None
    last = stepper.backward_nodes[-1].id
    assert stepper.current()["node"] == last and stepper.current()["terms"]


def test_softmax_unit_terms_show_no_scalar_local_derivative_for_vector_children():
    model = small_model("tanh", "softmax", units=(2,), classes=3)
    graph = build_graph(model, np.array([0.3, 0.9]), 1)
    stepper = Stepper(graph)
    events = stepper.run_to_end()
    z1 = next(e for e in events if e["phase"] == "backward" and e["name"] == "z₁")
    (term,) = z1["terms"]
    assert term["child_name"] == "z" and term["local"] is None
    np.testing.assert_allclose(term["contribution"], z1["grad"])


def test_paths_of_a_softmax_output_pass_through_its_vector_of_logits():
    model = small_model("tanh", "softmax", units=(2,), classes=3)
    graph = build_graph(model, np.array([0.3, 0.9]), 2, l2=0.05)
    stepper = Stepper(graph)
    stepper.run_to_end()
    for name in ("W₁:₁,₂", "W₂,₃", "b₁"):
        result = stepper.paths(name)
        want = float(stepper.grads[graph.parameters[name].id])
        assert result["complete"] and result["sum"] == pytest.approx(want, abs=1e-12)
    # W₁:₁,₂ → a₁,₂ → h₁,₂ → each of the 3 logits → z → zᵀ → L → J, and → Ω → J
    through = stepper.paths("W₁:₁,₂")
    assert through["count"] == 3 + 1
    assert sum(p["nodes"][-4:] == ["z", "zᵀ", "L", "J"] for p in through["paths"]) == 3
