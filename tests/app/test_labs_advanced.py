"""The endpoints of labs 5-7 (app/routes/labs_advanced.py): each answers with the engine's
numbers, refuses bad and too-large settings with a message (and the largest value that
works), and stops a run that overstays its time."""

from __future__ import annotations

import numpy as np
import pytest

from app.routes import labs_advanced
from engine import stochastic
from engine.depth import NetSetting, curvature, fit
from engine.hidden_units import HiddenUnitsSetting, run_hidden_units
from jobs.specs import parse_spec


def test_hidden_units_run_returns_the_engines_frames(client):
    body = {"activation": "relu", "width": 5, "steps": 40, "frames": 3, "resolution": 16}
    reply = client.post("/api/labs/hidden-units/run", json=body)
    assert reply.status_code == 200, reply.text
    run = reply.json()
    direct = run_hidden_units(HiddenUnitsSetting(activation="relu", width=5, steps=40, frames=3,
                                                 resolution=16, slope=0.1))
    assert [f["step"] for f in run["frames"]] == [0, 20, 40]
    assert run["frames"][-1]["regions"] == direct["frames"][-1]["regions"]
    assert run["frames"][-1]["region_count"] == direct["frames"][-1]["region_count"]
    assert run["shallow_bound"] == 16  # 1 + 5 + C(5, 2)
    assert len(run["frames"][0]["surface"]) == 16 * 16


@pytest.mark.parametrize("activation", labs_advanced.HIDDEN_UNITS)
def test_every_hidden_unit_runs(client, activation):
    body = {"activation": activation, "depth": 2, "width": 3, "steps": 5, "frames": 2,
            "resolution": 8}
    reply = client.post("/api/labs/hidden-units/run", json=body)
    assert reply.status_code == 200, reply.text
    smooth = activation in ("sigmoid", "tanh", "softplus", "rbf")
    assert (reply.json()["regions_reason"] is not None) == smooth


def test_output_only_training_and_the_bias_reach_the_engine(client):
    body = {"train_hidden": False, "bias": 0.5, "steps": 30, "frames": 2, "resolution": 8}
    run = client.post("/api/labs/hidden-units/run", json=body).json()
    direct = run_hidden_units(HiddenUnitsSetting(train_hidden=False, bias=0.5, steps=30,
                                                 frames=2, resolution=8, slope=0.1))
    assert run["frames"][-1]["train_loss"] == pytest.approx(direct["frames"][-1]["train_loss"])


@pytest.mark.parametrize("body,field", [
    ({"activation": "swish"}, "activation"),
    ({"width": 0}, "width"),
    ({"width": 17}, "width"),
    ({"depth": 5}, "depth"),
    ({"dataset": "sine_1d"}, "dataset"),
    ({"learning_rate": -1}, "learning_rate"),
    ({"bias": 3}, "bias"),
    ({"steps": "many"}, "steps"),
    ({"mystery": 1}, "mystery"),
])
def test_bad_hidden_unit_settings_name_the_field(client, body, field):
    reply = client.post("/api/labs/hidden-units/run", json=body)
    assert reply.status_code == 422
    assert any(error["loc"][-1] == field for error in reply.json()["detail"])


def test_a_run_too_large_says_which_value_works(client):
    body = {"activation": "maxout", "pieces": 4, "depth": 4, "width": 16, "steps": 2000}
    reply = client.post("/api/labs/hidden-units/run", json=body)
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert detail["field"] == "steps"
    assert detail["largest"] == labs_advanced.HIDDEN_WORK_LIMIT // (4 * 16 * 4)
    assert "most steps" in detail["message"]
    body["steps"] = detail["largest"]
    # the offered value passes the budget (not run here: it is the largest allowed)
    labs_advanced.HiddenUnitsSettings(**body).check_budget()


def test_sawtooth_counts_two_to_the_depth(client):
    run = client.post("/api/labs/hidden-units/sawtooth", json={"depth": 4}).json()
    assert run["count"] == 16 and run["units"] == 8 and run["shallow_bound"] == 9
    assert max(run["y"]) <= 1.0 and min(run["y"]) >= 0.0


