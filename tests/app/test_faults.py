"""Faults a class's server meets, each against a dedicated uvicorn on 127.0.0.1: a client
that vanishes mid-frame, one that never acks, 50 half-open connections, and 1,000
sessions opened and closed. After each, the server serves a new session normally, and a
witness session opened before the fault still holds exactly its own run.

The clients here are raw sockets speaking just enough of RFC 6455, so that they can do
what a browser never does: stop reading, stop half-way, or vanish with a TCP reset.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.servers import Uvicorn


# ----- a raw WebSocket client -------------------------------------------------------------
class RawSocket:
    """A WebSocket over a plain TCP socket. ``receive_buffer`` shrinks the kernel's
    receive buffer, so that a client that stops reading stalls the server's send at once."""

    def __init__(self, port: int, receive_buffer: int | None = None, handshake: bool = True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(20)
        self.sock.connect(("127.0.0.1", port))
        self.port = port
        self.pending = b""
        if handshake:
            self.handshake()

    def handshake(self) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET /ws/session HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode())
        while b"\r\n\r\n" not in self.pending:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.pending += chunk
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, message: dict) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81])  # FIN, text
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self.pending) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.pending += chunk
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def receive(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next whole message (the server never fragments)."""
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        return first & 0x0F, self._read(length)

    def receive_json(self) -> dict:
        while True:
            opcode, payload = self.receive()
            if opcode == 1:
                return json.loads(payload)

    def vanish(self) -> None:
        """Close with a TCP reset (linger 0): no close frame, no FIN, as a crash would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# ----- the server and its witness -----------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Uvicorn]:
    uvicorn = Uvicorn(tmp_path_factory.mktemp("faults") / "server.log").start()
    try:
        yield uvicorn
    finally:
        uvicorn.stop()
    assert "Traceback" not in uvicorn.log(), uvicorn.log()


WITNESS_CONFIG = {
    "model": {"layers": [{"units": 3, "activation": "relu"}], "seed": 11},
    "training": {"learning_rate": 0.05},
    "data": {"name": "xor", "size": 120, "seed": 5},
}


@contextlib.contextmanager
def witness(server: Uvicorn) -> Iterator[RawSocket]:
    """A session with a run of its own, opened before a fault and checked after it: the
    same config, weights and step, and it still trains and draws."""
    client = RawSocket(server.port)
    assert client.receive_json()["type"] == "hello"
    client.send({"type": "configure", "id": 1, "config": WITNESS_CONFIG})
    assert client.receive_json()["type"] == "state"
    client.send({"type": "step", "id": 2, "count": 37})
    assert client.receive_json()["step"] == 37
    client.send({"type": "export", "id": 3})
    before = client.receive_json()
    yield client
    client.send({"type": "export", "id": 4})
    after = client.receive_json()
    assert after["config"] == before["config"] and after["weights"] == before["weights"]
    assert after["step"] == 37
    client.send({"type": "step", "id": 5, "count": 3})
    assert client.receive_json()["step"] == 40
    client.send({"type": "ready"})
    assert client.receive()[0] == 2  # a binary frame
    client.close()


def new_session_trains(server: Uvicorn) -> None:
    """A session opened now configures, trains and draws a frame."""
    client = RawSocket(server.port)
    try:
        assert client.receive_json()["type"] == "hello"
        client.send({"type": "step", "id": 1, "count": 25})
        state = client.receive_json()
        assert state["type"] == "state" and state["step"] == 25
        client.send({"type": "ready"})
        opcode, frame = client.receive()
        assert opcode == 2 and len(frame) > 1000
    finally:
        client.close()


def _playing_with_frames(server: Uvicorn, receive_buffer: int) -> RawSocket:
    client = RawSocket(server.port, receive_buffer=receive_buffer)
    assert client.receive_json()["type"] == "hello"
    client.send({"type": "play", "id": 1, "speed": 2000})
    assert client.receive_json()["type"] == "state"
    return client


# ----- the faults -----------------------------------------------------------------------------
def test_a_client_that_vanishes_mid_frame(server):
    base = server.health()["sessions"]
    with witness(server):
        for _ in range(5):
            client = _playing_with_frames(server, receive_buffer=4096)
            for _ in range(3):
                client.send({"type": "ready"})
            client.receive()  # one whole frame
            client.send({"type": "ready"})
            client._read(100)  # the first bytes of the next: the server is mid-send
            client.vanish()
        server.wait_for_sessions(base + 1)  # the five are gone, the witness stays
        new_session_trains(server)
    server.wait_for_sessions(base)


def test_a_client_that_never_acks_gets_no_queue_of_frames(server):
    base = server.health()["sessions"]
    with witness(server):
        client = _playing_with_frames(server, receive_buffer=4096)
        client.send({"type": "ready"})  # exactly one frame may come
        opcode, _ = client.receive()
        assert opcode == 2
        # it trains on and on without acking: nothing more is sent until it says ready (the
        # frame may have been built before the training loop's first tick: ask until it moved)
        deadline = time.monotonic() + 10
        step = 0
        while step == 0 and time.monotonic() < deadline:
            client.send({"type": "export", "id": 7})
            reply = client.receive_json()
            assert reply["type"] == "export"
            step = reply["step"]
        assert step > 0
        client.sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            client.receive()
        client.sock.settimeout(20)
        rss = server.rss_kib()
        # and a client that sends commands without ever reading their replies is held back
        # by TCP (the server stops reading it), not queued in the server's memory
        client.sock.setblocking(False)
        message = json.dumps({"type": "export", "pad": "x" * 60_000}).encode()
        frame = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", len(message)) + b"\0" * 4 + message
        sent = 0
        with contextlib.suppress(BlockingIOError):
            while sent < 256 * 2**20:
                sent += client.sock.send(frame)
        assert sent < 64 * 2**20, "the server read every command without sending its replies"
        print(f"a client that never reads sent {sent / 2**20:.1f} MiB before TCP held it back")
        new_session_trains(server)
        grown = server.rss_kib() - rss
        print(f"server RSS grew {grown / 1024:.1f} MiB meanwhile")
        assert grown < 64 * 1024, "the server queued the replies in memory"
        client.vanish()
    server.wait_for_sessions(base)


def test_fifty_half_open_connections(server):
    base = server.health()["sessions"]
    with witness(server):
        partial = []
        for index in range(25):  # a request that never ends
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            sock.sendall(b"GET /ws/session HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr"[: 20 + index])
            partial.append(sock)
        silent = []
        for _ in range(25):  # sessions whose clients never read again
            client = _playing_with_frames(server, receive_buffer=4096)
            client.send({"type": "ready"})
            silent.append(client)
        server.wait_for_sessions(base + 26)
        new_session_trains(server)
        assert server.health()["status"] == "ok"
        for sock in partial:
            sock.close()
        for client in silent:
            client.vanish()
        server.wait_for_sessions(base + 1)
        new_session_trains(server)
    server.wait_for_sessions(base)


def test_memory_stays_bounded_across_a_thousand_sessions(server):
    import websockets

    url = f"ws://127.0.0.1:{server.port}/ws/session"

    async def one() -> None:
        async with websockets.connect(url, max_size=None) as websocket:
            hello = json.loads(await websocket.recv())
            assert hello["type"] == "hello"
            await websocket.send(json.dumps({"type": "step", "count": 5, "id": 1}))
            assert json.loads(await websocket.recv())["step"] == 5
            await websocket.send(json.dumps({"type": "ready"}))
            assert isinstance(await websocket.recv(), bytes)

    async def cycles(count: int, batch: int = 25) -> None:
        for _ in range(count // batch):
            await asyncio.gather(*(one() for _ in range(batch)))

    base = server.health()["sessions"]
    asyncio.run(cycles(200))  # warm-up: allocator pools, caches, imports
    server.wait_for_sessions(base)
    before = server.rss_kib()
    asyncio.run(cycles(1000))
    server.wait_for_sessions(base)
    after = server.rss_kib()
    print(f"server RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB after 1000 sessions")
    # a session holds its data, model and views: 1,000 leaked ones would be far more
    assert after - before < 24 * 1024, (before, after)
    new_session_trains(server)


def test_a_run_restored_elsewhere_carries_on_where_it_was(connect):
    """What a reconnecting page sends after a restart: its config, weights and counters
    (the browser side: tests/browser/test_restart.py)."""
    with connect() as first:
        first.command("step", count=240)
        held = first.command("export")
    with connect() as second:
        state = second.command("configure", config=held["config"], weights=held["weights"],
                               step=held["step"], epoch=held["epoch"])
        assert state["step"] == 240
        assert held["epoch"] <= state["epoch"] < held["epoch"] + 1 / 250  # 250 training points
        restored = second.command("export")
        assert restored["weights"] == held["weights"]
        assert second.frame()["step"] == 240
        assert second.command("step", count=2)["step"] == 242
