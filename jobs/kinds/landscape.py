"""The cost on a plane through a session's weights: J(θ + α d₁ + β d₂) on a grid of
(α, β), with the training path projected on the plane.

Directions: two filter-normalised random directions (``engine.curvature``; each unit's
incoming weights move in proportion to their own size, biases stay put), or the gradient
and the top Hessian eigenvector (Lanczos on HVPs), each scaled to the norm of θ, so that
α = 1 moves as far as the weights are long. Both are computed again by every piece, from
the spec alone, so the pieces need nothing from each other; a sign convention keeps the
eigenvector the same on every backend.

Pieces are chunks of rows (β values); the first piece also gives the cost at the centre
and the path's coordinates: each snapshot θₜ is projected by least squares,
(α, β) = argmin ‖θₜ − θ − α d₁ − β d₂‖.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.curvature import filter_normalized_direction, flatten, lanczos, unflatten
from jobs.backends.objective import Objective, objective_for
from jobs.context import Context
from jobs.kinds import JobKind, finite
from jobs.specs import LandscapeSpec, load_model

HESSIAN_ITERATIONS = 30  # Lanczos steps for the top eigenvector


def axis(spec: LandscapeSpec) -> np.ndarray:
    return np.linspace(-spec.span, spec.span, spec.resolution)


def plan(spec: LandscapeSpec) -> list[dict]:
    step = spec.rows_per_piece
    return [
        {"rows": [start, min(start + step, spec.resolution)]}
        for start in range(0, spec.resolution, step)
    ]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _signed(vector: np.ndarray) -> np.ndarray:
    """An eigenvector's sign is arbitrary: make its largest entry positive."""
    return -vector if vector[int(np.argmax(np.abs(vector)))] < 0 else vector


def directions(
    spec: LandscapeSpec, objective: Objective, ctx: Context | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """d₁, d₂ (flat) and what is worth reporting about them."""
    if spec.directions == "random":
        values = unflatten(objective.theta.copy(), objective.shapes)
        rng = np.random.default_rng(spec.seed)
        first = flatten(filter_normalized_direction(values, rng))
        second = flatten(filter_normalized_direction(values, rng))
        return first, second, {}
    scale = float(np.linalg.norm(objective.theta)) or 1.0
    check = None if ctx is None else (lambda step, values: ctx.check())
    top = lanczos(
        objective.hvp,
        objective.size,
        k=2,
        iterations=min(HESSIAN_ITERATIONS, objective.size),
        seed=spec.seed,
        callback=check,
    )
    gradient = objective.gradient()
    eigenvector = _signed(top.vectors[:, 0])
    info = {
        "gradient_norm": float(np.linalg.norm(gradient)),
        "top_eigenvalue": float(top.eigenvalues[0]),
    }
    g = _unit(gradient)
    second = eigenvector - (eigenvector @ g) * g  # the eigenvector's part across the gradient
    if np.linalg.norm(gradient) <= 1e-12 * scale or np.linalg.norm(second) < 1e-6:
        # no gradient (a stationary point) or one along the eigenvector: use the next
        # eigenvector for the other axis
        if top.vectors.shape[1] < 2:
            raise ValueError("the network has too few parameters for a Hessian plane")
        g = _signed(top.vectors[:, 1])
        second = eigenvector - (eigenvector @ g) * g
        info["first_axis"] = "second eigenvector"
    else:
        info["first_axis"] = "gradient"
    return g * scale, _unit(second) * scale, info


def project_path(
    spec: LandscapeSpec, theta: np.ndarray, first: np.ndarray, second: np.ndarray
) -> list[list[float]]:
    """Least-squares (α, β) of each path snapshot on the plane."""
    if not spec.path:
        return []
    basis = np.stack([first, second], axis=1)
    model = load_model(spec.config, None)
    snapshots = []
    for snapshot in spec.path:
        model.load_state_dict(snapshot)
        snapshots.append(flatten([p.value for p in model.parameters()]))
    offsets = np.stack(snapshots) - theta
    coordinates, *_ = np.linalg.lstsq(basis, offsets.T, rcond=None)
    return coordinates.T.tolist()


def run(spec: LandscapeSpec, piece: dict, ctx: Context) -> dict:
    objective = objective_for(spec.config, spec.weights, ctx.backend, ctx.device)
    ctx.check()
    first, second, info = directions(spec, objective, ctx)
    alphas = axis(spec)
    start, stop = piece["rows"]
    rows = []
    for index in range(start, stop):
        ctx.check()
        beta = alphas[index]
        points = objective.theta + np.outer(alphas, first) + beta * second
        row = objective.values(points).tolist()
        rows.append(row)
        ctx.progress(
            (index - start + 1) / (stop - start),
            f"row {index + 1} of {spec.resolution}",
            row=index,
            beta=float(beta),
            cost=finite(row),
        )
    partial: dict[str, Any] = {"rows": [start, stop], "cost": rows, "backend": ctx.backend}
    if start == 0:
        partial["center_cost"] = float(objective.values(objective.theta)[0])
        path = project_path(spec, objective.theta, first, second)
        partial["path"] = path
        # the cost where each snapshot lands on the plane: the path's height on the surface
        partial["path_cost"] = (
            objective.values(
                objective.theta + np.asarray(path) @ np.stack([first, second])
            ).tolist()
            if path
            else []
        )
        partial["info"] = info
        partial["direction_norms"] = [float(np.linalg.norm(first)), float(np.linalg.norm(second))]
    return finite(partial)


def combine(spec: LandscapeSpec, partials: list[dict]) -> dict:
    ordered = sorted(partials, key=lambda p: p["rows"][0])
    cost = [row for partial in ordered for row in partial["cost"]]
    first = ordered[0]
    alphas = axis(spec).tolist()
    return finite(
        {
            "directions": spec.directions,
            "alphas": alphas,
            "betas": alphas,
            "cost": cost,
            "center_cost": first.get("center_cost"),
            "path": first.get("path", []),
            "path_cost": first.get("path_cost", []),
            "info": first.get("info", {}),
            "direction_norms": first.get("direction_norms"),
            "backend": first["backend"],
        }
    )


KIND = JobKind(name="landscape", gpu=True, plan=plan, run=run, combine=combine)
