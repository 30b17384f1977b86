"""The step-through commands (graph_open, graph_step, graph_paths, graph_check,
graph_apply) through the real ASGI app: every number against engine.grad on an
independent copy of the session's network (and torch where installed)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from app.presets import PRESETS
from app.protocol import protocol_for
from app.settings import Settings
from engine import grad
from engine.spec import Config
from engine.training import Trainer

PROTOCOL = protocol_for(Settings())  # the test app's limits are the defaults
REPLIES = {"graph", "graph_event", "graph_paths", "graph_check", "graph_applied", "error",
           "state", "export"}


def preset(name: str) -> dict:
    """A copy of a preset's config (tests change it; PRESETS is shared)."""
    return copy.deepcopy(next(p for p in PRESETS if p["name"] == name)["config"])


def ask(session, type: str, **fields) -> dict:
    """Send a command; return its reply, checked against the protocol's JSON models."""
    message_id = next(session.ids)
    session.send({"type": type, "id": message_id, **fields})
    while True:
        kind, message = session.receive()
        if kind == "frame":
            continue
        if message.get("id") == message_id and message["type"] in REPLIES:
            break
        session.events.append(message)
    PROTOCOL.server.validate_python(message)  # every reply is a documented message
    return message


def start(session, name: str = "fig_6_2", **training) -> dict:
    config = preset(name)
    config["training"].update(training)
    state = session.command("configure", config=config)
    assert state["type"] == "state", state
    return state


def independent_model(session):
    """The session's network rebuilt from its export: its own Trainer, data and weights."""
    exported = session.command("export")
    trainer = Trainer(Config.from_dict(exported["config"]))
    trainer.model.load_state_dict(exported["weights"])
    return trainer, exported


def engine_gradients(trainer, indices):
    model, dataset = trainer.model, trainer.dataset
    training = trainer.config.training
    cost = model.cost(dataset.x_train[indices], dataset.y_train[indices],
                      l2=training.l2, l1=training.l1)
    names = [p.name for p in model.parameters()]
    return cost.item(), dict(zip(names, (g.value for g in grad(cost, model.parameters()))))


def node_states(graph: dict) -> dict[int, dict]:
    return {node["id"]: dict(node) for node in graph["nodes"]}


def apply_changes(nodes: dict[int, dict], event: dict) -> None:
    for change in event["changed"]:
        nodes[change["id"]]["value"] = change["value"]
        nodes[change["id"]]["grad"] = change["grad"]


def shown_gradients(nodes: dict[int, dict], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """The gradients the graph's parameter nodes show, on the model's parameter shapes."""
    result = {name: np.full(shape, np.nan) for name, shape in shapes.items()}
    for node in nodes.values():
        source = node["source"]
        if source is None:
            continue
        if source["index"] is None:
            result[source["parameter"]] = np.asarray(node["grad"], dtype=float)
        else:
            result[source["parameter"]][tuple(source["index"])] = node["grad"]
    return result


# ----- stepping ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, l2, l1", [("fig_6_2", 0.01, 0.0), ("circle", 0.0, 0.003),
                                         ("spiral_3", 0.002, 0.0), ("sine", 0.0, 0.0)])
def test_stepping_node_by_node_reproduces_engine_grad(connect, name, l2, l1):
    with connect() as session:
        start(session, name, l2=l2, l1=l1)
        trainer, before = independent_model(session)
        graph = ask(session, "graph_open", example=5)
        assert graph["type"] == "graph" and graph["level"] == "unit" and graph["example"] == 5
        assert graph["phase"] == "forward" and graph["position"] == 0
        assert graph["steps"] == len(graph["forward"]) + len(graph["backward"])
        nodes = node_states(graph)
        # before any step, only the leaves have values and nothing has a gradient
        assert all((n["value"] is None) == (n["kind"] == "operation") for n in nodes.values())
        assert all(n["grad"] is None for n in nodes.values())
        np.testing.assert_allclose(graph["x"], trainer.dataset.x_train[[5]])

        forward, backward = [], []
        while True:
            expected_next = graph["forward" if len(forward) < len(graph["forward"])
                                  else "backward"][
                len(forward) if len(forward) < len(graph["forward"]) else len(backward)]
            event = ask(session, "graph_step", action="next")
            assert event["type"] == "graph_event", event
            step = event["event"]
            assert step["node"] == expected_next
            apply_changes(nodes, event)
            (forward if step["phase"] == "forward" else backward).append(step["node"])
            assert " = " in step["formula"]
            if step["phase"] == "backward" and step["terms"]:
                # Algorithm 6.4: the gradient is the sum of the children's terms
                total = sum(np.asarray(t["contribution"]) for t in step["terms"])
                np.testing.assert_allclose(total, step["grad"], rtol=1e-12, atol=1e-15)
            if event["phase"] == "done":
                break
        assert forward == graph["forward"] and backward == graph["backward"]
        # exactly the reverse order: operations that need a gradient, last first
        ops_back = [i for i in backward if nodes[i]["kind"] == "operation"]
        assert ops_back == [i for i in forward if nodes[i]["requires_grad"]][::-1]

        cost, expected = engine_gradients(trainer, [5])
        assert nodes[graph["cost"]]["value"] == pytest.approx(cost, rel=1e-12)
        shapes = {p.name: p.value.shape for p in trainer.model.parameters()}
        shown = shown_gradients(nodes, shapes)
        for parameter, value in expected.items():
            np.testing.assert_allclose(shown[parameter], value, rtol=1e-10, atol=1e-13,
                                       err_msg=parameter)
        # stepping never touched the session's weights
        assert session.command("export")["weights"] == before["weights"]


