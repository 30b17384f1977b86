"""The job kinds: how each splits into pieces, runs a piece, and combines the pieces.

A piece is one Dask task: ``plan(spec)`` lists the pieces (JSON-able dicts), ``run(spec,
piece, ctx)`` computes one piece's partial result on the backend ``ctx`` names, and
``combine(spec, partials)`` builds the job's result from the partials in plan order.
Results are JSON objects whose floats are finite or null.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from jobs.context import Context


@dataclass(frozen=True)
class JobKind:
    name: str
    gpu: bool  # benefits from a GPU worker
    plan: Callable[[BaseModel], list[dict]]  # spec -> pieces (JSON-able); each piece = one task
    run: Callable[[BaseModel, dict, Context], dict]  # (spec, piece, ctx) -> partial result
    combine: Callable[[BaseModel, list[dict]], dict]  # (spec, partials in plan order) -> result


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _registry() -> dict[str, JobKind]:
    from jobs.kinds import digits, landscape, spectrum, sweep

    return {kind.name: kind for kind in (digits.KIND, sweep.KIND, landscape.KIND, spectrum.KIND)}


KINDS: dict[str, JobKind] = _registry()


def run_local(spec: BaseModel, ctx: Context | None = None) -> dict:
    """Plan, run every piece and combine, in this process (tests, the command line)."""
    kind = KINDS[spec.kind]  # type: ignore[attr-defined]
    ctx = Context(backend=spec.backend) if ctx is None else ctx  # type: ignore[attr-defined]
    pieces = kind.plan(spec)
    partials = []
    for piece in pieces:
        ctx.check()
        partials.append(kind.run(spec, piece, ctx))
    return kind.combine(spec, partials)
