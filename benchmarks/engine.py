"""Time one training step of a 2-8-8-1 tanh MLP with a Bernoulli output, four ways.

    python benchmarks/engine.py

(a) the app's step: ``engine.training.Trainer.step`` (minibatch sampling, layer-wise
    fast path, SGD update, divergence check);
(b) the generic Tensor API: ``model.cost`` forward, ``engine.grad`` over the
    parameters, SGD update;
(c) the same step written by hand in numpy;
(d) torch CPU eager in float64 (the engine's precision), when torch is importable.

Each figure is the best of several interleaved repeats of many steps (like ``timeit``),
so that other work on the machine inflates it as little as possible. Targets (issue 2): a/c ≤ 1.5
and a/d ≤ 0.5 at both batch sizes; b/c ≤ 1.5 at batch 500; b/d ≤ 1.0 at batch 10.
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

import engine  # noqa: E402
from engine.nn import MLP  # noqa: E402
from engine.spec import Config, DataSpec, LayerSpec, ModelSpec, TrainingSpec  # noqa: E402
from engine.training import Trainer  # noqa: E402

BATCHES = (10, 500)
LEARNING_RATE = 0.03
REPEATS = 15
TARGETS = {  # (ratio, batch) -> the most it may be
    ("a/c", 10): 1.5,
    ("a/c", 500): 1.5,
    ("a/d", 10): 0.5,
    ("a/d", 500): 0.5,
    ("b/c", 500): 1.5,
    ("b/d", 10): 1.0,
}


def model_spec() -> ModelSpec:
    return ModelSpec(
        features=["x1", "x2"], layers=[LayerSpec(8, "tanh"), LayerSpec(8, "tanh")], seed=0
    )


def config(batch: int) -> Config:
    # 1000 points, half for training: a batch of 500 is one whole pass
    return Config(
        model=model_spec(),
        training=TrainingSpec(optimizer="sgd", learning_rate=LEARNING_RATE, batch_size=batch),
        data=DataSpec(name="circle", size=1000, noise=0.1, train_fraction=0.5, seed=0),
    )


def batch_of(batch: int) -> tuple[np.ndarray, np.ndarray]:
    trainer = Trainer(config(batch))
    return trainer.dataset.x_train[:batch].copy(), trainer.dataset.y_train[:batch].copy()


# ----- (a) the app's step ---------------------------------------------------------------
def app_step(batch: int) -> Callable[[], object]:
    trainer = Trainer(config(batch))
    assert trainer.uses_fast_path
    return trainer.step


# ----- (b) the generic Tensor API ----------------------------------------------------------
def generic_step(batch: int) -> Callable[[], object]:
    model = MLP(model_spec(), input_dim=2, classes=2)
    parameters = model.parameters()
    x, y = batch_of(batch)

    def step() -> float:
        cost = model.cost(x, y)
        for parameter, gradient in zip(parameters, engine.grad(cost, parameters)):
            parameter.value -= LEARNING_RATE * gradient.value
        return cost.value

    return step


# ----- (c) by hand in numpy ------------------------------------------------------------------
def numpy_step(batch: int) -> Callable[[], object]:
    model = MLP(model_spec(), input_dim=2, classes=2)
    w1, b1, w2, b2, w3, b3 = (p.value.copy() for p in model.parameters())
    x, y = batch_of(batch)
    y = y.reshape(-1, 1)
    n = x.shape[0]

    def step() -> float:
        h1 = np.tanh(x @ w1 + b1)
        h2 = np.tanh(h1 @ w2 + b2)
        z = h2 @ w3 + b3
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        g = (1.0 / (1.0 + np.exp(-z)) - y) / n
        grad_w3, grad_b3 = h2.T @ g, g.sum(axis=0)
        g = (g @ w3.T) * (1.0 - h2 * h2)
        grad_w2, grad_b2 = h1.T @ g, g.sum(axis=0)
        g = (g @ w2.T) * (1.0 - h1 * h1)
        grad_w1, grad_b1 = x.T @ g, g.sum(axis=0)
        for value, gradient in (
            (w1, grad_w1),
            (b1, grad_b1),
            (w2, grad_w2),
            (b2, grad_b2),
            (w3, grad_w3),
            (b3, grad_b3),
        ):
            value -= LEARNING_RATE * gradient
        return loss

    return step


# ----- (d) torch ----------------------------------------------------------------------------
def torch_step(batch: int, threads: int | None = None) -> Callable[[], object] | None:
    try:
        import torch
    except ImportError:
        return None
    model = MLP(model_spec(), input_dim=2, classes=2)
    x, y = batch_of(batch)
    dtype = torch.float64
    layers = []
    for index, layer in enumerate(model.all_layers):
        linear = torch.nn.Linear(*layer.weights.value.shape, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weights.value.T.copy()))
            linear.bias.copy_(torch.from_numpy(layer.bias.value.copy()))
        layers.append(linear)
        if index < len(model.layers):
            layers.append(torch.nn.Tanh())
    network = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(network.parameters(), lr=LEARNING_RATE)
    loss_function = torch.nn.BCEWithLogitsLoss()
    inputs = torch.from_numpy(x)
    targets = torch.from_numpy(y.reshape(-1, 1))

    def step() -> float:
        optimizer.zero_grad()
        loss = loss_function(network(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss

    step.torch_threads = threads  # best_times sets torch's thread count around its runs
    return step


def torch_one_thread_step(batch: int) -> Callable[[], object] | None:
    # intra-op threads gain nothing at these sizes and lose a lot whenever another
    # process holds a core: time torch with one thread too, and compare with its best
    return torch_step(batch, threads=1)


def best_times(steps: dict[tuple[str, int], Callable[[], object]]) -> dict[tuple[str, int], float]:
    """Seconds per call of each step: the best of REPEATS runs of enough calls to last
    about 0.05 s. The runs are interleaved (one of each step per round), so a burst of
    other work on the machine slows every contender alike instead of one of them."""
    timers, numbers = {}, {}
    for key, step in steps.items():
        timer = timeit.Timer(step)
        threads = getattr(step, "torch_threads", None)
        if threads is not None:
            import torch

            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
        number, elapsed = timer.autorange()  # also warms up caches and workspaces
        if threads is not None:
            torch.set_num_threads(previous)
        timers[key] = timer
        numbers[key] = max(1, int(number * 0.05 / max(elapsed, 1e-9)))
    best = {key: float("inf") for key in steps}
    for _ in range(REPEATS):
        for key, timer in timers.items():
            threads = getattr(steps[key], "torch_threads", None)
            if threads is not None:
                import torch

                previous = torch.get_num_threads()
                torch.set_num_threads(threads)
            best[key] = min(best[key], timer.timeit(numbers[key]) / numbers[key])
            if threads is not None:
                torch.set_num_threads(previous)
    return best


def main() -> None:
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
        torch_version = f"torch {torch.__version__} (float64)"
    except ImportError:
        torch_version = "torch not installed"
    builders = {
        "a": ("app step (Trainer, fast path)", app_step),
        "b": ("generic Tensor API (cost, grad, update)", generic_step),
        "c": ("hand-written numpy", numpy_step),
        "d_n": (f"torch CPU eager float64, {threads} threads", torch_step),
        "d_1": ("torch CPU eager float64, 1 thread", torch_one_thread_step),
    }
    steps = {}
    for batch in BATCHES:
        for key, (_, builder) in builders.items():
            step = builder(batch)
            if step is not None:
                steps[key, batch] = step
    times = best_times(steps)
    for batch in BATCHES:
        torch_times = [times[key, batch] for key in ("d_n", "d_1") if (key, batch) in times]
        if torch_times:
            times["d", batch] = min(torch_times)

    print("One training step (forward, backward, SGD update): 2-8-8-1 tanh MLP, Bernoulli loss")
    print(f"machine: {machine()}")
    print(f"numpy {np.__version__}; {torch_version}")
    print(f"best of {REPEATS} interleaved runs per figure")
    print()
    columns = "".join(f"{f'batch {b}':>14}" for b in BATCHES)
    print(f"{'':46}{columns}")
    for key, (label, _) in builders.items():
        cells = "".join(
            f"{times[key, b] * 1e6:>11.1f} µs" if (key, b) in times else f"{'—':>14}"
            for b in BATCHES
        )
        print(f"({key}) {label:{42 - len(key)}}{cells}")
    print()
    print(f"{'ratio (d = the faster torch)':46}{columns}")
    failures = 0
    for ratio in ("a/c", "a/d", "b/c", "b/d"):
        top, bottom = ratio.split("/")
        cells = ""
        for batch in BATCHES:
            if (top, batch) not in times or (bottom, batch) not in times:
                cells += f"{'—':>14}"
                continue
            value = times[top, batch] / times[bottom, batch]
            target = TARGETS.get((ratio, batch))
            mark = ""
            if target is not None:
                ok = value <= target
                failures += not ok
                mark = f" {'≤' if ok else '>'}{target:g}{'' if ok else '!'}"
            cells += f"{value:>8.2f}{mark:<6}"
        print(f"{ratio:46}{cells}")
    print()
    print("all targets met" if failures == 0 else f"{failures} target(s) missed (marked !)")


if __name__ == "__main__":
    main()
