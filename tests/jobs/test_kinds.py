"""The job kinds at small sizes on the numpy engine: results, their shapes and meaning,
spec validation, cancellation. The torch backend and its parity: test_kinds_torch.py."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from pydantic import ValidationError

from engine.autodiff import no_grad
from engine.curvature import flatten, unflatten
from jobs.backends.objective import NumpyObjective
from jobs.context import Cancelled, Context, resolve_backend
from jobs.kinds import KINDS, finite, run_local
from jobs.kinds import digits as digits_kind
from jobs.kinds import landscape as landscape_kind
from jobs.specs import (
    DigitsSpec,
    LandscapeSpec,
    SpectrumSpec,
    SweepSpec,
    load_model,
    parse_spec,
    size_of,
)

SESSION = {
    "model": {"layers": [{"units": 4, "activation": "tanh"}, {"units": 3, "activation": "tanh"}]},
    "training": {"l2": 0.003, "l1": 0.001},
    "data": {"name": "circle", "size": 120, "noise": 0.1},
}


def numpy_ctx(**kwargs) -> Context:
    return Context(backend="numpy", **kwargs)


def _json(result: dict) -> dict:
    return json.loads(json.dumps(result, allow_nan=False))  # JSON-able, no NaN or infinity


def _locations(error: ValidationError) -> list[tuple]:
    return [tuple(e["loc"]) for e in error.errors()]


# ----- specs ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "digits", "epochs": 0}, "epochs"),
        ({"kind": "digits", "hidden": 5000}, "hidden"),
        ({"kind": "digits", "train_size": 9000}, "train_size"),
        ({"kind": "digits", "learning_rate": -1}, "learning_rate"),
        ({"kind": "digits", "backend": "cuda"}, "backend"),
        ({"kind": "digits", "colour": "red"}, "colour"),
        ({"kind": "sweep", "dataset": "sine_1d"}, "dataset"),
        ({"kind": "sweep", "depths": [1, 1]}, "depths"),
        ({"kind": "sweep", "widths": [0]}, "widths"),
        ({"kind": "sweep", "activation": "swish"}, "activation"),
        ({"kind": "landscape", "resolution": 102}, "resolution"),
        ({"kind": "landscape", "directions": "pca"}, "directions"),
        ({"kind": "landscape", "config": {"model": {"layers": [{"units": 0}]}}}, "config"),
        ({"kind": "landscape", "config": {"data": {"name": "nowhere"}}}, "config"),
        ({"kind": "landscape", "weights": {"W1": [[1.0]]}}, "weights"),
        ({"kind": "landscape", "path": [{"W1": [[1.0]]}]}, "path"),
        ({"kind": "spectrum", "k": 0}, "k"),
        ({"kind": "spectrum", "iterations": 10_000}, "iterations"),
    ],
)
def test_a_bad_spec_names_its_field(data: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_spec(data)
    assert any(field in location for location in _locations(caught.value)), caught.value


def test_an_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValidationError, match="kind"):
        parse_spec({"kind": "poetry"})


def test_defaults_are_filled_in_and_sizes_reported() -> None:
    digits = parse_spec({"kind": "digits"})
    assert isinstance(digits, DigitsSpec)
    assert (digits.epochs, digits.hidden, digits.backend) == (3, 100, "auto")
    assert size_of(digits) == {
        "epochs": 3,
        "train_size": 8000,
        "hidden": 100,
        "steps": 3 * 250,
        "parameters": 784 * 100 + 100 + 100 * 10 + 10,
    }
    sweep = parse_spec({"kind": "sweep"})
    assert isinstance(sweep, SweepSpec)
    assert size_of(sweep)["nets"] == len(sweep.depths) * len(sweep.widths) * sweep.seeds
    landscape = parse_spec({"kind": "landscape", "resolution": 101, "config": SESSION})
    assert isinstance(landscape, LandscapeSpec)
    assert size_of(landscape)["points"] == 101 * 101
    # the engine's defaults fill in the config
    assert landscape.config["model"]["layers"][0]["units"] == 4
    assert landscape.config["data"]["size"] == 120
    spectrum = parse_spec({"kind": "spectrum", "config": SESSION})
    assert isinstance(spectrum, SpectrumSpec)
    assert size_of(spectrum)["parameters"] == (2 * 4 + 4) + (4 * 3 + 3) + (3 + 1)


def test_session_weights_are_accepted() -> None:
    weights = load_model(SESSION, None).state_dict()
    spec = parse_spec({"kind": "spectrum", "config": SESSION, "weights": weights})
    assert spec.weights == weights


# ----- context ------------------------------------------------------------------------------
def test_context_reports_progress_and_cancels() -> None:
    reports: list[dict] = []
    flag = {"cancelled": False}
    ctx = Context(reports.append, lambda: flag["cancelled"], backend="numpy")
    assert (ctx.backend, ctx.device) == ("numpy", "cpu")
    ctx.progress(1.5, "beyond", loss=0.25)
    ctx.progress(float("nan"), "unknown")
    assert reports == [
        {"progress": 1.0, "message": "beyond", "data": {"loss": 0.25}},
        {"progress": 0.0, "message": "unknown", "data": {}},
    ]
    ctx.check()
    flag["cancelled"] = True
    with pytest.raises(Cancelled):
        ctx.check()
    Context().progress(0.5, "nobody listens")  # no report callable: nothing happens


def test_context_backends() -> None:
    assert resolve_backend("numpy") == ("numpy", "cpu")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("tpu")
    with pytest.raises(ValueError, match="CPU only"):
        Context(backend="numpy", device="cuda")


def test_finite_replaces_nan_and_infinity() -> None:
    assert finite({"a": [1.0, float("nan")], "b": (float("inf"), 2), "c": "x"}) == {
        "a": [1.0, None],
        "b": [None, 2],
        "c": "x",
    }


def test_every_kind_is_registered() -> None:
    assert sorted(KINDS) == ["digits", "landscape", "spectrum", "sweep"]
    assert {name: kind.gpu for name, kind in KINDS.items()} == {
        "digits": True,
        "landscape": True,
        "spectrum": True,
        "sweep": False,
    }


# ----- digits ---------------------------------------------------------------------------------
def test_the_shipped_digits() -> None:
    x, y = digits_kind.load_digits()
    assert x.shape == (10000, 784) and y.shape == (10000,)
    assert 0.0 <= x.min() and x.max() == 1.0
    counts = np.bincount(y.astype(int), minlength=10)
    assert counts.min() > 800  # every class is there, roughly balanced
    _, _, _, y_test = digits_kind.split(DigitsSpec(train_size=100))
    assert len(y_test) == 2000 and len(set(y_test.tolist())) == 10


def test_digits_small_run_on_the_engine() -> None:
    reports: list[dict] = []
    spec = DigitsSpec(epochs=2, hidden=16, train_size=1000, map_points=40, backend="numpy")
    result = _json(run_local(spec, numpy_ctx(report=reports.append)))
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 2000
    assert result["test_accuracy"] == pytest.approx(np.trace(confusion) / 2000)
    assert result["test_accuracy"] > 0.5  # far above chance (0.1) after 2 small epochs
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert result["history"][-1]["test_accuracy"] == pytest.approx(result["test_accuracy"])
    assert result["history"][1]["loss"] < result["history"][0]["loss"]
    for name in ("input_map", "hidden_map"):
        shown = result[name]
        assert shown["method"] == "pca"
        assert len(shown["x"]) == len(shown["y"]) == len(shown["label"]) == 40
    assert result["parameters"] == 784 * 16 + 16 + 16 * 10 + 10
    assert (result["backend"], result["device"]) == ("numpy", "cpu")
    epochs = [r["data"]["epoch"] for r in reports if "test_accuracy" in r["data"]]
    assert epochs == [1, 2]
    assert any("loss" in r["data"] and "test_accuracy" not in r["data"] for r in reports)


def test_digits_defaults_reach_the_issue_accuracy() -> None:
    result = run_local(DigitsSpec(backend="numpy"), numpy_ctx())
    assert result["test_accuracy"] >= 0.85
    assert len(result["input_map"]["x"]) == 500


def test_the_hidden_layer_separates_the_classes_better_than_the_pixels() -> None:
    # Fig. 6.3's point, measured: nearest class-centre accuracy in each 2-D PCA map
    result = run_local(DigitsSpec(epochs=2, map_points=1000, backend="numpy"), numpy_ctx())

    def centre_accuracy(shown: dict) -> float:
        points = np.stack([shown["x"], shown["y"]], axis=1)
        labels = np.array(shown["label"])
        centres = np.stack([points[labels == c].mean(axis=0) for c in range(10)])
        nearest = np.argmin(((points[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        return float(np.mean(nearest == labels))

    assert centre_accuracy(result["hidden_map"]) > centre_accuracy(result["input_map"])


def test_pca_map_matches_the_top_principal_components() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 5)) * np.array([5.0, 2.0, 0.5, 0.1, 0.1])
    coordinates = digits_kind.pca_map(points)
    centred = points - points.mean(axis=0)
    variances = np.linalg.eigvalsh(np.cov(centred.T))[::-1][:2]
    np.testing.assert_allclose(coordinates.var(axis=0, ddof=1), variances, rtol=1e-10)
    np.testing.assert_allclose(coordinates.mean(axis=0), 0.0, atol=1e-10)


def test_tsne_is_used_when_scikit_learn_is_importable(monkeypatch) -> None:
    calls: list[dict] = []

    class FakeTSNE:  # records how it is called; returns the first two columns
        def __init__(self, **kwargs):
            calls.append(kwargs)

        def fit_transform(self, points):
            return points[:, :2]

    manifold = types.ModuleType("sklearn.manifold")
    manifold.TSNE = FakeTSNE
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.manifold", manifold)
    points = np.arange(40.0).reshape(10, 4)
    method, coordinates = digits_kind.two_d_map(points, seed=3)
    assert method == "tsne"
    np.testing.assert_array_equal(coordinates, points[:, :2])
    assert calls[0]["n_components"] == 2 and calls[0]["random_state"] == 3
    assert calls[0]["perplexity"] < len(points)


# ----- sweep ----------------------------------------------------------------------------------
def test_sweep_small_grid() -> None:
    spec = SweepSpec(depths=[1, 2], widths=[2, 6], seeds=2, steps=300, backend="numpy")
    pieces = KINDS["sweep"].plan(spec)
    assert len(pieces) == 8 and pieces[0] == {"depth": 1, "width": 2, "seed": 0}
    result = _json(run_local(spec, numpy_ctx()))
    assert result["dataset"] == "spiral" and result["backend"] == "numpy"
    assert len(result["runs"]) == 8
    by_net = {(r["depth"], r["width"], r["seed"]): r for r in result["runs"]}
    assert by_net[(2, 6, 1)]["parameters"] == (2 * 6 + 6) + (6 * 6 + 6) + (6 + 1)
    assert by_net[(1, 2, 0)]["test_accuracy"] != by_net[(1, 2, 1)]["test_accuracy"] or (
        by_net[(1, 2, 0)]["train_loss"] != by_net[(1, 2, 1)]["train_loss"]
    )  # seeds differ
    assert [c["depth"] for c in result["curves"]] == [1, 2]
    for curve in result["curves"]:
        assert curve["widths"] == [2, 6]
        for width, mean, std in zip(curve["widths"], curve["test_accuracy"], curve["std"]):
            accuracies = [by_net[(curve["depth"], width, s)]["test_accuracy"] for s in (0, 1)]
            assert mean == pytest.approx(np.mean(accuracies))
            assert std == pytest.approx(np.std(accuracies))


def test_the_default_sweep_runs_and_capacity_helps() -> None:
    spec = parse_spec({"kind": "sweep", "backend": "numpy"})
    result = run_local(spec, numpy_ctx())
    assert len(result["runs"]) == 3 * 4 * 2
    best = max(max(c["test_accuracy"]) for c in result["curves"])
    smallest = result["curves"][0]["test_accuracy"][0]  # depth 1, width 2
    assert best > 0.9 and smallest < best - 0.1


def test_sweep_runs_a_multiclass_set_with_a_softmax_output() -> None:
    spec = SweepSpec(
        dataset="spiral_multiclass", depths=[1], widths=[8], seeds=1, steps=200, backend="numpy"
    )
    result = run_local(spec, numpy_ctx())
    assert result["runs"][0]["parameters"] == (2 * 8 + 8) + (8 * 3 + 3)
    assert result["runs"][0]["test_accuracy"] > 1 / 3


# ----- landscape ------------------------------------------------------------------------------
def _landscape(**fields) -> LandscapeSpec:
    return LandscapeSpec(config=SESSION, backend="numpy", **fields)


def test_landscape_cost_is_the_engine_cost_on_the_plane() -> None:
    spec = _landscape(resolution=7, span=0.5, rows_per_piece=3)
    assert KINDS["landscape"].plan(spec) == [{"rows": [0, 3]}, {"rows": [3, 6]}, {"rows": [6, 7]}]
    result = _json(run_local(spec, numpy_ctx()))
    cost = np.array(result["cost"])
    assert cost.shape == (7, 7)
    assert result["alphas"] == pytest.approx(np.linspace(-0.5, 0.5, 7).tolist())
    # the centre of the grid is the session's own point
    assert cost[3, 3] == pytest.approx(result["center_cost"], rel=1e-12)
    # an independent evaluation: the generic engine's J at θ + α d₁ + β d₂
    objective = NumpyObjective(SESSION, None)
    first, second, _ = landscape_kind.directions(spec, objective)
    model = load_model(SESSION, None)
    params = model.parameters()
    for i, j in [(0, 0), (2, 5), (6, 1)]:
        theta = objective.theta + result["alphas"][j] * first + result["betas"][i] * second
        for p, value in zip(params, unflatten(theta, [p.shape for p in params])):
            p.value = value
        with no_grad():
            expected = float(model.cost(objective.x, objective.y, l2=0.003, l1=0.001).value)
        assert cost[i, j] == pytest.approx(expected, rel=1e-12)
    # away from the centre the cost changes: the plane is not flat
    assert cost.max() - cost.min() > 1e-3


def test_landscape_pieces_combine_in_row_order() -> None:
    spec = _landscape(resolution=5, rows_per_piece=2)
    kind = KINDS["landscape"]
    partials = [kind.run(spec, piece, numpy_ctx()) for piece in kind.plan(spec)]
    forward = kind.combine(spec, partials)
    backward = kind.combine(spec, list(reversed(partials)))
    assert forward["cost"] == backward["cost"]
    assert len(forward["cost"]) == 5


def test_random_directions_are_filter_normalised() -> None:
    spec = _landscape(resolution=3)
    objective = NumpyObjective(SESSION, None)
    first, second, _ = landscape_kind.directions(spec, objective)
    shapes = objective.shapes
    for d in (first, second):
        for value, part, shape in zip(
            unflatten(objective.theta.copy(), shapes), unflatten(d, shapes), shapes
        ):
            if len(shape) == 2:
                np.testing.assert_allclose(
                    np.linalg.norm(part, axis=0), np.linalg.norm(value, axis=0), rtol=1e-12
                )
            else:
                assert not part.any()  # biases stay put
    assert not np.allclose(first, second)
    # another seed, other directions; the same seed, the same ones
    other, _, _ = landscape_kind.directions(_landscape(resolution=3, seed=1), objective)
    again, _, _ = landscape_kind.directions(spec, objective)
    assert not np.allclose(first, other)
    np.testing.assert_array_equal(first, again)


def test_hessian_directions_are_the_gradient_and_the_top_eigenvector() -> None:
    spec = _landscape(resolution=3, directions="hessian")
    objective = NumpyObjective(SESSION, None)
    first, second, info = landscape_kind.directions(spec, objective)
    scale = np.linalg.norm(objective.theta)
    gradient = objective.gradient()
    np.testing.assert_allclose(first, gradient / np.linalg.norm(gradient) * scale, rtol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(second), scale, rtol=1e-10)
    assert abs(first @ second) < 1e-8 * scale**2
    hessian = np.stack([objective.hvp(e) for e in np.eye(objective.size)], axis=1)
    values, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    top = vectors[:, -1]
    assert info["top_eigenvalue"] == pytest.approx(values[-1], rel=1e-8)
    # d₂ spans, with the gradient, the plane holding the top eigenvector
    g = first / scale
    across = top - (top @ g) * g
    np.testing.assert_allclose(abs(across @ second) / scale, np.linalg.norm(across), rtol=1e-6)


def test_the_path_is_projected_on_the_plane() -> None:
    objective = NumpyObjective(SESSION, None)
    spec = _landscape(resolution=5)
    first, second, _ = landscape_kind.directions(spec, objective)
    model = load_model(SESSION, None)
    names = [p.name for p in model.parameters()]
    wanted = [(0.0, 0.0), (0.3, -0.2), (-0.5, 0.7)]
    rng = np.random.default_rng(0)
    path = []
    for alpha, beta in wanted:
        # on the plane, plus a small part orthogonal to it (least squares drops it)
        off = rng.normal(size=objective.size) * 1e-3
        basis = np.stack([first, second], axis=1)
        off -= basis @ np.linalg.lstsq(basis, off, rcond=None)[0]
        theta = objective.theta + alpha * first + beta * second + off
        parts = unflatten(theta, objective.shapes)
        path.append({name: part.tolist() for name, part in zip(names, parts)})
    spec = _landscape(resolution=5, path=path)
    result = run_local(spec, numpy_ctx())
    np.testing.assert_allclose(np.array(result["path"]), np.array(wanted), atol=1e-9)
    # each snapshot's height on the surface: the cost at its point of the plane
    on_plane = [objective.theta + a * first + b * second for a, b in result["path"]]
    np.testing.assert_allclose(result["path_cost"], objective.values(np.stack(on_plane)))
    assert result["path_cost"][0] == pytest.approx(result["center_cost"])


def test_landscape_at_given_weights_differs_from_a_fresh_net() -> None:
    model = load_model(SESSION, None)
    weights = {name: (np.array(value) * 1.5).tolist() for name, value in model.state_dict().items()}
    fresh = run_local(_landscape(resolution=3), numpy_ctx())
    moved = run_local(_landscape(resolution=3, weights=weights), numpy_ctx())
    assert fresh["center_cost"] != pytest.approx(moved["center_cost"])
    objective = NumpyObjective(SESSION, weights)
    assert moved["center_cost"] == pytest.approx(float(objective.values(objective.theta)[0]))


# ----- spectrum -------------------------------------------------------------------------------
def test_spectrum_matches_the_exact_hessian() -> None:
    reports: list[dict] = []
    spec = SpectrumSpec(config=SESSION, k=4, iterations=40, backend="numpy")
    result = _json(run_local(spec, numpy_ctx(report=reports.append)))
    assert result["parameters"] == 31
    assert result["iterations"] == 31  # at most one step per parameter
    assert len(result["eigenvalues"]) == 4
    np.testing.assert_allclose(result["eigenvalues"], result["exact"], rtol=1e-8, atol=1e-10)
    assert result["eigenvalues"] == sorted(result["eigenvalues"], reverse=True)
    steps = [r["data"]["step"] for r in reports if "step" in r["data"]]
    assert steps == list(range(1, 32))
    # an independent exact spectrum: finite differences of the engine's gradient
    objective = NumpyObjective(SESSION, None)
    eps = 1e-5
    columns = []
    for i in range(objective.size):
        step = np.zeros(objective.size)
        step[i] = eps
        columns.append((_gradient(objective, step) - _gradient(objective, -step)) / (2 * eps))
    estimate = np.stack(columns, axis=1)
    expected = np.linalg.eigvalsh(0.5 * (estimate + estimate.T))[::-1][:4]
    np.testing.assert_allclose(result["eigenvalues"], expected, atol=1e-6)


def _gradient(objective: NumpyObjective, offset: np.ndarray) -> np.ndarray:
    from engine import grad

    model = load_model(SESSION, None)
    params = model.parameters()
    theta = objective.theta + offset
    for p, value in zip(params, unflatten(theta, [p.shape for p in params])):
        p.value = value
    cost = model.cost(objective.x, objective.y, l2=0.003, l1=0.001)
    return flatten([g.value for g in grad(cost, params)])


def test_spectrum_of_a_larger_net_has_no_exact_part() -> None:
    config = {**SESSION, "model": {"layers": [{"units": 20}, {"units": 20}]}}
    spec = SpectrumSpec(config=config, k=3, iterations=8, backend="numpy")
    result = run_local(spec, numpy_ctx())
    assert result["parameters"] == (2 * 20 + 20) + (20 * 20 + 20) + 21 > 400
    assert result["exact"] is None
    assert result["iterations"] == 8 and len(result["eigenvalues"]) == 3


# ----- cancellation ---------------------------------------------------------------------------
CANCEL_CASES = {
    "digits": DigitsSpec(epochs=3, hidden=16, train_size=2000, backend="numpy"),
    "sweep": SweepSpec(depths=[1, 2], widths=[4], seeds=1, steps=2000, backend="numpy"),
    "landscape": LandscapeSpec(config=SESSION, resolution=21, rows_per_piece=21, backend="numpy"),
    "spectrum": SpectrumSpec(
        config={**SESSION, "model": {"layers": [{"units": 20}, {"units": 20}]}},
        k=3,
        iterations=200,
        backend="numpy",
    ),
}


@pytest.mark.parametrize("name", sorted(CANCEL_CASES))
def test_cancelling_stops_the_job_at_its_next_check(name: str) -> None:
    spec = CANCEL_CASES[name]
    reports: list[dict] = []
    state = {"cancelled": False, "checks_after": 0}

    def report(message: dict) -> None:
        reports.append(message)
        state["cancelled"] = True  # cancel as soon as the first progress arrives

    def is_cancelled() -> bool:
        if state["cancelled"]:
            state["checks_after"] += 1
        return state["cancelled"]

    with pytest.raises(Cancelled):
        run_local(spec, Context(report, is_cancelled, backend="numpy"))
    assert len(reports) == 1  # nothing more was reported: it stopped at the next check
    assert state["checks_after"] == 1


def test_specs_round_trip_through_json_and_pickle() -> None:
    import pickle

    weights = load_model(SESSION, None).state_dict()
    for data in (
        {"kind": "digits", "epochs": 2},
        {"kind": "sweep", "depths": [1, 4], "activation": "relu"},
        {"kind": "landscape", "config": SESSION, "weights": weights, "path": [weights]},
        {"kind": "spectrum", "config": SESSION, "k": 3},
    ):
        spec = parse_spec(data)
        assert parse_spec(json.loads(spec.model_dump_json())) == spec
        assert pickle.loads(pickle.dumps(spec)) == spec  # how Dask ships it to a worker


def test_make_digits_converts_the_npm_package_layout(tmp_path) -> None:
    # the conversion script on a tiny package of the same layout: 2 digits per class
    import importlib.util
    from pathlib import Path

    script = Path(digits_kind.__file__).resolve().parent.parent / "data" / "make_digits.py"
    loader = importlib.util.spec_from_file_location("make_digits", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    folder = tmp_path / "src" / "digits"
    folder.mkdir(parents=True)
    for label in range(10):
        grey = np.zeros((2, 784))
        grey[0, label] = 1.0
        grey[1, 783 - label] = 0.502  # three decimals, as the package writes them
        (folder / f"{label}.json").write_text(json.dumps({"data": grey.reshape(-1).tolist()}))
    images, labels = module.convert(tmp_path)
    assert images.shape == (20, 28, 28) and images.dtype == np.uint8
    assert sorted(labels.tolist()) == sorted(list(range(10)) * 2)
    for image, label in zip(images.reshape(20, 784), labels.tolist()):
        if image[label] == 255:
            assert image.sum() == 255
        else:
            assert image[783 - label] == 128 and image.sum() == 128
    again, _ = module.convert(tmp_path)
    np.testing.assert_array_equal(again, images)  # the shuffle is fixed
    (folder / "3.json").write_text(json.dumps({"data": [0.5] * 100}))
    with pytest.raises(ValueError, match="digit 3"):
        module.convert(tmp_path)


def test_the_command_line_runs_a_job_and_names_bad_fields() -> None:
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    spec = {
        "kind": "sweep",
        "depths": [1],
        "widths": [3],
        "seeds": 1,
        "steps": 50,
        "backend": "numpy",
    }
    done = subprocess.run(
        [sys.executable, "-m", "jobs", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["runs"][0]["parameters"] == (2 * 3 + 3) + (3 + 1)
    assert "step" in done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "jobs"],
        input='{"kind": "digits", "epochs": 0}',
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "digits.epochs" in bad.stderr


def test_without_torch_auto_means_the_engine_and_torch_is_an_error(monkeypatch) -> None:
    import jobs.context

    monkeypatch.setattr(jobs.context, "torch_available", lambda: False)
    assert resolve_backend("auto") == ("numpy", "cpu")
    assert Context(backend="auto").backend == "numpy"
    with pytest.raises(ValueError, match="backend: 'torch' was asked for"):
        Context(backend="torch")
