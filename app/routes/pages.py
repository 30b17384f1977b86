"""HTML pages and the vendored Plotly bundle."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter()
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/", response_class=HTMLResponse)
def playground(request: Request):
    templates = request.app.state.templates
    name = "playground.html" if (Path(templates.env.loader.searchpath[0]) /
                                 "playground.html").exists() else "placeholder.html"
    # included routers do not list their routes on app.router here: say whether /step exists
    step_page = any(getattr(route, "path", None) == "/step" for route in router.routes)
    return templates.TemplateResponse(
        request, name, {"plotly_version": plotly.__version__, "step_page": step_page}
    )


@router.get("/step", response_class=HTMLResponse)
def step_through(request: Request):
    """The step-through page: forward and backward passes node by node."""
    return request.app.state.templates.TemplateResponse(request, "step.html", {})


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the installed ``plotly`` package: no CDN, works offline."""
    if not PLOTLY_JS.exists():  # pragma: no cover - a broken install
        raise HTTPException(404, "plotly.min.js is missing from the plotly package")
    return FileResponse(PLOTLY_JS, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
