"""Where sessions' numerical work runs: a small thread pool, first come first served,
and the training loop that trains every playing session of the process.

Every engine call of a session (a frame, a command, a ``step`` slice) is one job. A
session waits for its job before it queues the next, so the pool's FIFO queue serves the
sessions round robin and none can starve another, and the event loop only ever parses
messages and moves bytes.

Playing sessions do not queue training jobs of their own: ``TrainingLoop`` wakes every
``train_tick_ms``, gives each playing session the steps its speed earned since the last
tick (a token bucket) and trains them all in one job, sessions that share a model shape
as one stacked computation (``engine.stacked``). A class of fifty on the default preset
then costs one small job per tick instead of fifty, and when the machine cannot keep up
every session of a group stops at the same step: all slow down by the same share, and
each frame reports the speed its session actually got.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from app.session import Session, train_sessions
from app.settings import Settings

log = logging.getLogger(__name__)
# a session may catch up on at most this much missed training time: more than a tick, since
# a tick waits for the frames and commands in progress (module docstring)
_BURST_S = 0.25
_SPEED_WINDOW_S = 2.0  # the achieved speed is measured over this much recent play

T = TypeVar("T")


class Worker:
    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="backprop-lab")

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Player(Protocol):
    """What the training loop needs of a connection (``app.connection.Connection``)."""

    session: Session
    engine_lock: asyncio.Lock
    tokens: float
    last_tick: float

    def idle(self, now: float) -> bool: ...

    def trained(self, done: int, failure: str | None) -> None: ...


class TrainingLoop:
    """Trains every playing session of this process, one job per tick (module docstring).

    A session trains only while its client keeps asking for frames: one that has not
    said ``ready`` for ``idle_after_s`` (a background tab, a client that never acks)
    idles, costing nothing, until it asks again; it does not catch up afterwards.
    """

    def __init__(self, settings: Settings):
        # a thread of its own: a tick must not wait behind every session's frame job in
        # the pool's queue (stacked, a tick is short; the frames then share what is left)
        self.worker = Worker(1)
        self.tick_s = settings.train_tick_ms / 1000.0
        self.budget_s = settings.train_budget_ms / 1000.0
        self.players: dict[int, Player] = {}
        self._rotation = 0
        self._history: dict[int, deque[tuple[float, int]]] = {}
        self._task: asyncio.Task | None = None
        self._last_tick = time.monotonic()

    def start(self) -> None:
        """Run the loop as a task of the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    def running(self) -> bool:
        """True when the loop runs in the current event loop."""
        task = self._task
        return (task is not None and not task.done()
                and task.get_loop() is asyncio.get_running_loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.worker.close()

    def add(self, player: Player) -> None:
        self.players[id(player)] = player
        self._history[id(player)] = deque()

    def discard(self, player: Player) -> None:
        self.players.pop(id(player), None)
        self._history.pop(id(player), None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.tick()
            except Exception:  # one bad tick must not stop every session's training
                log.exception("training tick failed")
            await asyncio.sleep(max(self.tick_s - (loop.time() - started), 0.0))

    async def tick(self) -> None:
        """One round: the steps each playing session earned, trained in one job."""
        now = time.monotonic()
        # training may take half of the time since the last tick (at least the budget):
        # when frames stretch the round, training keeps its share of the time
        budget = max(self.budget_s, 0.5 * (now - self._last_tick))
        self._last_tick = now
        entries: list[tuple[Player, int]] = []
        for player in list(self.players.values()):
            session = player.session
            elapsed = now - player.last_tick
            player.last_tick = now
            if not session.playing or player.idle(now):
                player.tokens = 0.0
                self._measure(player, now, 0, playing=False)
                continue
            player.tokens = min(player.tokens + session.speed * elapsed,
                                max(1.0, session.speed * _BURST_S))
            count = int(player.tokens)
            if count >= 1:
                entries.append((player, count))
            else:
                self._measure(player, now, 0)
        if not entries:
            return
        # each session's own job in progress (a frame, a command) finishes first: the tick
        # queues on every lock at once, so it waits for the longest of them, not their sum,
        # and frames and ticks take turns
        await asyncio.gather(*(player.engine_lock.acquire() for player, _ in entries))
        held = entries
        # a connection that closed meanwhile may have left a job of its session running
        # (a cancelled await releases the lock, not the thread): leave that session alone
        entries = [(p, n) for p, n in entries if id(p) in self.players]
        try:
            self._rotation += 1
            results = await self.worker.run(
                train_sessions, [(p.session, n) for p, n in entries], budget,
                self._rotation,
            ) if entries else []
        finally:
            for player, _ in held:
                player.engine_lock.release()
        for (player, _), (done, failure) in zip(entries, results):
            player.tokens -= done
            self._measure(player, now, done)
            player.trained(done, failure)

    def _measure(self, player: Player, now: float, done: int, playing: bool = True) -> None:
        """The steps/s a session achieved over the last seconds of play (nil when idle)."""
        history = self._history.get(id(player))
        if history is None:
            return
        if not playing:
            history.clear()
            player.session.achieved_speed = None
            return
        history.append((now, done))
        while history and history[0][0] < now - _SPEED_WINDOW_S:
            history.popleft()
        span = now - history[0][0]
        if span >= 0.5:  # too short a stretch says nothing yet
            steps = sum(d for _, d in history) - history[0][1]
            player.session.achieved_speed = steps / span


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
