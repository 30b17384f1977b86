"""End to end: a real uvicorn process on 127.0.0.1 and a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import msgpack
import websockets

from app.presets import preset


async def _conversation(url: str) -> dict:
    async with websockets.connect(url, max_size=2**24) as socket:
        async def reply() -> dict:
            while True:
                message = await asyncio.wait_for(socket.recv(), 20)
                if isinstance(message, str):
                    return json.loads(message)

        async def frame() -> dict:
            await socket.send(json.dumps({"type": "ready"}))
            while True:
                message = await asyncio.wait_for(socket.recv(), 20)
                if isinstance(message, bytes):
                    return msgpack.unpackb(message, raw=False)

        hello = await reply()
        await socket.send(json.dumps({"type": "configure", "id": 1,
                                      "config": preset("fig_6_2")["config"]}))
        configured = await reply()
        first = await frame()
        await socket.send(json.dumps({"type": "play", "id": 2, "speed": 3000}))
        playing = await reply()
        frames = [await frame() for _ in range(5)]
        await socket.send(json.dumps({"type": "pause", "id": 3}))
        paused = await reply()
        await socket.send(json.dumps({"type": "patch", "id": 4, "op": "add_unit", "layer": 0}))
        patched = await reply()
        await socket.send("{not json")
        error = await reply()
        await socket.send(json.dumps({"type": "export", "id": 5}))
        exported = await reply()
        return dict(hello=hello, configured=configured, first=first, playing=playing,
                    frames=frames, paused=paused, patched=patched, error=error,
                    exported=exported)


def test_a_real_server_trains_and_streams_frames(live_server):
    assert httpx.get(f"{live_server}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{live_server}/api/presets").status_code == 200
    assert httpx.head(f"{live_server}/vendor/plotly.min.js").status_code in (200, 405)
    url = live_server.replace("http://", "ws://") + "/ws/session"
    talk = asyncio.run(_conversation(url))
    assert talk["hello"]["type"] == "hello"
    assert talk["configured"]["id"] == 1
    assert talk["configured"]["network"]["layers"] == [
        {"units": 2, "activation": "tanh", "width": 2}]
    first = talk["first"]
    assert first["type"] == "frame" and first["step"] == 0
    assert first["surface"]["values"]["shape"] == [100, 100]
    assert first["warps"][0]["activation"]["projection"] == "none"
    assert talk["playing"]["playing"] is True
    steps = [f["step"] for f in talk["frames"]]
    assert steps == sorted(steps) and steps[-1] > 0
    assert talk["frames"][-1]["train_loss"] < first["train_loss"]
    assert talk["paused"]["playing"] is False
    assert talk["patched"]["network"]["layers"][0]["units"] == 3
    assert talk["error"]["code"] == "bad_json"
    weights = talk["exported"]["weights"]
    assert len(weights["W1"][0]) == 3 and weights["Wout"]
    # the closed connection's session is gone
    deadline = time.monotonic() + 5
    while httpx.get(f"{live_server}/healthz").json()["sessions"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"{live_server}/healthz").json()["sessions"] == 0
