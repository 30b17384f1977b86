"""The chapter's own examples as presets (issue 14): Example 6.1.1, mean against median and
learned precision are what the chapter describes, and each trains in a session (their
validation and training against every other preset: tests/app/test_api.py and
test_ws_session.py's test_every_preset_trains)."""

from __future__ import annotations

import numpy as np

from app.presets import preset


def test_example_6_1_1_is_the_chapters_network():
    config = preset("example_6_1_1")["config"]
    model, training = config["model"], config["training"]
    # one sigmoid hidden layer, a linear output, squared error (Example 6.1.1, Fig. 6.1)
    assert [layer["activation"] for layer in model["layers"]] == ["sigmoid"]
    assert model["output"]["loss"] == "squared" and model["features"] == ["x1"]
    # weight decay on the weights only (the engine's l2 leaves biases alone), trained by SGD
    assert training["l2"] > 0 and training["l1"] == 0 and training["optimizer"] == "sgd"
    assert config["data"]["name"] == "sine_1d"


def test_mean_median_and_learned_precision_presets():
    mean_median = preset("mean_median")["config"]
    assert mean_median["data"]["name"] == "skewed_1d"
    assert mean_median["model"]["output"]["loss"] == "absolute"
    learned = preset("learned_precision")["config"]
    assert learned["data"]["name"] == "heteroscedastic_1d"
    assert learned["model"]["output"]["loss"] == "gaussian_learned"


def test_the_presets_train_in_a_session(connect):
    for name in ("example_6_1_1", "mean_median", "learned_precision"):
        with connect() as session:
            state = session.command("configure", config=preset(name)["config"])
            assert state["type"] == "state", state
            before = session.frame()["train_loss"]
            session.command("step", count=800)
            after = session.frame()["train_loss"]
            assert np.isfinite(after) and after < before, (name, before, after)
