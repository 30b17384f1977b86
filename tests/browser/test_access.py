"""Access (issue 12): axe-core finds no serious or critical violation on any page, once drawn
and with its panels open; every page fits 768 and 1280 px without sideways scrolling, with
equal scales on the plots whose geometry matters.

The page list comes from the app's own routes (every GET route that answers HTML, and each
lab of app.labs when that module exists), so a page added later is checked too.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import get_type_hints

import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from playwright.sync_api import Page

from tests.browser.helpers import Playground, check

# HTML routes with a path parameter that are not pages of the app, and why.
NOT_PAGES = {
    "/api/jobs/{job_id}/report": "one finished job's downloadable report (test_job_report.py)",
}
WIDTHS = (768, 1280)


def _serves_html(route: APIRoute) -> bool:
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    if isinstance(response_class, type) and issubclass(response_class, HTMLResponse):
        return True
    try:
        returned = get_type_hints(route.endpoint).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, HTMLResponse)


def _routes(routes: list, prefix: str = "") -> list[tuple[str, APIRoute]]:
    """(full path, route) of every APIRoute, inside included routers too (FastAPI keeps an
    included router whole, with its prefix, rather than copying its routes onto the app)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append((prefix + route.path, route))
        elif hasattr(route, "original_router"):
            found += _routes(route.original_router.routes, prefix + route.include_context.prefix)
    return found


def html_routes() -> list[str]:
    """The paths of the app's GET routes that answer with an HTML page."""
    from app.main import app

    return [path for path, route in _routes(app.routes)
            if "GET" in route.methods and _serves_html(route)]


def lab_urls() -> list[str]:
    """/labs/<name> for every lab of app.labs (issue 11), when the app has labs."""
    if importlib.util.find_spec("app.labs") is None:
        return []
    from app.labs import LABS

    return [f"/labs/{lab.name}" for lab in LABS]


def page_urls() -> list[str]:
    """Every page of the app: the HTML routes without parameters, and each lab."""
    urls = [path for path in html_routes() if "{" not in path]
    if "/labs/{name}" in html_routes():
        urls += lab_urls()
    return urls


def test_the_page_list_covers_every_html_route():
    urls = page_urls()
    assert {"/", "/step", "/jobs", "/docs"} <= set(urls)
    for path in html_routes():
        if "{" in path:
            assert path == "/labs/{name}" or path in NOT_PAGES, (
                f"{path} answers HTML with a parameter: add its pages to page_urls()"
            )
    if "/labs/{name}" in html_routes():
        assert lab_urls(), "app.labs lists no lab"


def open_drawn(page: Page, base: str, url: str) -> None:
    """Load a page and wait until it has drawn what it draws (connected, first frame)."""
    page.goto(base + url)
    if url == "/":
        Playground(page, base).wait_frames(1)
        page.wait_for_function("() => !playground.starting")
    elif url == "/step":
        page.wait_for_function("() => window.stepPage && stepPage.graph !== null")
    elif url == "/jobs":
        page.wait_for_function("() => window.jobsPage && jobsPage.ready")
    elif url == "/docs":
        page.wait_for_selector(".opblock-summary-control")
    else:
        page.wait_for_load_state("networkidle")


def open_panels_playground(page: Page, base: str, where: Callable[[str], None]) -> None:
    pg = Playground(page, base)
    pg.pause()
    # the weight editor (a click on a link of the diagram)
    page.mouse.click(*pg.link_centre(1, 0, 0))
    page.wait_for_selector(".weight-editor:not([hidden])")
    where("/ with the weight editor open")
    page.keyboard.press("Escape")
    # the curves explorer (a modal dialog with Plotly)
    page.click("#explore-curves")
    page.wait_for_selector("#curves-dialog .explorer-plot .main-svg")
    where("/ with the curves explorer open")


def open_panels_step(page: Page, base: str, where: Callable[[str], None]) -> None:
    page.click("#forward")
    page.wait_for_function("() => stepPage.state.cursor.position === 1")
    page.click("#run")
    page.wait_for_function("() => stepPage.state.cursor.phase === 'done'")
    page.click("#graph .node >> nth=2")
    page.wait_for_function("() => stepPage.state.selected !== null")
    page.click("#paths")
    page.wait_for_selector("#paths-result table")
    page.click("#check")
    page.wait_for_selector("#check-result table")
    where("/step with a node, its paths and the gradient check shown")


def open_panels_jobs(page: Page, base: str, where: Callable[[str], None]) -> None:
    # a form refused by the page's own check: the error beside the field, aria-invalid set
    page.fill("#digits-epochs", "many")
    page.click("#form-digits button[type=submit]")
    page.wait_for_selector("#digits-epochs-error:not(:empty)")
    where("/jobs with a refused form")


