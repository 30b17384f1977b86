"""Time one training step of a 2-8-8-1 tanh MLP, and a Hessian-vector product, several ways.

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

Issue 13 times the generic API as a new user writes it, with no fused primitive: the same
net with squared error from elementwise ops (``F.tanh(h @ W + b)``, ``((z - y) ** 2).mean()``,
``engine.grad``, ``p.value -= lr * g.value``):

(e) that step on the engine;
(f) the same step by hand in numpy;
(g) the same composition in torch eager, float64, one thread (``torch.autograd.grad``);
(h) a Hessian-vector product by grad of grad on the engine: forward, ∇J recorded
    (``create_graph=True``), then the gradient of ⟨∇J, v⟩ with v constant;
(i) the same in torch (``torch.autograd.grad(..., create_graph=True)``, one thread);
(j), (k) only the second gradient, ∇J recorded once (what each Lanczos step costs):
    ``engine.curvature.HessianVectorProduct`` and torch with ``retain_graph``;
(l) the same HVP written out by hand in numpy (the R-operator): the floor for h.

Targets (issue 13): e/f ≤ 1.8 at batch 10 and ≤ 1.2 at batch 500; e/g ≤ 0.5 at both;
h/i ≤ 0.4 at batch 500.
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
from engine import functional as F  # noqa: E402
from engine.curvature import HessianVectorProduct  # noqa: E402
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
    ("e/f", 10): 1.8,
    ("e/f", 500): 1.2,
    ("e/g", 10): 0.5,
    ("e/g", 500): 0.5,
    ("h/i", 500): 0.4,
}
SIZES = (2, 8, 8, 1)  # the issue-13 net: tanh, tanh, linear output, squared error


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
def backward_and_update(params: tuple, x: np.ndarray, h1: np.ndarray, h2: np.ndarray,
                        g: np.ndarray) -> None:
    """The hand-written backward pass of the 2-8-8-1 tanh net from the output gradient g
    (dJ/dz), and the SGD update in place: the same for both losses."""
    w1, b1, w2, b2, w3, b3 = params
    grad_w3, grad_b3 = h2.T @ g, g.sum(axis=0)
    g = (g @ w3.T) * (1.0 - h2 * h2)
    grad_w2, grad_b2 = h1.T @ g, g.sum(axis=0)
    g = (g @ w2.T) * (1.0 - h1 * h1)
    grad_w1, grad_b1 = x.T @ g, g.sum(axis=0)
    for value, gradient in zip(params, (grad_w1, grad_b1, grad_w2, grad_b2, grad_w3, grad_b3)):
        value -= LEARNING_RATE * gradient


def numpy_step(batch: int) -> Callable[[], object]:
    model = MLP(model_spec(), input_dim=2, classes=2)
    w1, b1, w2, b2, w3, b3 = (p.value.copy() for p in model.parameters())
    x, y = batch_of(batch)
    y = y.reshape(-1, 1)
    n = x.shape[0]
    params = (w1, b1, w2, b2, w3, b3)

    def step() -> float:
        h1 = np.tanh(x @ w1 + b1)
        h2 = np.tanh(h1 @ w2 + b2)
        z = h2 @ w3 + b3
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        g = (1.0 / (1.0 + np.exp(-z)) - y) / n
        backward_and_update(params, x, h1, h2, g)
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


# ----- issue 13: the generic composition, no fused primitive -------------------------------
def composition_data(batch: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Weights (W, b per layer, Glorot-scaled), inputs and real-valued targets."""
    rng = np.random.default_rng(0)
    weights = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        weights.append(rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in))
        weights.append(0.1 * rng.standard_normal(fan_out))
    x = rng.standard_normal((batch, SIZES[0]))
    y = np.sin(x[:, :1]) + 0.1 * rng.standard_normal((batch, 1))
    return weights, x, y


def composed_cost(params: list, x: object, y: object, tanh: Callable) -> object:
    """((f(x) − y)²).mean() for the tanh net, from generic ops (engine or torch alike)."""
    h = x
    last = len(params) // 2 - 1
    for layer in range(last + 1):
        a = h @ params[2 * layer] + params[2 * layer + 1]
        h = a if layer == last else tanh(a)
    return ((h - y) ** 2).mean()


