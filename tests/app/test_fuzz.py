"""Fuzzing: every client message the protocol's JSON Schema allows, and near-valid ones
made by breaking such a message, sent to a live session on a real uvicorn; and
schemathesis against the REST routes' OpenAPI schema.

Each message gets a documented reply (checked against the server's message schema) or an
error, never an `internal` one; after every message the session still answers an
`export`. The server runs with small limits, so that a valid `configure` or `step` stays
cheap and the examples stay many.

The strategies come from the schema itself (`json_schema`, the same one GET /api/schema
serves): a new command or field is fuzzed the day it is added.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.encoding import unpack
from app.protocol import json_schema, protocol_for
from app.settings import Settings
from tests.servers import Uvicorn

# small limits: the cost of a valid command stays a few milliseconds (points, grids and
# warps no smaller than the default session's, which a new session starts with)
LIMITS = {
    "max_layers": 2, "max_units": 4, "max_points": 500, "max_grid": 100, "max_warp_lines": 21,
    "max_warp_samples": 41, "max_speed": 2000, "max_steps_per_command": 20,
    "max_epochs_per_command": 2,
    # the fuzzer sends as fast as it can: its commands must be carried out, not refused
    "command_rate": 100_000, "command_burst": 100_000,
}
SETTINGS = Settings(**LIMITS)
PROTOCOL = protocol_for(SETTINGS)
SCHEMA = json_schema(SETTINGS)["client_messages"]
DEFS = SCHEMA["$defs"]
MAX_ITEMS = 4  # longest list drawn (the schema's own limits allow thousands)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=MAX_ITEMS)
    | st.dictionaries(st.text(max_size=8), children, max_size=MAX_ITEMS),
    max_leaves=12,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema``: the subset of JSON Schema pydantic writes."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: from_schema(DEFS[name]))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(option) for option in schema[key]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = st.fixed_dictionaries(
            {name: from_schema(sub) for name, sub in properties.items() if name in required},
            optional={name: from_schema(sub) for name, sub in properties.items()
                      if name not in required},
        )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not properties:
            return st.dictionaries(st.text(max_size=8), from_schema(extra), max_size=MAX_ITEMS)
        return fixed
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(from_schema(schema.get("items", {})), min_size=low,
                        max_size=max(low, min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS)))
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**40) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**40 + 1) - 1)
        return st.integers(low, high)
    if kind == "number":
        return st.floats(
            schema.get("minimum", schema.get("exclusiveMinimum")),
            schema.get("maximum", schema.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in schema, exclude_max="exclusiveMaximum" in schema,
            allow_nan=False, allow_infinity=False,
        )
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 24)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda text: low <= len(text) <= high)
        return st.text(min_size=low, max_size=min(high, 24))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return json_values  # {}: any JSON value (JsonValue)


def _document_paths(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Every leaf a `patch` `set` can address, with its schema (lists at index 0)."""
    if "$ref" in schema:
        yield from _document_paths(DEFS[schema["$ref"].rsplit("/", 1)[-1]], prefix)
        return
    if schema.get("type") == "object" and "properties" in schema:
        for name, sub in schema["properties"].items():
            yield from _document_paths(sub, f"{prefix}{name}.")
        return
    if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        yield from _document_paths(schema["items"], f"{prefix}0.")
        return
    yield prefix.rstrip("."), schema


DOCUMENT = PROTOCOL.Document.model_json_schema()
DEFS.update(DOCUMENT.get("$defs", {}))
PATHS = list(_document_paths(DOCUMENT))
valid_messages = from_schema(SCHEMA)
# `patch set` with a real path and a value of its own type: the schema alone says "any
# string matching the pattern", which almost never names a setting
patch_sets = st.sampled_from(PATHS).flatmap(lambda item: st.fixed_dictionaries({
    "type": st.just("patch"), "op": st.just("set"), "path": st.just(item[0]),
    "value": from_schema(item[1]) | json_values,
}))


