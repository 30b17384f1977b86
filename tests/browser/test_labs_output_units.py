"""Lab page /labs/output-units in a real browser: each output unit asks its own question;
predict, run, watch the main figure change, no console error, no serious accessibility
violation."""

from __future__ import annotations

import pytest

from tests.browser.lab_driver import changed, check_verdict, serious_violations

FIGURE = "() => JSON.stringify(document.getElementById('main-plot').data.map((t) => t.y))"


@pytest.mark.parametrize("unit, answer", [("mixture", "3"), ("gaussian_learned", "left")])
def test_output_units_lab(page, server_url, console_errors, shots, unit, answer):
    page.goto(f"{server_url}/labs/output-units")
    page.wait_for_function("() => window.lab !== undefined")
    question = page.inner_text("#question-text")
    page.check(f'input[name="unit"][value="{unit}"]')
    if unit != "mixture":
        assert page.inner_text("#question-text") != question, "the question follows the unit"
    # choosing a unit resets the prediction: Run waits for a new answer
    assert page.locator("#run").is_disabled()
    page.check(f'input[name="prediction"][value="{answer}"]')
    page.fill('[data-setting="steps"]', "400")
    page.click("#run")
    page.wait_for_function("() => window.lab.frames >= 1", timeout=90_000)
    first = page.evaluate(FIGURE)
    page.wait_for_function("() => window.lab.runs >= 1", timeout=90_000)
    last = page.evaluate(FIGURE)
    assert changed(first, last), "the main figure did not change as the network trained"
    check_verdict(page)
    shots(page, f"output-units-{unit}")
    assert serious_violations(page) == []


def test_a_setting_too_large_offers_the_largest_that_works(page, server_url):
    # the refused request is the only error the browser may log (its 422 response)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.goto(f"{server_url}/labs/output-units")
    page.wait_for_function("() => window.lab !== undefined")
    page.check('input[name="prediction"][value="2"]')
    page.fill('[data-setting="steps"]', "99999")
    page.click("#run")
    error = page.locator("#lab-error")
    error.wait_for(state="visible")
    assert "steps" in error.inner_text() and "8000" in error.inner_text()
    error.locator("button").click()
    assert page.input_value('[data-setting="steps"]') == "8000"
    # 8000 is the field's limit, but too long a run for a mixture: the server says so and
    # offers the largest number of steps that fits one request
    page.click("#run")
    page.wait_for_function("() => window.lab.runs >= 2", timeout=120_000)
    assert "too long" in error.inner_text()
    largest = error.locator("button").inner_text().split("= ")[1]
    error.locator("button").click()
    assert page.input_value('[data-setting="steps"]') == largest and int(largest) < 8000
    # that one the server accepts: it trains, and the error is gone
    page.click("#run")
    page.wait_for_function("() => window.lab.runs >= 3", timeout=120_000)
    assert page.locator("#lab-error").is_hidden()
    check_verdict(page)
    assert len(errors) == 2 and all("422" in text for text in errors), errors
