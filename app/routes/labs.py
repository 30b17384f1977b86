"""The guided labs (issue 11): the /labs index with the chapter map, one page per lab, and
the JSON endpoints of labs 1-4 under /api/labs/.

A lab's endpoint validates its settings (pydantic models with limits, app/lab_models.py),
runs a bounded number of training steps in the engine on a worker thread and returns the
snapshots the page animates. Numerical work lives in engine/ modules.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from app.lab_models import (
    ConditionalStatistics,
    LabTooLarge,
    OutputUnits,
    SaturatingLosses,
    ShallowRegression,
)
from app.labs import LABS, Lab, chapter_map
from engine import lab_runs
from engine.lab_training import LabDiverged

router = APIRouter()
KATEX = "katex-0.19.1"  # static/vendor/katex-0.19.1 (npm katex, MIT licence)
# lab runs at a time on this process: the rest wait, so that a class pressing Run together
# does not starve the playground's live sessions of the CPU
RUNNING = threading.BoundedSemaphore(2)


def _render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, name, {"katex": KATEX, **context}, status_code=status_code
    )


def available_labs(request: Request) -> list[Lab]:
    """The registered labs whose page exists in this checkout, in the chapter's order."""
    folder = Path(request.app.state.templates.env.loader.searchpath[0]) / "labs"
    return [entry for entry in LABS if (folder / f"{entry.name}.html").exists()]


@router.get("/labs", response_class=HTMLResponse)
def labs_index(request: Request) -> HTMLResponse:
    """Every lab in the chapter's order, under the map of the chapter's sections."""
    labs = available_labs(request)
    sections = chapter_map({entry.name for entry in labs})
    return _render(request, "labs/index.html", {"labs": labs, "sections": sections})


@router.get("/labs/{name}", response_class=HTMLResponse)
def lab_page(request: Request, name: str) -> HTMLResponse:
    """One lab's page; an unknown name gets a 404 page that lists the labs there are."""
    labs = available_labs(request)
    entry = next((entry for entry in labs if entry.name == name), None)
    if entry is None:
        return _render(request, "labs/missing.html", {"name": name, "labs": labs},
                       status_code=404)
    return _render(request, f"labs/{name}.html", {"lab": entry})


# ----- the endpoints of labs 1-4: validate, train a bounded run, return its snapshots -----
def _run(settings: Any, function: Any, **arguments: Any) -> dict:
    try:
        settings.check_budget()
    except LabTooLarge as error:
        raise HTTPException(422, {"message": error.message, "field": error.field,
                                  "largest": error.largest}) from None
    values = settings.model_dump(exclude={"runs"})
    values.update(arguments)
    with RUNNING:
        try:
            return function(**values)
        except LabDiverged as error:
            raise HTTPException(422, {"message": str(error), "field": "learning_rate"}) from None


@router.post("/api/labs/shallow-regression/run")
def run_shallow_regression(settings: ShallowRegression) -> dict:
    """Lab 1: Example 6.1.1's network with the learner's λ and with λ = 0."""
    return _run(settings, lab_runs.shallow_regression)


@router.post("/api/labs/conditional-statistics/run")
def run_conditional_statistics(settings: ConditionalStatistics) -> dict:
    """Lab 2: squared and absolute error on the same skewed data, with the binned statistics."""
    return _run(settings, lab_runs.conditional_statistics)


@router.post("/api/labs/saturating-losses/run")
def run_saturating_losses(settings: SaturatingLosses) -> dict:
    """Lab 3: softmax + NLL and softmax + squared error from the same initial weights."""
    return _run(settings, lab_runs.saturating_losses)


@router.post("/api/labs/output-units/run")
def run_output_units(settings: OutputUnits) -> dict:
    """Lab 4: one output unit trained by maximum likelihood, drawn as p(y | x)."""
    return _run(settings, lab_runs.output_units)
