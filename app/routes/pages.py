"""HTML pages and the vendored Plotly bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from app.assets import folder
from engine.datasets import DATASETS
from jobs.specs import SWEEP_DATASETS, DigitsSpec, LandscapeSpec, SpectrumSpec, SweepSpec

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


# ----- the heavy jobs page (issue 9) ---------------------------------------------------------
# plotly's WebGL traces (the digit maps' scattergl, the landscape's surface) compile their
# shaders' glue with `Function`, so this page alone allows 'unsafe-eval'; it sets its own
# policy, which the app's stricter default leaves alone.
JOBS_PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
)


def _spec_defaults() -> dict[str, dict[str, Any]]:
    """Each job kind's defaults, from its spec: the forms show what the server fills in."""
    return {
        model.model_fields["kind"].default: {
            name: field.get_default(call_default_factory=True)
            for name, field in model.model_fields.items() if not field.is_required()
        }
        for model in (DigitsSpec, SweepSpec, LandscapeSpec, SpectrumSpec)
    }


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request):
    """The heavy jobs page: submit digits, sweeps, landscapes and spectra; draw their results."""
    datasets = [(name, DATASETS[name].title) for name in SWEEP_DATASETS]
    response = request.app.state.templates.TemplateResponse(
        request, "jobs.html", {"defaults": _spec_defaults(), "sweep_datasets": datasets}
    )
    response.headers["Content-Security-Policy"] = JOBS_PAGE_CSP
    return response


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the installed ``plotly`` package: no CDN, works offline."""
    if not PLOTLY_JS.exists():  # pragma: no cover - a broken install
        raise HTTPException(404, "plotly.min.js is missing from the plotly package")
    return FileResponse(PLOTLY_JS, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    """The icon (an SVG: browsers go by the content type, not the name); pages link it too."""
    return FileResponse(folder("static") / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})
