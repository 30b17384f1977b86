"""Hostile input: sockets from other sites, deep and fast messages, many sessions from one
address, and the headers every page carries. Each refusal is clear, and the session or
the server goes on serving."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocketDisconnect

from app.limits import AddressCounter, TokenBucket, json_depth, too_deep
from app.main import create_app
from app.security import CONTENT_SECURITY_POLICY, normalise_origin
from app.settings import Settings


def _test_client(**overrides) -> TestClient:
    """An app with the default limits (the shared `client` fixture lifts the rate limit)."""
    return TestClient(create_app(Settings(max_sessions=8, **overrides)))


# ----- Origin ------------------------------------------------------------------------------
def _refused_reason(client: TestClient, origin: str) -> tuple[int, str]:
    with client.websocket_connect("/ws/session", headers={"origin": origin}) as websocket:
        with pytest.raises(WebSocketDisconnect) as closed:
            websocket.receive_text()
    return closed.value.code, closed.value.reason


def test_a_socket_from_another_site_is_refused_before_a_session_exists(client, session_on):
    code, reason = _refused_reason(client, "http://evil.example")
    assert code == 1008
    assert "http://evil.example" in reason and "BACKPROP_LAB_ALLOWED_ORIGINS" in reason
    assert len(client.app.state.registry) == 0
    assert client.app.state.addresses.open == {}
    for origin in ("null", "file://", "http://testserver.evil.example", "https://testserver:444"):
        assert _refused_reason(client, origin)[0] == 1008, origin
    # the app's own pages, and clients that send no Origin, get a session
    for headers in ({"origin": "http://testserver"}, {"origin": "HTTP://TestServer:80"}, {}):
        with session_on(client, headers=headers) as session:
            assert session.hello["type"] == "hello"


def test_the_jobs_socket_refuses_another_site_before_looking_up_the_job(client):
    # refused for its origin (1008), not for the unknown job (4404): nothing is revealed
    with client.websocket_connect(
        "/ws/jobs/no-such-job", headers={"origin": "http://evil.example"}
    ) as websocket:
        with pytest.raises(WebSocketDisconnect) as closed:
            websocket.receive_text()
    assert closed.value.code == 1008
    assert "http://evil.example" in closed.value.reason
    with client.websocket_connect("/ws/jobs/no-such-job") as websocket:
        with pytest.raises(WebSocketDisconnect) as closed:
            websocket.receive_text()
    assert closed.value.code == 4404


def test_allowed_origins_come_from_the_settings(monkeypatch, session_on):
    monkeypatch.setenv("BACKPROP_LAB_ALLOWED_ORIGINS", "https://class.example, http://lab:8000")
    assert Settings().allowed_origins == ["https://class.example", "http://lab:8000"]
    monkeypatch.setenv("BACKPROP_LAB_ALLOWED_ORIGINS", '["https://class.example"]')
    assert Settings().allowed_origins == ["https://class.example"]
    with _test_client(allowed_origins=["https://class.example:443", "http://lab:8000"]) as client:
        for origin in ("https://class.example", "http://lab:8000"):
            with session_on(client, headers={"origin": origin}) as session:
                assert session.hello["type"] == "hello"
        assert _refused_reason(client, "http://class.example")[0] == 1008
    with _test_client(allowed_origins=["*"]) as client:
        with session_on(client, headers={"origin": "http://x.y"}) as session:
            assert session.hello["type"] == "hello"


def test_origins_are_compared_in_their_normal_form():
    assert normalise_origin("HTTPS://Example.COM:443/") == "https://example.com"
    assert normalise_origin("http://example.com:8080") == "http://example.com:8080"
    assert normalise_origin("http://[::1]:8000") == "http://[::1]:8000"
    for bad in ("null", "", "file:///etc", "ws://x", "http://", "http://x:99999"):
        assert normalise_origin(bad) is None, bad


# ----- headers -----------------------------------------------------------------------------
def test_every_response_carries_the_security_headers(client):
    for path in ("/", "/step", "/healthz", "/api/schema", "/static/js/socket.js",
                 "/vendor/plotly.min.js", "/docs", "/openapi.json", "/no-such-page"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'self'"
    assert "blob:" in policy["worker-src"]


def test_a_route_that_sets_its_own_policy_keeps_it():
    app = create_app(Settings())
    own = "default-src 'none'; script-src 'unsafe-inline'"
    app.add_route("/own", lambda request: PlainTextResponse(
        "x", headers={"Content-Security-Policy": own}))
    with TestClient(app) as client:
        response = client.get("/own")
    assert response.headers.get_list("content-security-policy") == [own]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script_and_name_no_other_origin(client):
    for path in ("/", "/step", "/docs"):
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (path, tag)
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path


def test_api_docs_are_served_offline(client):
    html = client.get("/docs").text
    assert "swagger-ui-bundle.js" in html and 'data-openapi-url="/openapi.json"' in html
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404
    assert "/ws/session" not in client.get("/openapi.json").json()["paths"]


# ----- nesting -------------------------------------------------------------------------------
def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text("[]{}\"\\ab,:", max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text("[]{}\"\\ab", max_size=4), children, max_size=3),
    max_leaves=30,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(_json)
def test_the_depth_scan_agrees_with_a_parser(value):
    text = json.dumps(value)
    assert json_depth(text) == _depth(value)
    assert too_deep(text, 2) == (_depth(value) > 2)


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '{"type": "patch", "op": "set", "path": "speed", "value": ' + "[" * 33 + "]" * 33 + "}",
    '{"type": "step", "id": 3, "x": ' + "[{" * 60_000 + "}]" * 60_000 + "}",
])
def test_deep_messages_get_an_error_naming_the_limit(trained_session, text):
    session = trained_session
    error = session.raw(text)
    assert error["code"] == "too_deep" and error["limit"] == 32, error
    assert "32" in error["message"]


def test_brackets_inside_strings_do_not_count(trained_session):
    value = "[" * 200
    error = trained_session.command("patch", op="set", path="model.layers.0.activation",
                                    value=value)
    assert error["code"] == "invalid" and error["field"] == "model.layers.0.activation"
    shallow = trained_session.command("patch", op="set", path="speed", value=[[[[1]]]])
    assert shallow["code"] == "invalid" and shallow["field"] == "speed"


@pytest.fixture
def trained_session(connect):
    """A session that trained; after the test its weights are unchanged and it trains on."""
    with connect() as session:
        session.command("step", count=20)
        before = session.command("export")
        yield session
        after = session.command("export")
        assert after["weights"] == before["weights"] and after["step"] == before["step"]
        assert session.command("step")["step"] == before["step"] + 1
        assert session.frame()["step"] == before["step"] + 1


# ----- rate ---------------------------------------------------------------------------------
def test_token_bucket_allows_a_burst_then_the_sustained_rate():
    now = [0.0]
    bucket = TokenBucket(rate=30, burst=100, clock=lambda: now[0])
    assert sum(bucket.take() for _ in range(150)) == 100
    now[0] += 1.0
    assert sum(bucket.take() for _ in range(150)) == 30
    now[0] += 60.0  # a long pause refills only up to the burst
    assert sum(bucket.take() for _ in range(150)) == 100


def test_a_flood_of_commands_is_refused_beyond_the_rate_and_the_session_goes_on(session_on):
    defaults = Settings()
    rate, burst = defaults.command_rate, defaults.command_burst
    with _test_client() as client, session_on(client) as session:
        count = 1000
        started = time.monotonic()
        for index in range(count):
            session.send({"type": "pause", "id": index})
        replies = [session.reply(index) for index in range(count)]
        elapsed = time.monotonic() - started
        carried = [reply for reply in replies if reply["type"] == "state"]
        refused = [reply for reply in replies if reply["type"] == "error"]
        assert len(carried) + len(refused) == count
        assert {reply["code"] for reply in refused} == {"rate_limited"}
        assert len(carried) >= burst
        assert len(carried) <= burst + rate * (elapsed + 1)
        first = refused[0]
        assert first["command"] == "pause" and first["limit"] == rate
        assert f"{rate:g} per second" in first["message"]
        # acks are never limited: the session still sends frames
        assert session.frame()["type"] == "frame"
        # and once the bucket refills, commands are carried out again
        deadline = time.monotonic() + 15
        while True:
            reply = session.command("export")
            if reply["type"] == "export" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert reply["type"] == "export"


def test_bad_messages_count_towards_the_rate(session_on):
    with _test_client(command_rate=1, command_burst=3) as client, session_on(client) as session:
        for _ in range(6):
            session.send("not json")
        codes = [session.reply(None)["code"] for _ in range(6)]
        assert codes[:3] == ["bad_json"] * 3
        assert "rate_limited" in codes[3:]


# ----- sessions per address -------------------------------------------------------------------
def test_one_address_may_hold_only_so_many_sessions(session_on):
    with _test_client(max_sessions_per_address=2) as client:
        with session_on(client), session_on(client) as second:
            with client.websocket_connect("/ws/session") as third:
                error = third.receive_json()
                assert error["code"] == "too_many_sessions"
                assert error["field"] == "max_sessions_per_address" and error["limit"] == 2
                with pytest.raises(WebSocketDisconnect) as closed:
                    third.receive_text()
                assert closed.value.code == 1013 and "(2)" in closed.value.reason
            assert len(client.app.state.registry) == 2
            assert second.command("step")["step"] == 1  # the others never noticed
        # closed sessions give their places back
        assert client.app.state.addresses.open == {}
        with session_on(client) as again, session_on(client):
            assert again.command("step")["step"] == 1


def test_address_counter_counts_each_address_alone():
    counter = AddressCounter()
    assert counter.acquire("a", 2) and counter.acquire("a", 2) and not counter.acquire("a", 2)
    assert counter.acquire("b", 2)
    counter.release("a")
    assert counter.acquire("a", 2)
    for _ in range(2):
        counter.release("a")
    counter.release("b")
    assert counter.open == {}
