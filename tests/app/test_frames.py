"""Frames decode, match the documented schema and shapes, and show the engine's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from app.encoding import decode_array
from app.presets import preset
from app.protocol import protocol_for
from engine.autodiff import grad
from engine.nn import MLP
from engine.spec import Config
from engine.training import Trainer
from engine.views import cell_centres, line_inputs


def engine_twin(state_or_export: dict) -> tuple[MLP, object]:
    """The session's network and data rebuilt in the engine from an export."""
    config = Config.from_dict(state_or_export["config"])
    trainer = Trainer(config)
    trainer.model.load_state_dict(state_or_export["weights"])
    return trainer.model, trainer.dataset


def quantum(array: dict) -> float:
    """The largest rounding error of a quantised array (half a step), plus float32 noise."""
    top = 255.0 if array["dtype"] == "u1" else 65535.0
    span = np.max(np.asarray(array["hi"]) - np.asarray(array["lo"]))
    return 0.5 * span / top + 1e-4 * max(1.0, float(np.max(np.abs(array["hi"]))))


def test_default_frame_matches_schema_shapes_and_size(connect, settings):
    with connect() as session:
        session.command("step", count=25)
        session.send({"type": "ready"})
        kind, frame = session.receive()
        assert kind == "frame"
        protocol_for(settings).Frame.model_validate(frame)
        assert frame["type"] == "frame" and frame["session"] == session.hello["session"]
        assert frame["step"] == 25 and frame["epoch"] == 1.0 and frame["playing"] is False
        assert frame["network"]["layers"] == [
            {"units": 4, "activation": "tanh", "width": 4},
            {"units": 2, "activation": "tanh", "width": 2},
        ]
        data = frame["data"]
        assert data["x"]["dtype"] == "u2" and data["x"]["shape"] == [2, 500]
        assert data["y"]["dtype"] == "u1" and data["y"]["shape"] == [500]
        assert set(np.unique(decode_array(data["y"]))) == {0.0, 1.0}
        assert data["train"] == 250 and len(data["extent"]) == 2
        surface = frame["surface"]
        assert surface["kind"] == "probability"
        assert surface["values"]["dtype"] == "u1" and surface["values"]["shape"] == [100, 100]
        assert (surface["values"]["lo"], surface["values"]["hi"]) == (0.0, 1.0)
        assert [u["values"]["shape"] for u in frame["units"]] == [[4, 40, 40], [2, 40, 40]]
        assert frame["units"][0]["values"]["lo"] == [-1.0] * 4
        first, second = frame["warps"]
        assert (first["units"], first["lines"], first["samples"]) == (4, 21, 41)
        for stage in ("pre_activation", "activation"):
            view = first[stage]
            assert view["dims"] == 2 and view["projection"] == "pca"
            assert view["basis"]["shape"] == [4, 2] and view["centre"]["shape"] == [4]
            assert 0.0 <= view["explained"] <= 1.0
            assert view["grid"]["dtype"] == "u2" and view["grid"]["shape"] == [2, 2 * 21 * 41]
            assert view["points"]["shape"] == [2, 500]
            assert len(view["bounds"]) == 2 and all(lo < hi for lo, hi in view["bounds"])
            assert "readout" not in view or view["readout"] is None
        assert second["activation"]["projection"] == "none"
        assert second["activation"]["readout"]["shape"] == [1, 3]
        gradients = frame["gradients"]
        assert [p["name"] for p in gradients["parameters"]] == ["W1", "b1", "W2", "b2", "Wout",
                                                                "bout"]
        assert [p["grad"]["shape"] for p in gradients["parameters"]] == [
            [2, 4], [4], [4, 2], [2], [2, 1], [1]]
        assert [layer["pre_activation_grad"]["shape"] for layer in gradients["layers"]] == [
            [4], [2], [1]]
        history = frame["history"]
        assert decode_array(history["step"]).tolist() == [25.0]
        # the budget for the default network
        assert session.last_frame_bytes <= 64 * 1024
        session.command("step")
        session.frame()
        assert session.last_frame_bytes <= 60 * 1024  # without the data


