"""Figures for the heavy jobs (issue 9), one section per function.

    python benchmarks/jobs.py              # every section
    python benchmarks/jobs.py digits       # only the digits epoch
    python benchmarks/jobs.py dispatch     # only the Dask figures

digits: one epoch of the digits job (784-100-10 tanh MLP, softmax output, plain SGD,
batch 32, 8,000 training digits, float64) three ways, on the same batches from the same
initial weights:
  (a) the numpy engine, as the job runs it (``jobs.kinds.digits.numpy_epoch``: the
      layer-wise fast path, then the update);
  (b) torch CPU eager, as the job runs it (``torch_epoch``), with torch's own thread count
      and with one thread;
  (c) the same epoch written by hand in numpy.
Each figure is the best of several interleaved rounds (one epoch of each per round), so a
burst of other work on the machine slows every contender alike. Target: a/c ≤ 1.5.
numpy's BLAS runs one thread, as on a Dask worker (its nanny sets OMP_NUM_THREADS,
MKL_NUM_THREADS and OPENBLAS_NUM_THREADS to 1); set them before running to time others.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# before numpy is imported: job code runs on Dask workers, whose BLAS has one thread
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from engine.fastpath import FastPath  # noqa: E402
from jobs.kinds import digits as digits_kind  # noqa: E402
from jobs.specs import DigitsSpec  # noqa: E402

DIGITS_ROUNDS = 7
DIGITS_TARGET = 1.5  # (a) / (c)


# ----- digits: one epoch -----------------------------------------------------------------
def _engine_epoch(spec: DigitsSpec, order: np.ndarray) -> Callable[[], float]:
    x, y, _, _ = digits_kind.split(spec)
    model = digits_kind.digits_model(spec)
    fast = FastPath(model)
    params = model.parameters()
    grads = [np.empty_like(p.value) for p in params]

    def epoch() -> float:
        return digits_kind.numpy_epoch(
            fast, params, grads, x, y, order, spec.batch_size, spec.learning_rate
        )

    return epoch


def _numpy_epoch(spec: DigitsSpec, order: np.ndarray) -> Callable[[], float]:
    x, y, _, _ = digits_kind.split(spec)
    w1, b1, w2, b2 = (p.value.copy() for p in digits_kind.digits_model(spec).parameters())
    labels = y.astype(np.intp)
    size, rate = spec.batch_size, spec.learning_rate

    def epoch() -> float:
        total, count = 0.0, 0
        for start in range(0, len(order), size):
            index = order[start : start + size]
            xb, yb = x[index], labels[index]
            n = len(index)
            h = np.tanh(xb @ w1 + b1)
            z = h @ w2 + b2
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            total += float(-np.log(p[np.arange(n), yb]).mean())
            count += 1
            g = p
            g[np.arange(n), yb] -= 1.0
            g /= n
            grad_w2, grad_b2 = h.T @ g, g.sum(axis=0)
            g = (g @ w2.T) * (1.0 - h * h)
            grad_w1, grad_b1 = xb.T @ g, g.sum(axis=0)
            for value, gradient in ((w1, grad_w1), (b1, grad_b1), (w2, grad_w2), (b2, grad_b2)):
                value -= rate * gradient  # in place
        return total / count

    return epoch


def _torch_epoch(spec: DigitsSpec, order: np.ndarray, threads: int | None):
    try:
        import torch
    except ImportError:
        return None
    from jobs.backends import torch_net as tn

    x, y, _, _ = digits_kind.split(spec)
    params = tn.tensors_of(digits_kind.digits_model(spec), "cpu", torch.float64)
    xs = tn.as_tensor(x, "cpu", torch.float64)
    ys = torch.as_tensor(y.astype(np.int64))
    batches = torch.as_tensor(order)

    def epoch() -> float:
        previous = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            return digits_kind.torch_epoch(
                params, xs, ys, batches, spec.batch_size, spec.learning_rate
            )
        finally:
            torch.set_num_threads(previous)

    return epoch


def digits() -> None:
    """One digits epoch: numpy engine vs torch CPU vs hand-written numpy."""
    spec = DigitsSpec()
    order = digits_kind.batch_orders(spec).permutation(spec.train_size)
    try:
        import torch

        threads = torch.get_num_threads()
        torch_version = f"torch {torch.__version__}"
    except ImportError:
        threads, torch_version = None, "torch not installed"
    contenders = {
        "a": ("numpy engine (fast path + SGD)", _engine_epoch(spec, order)),
        # torch's own thread count, when it is not one already (OMP_NUM_THREADS)
        "b_n": (
            f"torch CPU eager float64, {threads} threads",
            _torch_epoch(spec, order, None) if threads != 1 else None,
        ),
        "b_1": ("torch CPU eager float64, 1 thread", _torch_epoch(spec, order, 1)),
        "c": ("hand-written numpy", _numpy_epoch(spec, order)),
    }
    epochs = {key: fn for key, (_, fn) in contenders.items() if fn is not None}
    for fn in epochs.values():
        fn()  # warm up: workspaces, caches, torch's kernels
    best = {key: float("inf") for key in epochs}
    for _ in range(DIGITS_ROUNDS):
        for key, fn in epochs.items():
            started = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - started)
    torch_times = [best[k] for k in ("b_n", "b_1") if k in best]
    print(
        f"One digits epoch: 784-{spec.hidden}-10 tanh MLP, softmax, SGD, batch "
        f"{spec.batch_size}, {spec.train_size} digits, float64"
    )
    print(f"machine: {machine()}")
    print(f"numpy {np.__version__}; {torch_version}")
    print(f"best of {DIGITS_ROUNDS} interleaved rounds per figure")
    print()
    for key, (label, fn) in contenders.items():
        if fn is None:
            continue
        figure = f"{best[key] * 1e3:9.1f} ms" if key in best else f"{'—':>12}"
        print(f"{f'({key})':6}{label:44}{figure}")
    print()
    ratio = best["a"] / best["c"]
    mark = "≤" if ratio <= DIGITS_TARGET else ">"
    print(f"a/c  engine / hand numpy   {ratio:6.2f}  ({mark} {DIGITS_TARGET:g} target)")
    if torch_times:
        print(f"a/b  engine / best torch   {best['a'] / min(torch_times):6.2f}")
        print(f"b/c  best torch / numpy    {min(torch_times) / best['c']:6.2f}")


# ---- dispatch (the Dask side): how soon a job reports, how a sweep scales with workers ----

DISPATCH_WARM_ROUNDS = 5
DISPATCH_TARGET_S = 2.0  # submit -> first progress event, warm
DISPATCH_SWEEP_ROUNDS = 3
DISPATCH_SWEEP = {"kind": "sweep", "depths": [1, 2], "widths": [4, 8], "seeds": 2,
                  "steps": 6000, "size": 200, "backend": "numpy"}


async def _first_progress(manager, spec) -> tuple[float, float]:
    """Seconds from submit to the job's first progress event, and to its end."""
    started = time.perf_counter()
    job = await manager.submit(spec, "benchmark")
    queue = manager.listen(job)
    first = None
    while True:
        message = await queue.get()
        if first is None and message["type"] == "progress":
            first = time.perf_counter() - started
        if message["type"] == "result":
            if message["job"]["state"] != "done":
                raise RuntimeError(message["job"]["message"])
            return first if first is not None else math.nan, time.perf_counter() - started


