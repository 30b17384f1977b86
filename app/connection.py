"""One WebSocket's life: commands in, replies and client-paced frames out.

Two tasks share the connection. ``_receive`` parses each text message in the event
loop (pydantic, microseconds) and runs the command on the worker pool. ``_drive``
sends a frame when the client has said ``ready`` and the session changed since the last
frame: at most one frame in flight, built from the newest state, never a queue of stale
ones. While the session plays, the process's ``TrainingLoop`` (app.scheduler) trains it
at its speed together with the other playing sessions, and wakes ``_drive`` when it
did. A per-session lock keeps the engine calls of one session in order; sessions never
share state.

A playing session trains only while its client asks for frames: once a frame (or a
``play`` that no ``ready`` has followed) has waited ``idle_after_s`` for its ``ready`` (a
tab in the background, which stops asking, or a client that never acks), the session
idles until the next ``ready``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from app import encoding, stepping
from app.limits import TokenBucket
from app.protocol import parse_command, protocol_for
from app.scheduler import TrainingLoop, Worker
from app.session import CommandError, Session
from app.settings import Settings

log = logging.getLogger(__name__)
_LONGEST_ACK = 256  # {"type": "ready"} with the longest id fits in far fewer characters


class Connection:
    def __init__(self, websocket: WebSocket, session: Session, worker: Worker, settings: Settings):
        self.websocket = websocket
        self.session = session
        self.worker = worker
        self.settings = settings
        self.protocol = protocol_for(settings)
        self.engine_lock = asyncio.Lock()
        self.send_lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.ready = False
        self.sent_version = 0
        self.tokens = 0.0  # training steps earned and not yet taken (the training loop's)
        self.last_tick = time.monotonic()
        self.slice_s = settings.slice_ms / 1000.0
        self.idle_after_s = settings.idle_after_s
        # since when a sent frame (or, at first, the hello) waits for the client's `ready`
        self.waiting_since: float | None = time.monotonic()
        self.failures: list[str] = []  # divergences the training loop reported

    async def run(self) -> None:
        await self.send_json(self.session.hello())
        training = _training_loop(self.websocket, self.settings)
        training.add(self)
        tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._drive())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            training.discard(self)
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not _is_disconnect(result):
                log.error("session %s ended with an error", self.session.id, exc_info=result)

    # ----- sending ------------------------------------------------------------------------
    async def send_json(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, allow_nan=False, separators=(",", ":"))
        async with self.send_lock:
            await self.websocket.send_text(text)

    async def send_error(self, code: str, message: str, **fields: Any) -> None:
        error = self.protocol.Error(code=code, message=message, **fields)
        await self.send_json(error.model_dump())

    # ----- commands -----------------------------------------------------------------------
    async def _receive(self) -> None:
        limit = self.settings.max_message_bytes
        # every message but `ready` spends a token: acks come once per frame, and are free
        bucket = TokenBucket(self.settings.command_rate, self.settings.command_burst)
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.send_error(
                    "binary_not_accepted", "commands are JSON text messages, not binary ones"
                )
                continue
            # a str of n characters holds n to 4n UTF-8 bytes: encode only when it matters
            if len(text) > limit or (4 * len(text) > limit and len(text.encode()) > limit):
                await self.send_error(
                    "too_large", f"message: at most {limit} bytes per message",
                    field="message", limit=limit,
                )
                continue
            command = None
            if len(text) <= _LONGEST_ACK:  # acks are free: find them before the bucket
                command = parse_command(self.protocol, text, self.settings.max_json_depth)
                if getattr(command, "type", None) == "ready":
                    self._acknowledge(command)
                    continue
            if not bucket.take():  # a flood is refused before its messages are parsed
                await self._refuse_rate(command)
                continue
            if command is None:
                command = parse_command(self.protocol, text, self.settings.max_json_depth)
            if isinstance(command, self.protocol.Error):
                await self.send_json(command.model_dump())
                continue
            if command.type == "ready":
                self._acknowledge(command)
                continue
            await self._execute(command)
            self.wake.set()

    def _acknowledge(self, command: Any) -> None:
        """``ready``: the client wants the next frame (and says whether it shows the warps)."""
        self.ready = True
        self.waiting_since = None
        if command.warps and not self.session.show_warps:
            self.sent_version = 0  # the warps come back: a frame even if unchanged
        self.session.show_warps = command.warps
        self.wake.set()

    async def _refuse_rate(self, command: Any | None) -> None:
        settings = self.settings
        if command is None:  # a long message, refused unread
            message_id, kind = None, None
        elif isinstance(command, self.protocol.Error):
            message_id, kind = command.id, command.command
        else:
            message_id, kind = command.id, command.type
        await self.send_error(
            "rate_limited",
            f"too many commands: at most {settings.command_rate:g} per second "
            f"(bursts of {settings.command_burst}); this one was not carried out",
            id=message_id, command=kind, field="command_rate", limit=settings.command_rate,
        )

    async def _execute(self, command: Any) -> None:
        kind = command.type
        try:
            if kind in ("step", "epoch"):
                failure = await self._train_command(command)
                if failure is not None:
                    await self.send_error("diverged", failure, id=command.id, command=kind,
                                          field="training.learning_rate")
                    return
                reply = await self._engine(self.session.state, kind, command.id)
            else:
                reply = await self._engine(_handle, self.session, command)
        except CommandError as error:
            await self.send_error(error.code, error.message, id=command.id, command=kind,
                                  field=error.field, limit=error.limit, line=error.line)
            return
        except Exception as error:  # the session stays usable whatever went wrong
            log.exception("command %s failed", kind)
            await self.send_error("internal", f"{kind} failed: {error}", id=command.id,
                                  command=kind)
            return
        if kind == "play" or (kind == "configure" and command.play):
            self.last_tick = time.monotonic()
            self.tokens = 0.0
            if self.waiting_since is not None:  # asked to train: the idle clock starts now
                self.waiting_since = self.last_tick
        await self.send_json(reply)

    async def _train_command(self, command: Any) -> str | None:
        """``step``/``epoch``: in slices, so that frames and other sessions interleave."""
        session = self.session
        if command.type == "step":
            remaining = command.count
            while remaining > 0:
                done, failure = await self._engine(session.train, remaining, self.slice_s)
                remaining -= done
                self.wake.set()
                if failure is not None or done == 0:
                    return failure
            return None
        target = await self._engine(session.next_epoch_boundary)
        target += command.count - 1
        while session.trainer.epochs < target - 1e-9:
            done, failure = await self._engine(session.train, 1 << 30, self.slice_s, target)
            self.wake.set()
            if failure is not None or done == 0:
                return failure
        return None

    async def _engine(self, function: Any, *args: Any) -> Any:
        async with self.engine_lock:
            return await self.worker.run(function, *args)

    # ----- training and frames --------------------------------------------------------------
    def idle(self, now: float) -> bool:
        """True while the client has not asked for a frame for ``idle_after_s``."""
        return self.waiting_since is not None and now - self.waiting_since > self.idle_after_s

    def trained(self, done: int, failure: str | None) -> None:
        """The training loop trained this session (called in the event loop)."""
        if failure is not None:
            self.failures.append(failure)
        if done or failure is not None:
            self.wake.set()

    async def _drive(self) -> None:
        session = self.session
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.failures:
                await self.send_error("diverged", self.failures.pop(0), command="play",
                                      field="training.learning_rate")
            if self.ready and session.version != self.sent_version:
                self.ready = False
                try:
                    version, frame = await self._engine(_encoded_frame, session)
                except Exception as error:  # a frame that cannot be built must not end the session
                    log.exception("frame of session %s failed", session.id)
                    self.sent_version = session.version
                    self.waiting_since = time.monotonic()  # as if sent: a broken one idles
                    await self.send_error("internal", f"frame failed: {error}", command="ready")
                else:
                    self.sent_version = version
                    async with self.send_lock:
                        await self.websocket.send_bytes(frame)
                    self.waiting_since = time.monotonic()
                if session.version != self.sent_version:
                    self.wake.set()  # it changed while the frame was built


def _training_loop(websocket: WebSocket, settings: Settings) -> TrainingLoop:
    """The app's training loop, started with the first connection of its event loop (so
    that an app served without its lifespan trains too)."""
    state = websocket.app.state
    training = getattr(state, "training", None)
    if training is None or not training.running():
        if training is not None:
            training.stop()
        training = TrainingLoop(settings)
        training.start()
        state.training = training
    return training


def _encoded_frame(session: Session) -> tuple[int, bytes]:
    version = session.version
    return version, encoding.pack(session.frame())


def _handle(session: Session, command: Any) -> dict[str, Any]:
    """Run one command on the session (in a worker thread) and build its reply."""
    kind = command.type
    if kind.startswith("graph_"):
        return stepping.handle(session, command)
    if kind == "export":
        return session.export(command.id)
    if kind == "configure":
        notes = session.configure(command)
    elif kind == "patch":
        op = command.op
        if op == "set":
            notes = session.patch_set(command.path, command.value)
        elif op == "add_layer":
            notes = session.add_layer(command.index, command.units, command.activation)
        elif op == "remove_layer":
            notes = session.remove_layer(command.index)
        elif op == "add_unit":
            notes = session.add_unit(command.layer)
        else:
            notes = session.remove_unit(command.layer, command.unit)
    elif kind == "play":
        session.playing = True
        if command.speed is not None:
            session.speed = float(command.speed)
        session.version += 1  # a frame shows `playing` and `speed`
        notes = []
    elif kind == "pause":
        session.playing = False
        session.version += 1
        notes = []
    elif kind == "reset":
        notes = session.reset(command.seed)
    elif kind == "set_weight":
        notes = session.set_weight(command.name, command.index, command.value)
    elif kind == "add_point":
        notes = session.add_point(command.x, command.label)
    elif kind == "remove_point":
        notes = session.remove_point(command.x)
    elif kind == "load_csv":
        notes = session.load_csv(command.text, command.task, command.name)
    else:  # pragma: no cover - parse_command admits only the commands above
        raise CommandError(f"unknown command {kind!r}", field="type")
    return session.state(kind, command.id, notes)


def _is_disconnect(error: BaseException) -> bool:
    return isinstance(error, (WebSocketDisconnect, asyncio.CancelledError)) or (
        isinstance(error, RuntimeError) and "close" in str(error).lower()
    )
