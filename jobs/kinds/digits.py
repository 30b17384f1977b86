"""Fig. 6.3's 784-H-10 MLP (here with tanh hidden units and a softmax output), trained by
minibatch SGD on 28 × 28 digits shipped with the package, and 2-D maps of where test digits
lie in the input space and in the hidden layer's space.

The figure's point: classes that overlap in pixel space are pulled into better separated
clusters by the hidden layer, so that the linear output layer can tell them apart. The
maps are PCA projections (t-SNE when scikit-learn is installed); the hidden map uses the
trained network's hidden activations h = tanh(x W₁ + b₁).

Both backends start from the same initial weights (the engine's Glorot initialisation for
the seed) and take the minibatches in the same order, so they follow the same training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.autodiff import Tensor
from engine.fastpath import FastPath
from engine.nn import MLP, initial_weights
from engine.spec import LayerSpec, ModelSpec, OutputSpec
from jobs.context import Context
from jobs.kinds import JobKind, finite
from jobs.specs import DIGITS_TEST, DigitsSpec

DATA = Path(__file__).resolve().parent.parent / "data" / "digits.npz"
PIXELS = 28 * 28
CLASSES = 10
CHECK_EVERY = 25  # minibatches between cancellation checks and progress reports


@lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All shipped digits: (10000, 784) float64 grey levels in [0, 1] and their labels."""
    with np.load(DATA) as data:
        images, labels = data["images"], data["labels"]
    x = images.reshape(len(images), PIXELS).astype(np.float64) / 255.0
    x.setflags(write=False)
    y = labels.astype(np.float64)
    y.setflags(write=False)
    return x, y


def split(spec: DigitsSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training digits (a prefix of the first 8,000) and the fixed 2,000 test digits."""
    x, y = load_digits()
    return x[: spec.train_size], y[: spec.train_size], x[-DIGITS_TEST:], y[-DIGITS_TEST:]


def digits_model(spec: DigitsSpec) -> MLP:
    """The engine's MLP with 784 inputs: H tanh units, then 10 softmax outputs.

    The engine's networks read 2-D points through feature crosses (x1, x2, x1², ...);
    pixels need none, so the first layer is given a 784-input weight matrix and the fast
    path is handed the pixels directly as its features.
    """
    model_spec = ModelSpec(
        features=["x1", "x2"],
        layers=[LayerSpec(spec.hidden, "tanh")],
        output=OutputSpec(loss="softmax"),
        init="xavier",
        seed=spec.seed,
    )
    model = MLP(model_spec, input_dim=2, classes=CLASSES)
    rng = np.random.default_rng(spec.seed)
    first = model.layers[0]
    first.weights = Tensor(initial_weights(rng, PIXELS, spec.hidden, "xavier", 1.0), True, "W1")
    model.output.weights = Tensor(
        initial_weights(rng, spec.hidden, CLASSES, "xavier", 1.0), True, "Wout"
    )
    return model


def batch_orders(spec: DigitsSpec) -> np.random.Generator:
    """The generator of each epoch's shuffle, shared by both backends."""
    return np.random.default_rng([spec.seed, 1])


def plan(spec: DigitsSpec) -> list[dict]:
    return [{}]


def _batches(n: int, size: int) -> int:
    return math.ceil(n / size)


def _report_batch(
    ctx: Context, spec: DigitsSpec, epoch: int, batch: int, count: int, loss: float
) -> None:
    ctx.check()
    fraction = (epoch + batch / count) / spec.epochs
    ctx.progress(
        fraction,
        f"epoch {epoch + 1}, batch {batch} of {count}",
        epoch=epoch + batch / count,
        loss=loss,
    )


Report = Callable[[int, float], None]  # (minibatches done, mean loss so far)


def numpy_epoch(
    fast: FastPath,
    params: list[Tensor],
    grads: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    size: int,
    rate: float,
    report: Report | None = None,
) -> float:
    """One pass of plain SGD in the given order on the engine's fast path; the mean loss."""
    count = _batches(len(order), size)
    total = 0.0
    for b in range(count):
        if report is not None and b % CHECK_EVERY == 0 and b:
            report(b, total / b)
        index = order[b * size : (b + 1) * size]
        total += fast.loss_and_grads(x[index], y[index], grads)
        for p, g in zip(params, grads):
            g *= rate
            p.value -= g
    return total / count


def train_numpy(spec: DigitsSpec, ctx: Context) -> tuple[list[np.ndarray], list[dict]]:
    """SGD with the engine's layer-wise fast path (Algorithm 6.2); returns the weights
    (``model.parameters()`` order) and the per-epoch history."""
    x_train, y_train, x_test, y_test = split(spec)
    model = digits_model(spec)
    fast = FastPath(model)
    params = model.parameters()
    grads = [np.empty_like(p.value) for p in params]
    rng = batch_orders(spec)
    n = len(y_train)
    count = _batches(n, spec.batch_size)
    history = []
    for epoch in range(spec.epochs):

        def report(b: int, loss: float, epoch: int = epoch) -> None:
            _report_batch(ctx, spec, epoch, b, count, loss)

        order = rng.permutation(n)
        loss = numpy_epoch(
            fast,
            params,
            grads,
            x_train,
            y_train,
            order,
            spec.batch_size,
            spec.learning_rate,
            report,
        )
        _, z = fast.loss_and_outputs(x_test, y_test)
        history.append(_epoch_entry(ctx, spec, epoch, loss, z, y_test))
    return [p.value for p in params], history


def _epoch_entry(
    ctx: Context, spec: DigitsSpec, epoch: int, loss: float, z: np.ndarray, y_test: np.ndarray
) -> dict:
    accuracy = float(np.mean(np.argmax(z, axis=1) == y_test))
    entry = {"epoch": epoch + 1, "loss": loss, "test_accuracy": accuracy}
    ctx.check()
    ctx.progress((epoch + 1) / spec.epochs, f"epoch {epoch + 1} of {spec.epochs}", **entry)
    return entry


def torch_epoch(
    params: list,
    x: Any,
    y: Any,
    order: Any,
    size: int,
    rate: float,
    report: Report | None = None,
) -> float:
    """One pass of plain SGD in torch (the same batches and update as ``numpy_epoch``)."""
    import torch

    w1, b1, w2, b2 = params
    count = _batches(len(order), size)
    total = torch.zeros((), dtype=x.dtype, device=x.device)
    for b in range(count):
        if report is not None and b % CHECK_EVERY == 0 and b:
            report(b, float(total) / b)
        index = order[b * size : (b + 1) * size]
        h = torch.tanh(torch.addmm(b1, x[index], w1))
        loss = torch.nn.functional.cross_entropy(torch.addmm(b2, h, w2), y[index])
        gradients = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, gradients):
                p.sub_(g, alpha=rate)
            total += loss.detach()
    return float(total) / count


