"""Lab 5 in chromium: answer, run, the region map changes as the net learns, the verdict
comes from the run, the sawtooth follows its slider; no console error, no serious or
critical accessibility violation."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe

CANVAS = "() => document.getElementById('region-map').toDataURL()"


def serious(page) -> list[str]:
    violations = Axe().run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in violations if v["impact"] in ("serious",
                                                                             "critical")]


def test_hidden_units_lab(page, server_url, console_errors, shots):
    page.goto(f"{server_url}/labs/hidden-units")
    page.wait_for_function("() => window.lab && window.katex")
    run = page.get_by_test_id("run")
    assert run.is_disabled()
    page.wait_for_function(
        "() => document.getElementById('sawtooth-readout').textContent.includes('8 regions')")
    page.get_by_label("Fewer regions than one layer's most.").check()
    assert run.is_enabled()
    run.click()
    page.wait_for_function("() => lab.frames >= 1")
    first = page.evaluate(CANVAS)
    page.wait_for_function("() => lab.runs >= 1", timeout=30_000)
    assert page.evaluate(CANVAS) != first  # the map changed as the net learned
    verdict = page.locator("#verdict")
    assert verdict.is_visible()
    text = verdict.inner_text()
    assert "regions" in text and "at most 22" in text
    assert "Dead units: 0 of 6 at the start" in text  # one layer, 0.1 starting bias: all alive
    count = page.evaluate("() => lab.regionCount")
    assert page.locator("#readout-regions").inner_text() == str(count)
    held = "held" in verdict.get_attribute("class")
    assert held == (count < 22)
    shots(page, "hidden-units-relu")
    assert serious(page) == []

    # the sawtooth: 5 layers of 2 rectifiers make 32 regions
    page.locator("#sawtooth-depth").fill("5")
    page.wait_for_function(
        "() => document.getElementById('sawtooth-readout').textContent.includes('32 regions')")

    # a smooth unit: no regions, the map shows P(y = 1 | x)
    page.select_option("#activation", "tanh")
    page.locator("[data-setting=train_hidden]").uncheck()  # random tanh features
    page.get_by_label("None at all: these units are not piecewise linear.").check()
    run.click()
    page.wait_for_function("() => lab.runs >= 2", timeout=30_000)
    assert "held" in page.locator("#verdict").get_attribute("class")
    assert page.locator("#readout-regions").inner_text() == "none"
    assert "Only the output layer learned" in page.locator("#verdict").inner_text()
    shots(page, "hidden-units-tanh")


def test_hidden_units_lab_shows_the_servers_limit(page, server_url):
    # (chromium logs the 422 reply itself as a console error, so console errors are not
    # checked here)
    page.goto(f"{server_url}/labs/hidden-units")
    page.wait_for_function("() => window.lab")
    page.select_option("#activation", "maxout")
    page.locator("[data-setting=pieces]").fill("4")
    page.locator("[data-setting=depth]").fill("4")
    page.locator("[data-setting=width]").fill("16")
    page.locator("[data-setting=steps]").fill("2000")
    page.get_by_label("More than one layer can ever make.").check()
    page.get_by_test_id("run").click()
    error = page.locator("#lab-error")
    error.wait_for(state="visible")
    assert "most steps" in error.inner_text()
    error.get_by_role("button").click()  # "use steps = 250"
    assert page.locator("[data-setting=steps]").input_value() == "250"
