"""Lab 6 in chromium: answer, run, the estimates fill in as the sample count grows and
close in on the exact gradient, the verdict comes from the run; no console error, no
serious or critical accessibility violation."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe

POINTS = "() => document.getElementById('mu-plot').data[1].x.length"


def test_random_operations_lab(page, server_url, console_errors, shots):
    page.goto(f"{server_url}/labs/random-operations")
    page.wait_for_function("() => window.lab && window.katex")
    assert page.locator(".katex").count() > 5  # the chapter's equations are rendered
    run = page.get_by_test_id("run")
    assert run.is_disabled()
    page.get_by_label("The reparametrised estimate (back-propagating through the sample).").check()
    run.click()
    page.wait_for_function("() => lab.frames >= 1")
    first = page.evaluate(POINTS)
    page.wait_for_function("() => lab.runs >= 1", timeout=30_000)
    last = page.evaluate(POINTS)
    assert first < last == 10  # counts 2, 4, ..., 1024 drawn one after another
    # the last average of each estimator lies near the exact value
    exact = page.evaluate("() => document.getElementById('mu-plot').data.at(-1).y[0]")
    for index in (1, 3, 5):
        mean = page.evaluate(f"() => document.getElementById('mu-plot').data[{index}].y.at(-1)")
        assert abs(mean - exact) < 0.1
    verdict = page.locator("#verdict")
    assert "n = 1024" in verdict.inner_text()
    held = "held" in verdict.get_attribute("class")
    assert held == (page.evaluate("() => lab.best") == "reparametrised")
    shots(page, "random-operations-quadratic")
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []

    # a step cost: back-propagating through the sample says 0; REINFORCE wins
    page.select_option("#cost", "step")
    page.get_by_label("REINFORCE with a baseline.").check()
    run.click()
    page.wait_for_function("() => lab.runs >= 2", timeout=30_000)
    assert page.evaluate("() => lab.best") == "reinforce_baseline"
    assert "held" in page.locator("#verdict").get_attribute("class")
    assert "J′(y) = 0" in page.locator("#verdict").inner_text()
    shots(page, "random-operations-step")
