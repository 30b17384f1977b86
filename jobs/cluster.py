"""The Dask side of heavy jobs: where they run, how their progress and cancellation travel.

``JobManager`` holds an asynchronous ``distributed.Client``: by default on an embedded
``LocalCluster`` of worker processes, started by the first job (so the app starts as fast
as without jobs) and closed with the app; given a scheduler address, on that cluster
instead (e.g. one with GPU workers started with ``--resources GPU=1``).

A job is its kind's pieces, one Dask task each (so more workers finish sooner), then one
task that combines their partial results. Inside a task, progress goes out through the
worker's event log (``Worker.log_event``) and reaches the app through
``Client.subscribe_topic``; cancellation comes in through a ``distributed.Event`` named
after the job, which the job's ``Context`` reads at most every ``CHECK_INTERVAL_S``.
Dask reschedules a task whose worker died on another worker; after
``distributed.scheduler.allowed-failures`` deaths the job fails and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from jobs.context import Cancelled, Context
from jobs.kinds import KINDS, JobKind

# distributed is imported where it is used: importing it costs the app's start-up ~0.15 s,
# and the app needs it only once a job comes (the cluster itself starts with the first job)
if TYPE_CHECKING:
    from distributed import Client, Future, LocalCluster

logger = logging.getLogger(__name__)
TOPIC = "backprop-lab-jobs"  # the event-log topic every job's progress goes out on
CHECK_INTERVAL_S = 0.2  # a task asks the scheduler whether it was cancelled at most this often
REPORT_INTERVAL_S = 0.05  # progress without partial data is sent at most this often per piece
WATCH_INTERVAL_S = 1.0  # how often a running job looks for its GPU worker
RETRY_AFTER_S = 10.0  # a failed connection is reported for this long before trying again
EVENT_KEEP_S = 60.0  # a cancelled job's flag stays set this long for tasks still running
# what a cancelled piece returns: a stop the user asked for is not an error in the workers' logs
CANCELLED = {"cancelled": "the job was cancelled"}


class Unavailable(Exception):
    """No cluster can run jobs now; the message says why."""


class TooMany(Exception):
    """The owner already has as many jobs queued or running as it may."""


# ---- what runs on a worker -------------------------------------------------------------


class _CancelFlag:
    """``is_cancelled`` for a task's Context: the job's Event, read at most every
    ``CHECK_INTERVAL_S`` (each read is a round trip to the scheduler)."""

    def __init__(self, job_id: str):
        self.name = f"cancel-{job_id}"
        self.last = -math.inf
        self.cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.cancelled or now - self.last < CHECK_INTERVAL_S:
            return self.cancelled
        self.last = now
        from distributed import get_worker
        from distributed.utils import sync

        # the scheduler's Event handler over the worker's own connection: a distributed.Event
        # here would make the worker a Client of its own, whose teardown at the worker's
        # exit raises "IOLoop is closed" into the log
        worker = get_worker()
        self.cancelled = bool(sync(worker.loop, worker.scheduler.event_is_set, name=self.name))
        return self.cancelled


class _Reporter:
    """``report`` for a task's Context: each report becomes one event on ``TOPIC``.

    Reports with partial data (an epoch's loss, a finished row) always go out; bare
    fraction updates are thinned so a tight loop cannot flood the scheduler."""

    def __init__(self, job_id: str, attempt: int, piece: int):
        from distributed import get_worker

        self.worker = get_worker()
        self.head = {"job": job_id, "attempt": attempt, "piece": piece}
        self.last = -math.inf

    def __call__(self, report: dict) -> None:
        now = time.monotonic()
        thin = not report.get("data") and report["progress"] < 1
        if thin and now - self.last < REPORT_INTERVAL_S:
            return
        self.last = now
        self.worker.log_event(TOPIC, {**self.head, **report})


def run_piece(run: Callable, spec: BaseModel, piece: dict, job_id: str, attempt: int,
              index: int) -> dict:
    """One Dask task: one piece of a job, with a Context wired to the app."""
    reporter = _Reporter(job_id, attempt, index)
    ctx = Context(report=reporter, is_cancelled=_CancelFlag(job_id),
                  backend=spec.backend)  # type: ignore[attr-defined]
    try:
        ctx.check()  # a queued piece of a cancelled job stops before any work
        where = f"{ctx.backend} on {ctx.device}"
        reporter({"progress": 0.0,
                  "message": f"started on worker {reporter.worker.name} ({where})",
                  "data": {"worker": str(reporter.worker.name), "backend": ctx.backend,
                           "device": ctx.device}})
        return run(spec, piece, ctx)
    except Cancelled:
        return CANCELLED


def combine_pieces(combine: Callable, spec: BaseModel, partials: list[dict]) -> dict:
    """The last Dask task of a job: its result from the pieces' partials, in plan order."""
    if any(partial == CANCELLED for partial in partials):
        return CANCELLED
    return combine(spec, partials)


# ---- the app's side ---------------------------------------------------------------------


@dataclass
class Job:
    """One job as the app sees it; ``public()`` is its JSON form (docs/jobs.md)."""

    id: str
    owner: str
    kind: str
    spec: BaseModel
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting for a worker"
    result: dict | None = None
    pieces: list[float] = field(default_factory=list)  # each piece's fraction done
    attempt: int = 0  # bumped when the job is submitted again (its GPU worker left)
    cancel_requested: bool = False
    dropped: bool = False  # cancelled without waiting any longer for its pieces to stop
    futures: list[Future] = field(default_factory=list)  # the pieces' tasks, then combine's
    started_pieces: set[int] = field(default_factory=set)  # pieces a worker has begun
    timed_out: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: set[asyncio.Queue] = field(default_factory=set)
    task: asyncio.Task | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def public(self, with_result: bool = True) -> dict[str, Any]:
        job = {"id": self.id, "kind": self.kind, "spec": self.spec.model_dump(mode="json"),
               "state": self.state, "progress": self.progress, "message": self.message,
               "created": self.created.isoformat()}
        if with_result:
            job["result"] = self.result
        return job

    def publish(self, message: dict[str, Any]) -> None:
        for queue in self.listeners:
            queue.put_nowait(message)


def default_workers() -> int:
    """Embedded workers for this machine: one per core, at most four (each holds ~100 MB)."""
    return max(1, min(os.cpu_count() or 1, 4))


class JobManager:
    """Submits jobs to Dask, follows their progress, cancels them, keeps their results.

    ``scheduler``: a scheduler address (``tcp://host:8786``), or None for an embedded
    ``LocalCluster`` of ``local_workers`` processes (0: ``default_workers()``).
    ``time_limit_s``: a job running longer is stopped and fails saying so.
    """

    def __init__(self, *, scheduler: str | None = None, local_workers: int = 0,
                 time_limit_s: float = 600.0, connect_timeout_s: float = 5.0,
                 kept_per_owner: int = 50, kept: int = 1000,
                 kinds: Mapping[str, JobKind] | None = None):
        self.scheduler = scheduler or None
        self.local_workers = local_workers or default_workers()
        self.time_limit_s = time_limit_s
        self.connect_timeout_s = connect_timeout_s
        self.kept_per_owner = kept_per_owner
        self.kept = kept
        self.kinds = dict(KINDS if kinds is None else kinds)
        self.jobs: dict[str, Job] = {}
        self.client: Client | None = None
        self.cluster: LocalCluster | None = None
        self._lock: asyncio.Lock | None = None
        self._failure: tuple[str, float] | None = None
        self._closed = False

    # -- the cluster

    @property
    def where(self) -> str:
        if self.scheduler:
            return f"the Dask scheduler at {self.scheduler}"
        return f"an embedded Dask cluster of {self.local_workers} worker processes"

    async def ensure(self) -> Client:
        """The connected client, starting the embedded cluster or connecting on first use.

        Raises ``Unavailable`` with the reason when no cluster can be reached (remembered
        for ``RETRY_AFTER_S`` so that a page of requests does not wait once each)."""
        if self._closed:
            raise Unavailable("the server is shutting down")
        if self.client is not None and self.client.status == "closed":
            # the scheduler went away for longer than the client's reconnection allows
            with contextlib.suppress(Exception):
                await self.client.close()
            self.client = None
        if self.client is not None:
            return self.client
        if self._failure and time.monotonic() - self._failure[1] < RETRY_AFTER_S:
            raise Unavailable(self._failure[0])
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self.client is None:
                try:
                    self.client = await self._connect()
                except Exception as error:  # any reason a cluster cannot be had is reported
                    verb = "cannot be reached" if self.scheduler else "could not start"
                    reason = (f"jobs cannot run: {self.where} {verb} "
                              f"({type(error).__name__}: {error})")
                    self._failure = (reason, time.monotonic())
                    raise Unavailable(reason) from error
                self._failure = None
        return self.client

    async def _connect(self) -> Client:
        from distributed import Client, LocalCluster

        if self.scheduler:
            client = await Client(self.scheduler, asynchronous=True,
                                  timeout=self.connect_timeout_s)
        else:
            self.cluster = await LocalCluster(
                n_workers=self.local_workers, threads_per_worker=1, processes=True,
                asynchronous=True, dashboard_address=None,
                # no dashboard; the scheduler's small HTTP server (health, metrics) on a free
                # local port rather than 8787, which a second app or cluster may hold
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
            try:
                client = await Client(self.cluster, asynchronous=True)
            except BaseException:
                await self.cluster.close()
                self.cluster = None
                raise
        client.subscribe_topic(TOPIC, self._on_event)
        return client

    async def status(self) -> tuple[bool, str | None]:
        """(available, reason): whether a job submitted now could run, and if not, why.

        The embedded cluster counts as available before it is started; a scheduler
        address is tried (at most once per ``RETRY_AFTER_S`` while it fails)."""
        if self.client is None and not self.scheduler and self._failure is None:
            return (not self._closed, "the server is shutting down" if self._closed else None)
        try:
            await self.ensure()
        except Unavailable as error:
            return False, str(error)
        return True, None

    async def workers(self) -> dict[str, dict[str, Any]]:
        """The cluster's workers now, by address (name, resources, pid, ...)."""
        client = await self.ensure()
        identity = await client.scheduler.identity(n_workers=-1)
        return identity["workers"]

    async def _has_gpu_worker(self) -> bool:
        workers = await self.workers()
        return any(info.get("resources", {}).get("GPU", 0) >= 1 for info in workers.values())

    async def close(self) -> None:
        """Stop every job, then the client and the embedded cluster (the app's shutdown)."""
        self._closed = True
        for job in list(self.jobs.values()):
            if job.task is not None and not job.task.done():
                job.cancel_requested = True
                job.task.cancel()
        tasks = [job.task for job in self.jobs.values() if job.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(TOPIC)
            await self.client.close()
            self.client = None
        if self.cluster is not None:
            await self.cluster.close()
            self.cluster = None

    # -- jobs

    def get(self, job_id: str, owner: str) -> Job | None:
        """The job if it exists and belongs to ``owner`` (others' jobs do not exist for them)."""
        job = self.jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def of(self, owner: str) -> list[Job]:
        """``owner``'s jobs, newest first."""
        return sorted((job for job in self.jobs.values() if job.owner == owner),
                      key=lambda job: job.created, reverse=True)

    def active_count(self, owner: str) -> int:
        return sum(job.active for job in self.jobs.values() if job.owner == owner)

    async def submit(self, spec: BaseModel, owner: str, max_active: int | None = None) -> Job:
        """Queue a validated spec as ``owner``'s job; raises ``Unavailable`` without a
        cluster and ``TooMany`` when ``owner`` has ``max_active`` unfinished jobs already."""
        await self.ensure()
        # counted after the (possibly slow) connection and before any other await, so two
        # requests at once cannot both take the last place
        if max_active is not None and self.active_count(owner) >= max_active:
            raise TooMany(f"{max_active} jobs are queued or running already")
        kind = self.kinds[spec.kind]  # type: ignore[attr-defined]
        job = Job(id=uuid.uuid4().hex, owner=owner, kind=kind.name, spec=spec)
        self.jobs[job.id] = job
        self._forget_old(owner)
        job.task = asyncio.create_task(self._run(job, kind), name=f"job-{job.id}")
        return job

    def _forget_old(self, owner: str) -> None:
        """Keep results for ``kept_per_owner`` finished jobs per owner and ``kept`` in all:
        the oldest finished ones go (a server meets browsers without end)."""
        finished = [job for job in self.of(owner) if not job.active]
        for job in finished[max(self.kept_per_owner - 1, 0):]:
            del self.jobs[job.id]
        surplus = len(self.jobs) - self.kept
        if surplus > 0:
            oldest = sorted((job for job in self.jobs.values() if not job.active),
                            key=lambda job: job.created)
            for job in oldest[:surplus]:
                del self.jobs[job.id]

    async def cancel(self, job: Job, wait_s: float = 1.0) -> Job:
        """Ask the job's tasks to stop; give them ``wait_s`` to do so, then drop them."""
        if not job.active:
            return job
        job.cancel_requested = True
        job.message = "cancelling"
        if self.client is not None:
            from distributed import Event

            with contextlib.suppress(Exception):
                await Event(f"cancel-{job.id}", client=self.client).set()
        # stopped: every piece a worker began has returned (the others are never started:
        # their tasks are cancelled, and a piece that starts anyway sees the flag first)
        deadline = time.monotonic() + wait_s
        while job.active and not self._pieces_stopped(job) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if job.active and job.task is not None:
            # a piece that does not check its Context in time is dropped, not waited for
            job.dropped = not self._pieces_stopped(job)
            if job.dropped:
                logger.warning("job %s: pieces %s still running %.2f s after cancel; dropped",
                               job.id, sorted(index for index in job.started_pieces
                                              if not job.futures[index].done()), wait_s)
            job.task.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(job.finished.wait()), 1.0)
        return job

    @staticmethod
    def _pieces_stopped(job: Job) -> bool:
        pieces = job.futures[: len(job.pieces)]
        return all(pieces[index].done() for index in job.started_pieces if index < len(pieces))

    def listen(self, job: Job) -> asyncio.Queue:
        """A queue of the job's messages from now on: progress, then one "result"."""
        queue: asyncio.Queue = asyncio.Queue()
        job.listeners.add(queue)
        if not job.active:
            queue.put_nowait({"type": "result", "job": job.public()})
        return queue

    def unlisten(self, job: Job, queue: asyncio.Queue) -> None:
        job.listeners.discard(queue)

    def _on_event(self, event: tuple[float, Any]) -> None:
        """A progress report from a task (``Client.subscribe_topic`` handler)."""
        _, report = event
        if not isinstance(report, dict):
            return
        job = self.jobs.get(report.get("job", ""))
        if job is None or not job.active or report.get("attempt") != job.attempt:
            return
        piece = report.get("piece", 0)
        if not 0 <= piece < len(job.pieces):
            return
        job.pieces[piece] = max(job.pieces[piece], float(report.get("progress", 0.0)))
        # the combining task is the last bit of work: pieces alone reach at most 99%
        job.progress = 0.99 * sum(job.pieces) / len(job.pieces)
        job.message = str(report.get("message", ""))
        job.state = "running"
        data = dict(report.get("data") or {})
        if "worker" in data:
            job.started_pieces.add(piece)
        data.update(piece=piece, pieces=len(job.pieces))
        job.publish({"type": "progress", "progress": job.progress, "message": job.message,
                     "data": data})

    async def _run(self, job: Job, kind: JobKind) -> None:
        """Follow one job from submission to its end state; never raises."""
        from distributed.scheduler import KilledWorker  # loaded with the client already

        futures = job.futures
        limit = asyncio.timeout(self.time_limit_s)
        try:
            async with limit:
                job.result = await self._execute(job, kind, futures)
            job.state, job.progress, job.message = "done", 1.0, "done"
        except TimeoutError as error:
            job.state = "failed"
            if limit.expired():
                job.timed_out = True
                job.message = (f"stopped: the job ran longer than the time limit of "
                               f"{self.time_limit_s:g} s (setting BACKPROP_LAB_JOB_TIME_LIMIT_S)")
            else:  # a timeout inside the job's own code
                job.message = f"the job failed on a worker: {type(error).__name__}: {error}"
        except (asyncio.CancelledError, Cancelled) as error:
            job.state, job.message = "cancelled", "cancelled"
            if job.dropped:
                job.message = ("cancelled; a piece had not stopped a second later and was "
                               "dropped from the cluster")
            elif not job.cancel_requested:  # nobody here asked: the cluster dropped its tasks
                job.state = "failed"
                job.message = (f"the cluster dropped the job's tasks ({type(error).__name__}: "
                               f"{error}); was the connection to the scheduler lost?")
        except KilledWorker as error:
            job.state = "failed"
            job.message = (f"a worker running this job died (killed, crashed or out of memory) "
                           f"{error.allowed_failures + 1} times, so Dask stopped retrying it: "
                           f"{error}")
        except Exception as error:
            job.state = "failed"
            if job.cancel_requested:
                job.state, job.message = "cancelled", "cancelled"
            else:
                job.message = f"the job failed on a worker: {type(error).__name__}: {error}"
        finally:
            if job.state in ("queued", "running"):  # a cancellation from close()
                job.state, job.message = "cancelled", "cancelled"
            await self._release(job, futures)
            job.finished.set()
            job.publish({"type": "result", "job": job.public()})

    async def _submit_pieces(self, job: Job, kind: JobKind, futures: list[Future],
                             gpu: bool) -> Future:
        client = await self.ensure()
        pieces = kind.plan(job.spec)
        if not pieces:
            raise ValueError("the job's plan has no pieces")
        job.pieces = [0.0] * len(pieces)
        job.started_pieces = set()
        resources = {"GPU": 1} if gpu else None
        tag = f"{job.kind}-{job.id}-{job.attempt}"
        # the spec goes inside every piece's task: made a task of its own that the pieces
        # depend on, Dask kept them all on the worker holding it (measured: 8 of 8 nets on
        # one of two workers), and scattered data would not survive its worker's death
        piece_futures = [
            client.submit(run_piece, kind.run, job.spec, piece, job.id, job.attempt, index,
                          key=f"{tag}-piece-{index}", pure=False, resources=resources)
            for index, piece in enumerate(pieces)
        ]
        final = client.submit(combine_pieces, kind.combine, job.spec, piece_futures,
                              key=f"{tag}-combine", pure=False)
        futures[:] = [*piece_futures, final]
        return final

    async def _execute(self, job: Job, kind: JobKind, futures: list[Future]) -> dict:
        gpu = kind.gpu and await self._has_gpu_worker()
        final = await self._submit_pieces(job, kind, futures, gpu)
        if gpu:
            job.message = "waiting for a GPU worker"
        waiter = asyncio.ensure_future(final)
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=WATCH_INTERVAL_S)
                if done:
                    if waiter.result() == CANCELLED:
                        raise Cancelled("the job was cancelled")
                    return waiter.result()
                if gpu and not await self._has_gpu_worker():
                    # its GPU worker left mid-job: run on the others rather than wait for one
                    # that may never come back
                    waiter.cancel()
                    await self.client.cancel(futures, force=True)  # type: ignore[union-attr]
                    job.attempt += 1
                    gpu = False
                    final = await self._submit_pieces(job, kind, futures, gpu)
                    job.message = "the GPU worker left the cluster; running on the others"
                    job.publish({"type": "progress", "progress": 0.0, "message": job.message,
                                 "data": {}})
                    waiter = asyncio.ensure_future(final)
        finally:
            if not waiter.done():
                waiter.cancel()

    async def _release(self, job: Job, futures: list[Future]) -> None:
        """Drop the job's tasks from the cluster; keep a cancel flag set a while for pieces
        that are still running and have not looked at it yet."""
        client = self.client
        if client is None:
            return
        if job.state != "done":
            from distributed import Event

            with contextlib.suppress(Exception):
                await Event(f"cancel-{job.id}", client=client).set()
            with contextlib.suppress(Exception):
                await client.cancel(futures, force=True)
            loop = asyncio.get_running_loop()
            loop.call_later(EVENT_KEEP_S, lambda: asyncio.ensure_future(self._clear(job.id)))
        futures.clear()

    async def _clear(self, job_id: str) -> None:
        if self.client is not None:
            from distributed import Event

            with contextlib.suppress(Exception):
                await Event(f"cancel-{job_id}", client=self.client).clear()