def composed_step(batch: int) -> Callable[[], object]:
    weights, x, y = composition_data(batch)
    params = [engine.Tensor(w, requires_grad=True) for w in weights]

    def step() -> float:
        cost = composed_cost(params, x, y, F.tanh)
        for parameter, gradient in zip(params, engine.grad(cost, params)):
            parameter.value -= LEARNING_RATE * gradient.value
        return cost.value

    return step


def composed_numpy_step(batch: int) -> Callable[[], object]:
    params, x, y = composition_data(batch)
    w1, b1, w2, b2, w3, b3 = params
    n = x.shape[0]

    def step() -> float:
        h1 = np.tanh(x @ w1 + b1)
        h2 = np.tanh(h1 @ w2 + b2)
        diff = h2 @ w3 + b3 - y
        loss = np.mean(diff**2)
        g = diff * (2.0 / n)
        backward_and_update(params, x, h1, h2, g)
        return loss

    return step


def _torch_composition(batch: int) -> tuple | None:
    try:
        import torch
    except ImportError:
        return None
    weights, x, y = composition_data(batch)
    params = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in weights]
    return torch, params, torch.from_numpy(x), torch.from_numpy(y)


def composed_torch_step(batch: int) -> Callable[[], object] | None:
    found = _torch_composition(batch)
    if found is None:
        return None
    torch, params, x, y = found

    def step() -> float:
        cost = composed_cost(params, x, y, torch.tanh)
        gradients = torch.autograd.grad(cost, params)
        with torch.no_grad():
            for parameter, gradient in zip(params, gradients):
                parameter -= LEARNING_RATE * gradient
        return cost

    step.torch_threads = 1
    return step


def _direction(shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.standard_normal(shape) for shape in shapes]


def composed_hvp(batch: int) -> Callable[[], object]:
    weights, x, y = composition_data(batch)
    params = [engine.Tensor(w, requires_grad=True) for w in weights]
    direction = _direction([w.shape for w in weights])

    def product() -> list:
        cost = composed_cost(params, x, y, F.tanh)
        gradients = engine.grad(cost, params, create_graph=True)
        directional = sum((g * v).sum() for g, v in zip(gradients, direction))
        return [h.value for h in engine.grad(directional, params)]

    return product


def composed_torch_hvp(batch: int) -> Callable[[], object] | None:
    found = _torch_composition(batch)
    if found is None:
        return None
    torch, params, x, y = found
    direction = [torch.from_numpy(v) for v in _direction([tuple(p.shape) for p in params])]

    def product() -> list:
        cost = composed_cost(params, x, y, torch.tanh)
        gradients = torch.autograd.grad(cost, params, create_graph=True)
        directional = sum((g * v).sum() for g, v in zip(gradients, direction))
        return [h.numpy() for h in torch.autograd.grad(directional, params)]

    product.torch_threads = 1
    return product


def numpy_hvp(batch: int) -> Callable[[], object]:
    """The same Hessian-vector product written out by hand in numpy: Pearlmutter's
    R-operator (the directional derivative of the forward and backward pass along v),
    the least array work an HVP of this net needs. Checked against the engine's before
    it is timed."""
    (w1, b1, w2, b2, w3, b3), x, y = composition_data(batch)
    v1, c1, v2, c2, v3, c3 = _direction([w.shape for w in (w1, b1, w2, b2, w3, b3)])
    n = x.shape[0]
    xt = x.T

    def product() -> list:
        h1 = np.tanh(x @ w1 + b1)
        h2 = np.tanh(h1 @ w2 + b2)
        d = h2 @ w3 + b3 - y
        s1, s2 = 1.0 - h1 * h1, 1.0 - h2 * h2  # tanh'(a) = 1 − h²
        gz = d * (2.0 / n)
        gh2 = gz @ w3.T
        ga2 = gh2 * s2
        gh1 = ga2 @ w2.T
        # R{·}: the derivative of each quantity along v
        ra1 = x @ v1 + c1
        rh1 = s1 * ra1
        rh2 = s2 * (rh1 @ w2 + h1 @ v2 + c2)
        rgz = (rh2 @ w3 + h2 @ v3 + c3) * (2.0 / n)
        rgh2 = rgz @ w3.T + gz @ v3.T
        rga2 = rgh2 * s2 - 2.0 * gh2 * h2 * rh2
        rgh1 = rga2 @ w2.T + ga2 @ v2.T
        rga1 = rgh1 * s1 - 2.0 * gh1 * h1 * rh1
        return [
            xt @ rga1,
            rga1.sum(axis=0),
            rh1.T @ ga2 + h1.T @ rga2,
            rga2.sum(axis=0),
            rh2.T @ gz + h2.T @ rgz,
            rgz.sum(axis=0),
        ]

    expected = composed_hvp(batch)()
    for found, wanted in zip(product(), expected):
        np.testing.assert_allclose(found, wanted, rtol=1e-9, atol=1e-12)
    return product