def test_views_show_the_engine_s_numbers(connect):
    with connect() as session:
        session.command("step", count=60)
        frame = session.frame()
        model, dataset = engine_twin(session.command("export"))
        (x1_lo, x1_hi), (x2_lo, x2_hi) = frame["data"]["extent"]
        x = np.concatenate([dataset.x_train, dataset.x_test])
        np.testing.assert_allclose(decode_array(frame["data"]["x"]).T, x,
                                   atol=quantum(frame["data"]["x"]))

        # the surface: cell (i, j) at (x1_j, x2_i), row 0 at the bottom
        surface = frame["surface"]["values"]
        cells = np.stack(np.meshgrid(cell_centres(x1_lo, x1_hi, 100),
                                     cell_centres(x2_lo, x2_hi, 100)), axis=-1).reshape(-1, 2)
        expected = model.predict(cells).reshape(100, 100)
        np.testing.assert_allclose(decode_array(surface), expected, atol=quantum(surface))

        # unit maps: every 40th cell centre of the same extent
        layers = model.forward_layers(cells)
        index = ((np.arange(40) + 0.5) * 100 / 40).astype(int)
        for k, maps in enumerate(frame["units"]):
            h = layers[k][1].value.reshape(100, 100, -1)[np.ix_(index, index)]
            np.testing.assert_allclose(decode_array(maps["values"]), h.transpose(2, 0, 1),
                                       atol=quantum(maps["values"]))

        # warps: the second layer has 2 units, shown as they are
        point_layers = model.forward_layers(x)
        second = frame["warps"][1]
        for stage, which in (("pre_activation", 0), ("activation", 1)):
            points = second[stage]["points"]
            np.testing.assert_allclose(decode_array(points),
                                       point_layers[1][which].value.T, atol=quantum(points))
            lines = line_inputs(((x1_lo, x1_hi), (x2_lo, x2_hi)), 21, 41)
            grid = second[stage]["grid"]
            np.testing.assert_allclose(decode_array(grid),
                                       model.forward_layers(lines)[1][which].value.T,
                                       atol=quantum(grid))
        # the readout maps this space to the output's logit
        readout = decode_array(second["activation"]["readout"])
        h = point_layers[1][1].value
        z = h @ readout[0, :2] + readout[0, 2]
        np.testing.assert_allclose(z, point_layers[-1][1].value[:, 0], atol=1e-4)

        # the first layer is projected on principal axes: coords = (h − centre) · basis
        first = frame["warps"][0]["activation"]
        basis, centre = decode_array(first["basis"]), decode_array(first["centre"])
        h = point_layers[0][1].value
        np.testing.assert_allclose(decode_array(first["points"]), ((h - centre) @ basis).T,
                                   atol=quantum(first["points"]))
        np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-5)
        covariance = np.cov(h.T)
        top = np.linalg.eigh(covariance)[1][:, -2:]
        # the basis spans the top two principal directions
        np.testing.assert_allclose(np.abs(np.linalg.det(top.T @ basis)), 1.0, atol=1e-4)


def test_gradients_are_the_engine_s_full_batch_gradients(connect):
    with connect() as session:
        session.command("patch", op="set", path="training.l2", value=0.01)
        session.command("step", count=40)
        frame = session.frame()
        model, dataset = engine_twin(session.command("export"))
        layers = model.forward_layers(dataset.x_train)
        cost = model.loss(layers[-1][1], dataset.y_train) + model.penalty(0.01, 0.0)
        parameters = model.parameters()
        grads = grad(cost, parameters + [a for a, _ in layers])
        sent = frame["gradients"]
        assert sent["cost"] == pytest.approx(float(cost.value), rel=1e-9)
        for parameter, g, entry in zip(parameters, grads, sent["parameters"]):
            assert entry["name"] == parameter.name
            np.testing.assert_allclose(decode_array(entry["value"]), parameter.value, rtol=1e-6)
            np.testing.assert_allclose(decode_array(entry["grad"]), g.value, rtol=1e-5,
                                       atol=1e-7)
        n = len(dataset.x_train)
        for g, entry in zip(grads[len(parameters):], sent["layers"]):
            np.testing.assert_allclose(decode_array(entry["pre_activation_grad"]),
                                       np.abs(g.value).mean(axis=0) * n, rtol=1e-5)
        norms = [entry["grad_norm"] for entry in sent["layers"]]
        expected = [np.sqrt(sum(float((g.value ** 2).sum()) for g in pair))
                    for pair in (grads[0:2], grads[2:4], grads[4:6])]
        np.testing.assert_allclose(norms, expected, rtol=1e-9)


def test_projection_does_not_flip_between_frames(connect):
    with connect() as session:
        session.command("configure", config=preset("deep_spiral")["config"])
        session.command("step", count=50)
        previous = session.frame()
        for _ in range(5):
            session.command("step", count=5)
            frame = session.frame()
            for before, after in zip(previous["warps"], frame["warps"]):
                for stage in ("pre_activation", "activation"):
                    old = decode_array(before[stage]["basis"])
                    new = decode_array(after[stage]["basis"])
                    # each axis stays close to where it was: no flips, no swaps
                    assert np.all(np.sum(old * new, axis=0) > 0.9)
            previous = frame


def test_deep_wide_and_three_unit_layers(connect, settings):
    with connect() as session:
        config = preset("deep_spiral")["config"]
        config["model"]["layers"][2] = {"units": 3, "activation": "relu"}
        config["model"]["layers"][3] = {"units": 1, "activation": "sigmoid"}
        session.command("configure", config=config)
        frame = session.frame()
        protocol_for(settings).Frame.model_validate(frame)
        dims = [(w["activation"]["dims"], w["activation"]["projection"]) for w in frame["warps"]]
        assert dims == [(2, "pca"), (2, "pca"), (3, "none"), (1, "none"), (2, "pca"),
                        (2, "pca")]
        assert frame["warps"][2]["activation"]["grid"]["shape"] == [3, 2 * 21 * 41]
        assert frame["warps"][3]["activation"]["points"]["shape"] == [1, 500]
        assert frame["units"][3]["values"]["lo"] == [0.0]  # sigmoid: [0, 1]
        assert frame["warps"][-1]["activation"]["readout"]["shape"] == [1, 3]


