"""The guided labs (issue 11): the /labs index with the chapter map, one page per lab, and
the JSON endpoints of labs 1-4 under /api/labs/.

A lab's endpoint validates its settings (pydantic models with limits, app/lab_models.py),
runs a bounded number of training steps in the engine on a worker thread and returns the
snapshots the page animates. Numerical work lives in engine/ modules.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.labs import LABS, Lab, chapter_map

router = APIRouter()
KATEX = "katex-0.19.1"  # static/vendor/katex-0.19.1 (npm katex, MIT licence)


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
