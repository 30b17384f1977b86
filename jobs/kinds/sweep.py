"""Depth against width (in the spirit of Figs. 6.9-6.10): test accuracy against parameter
count for a grid of nets on one 2-D dataset, several seeds each, one curve per depth.

One piece per (depth, width, seed) net, so a cluster trains the nets side by side. Both
backends start from the engine's initial weights for the net's seed and take the
minibatches in the engine trainer's order, so they follow the same trajectory.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.datasets import make_dataset
from engine.spec import Config
from engine.training import DivergenceError, Trainer
from jobs.context import Context
from jobs.kinds import JobKind, finite
from jobs.specs import SweepSpec, sweep_config

REPORTS = 20  # progress reports (and cancellation checks at least) per net


def plan(spec: SweepSpec) -> list[dict]:
    return [
        {"depth": depth, "width": width, "seed": seed}
        for depth in spec.depths
        for width in spec.widths
        for seed in range(spec.seeds)
    ]


def run(spec: SweepSpec, piece: dict, ctx: Context) -> dict:
    config = sweep_config(spec, piece["depth"], piece["width"], piece["seed"])
    train = train_torch if ctx.backend == "torch" else train_numpy
    outcome = train(config, spec.steps, ctx, piece)
    return finite({**piece, **outcome, "backend": ctx.backend, "device": ctx.device})


def _every(steps: int) -> int:
    return max(1, math.ceil(steps / REPORTS))


def _report(ctx: Context, step: int, steps: int, loss: float, piece: dict | None) -> None:
    ctx.progress(step / steps, f"step {step} of {steps}", step=step, loss=loss, **(piece or {}))


def train_numpy(config: Config, steps: int, ctx: Context, piece: dict | None = None) -> dict:
    """Train one net with the engine's trainer; loss history, test accuracy, parameter count."""
    trainer = Trainer(config)
    every = _every(steps)
    losses: list[float] = []
    diverged = None
    for step in range(steps):
        ctx.check()  # every step: the dispatcher makes this cheap (a cached flag)
        if step % every == 0 and losses:
            _report(ctx, step, steps, losses[-1], piece)
        try:
            losses.append(trainer.step())
        except DivergenceError as error:
            diverged = str(error)
            break
    measures = trainer.evaluate()
    return {
        "parameters": int(sum(p.value.size for p in trainer.model.parameters())),
        "test_accuracy": measures["test_accuracy"],
        "train_loss": measures["train_loss"],
        "losses": losses,
        "diverged": diverged,
    }


def train_torch(config: Config, steps: int, ctx: Context, piece: dict | None = None) -> dict:
    """The same training in torch: the engine's initial weights, minibatch order, optimiser."""
    import torch

    from jobs.backends import torch_net as tn

    reference = Trainer(config)  # initial weights, data, features and shuffling of the engine
    model, data = reference.model, reference.dataset
    spec, training = config.model, config.training
    dtype = tn.dtype_for(ctx.device)
    params = tn.tensors_of(model, ctx.device, dtype)
    optimizer = tn.Optimizer(params, training)
    backup = [torch.empty_like(p) for p in params]  # the weights before the step, to undo it
    features = tn.as_tensor(model.features(data.x_train), ctx.device, dtype)
    targets = tn.as_tensor(data.y_train, ctx.device, dtype)
    n = features.shape[0]
    rng = np.random.default_rng([config.model.seed, config.data.seed])  # as Trainer shuffles
    order = torch.as_tensor(rng.permutation(n), device=ctx.device)
    position = 0
    every = _every(steps)
    losses: list[float] = []
    diverged = None
    for step in range(steps):
        ctx.check()  # every step: the dispatcher makes this cheap (a cached flag)
        if step % every == 0 and losses:
            _report(ctx, step, steps, losses[-1], piece)
        stop = min(position + training.batch_size, n)
        index = order[position:stop]
        x, y = features[index], targets[index]
        loss = tn.loss(spec, tn.forward(spec, params, x)[-1], y)
        cost = loss
        if training.l2 or training.l1:
            cost = tn.cost(spec, params, x, y, training.l2, training.l1)
        grads = list(torch.autograd.grad(cost, params))
        value = float(loss.detach())
        if not math.isfinite(value):
            diverged = f"training diverged at step {step + 1}: the loss became {value}"
            break
        if training.clip_norm:
            tn.clip_by_norm(grads, training.clip_norm)
        with torch.no_grad():
            for b, p in zip(backup, params):
                b.copy_(p)
        optimizer.step(grads)
        # one sum is finite unless a weight is not (or the sum overflows: then look closer)
        with torch.no_grad():
            total = torch.stack([p.sum() for p in params]).sum()
        if not math.isfinite(float(total)) and not all(
            bool(torch.isfinite(p).all()) for p in params
        ):
            with torch.no_grad():
                for p, b in zip(params, backup):
                    p.copy_(b)
            diverged = f"training diverged at step {step + 1}: a weight became infinite or NaN"
            break
        losses.append(value)
        if stop >= n:
            position = 0
            order = torch.as_tensor(rng.permutation(n), device=ctx.device)
        else:
            position = stop
    with torch.no_grad():
        train_loss = float(tn.loss(spec, tn.forward(spec, params, features)[-1], targets))
        test_x = tn.as_tensor(model.features(data.x_test), ctx.device, dtype)
        z = tn.forward(spec, params, test_x)[-1].cpu().numpy()
    return {
        "parameters": int(sum(p.numel() for p in params)),
        "test_accuracy": reference._accuracy(z, data.y_test),
        "train_loss": train_loss,
        "losses": losses,
        "diverged": diverged,
    }


def combine(spec: SweepSpec, partials: list[dict]) -> dict:
    runs = [
        {
            key: run[key]
            for key in ("depth", "width", "seed", "parameters", "test_accuracy", "train_loss")
        }
        | {"diverged": run.get("diverged")}
        for run in partials
    ]
    curves = []
    for depth in spec.depths:
        parameters, means, stds, widths = [], [], [], []
        for width in sorted(set(spec.widths)):
            group = [r for r in runs if r["depth"] == depth and r["width"] == width]
            accuracies = [r["test_accuracy"] for r in group if r["test_accuracy"] is not None]
            widths.append(width)
            parameters.append(group[0]["parameters"])
            means.append(float(np.mean(accuracies)) if accuracies else None)
            stds.append(float(np.std(accuracies)) if accuracies else None)
        curves.append(
            {
                "depth": depth,
                "widths": widths,
                "parameters": parameters,
                "test_accuracy": means,
                "std": stds,
            }
        )
    dataset = make_dataset(sweep_config(spec, 1, 1, 0).data)
    result: dict[str, Any] = {
        "dataset": spec.dataset,
        "train_size": int(dataset.x_train.shape[0]),
        "test_size": int(dataset.x_test.shape[0]),
        "runs": runs,
        "curves": curves,
        "backend": partials[0]["backend"] if partials else None,
    }
    return finite(result)


KIND = JobKind(name="sweep", gpu=False, plan=plan, run=run, combine=combine)
