"""The page under load (issue 10): a tab in the background stops asking for frames and its
session idles; a server that cannot train at the speed set says so, and by how much."""

from __future__ import annotations

import json
import time

import pytest

from app.settings import Settings
from tests.browser.helpers import Playground

HIDE = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  delete document.visibilityState;
  delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.fixture
def playground(page, server_url, console_errors) -> Playground:
    return Playground(page, server_url)


def test_a_background_tab_asks_for_no_frames_and_its_session_idles(playground):
    readies: list[float] = []
    frames: list[float] = []

    def watch(websocket) -> None:
        websocket.on("framesent", lambda payload: readies.append(time.monotonic())
                     if isinstance(payload, str) and json.loads(payload)["type"] == "ready"
                     else None)
        websocket.on("framereceived", lambda payload: frames.append(time.monotonic())
                     if isinstance(payload, bytes) else None)

    playground.page.on("websocket", watch)
    pg = playground.open(frames=3)
    pg.wait_for("playground.state.playing")
    speed = pg.js("playground.state.speed")
    pg.wait_frames(5)
    pg.page.evaluate(HIDE)
    hidden_at = time.monotonic()
    idle_after = Settings().idle_after_s
    pg.page.wait_for_timeout((idle_after + 4.0) * 1000)
    # at most the `ready` already on its way when the tab was hidden, then nothing
    late = [t for t in readies if t > hidden_at + 0.3]
    assert late == [], f"{len(late)} frames asked for while hidden"
    assert not [t for t in frames if t > hidden_at + 1.0]
    step_hidden = pg.js("playground.lastFrame.step")
    pg.page.evaluate(SHOW)
    pg.wait_frames(2)
    step_back = pg.js("playground.lastFrame.step")
    # hidden for idle_after + 4 s: training went on for idle_after at most (a margin of 1.5 s
    # for the frame in flight and the ticks), not for the whole time
    assert step_back - step_hidden <= speed * (idle_after + 1.5)
    # and it resumes
    pg.wait_for(f"playground.lastFrame.step > {step_back}")
    assert pg.js("playground.state.playing") is True


def test_the_page_says_when_the_server_trains_slower_than_the_speed_set(playground):
    pg = playground.open(frames=2)
    pg.wait_for("playground.state.playing")
    busy = pg.page.locator("#busy")
    assert busy.is_hidden()
    # no server trains a session at the largest speed allowed: it is busy for this one
    top = pg.js("playground.socket") and Settings().max_speed
    pg.js(f'playground.socket.send({{type: "patch", op: "set", path: "speed", value: {top}}})')
    busy.wait_for(state="visible", timeout=15_000)
    text = busy.text_content()
    assert text.startswith("Server busy: training at ")
    assert text.endswith(f"steps/s of the {int(top)} you set.")
    achieved = int(text.split("training at ")[1].split(" ")[0])
    assert 0 < achieved < 0.85 * top
    # a speed the server can keep: the notice goes
    pg.js('playground.socket.send({type: "patch", op: "set", path: "speed", value: 100})')
    busy.wait_for(state="hidden", timeout=15_000)
    assert pg.js("playground.state.playing") is True


def test_frames_leave_out_the_warps_while_their_panel_is_out_of_sight(playground):
    sent: list[dict] = []
    playground.page.on("websocket", lambda websocket: websocket.on(
        "framesent", lambda payload: sent.append(json.loads(payload))
        if isinstance(payload, str) else None))
    pg = playground.open(frames=3)
    pg.wait_for("playground.state.playing")
    assert pg.js("playground.lastFrame.warps.length") == 2
    # a short window, scrolled to the top: the warp panel is below the fold
    pg.page.set_viewport_size({"width": 1400, "height": 380})
    pg.page.evaluate("() => window.scrollTo(0, 0)")
    pg.wait_for("playground.lastFrame.warps === null")
    assert {"type": "ready", "warps": False} in sent
    step = pg.js("playground.lastFrame.step")
    pg.wait_for(f"playground.lastFrame.step > {step}")  # training and frames go on
    # back in sight: the next frames carry the warps, and the panels draw them
    pg.page.locator(".warp-section").scroll_into_view_if_needed()
    pg.wait_for("playground.lastFrame.warps !== null && playground.lastFrame.warps.length === 2")
    pg.wait_frames(2)
