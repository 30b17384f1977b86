"""The endpoints of labs 1-4: they validate every setting, refuse runs too long for one
request with the largest that works, and return snapshots whose outcome comes from the run."""

from __future__ import annotations

import pytest

SMALL = {"steps": 60, "snapshots": 3}


def post(client, name: str, **settings):
    return client.post(f"/api/labs/{name}/run", json=settings)


def test_shallow_regression_runs_and_judges_from_its_run(client):
    reply = post(client, "shallow-regression", l2=0.05, hidden=4, **SMALL)
    assert reply.status_code == 200, reply.text
    run = reply.json()
    assert [s["step"] for s in run["snapshots"]] == [0, 15, 60]
    last = run["snapshots"][-1]
    assert len(last["units"]) == 4 and len(last["units"][0]) == len(run["grid"])
    assert last["fit"] != run["snapshots"][0]["fit"]
    outcome = run["outcome"]
    assert outcome["answer"] in ("closer", "smoother", "same")
    # λ = 0 for both runs: the same run twice, so no difference
    same = post(client, "shallow-regression", l2=0.0, hidden=4, **SMALL).json()["outcome"]
    assert same["answer"] == "same" and same["loss"] == same["reference_loss"]


def test_conditional_statistics_returns_both_fits_and_the_binned_statistics(client):
    run = post(client, "conditional-statistics", bins=6, size=200, **SMALL).json()
    assert len(run["bins"]["mean"]) == 6 and len(run["bins"]["median"]) == 6
    last = run["snapshots"][-1]
    assert len(last["squared"]) == len(last["absolute"]) == len(run["grid"])
    assert run["outcome"]["answer"] in ("squared", "absolute", "same")


def test_saturating_losses_counts_confidently_wrong_examples(client):
    run = post(client, "saturating-losses", size=60, **SMALL).json()
    first = run["snapshots"][0]
    # the same initial weights for both runs
    assert first["nll"]["score"] == first["squared"]["score"]
    assert first["nll"]["wrong"] == first["squared"]["wrong"] == run["outcome"]["start_wrong"]
    assert len(run["curve"]["score"]) == len(run["curve"]["nll"])


@pytest.mark.parametrize("unit", ["bernoulli", "softmax", "gaussian_learned", "mixture"])
def test_output_units_each_draw_their_distribution(client, unit):
    run = post(client, "output-units", unit=unit, size=100, **SMALL).json()
    assert run["unit"] == unit and run["outcome"]["unit"] == unit
    last = run["snapshots"][-1]
    keys = {"bernoulli": "probability", "softmax": "probabilities",
            "gaussian_learned": "precision", "mixture": "weights"}
    assert keys[unit] in last


def test_clipping_is_counted_for_the_mixture(client):
    clipped = post(client, "output-units", unit="mixture", clip=True, clip_norm=0.01,
                   size=100, **SMALL).json()["outcome"]
    assert clipped["clipped_steps"] == 60
    free = post(client, "output-units", unit="mixture", clip=False, size=100,
                **SMALL).json()["outcome"]
    assert free["clipped_steps"] == 0


@pytest.mark.parametrize("name, field, value", [
    ("shallow-regression", "hidden", 0),
    ("shallow-regression", "l2", -1),
    ("shallow-regression", "learning_rate", "fast"),
    ("conditional-statistics", "bins", 1000),
    ("saturating-losses", "init_scale", 0),
    ("output-units", "unit", "poisson"),
    ("output-units", "components", 50),
])
def test_bad_settings_get_a_clear_422(client, name, field, value):
    reply = post(client, name, **{field: value})
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert any(field in item["loc"] for item in detail)


def test_unknown_setting_is_refused(client):
    reply = post(client, "shallow-regression", hiden=4)
    assert reply.status_code == 422
    assert "hiden" in str(reply.json()["detail"])


def test_a_run_too_long_says_why_and_offers_the_largest_that_works(client):
    reply = post(client, "shallow-regression", hidden=32, steps=8000)
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert detail["field"] == "steps" and "largest" in detail["message"]
    largest = detail["largest"]
    assert 0 < largest < 8000
    # the offer is one that works: the largest is accepted, one more is not
    assert post(client, "shallow-regression", hidden=32, steps=largest + 1).status_code == 422
    from app.lab_models import ShallowRegression

    ShallowRegression(hidden=32, steps=largest).check_budget()


def test_too_many_curves_for_one_reply_offers_the_largest_snapshot_count(client):
    reply = post(client, "shallow-regression", hidden=32, snapshots=60, steps=100)
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert detail["field"] == "snapshots" and detail["largest"] == 30
    assert post(client, "shallow-regression", hidden=32, snapshots=30, steps=100).status_code == 200


def test_a_mixtures_steps_cost_more(client):
    from app.lab_models import OutputUnits

    plain = OutputUnits(unit="gaussian_learned", steps=8000)
    mixture = OutputUnits(unit="mixture", components=6, steps=8000)
    largest = []
    for settings in (plain, mixture):
        try:
            settings.check_budget()
        except ValueError as error:
            largest.append(error.largest)
    assert len(largest) == 2 and largest[1] < largest[0]


def test_a_diverging_run_is_a_clear_error_and_the_server_goes_on(client):
    # ε = 5 on Example 6.1.1's net overflows within a few hundred steps on this seed
    reply = post(client, "shallow-regression", learning_rate=5.0, hidden=32, steps=300,
                 snapshots=2)
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert "diverged" in detail["message"] and detail["field"] == "learning_rate"
    assert post(client, "shallow-regression", **SMALL).status_code == 200
