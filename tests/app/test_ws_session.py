"""The session WebSocket through the real ASGI app: every command, presets, architecture
changes, pacing and isolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.encoding import decode_array
from app.presets import PRESETS


def test_hello_describes_the_session(connect):
    with connect() as session:
        hello = session.hello
        assert hello["type"] == "hello"
        assert hello["schema_version"] == 1
        assert len(hello["session"]) >= 8
        assert hello["limits"]["max_units"] == 32 and hello["limits"]["max_layers"] == 8
        assert hello["limits"]["max_points"] == 5000 and hello["limits"]["max_grid"] == 200
        assert hello["playing"] is False
        assert [layer["units"] for layer in hello["config"]["model"]["layers"]] == [4, 2]
        assert hello["view"]["grid"] == 100


def test_step_and_epoch_advance_the_counters(connect):
    with connect() as session:
        state = session.command("step")
        assert state["type"] == "state" and state["command"] == "step" and state["step"] == 1
        state = session.command("step", count=4)
        assert state["step"] == 5
        state = session.command("epoch")
        # 250 training points in minibatches of 10: an epoch is 25 steps
        assert state["epoch"] == 1.0 and state["step"] == 25
        state = session.command("epoch", count=2)
        assert state["epoch"] == 3.0 and state["step"] == 75
        frame = session.frame()
        assert frame["step"] == 75 and frame["epoch"] == 3.0


def test_play_streams_frames_while_training_and_pause_stops(connect):
    with connect() as session:
        session.command("patch", op="set", path="speed", value=2000)
        session.frame()
        state = session.command("play")
        assert state["playing"] is True
        steps = [session.frame()["step"] for _ in range(4)]
        assert steps == sorted(steps) and steps[-1] > steps[0]
        state = session.command("pause")
        assert state["playing"] is False
        paused_at = session.frame()["step"]
        assert session.command("export")["step"] == paused_at


def test_play_respects_the_speed(connect):
    import time

    with connect() as session:
        session.command("play", speed=100)
        start = session.frame()["step"]
        began = time.monotonic()
        time.sleep(0.5)
        state = session.command("pause")
        elapsed = time.monotonic() - began
        done = state["step"] - start
        assert 0.4 * 100 * elapsed <= done <= 100 * elapsed + 20


def test_ready_is_answered_only_when_something_changed(connect):
    with connect() as session:
        first = session.frame()
        session.send({"type": "ready"})
        with pytest.raises(TimeoutError):
            session.receive(timeout=0.4)
        session.send({"type": "step", "id": 99})
        kind, message = session.receive()
        assert kind == "json" and message["step"] == 1
        # the outstanding ready is answered with the newest state
        frame = session.next_frame()
        assert frame["step"] == 1 and frame["seq"] == first["seq"] + 1


def test_frames_carry_history_since_the_previous_frame(connect):
    with connect() as session:
        session.frame()
        session.command("epoch", count=3)
        frame = session.frame()
        history = {k: decode_array(v) for k, v in frame["history"].items() if v is not None}
        assert list(history["step"]) == [25, 50, 75]
        assert list(history["epoch"]) == [1, 2, 3]
        assert history["train_loss"].shape == (3,) and history["train_accuracy"].shape == (3,)
        assert math.isclose(history["train_loss"][-1], frame["train_loss"], rel_tol=1e-6)
        session.command("step")
        history = session.frame()["history"]
        assert list(decode_array(history["step"])) == [76]


@pytest.mark.parametrize("preset", [p["name"] for p in PRESETS])
def test_every_preset_trains(connect, preset):
    config = next(p for p in PRESETS if p["name"] == preset)["config"]
    with connect() as session:
        state = session.command("configure", config=config)
        assert state["type"] == "state", state
        before = session.frame()
        assert before["train_loss"] is not None
        session.command("step", count=600)
        after = session.frame()
        assert after["step"] == 600
        assert after["train_loss"] < 0.8 * before["train_loss"], (before["train_loss"],
                                                                   after["train_loss"])
        if after["train_accuracy"] is not None:
            assert after["train_accuracy"] > before["train_accuracy"]


def test_reset_draws_new_weights_and_restarts_the_counters(connect):
    with connect() as session:
        session.command("step", count=30)
        trained = session.weights()
        state = session.command("reset", seed=7)
        assert state["step"] == 0 and state["config"]["model"]["seed"] == 7
        fresh = session.weights()
        assert fresh["W1"] != trained["W1"]
        session.command("reset", seed=7)
        assert session.weights() == fresh  # the same seed, the same weights


def test_set_weight_edits_one_entry(connect):
    with connect() as session:
        before = session.weights()
        state = session.command("set_weight", name="W2", index=[3, 1], value=0.625)
        assert state["type"] == "state"
        after = session.weights()
        assert after["W2"][3][1] == 0.625
        after["W2"][3][1] = before["W2"][3][1]
        assert after == before
        session.command("set_weight", name="bout", index=[0], value=-2.5)
        frame = session.frame()
        parameters = {p["name"]: p for p in frame["gradients"]["parameters"]}
        assert decode_array(parameters["bout"]["value"])[0] == -2.5
        assert decode_array(parameters["W2"]["value"])[3, 1] == 0.625


def test_export_then_configure_restores_the_run(connect):
    with connect() as session:
        session.command("patch", op="set", path="training.learning_rate", value=0.1)
        session.command("step", count=40)
        exported = session.command("export")
        assert exported["type"] == "export" and exported["step"] == 40
        frame = session.frame()
    with connect() as other:
        state = other.command("configure", config=exported["config"], view=exported["view"],
                              speed=exported["speed"], weights=exported["weights"])
        assert state["config"] == exported["config"]
        assert other.weights() == exported["weights"]
        restored = other.frame()
        assert restored["train_loss"] == pytest.approx(frame["train_loss"], rel=1e-12)


def test_patch_set_changes_one_setting_and_keeps_the_weights(connect):
    with connect() as session:
        session.command("step", count=20)
        before = session.weights()
        for path, value in [
            ("training.learning_rate", 0.1), ("training.batch_size", 25),
            ("training.optimizer", "adam"), ("training.l2", 0.001),
            ("training.clip_norm", 5.0), ("speed", 50), ("view.grid", 60),
            ("data.noise", 0.2),
        ]:
            state = session.command("patch", op="set", path=path, value=value)
            assert state["type"] == "state", state
            section, *rest = path.split(".")
            held = state["config"].get(section, state) if section != "view" else state["view"]
            if section == "speed":
                assert state["speed"] == value
            else:
                assert held[rest[-1]] == value
        assert session.weights() == before
        frame = session.frame()
        assert frame["surface"]["values"]["shape"] == [60, 60]
        assert session.command("step")["step"] == 21


def test_activation_change_keeps_the_weights_of_the_layer(connect):
    with connect() as session:
        session.command("step", count=10)
        before = session.weights()
        state = session.command("patch", op="set", path="model.layers.1.activation",
                                value="relu")
        assert state["network"]["layers"][1]["activation"] == "relu"
        assert session.weights() == before


def test_dataset_change_adapts_the_output_and_says_so(connect):
    with connect() as session:
        state = session.command("patch", op="set", path="data.name", value="sine_1d")
        assert state["type"] == "state", state
        assert state["config"]["model"]["output"]["loss"] == "squared"
        assert state["config"]["model"]["features"] == ["x1"]
        assert any("squared" in note for note in state["notes"])
        frame = session.frame()
        assert frame["surface"]["kind"] == "curve"
        state = session.command("patch", op="set", path="data.name", value="spiral_multiclass")
        assert state["config"]["model"]["output"]["loss"] == "softmax"
        assert state["config"]["model"]["features"] == ["x1", "x2"]
        frame = session.frame()
        assert frame["surface"]["kind"] == "probabilities"
        assert frame["surface"]["values"]["shape"] == [3, 100, 100]


def _surviving(before: dict, after: dict, name: str, rows, columns) -> None:
    old = np.asarray(before[name])
    new = np.asarray(after[name])
    if old.ndim == 1:
        assert np.array_equal(new[columns], old[rows]), name
    else:
        assert np.array_equal(new[np.ix_(*columns)], old[np.ix_(*rows)]), name


def test_architecture_changes_mid_training_keep_surviving_weights_bit_for_bit(connect):
    with connect() as session:
        session.command("play", speed=5000)
        for _ in range(3):
            session.frame()
        session.command("pause")
        before = session.weights()

        # a unit added to hidden layer 0 (4 → 5 units)
        state = session.command("patch", op="add_unit", layer=0)
        assert [layer["units"] for layer in state["network"]["layers"]] == [5, 2]
        after = session.weights()
        assert np.array_equal(np.asarray(after["W1"])[:, :4], np.asarray(before["W1"]))
        assert np.array_equal(np.asarray(after["b1"])[:4], np.asarray(before["b1"]))
        assert np.array_equal(np.asarray(after["W2"])[:4], np.asarray(before["W2"]))
        for name in ("b2", "Wout", "bout"):
            assert after[name] == before[name]

        # unit 1 of hidden layer 0 removed (5 → 4): units 0, 2, 3, 4 continue
        before = after
        session.command("patch", op="remove_unit", layer=0, unit=1)
        after = session.weights()
        keep = [0, 2, 3, 4]
        assert np.array_equal(np.asarray(after["W1"]), np.asarray(before["W1"])[:, keep])
        assert np.array_equal(np.asarray(after["b1"]), np.asarray(before["b1"])[keep])
        assert np.array_equal(np.asarray(after["W2"]), np.asarray(before["W2"])[keep])

        # a layer of 3 units inserted between the two hidden layers
        before = after
        state = session.command("patch", op="add_layer", index=1, units=3)
        assert [layer["units"] for layer in state["network"]["layers"]] == [4, 3, 2]
        after = session.weights()
        assert after["W1"] == before["W1"] and after["b1"] == before["b1"]
        # the old second layer is now the third: its biases and output links survive
        assert after["b3"] == before["b2"]
        assert after["Wout"] == before["Wout"] and after["bout"] == before["bout"]
        assert np.asarray(after["W2"]).shape == (4, 3)
        assert np.asarray(after["W3"]).shape == (3, 2)

        # training goes on from there, and the new layer is removed again
        session.command("step", count=5)
        before = session.weights()
        state = session.command("patch", op="remove_layer", index=1)
        assert [layer["units"] for layer in state["network"]["layers"]] == [4, 2]
        after = session.weights()
        assert after["W1"] == before["W1"] and after["b2"] == before["b3"]
        assert after["Wout"] == before["Wout"]
        assert session.command("step")["type"] == "state"
        frame = session.frame()
        assert [w["units"] for w in frame["warps"]] == [4, 2]


def test_layer_added_at_the_end_and_its_default_activation(connect):
    with connect() as session:
        state = session.command("patch", op="add_layer")
        layers = state["network"]["layers"]
        assert [layer["units"] for layer in layers] == [4, 2, 4]
        assert layers[-1]["activation"] == "tanh"
        state = session.command("patch", op="add_layer", index=0, units=2, activation="relu")
        assert state["network"]["layers"][0] == {"units": 2, "activation": "relu", "width": 2}
        state = session.command("patch", op="remove_layer")
        assert [layer["units"] for layer in state["network"]["layers"]] == [2, 4, 2]


def test_points_can_be_added_and_removed(connect):
    with connect() as session:
        frame = session.frame()
        count = frame["data"]["x"]["shape"][1]
        train_before = frame["data"]["train"]
        state = session.command("add_point", x=[0.25, -0.5], label=1)
        assert state["config"]["data"]["name"] == "user"
        assert len(state["config"]["data"]["points"]) == count + 1
        assert [0.25, -0.5, 1.0, 1.0] in state["config"]["data"]["points"]
        frame = session.frame()
        assert frame["data"]["x"]["shape"] == [2, count + 1]
        # the new point trains; every other point keeps its side of the split
        assert frame["data"]["train"] == train_before + 1
        assert frame["warps"][0]["activation"]["points"]["shape"] == [2, count + 1]
        state = session.command("remove_point", x=[0.25, -0.5])
        assert [0.25, -0.5, 1.0, 1.0] not in state["config"]["data"]["points"]
        # a third class turns the task multi-class: the output follows
        state = session.command("add_point", x=[1.0, 1.0], label=2)
        assert state["config"]["model"]["output"]["loss"] == "softmax"
        assert state["notes"]
        assert session.command("step", count=3)["step"] == 3


def test_two_sessions_do_not_see_each_other(connect):
    with connect() as first, connect() as second:
        assert first.hello["session"] != second.hello["session"]
        first.command("patch", op="set", path="training.learning_rate", value=0.5)
        first.command("patch", op="add_unit", layer=1)
        first.command("step", count=50)
        first.command("set_weight", name="W1", index=[0, 0], value=3.0)
        second_state = second.command("pause")
        assert second_state["step"] == 0
        assert second_state["config"]["training"]["learning_rate"] == 0.03
        assert [layer["units"] for layer in second_state["network"]["layers"]] == [4, 2]
        assert second.weights()["W1"][0][0] != 3.0
        frame = second.frame()
        assert frame["session"] == second.hello["session"] and frame["step"] == 0
        assert first.frame()["session"] == first.hello["session"]


def test_sessions_are_counted_and_limited(client, connect, session_on):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with connect():
        assert client.get("/healthz").json()["sessions"] == 1
    assert client.get("/healthz").json()["sessions"] == 0

    with TestClient(create_app(Settings(max_sessions=1))) as limited:
        with session_on(limited) as session:
            with limited.websocket_connect("/ws/session") as refused:
                error = refused.receive_json()
                assert error["type"] == "error" and error["code"] == "too_many_sessions"
                assert error["limit"] == 1
            assert session.command("step")["step"] == 1


def test_a_greedy_session_does_not_starve_a_modest_one(connect):
    import time

    with connect() as greedy, connect() as modest:
        greedy.command("play", speed=100_000)
        began = time.monotonic()
        modest.command("play", speed=300)
        time.sleep(1.0)
        modest_steps = modest.command("pause")["step"]
        elapsed = time.monotonic() - began
        greedy_steps = greedy.command("pause")["step"]
        assert modest_steps >= 0.6 * 300 * elapsed, (modest_steps, elapsed)
        assert greedy_steps > 2 * modest_steps
        # the greedy session's frames still come, one per ready
        assert greedy.frame()["step"] == greedy_steps


def test_every_json_reply_matches_its_published_schema(connect, settings):
    from app.protocol import protocol_for

    server = protocol_for(settings).server
    with connect() as session:
        server.validate_python(session.hello)
        replies = [
            session.command("patch", op="add_unit", layer=0),
            session.command("patch", op="set", path="data.name", value="sine_1d"),
            session.command("step", count=3),
            session.command("patch", op="set", path="model.layers.0.units", value=99),
            session.command("export"),
            session.raw("{oops"),
        ]
        kinds = [server.validate_python(reply).type for reply in replies]
        assert kinds == ["state", "state", "state", "error", "export", "error"]
