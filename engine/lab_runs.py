"""The runs of labs 1-4: each builds its data and network(s), trains for a bounded number of
steps with ``engine.lab_training.train`` and returns JSON-able snapshots plus the measured
``outcome`` the page compares with the learner's prediction (never a fixed answer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.autodiff import no_grad
from engine.conditional import binned_statistics, mean_gap
from engine.datasets import make_dataset
from engine.lab_training import drawn, hidden_activations, output_weights, train
from engine.nn import MLP, output_loss
from engine.output_units import (
    bernoulli_data,
    bernoulli_truth,
    distribution,
    softmax_data,
    softmax_truth,
)
from engine.saturation import (
    CONFIDENTLY_WRONG,
    correct_class,
    gradient_curve,
    softmax_squared_error,
    three_blobs,
)
from engine.spec import DataSpec, LayerSpec, ModelSpec, OutputSpec, TrainingSpec

GRID_POINTS = 121
SHOWN_EXAMPLES = 150  # per-example points drawn in lab 3


def _grid(low: float = -3.0, high: float = 3.0) -> np.ndarray:
    return np.linspace(low, high, GRID_POINTS).reshape(-1, 1)


def _curve(model: MLP, grid: np.ndarray) -> list[float]:
    with no_grad():
        return drawn(model.forward(grid).value[:, 0])


def _loss_of(model: MLP):
    return lambda z, y: output_loss(model.spec.output, z, y)


def _weight_norm(model: MLP) -> float:
    """‖ω‖²: the squared norm of the weights W and V (Example 6.1.1's penalty)."""
    return float(sum((w.value**2).sum() for w in model.weight_tensors()))


def _points(x: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    return {"x": drawn(x[:, 0]), "y": drawn(y)}


# ----- lab 1: Example 6.1.1 ------------------------------------------------------------
def shallow_regression(hidden: int, l2: float, learning_rate: float, steps: int,
                       noise: float, size: int, snapshots: int, seed: int) -> dict[str, Any]:
    """Sigmoid hidden layer, linear output, squared error + λ‖ω‖² (weights only), SGD; the
    same run with λ = 0 is the reference the prediction is judged against."""
    data = make_dataset(DataSpec(name="sine_1d", size=size, noise=noise, train_fraction=0.75,
                                 seed=seed))
    grid = _grid()

    def run(penalty: float):
        spec = ModelSpec(features=["x1"], layers=[LayerSpec(hidden, "sigmoid")],
                         output=OutputSpec(loss="squared"), seed=seed)
        model = MLP(spec, input_dim=1)
        training = TrainingSpec(optimizer="sgd", learning_rate=learning_rate, batch_size=10,
                                l2=penalty)
        result = train(model, data.x_train, data.y_train, _loss_of(model), training, steps,
                       snapshots, lambda m: {"fit": _curve(m, grid),
                                             "units": hidden_activations(m, grid),
                                             "output_weights": output_weights(m),
                                             "weight_norm": _weight_norm(m)}, seed)
        return model, result

    model, result = run(l2)
    reference_model, reference = run(0.0)
    final, base = result.snapshots[-1], reference.snapshots[-1]
    change = (final["loss"] - base["loss"]) / max(base["loss"], 1e-12)
    norm_ratio = final["weight_norm"] / max(base["weight_norm"], 1e-12)
    if change > 0.02 and norm_ratio < 0.9:
        answer = "smoother"
    elif change < -0.02:
        answer = "closer"
    else:
        answer = "same"
    return {
        "grid": grid[:, 0].tolist(), "train": _points(data.x_train, data.y_train),
        "snapshots": result.snapshots, "reference_fit": base["fit"],
        "outcome": {"answer": answer, "loss": final["loss"], "reference_loss": base["loss"],
                    "loss_change": change, "weight_norm": final["weight_norm"],
                    "reference_weight_norm": base["weight_norm"], "l2": l2},
    }


# ----- lab 2: conditional mean and median (sections 6.2 and 6.3.2) ----------------------
def conditional_statistics(hidden: int, learning_rate: float, steps: int, noise: float,
                           size: int, bins: int, snapshots: int, seed: int) -> dict[str, Any]:
    """The same skewed data fitted with squared error and with absolute error, beside the
    binned mean and median of the data."""
    data = make_dataset(DataSpec(name="skewed_1d", size=size, noise=noise, train_fraction=0.75,
                                 seed=seed))
    grid = _grid()
    runs = {}
    for loss in ("squared", "absolute"):
        spec = ModelSpec(features=["x1"], layers=[LayerSpec(hidden, "tanh")],
                         output=OutputSpec(loss=loss), seed=seed)
        model = MLP(spec, input_dim=1)
        training = TrainingSpec(optimizer="adam", learning_rate=learning_rate, batch_size=20)
        runs[loss] = train(model, data.x_train, data.y_train, _loss_of(model), training, steps,
                           snapshots, lambda m: {"fit": _curve(m, grid)}, seed).snapshots
    binned = binned_statistics(data.x_train[:, 0], data.y_train, bins, -3.0, 3.0)
    centres = binned.centres

    def at_centres(fit: list[float]) -> np.ndarray:
        return np.interp(centres, grid[:, 0], np.asarray(fit))

    squared_fit = at_centres(runs["squared"][-1]["fit"])
    absolute_fit = at_centres(runs["absolute"][-1]["fit"])
    above = float(np.mean(np.asarray(runs["squared"][-1]["fit"])
                          - np.asarray(runs["absolute"][-1]["fit"])))
    answer = "squared" if above > 0.02 else "absolute" if above < -0.02 else "same"
    snapshots = [
        {"step": sq["step"], "squared": sq["fit"], "absolute": ab["fit"],
         "squared_loss": sq["loss"], "absolute_loss": ab["loss"]}
        for sq, ab in zip(runs["squared"], runs["absolute"])
    ]

    def listed(values: np.ndarray) -> list[float | None]:
        return [None if not np.isfinite(v) else float(v) for v in values]

    return {
        "grid": grid[:, 0].tolist(), "train": _points(data.x_train, data.y_train),
        "bins": {"centres": centres.tolist(), "mean": listed(binned.mean),
                 "median": listed(binned.median), "counts": binned.counts.tolist()},
        "snapshots": snapshots,
        "outcome": {
            "answer": answer, "squared_above_absolute": above,
            "squared_to_mean": mean_gap(squared_fit, binned.mean),
            "squared_to_median": mean_gap(squared_fit, binned.median),
            "absolute_to_mean": mean_gap(absolute_fit, binned.mean),
            "absolute_to_median": mean_gap(absolute_fit, binned.median),
        },
    }


# ----- lab 3: softmax with NLL against softmax with squared error (section 6.3.2) -------
def _saturating_run(loss: str, x: np.ndarray, y: np.ndarray, shown: np.ndarray, hidden: int,
                    init_scale: float, training: TrainingSpec, steps: int, snapshots: int,
                    seed: int) -> list[dict[str, Any]]:
    spec = ModelSpec(features=["x1", "x2"], layers=[LayerSpec(hidden, "tanh")],
                     output=OutputSpec(loss="softmax"), init_scale=init_scale, seed=seed)
    model = MLP(spec, input_dim=2, classes=3)
    function = _loss_of(model) if loss == "nll" else softmax_squared_error

    def probe(m: MLP) -> dict[str, Any]:
        with no_grad():
            logits = m.forward(x).value
        parts = correct_class(logits, y)
        return {
            "wrong": int((parts["probability"] < CONFIDENTLY_WRONG).sum()),
            "accuracy": float(np.mean(np.argmax(logits, axis=1) == y)),
            "score": drawn(parts["score"][shown]),
            "gradient": drawn(parts[loss][shown]),
        }

    return train(model, x, y, function, training, steps, snapshots, probe, seed).snapshots


def saturating_losses(hidden: int, init_scale: float, learning_rate: float, steps: int,
                      size: int, spread: float, snapshots: int, seed: int) -> dict[str, Any]:
    """One network, two copies of its initial weights, trained with −log p_y and with
    ‖p − e_y‖²; per-example gradients on the correct class's score as they learn."""
    x, y = three_blobs(size, spread, seed)
    shown = np.arange(min(size, SHOWN_EXAMPLES))
    training = TrainingSpec(optimizer="sgd", learning_rate=learning_rate, batch_size=10)
    runs = {
        loss: _saturating_run(loss, x, y, shown, hidden, init_scale, training, steps,
                              snapshots, seed)
        for loss in ("nll", "squared")
    }
    scores = np.linspace(-12.0, 12.0, GRID_POINTS)
    curve = gradient_curve(scores, np.zeros(2))
    nll_wrong, squared_wrong = runs["nll"][-1]["wrong"], runs["squared"][-1]["wrong"]
    answer = ("squared" if squared_wrong > nll_wrong else "nll" if nll_wrong > squared_wrong
              else "same")
    return {
        "points": {"x": x[shown].tolist(), "label": y[shown].astype(int).tolist()},
        "curve": {"score": scores.tolist(), "nll": curve["nll"].tolist(),
                  "squared": curve["squared"].tolist()},
        "snapshots": [{"step": a["step"], "nll": a, "squared": b}
                      for a, b in zip(runs["nll"], runs["squared"])],
        "outcome": {"answer": answer, "nll_wrong": nll_wrong, "squared_wrong": squared_wrong,
                    "start_wrong": runs["nll"][0]["wrong"], "size": size,
                    "nll_accuracy": runs["nll"][-1]["accuracy"],
                    "squared_accuracy": runs["squared"][-1]["accuracy"],
                    "threshold": CONFIDENTLY_WRONG},
    }


# ----- lab 4: output units as conditional distributions (section 6.3.2) ------------------
UNITS = ("bernoulli", "softmax", "gaussian_learned", "mixture")


def _unit_data(unit: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The lab's training data for each output unit: 1-D inputs whose p(y | x) the unit can
    model (known exactly for the Bernoulli and softmax units)."""
    if unit == "bernoulli":
        return bernoulli_data(size, seed)
    if unit == "softmax":
        return softmax_data(size, seed)
    name = "heteroscedastic_1d" if unit == "gaussian_learned" else "inverse_sine"
    data = make_dataset(DataSpec(name=name, size=size, noise=0.3 if unit != "mixture" else 0.0,
                                 train_fraction=0.75, seed=seed))
    return data.x_train, data.y_train


def output_units(unit: str, hidden: int, components: int, clip: bool, clip_norm: float,
                 learning_rate: float, steps: int, size: int, snapshots: int,
                 seed: int) -> dict[str, Any]:
    """Train one output unit by maximum likelihood and draw the p(y | x) it stands for."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    x, y = _unit_data(unit, size, seed)
    low, high = float(x.min()), float(x.max())
    grid = _grid(low, high)
    classes = 3 if unit == "softmax" else 2
    spec = ModelSpec(features=["x1"], layers=[LayerSpec(hidden, "tanh")],
                     output=OutputSpec(loss=unit, components=components), seed=seed)
    model = MLP(spec, input_dim=1, classes=classes)
    training = TrainingSpec(optimizer="adam", learning_rate=learning_rate, batch_size=20,
                            clip_norm=clip_norm if clip else 0.0)
    result = train(model, x, y, _loss_of(model), training, steps, snapshots,
                   lambda m: distribution(m, grid), seed)
    final = result.snapshots[-1]
    xs = grid[:, 0]
    outcome: dict[str, Any] = {"unit": unit, "loss": final["loss"],
                               "clipped_steps": result.clipped_steps,
                               "largest_gradient_norm": result.largest_gradient_norm}
    truth: dict[str, Any] = {}
    if unit == "bernoulli":
        right = xs > high - 0.5
        learned = float(np.mean(np.asarray(final["probability"])[right]))
        frequency = float(np.mean(bernoulli_truth(xs[right])))
        options = {"one": 1.0, "frequency": frequency, "half": 0.5}
        outcome.update(learned=learned, frequency=frequency,
                       answer=min(options, key=lambda k: abs(options[k] - learned)))
        truth = {"probability": bernoulli_truth(xs).tolist()}
    elif unit == "softmax":
        p = np.asarray(final["probabilities"]).T
        entropy = -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1)
        where = float(xs[int(np.argmax(entropy))])
        true_p = softmax_truth(xs)
        top = np.argmax(true_p, axis=1)
        boundaries = xs[np.where(np.diff(top) != 0)[0]]
        near = bool(boundaries.size) and float(np.min(np.abs(boundaries - where))) < 0.75
        answer = "boundaries" if near else ("edges" if abs(where) > 2.0 else "middles")
        outcome.update(answer=answer, least_sure_at=where, boundaries=boundaries.tolist())
        truth = {"probabilities": true_p.T.tolist()}
    elif unit == "gaussian_learned":
        precision = np.asarray(final["precision"])
        ratio = float(precision.max() / precision.min())
        where = float(xs[int(np.argmax(precision))])
        answer = "same" if ratio < 1.5 else ("left" if where < 0 else "right")
        outcome.update(answer=answer, largest_precision_at=where, ratio=ratio)
    else:
        middle = int(np.argmin(np.abs(xs - 0.0)))
        weights = np.asarray(final["weights"])[:, middle]
        carried = int((weights > 0.15).sum())
        outcome.update(answer=str(min(carried, 3)), carried=carried,
                       middle_weights=weights.tolist())
    return {"unit": unit, "grid": xs.tolist(), "train": _points(x, y), "truth": truth,
            "snapshots": result.snapshots, "outcome": outcome}
