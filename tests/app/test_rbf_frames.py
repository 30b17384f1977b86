"""A session's frames carry the RBF templates of the first hidden layer (small: units × 2
floats), starting on training examples and following them as they learn."""

from __future__ import annotations

import copy

import numpy as np

from app.encoding import decode_array
from app.presets import PRESETS


def rbf_config(units: int = 5) -> dict:
    config = copy.deepcopy(next(p for p in PRESETS if p["name"] == "fig_6_2")["config"])
    config["model"]["layers"] = [{"units": units, "activation": "rbf", "slope": 0.01,
                                  "pieces": 2}]
    config["training"]["learning_rate"] = 0.3
    return config


def test_frames_carry_the_templates_as_they_learn(connect, settings):
    from app.protocol import protocol_for

    frame_model = protocol_for(settings).Frame
    with connect() as session:
        assert session.command("configure", config=rbf_config())["type"] == "state"
        first = session.frame()
        frame_model.model_validate(first)
        templates = decode_array(first["surface"]["templates"])
        weights = np.array(session.weights()["W1"])  # (features, units)
        assert templates.shape == (5, 2)
        np.testing.assert_allclose(templates, weights.T, rtol=1e-6)
        # the templates start on training examples (the data block holds train points first)
        data = first["data"]
        points = decode_array(data["x"]).T[: data["train"]]
        for row in templates:
            assert np.isclose(points, row, atol=1e-3).all(axis=1).any()  # u2 coordinates
        session.command("step", count=200)
        later = decode_array(session.frame()["surface"]["templates"])
        assert not np.allclose(later, templates)  # they moved as they learned
        np.testing.assert_allclose(later, np.array(session.weights()["W1"]).T, rtol=1e-5,
                                   atol=1e-6)


def test_no_templates_without_rbf_units(connect):
    with connect() as session:
        assert session.frame()["surface"].get("templates") is None