def test_maxout_layer_has_wider_pre_activations(connect):
    with connect() as session:
        session.command("patch", op="set", path="model.layers.0",
                        value={"units": 3, "activation": "maxout", "slope": 0.01, "pieces": 2})
        frame = session.frame()
        first = frame["warps"][0]
        assert first["pre_activation"]["projection"] == "pca"  # 6 pieces
        assert first["pre_activation"]["basis"]["shape"] == [6, 2]
        assert first["activation"]["dims"] == 3
        params = {p["name"]: p for p in frame["gradients"]["parameters"]}
        assert params["W1"]["grad"]["shape"] == [2, 6]
        assert frame["gradients"]["layers"][0]["pre_activation_grad"]["shape"] == [6]


def test_softmax_surface_holds_class_probabilities(connect):
    with connect() as session:
        session.command("configure", config=preset("spiral_3")["config"])
        session.command("step", count=20)
        frame = session.frame()
        values = frame["surface"]["values"]
        assert frame["surface"]["kind"] == "probabilities" and values["shape"] == [3, 100, 100]
        np.testing.assert_allclose(decode_array(values).sum(axis=0), 1.0, atol=3 * 0.5 / 255)
        assert frame["warps"][-1]["activation"]["readout"]["shape"] == [3, 3]
        assert set(np.unique(decode_array(frame["data"]["y"]))) == {0.0, 1.0, 2.0}


def test_one_dimensional_regression_frames(connect, settings):
    with connect() as session:
        session.command("configure", config=preset("sine")["config"],
                        view={"grid": 80, "unit_grid": 40, "warp_lines": 21,
                              "warp_samples": 41, "gradients": True})
        frame = session.frame()
        protocol_for(settings).Frame.model_validate(frame)
        surface = frame["surface"]
        assert surface["kind"] == "curve"
        assert surface["x"]["shape"] == [80] and surface["mean"]["shape"] == [80]
        assert "density" not in surface and "std" not in surface
        model, dataset = engine_twin(session.command("export"))
        x = decode_array(surface["x"]).astype(np.float64).reshape(-1, 1)
        np.testing.assert_allclose(decode_array(surface["mean"]), model.predict(x), atol=1e-4)
        assert frame["units"][0]["values"]["dtype"] == "f4"
        assert frame["units"][0]["values"]["shape"] == [8, 80]
        warp = frame["warps"][0]
        assert (warp["lines"], warp["samples"]) == (1, 80)
        assert warp["activation"]["grid"]["shape"] == [2, 80]
        assert frame["data"]["x"]["shape"] == [1, 200]
        assert frame["data"]["y"]["dtype"] == "f4" and frame["data"]["target_extent"]
        assert frame["train_accuracy"] is None and frame["history"]["train_accuracy"] is None


def test_mixture_and_learned_precision_outputs(connect):
    with connect() as session:
        session.command("configure", config=preset("mixture")["config"])
        surface = session.frame()["surface"]
        assert surface["density"]["dtype"] == "u1" and surface["density"]["shape"] == [100, 100]
        state = session.command("patch", op="set", path="model.output.loss",
                                value="gaussian_learned")
        assert state["network"]["outputs"] == 2
        surface = session.frame()["surface"]
        assert surface["std"]["shape"] == [100]
        assert np.all(decode_array(surface["std"]) > 0)


def test_view_settings_shape_the_frame(connect):
    with connect() as session:
        session.command("configure", config=preset("circle")["config"],
                        view={"grid": 30, "unit_grid": 12, "warp_lines": 5, "warp_samples": 7,
                              "gradients": False})
        frame = session.frame()
        assert frame["surface"]["values"]["shape"] == [30, 30]
        assert frame["units"][0]["values"]["shape"] == [4, 12, 12]
        assert frame["warps"][0]["activation"]["grid"]["shape"] == [2, 2 * 5 * 7]
        assert frame["gradients"] is None
        session.command("patch", op="set", path="view.unit_grid", value=200)
        frame = session.frame()
        assert frame["units"][0]["values"]["shape"] == [4, 30, 30]  # at most the grid


def test_data_travel_once_per_change(connect):
    with connect() as session:
        first = session.frame()
        assert first["data"] is not None
        session.command("step")
        second = session.frame()
        assert second["data"] is None and second["data_version"] == first["data_version"]
        session.command("patch", op="set", path="data.noise", value=0.3)
        third = session.frame()
        assert third["data"] is not None and third["data_version"] > first["data_version"]
        assert third["data"]["version"] == third["data_version"]
