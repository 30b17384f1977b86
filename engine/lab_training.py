"""Bounded training runs for the guided labs: minibatch steps on given data with a given
loss, recording snapshots of what a lab draws along the way.

The playground's ``Trainer`` trains on the named datasets with the losses of the spec; a
lab also needs data whose true conditional distribution it knows and losses the spec does
not offer (softmax followed by squared error, lab 3), so this loop takes both as
arguments. Gradients come from the engine's autodiff; the cost is J = L + Ω with the
penalty on weights only (Example 6.1.1); clipping and optimisers are the engine's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.autodiff import Tensor, grad, no_grad
from engine.nn import MLP
from engine.optim import Optimizer, clip_by_norm
from engine.spec import TrainingSpec

LossFunction = Callable[[Tensor, np.ndarray], Tensor]
Probe = Callable[[MLP], dict[str, Any]]


class LabDiverged(ValueError):
    """The loss or a weight stopped being finite; says at which step and what to change."""


@dataclass
class Run:
    """What a lab's run returns: one snapshot per recorded step, and the clipping counts."""

    snapshots: list[dict[str, Any]] = field(default_factory=list)
    clipped_steps: int = 0
    largest_gradient_norm: float = 0.0


def snapshot_steps(steps: int, snapshots: int) -> list[int]:
    """The steps at which a run records a snapshot, from 0 to ``steps``: spaced as t² for
    evenly spaced t, so denser at the start, where a network changes fastest."""
    if steps < 1 or snapshots < 2:
        raise ValueError("a run needs at least 1 step and 2 snapshots")
    marks = np.unique(np.round(steps * np.linspace(0.0, 1.0, snapshots) ** 2).astype(int))
    return [int(mark) for mark in marks]


def train(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    loss: LossFunction,
    training: TrainingSpec,
    steps: int,
    snapshots: int,
    probe: Probe,
    seed: int = 0,
) -> Run:
    """Train ``model`` on (x, y) for ``steps`` minibatch updates, calling ``probe(model)``
    at each snapshot step; each snapshot also holds the step and the full training loss."""
    parameters = model.parameters()
    optimizer = Optimizer(parameters, training)
    rng = np.random.default_rng(seed)
    features = model.features(x)
    count = features.shape[0]
    order = rng.permutation(count)
    position = 0
    marks = set(snapshot_steps(steps, snapshots))
    run = Run()

    def record(step: int) -> None:
        with no_grad():
            full = float(loss(model.forward(x), y).value)
        run.snapshots.append({"step": step, "loss": full, **probe(model)})

    record(0)
    for step in range(1, steps + 1):
        stop = min(position + training.batch_size, count)
        index = order[position:stop]
        position = stop
        if position >= count:
            position = 0
            order = rng.permutation(count)
        cost = loss(model.forward(x[index]), y[index])
        value = float(cost.value)
        penalty = model.penalty(training.l2, training.l1)
        if penalty is not None:
            cost = cost + penalty
        grads = [g.value for g in grad(cost, parameters)]
        if not math.isfinite(value) or not all(np.isfinite(g).all() for g in grads):
            raise LabDiverged(
                f"training diverged at step {step}: the loss or its gradient stopped being "
                f"finite; lower the learning rate (now {training.learning_rate:g}) or turn "
                "on gradient clipping"
            )
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        run.largest_gradient_norm = max(run.largest_gradient_norm, norm)
        if training.clip_norm and norm > training.clip_norm:
            clip_by_norm(grads, training.clip_norm)
            run.clipped_steps += 1
        optimizer.step(grads)
        if not all(np.isfinite(p.value).all() for p in parameters):
            raise LabDiverged(
                f"training diverged at step {step}: a weight became infinite; lower the "
                f"learning rate (now {training.learning_rate:g}) or turn on gradient clipping"
            )
        if step in marks:
            record(step)
    return run


def drawn(values: np.ndarray, digits: int = 4) -> list:
    """``values`` rounded to ``digits`` significant digits, as nested lists: what a page
    draws needs no more, and it makes a run's JSON about three times smaller."""
    array = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(array)))
    exponent = np.where(np.isfinite(exponent), exponent, 0.0)
    shift = digits - 1 - exponent
    # dividing an integer by an exact power of ten gives the double nearest the decimal,
    # whose JSON form is short
    up = shift >= 0
    scale = 10.0 ** np.abs(shift)
    rounded = np.where(up, np.round(array * np.where(up, scale, 1.0)) / np.where(up, scale, 1.0),
                       np.round(array / np.where(up, 1.0, scale)) * np.where(up, 1.0, scale))
    return rounded.tolist()


def hidden_activations(model: MLP, grid: np.ndarray) -> list[list[float]]:
    """Each unit of the first hidden layer over ``grid`` (n, 1): one curve per unit."""
    with no_grad():
        _, activation = model.forward_layers(grid)[0]
    return drawn(activation.value.T)


def output_weights(model: MLP) -> list[float]:
    """The output layer's weights V (first output only): how much each hidden unit adds."""
    return model.output.weights.value[:, 0].tolist()
