"""The torch backend of the job kinds (CPU, float64) and its parity with the numpy engine:
the same seeds and weights give the same losses, gradients, Hessian-vector products,
training trajectories, landscape values and eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest

from engine.spec import ACTIVATIONS, Config
from jobs.backends.objective import NumpyObjective, TorchObjective
from jobs.context import Cancelled, Context, resolve_backend
from jobs.kinds import digits as digits_kind
from jobs.kinds import run_local
from jobs.kinds import sweep as sweep_kind
from jobs.specs import DigitsSpec, LandscapeSpec, SpectrumSpec, SweepSpec, load_model

torch = pytest.importorskip("torch")

TIGHT = {"rtol": 1e-9, "atol": 1e-11}
SESSION = {
    "model": {"layers": [{"units": 4, "activation": "tanh"}, {"units": 3, "activation": "tanh"}]},
    "training": {"l2": 0.003, "l1": 0.001},
    "data": {"name": "circle", "size": 120, "noise": 0.1},
}


def torch_ctx(**kwargs) -> Context:
    return Context(backend="torch", device="cpu", **kwargs)


def numpy_ctx(**kwargs) -> Context:
    return Context(backend="numpy", **kwargs)


def _config(activation: str, loss: str = "bernoulli", **extra) -> dict:
    data = {
        "bernoulli": {"name": "moons", "size": 80, "noise": 0.2},
        "softmax": {"name": "spiral_multiclass", "size": 90, "classes": 3, "noise": 0.1},
        "squared": {"name": "ripple_2d", "size": 80, "noise": 0.1},
        "absolute": {"name": "ripple_2d", "size": 80, "noise": 0.1},
        "gaussian": {"name": "ripple_2d", "size": 80, "noise": 0.1},
        "gaussian_learned": {"name": "heteroscedastic_1d", "size": 80, "noise": 0.3},
        "mixture": {"name": "inverse_sine", "size": 80, "noise": 0.1},
    }[loss]
    one_input = data["name"] in ("heteroscedastic_1d", "inverse_sine")
    features = ["x1"] if one_input else ["x1", "x2", "x1_x2", "sin_x1"]
    return {
        "model": {
            "features": features,
            "layers": [
                {"units": 5, "activation": activation, "slope": 0.2, "pieces": 3},
                {"units": 3, "activation": activation, "slope": 0.2, "pieces": 3},
            ],
            "output": {"loss": loss, "precision": 2.0, "components": 2},
            "seed": 7,
        },
        "training": extra.pop("training", {"l2": 0.01, "l1": 0.002}),
        "data": data,
    }


PARITY = [(a, "bernoulli") for a in ACTIVATIONS] + [
    ("tanh", loss)
    for loss in ("softmax", "squared", "absolute", "gaussian", "gaussian_learned", "mixture")
]


def test_auto_takes_torch_on_a_gpu_and_the_engine_on_a_cpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_backend("auto") == ("numpy", "cpu")
    assert resolve_backend("torch") == ("torch", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_backend("auto") == ("torch", "cuda")
    assert resolve_backend("torch") == ("torch", "cuda")


@pytest.mark.parametrize(("activation", "loss"), PARITY)
def test_same_cost_gradient_and_hvp_on_both_backends(activation: str, loss: str) -> None:
    config = _config(activation, loss)
    engine_side = NumpyObjective(config, None)
    torch_side = TorchObjective(config, None, "cpu")
    rng = np.random.default_rng(1)
    thetas = engine_side.theta + 0.1 * rng.standard_normal((3, engine_side.size))
    np.testing.assert_allclose(torch_side.values(thetas), engine_side.values(thetas), **TIGHT)
    np.testing.assert_allclose(torch_side.gradient(), engine_side.gradient(), **TIGHT)
    assert np.abs(engine_side.gradient()).max() > 1e-6  # a real gradient, not zeros
    v = rng.standard_normal(engine_side.size)
    np.testing.assert_allclose(torch_side.hvp(v), engine_side.hvp(v), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    ("activation", "optimizer", "training"),
    [
        ("tanh", "sgd", {}),
        ("relu", "adam", {"l2": 0.01}),
        ("prelu", "momentum", {"clip_norm": 0.5}),
        ("maxout", "nesterov", {"l1": 0.003}),
        ("rbf", "adam", {}),  # the generic engine trains RBF units (no fast path)
    ],
)
def test_same_training_trajectory_on_both_backends(
    activation: str, optimizer: str, training: dict
) -> None:
    raw = _config(
        activation,
        training={"optimizer": optimizer, "learning_rate": 0.02, "batch_size": 16, **training},
    )
    config = Config.from_dict(raw)
    steps = 60  # more than an epoch of 40 training points: the reshuffle is the same too
    engine_run = sweep_kind.train_numpy(config, steps, numpy_ctx())
    torch_run = sweep_kind.train_torch(config, steps, torch_ctx())
    assert len(engine_run["losses"]) == len(torch_run["losses"]) == steps
    np.testing.assert_allclose(torch_run["losses"], engine_run["losses"], **TIGHT)
    assert torch_run["train_loss"] == pytest.approx(engine_run["train_loss"], rel=1e-9)
    assert torch_run["test_accuracy"] == engine_run["test_accuracy"]
    assert torch_run["parameters"] == engine_run["parameters"]


def test_digits_training_is_the_same_on_both_backends() -> None:
    spec = DigitsSpec(epochs=2, hidden=12, train_size=300, batch_size=25, seed=4)
    engine_weights, engine_history = digits_kind.train_numpy(spec, numpy_ctx())
    torch_weights, torch_history = digits_kind.train_torch(spec, torch_ctx())
    for a, b in zip(engine_weights, torch_weights):
        np.testing.assert_allclose(b, a, **TIGHT)
    for a, b in zip(engine_history, torch_history):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-10)
        assert b["test_accuracy"] == a["test_accuracy"]


def test_digits_small_run_on_torch() -> None:
    spec = DigitsSpec(epochs=1, hidden=16, train_size=500, map_points=30, backend="torch")
    result = run_local(spec, torch_ctx())
    assert (result["backend"], result["device"]) == ("torch", "cpu")
    assert np.array(result["confusion"]).sum() == 2000
    assert result["test_accuracy"] > 0.4
    assert len(result["hidden_map"]["x"]) == 30
    engine_result = run_local(spec.model_copy(update={"backend": "numpy"}), numpy_ctx())
    assert result["confusion"] == engine_result["confusion"]
    np.testing.assert_allclose(
        result["hidden_map"]["x"], engine_result["hidden_map"]["x"], atol=1e-4
    )


def test_sweep_small_grid_on_torch_matches_the_engine() -> None:
    spec = SweepSpec(depths=[1, 2], widths=[3], seeds=2, steps=120)
    on_torch = run_local(spec.model_copy(update={"backend": "torch"}), torch_ctx())
    on_engine = run_local(spec.model_copy(update={"backend": "numpy"}), numpy_ctx())
    assert on_torch["backend"] == "torch" and on_engine["backend"] == "numpy"
    for a, b in zip(on_engine["runs"], on_torch["runs"]):
        assert (a["depth"], a["width"], a["seed"]) == (b["depth"], b["width"], b["seed"])
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-9)
        assert b["test_accuracy"] == a["test_accuracy"]


@pytest.mark.parametrize("directions", ["random", "hessian"])
def test_landscape_is_the_same_on_both_backends(directions: str) -> None:
    model = load_model(SESSION, None)
    snapshot = {k: (np.array(v) * 0.9).tolist() for k, v in model.state_dict().items()}
    spec = LandscapeSpec(
        config=SESSION,
        directions=directions,
        resolution=9,
        span=0.8,
        rows_per_piece=4,
        path=[model.state_dict(), snapshot],
    )
    on_torch = run_local(spec, torch_ctx())
    on_engine = run_local(spec, numpy_ctx())
    assert on_torch["backend"] == "torch"
    np.testing.assert_allclose(on_torch["cost"], on_engine["cost"], **TIGHT)
    assert on_torch["center_cost"] == pytest.approx(on_engine["center_cost"], rel=1e-12)
    np.testing.assert_allclose(on_torch["path"], on_engine["path"], atol=1e-8)
    np.testing.assert_allclose(on_engine["path"][0], [0.0, 0.0], atol=1e-12)


def test_spectrum_is_the_same_on_both_backends() -> None:
    spec = SpectrumSpec(config=SESSION, k=5, iterations=20)
    on_torch = run_local(spec, torch_ctx())
    on_engine = run_local(spec, numpy_ctx())
    assert on_torch["backend"] == "torch" and on_torch["iterations"] == 20
    np.testing.assert_allclose(
        on_torch["eigenvalues"], on_engine["eigenvalues"], rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(on_torch["exact"], on_engine["exact"], rtol=1e-8, atol=1e-10)
    # torch's own Hessian, formed by torch.autograd.functional.hessian, agrees
    objective = TorchObjective(SESSION, None, "cpu")
    theta = torch.tensor(objective.theta)

    def cost(flat):
        from jobs.backends import torch_net as tn

        return tn.cost(
            objective.spec,
            objective._split(flat),
            objective.features,
            objective.y,
            objective.l2,
            objective.l1,
        )

    hessian = torch.autograd.functional.hessian(cost, theta).numpy()
    expected = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))[::-1][:5]
    np.testing.assert_allclose(on_torch["exact"], expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", ["digits", "spectrum", "landscape", "sweep"])
def test_cancelling_a_torch_job(kind: str) -> None:
    spec = {
        "digits": DigitsSpec(epochs=3, hidden=16, train_size=2000, backend="torch"),
        "spectrum": SpectrumSpec(config=SESSION, k=3, iterations=30, backend="torch"),
        "landscape": LandscapeSpec(
            config=SESSION, resolution=15, rows_per_piece=15, backend="torch"
        ),
        "sweep": SweepSpec(depths=[1], widths=[4], seeds=1, steps=1000, backend="torch"),
    }[kind]
    reports: list[dict] = []
    with pytest.raises(Cancelled):
        run_local(spec, torch_ctx(report=reports.append, is_cancelled=lambda: bool(reports)))
    assert len(reports) == 1


def test_both_backends_stop_a_diverging_net_at_the_same_step() -> None:
    config = Config.from_dict(
        {
            "model": {
                "layers": [{"units": 8, "activation": "relu"}, {"units": 8, "activation": "relu"}],
                "output": {"loss": "squared"},
            },
            "training": {"learning_rate": 50.0, "batch_size": 10},
            "data": {"name": "ripple_2d", "size": 100},
        }
    )
    engine_run = sweep_kind.train_numpy(config, 200, numpy_ctx())
    torch_run = sweep_kind.train_torch(config, 200, torch_ctx())
    assert engine_run["diverged"] and torch_run["diverged"]
    assert "diverged at step" in torch_run["diverged"]
    assert 1 < len(torch_run["losses"]) == len(engine_run["losses"]) < 200
    np.testing.assert_allclose(torch_run["losses"], engine_run["losses"], rtol=1e-9)


def test_every_kind_runs_in_float32_as_on_a_gpu(monkeypatch) -> None:
    # on CUDA the torch backend computes in float32; no GPU here, so run that precision on
    # the CPU: no dtype clash anywhere, and results close to the float64 ones
    from jobs.backends import torch_net as tn

    specs = [
        DigitsSpec(epochs=1, hidden=16, train_size=500, map_points=20, backend="torch"),
        SweepSpec(depths=[1], widths=[4], seeds=1, steps=100, backend="torch"),
        LandscapeSpec(
            config=SESSION,
            resolution=5,
            directions="hessian",
            backend="torch",
            path=[load_model(SESSION, None).state_dict()],
        ),
        SpectrumSpec(config=SESSION, k=3, iterations=20, backend="torch"),
    ]
    in_float64 = [run_local(spec, torch_ctx()) for spec in specs]
    monkeypatch.setattr(tn, "dtype_for", lambda device: torch.float32)
    in_float32 = [run_local(spec, torch_ctx()) for spec in specs]
    digits64, sweep64, landscape64, spectrum64 = in_float64
    digits32, sweep32, landscape32, spectrum32 = in_float32
    assert abs(digits32["test_accuracy"] - digits64["test_accuracy"]) < 0.02
    assert sweep32["runs"][0]["train_loss"] == pytest.approx(
        sweep64["runs"][0]["train_loss"], rel=1e-3
    )
    np.testing.assert_allclose(landscape32["cost"], landscape64["cost"], rtol=1e-4)
    np.testing.assert_allclose(
        spectrum32["eigenvalues"], spectrum64["eigenvalues"], rtol=1e-3, atol=1e-5
    )
    np.testing.assert_allclose(spectrum32["exact"], spectrum64["exact"], rtol=1e-3, atol=1e-5)
