"""A job's HTML report in chromium, as the real server serves it: under its own sandboxed
Content-Security-Policy (inline script, no eval), fetching nothing, every plot drawn."""

from __future__ import annotations

import time

from playwright.sync_api import Page

from app.reports import REPORT_CSP
from tests.browser.helpers import check  # axe-core: no serious or critical violation

# a refused eval shows only as a `securitypolicyviolation` event (Plotly then quietly says
# "WebGL is not supported"): make each one a console error, which fails the test
VIOLATIONS_ARE_ERRORS = """document.addEventListener("securitypolicyviolation", (event) =>
  console.error(`CSP violation: ${event.violatedDirective} refused ${event.blockedURI}`));"""
DIGITS = {"kind": "digits", "epochs": 1, "hidden": 16, "train_size": 300, "map_points": 40,
          "backend": "numpy"}
LANDSCAPE = {"kind": "landscape", "resolution": 11, "backend": "numpy"}


def finished_job(page: Page, url: str, spec: dict) -> str:
    """Submit ``spec`` with the page's cookie; the job's id once it is done."""
    created = page.request.post(f"{url}/api/jobs", data=spec)
    assert created.status == 202, created.text()
    job_id = created.json()["id"]
    deadline = time.monotonic() + 180  # the first job may start the server's cluster
    while True:
        job = page.request.get(f"{url}/api/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            assert job["state"] == "done", job["message"]
            return job_id
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def open_report(page: Page, url: str, job_id: str, plots: int) -> None:
    response = page.goto(f"{url}/api/jobs/{job_id}/report")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == REPORT_CSP
    page.wait_for_function(
        """(plots) => {
          const drawn = document.querySelectorAll(".js-plotly-plot .main-svg");
          return document.querySelectorAll(".js-plotly-plot").length === plots
            && drawn.length >= plots;
        }""",
        arg=plots,
    )


def test_a_report_draws_every_plot_offline_under_its_own_policy(page: Page, server_url,
                                                                console_errors, shots):
    page.context.add_init_script(VIOLATIONS_ARE_ERRORS)
    elsewhere: list[str] = []

    def only_the_server(route) -> None:
        if route.request.url.startswith(server_url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{server_url}/api/jobs")  # the browser's cookie
    open_report(page, server_url, finished_job(page, server_url, DIGITS), plots=4)
    # training curves, confusion matrix, two maps whose points are SVG markers
    assert page.locator(".js-plotly-plot .heatmaplayer image").count() == 1
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() >= 2 * 40
    shots(page, "digits-report")
    check(page, "a digits job's report")
    open_report(page, server_url, finished_job(page, server_url, LANDSCAPE), plots=2)
    # the 3-D surface is WebGL: its scene has a canvas of real size
    size = page.evaluate("""() => {
      const canvas = document.querySelector(".js-plotly-plot .gl-container canvas");
      return canvas ? canvas.width * canvas.height : 0;
    }""")
    assert size > 0
    assert page.locator(".js-plotly-plot .contourlayer path").count() > 0
    shots(page, "landscape-report")
    check(page, "a landscape job's report")
    assert elsewhere == []
