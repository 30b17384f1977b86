"""Named starting points for the playground (GET /api/presets).

Each preset is a whole config (``engine.spec.Config`` as JSON) that a client loads with
``{"type": "configure", "config": ...}``. The first screen trains ``circle``.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.spec import Config


def _layers(*units: int, activation: str = "tanh") -> list[dict[str, Any]]:
    return [{"units": u, "activation": activation} for u in units]


def _config(
    layers: list[dict[str, Any]],
    data: dict[str, Any],
    loss: str = "bernoulli",
    features: tuple[str, ...] = ("x1", "x2"),
    **training: Any,
) -> dict[str, Any]:
    training = {"optimizer": "sgd", "learning_rate": 0.03, "batch_size": 10, **training}
    return Config.from_dict({
        "model": {"features": list(features), "layers": layers, "output": {"loss": loss}},
        "training": training,
        "data": {"size": 500, "noise": 0.0, "train_fraction": 0.5, **data},
    }).to_dict()


PRESETS: list[dict[str, Any]] = [
    {
        "name": "circle",
        "title": "Circle, [4, 2] tanh",
        "description": "TensorFlow Playground's default: two tanh layers of 4 and 2 units "
        "separate a disc from the ring around it.",
        "config": _config(_layers(4, 2), {"name": "circle"}),
    },
    {
        "name": "fig_6_2",
        "title": "Fig. 6.2: two curves, 2 tanh units",
        "description": "After the chapter's Fig. 6.2: 2 inputs, 2 hidden units and one output "
        "(tanh units and a sigmoid output here). No line separates the two curves in the "
        "input space; the hidden layer warps the plane until one does.",
        "config": _config(_layers(2), {"name": "two_curves", "size": 200},
                          learning_rate=0.1),
    },
    {
        "name": "xor",
        "title": "XOR, [4] tanh",
        "description": "The sign of x₁·x₂: no line separates the classes, so a linear "
        "model fails; one hidden layer of 4 tanh units succeeds.",
        "config": _config(_layers(4), {"name": "xor"}, learning_rate=0.1),
    },
    {
        "name": "deep_spiral",
        "title": "Spiral, 6 × 8 tanh",
        "description": "Two interleaved spirals: six tanh layers of 8 units, trained with "
        "Adam, unroll them layer by layer.",
        "config": _config(_layers(8, 8, 8, 8, 8, 8), {"name": "spiral", "noise": 0.1},
                          optimizer="adam", learning_rate=0.01),
    },
    {
        "name": "spiral_3",
        "title": "3-class spiral, softmax",
        "description": "Three spiral arms, one class each: a softmax output over 3 units "
        "(Eq. 6.4) after two ReLU layers.",
        "config": _config(_layers(16, 16, activation="relu"),
                          {"name": "spiral_multiclass", "classes": 3, "noise": 0.1},
                          loss="softmax", optimizer="adam", learning_rate=0.01),
    },
    {
        "name": "sine",
        "title": "Regression: sine, squared error",
        "description": "1-D regression: squared error makes the network estimate the "
        "conditional mean E[y | x].",
        "config": _config(_layers(8, 8), {"name": "sine_1d", "noise": 0.2, "size": 200},
                          loss="squared", features=("x1",), optimizer="adam",
                          learning_rate=0.01),
    },
    {
        "name": "mixture",
        "title": "Mixture density: inverse sine",
        "description": "Several targets share one input: a mixture density output "
        "(section 6.3.2) models the peaks of p(y | x) that a single Gaussian averages.",
        "config": _config(_layers(16, 16), {"name": "inverse_sine", "size": 400},
                          loss="mixture", features=("x1",), optimizer="adam",
                          learning_rate=0.01),
    },
    # ----- presets of the chapter's own examples (issue 14) -----
    {
        "name": "example_6_1_1",
        "title": "Example 6.1.1: shallow regression (Fig. 6.1)",
        "description": "The chapter's classic shallow network: one layer of 8 sigmoid "
        "hidden units, a linear output, squared error plus an L2 penalty on the weights "
        "W and V only (the offsets are not penalised), trained by plain stochastic "
        "gradient descent on a noisy sine.",
        "config": _config(_layers(8, activation="sigmoid"),
                          {"name": "sine_1d", "noise": 0.2, "size": 200},
                          loss="squared", features=("x1",), learning_rate=0.3, l2=0.001),
    },
    {
        "name": "mean_median",
        "title": "Mean against median: absolute error",
        "description": "The noise here only pushes targets upwards. Absolute error pulls "
        "the curve to the middle of the points at each x, their median, which sits below "
        "their mean; switch the loss to squared error and watch the curve rise to the "
        "mean.",
        "config": _config(_layers(16), {"name": "skewed_1d", "noise": 0.5, "size": 400},
                          loss="absolute", features=("x1",), optimizer="adam",
                          learning_rate=0.01),
    },
    {
        "name": "learned_precision",
        "title": "Learned precision: growing noise",
        "description": "The spread of the targets grows from left to right. Besides the "
        "mean, the network outputs a precision β(x) = softplus(a) > 0 and is trained on "
        "the Gaussian negative log-likelihood, so it learns to be confident on the left "
        "and unsure on the right.",
        "config": _config(_layers(16), {"name": "heteroscedastic_1d", "noise": 0.3,
                                        "size": 400},
                          loss="gaussian_learned", features=("x1",), optimizer="adam",
                          learning_rate=0.01),
    },
]

PRESET_NAMES = [preset["name"] for preset in PRESETS]


def preset(name: str) -> dict[str, Any]:
    """A copy of the named preset: callers may change it without changing PRESETS."""
    for entry in PRESETS:
        if entry["name"] == name:
            return copy.deepcopy(entry)
    raise KeyError(name)


def default_config() -> Config:
    return Config.from_dict(preset("circle")["config"])
