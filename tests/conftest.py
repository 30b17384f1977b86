"""Fixtures shared by the test folders: the app, its test client, a session client that
speaks the WebSocket protocol, and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings():
    from app.settings import Settings

    # a test drives its session at machine speed, as a script would: the command rate limit
    # has tests of its own (tests/app/test_security.py), with the default limit
    return Settings(max_sessions=8, command_rate=1e6, command_burst=1_000_000)


@pytest.fixture
def app(settings):
    from app.main import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


class SessionClient:
    """One WebSocket session through the TestClient, with a timeout on every receive so a
    missing reply fails the test instead of hanging it."""

    def __init__(self, websocket: Any, timeout: float = 20.0):
        self.websocket = websocket
        self.timeout = timeout
        self.ids = itertools.count(1)
        self.frames: list[dict] = []  # frames that arrived while waiting for a reply
        self.events: list[dict] = []  # JSON messages that were not the awaited reply
        self.last_frame_bytes = 0
        self.hello = self.receive()[1]

    def receive(self, timeout: float | None = None) -> tuple[str, dict]:
        """("json", message) or ("frame", decoded msgpack frame)."""
        from app.encoding import unpack

        async def get():
            with anyio.fail_after(timeout or self.timeout):
                return await self.websocket._send_rx.receive()

        message = self.websocket.portal.call(get)
        if message["type"] == "websocket.close":
            raise ConnectionError(f"closed with code {message.get('code')}")
        if message.get("text") is not None:
            return "json", json.loads(message["text"])
        self.last_frame_bytes = len(message["bytes"])
        return "frame", unpack(message["bytes"])

    def send(self, message: dict | str | bytes) -> None:
        if isinstance(message, bytes):
            self.websocket.send_bytes(message)
        elif isinstance(message, str):
            self.websocket.send_text(message)
        else:
            self.websocket.send_text(json.dumps(message))

    def command(self, type: str, **fields: Any) -> dict:
        """Send a command and return its reply (state, export or error)."""
        message_id = next(self.ids)
        self.send({"type": type, "id": message_id, **fields})
        return self.reply(message_id)

    def raw(self, text: str | bytes) -> dict:
        """Send a raw message and return the next JSON message (its error)."""
        self.send(text)
        return self.reply(None)

    def reply(self, message_id: Any) -> dict:
        while True:
            kind, message = self.receive()
            if kind == "frame":
                self.frames.append(message)
            elif message.get("id") == message_id and message["type"] in (
                "state", "error", "export"
            ):
                return message
            else:
                self.events.append(message)

    def frame(self, timeout: float | None = None) -> dict:
        """Say ready and return the next frame."""
        self.send({"type": "ready"})
        return self.next_frame(timeout)

    def next_frame(self, timeout: float | None = None) -> dict:
        while True:
            kind, message = self.receive(timeout)
            if kind == "frame":
                return message
            self.events.append(message)

    def weights(self) -> dict[str, Any]:
        return self.command("export")["weights"]


@contextmanager
def open_session(
    client: Any, timeout: float = 20.0, headers: dict[str, str] | None = None
) -> Iterator[SessionClient]:
    """A session on ``client``'s app, closed cleanly: the server finishes the session
    before the test client cancels the app's task (cancelling mid-close would raise)."""
    context = client.websocket_connect("/ws/session", headers=dict(headers or {}))
    websocket = context.__enter__()
    try:
        session = SessionClient(websocket, timeout)
        yield session
        websocket.close(1000)
        sessions = client.app.state.registry.sessions
        deadline = time.monotonic() + timeout
        while session.hello["session"] in sessions and time.monotonic() < deadline:
            time.sleep(0.005)
    except BaseException:
        # closing after a failure can raise CancelledError, which would hide the failure
        with contextlib.suppress(BaseException):
            context.__exit__(None, None, None)
        raise
    context.__exit__(None, None, None)


@pytest.fixture
def connect(client) -> Callable[..., Any]:
    """``with connect() as session:`` opens a session on the test app."""
    return lambda timeout=20.0: open_session(client, timeout)


@pytest.fixture
def session_on() -> Callable[..., Any]:
    """``with session_on(other_client) as session:`` for apps with other settings."""
    return open_session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """A real ``uvicorn app.main:app`` process on 127.0.0.1; yields its base URL.

    Its output goes to a file (a pipe nobody reads would fill and stall the server)."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within 30 s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop of its own on the main
    thread for the rest of the run, so tests that run an asyncio loop there (the Dask
    cluster's, anyio's) must come before the browser starts."""
    browser = ROOT / "tests" / "browser"
    items.sort(key=lambda item: Path(item.path).is_relative_to(browser))
