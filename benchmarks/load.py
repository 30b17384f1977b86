"""Many playing sessions against one server on this machine: frames, training speed, gaps.

    python benchmarks/load.py [--quick] [--sessions 10,25,50,100] [--seconds 8]
                              [--processes 1,cores] [--churn 1000]

For each process count (1, and one uvicorn worker per core) the script starts the server
(``uvicorn app.main:app`` on 127.0.0.1, a free port; nothing else is reached), and for
each N opens N WebSocket sessions of the default preset (circle, [4, 2] tanh, batch 10,
500 steps/s). Each client sends ``play`` and acknowledges every frame with ``ready`` as the
page does; it decodes only the frame's ``step`` counter (and ``speed``/``achieved`` when
present) by finding the key in the msgpack bytes, so that the load generator, which shares
the machine with the server, stays light. After a warm-up it measures for ``--seconds``:

- frames/s per client (min and median),
- training steps/s per client (min and median; the step counter's growth),
- the gaps between a client's frames (p50, p95, max over all clients),
- the server's CPU (user + system of its processes, in cores) and resident memory, and the
  work done per CPU-second (frames and training steps of all sessions per second of server
  CPU): on a machine shared with other work the wall-clock figures fall with the CPU the
  server gets, these much less,
- the load generator's own CPU (so that a saturated client is not mistaken for a slow
  server).

The target (issue 10): at N = 50, every client ≥ 10 frames/s and ≥ 400 steps/s and the p95
gap ≤ 250 ms; at N = 100, the steps/s spread small (every session slows by the same share).
``--churn K`` also opens and closes K sessions one after another (each gets one frame) and
prints the server's memory before and after. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_INT_FORMATS = {0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False),
                0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True)}


# ----- reading a frame without decoding it -------------------------------------------------
def read_int(frame: bytes, key: bytes, start: int = 0, stop: int = 512) -> int | None:
    """The msgpack integer that follows the top-level string key ``key`` (``b"step"``).

    The frame's first fields are small scalars (type, session id, seq, version, playing,
    step, ...), so the key is found in its first bytes; a key is a fixstr (0xa0 | length).
    """
    marker = bytes([0xA0 | len(key)]) + key
    at = frame.find(marker, start, stop)
    if at < 0:
        return None
    at += len(marker)
    head = frame[at]
    if head <= 0x7F:
        return head
    if head >= 0xE0:
        return head - 0x100
    size, signed = _INT_FORMATS.get(head, (0, False))
    if not size:
        return None
    return int.from_bytes(frame[at + 1 : at + 1 + size], "big", signed=signed)


def read_float(frame: bytes, key: bytes, stop: int = 512) -> float | None:
    """The float64 (0xcb) or integer that follows ``key``, or None."""
    import struct

    marker = bytes([0xA0 | len(key)]) + key
    at = frame.find(marker, 0, stop)
    if at < 0:
        return None
    at += len(marker)
    if frame[at] == 0xCB:
        return struct.unpack(">d", frame[at + 1 : at + 9])[0]
    return read_int(frame, key, 0, stop)


# ----- the server ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``uvicorn app.main:app`` with ``workers`` processes on 127.0.0.1."""

    def __init__(self, workers: int, env: dict[str, str]):
        self.port = free_port()
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning"]
        if workers > 1:
            command += ["--workers", str(workers)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )
        self.workers = workers

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if len(self.pids()) >= self.workers + (self.workers > 1):
                        time.sleep(1.0 if self.workers > 1 else 0.2)
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def pids(self) -> list[int]:
        """The server process and its children (uvicorn's workers)."""
        found = [self.process.pid]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) in found:
                    found.append(int(entry))
        return found

    def usage(self) -> tuple[float, float]:
        """(CPU seconds used so far, resident MiB) summed over the server's processes."""
        cpu = rss = 0.0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
            rss += int(fields[21]) * PAGE / 2**20
        return cpu, rss

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ----- the clients --------------------------------------------------------------------------
@dataclass
class Client:
    frames: list[tuple[float, int]] = field(default_factory=list)  # (arrival, step)
    achieved: list[float] = field(default_factory=list)
    errors: int = 0
    measuring: bool = False


async def play(url: str, client: Client, stop: asyncio.Event, speed: float | None) -> None:
    async with websockets.connect(url, max_size=2**24, compression=None,
                                  origin=_origin(url)) as ws:
        await ws.recv()  # hello
        play = {"type": "play"} if speed is None else {"type": "play", "speed": speed}
        await ws.send(json.dumps(play))
        await ws.send('{"type":"ready"}')
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    message = await ws.recv()
            except TimeoutError:
                continue
            if isinstance(message, str):
                if '"error"' in message[:40]:
                    client.errors += 1
                continue
            await ws.send('{"type":"ready"}')
            if client.measuring:
                client.frames.append((time.perf_counter(), read_int(message, b"step") or 0))
                achieved = read_float(message, b"achieved_speed")
                if achieved is not None:
                    client.achieved.append(achieved)