def repeated_hvp(batch: int) -> Callable[[], object]:
    weights, x, y = composition_data(batch)
    params = [engine.Tensor(w, requires_grad=True) for w in weights]
    operator = HessianVectorProduct(composed_cost(params, x, y, F.tanh), params)
    vector = np.concatenate([v.reshape(-1) for v in _direction([w.shape for w in weights])])
    return lambda: operator(vector)


def repeated_torch_hvp(batch: int) -> Callable[[], object] | None:
    found = _torch_composition(batch)
    if found is None:
        return None
    torch, params, x, y = found
    direction = [torch.from_numpy(v) for v in _direction([tuple(p.shape) for p in params])]
    cost = composed_cost(params, x, y, torch.tanh)
    gradients = torch.autograd.grad(cost, params, create_graph=True)

    def product() -> list:
        directional = sum((g * v).sum() for g, v in zip(gradients, direction))
        second = torch.autograd.grad(directional, params, retain_graph=True)
        return [h.numpy() for h in second]

    product.torch_threads = 1
    return product


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


def print_table(
    title: str,
    builders: dict[str, tuple[str, Callable]],
    ratios: tuple[str, ...],
    times: dict[tuple[str, int], float],
) -> int:
    """One table of figures and ratios; returns how many targets it missed."""
    print(title)
    columns = "".join(f"{f'batch {b}':>14}" for b in BATCHES)
    print(f"{'':46}{columns}")
    for key, (label, _) in builders.items():
        cells = "".join(
            f"{times[key, b] * 1e6:>11.1f} µs" if (key, b) in times else f"{'—':>14}"
            for b in BATCHES
        )
        print(f"({key}) {label:{42 - len(key)}}{cells}")
    print()
    print(f"{'ratio':46}{columns}")
    failures = 0
    for ratio in ratios:
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
    return failures


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
    composed = {
        "e": ("engine, generic ops (issue 13)", composed_step),
        "f": ("hand-written numpy", composed_numpy_step),
        "g": ("torch eager float64, 1 thread", composed_torch_step),
        "h": ("HVP, engine (grad of grad)", composed_hvp),
        "i": ("HVP, torch (create_graph), 1 thread", composed_torch_hvp),
        "l": ("HVP by hand in numpy (R-operator)", numpy_hvp),
        "j": ("HVP again, ∇J recorded once: engine", repeated_hvp),
        "k": ("HVP again, ∇J recorded once: torch", repeated_torch_hvp),
    }
    steps = {}
    for batch in BATCHES:
        for key, (_, builder) in {**builders, **composed}.items():
            step = builder(batch)
            if step is not None:
                steps[key, batch] = step
    times = best_times(steps)
    for batch in BATCHES:
        torch_times = [times[key, batch] for key in ("d_n", "d_1") if (key, batch) in times]
        if torch_times:
            times["d", batch] = min(torch_times)

    print(f"machine: {machine()}")
    print(f"numpy {np.__version__}; {torch_version}")
    print(f"best of {REPEATS} interleaved runs per figure, all in this one run")
    print()
    failures = print_table(
        "One training step (forward, backward, SGD update): 2-8-8-1 tanh MLP, Bernoulli loss"
        " (d = the faster torch)",
        builders,
        ("a/c", "a/d", "b/c", "b/d"),
        times,
    )
    failures += print_table(
        "Issue 13: the same net, squared error from generic ops, and its Hessian-vector product",
        composed,
        ("e/f", "e/g", "h/i", "l/i", "h/l", "j/k"),
        times,
    )
    print("all targets met" if failures == 0 else f"{failures} target(s) missed (marked !)")


if __name__ == "__main__":
    main()
