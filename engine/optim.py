"""Gradient-based optimisers: SGD, momentum, Nesterov momentum, Adam; norm clipping.

Each optimiser updates its parameters' values in place from a list of gradient
arrays (one per parameter, in the same order), so the generic engine and the
layer-wise fast path share them.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autodiff import Tensor
from engine.spec import OPTIMIZERS, TrainingSpec


def clip_by_norm(grads: list[np.ndarray], max_norm: float) -> float:
    """Scale all gradients together so that their joint L2 norm is at most ``max_norm``
    (in place). Returns the norm before clipping."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads:
            g *= scale
    return norm


def _number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_training_spec(spec: TrainingSpec) -> None:
    """Raise ValueError naming the first field of ``spec`` that cannot train."""
    if spec.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"training.optimizer: unknown optimiser {spec.optimizer!r}; choose from {OPTIMIZERS}"
        )
    if not (
        _number(spec.learning_rate) and math.isfinite(spec.learning_rate) and spec.learning_rate > 0
    ):
        raise ValueError(
            f"training.learning_rate must be a positive number, got {spec.learning_rate!r}"
        )
    batch = spec.batch_size
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"training.batch_size must be a positive integer, got {batch!r}")
    for name in ("l2", "l1", "clip_norm"):
        value = getattr(spec, name)
        if not (_number(value) and math.isfinite(value) and value >= 0):
            raise ValueError(f"training.{name} must be a non-negative number, got {value!r}")
    for name in ("momentum", "beta1", "beta2"):
        value = getattr(spec, name)
        if not (_number(value) and 0 <= value < 1):
            raise ValueError(f"training.{name} must lie in [0, 1), got {value!r}")
    if not (_number(spec.epsilon) and math.isfinite(spec.epsilon) and spec.epsilon > 0):
        raise ValueError(f"training.epsilon must be a positive number, got {spec.epsilon!r}")


class Optimizer:
    def __init__(self, parameters: list[Tensor], spec: TrainingSpec):
        check_training_spec(spec)
        self.parameters = parameters
        self.spec = spec
        self.steps = 0
        self._velocity = [np.zeros_like(p.value) for p in parameters]
        self._second = (
            [np.zeros_like(p.value) for p in parameters] if spec.optimizer == "adam" else []
        )

    def step(self, grads: list[np.ndarray]) -> None:
        """θ ← θ − ε · (the optimiser's direction)."""
        if len(grads) != len(self.parameters):
            raise ValueError(f"{len(grads)} gradients for {len(self.parameters)} parameters")
        spec = self.spec
        rate = spec.learning_rate
        self.steps += 1
        kind = spec.optimizer
        if kind == "sgd":
            for p, g in zip(self.parameters, grads):
                p.value -= rate * g
        elif kind in ("momentum", "nesterov"):
            mu = spec.momentum
            for p, g, v in zip(self.parameters, grads, self._velocity):
                v *= mu
                v += g
                if kind == "momentum":
                    p.value -= rate * v
                else:  # look ahead along the velocity: θ ← θ − ε (g + μ v)
                    p.value -= rate * (g + mu * v)
        else:
            # Adam as Kingma and Ba published it (and as torch.optim.Adam computes it):
            # θ ← θ − ε m̂ / (√ŝ + δ) with bias-corrected moments m̂, ŝ
            beta1, beta2 = spec.beta1, spec.beta2
            correction1 = 1.0 - beta1**self.steps
            root_correction2 = math.sqrt(1.0 - beta2**self.steps)
            step_size = rate / correction1
            for p, g, m, s in zip(self.parameters, grads, self._velocity, self._second):
                m *= beta1
                m += (1.0 - beta1) * g
                s *= beta2
                s += (1.0 - beta2) * g * g
                denominator = np.sqrt(s)
                denominator /= root_correction2
                denominator += spec.epsilon
                p.value -= step_size * m / denominator
