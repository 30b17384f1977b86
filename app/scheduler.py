"""Where sessions' numerical work runs: a small thread pool, first come first served.

Every engine call of a session (a training slice of a few milliseconds, a frame, a
command) is one job. A session waits for its job before it queues the next, so the
pool's FIFO queue serves the sessions round robin and none can starve another, and
the event loop only ever parses messages and moves bytes. numpy releases the GIL in
its inner loops, so two threads keep two cores busy.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from app.session import Session
from app.settings import Settings

T = TypeVar("T")


class Worker:
    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="backprop-lab")

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class LoopMonitor:
    """How late the event loop wakes up: the worst lag of a 20 ms tick over the last few
    seconds (GET /healthz reports it). Numerical work in the loop would show up here."""

    def __init__(self, tick_s: float = 0.02, window_s: float = 5.0):
        self.tick_s = tick_s
        self.window_s = window_s
        self._lags: deque[tuple[float, float]] = deque()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            self._lags.append((now, max(0.0, now - started - self.tick_s)))
            while self._lags and self._lags[0][0] < now - self.window_s:
                self._lags.popleft()

    def worst_ms(self) -> float | None:
        if not self._lags:
            return None
        return max(lag for _, lag in self._lags) * 1e3


class Registry:
    """The sessions this process serves (one per open WebSocket)."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self.sessions)

    async def open(self, worker: Worker, settings: Settings) -> Session | None:
        """A new session with the default preset, or None when the server is full."""
        if len(self.sessions) >= settings.max_sessions:
            return None
        session_id = secrets.token_hex(8)
        # hold the place while the session is built, so that a burst cannot overshoot
        self.sessions[session_id] = None  # type: ignore[assignment]
        try:
            session = await worker.run(Session, session_id, settings)
        except BaseException:
            del self.sessions[session_id]
            raise
        self.sessions[session_id] = session
        return session

    def close(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