def test_random_operations_converge_to_the_exact_gradient(client):
    body = {"cost": "quadratic", "target": 1.5, "mu": 0.5, "sigma": 0.8, "largest": 256,
            "repeats": 100, "seed": 3}
    run = client.post("/api/labs/random-operations/compare", json=body).json()
    assert run["exact"] == pytest.approx([-2.0, 1.6])
    direct = stochastic.compare(stochastic.make_cost("quadratic", 1.5), 0.5, 0.8, 256, 100, 3)
    assert run["estimators"] == direct["estimators"]
    for name in stochastic.ESTIMATORS:
        mean = np.array(run["estimators"][name]["mean"][-1])
        spread = np.array(run["estimators"][name]["std"][-1])
        assert np.all(np.abs(mean - run["exact"]) < 5 * spread / np.sqrt(100))
    assert len(run["curve"]["y"]) == len(run["curve"]["density"])


def test_random_operations_refuse_too_many_draws_and_a_zero_sigma(client):
    reply = client.post("/api/labs/random-operations/compare",
                        json={"largest": 16384, "repeats": 1000})
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert detail["field"] == "repeats"
    assert detail["largest"] * sum(stochastic.sample_counts(16384)) <= labs_advanced.MAX_SAMPLES
    reply = client.post("/api/labs/random-operations/compare", json={"sigma": 0})
    assert reply.status_code == 422


def test_depth_comparison_reports_each_depth_within_budget(client):
    body = {"target": "sine_1d", "budgets": [10, 30], "depths": [1, 2], "steps": 50,
            "size": 40}
    run = client.post("/api/labs/depth-and-curvature/compare", json=body).json()
    assert [c["depth"] for c in run["curves"]] == [1, 2]
    for curve in run["curves"]:
        assert all(p["parameters"] <= p["budget"] for p in curve["points"])
    assert run["fits"] is not None


@pytest.mark.parametrize("body", [{"budgets": [10, 10]}, {"depths": [5]}, {"budgets": []},
                                  {"budgets": [1000]}, {"target": "circle"}])
def test_bad_depth_settings_are_refused(client, body):
    assert client.post("/api/labs/depth-and-curvature/compare", json=body).status_code == 422


def test_too_many_nets_offer_the_largest_step_count(client):
    body = {"budgets": [10, 20, 30, 40, 50, 60], "depths": [1, 2, 3, 4], "steps": 4000}
    detail = client.post("/api/labs/depth-and-curvature/compare", json=body).json()["detail"]
    assert detail["field"] == "steps" and detail["largest"] == labs_advanced.DEPTH_WORK_LIMIT // 24


def test_curvature_matches_the_engine_and_its_net_loads_as_a_job(client):
    body = {"target": "sine_1d", "depth": 1, "width": 4, "steps": 100, "size": 40, "k": 3,
            "iterations": 13}
    run = client.post("/api/labs/depth-and-curvature/curvature", json=body).json()
    fitted = fit(NetSetting(target="sine_1d", depth=1, width=4, steps=100, size=40))
    direct = curvature(fitted, 3, 13)
    assert run["eigenvalues"] == pytest.approx(direct["eigenvalues"])
    assert run["exact"] == pytest.approx(direct["exact"])
    # what the page submits as jobs is a valid spectrum / landscape spec
    spectrum = parse_spec({"kind": "spectrum", "config": run["config"], "weights": run["weights"]})
    assert spectrum.kind == "spectrum"
    parse_spec({"kind": "landscape", "config": run["config"], "weights": run["weights"],
                "directions": "hessian"})


def test_a_net_too_large_for_the_request_offers_the_widest_that_works(client):
    body = {"depth": 4, "width": 32}
    detail = client.post("/api/labs/depth-and-curvature/curvature", json=body).json()["detail"]
    assert detail["field"] == "width"
    assert "spectrum job" in detail["message"]
    from engine.depth import parameter_count

    assert parameter_count(2, 4, detail["largest"]) <= labs_advanced.CURVATURE_PARAMETERS


def test_a_run_past_the_time_limit_stops_with_a_message(client, monkeypatch):
    monkeypatch.setattr(labs_advanced, "TIME_LIMIT_S", -1.0)  # already past at the first step
    reply = client.post("/api/labs/hidden-units/run", json={"steps": 10, "frames": 2})
    assert reply.status_code == 422
    assert "took longer than" in reply.json()["detail"]["message"]
    # the server goes on serving
    assert client.post("/api/labs/hidden-units/sawtooth", json={"depth": 2}).status_code == 200


@pytest.mark.parametrize("name", ["hidden-units", "random-operations", "depth-and-curvature"])
def test_the_index_links_labs_5_to_7_and_their_pages_render(client, name):
    assert f'href="/labs/{name}"' in client.get("/labs").text
    page = client.get(f"/labs/{name}")
    assert page.status_code == 200
    assert f'src="/static/js/labs/{name}.js"' in page.text
    assert 'name="prediction"' in page.text and "<script>" not in page.text
