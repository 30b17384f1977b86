"""Bad input gets an error that names the field and the limit; the session, its trained
weights and its settings stay as they were, and it keeps working."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.protocol import protocol_for
from app.settings import Settings

PROTOCOL = protocol_for(Settings())


@pytest.fixture
def trained(connect):
    """A session that has trained a little, with its weights and config before the test."""
    with connect() as session:
        session.command("step", count=30)
        session.frame()
        exported = session.command("export")
        yield session, exported
        after = session.command("export")
        assert after["weights"] == exported["weights"], "the bad input changed the weights"
        assert after["config"] == exported["config"], "the bad input changed the config"
        assert after["step"] == exported["step"]
        assert session.command("step")["step"] == exported["step"] + 1  # still works


def test_malformed_json(trained):
    session, _ = trained
    for text in ['{"type": "step"', "step please", "", "[1, 2]", "42", "null"]:
        error = session.raw(text)
        assert error["type"] == "error" and error["code"] == "bad_json", (text, error)
        assert "JSON object" in error["message"]


def test_unknown_command(trained):
    session, _ = trained
    error = session.command("fly")
    assert error["code"] == "unknown_command" and error["field"] == "type"
    assert "fly" in error["message"] and "configure" in error["limit"]
    error = session.raw('{"step": 3}')
    assert error["code"] == "unknown_command" and error["field"] == "type"
    error = session.command("patch", op="explode")
    assert error["code"] == "unknown_command" and error["field"] == "op"
    assert "add_layer" in error["limit"]


@pytest.mark.parametrize(
    "command, fields, field",
    [
        ("step", {"count": "3"}, "count"),
        ("step", {"count": 2.5}, "count"),
        ("step", {"count": True}, "count"),
        ("set_weight", {"name": "W1", "index": "0,1", "value": 1.0}, "index"),
        ("set_weight", {"name": "W1", "index": [0, 1], "value": "big"}, "value"),
        ("add_point", {"x": [0.0], "label": 1}, "x"),
        ("add_point", {"x": [0.0, 1.0], "label": "red"}, "label"),
        ("play", {"speed": "fast"}, "speed"),
        ("configure", {"config": {"model": {"layers": [{"units": "four"}]}}},
         "config.model.layers.0.units"),
        ("configure", {"config": {"training": {"optimizer": 3}}}, "config.training.optimizer"),
        ("configure", {"config": {"data": {"name": "mnist"}}}, "config.data.name"),
        ("configure", {"config": {"model": {"depth": 3}}}, "config.model.depth"),
        ("configure", {"config": []}, "config"),
        ("patch", {"op": "set", "path": "training.learning_rate", "value": "fast"},
         "training.learning_rate"),
        ("patch", {"op": "set", "path": "model.layers.0.activation", "value": "swish"},
         "model.layers.0.activation"),
        ("patch", {"op": "add_layer", "units": "many"}, "units"),
    ],
)
def test_wrong_types(trained, command, fields, field):
    session, _ = trained
    error = session.command(command, **fields)
    assert error["type"] == "error" and error["code"] == "invalid", error
    assert error["field"] == field
    assert error["message"].startswith(field)


@pytest.mark.parametrize(
    "command, fields, field, limit",
    [
        ("configure", {"config": {"model": {"layers": [{"units": 10_000}]}}},
         "config.model.layers.0.units", 32),
        ("configure", {"config": {}, "view": {"grid": 5000}}, "view.grid", 200),
        ("configure", {"config": {"model": {"layers": [{"units": 2}] * 9}}},
         "config.model.layers", 8),
        ("configure", {"config": {"data": {"size": 100_000}}}, "config.data.size", 5000),
        ("configure", {"config": {"data": {"points": [[0, 0, 1]] * 5001}}},
         "config.data.points", 5000),
        ("configure", {"config": {"training": {"learning_rate": 0}}},
         "config.training.learning_rate", 0.0),
        ("configure", {"config": {"training": {"batch_size": 0}}},
         "config.training.batch_size", 1),
        ("patch", {"op": "set", "path": "model.layers.0.units", "value": 10_000},
         "model.layers.0.units", 32),
        ("patch", {"op": "set", "path": "view.grid", "value": 5000}, "view.grid", 200),
        ("patch", {"op": "set", "path": "view.warp_lines", "value": 1000},
         "view.warp_lines", 41),
        ("patch", {"op": "set", "path": "data.noise", "value": 2}, "data.noise", 1.0),
        ("patch", {"op": "set", "path": "speed", "value": 1e9}, "speed", 100_000.0),
        ("patch", {"op": "set", "path": "training.learning_rate", "value": -1},
         "training.learning_rate", 0.0),
        ("patch", {"op": "add_layer", "units": 500}, "units", 32),
        ("step", {"count": 1_000_000}, "count", 10_000),
        ("step", {"count": 0}, "count", 1),
        ("epoch", {"count": 1000}, "epoch" and "count", 100),
        ("set_weight", {"name": "W1", "index": [0, 0], "value": 1e9}, "value", 1000.0),
        ("add_point", {"x": [1e9, 0], "label": 1}, "x.0", 1000.0),
        ("add_point", {"x": [0, 0], "label": 10}, "label", 9),
        ("reset", {"seed": -1}, "seed", 0),
    ],
)
def test_out_of_range_values_name_the_field_and_the_limit(trained, command, fields, field,
                                                          limit):
    session, _ = trained
    error = session.command(command, **fields)
    assert error["type"] == "error" and error["code"] == "invalid", error
    assert error["field"] == field
    assert error["limit"] == limit
    assert str(limit).rstrip("0").rstrip(".") in error["message"] or str(limit) in error[
        "message"]


@pytest.mark.parametrize(
    "text, field",
    [
        ('{"type": "patch", "op": "set", "path": "training.learning_rate", "value": NaN}',
         "training.learning_rate"),
        ('{"type": "patch", "op": "set", "path": "training.learning_rate", "value": Infinity}',
         "training.learning_rate"),
        ('{"type": "configure", "config": {"training": {"learning_rate": NaN}}}',
         "config.training.learning_rate"),
        ('{"type": "set_weight", "name": "W1", "index": [0, 0], "value": NaN}', "value"),
        ('{"type": "add_point", "x": [NaN, 0], "label": 1}', "x.0"),
        ('{"type": "patch", "op": "set", "path": "data.noise", "value": 1e999}', "data.noise"),
    ],
)
def test_non_finite_numbers(trained, text, field):
    session, _ = trained
    error = session.raw(text)
    assert error["code"] == "invalid" and error["field"] == field
    assert "finite" in error["message"]


@pytest.mark.parametrize(
    "command, fields, field, limit",
    [
        ("patch", {"op": "set", "path": "model.depth", "value": 3}, "model.depth", None),
        ("patch", {"op": "set", "path": "model.layers.7.units", "value": 3},
         "model.layers.7", 1),
        ("patch", {"op": "add_unit", "layer": 5}, "layer", 1),
        ("patch", {"op": "remove_unit", "layer": 0, "unit": 9}, "unit", 3),
        ("patch", {"op": "remove_layer", "index": 4}, "index", 1),
        ("patch", {"op": "add_layer", "index": 5}, "index", 2),
        ("set_weight", {"name": "W9", "index": [0, 0], "value": 1.0}, "name", None),
        ("set_weight", {"name": "W1", "index": [0], "value": 1.0}, "index", [2, 4]),
        ("set_weight", {"name": "W1", "index": [2, 0], "value": 1.0}, "index.0", 1),
        ("set_weight", {"name": "b1", "index": [4], "value": 1.0}, "index.0", 3),
        ("configure", {"config": {"model": {"output": {"loss": "gaussian"}}}},
         "config.model.output.loss", None),
        ("configure", {"config": {"data": {"name": "user", "points": [[0, 0, 1]]}}},
         "config.data.points", None),
        ("configure", {"config": {}, "weights": {"W1": [[1, 2]]}}, "weights", None),
        ("configure", {"config": {}, "weights": {"W1": "heavy"}}, "weights", None),
    ],
)
def test_values_the_session_cannot_use(trained, command, fields, field, limit):
    session, _ = trained
    error = session.command(command, **fields)
    assert error["type"] == "error" and error["code"] in ("invalid", "rejected"), error
    assert error["field"] == field, error
    if limit is not None:
        assert error["limit"] == limit
    assert error["message"]


def test_structural_limits(connect):
    with connect() as session:
        for _ in range(6):
            assert session.command("patch", op="add_layer", units=1)["type"] == "state"
        error = session.command("patch", op="add_layer")
        assert error["field"] == "model.layers" and error["limit"] == 8
        error = session.command("patch", op="remove_unit", layer=7)
        assert error["field"] == "model.layers.7.units" and error["limit"] == 1
        session.command("patch", op="set", path="model.layers.0.units", value=32)
        error = session.command("patch", op="add_unit", layer=0)
        assert error["field"] == "model.layers.0.units" and error["limit"] == 32
        for _ in range(8):
            session.command("patch", op="remove_layer")
        error = session.command("patch", op="remove_layer")
        assert error["field"] == "model.layers" and error["limit"] == 0
        assert session.command("step")["step"] == 1  # a logistic regression still trains


def test_points_on_regression_data_are_refused(connect):
    with connect() as session:
        session.command("patch", op="set", path="data.name", value="sine_1d")
        error = session.command("add_point", x=[0.0, 0.0], label=1)
        assert error["code"] == "rejected" and error["field"] == "data.name"
        assert "circle" in error["limit"]


def test_too_large_and_binary_messages(trained):
    session, _ = trained
    big = json.dumps({"type": "step", "id": 1, "pad": "x" * 1_100_000})
    error = session.raw(big)
    assert error["code"] == "too_large" and error["limit"] == 1_048_576
    error = session.raw(b"\x81\xa4type\xa4step")
    assert error["code"] == "binary_not_accepted"


def test_divergence_pauses_with_an_explanation_and_keeps_finite_weights(connect):
    with connect() as session:
        session.command("configure", config={
            "model": {"features": ["x1"], "layers": [{"units": 8, "activation": "linear"}],
                      "output": {"loss": "squared"}},
            "training": {"learning_rate": 1.0, "batch_size": 50},
            "data": {"name": "sine_1d", "size": 200},
        })
        session.frame()
        session.command("play", speed=5000)
        error = None
        for _ in range(200):
            kind, message = session.receive()
            if kind == "json" and message["type"] == "error":
                error = message
                break
        assert error is not None
        assert error["code"] == "diverged" and error["field"] == "training.learning_rate"
        assert "learning rate" in error["message"]
        state = session.command("pause")
        assert state["playing"] is False
        weights = session.command("export")["weights"]
        assert all(np.isfinite(np.asarray(v, dtype=float)).all() for v in weights.values())
        frame = session.frame()
        assert frame["playing"] is False
        # the paused frame still passes the protocol: an overflowed gradient is sent as null
        PROTOCOL.Frame.model_validate(frame)
        for key in ("train_loss", "test_loss"):
            assert frame[key] is None or math.isfinite(frame[key])
        # stepping again explains again; a lower rate and fresh weights train again
        error = session.command("step")
        assert error["code"] == "diverged"
        session.command("patch", op="set", path="training.learning_rate", value=0.01)
        session.command("reset")
        assert session.command("step", count=20)["type"] == "state"
