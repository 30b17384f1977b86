"""Lab 7 in chromium: answer, run the depth comparison (its figure fills in budget by
budget), the verdict from the run; the Hessian of a trained net (Lanczos against the whole
Hessian, a slice); a spectrum job submitted from the page and drawn in it. No console
error, no serious or critical accessibility violation."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from engine.depth import parameter_count

POINTS = "() => document.getElementById('error-plot').data[0].x.length"


def serious(page) -> list[str]:
    violations = Axe().run(page).response["violations"]
    return [v["id"] for v in violations if v["impact"] in ("serious", "critical")]


def test_depth_and_curvature_lab(page, server_url, console_errors, shots):
    page.goto(f"{server_url}/labs/depth-and-curvature")
    page.wait_for_function("() => window.lab && window.katex")
    run = page.get_by_test_id("run")
    assert run.is_disabled()
    page.locator("[data-setting=steps]").fill("600")
    page.get_by_label("A deeper, narrower net.").check()
    run.click()
    page.wait_for_function("() => lab.frames >= 1", timeout=30_000)
    first = page.evaluate(POINTS)
    page.wait_for_function("() => lab.runs >= 1", timeout=60_000)
    assert first < page.evaluate(POINTS) == 4  # four budgets drawn one after another
    verdict = page.locator("#verdict").inner_text()
    assert "At the largest budget the single layer" in verdict
    assert page.evaluate("() => document.getElementById('error-plot').data.length") == 3

    page.locator("#curvature-run").click()
    page.wait_for_function("() => lab.curvature", timeout=30_000)
    result = page.evaluate("() => lab.curvature")
    assert result["parameters"] == 3 * 8 + 9 * 8 + 9  # 2 inputs, 2 layers of 8, one output
    assert result["exact"] is not None
    for lanczos, exact in zip(result["eigenvalues"], result["exact"]):
        assert lanczos == pytest.approx(exact, rel=1e-6, abs=1e-9)
    assert page.evaluate("() => document.getElementById('eigen-plot').data.length") == 2
    assert page.locator("#job-spectrum").is_enabled()
    shots(page, "depth-and-curvature")
    assert serious(page) == []


def test_a_net_too_large_for_the_page_offers_the_widest(page, server_url):
    # (chromium logs the 422 reply as a console error, so console errors are not checked)
    page.goto(f"{server_url}/labs/depth-and-curvature")
    page.wait_for_function("() => window.lab")
    page.locator("#curvature-form [data-setting=depth]").fill("4")
    page.locator("#curvature-form [data-setting=width]").fill("32")
    page.locator("#curvature-run").click()
    error = page.locator("#lab-error")
    error.wait_for(state="visible")
    assert "spectrum job" in error.inner_text()
    error.get_by_role("button").click()
    width = int(page.locator("#curvature-form [data-setting=width]").input_value())
    assert parameter_count(2, 4, width) <= 1200 < parameter_count(2, 4, width + 1)


def test_a_spectrum_job_is_drawn_in_the_lab(page, server_url, console_errors, shots):
    page.goto(f"{server_url}/labs/depth-and-curvature")
    page.wait_for_function("() => window.lab")
    page.locator("#curvature-form [data-setting=width]").fill("4")
    page.locator("#curvature-run").click()
    page.wait_for_function("() => lab.curvature", timeout=30_000)
    page.locator("#job-spectrum").click()
    page.wait_for_function("() => lab.jobsDrawn >= 1", timeout=120_000)
    assert page.evaluate("() => lab.job.state") == "done"
    assert page.locator("#job-result .js-plotly-plot").count() >= 1
    shots(page, "depth-and-curvature-spectrum-job")
