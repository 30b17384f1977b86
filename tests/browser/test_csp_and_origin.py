"""The pages under their Content-Security-Policy in chromium, and a page of another site
trying to open a session.

Every page's violations of the policy are collected with the `securitypolicyviolation`
event (an init script runs before the page's own) and must stay empty; chromium also
logs each one as a console error, which the `console_errors` fixture turns into a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.browser.helpers import Playground

_WATCH = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def watched(page, console_errors):
    page.add_init_script(_WATCH)
    return page


def _violations(page) -> list[str]:
    return page.evaluate("() => window.cspViolations")


def test_playground_works_under_the_policy(watched, server_url, shots):
    response = watched.goto(server_url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    pg = Playground(watched, server_url)
    pg.wait_frames(3)  # the frames came through the decoder worker
    assert pg.js("playground.socket.decoder !== null")
    pg.wait_for("playground.state.step > 0")
    # the curves' explorer loads plotly.js on demand
    watched.click("#explore-curves")
    pg.wait_for("document.querySelector('.explorer-plot .main-svg')", timeout=30_000)
    assert pg.js("document.querySelector('.explorer-plot').data.length") >= 4
    shots(watched, "playground-under-csp")
    watched.click(".explorer-head button")
    assert _violations(watched) == []


def test_step_page_works_under_the_policy(watched, server_url):
    watched.goto(server_url + "/step")
    watched.wait_for_function("() => window.stepPage && stepPage.graph !== null")
    watched.keyboard.press("ArrowRight")
    watched.wait_for_function("() => stepPage.state.cursor.position > 0")
    assert _violations(watched) == []


def test_api_docs_load_offline_under_the_policy(watched, server_url, shots):
    requested: list[str] = []
    watched.on("request", lambda request: requested.append(request.url))
    watched.goto(server_url + "/docs")
    watched.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=30_000)
    paths = watched.locator(".swagger-ui .opblock-summary-path").all_text_contents()
    assert "/healthz" in "".join(paths) and "/api/schema" in "".join(paths)
    shots(watched, "swagger-ui")
    assert _violations(watched) == []
    assert all(url.startswith(server_url) for url in requested), requested


@pytest.fixture
def other_site() -> Iterator[str]:
    """A page served from another origin (another port on 127.0.0.1: chromium's local
    network access checks would block a page of a public name, even one faked by a route,
    before it could reach the server; a real loopback page is what they let through)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>another site</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_page_of_another_site_cannot_open_a_session(page, server_url, other_site):
    page.goto(other_site + "/")
    before = httpx.get(server_url + "/healthz").json()["sessions"]
    ws_url = server_url.replace("http://", "ws://") + "/ws/session"
    closed = page.evaluate("""(url) => new Promise((done) => {
      const socket = new WebSocket(url);
      const received = [];
      socket.onmessage = (event) => received.push(event.data);
      socket.onclose = (event) => done({code: event.code, reason: event.reason, received});
    })""", ws_url)
    assert closed["code"] == 1008
    assert other_site in closed["reason"] and "ALLOWED_ORIGINS" in closed["reason"]
    assert closed["received"] == []  # no hello: no session was made
    assert httpx.get(server_url + "/healthz").json()["sessions"] == before
