"""Drive a lab page in the browser: answer its question, run it, read its main figure, and
check it with axe-core."""

from __future__ import annotations

import json

from playwright.sync_api import Page

# the y values of every trace of a Plotly figure: a picture's content, not its DOM
_FIGURE = """(id) => JSON.stringify((document.getElementById(id).data || []).map((t) => t.y))"""


def run_lab(page: Page, base_url: str, name: str, answer: str, figure: str,
            settings: dict[str, str] | None = None, timeout: float = 90_000) -> tuple[str, str]:
    """Open /labs/<name>, answer, set ``settings`` and run; returns the main figure's data
    at the first drawn snapshot and at the end."""
    page.goto(f"{base_url}/labs/{name}")
    page.wait_for_function("() => window.lab !== undefined && window.katex !== undefined")
    run = page.locator("#run")
    assert run.is_disabled(), "Run must wait for the learner's prediction"
    for setting, value in (settings or {}).items():
        page.fill(f'[data-setting="{setting}"]', value)
    page.check(f'input[name="prediction"][value="{answer}"]')
    assert run.is_enabled()
    run.click()
    page.wait_for_function("() => window.lab.frames >= 1", timeout=timeout)
    first = page.evaluate(_FIGURE, figure)
    page.wait_for_function("() => window.lab.runs >= 1", timeout=timeout)
    last = page.evaluate(_FIGURE, figure)
    return first, last


def check_verdict(page: Page) -> str:
    verdict = page.locator("#verdict")
    assert verdict.is_visible()
    text = verdict.inner_text()
    assert text.startswith(("Your prediction held.", "Not this time."))
    return text


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in violations
            if v.get("impact") in ("serious", "critical")]


def changed(first: str, last: str) -> bool:
    return json.loads(first) != json.loads(last)