def train_torch(spec: DigitsSpec, ctx: Context) -> tuple[list[np.ndarray], list[dict]]:
    """The same training in torch (CUDA when the context says so; float32 there)."""
    import torch

    from jobs.backends import torch_net as tn

    x_train, y_train, x_test, y_test = split(spec)
    model = digits_model(spec)
    device, dtype = ctx.device, tn.dtype_for(ctx.device)
    params = tn.tensors_of(model, device, dtype)
    w1, b1, w2, b2 = params
    xs, ys = tn.as_tensor(x_train, device, dtype), tn.as_tensor(y_train, device, dtype).long()
    xt = tn.as_tensor(x_test, device, dtype)
    rng = batch_orders(spec)
    n = len(y_train)
    count = _batches(n, spec.batch_size)
    history = []
    for epoch in range(spec.epochs):

        def report(b: int, loss: float, epoch: int = epoch) -> None:
            _report_batch(ctx, spec, epoch, b, count, loss)

        order = torch.as_tensor(rng.permutation(n), device=device)
        loss = torch_epoch(params, xs, ys, order, spec.batch_size, spec.learning_rate, report)
        with torch.no_grad():
            z = torch.addmm(b2, torch.tanh(torch.addmm(b1, xt, w1)), w2).cpu().numpy()
        history.append(_epoch_entry(ctx, spec, epoch, loss, z, y_test))
    return [p.detach().cpu().numpy().astype(np.float64) for p in params], history


def pca_map(points: np.ndarray) -> np.ndarray:
    """The first two principal components' coordinates of each row (centred SVD)."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coordinates = centred @ vt[:2].T
    # a component's sign is arbitrary: point each one toward its largest loading
    signs = np.sign(vt[:2][np.arange(2), np.argmax(np.abs(vt[:2]), axis=1)])
    return coordinates * np.where(signs == 0, 1.0, signs)


def two_d_map(points: np.ndarray, seed: int) -> tuple[str, np.ndarray]:
    """("tsne", map) when scikit-learn is importable, else ("pca", map)."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return "pca", pca_map(points)
    perplexity = float(min(30.0, max(2.0, (len(points) - 1) / 3.0)))
    embedding = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return "tsne", np.asarray(embedding.fit_transform(points), dtype=np.float64)


def _map(method: str, coordinates: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    return {
        "method": method,
        "x": np.round(coordinates[:, 0], 5).tolist(),
        "y": np.round(coordinates[:, 1], 5).tolist(),
        "label": labels.astype(int).tolist(),
    }


def run(spec: DigitsSpec, piece: dict, ctx: Context) -> dict:
    started = time.perf_counter()
    ctx.check()
    train = train_torch if ctx.backend == "torch" else train_numpy
    (w1, b1, w2, b2), history = train(spec, ctx)
    _, _, x_test, y_test = split(spec)
    hidden = np.tanh(x_test @ w1 + b1)
    predicted = np.argmax(hidden @ w2 + b2, axis=1)
    labels = y_test.astype(int)
    confusion = np.zeros((CLASSES, CLASSES), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    ctx.check()
    ctx.progress(1.0, "mapping the input and hidden spaces")
    shown = slice(0, spec.map_points)
    input_method, input_map = two_d_map(x_test[shown], spec.seed)
    hidden_method, hidden_map = two_d_map(hidden[shown], spec.seed)
    result = {
        "test_accuracy": float(np.mean(predicted == labels)),
        "confusion": confusion.tolist(),
        "history": history,
        "input_map": _map(input_method, input_map, labels[shown]),
        "hidden_map": _map(hidden_method, hidden_map, labels[shown]),
        "train_size": spec.train_size,
        "test_size": int(len(labels)),
        "parameters": int(w1.size + b1.size + w2.size + b2.size),
        "backend": ctx.backend,
        "device": ctx.device,
        "seconds": time.perf_counter() - started,
    }
    return finite(result)


def combine(spec: DigitsSpec, partials: list[dict]) -> dict:
    return partials[0]


KIND = JobKind(name="digits", gpu=True, plan=plan, run=run, combine=combine)