@st.composite
def near_valid_texts(draw) -> str:
    """A valid message broken in one way, as the text sent."""
    message = dict(draw(valid_messages | patch_sets))
    how = draw(st.sampled_from(
        ["value", "drop", "extra", "type", "truncate", "nest", "number", "container"]))
    keys = sorted(message)
    if how == "value" and keys:
        message[draw(st.sampled_from(keys))] = draw(json_values)
    elif how == "drop" and keys:
        message.pop(draw(st.sampled_from(keys)))
    elif how == "extra":
        message[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    elif how == "type":
        message["type"] = draw(st.text(max_size=12) | json_values)
    elif how == "number" and keys:
        huge = draw(st.sampled_from(["1e308", "-1e999", "NaN", "Infinity", "1" * 400, "-0"]))
        key = draw(st.sampled_from(keys))
        text = json.dumps({**message, key: "__number__"})
        return text.replace('"__number__"', huge)
    text = json.dumps(message, ensure_ascii=draw(st.booleans()))
    if how == "truncate" and len(text) > 1:
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "nest":
        depth = draw(st.integers(1, 60))
        return "[" * depth + text + "]" * depth
    if how == "container":
        return json.dumps(draw(st.sampled_from([[message], "text", 3, None, [], {}])))
    return text


# ----- the live server ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory) -> Iterator[str]:
    """uvicorn with the small limits above (from the environment, as a deployment sets them)."""
    server = Uvicorn(tmp_path_factory.mktemp("fuzz") / "server.log", **LIMITS).start()
    try:
        yield server.url
    finally:
        server.stop()
    # a session that ended with an exception is logged; none may have
    assert "Traceback" not in server.log(), server.log()


class LiveSession:
    """One WebSocket to the fuzz server; `exchange` sends a message and returns what came
    back before the reply to an `export` probe sent right after it."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.stack = contextlib.ExitStack()
        self.socket = self.stack.enter_context(connect(
            url.replace("http://", "ws://") + "/ws/session", max_size=None, open_timeout=20))
        self.probes = 0
        self.frames = 0
        hello = json.loads(self.socket.recv(timeout=20))
        PROTOCOL.server.validate_python(hello)

    def exchange(self, text: str) -> tuple[list[dict], dict]:
        self.probes += 1
        probe = f"probe-{self.probes}"
        self.socket.send(text)
        self.socket.send(json.dumps({"type": "export", "id": probe}))
        replies: list[dict] = []
        while True:
            raw = self.socket.recv(timeout=30)
            if isinstance(raw, bytes):  # a frame (the fuzzer may have said `ready`)
                PROTOCOL.Frame.model_validate(unpack(raw))
                self.frames += 1
                continue
            message = json.loads(raw)
            PROTOCOL.server.validate_python(message)  # a documented message, or it raises
            if message.get("id") == probe and message["type"] == "export":
                return replies, message
            replies.append(message)

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="module")
def live(fuzz_server) -> Iterator[LiveSession]:
    session = LiveSession(fuzz_server)
    yield session
    session.close()


def _check(live: LiveSession, text: str, sent: Any = None) -> list[dict]:
    replies, export = live.exchange(text)
    for reply in replies[:1]:  # --hypothesis-show-statistics shows what the fuzzing reached
        kind = sent.get("type") if isinstance(sent, dict) else None
        kind = kind if isinstance(kind, str) and len(kind) < 20 else type(sent).__name__
        event(f"{kind} -> {reply['type']} {reply.get('code', '')}".strip())
    assert not [r for r in replies if r.get("code") == "internal"], (text, replies)
    assert all(math.isfinite(v) for v in _numbers(export["weights"])), "weights not finite"
    if not (isinstance(sent, dict) and sent.get("type") == "ready"):  # acks have no reply
        # commands are carried out in order: the message's reply came before the probe's
        assert replies, f"no reply to {text[:300]!r}"
    return replies


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)):
        yield float(value)


FUZZ = settings(max_examples=400, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


@FUZZ
@given(message=valid_messages | patch_sets, message_id=st.integers(0, 2**31))
def test_every_valid_message_gets_a_reply(live, message, message_id):
    message = {**message, "id": message_id}
    replies = _check(live, json.dumps(message), message)
    if message["type"] != "ready":
        assert any(reply.get("id") == message_id for reply in replies), (message, replies)


@FUZZ
@given(text=near_valid_texts())
def test_every_near_valid_message_gets_a_reply_or_an_error(live, text):
    try:
        sent = json.loads(text)
    except (ValueError, RecursionError):
        sent = None
    _check(live, text, sent)


def test_the_session_still_trains_after_the_fuzzing(live):
    replies, _ = live.exchange(json.dumps({"type": "configure", "config": {}, "id": "again"}))
    assert replies[-1]["type"] == "state"
    replies, export = live.exchange(json.dumps({"type": "step", "count": 5, "id": "s"}))
    assert replies[-1]["type"] == "state" and export["step"] == 5
    live.socket.send(json.dumps({"type": "ready"}))
    frame = unpack(live.socket.recv(timeout=30))
    assert frame["step"] == 5


# ----- REST: schemathesis ----------------------------------------------------------------------
def test_rest_routes_never_answer_with_a_server_error(fuzz_server):
    import schemathesis
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(f"{fuzz_server}/openapi.json")
    operations = list(schema.get_all_operations())
    assert len(operations) >= 4
    tried = 0
    for result in operations:
        operation = result.ok()

        @settings(max_examples=15, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case):
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])
            assert response.headers["x-content-type-options"] == ["nosniff"]

        call()
        tried += 1
    assert tried == len(operations)
