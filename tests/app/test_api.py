"""REST routes: health, presets, datasets, schema, pages and the vendored plotly.js."""

from __future__ import annotations

import dataclasses

import plotly
import pytest

from app.main import create_app
from app.protocol import protocol_for
from app.settings import Settings
from engine.datasets import DATASETS
from engine.spec import Config, DataSpec, LayerSpec, ModelSpec, OutputSpec, TrainingSpec


def test_health(client):
    body = client.get("/healthz").json()
    assert {k: body[k] for k in ("status", "sessions", "schema_version")} == {
        "status": "ok", "sessions": 0, "schema_version": 1}
    assert body["loop_lag_ms"] is None or body["loop_lag_ms"] >= 0


def test_presets_are_valid_configs_and_include_the_chapter_figure(client, settings):
    presets = client.get("/api/presets").json()
    names = [p["name"] for p in presets]
    assert {"circle", "fig_6_2", "xor", "deep_spiral", "spiral_3"} <= set(names)
    protocol = protocol_for(settings)
    for preset in presets:
        assert set(preset) == {"name", "title", "description", "config"}
        protocol.Config.model_validate(preset["config"])
        Config.from_dict(preset["config"])
    figure = next(p for p in presets if p["name"] == "fig_6_2")["config"]
    assert figure["model"]["features"] == ["x1", "x2"]
    assert [(layer["units"], layer["activation"]) for layer in figure["model"]["layers"]] == [
        (2, "tanh")
    ]
    assert figure["model"]["output"]["loss"] == "bernoulli"
    assert figure["data"]["name"] == "two_curves"
    circle = next(p for p in presets if p["name"] == "circle")["config"]
    assert [layer["units"] for layer in circle["model"]["layers"]] == [4, 2]
    spiral_3 = next(p for p in presets if p["name"] == "spiral_3")["config"]
    assert spiral_3["model"]["output"]["loss"] == "softmax"
    assert spiral_3["data"]["classes"] == 3


def test_datasets_list_every_engine_dataset(client):
    listed = client.get("/api/datasets").json()
    assert [d["name"] for d in listed] == list(DATASETS)
    assert all(set(d) == {"name", "title", "task", "input_dim", "description"} for d in listed)


def test_schema_covers_config_and_every_message(client):
    schema = client.get("/api/schema").json()
    assert schema["schema_version"] == 1
    assert schema["config"]["title"] == "Config"
    text = str(schema["client_messages"])
    for command in ("configure", "patch", "play", "pause", "step", "epoch", "reset",
                    "set_weight", "add_point", "remove_point", "ready", "export"):
        assert f"'{command}'" in text
    for op in ("set", "add_layer", "remove_layer", "add_unit", "remove_unit"):
        assert f"'{op}'" in text
    server = str(schema["server_messages"])
    for kind in ("hello", "state", "error", "export"):
        assert f"'{kind}'" in server
    assert "warps" in schema["frame"]["properties"]
    assert schema["limits"]["max_units"] == 32


def test_schema_limits_follow_the_settings():
    from fastapi.testclient import TestClient

    app = create_app(Settings(max_units=16, max_grid=120))
    with TestClient(app) as client:
        schema = client.get("/api/schema").json()
    layer = schema["config"]["$defs"]["LayerSpec"]["properties"]["units"]
    assert layer["maximum"] == 16
    assert schema["view"]["properties"]["grid"]["maximum"] == 120


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_MAX_UNITS", "12")
    monkeypatch.setenv("BACKPROP_LAB_MAX_SESSIONS", "3")
    settings = Settings()
    assert settings.max_units == 12 and settings.max_sessions == 3


def test_plotly_is_served_from_the_installed_package(client):
    response = client.get("/vendor/plotly.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    path = f"{plotly.__path__[0]}/package_data/plotly.min.js"
    with open(path, "rb") as file:
        assert response.content == file.read()


def test_the_page_is_served(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "<html" in response.text.lower()


@pytest.mark.parametrize(
    "engine_class, model_name",
    [(LayerSpec, "LayerSpec"), (OutputSpec, "OutputSpec"), (ModelSpec, "ModelSpec"),
     (TrainingSpec, "TrainingSpec"), (DataSpec, "DataSpec"), (Config, "Config")],
)
def test_protocol_config_mirrors_the_engine_spec(settings, engine_class, model_name):
    protocol = protocol_for(settings)
    model = getattr(protocol, model_name)
    assert list(model.model_fields) == [f.name for f in dataclasses.fields(engine_class)]
    defaults = model().model_dump()
    assert defaults == dataclasses.asdict(engine_class())