def test_the_fig_6_2_gradients_match_torch(connect):
    torch = pytest.importorskip("torch")
    with connect() as session:
        start(session, "fig_6_2", l2=0.01)
        trainer, exported = independent_model(session)
        graph = ask(session, "graph_open", example=7)
        nodes = node_states(graph)
        apply_changes(nodes, ask(session, "graph_step", action="run"))
        shown = shown_gradients(nodes, {p.name: p.value.shape
                                        for p in trainer.model.parameters()})
        weights = {k: torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True)
                   for k, v in exported["weights"].items()}
        x = torch.tensor(trainer.dataset.x_train[[7]], dtype=torch.float64)
        y = torch.tensor(trainer.dataset.y_train[[7]], dtype=torch.float64).reshape(-1, 1)
        h = torch.tanh(x @ weights["W1"] + weights["b1"])
        z = h @ weights["Wout"] + weights["bout"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
        cost = loss + 0.005 * ((weights["W1"] ** 2).sum() + (weights["Wout"] ** 2).sum())
        cost.backward()
        assert nodes[graph["cost"]]["value"] == pytest.approx(cost.item(), rel=1e-12)
        for name, tensor in weights.items():
            np.testing.assert_allclose(shown[name], tensor.grad.numpy(), rtol=1e-10,
                                       atol=1e-14, err_msg=name)


def test_layer_view_of_a_minibatch_follows_algorithm_6_2(connect):
    with connect() as session:
        start(session, "circle", l2=0.01)
        trainer, _ = independent_model(session)
        batch = [3, 1, 4, 1, 5, 9, 2, 6]
        graph = ask(session, "graph_open", batch=batch, level="layer")
        assert graph["level"] == "layer" and graph["batch"] == batch
        names = {n["name"]: n for n in graph["nodes"]}
        assert names["x"]["shape"] == [8, 2] and names["W1"]["shape"] == [2, 4]
        assert names["a₁"]["op"] == "affine" and names["h₂"]["shape"] == [8, 2]
        assert names["y"]["kind"] == "constant" and names["J"]["id"] == graph["cost"]
        nodes = node_states(graph)
        lines = {}
        while True:
            event = ask(session, "graph_step", action="next")
            apply_changes(nodes, event)
            lines[event["event"]["name"]] = event["event"]["algorithm"]
            if event["phase"] == "done":
                break
        assert "f′(a₁)" in lines["a₁"] and "g W2ᵀ" in lines["h₁"] and "g Woutᵀ" in lines["h₂"]
        assert lines["W2"].startswith("∇_W2 J = h⁽ᵏ⁻¹⁾ᵀ g = h₁ᵀ g") and "λ₂ W2" in lines["W2"]
        assert "σ(z) − y" in lines["z"] and "Σ" in lines["b1"]
        cost, expected = engine_gradients(trainer, batch)
        assert nodes[graph["cost"]]["value"] == pytest.approx(cost, rel=1e-12)
        shown = shown_gradients(nodes, {k: v.shape for k, v in expected.items()})
        for parameter, value in expected.items():
            np.testing.assert_allclose(shown[parameter], value, rtol=1e-10, atol=1e-14)


def test_a_network_too_large_for_units_falls_back_to_the_layer_view(connect):
    with connect() as session:
        start(session, "deep_spiral")  # 2 + 6 × 8 + 1 = 51 scalar units
        graph = ask(session, "graph_open", example=0, level="unit")
        assert graph["level"] == "layer"
        assert "51 scalar units" in graph["message"] and "at most 40" in graph["message"]
        graph = ask(session, "graph_open", batch=[0, 1], level="unit")
        assert graph["level"] == "layer" and "minibatch" in graph["message"]


def test_back_undoes_one_step_and_reset_starts_over(connect):
    with connect() as session:
        start(session)
        graph = ask(session, "graph_open")
        first = ask(session, "graph_step", action="forward")["event"]
        second = ask(session, "graph_step", action="forward")["event"]
        back = ask(session, "graph_step", action="back")
        assert back["undone"] == second["node"] and back["position"] == 1
        assert back["event"] == first  # the step now last taken, described as before
        assert back["changed"] == [{"id": second["node"], "value": None, "grad": None}]
        assert back["next"] == second["node"]
        again = ask(session, "graph_step", action="run_forward")
        assert again["phase"] == "backward" and again["next"] == graph["cost"]
        error = ask(session, "graph_step", action="forward")
        assert error["type"] == "error" and error["field"] == "action"
        assert "forward pass is complete" in error["message"]
        ask(session, "graph_step", action="backward")
        reset = ask(session, "graph_step", action="reset")
        assert reset["position"] == 0 and reset["event"] is None and reset["phase"] == "forward"
        cleared = {c["id"]: c for c in reset["changed"]}
        assert cleared[graph["cost"]] == {"id": graph["cost"], "value": None, "grad": None}
        start_again = ask(session, "graph_step", action="back")
        assert start_again["undone"] is None and start_again["changed"] == []


def test_opening_a_graph_pauses_training(connect, client):
    with connect() as session:
        start(session)
        session.command("play")
        graph = ask(session, "graph_open")
        assert graph["paused"] is True
        server_session = client.app.state.registry.sessions[session.hello["session"]]
        assert server_session.playing is False
        steps = session.command("export")["step"]
        ask(session, "graph_step", action="run")
        assert session.command("export")["step"] == steps


# ----- chain-rule paths ----------------------------------------------------------------------
def test_paths_sum_to_the_back_propagated_gradient(connect):
    with connect() as session:
        start(session, "circle", l2=0.02)  # 2 inputs, [4, 2] tanh, penalty Ω
        trainer, _ = independent_model(session)
        graph = ask(session, "graph_open", example=11)
        _, expected = engine_gradients(trainer, [11])
        by_name = {n["name"]: n for n in graph["nodes"]}
        for name in ("W₁:₁,₁", "b₂,₂", "w₁", "b₁,₃"):
            result = ask(session, "graph_paths", parameter=name)
            assert result["type"] == "graph_paths" and result["complete"]
            assert result["sum"] == pytest.approx(result["gradient"], rel=1e-12, abs=1e-15)
            source = by_name[name]["source"]
            want = expected[source["parameter"]][tuple(source["index"])]
            assert result["gradient"] == pytest.approx(want, rel=1e-10, abs=1e-14)
            assert len(result["paths"]) == result["count"]
            for path in result["paths"]:
                assert path["nodes"][0] == name and path["nodes"][-1] == "J"
                assert path["ids"][-1] == graph["cost"]
        # a first-layer weight reaches J through each of the 2 second-layer units, and Ω
        assert ask(session, "graph_paths", parameter="W₁:₁,₁")["count"] == 2 + 1
        growth = result["growth"]
        width = result["growth_width"]
        assert width == 4  # the widest hidden layer (capped at 4)
        assert [row["paths"] for row in growth] == [width ** (d - 1) for d in range(1, 7)]
        steps = np.diff([row["arcs"] for row in growth])
        assert np.all(steps == steps[0])  # back-propagation's work grows linearly


def test_paths_of_a_softmax_net_and_its_gradient_check(connect):
    with connect() as session:
        start(session, "spiral_3", l2=0.001)  # [16, 16] ReLU, 3 classes: 37 scalar units
        trainer, _ = independent_model(session)
        graph = ask(session, "graph_open", example=8)
        assert graph["level"] == "unit"
        _, expected = engine_gradients(trainer, [8])
        by_name = {n["name"]: n for n in graph["nodes"]}
        for name in ("W₁:₂,₅", "W₁₆,₃", "b₂,₇"):
            result = ask(session, "graph_paths", parameter=name)
            source = by_name[name]["source"]
            want = expected[source["parameter"]][tuple(source["index"])]
            assert result["complete"]
            assert result["sum"] == pytest.approx(want, rel=1e-9, abs=1e-14)
            assert result["gradient"] == pytest.approx(want, rel=1e-10, abs=1e-14)
        check = ask(session, "graph_check")
        assert check["checked"] == check["total"] == len(graph["parameters"])
        assert check["max_relative_error"] < 1e-3  # ReLU kinks may flag an entry or two
        assert check["flagged"] <= 2


def test_figure_6_7_preset_has_two_paths(connect):
    with connect() as session:
        graph = ask(session, "graph_open", preset="fig_6_7", u1=0.5)
        assert graph["preset"] == "fig_6_7" and graph["parameters"] == ["u₁"]
        assert [n["name"] for n in graph["nodes"]] == ["u₁", "u₂", "u₁+u₂", "u₃"]
        run = ask(session, "graph_step", action="run")
        want = math.exp(0.5 + 0.25) * (1 + 2 * 0.5)
        assert run["event"]["grad"] == pytest.approx(want, rel=1e-12)
        paths = ask(session, "graph_paths", parameter="u₁")
        assert paths["count"] == 2 and paths["sum"] == pytest.approx(want, rel=1e-12)
        check = ask(session, "graph_check")
        assert check["rows"][0]["relative_error"] < 1e-9 and check["flagged"] == 0
        error = ask(session, "graph_apply")
        assert error["type"] == "error" and error["field"] == "preset"


# ----- gradient check ------------------------------------------------------------------------
def test_gradient_check_agrees_with_back_propagation(connect):
    with connect() as session:
        start(session, "fig_6_2", l2=0.01)
        session.command("epoch", count=5)  # trained: small gradients, still no false flags
        graph = ask(session, "graph_open", example=2)
        check = ask(session, "graph_check")
        assert check["checked"] == check["total"] == len(graph["parameters"]) == 9
        assert check["flagged"] == 0 and check["max_relative_error"] < 1e-6
        assert check["threshold"] == 1e-6
        for row in check["rows"]:
            assert row["numeric"] == pytest.approx(row["backprop"], rel=1e-6, abs=1e-11)
        one = ask(session, "graph_check", parameter="W₁:₂,₁")
        assert [row["name"] for row in one["rows"]] == ["W₁:₂,₁"]


def test_gradient_check_of_a_large_layer_graph_samples_every_parameter(connect):
    with connect() as session:
        config = preset("deep_spiral")
        config["model"]["layers"] = [{"units": 16, "activation": "tanh"}] * 6
        session.command("configure", config=config)
        ask(session, "graph_open", batch=list(range(16)))
        check = ask(session, "graph_check")
        assert check["total"] == sum(
            np.prod(np.shape(v)) for v in session.command("export")["weights"].values()
        )
        assert check["checked"] < check["total"] and "of" in check["note"]
        assert {row["name"].split("[")[0] for row in check["rows"]} == {
            f"{kind}{k}" for kind in "Wb" for k in (*range(1, 7), "out")
        }
        assert check["flagged"] == 0
        whole = ask(session, "graph_check", parameter="W3")
        assert whole["checked"] == whole["total"] == 256


# ----- the update ----------------------------------------------------------------------------
def test_apply_writes_the_update_and_lowers_the_cost(connect):
    with connect() as session:
        start(session, "fig_6_2", l2=0.05)
        trainer, before = independent_model(session)
        ask(session, "graph_open", example=4)
        early = ask(session, "graph_apply")
        assert early["type"] == "error" and "backward pass" in early["message"]
        ask(session, "graph_step", action="run")
        assert session.command("export")["weights"] == before["weights"]  # not until apply
        applied = ask(session, "graph_apply", learning_rate=0.1)
        assert applied["type"] == "graph_applied" and applied["learning_rate"] == 0.1
        assert applied["cost_after"] < applied["cost_before"]
        cost, expected = engine_gradients(trainer, [4])
        assert applied["cost_before"] == pytest.approx(cost, rel=1e-12)
        after = session.command("export")["weights"]
        for name, value in expected.items():
            # θ ← θ − ε ∇θ J, with the weight decay λW inside ∇θ J
            np.testing.assert_allclose(after[name], np.asarray(before["weights"][name])
                                       - 0.1 * value, rtol=1e-12, atol=1e-15)
        trainer.model.load_state_dict(after)
        cost_after, _ = engine_gradients(trainer, [4])
        assert applied["cost_after"] == pytest.approx(cost_after, rel=1e-12)
        assert applied["loss_after"] < applied["loss_before"]
        fresh = applied["graph"]
        assert fresh["phase"] == "forward" and fresh["example"] == 4
        weight = next(n for n in fresh["nodes"] if n["name"] == "W₁:₁,₁")
        assert weight["value"] == after["W1"][0][0]


def test_apply_uses_the_sessions_learning_rate_and_refuses_stale_graphs(connect):
    with connect() as session:
        start(session, "circle", learning_rate=0.03)
        ask(session, "graph_open", batch=[0, 1, 2], level="layer")
        ask(session, "graph_step", action="run")
        applied = ask(session, "graph_apply")
        assert applied["learning_rate"] == 0.03 and applied["cost_after"] < applied["cost_before"]
        ask(session, "graph_step", action="run")
        session.command("step")  # training changes the weights behind the graph
        stale = ask(session, "graph_apply")
        assert stale["type"] == "error" and stale["field"] == "weights"
        weights = session.command("export")["weights"]
        ask(session, "graph_open", batch=[0, 1, 2], level="layer")
        ask(session, "graph_step", action="run")
        huge = ask(session, "graph_apply", learning_rate=10.0)
        assert huge["type"] in ("graph_applied", "error")
        if huge["type"] == "error":
            assert session.command("export")["weights"] == weights


# ----- bad input -----------------------------------------------------------------------------
def test_bad_input_gets_errors_naming_the_field_and_the_session_survives(connect):
    with connect() as session:
        start(session)  # fig_6_2: 100 training examples
        error = ask(session, "graph_step", action="next")
        assert error["type"] == "error" and "graph_open first" in error["message"]
        error = ask(session, "graph_open", example=100)
        assert error["code"] == "rejected" and error["field"] == "example"
        assert error["limit"] == 99 and "0 to 99" in error["message"]
        error = ask(session, "graph_open", batch=[1, 2, 500])
        assert error["field"] == "batch.2" and error["limit"] == 99
        error = ask(session, "graph_open", example=1, batch=[2])
        assert error["field"] == "batch"
        error = ask(session, "graph_open", example=-1)
        assert error["code"] == "invalid" and error["field"] == "example"
        error = ask(session, "graph_open", level="pixels")
        assert error["code"] == "invalid" and error["field"] == "level"
        error = ask(session, "graph_open", batch=list(range(65)))
        assert error["code"] == "invalid" and error["field"] == "batch" and error["limit"] == 64
        ask(session, "graph_open", example=3)
        error = ask(session, "graph_step", action="sideways")
        assert error["code"] == "invalid" and error["field"] == "action"
        error = ask(session, "graph_paths", parameter="W₉:₁,₁")
        assert error["code"] == "rejected" and error["field"] == "parameter"
        assert "W₁:₁,₁" in error["message"]
        error = ask(session, "graph_check", parameter="nope")
        assert error["field"] == "parameter"
        error = ask(session, "graph_apply", learning_rate=-1)
        assert error["code"] == "invalid" and error["field"] == "learning_rate"
        error = ask(session, "graph_apply", learning_rate=float("nan"))
        assert error["field"] is not None
        # the session and its graph work as before
        event = ask(session, "graph_step", action="next")
        assert event["type"] == "graph_event" and event["position"] == 1
        assert session.command("step")["step"] == 1


def test_paths_need_the_unit_view(connect):
    with connect() as session:
        start(session)
        ask(session, "graph_open", example=0, level="layer")
        error = ask(session, "graph_paths", parameter="W1")
        assert error["code"] == "rejected" and error["field"] == "level"


def test_schema_lists_the_step_through_messages(client):
    schema = client.get("/api/schema").json()
    client_kinds = set(schema["client_messages"]["discriminator"]["mapping"])
    server_kinds = set(schema["server_messages"]["discriminator"]["mapping"])
    assert {"graph_open", "graph_step", "graph_paths", "graph_check",
            "graph_apply"} <= client_kinds
    assert {"graph", "graph_event", "graph_paths", "graph_check",
            "graph_applied"} <= server_kinds


def test_the_step_page_is_served(client):
    response = client.get("/step")
    assert response.status_code == 200
    assert "step.js" in response.text and "graph" in response.text