def _origin(url: str) -> Origin:
    """The page's own origin, as a browser on that page would send it."""
    return Origin("http" + url[2:].split("/ws/", 1)[0])


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(server: Server, sessions: int, warmup: float, seconds: float,
                  speed: float | None) -> dict:
    url = f"ws://127.0.0.1:{server.port}/ws/session"
    clients = [Client() for _ in range(sessions)]
    stop = asyncio.Event()
    tasks = []
    for client in clients:  # a class opens its pages over a moment, not all at once
        tasks.append(asyncio.create_task(play(url, client, stop, speed)))
        await asyncio.sleep(0.01)
    await asyncio.sleep(warmup)
    cpu0, _ = server.usage()
    own0 = os.times()
    for client in clients:
        client.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    for client in clients:
        client.measuring = False
    elapsed = time.perf_counter() - started
    cpu1, rss = server.usage()
    own1 = os.times()
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    fps, sps, gaps = [], [], []
    for client in clients:
        fps.append(len(client.frames) / elapsed)
        if len(client.frames) >= 2:
            (t0, s0), (t1, s1) = client.frames[0], client.frames[-1]
            sps.append((s1 - s0) / (t1 - t0))
            gaps += [b[0] - a[0] for a, b in zip(client.frames, client.frames[1:])]
        else:
            sps.append(0.0)
    achieved = [c.achieved[-1] for c in clients if c.achieved]
    cpu = (cpu1 - cpu0) / elapsed
    return {
        "sessions": sessions,
        "fps_min": min(fps), "fps_median": statistics.median(fps),
        "sps_min": min(sps), "sps_median": statistics.median(sps), "sps_max": max(sps),
        "gap_p50": percentile(gaps, 0.5) * 1e3, "gap_p95": percentile(gaps, 0.95) * 1e3,
        "gap_max": max(gaps, default=float("nan")) * 1e3,
        "cpu": cpu, "rss": rss,
        "frames_per_cpu": sum(fps) / max(cpu, 1e-9), "steps_per_cpu": sum(sps) / max(cpu, 1e-9),
        "client_cpu": ((own1.user - own0.user) + (own1.system - own0.system)) / elapsed,
        "achieved": statistics.median(achieved) if achieved else None,
        "failures": len(failures), "errors": sum(c.errors for c in clients),
    }


async def churn(server: Server, count: int) -> tuple[float, float, float]:
    """Open and close ``count`` sessions one after another; RSS before, midway, after."""
    url = f"ws://127.0.0.1:{server.port}/ws/session"

    async def one() -> None:
        async with websockets.connect(url, max_size=2**24, origin=_origin(url)) as ws:
            await ws.recv()
            await ws.send('{"type":"play"}')
            await ws.send('{"type":"ready"}')
            while isinstance(await ws.recv(), str):
                pass

    for _ in range(20):  # warm caches and pools first
        await one()
    before = server.usage()[1]
    midway = before
    for index in range(count):
        await one()
        if index == count // 2:
            midway = server.usage()[1]
    await asyncio.sleep(1.0)
    return before, midway, server.usage()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="10,25,50,100")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per N")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--processes", default="1,cores", help="'1', 'cores' or numbers")
    parser.add_argument("--speed", type=float, default=None, help="play speed (default: 500)")
    parser.add_argument("--churn", type=int, default=0, help="connect/disconnect cycles")
    parser.add_argument("--quick", action="store_true", help="10 and 50 sessions, 3 s each")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]
    if args.quick:
        counts, args.seconds, args.warmup = [10, 50], 3.0, 2.0
    if max(counts) > 200 or args.seconds > 60 or args.churn > 5000:
        parser.error("bounded: at most 200 sessions, 60 s per N, 5000 churn cycles")
    cores = os.cpu_count() or 1
    processes = [cores if p == "cores" else int(p) for p in args.processes.split(",")]
    env = dict(item.split("=", 1) for item in args.env)
    env.setdefault("BACKPROP_LAB_MAX_SESSIONS", "250")
    # every client of this generator comes from 127.0.0.1: lift the per-address cap (a class
    # behind one NAT is the same case: docs/reliability.md)
    env.setdefault("BACKPROP_LAB_MAX_SESSIONS_PER_ADDRESS", "250")

    print(f"load: {cores} cores; load generator on the same machine; "
          f"{args.seconds:g} s measured per N after {args.warmup:g} s warm-up")
    header = (f"{'proc':>4} {'N':>4} | {'fps min':>7} {'med':>5} | {'steps/s min':>11} "
              f"{'med':>5} {'max':>5} | {'gap p50':>7} {'p95':>5} {'max':>5} ms | "
              f"{'CPU':>4} {'RSS MiB':>7} | {'frames':>6} {'steps':>6} /CPU-s | "
              f"{'client CPU':>10}")
    print(header)
    print("-" * len(header))
    for workers in processes:
        server = Server(workers, env)
        try:
            server.wait_ready()
            for n in counts:
                r = asyncio.run(measure(server, n, args.warmup, args.seconds, args.speed))
                extra = ""
                if r["achieved"] is not None:
                    extra += f"  achieved {r['achieved']:.0f}"
                if r["failures"] or r["errors"]:
                    extra += f"  ({r['failures']} failed, {r['errors']} errors)"
                print(f"{workers:>4} {n:>4} | {r['fps_min']:7.1f} {r['fps_median']:5.1f} | "
                      f"{r['sps_min']:11.0f} {r['sps_median']:5.0f} {r['sps_max']:5.0f} | "
                      f"{r['gap_p50']:7.0f} {r['gap_p95']:5.0f} {r['gap_max']:5.0f}    | "
                      f"{r['cpu']:4.2f} {r['rss']:7.0f} | "
                      f"{r['frames_per_cpu']:6.0f} {r['steps_per_cpu'] / 1e3:5.1f}k        | "
                      f"{r['client_cpu']:10.2f}{extra}",
                      flush=True)
                time.sleep(1.0)
            if args.churn:
                before, midway, after = asyncio.run(churn(server, args.churn))
                print(f"{workers:>4} churn {args.churn}: RSS {before:.0f} MiB before, "
                      f"{midway:.0f} midway, {after:.0f} after", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
