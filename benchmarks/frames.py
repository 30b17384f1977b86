"""Cost of one frame of work, the app's pipeline against the same work by hand in numpy.

    python benchmarks/frames.py [--repeats 15]

One "frame of work" (issue 3) is: one epoch of minibatch SGD (batch 10 over the 250
training points of the circle data), the train/test loss and accuracy, the 100 × 100
decision surface with every unit's response map, the warps of 21 × 21 grid lines (41
samples each) and of the 500 data points through every layer (after the affine step and
after tanh, projected on stable principal axes for layers wider than 3), the full-batch
gradient summary, and the msgpack encoding of it all.

(a) the app: ``Session.train`` for one epoch, then ``Session.frame`` and
    ``app.encoding.pack``, exactly what a playing session does per frame;
(h) the same work written by hand as one straight numpy script: float64 training and
    gradients, float32 views (the app's precision choice), the same quantisation and
    msgpack layout, no abstractions.

Both are timed for the [4, 2] tanh default and for a 6 × 8 tanh net, interleaved: each
round runs 20 frames of every contender and keeps their mean; the figure is the best of
``--repeats`` rounds (like ``timeit``), so that other work on the machine inflates it as
little as possible, and the median is shown beside it. BLAS runs single-threaded, as the
server's worker does.
Targets: a ≤ 1.2 × h; a frame of the [4, 2] net ≤ 64 KB. For reference, on this kind of
machine TensorFlow Playground's JavaScript engine (Node) needs ≈ 7.8 ms ([4, 2]) and
≈ 80 ms (6 × 8) for the training and surface part of this work (NOTES.md).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads its BLAS
import platform
import statistics
import sys
import time
from pathlib import Path

import msgpack
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import encoding  # noqa: E402
from app.session import Session  # noqa: E402
from app.settings import Settings  # noqa: E402
from engine.spec import Config, DataSpec, LayerSpec, ModelSpec, TrainingSpec  # noqa: E402

NETS = {"[4, 2] tanh": [4, 2], "6 × 8 tanh": [8] * 6}
FRAMES_PER_ROUND = 20
GRID, UNIT_GRID, LINES, SAMPLES = 100, 40, 21, 41
F32 = np.float32


def config(units: list[int]) -> Config:
    return Config(
        model=ModelSpec(layers=[LayerSpec(u, "tanh") for u in units], seed=0),
        training=TrainingSpec(optimizer="sgd", learning_rate=0.03, batch_size=10),
        data=DataSpec(name="circle", size=500, noise=0.0, train_fraction=0.5, seed=0),
    )


# ----- (a) the app ----------------------------------------------------------------------------
class AppFrames:
    def __init__(self, units: list[int]):
        self.session = Session("bench", Settings(), config(units))
        self.parts: dict[str, list[float]] = {"train": [], "frame": [], "encode": []}

    def frame(self) -> bytes:
        session = self.session
        started = time.perf_counter()
        session.train(1 << 30, 10.0, until_epoch=session.next_epoch_boundary())
        trained = time.perf_counter()
        frame = session.frame()
        built = time.perf_counter()
        data = encoding.pack(frame)
        done = time.perf_counter()
        self.parts["train"].append(trained - started)
        self.parts["frame"].append(built - trained)
        self.parts["encode"].append(done - built)
        return data


# ----- (h) by hand -------------------------------------------------------------------------
class HandFrames:
    """The same work as one numpy script, for tanh layers and a sigmoid output."""

    def __init__(self, units: list[int]):
        session = Session("hand", Settings(), config(units))  # the same data and weights
        dataset = session.trainer.dataset
        model = session.trainer.model
        self.x_train, self.y_train = dataset.x_train.copy(), dataset.y_train.copy()
        self.x_test, self.y_test = dataset.x_test.copy(), dataset.y_test.copy()
        self.weights = [layer.weights.value.copy() for layer in model.all_layers]
        self.biases = [layer.bias.value.copy() for layer in model.all_layers]
        self.rng = np.random.default_rng(0)
        self.step = 0
        (x1_lo, x1_hi), (x2_lo, x2_hi) = dataset.extent
        x1 = x1_lo + (np.arange(GRID) + 0.5) * (x1_hi - x1_lo) / GRID
        x2 = x2_lo + (np.arange(GRID) + 0.5) * (x2_hi - x2_lo) / GRID
        surface = np.stack([np.tile(x1, GRID), np.repeat(x2, GRID)], axis=1)
        along1, along2 = np.linspace(x1_lo, x1_hi, SAMPLES), np.linspace(x2_lo, x2_hi, SAMPLES)
        at1, at2 = np.linspace(x1_lo, x1_hi, LINES), np.linspace(x2_lo, x2_hi, LINES)
        lines = np.concatenate([
            np.stack([np.tile(along1, LINES), np.repeat(at2, SAMPLES)], axis=1),
            np.stack([np.repeat(at1, SAMPLES), np.tile(along2, LINES)], axis=1),
        ])
        points = np.concatenate([self.x_train, self.x_test])
        self.inputs = np.concatenate([surface, lines, points]).astype(F32)
        self.n_surface, self.n_lines = len(surface), len(lines)
        index = ((np.arange(UNIT_GRID) + 0.5) * (GRID / UNIT_GRID)).astype(np.intp)
        self.cells = (index[:, None] * GRID + index[None, :]).ravel()
        self.axes: dict = {}
        self.bounds: dict = {}
        self.extent = [list(e) for e in dataset.extent]

    def forward64(self, x):
        hs, h = [x], x
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.tanh(h @ W + b)
            hs.append(h)
        z = h @ self.weights[-1] + self.biases[-1]
        return hs, z

    def backward64(self, hs, z, y):
        n = len(y)
        g = (1.0 / (1.0 + np.exp(-z)) - y[:, None]) / n
        grads_w, grads_b, grads_a = [], [], [g]
        for k in range(len(self.weights) - 1, -1, -1):
            grads_w.append(hs[k].T @ g)
            grads_b.append(g.sum(axis=0))
            if k:
                g = (g @ self.weights[k].T) * (1.0 - hs[k] ** 2)
                grads_a.append(g)
        return grads_w[::-1], grads_b[::-1], grads_a[::-1]

    @staticmethod
    def loss_accuracy(z, y):
        z = z[:, 0]
        loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
        return loss, float(np.mean((z > 0) == y))

    @staticmethod
    def quantise(values, bits, lo, hi):
        top = 255.0 if bits == 8 else 65535.0
        lo, hi = np.asarray(lo, F32), np.asarray(hi, F32)
        shape = (-1,) + (1,) * (values.ndim - 1) if lo.ndim else ()
        span = np.where(hi > lo, hi - lo, 1.0).reshape(shape)
        q = (values - lo.reshape(shape)) * (top / span) + 0.5
        np.clip(q, 0, top, out=q)
        array = q.astype(np.uint8 if bits == 8 else np.uint16)
        return {"dtype": "u1" if bits == 8 else "u2", "shape": list(array.shape),
                "data": array.tobytes(), "lo": lo.tolist(), "hi": hi.tolist()}

    @staticmethod
    def f4(array):
        return {"dtype": "f4", "shape": list(array.shape),
                "data": np.ascontiguousarray(array, "<f4").tobytes()}

    def frame(self) -> bytes:
        # one epoch of SGD, batch 10
        order = self.rng.permutation(len(self.x_train))
        for start in range(0, len(order), 10):
            batch = order[start : start + 10]
            hs, z = self.forward64(self.x_train[batch])
            grads_w, grads_b, _ = self.backward64(hs, z, self.y_train[batch])
            for W, b, gw, gb in zip(self.weights, self.biases, grads_w, grads_b):
                W -= 0.03 * gw
                b -= 0.03 * gb
            self.step += 1
        # losses and accuracies
        train = self.loss_accuracy(self.forward64(self.x_train)[1], self.y_train)
        test = self.loss_accuracy(self.forward64(self.x_test)[1], self.y_test)
        # full-batch gradients
        hs, z = self.forward64(self.x_train)
        grads_w, grads_b, grads_a = self.backward64(hs, z, self.y_train)
        n = len(self.y_train)
        parameters, layers = [], []
        for k, (W, b, gw, gb, ga) in enumerate(
            zip(self.weights, self.biases, grads_w, grads_b, grads_a), start=1
        ):
            tag = "out" if k == len(self.weights) else str(k)
            parameters += [{"name": f"W{tag}", "value": self.f4(W), "grad": self.f4(gw)},
                           {"name": f"b{tag}", "value": self.f4(b), "grad": self.f4(gb)}]
            layers.append({"pre_activation_grad": self.f4(np.abs(ga).mean(axis=0) * n),
                           "grad_norm": float(np.sqrt((gw ** 2).sum() + (gb ** 2).sum()))})
        # one float32 forward pass of the surface, the grid lines and the points
        h = self.inputs
        stages = []
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            a = h @ W.astype(F32) + b.astype(F32)
            h = np.tanh(a)
            stages.append((a, h))
        z = h @ self.weights[-1].astype(F32) + self.biases[-1].astype(F32)
        s = self.n_surface
        probability = 0.5 * (1.0 + np.tanh(0.5 * z[:s, 0]))
        surface = self.quantise(probability.reshape(GRID, GRID), 8, 0.0, 1.0)
        units = []
        for _, h in stages:
            maps = h[self.cells].T.reshape(-1, UNIT_GRID, UNIT_GRID)
            units.append({"activation": "tanh", "values": self.quantise(
                maps, 8, [-1.0] * len(maps), [1.0] * len(maps))})
        warps = []
        for k, (a, h) in enumerate(stages):
            entry = {"units": a.shape[1], "lines": LINES, "samples": SAMPLES}
            for stage, values in (("pre_activation", a), ("activation", h)):
                rows = values[s:]
                view = {}
                if rows.shape[1] > 3:
                    points = rows[self.n_lines:].astype(np.float64)
                    centre = points.mean(axis=0)
                    vectors = np.linalg.eigh(np.cov(points.T))[1][:, ::-1][:, :2]
                    previous = self.axes.get((k, stage))
                    if previous is not None:
                        u, _, vt = np.linalg.svd(vectors.T @ previous)
                        vectors = vectors @ (u @ vt)
                    self.axes[(k, stage)] = vectors
                    rows = (rows - centre.astype(F32)) @ vectors.astype(F32)
                    view.update(projection="pca", basis=self.f4(vectors), centre=self.f4(centre))
                coords = rows.T
                low, high = coords.min(axis=1), coords.max(axis=1)
                point_low = coords[:, self.n_lines:].min(axis=1)
                point_high = coords[:, self.n_lines:].max(axis=1)
                span = point_high - point_low
                view["bounds"] = np.stack([point_low - 0.1 * span, point_high + 0.1 * span],
                                          axis=1).tolist()
                view["grid"] = self.quantise(coords[:, : self.n_lines], 16, low, high)
                view["points"] = self.quantise(coords[:, self.n_lines:], 16, low, high)
                entry[stage] = view
            warps.append(entry)
        frame = {
            "type": "frame", "step": self.step, "train_loss": train[0], "test_loss": test[0],
            "train_accuracy": train[1], "test_accuracy": test[1],
            "surface": {"kind": "probability", "extent": self.extent, "values": surface},
            "units": units, "warps": warps,
            "gradients": {"parameters": parameters, "layers": layers},
        }
        return msgpack.packb(frame, use_bin_type=True)


def measure(repeats: int) -> dict:
    contenders = {}
    for name, units in NETS.items():
        contenders[name] = {"app": AppFrames(units), "hand": HandFrames(units)}
    times = {(name, kind): [] for name in NETS for kind in ("app", "hand")}
    sizes = {}
    for _ in range(repeats):
        for name, pair in contenders.items():
            for kind, runner in pair.items():
                started = time.perf_counter()
                for _ in range(FRAMES_PER_ROUND):
                    data = runner.frame()
                times[(name, kind)].append((time.perf_counter() - started) / FRAMES_PER_ROUND)
                sizes[(name, kind)] = len(data)
    parts = {name: {k: statistics.median(v) * 1e3 for k, v in pair["app"].parts.items()}
             for name, pair in contenders.items()}
    return {"times": times, "sizes": sizes, "parts": parts}


def report(result: dict) -> str:
    times, sizes, parts = result["times"], result["sizes"], result["parts"]
    lines = [
        "                 ms/frame: app   hand   app/hand     (median: app   hand)"
        "   bytes/frame: app    hand",
    ]
    missed = 0
    for name in NETS:
        app = min(times[(name, "app")]) * 1e3
        hand = min(times[(name, "hand")]) * 1e3
        app_median = statistics.median(times[(name, "app")]) * 1e3
        hand_median = statistics.median(times[(name, "hand")]) * 1e3
        ratio = app / hand
        mark = "≤1.2" if ratio <= 1.2 else ">1.2!"
        missed += ratio > 1.2
        size = sizes[(name, "app")]
        size_mark = ""
        if name.startswith("[4, 2]"):
            size_mark = " ≤64K" if size <= 64 * 1024 else " >64K!"
            missed += size > 64 * 1024
        lines.append(f"{name:<22}{app:>8.2f}{hand:>7.2f}{ratio:>7.2f} {mark:<6}"
                     f"{app_median:>12.2f}{hand_median:>7.2f}"
                     f"{size:>16,}{size_mark:<6}{sizes[(name, 'hand')]:>8,}")
    lines.append("")
    lines.append("app, median per frame:")
    for name, p in parts.items():
        lines.append(f"  {name:<20} epoch of training {p['train']:.2f} ms, frame (losses, "
                     f"views, gradients) {p['frame']:.2f} ms, encoding {p['encode']:.2f} ms")
    lines.append("")
    lines.append(f"{missed} target(s) missed (marked !)" if missed else "all targets met")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    print(f"best (and median) of {args.repeats} rounds of {FRAMES_PER_ROUND} frames\n")
    print(report(measure(args.repeats)))


if __name__ == "__main__":
    main()
