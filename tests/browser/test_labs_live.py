"""The labs' live view (static/js/labs/live.js) in a real browser: after the learner answers
and presses Run, the lab's net trains in a playground session of its own; its canvas (the
playground's SurfaceView) changes as it trains, its step counter advances, a setting the
engine refuses is shown in the panel while the lab goes on, and the page passes axe."""

from __future__ import annotations

import pytest

from tests.browser.lab_driver import serious_violations

# the live surface's pixels, and the step they show, read in one task
_READ = """() => ({
  pixels: window.labLive.canvas.toDataURL(),
  step: window.labLive.step,
  frames: window.labLive.frames,
  status: document.querySelector('[data-testid="live-status"]').textContent,
})"""

_TWO_FRAMES = """() => new Promise((done) =>
  requestAnimationFrame(() => requestAnimationFrame(done)))"""

LABS = [
    # (lab, answer, settings, output unit for lab 4)
    ("shallow-regression", "smoother", {"steps": "600"}, None),
    ("conditional-statistics", "squared", {"steps": "600", "size": "400"}, None),
    ("output-units", "3", {"steps": "600"}, "mixture"),
    ("output-units", "half", {"steps": "600"}, "bernoulli"),
    ("hidden-units", "more", {"steps": "600"}, None),
    ("depth-and-curvature", "deep", {"steps": "600"}, None),
]


def _answer_and_run(page, server_url: str, lab: str, answer: str, settings: dict[str, str],
                    unit: str | None) -> None:
    page.goto(f"{server_url}/labs/{lab}")
    page.wait_for_function("() => window.lab !== undefined && window.labLive !== undefined")
    assert page.inner_text('[data-testid="live-status"]').startswith("Press Run"), \
        "the live view waits for Run"
    if unit:
        page.check(f'input[name="unit"][value="{unit}"]')
    for setting, value in settings.items():
        page.fill(f'[data-setting="{setting}"]', value)
    page.check(f'input[name="prediction"][value="{answer}"]')
    page.click("#run")


@pytest.mark.parametrize("lab, answer, settings, unit", LABS,
                         ids=[f"{lab}-{unit}" if unit else lab for lab, _, _, unit in LABS])
def test_live_view_trains_beside_the_lab(page, server_url, console_errors, shots, lab, answer,
                                         settings, unit):
    _answer_and_run(page, server_url, lab, answer, settings, unit)
    page.wait_for_function("() => window.labLive.frames >= 1", timeout=60_000)
    first = page.evaluate(_READ)
    page.wait_for_function(f"() => window.labLive.step >= {first['step'] + 150}", timeout=60_000)
    # one more animation frame, so that the canvas shows that step's frame
    page.evaluate(_TWO_FRAMES)
    later = page.evaluate(_READ)
    assert later["frames"] > first["frames"]
    assert later["step"] > first["step"]
    assert later["pixels"] != first["pixels"], "the live surface did not change as it trained"
    assert later["status"] != first["status"] and f"step {later['step']}" in later["status"]
    # the link opens the playground on this configuration (its share-link format)
    assert page.get_attribute(".live-link", "href").startswith("/#c=")
    # the lab's own run finishes as before, beside the live one
    page.wait_for_function("() => window.lab.runs >= 1", timeout=120_000)
    assert page.locator("#verdict").is_visible()
    # the live run pauses at the lab's number of steps; Play goes on past it
    page.wait_for_function("() => /paused at the lab/.test(window.labLive.status.textContent)",
                           timeout=60_000)
    play = page.locator(".live-play")
    assert play.inner_text() == "Play"
    stopped = page.evaluate("() => window.labLive.step")
    play.focus()
    page.keyboard.press("Enter")  # keyboard-usable
    page.wait_for_function(f"() => window.labLive.step > {stopped}", timeout=60_000)
    shots(page, f"live-{lab}{'-' + unit if unit else ''}")


def test_live_view_reset_hide_and_accessibility(page, server_url, console_errors, shots):
    _answer_and_run(page, server_url, "shallow-regression", "smoother", {"steps": "3000"}, None)
    page.wait_for_function("() => window.labLive.step >= 200", timeout=60_000)
    page.click(".live-reset")
    # reset: new initial weights, the counter starts again
    page.wait_for_function("() => window.labLive.step < 200", timeout=60_000)
    page.wait_for_function("() => window.labLive.step >= 100", timeout=60_000)
    # a hidden page closes its socket; shown again, it reopens with the weights and counters
    # it had (document.hidden is the browser's to set: the test overrides it)
    page.evaluate("""() => {
      window.closedSocket = window.labLive.socket.socket;
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    assert page.evaluate("() => window.labLive.socket === null")
    page.wait_for_function("() => window.closedSocket.readyState === WebSocket.CLOSED")
    hidden_at, frames = page.evaluate("() => [window.labLive.step, window.labLive.frames]")
    page.evaluate("""() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_function(f"() => window.labLive.frames > {frames}", timeout=60_000)
    # the first frame after it came back carries on from the step it left at
    assert page.evaluate("() => window.labLive.step") >= hidden_at
    # leaving the page closes the session too; coming back (the back-forward cache) reopens
    # it the same way
    page.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pagehide'))")
    assert page.evaluate("() => window.labLive.socket === null")
    left = page.evaluate("() => window.labLive.step")
    assert page.inner_text('[data-testid="live-status"]').startswith("Paused while the page")
    page.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pageshow', "
                  "{persisted: true}))")
    page.wait_for_function(f"() => window.labLive.step > {left} + 20", timeout=60_000)
    page.wait_for_function("() => window.lab.runs >= 1", timeout=120_000)
    assert serious_violations(page) == []
    shots(page, "live-accessibility")
    # "open in the playground" opens the playground on this very configuration
    expected = page.evaluate("() => window.labLive.state.config")
    page.goto(server_url + page.get_attribute(".live-link", "href"))
    page.wait_for_function("() => window.playground && window.playground.state.config",
                           timeout=60_000)
    assert page.evaluate("() => window.playground.state.config") == expected


def test_a_setting_the_engine_refuses_is_shown_and_the_lab_goes_on(page, server_url, shots):
    # the lab's own refused request is the only error the browser may log (its 422)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    _answer_and_run(page, server_url, "shallow-regression", "smoother",
                    {"steps": "400", "learning_rate": "fast"}, None)
    live_error = page.locator("#live .live-error")
    live_error.wait_for(state="visible", timeout=60_000)
    assert "could not start" in live_error.inner_text()
    assert "learning_rate" in live_error.inner_text()
    page.wait_for_function("() => window.lab.runs >= 1", timeout=60_000)
    shots(page, "live-error")
    # corrected, the same page runs both: the lab and the live view
    page.fill('[data-setting="learning_rate"]', "0.3")
    page.click("#run")
    page.wait_for_function("() => window.labLive.step >= 50", timeout=60_000)
    assert live_error.is_hidden()
    page.wait_for_function("() => window.lab.runs >= 2", timeout=120_000)
    assert len(errors) == 1 and "422" in errors[0], errors
