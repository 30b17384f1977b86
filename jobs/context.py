"""What job code sees while it runs: progress reports, cancellation and the backend.

The dispatcher (``jobs.cluster``) builds a ``Context`` on the worker with a ``report``
callable that carries progress to the app and an ``is_cancelled`` callable that reads
the job's cancel flag; tests and the command line build one with neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

BACKENDS = ("auto", "numpy", "torch")


class Cancelled(Exception):
    """The job was cancelled: raised by ``Context.check`` so that job code stops at once."""


def torch_available() -> bool:
    """Whether torch can be imported here (imported lazily: the worker extra installs it)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> tuple[str, str]:
    """("numpy" | "torch", "cpu" | "cuda") for a spec's backend field.

    "auto" takes torch on CUDA when torch is importable and a GPU is visible, and the numpy
    engine otherwise: on a CPU the engine is the faster of the two for every job kind here
    (docs/benchmarks.md, "Jobs": a digits epoch 0.7-0.85x torch's time, the default sweep
    10x faster), so torch on a CPU runs only when asked for. Asking for "torch" where it is
    missing is an error.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {backend!r}; choose from {BACKENDS}")
    if backend == "numpy":
        return "numpy", "cpu"
    if not torch_available():
        if backend == "torch":
            raise ValueError("backend: 'torch' was asked for but torch is not installed here")
        return "numpy", "cpu"
    import torch

    if torch.cuda.is_available():
        return "torch", "cuda"
    return ("torch", "cpu") if backend == "torch" else ("numpy", "cpu")


class Context:
    """What job code sees while it runs: where to report progress, whether to stop, and
    which backend (``backend``: "numpy" | "torch", ``device``: "cpu" | "cuda") to use."""

    def __init__(
        self,
        report: Callable[[dict], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        backend: str = "auto",
        device: str | None = None,
    ):
        self._report = report
        self._is_cancelled = is_cancelled
        self.backend, resolved_device = resolve_backend(backend)
        # a caller may pin torch to the CPU (parity tests, a GPU kept for other work)
        self.device = resolved_device if device is None else device
        if self.backend == "numpy" and self.device != "cpu":
            raise ValueError("device: the numpy engine runs on the CPU only")

    def progress(self, fraction: float, message: str, **data: Any) -> None:
        """Report how far THIS piece is (0..1), a short message and JSON-able partials."""
        if self._report is None:
            return
        fraction = min(max(float(fraction), 0.0), 1.0) if math.isfinite(fraction) else 0.0
        self._report({"progress": fraction, "message": message, "data": data})

    def check(self) -> None:
        """Raise ``Cancelled`` when the job was cancelled; cheap, so call it often."""
        if self._is_cancelled is not None and self._is_cancelled():
            raise Cancelled("the job was cancelled")