async def _cancel_seconds(manager, spec) -> tuple[float, bool]:
    """Seconds from cancel to the job's cancelled state, once its piece is running; and
    whether the piece had to be dropped rather than stopping by itself."""
    job = await manager.submit(spec, "benchmark")
    queue = manager.listen(job)
    while "worker" not in (await queue.get()).get("data", {}):
        pass
    started = time.perf_counter()
    await manager.cancel(job)
    return time.perf_counter() - started, job.dropped


async def _dispatch_figures() -> None:
    from jobs.cluster import JobManager
    from jobs.kinds import run_local
    from jobs.specs import parse_spec

    tiny = parse_spec({"kind": "sweep", "depths": [1], "widths": [2], "seeds": 1, "steps": 50,
                       "size": 100, "backend": "numpy"})
    long = parse_spec({**DISPATCH_SWEEP, "depths": [1], "widths": [4], "seeds": 1,
                       "steps": 100_000})
    manager = JobManager(local_workers=2)
    try:
        cold, _ = await _first_progress(manager, tiny)  # starts the cluster, workers import
        warm = [(await _first_progress(manager, tiny))[0] for _ in range(DISPATCH_WARM_ROUNDS)]
        stops = [await _cancel_seconds(manager, long) for _ in range(DISPATCH_WARM_ROUNDS)]
    finally:
        await manager.close()
    print("submit -> first progress event, embedded LocalCluster of 2 worker processes:")
    print(f"  cold (starts the cluster; the workers import the job code)  {cold:6.2f} s")
    mark = "within" if min(warm) <= DISPATCH_TARGET_S else "OVER"
    median = sorted(warm)[len(warm) // 2]
    dropped = sum(job_dropped for _, job_dropped in stops)
    stop_times = sorted(seconds for seconds, _ in stops)
    print(f"  warm, best / median of {DISPATCH_WARM_ROUNDS}       {min(warm) * 1000:6.0f} / "
          f"{median * 1000:.0f} ms  ({mark} the {DISPATCH_TARGET_S:g} s target)")
    print(f"cancel -> every running piece stopped by itself, best / median / worst of "
          f"{DISPATCH_WARM_ROUNDS}: {stop_times[0] * 1000:.0f} / "
          f"{stop_times[len(stop_times) // 2] * 1000:.0f} / {stop_times[-1] * 1000:.0f} ms; "
          f"{dropped} dropped after the 1 s wait")
    spec = parse_spec(DISPATCH_SWEEP)
    nets = len(spec.depths) * len(spec.widths) * spec.seeds
    # both clusters up at once (an idle one costs nothing), rounds interleaved, best of each
    managers = {workers: JobManager(local_workers=workers) for workers in (1, 2)}
    times: dict[str, list[float]] = {"here": [], 1: [], 2: []}
    try:
        for manager in managers.values():
            await _first_progress(manager, tiny)  # warm: started, job code imported
        for _ in range(DISPATCH_SWEEP_ROUNDS):
            started = time.perf_counter()
            run_local(spec)
            times["here"].append(time.perf_counter() - started)
            for workers, manager in managers.items():
                times[workers].append((await _first_progress(manager, spec))[1])
    finally:
        for manager in managers.values():
            await manager.close()
    here, seconds = min(times["here"]), {workers: min(times[workers]) for workers in (1, 2)}
    print()
    print(f"a sweep of {nets} nets ({spec.steps} steps each, numpy engine), submit -> result, "
          f"best of {DISPATCH_SWEEP_ROUNDS} interleaved rounds:")
    print(f"  in this process, no Dask   {here:6.2f} s")
    print(f"  1 worker                   {seconds[1]:6.2f} s")
    print(f"  2 workers                  {seconds[2]:6.2f} s")
    print(f"  1 worker / 2 workers       {seconds[1] / seconds[2]:6.2f}  (2.0 would be perfect; "
          f"{os.cpu_count()} cores here, shared)")


def dispatch() -> None:
    """Submit -> first progress (cold and warm) and a sweep on 1 vs 2 workers."""
    import asyncio

    print(f"machine: {machine()}")
    asyncio.run(_dispatch_figures())


SECTIONS: dict[str, Callable[[], None]] = {"digits": digits, "dispatch": dispatch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sections", nargs="*", help=f"sections to run: {', '.join(SECTIONS)} (default: all)"
    )
    chosen = parser.parse_args().sections or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    for index, name in enumerate(chosen):
        if index:
            print()
        print(f"== {name} ==")
        SECTIONS[name]()


if __name__ == "__main__":
    main()
