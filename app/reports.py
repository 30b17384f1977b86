"""A job's result as one self-contained HTML file: plotly.js inlined, no other origin.

Built with the ``plotly`` Python package, so the report opens offline, years later, from a
download folder. It holds inline script, so the route serves it with its own
Content-Security-Policy (``REPORT_CSP``): sandboxed, inline script and style only, nothing
fetched from anywhere.
"""

from __future__ import annotations

import html
import json
from typing import Any

import plotly
import plotly.graph_objects as go
import plotly.io as pio

REPORT_CSP = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
              "style-src 'unsafe-inline'; img-src data: blob:")
TITLES = {"digits": "Digits: a 784-{hidden}-10 network (Fig. 6.3)",
          "sweep": "Depth against width (Figs. 6.9-6.10)",
          "landscape": "The cost on a plane through the weights",
          "spectrum": "Top eigenvalues of the Hessian of the cost"}
_LAYOUT = {"template": "plotly_white", "height": 440,
           "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}
_CONFIG = {"displaylogo": False, "responsive": True}
_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #1b1f24; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: 2px 12px 2px 0; text-align: left; }
th { font-weight: 600; color: #555; } .figures { display: grid; gap: 1em; }
"""


def _digits(result: dict[str, Any]) -> list[go.Figure]:
    history = result.get("history") or []
    epochs = [row.get("epoch") for row in history]
    curves = go.Figure(layout={**_LAYOUT, "title": "Training", "xaxis": {"title": "epoch"},
                               "yaxis": {"title": "loss"},
                               "yaxis2": {"title": "test accuracy", "overlaying": "y",
                                          "side": "right", "range": [0, 1]}})
    curves.add_scatter(x=epochs, y=[row.get("loss") for row in history], name="training loss")
    curves.add_scatter(x=epochs, y=[row.get("test_accuracy") for row in history],
                       name="test accuracy", yaxis="y2")
    confusion = result.get("confusion") or []
    labels = [str(digit) for digit in range(len(confusion))]
    matrix = go.Figure(layout={**_LAYOUT, "title": "Confusion matrix (test digits)",
                               "xaxis": {"title": "predicted", "type": "category"},
                               "yaxis": {"title": "true", "type": "category",
                                         "autorange": "reversed"}})
    matrix.add_heatmap(z=confusion, x=labels, y=labels, colorscale="Blues",
                       texttemplate="%{z}", hovertemplate="true %{y}, predicted %{x}: %{z}")
    figures = [curves, matrix]
    for key, title in (("input_map", "Input space"), ("hidden_map", "Hidden layer")):
        space = result.get(key)
        if not space:
            continue
        method = str(space.get("method", "pca")).upper()
        figure = go.Figure(layout={**_LAYOUT, "title": f"{title} ({method}), by class"})
        points = list(zip(space.get("x", []), space.get("y", []), space.get("label", [])))
        for digit in sorted({label for _, _, label in points}):
            chosen = [(x, y) for x, y, label in points if label == digit]
            # SVG, not scattergl: WebGL traces build functions at run time, which this
            # page's policy (no 'unsafe-eval') forbids; a few thousand points draw fine
            figure.add_scatter(x=[x for x, _ in chosen], y=[y for _, y in chosen],
                               mode="markers", name=str(digit), marker={"size": 5})
        figures.append(figure)
    return figures


def _sweep(result: dict[str, Any]) -> list[go.Figure]:
    figure = go.Figure(layout={**_LAYOUT, "title": f"Test accuracy on {result.get('dataset')}",
                               "xaxis": {"title": "parameters", "type": "log"},
                               "yaxis": {"title": "test accuracy"}})
    for curve in result.get("curves") or []:
        figure.add_scatter(x=curve.get("parameters"), y=curve.get("test_accuracy"),
                           error_y={"type": "data", "array": curve.get("std")},
                           mode="lines+markers", name=f"depth {curve.get('depth')}")
    return [figure]


def _landscape(result: dict[str, Any]) -> list[go.Figure]:
    alphas, betas, cost = result.get("alphas"), result.get("betas"), result.get("cost")
    surface = go.Figure(layout={**_LAYOUT, "height": 600, "title": "Cost surface",
                                "scene": {"xaxis": {"title": "α"}, "yaxis": {"title": "β"},
                                          "zaxis": {"title": "cost"},
                                          "camera": {"eye": {"x": 1.6, "y": 1.6, "z": 1.1}}}})
    surface.add_surface(x=alphas, y=betas, z=cost, colorscale="Viridis", name="cost",
                        contours={"z": {"show": True, "usecolormap": True, "project_z": True}})
    path, path_cost = result.get("path") or [], result.get("path_cost") or []
    if path and len(path_cost) == len(path):
        surface.add_scatter3d(x=[point[0] for point in path], y=[point[1] for point in path],
                              z=path_cost, mode="lines+markers", name="training path",
                              line={"color": "#d62728", "width": 4}, marker={"size": 2})
    contour = go.Figure(layout={**_LAYOUT, "title": "Contours, with the training path",
                                "xaxis": {"title": "α"}, "yaxis": {"title": "β"},
                                "margin": {**_LAYOUT["margin"], "b": 90},
                                "legend": {"orientation": "h", "yanchor": "top", "y": -0.18}})
    contour.add_contour(x=alphas, y=betas, z=cost, colorscale="Viridis", name="cost")
    if path:
        contour.add_scatter(x=[point[0] for point in path], y=[point[1] for point in path],
                            mode="lines+markers", name="training path",
                            line={"color": "#d62728"}, marker={"size": 4})
    contour.add_scatter(x=[0], y=[0], mode="markers", name="the weights",
                        marker={"color": "white", "size": 10, "line": {"width": 2}})
    return [surface, contour]


def _spectrum(result: dict[str, Any]) -> list[go.Figure]:
    eigenvalues = result.get("eigenvalues") or []
    figure = go.Figure(layout={**_LAYOUT, "title": "Top eigenvalues",
                               "xaxis": {"title": "rank", "dtick": 1},
                               "yaxis": {"title": "eigenvalue"}})
    ranks = list(range(1, len(eigenvalues) + 1))
    figure.add_scatter(x=ranks, y=eigenvalues, mode="markers", name="Lanczos",
                       marker={"size": 10})
    exact = result.get("exact")
    if exact:
        figure.add_scatter(x=list(range(1, len(exact) + 1)), y=exact, mode="markers",
                           name="full Hessian", marker={"symbol": "x", "size": 8})
    return [figure]


FIGURES = {"digits": _digits, "sweep": _sweep, "landscape": _landscape, "spectrum": _spectrum}


def _rows(values: dict[str, Any]) -> str:
    """Table rows for the short values (long lists, configs and weights are left out)."""
    rows = []
    for key, value in values.items():
        text = json.dumps(value)
        if len(text) <= 80:
            rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(text)}</td></tr>")
    return "\n".join(rows)


def build_report(job: dict[str, Any]) -> str:
    """The HTML report of a finished job (``Job.public()``), plotly.js inlined once."""
    kind = job["kind"]
    result = job.get("result") or {}
    figures = FIGURES[kind](result) if kind in FIGURES else []
    parts = [
        pio.to_html(figure, include_plotlyjs=index == 0, full_html=False, config=_CONFIG)
        for index, figure in enumerate(figures)
    ]
    title = TITLES.get(kind, kind).format(**(job.get("spec") or {}))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backprop Lab report: {html.escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>Job {html.escape(job["id"])}, submitted {html.escape(job.get("created", ""))},
{html.escape(job["state"])}. Made by Backprop Lab with plotly {html.escape(plotly.__version__)};
it works offline.</p>
<h2>Settings</h2>
<table>{_rows(job.get("spec") or {})}</table>
<h2>Result</h2>
<table>{_rows(result)}</table>
<div class="figures">
{"".join(parts)}
</div>
</body>
</html>
"""
