"""The top-k eigenvalues of the Hessian of a session's training cost, by Lanczos on
Hessian-vector products (section 6.4.5: H v = ∇θ[(∇θ J)ᵀ v], the engine's grad of grad or
torch's autograd), checked against the whole Hessian when the net is small enough to form
it column by column.

One piece: Lanczos is sequential. Its start vector comes from the spec's seed, so both
backends run the same iteration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.curvature import full_hessian, lanczos
from jobs.backends.objective import objective_for
from jobs.context import Context
from jobs.kinds import JobKind, finite
from jobs.specs import EXACT_HESSIAN_PARAMETERS, SpectrumSpec


def plan(spec: SpectrumSpec) -> list[dict]:
    return [{}]


def run(spec: SpectrumSpec, piece: dict, ctx: Context) -> dict:
    objective = objective_for(spec.config, spec.weights, ctx.backend, ctx.device)
    size = objective.size
    exact_wanted = size <= EXACT_HESSIAN_PARAMETERS
    steps = min(spec.iterations, size)
    # the work in HVPs: Lanczos's steps, then one per column of the exact Hessian
    total = steps + (size if exact_wanted else 0)

    def after_step(step: int, ritz: np.ndarray) -> None:
        ctx.check()
        ctx.progress(
            step / total,
            f"Lanczos step {step} of {steps}",
            step=step,
            eigenvalues=finite(ritz[: spec.k].tolist()),
        )

    ctx.check()
    top = lanczos(objective.hvp, size, spec.k, steps, seed=spec.seed, callback=after_step)
    exact: list[float] | None = None
    if exact_wanted:
        columns = 0

        def before_column() -> None:
            nonlocal columns
            ctx.check()
            columns += 1
            if columns % 20 == 0:
                ctx.progress((steps + columns) / total, f"Hessian column {columns} of {size}")

        hessian = full_hessian(objective.hvp, size, check=before_column)
        symmetric = 0.5 * (hessian + hessian.T)
        exact = np.linalg.eigvalsh(symmetric)[::-1][: spec.k].tolist()
    result: dict[str, Any] = {
        "eigenvalues": top.eigenvalues.tolist(),
        "residuals": top.residuals.tolist(),
        "iterations": top.iterations,
        "exact": exact,
        "parameters": size,
        "cost": float(objective.values(objective.theta)[0]),
        "gradient_norm": float(np.linalg.norm(objective.gradient())),
        "backend": ctx.backend,
        "device": ctx.device,
    }
    return finite(result)


def combine(spec: SpectrumSpec, partials: list[dict]) -> dict:
    return partials[0]


KIND = JobKind(name="spectrum", gpu=True, plan=plan, run=run, combine=combine)