def open_panels_docs(page: Page, base: str, where: Callable[[str], None]) -> None:
    page.click("#operations-default-submit_api_jobs_post .opblock-summary-control")
    page.click("#operations-default-submit_api_jobs_post .try-out__btn")
    page.wait_for_selector("#operations-default-submit_api_jobs_post .execute")
    page.click("#operations-default-get_job_api_jobs__job_id__get .opblock-summary-control")
    page.click("#operations-default-get_job_api_jobs__job_id__get .try-out__btn")
    page.wait_for_selector("#operations-default-get_job_api_jobs__job_id__get .execute")
    page.click(".models .json-schema-2020-12-accordion >> nth=0")
    page.click(".models .json-schema-2020-12-expand-deep-button >> nth=0")
    where("/docs with two operations open to try out and a schema expanded")


def open_panels_lab(page: Page, base: str, where: Callable[[str], None]) -> None:
    # a lab (issue 11, templates/labs/base.html): answer the prediction, run, see the verdict
    page.check('#predict input[name="prediction"] >> nth=0')
    page.click("#run")
    page.wait_for_selector("#verdict:not([hidden])", timeout=90_000)
    where(f"{page.url[len(base):]} run, with its verdict")


PANELS = {"/": open_panels_playground, "/step": open_panels_step,
          "/jobs": open_panels_jobs, "/docs": open_panels_docs}
PANELS.update({url: open_panels_lab for url in lab_urls()})


@pytest.mark.parametrize("url", page_urls())
def test_axe_finds_no_serious_violation(page, server_url, url):
    page.set_viewport_size({"width": 1280, "height": 900})
    open_drawn(page, server_url, url)
    check(page, f"{url} once drawn")
    if url in PANELS:
        PANELS[url](page, server_url, lambda where: check(page, where))


# ----- widths -----------------------------------------------------------------------------------
def assert_equal_scales(page: Page) -> None:
    """The decision surface and every warp panel map both axes with one scale, and the
    surface's input plane (a square extent) is drawn as a square."""
    geometry = page.evaluate("""() => {
        const s = playground.surface, a = s.area, rect = s.planeRect;
        const extent = s.surface.extent;
        return {
          sx: a.sx, sy: a.sy, plane: [rect.width, rect.height],
          extent: [extent[0][1] - extent[0][0], extent[1][1] - extent[1][0]],
          box: [a.width, a.height],
          warps: playground.warps.panels.filter((p) => p.draws > 0 || p.index === 0)
            .map((p) => [p.index, p.area.sx, p.area.sy]),
        };
    }""")
    assert geometry["sx"] == pytest.approx(geometry["sy"], rel=1e-9), geometry
    width, height = geometry["plane"]
    extent_width, extent_height = geometry["extent"]
    assert width / height == pytest.approx(extent_width / extent_height, abs=0.01), geometry
    assert geometry["box"][0] == geometry["box"][1], f"the surface's box is not square: {geometry}"
    assert len(geometry["warps"]) >= 3, geometry
    for index, sx, sy in geometry["warps"]:
        assert sx == pytest.approx(sy, rel=1e-9), f"warp panel {index}: {geometry}"


@pytest.mark.parametrize("width", WIDTHS)
def test_pages_fit_the_width_with_equal_scales(page, server_url, tmp_path, width):
    page.set_viewport_size({"width": width, "height": 900})
    for url in page_urls():
        open_drawn(page, server_url, url)
        if url == "/":
            # the warp panels are drawn while in sight: bring them there
            page.locator(".warp-section").scroll_into_view_if_needed()
            page.wait_for_function("() => playground.warps.panels.length >= 3"
                                   " && playground.warps.panels.every((p) => p.draws > 0)")
            Playground(page, server_url).settle()
            assert_equal_scales(page)
        page.wait_for_timeout(200)  # late layout (fonts, the data-later parts)
        scroll_width, inner_width = page.evaluate(
            "() => [document.scrollingElement.scrollWidth, innerWidth]")
        name = url.strip("/").replace("/", "-") or "playground"
        path = tmp_path / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot {url} at {width} px: {path}")
        assert scroll_width <= inner_width, (
            f"{url} at {width} px scrolls sideways: {scroll_width} > {inner_width} ({path})")
        assert Path(path).stat().st_size > 0


def test_plots_keep_equal_scales_as_the_window_changes(page, server_url, console_errors):
    """Between and beyond the two widths above: the same page, resized."""
    pg = Playground(page, server_url)
    page.set_viewport_size({"width": 1280, "height": 900})
    pg.open()
    for width in (900, 1100, 1500, 1920, 800):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator(".warp-section").scroll_into_view_if_needed()
        pg.wait_frames(2)
        pg.settle()
        assert_equal_scales(page)
