"""The page when the server fails it: a restart while it trains (the page says it lost the
connection, retries, and restores its run on the new process from what it holds: config,
weights, step), and a refusal (the page shows the server's reason and gets in later).

Each test has a dedicated uvicorn, killed (SIGKILL, as a crash would) and started again on
the same port; the shared server of the other browser tests is never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.browser.helpers import Playground
from tests.servers import Uvicorn


@pytest.fixture
def restartable(tmp_path) -> Iterator[Uvicorn]:
    server = Uvicorn(tmp_path / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_the_page_restores_its_run_after_a_server_restart(page, restartable, shots):
    # chromium logs each refused retry while the server is down as a console error of its
    # own; every other error, and any uncaught exception, fails the test
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    sent: list[dict] = []

    def watch(websocket) -> None:
        def record(payload) -> None:
            if isinstance(payload, str):
                sent.append(json.loads(payload))
        websocket.on("framesent", record)

    page.on("websocket", watch)
    pg = Playground(page, restartable.url).open()
    first_loss = pg.loss()
    pg.wait_for("playground.state.step > 600", timeout=30_000)
    assert pg.js("playground.state.playing") is True

    restartable.kill()
    # what the page holds once the server is gone: no frame can change it any more
    pg.wait_for("!document.getElementById('banner').hidden")
    assert "reconnecting" in pg.text("#banner")
    shots(page, "server-gone")
    session = pg.js("playground.state.session")
    config = pg.config
    held = pg.weights()
    step = pg.step
    loss = pg.loss()
    curve = pg.js("playground.state.curves.step.slice()")
    assert loss < first_loss  # it had learnt something worth restoring

    sent.clear()
    restartable.start()
    pg.wait_for(f"playground.state.session !== {session!r}", timeout=30_000)
    pg.wait_for("document.getElementById('banner').hidden")
    # the page sent its run to the new process: config, the weights it held, its counters
    restore = next(message for message in sent if message["type"] == "configure")
    assert restore["config"] == config and restore["play"] is True
    assert restore["step"] == step
    for name, values in held.items():
        flat = restore["weights"][name]
        flat = [v for row in flat for v in row] if flat and isinstance(flat[0], list) else flat
        assert flat == pytest.approx(values, abs=1e-6), name
    # and the new process carries on from there: the step counts on, the loss is the trained
    # net's (fresh weights would start again near the first loss)
    pg.wait_frames(2)
    assert pg.step >= step
    pg.wait_for(f"playground.state.step > {step + 100}", timeout=30_000)
    assert pg.js("playground.state.playing") is True
    assert pg.loss() < (loss + first_loss) / 2
    assert pg.config == config
    # the curves carry on from the old process's points (no new start at step 0)
    assert pg.js(f"playground.state.curves.step.slice(0, {len(curve)})") == curve
    shots(page, "restored")
    unexpected = [text for text in errors if "ERR_CONNECTION_REFUSED" not in text]
    assert unexpected == []


def test_a_refused_page_says_why_and_gets_in_when_a_place_frees(page, tmp_path, shots):
    from websockets.sync.client import connect

    server = Uvicorn(tmp_path / "server.log", max_sessions_per_address=1).start()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    try:
        with connect(server.url.replace("http://", "ws://") + "/ws/session") as other:
            assert json.loads(other.recv(timeout=20))["type"] == "hello"
            page.goto(server.url + "/")
            pg = Playground(page, server.url)
            pg.wait_for("!document.getElementById('banner').hidden")
            banner = pg.text("#banner")
            assert "refused" in banner and "most sessions one address may open (1)" in banner
            shots(page, "refused")
        # the other session closed: the page's next try gets in and trains
        pg.wait_for("document.getElementById('banner').hidden", timeout=30_000)
        pg.wait_frames(2)
        pg.wait_for("playground.state.step > 0", timeout=30_000)
    finally:
        server.stop()
    assert errors == []
