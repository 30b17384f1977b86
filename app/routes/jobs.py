"""REST and WebSocket for heavy jobs (docs/jobs.md): submit, follow, cancel, download.

Thin: a route validates (``jobs.specs``), checks this server's limits, and hands the job
to ``jobs.cluster.JobManager``; a job exists only for the browser that submitted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketDisconnect

from app.browser import browser_id
from app.reports import REPORT_CSP, build_report
from app.security import admit_websocket
from app.settings import Settings, get_settings
from jobs.cluster import Job, JobManager, TooMany, Unavailable
from jobs.specs import parse_spec, size_of

router = APIRouter()
Browser = Annotated[str, Depends(browser_id)]
NOT_FOUND = "no such job for this browser"
CLOSE_NOT_FOUND = 4404  # WebSocket close code: the job does not exist for this browser
# the body is read by hand (size cap), so OpenAPI is told what it holds
SPEC_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["kind"],
    "properties": {"kind": {"enum": ["digits", "sweep", "landscape", "spectrum"]}},
    "description": "a job spec: jobs/specs.py has each kind's fields, defaults and bounds",
}}}}}


class JobList(BaseModel):
    jobs: list[dict[str, Any]]
    available: bool
    reason: str | None


def _manager(request: Request) -> JobManager:
    return request.app.state.jobs


Manager = Annotated[JobManager, Depends(_manager)]


def _job(manager: JobManager, job_id: str, browser: str) -> Job:
    job = manager.get(job_id, browser)
    if job is None:
        raise HTTPException(404, NOT_FOUND)
    return job


def _location(error: dict[str, Any]) -> tuple:
    """Where the error is; a missing or unknown kind is the ``kind`` field's error."""
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return ("kind",)
    return tuple(error["loc"])


def _check_limits(spec: Any, settings: Settings) -> None:
    """422 naming the first size over this server's limit for the kind."""
    for size, value in size_of(spec).items():
        limit = settings.job_limit(spec.kind, size)
        if limit is not None and value > limit[1]:
            name, bound = limit
            raise HTTPException(422, {
                "field": size, "limit": bound, "setting": name, "value": value,
                "message": f"{size} = {value:g} is over this server's limit of {bound:g} for "
                f"{spec.kind} jobs (setting BACKPROP_LAB_{name.upper()})",
            })


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, read no further than ``limit`` bytes (413 beyond)."""
    too_large = HTTPException(413, f"a job request holds at most {limit} bytes "
                              "(setting BACKPROP_LAB_MAX_JOB_BYTES)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        # a path of weight snapshots can be megabytes of JSON: parsed off the event loop
        data = await run_in_threadpool(json.loads, body)
    except ValueError as error:
        raise HTTPException(422, [{"type": "json_invalid", "loc": ["body"],
                                   "msg": f"the body is not JSON: {error}"}]) from None
    if not isinstance(data, dict):
        raise HTTPException(422, [{"type": "dict_type", "loc": ["body"],
                                   "msg": "a job spec is a JSON object"}])
    return data


@router.post("/api/jobs", status_code=202, openapi_extra=SPEC_BODY)
async def submit(
    request: Request, manager: Manager, browser: Browser,
    settings: Annotated[Settings, Depends(get_settings)],
) -> dict[str, Any]:
    """Queue a job: 202 with the job, 422 (field or limit), 429 (too many), 503 (no cluster)."""
    body = await _json_body(request, settings.max_job_bytes)
    try:
        # a landscape's spec builds the session's network to check it: off the event loop
        spec = await run_in_threadpool(parse_spec, body)
    except ValidationError as error:
        detail = [{**item, "loc": ["body", *_location(item)]}
                  for item in error.errors(include_url=False, include_context=False,
                                           include_input=False)]
        raise HTTPException(422, detail) from None
    await run_in_threadpool(_check_limits, spec, settings)
    too_many = HTTPException(429, f"this browser already has {settings.jobs_per_browser} jobs "
                             "queued or running (setting BACKPROP_LAB_JOBS_PER_BROWSER); wait "
                             "for one to finish or cancel one")
    if manager.active_count(browser) >= settings.jobs_per_browser:
        raise too_many
    try:
        job = await manager.submit(spec, browser, max_active=settings.jobs_per_browser)
    except Unavailable as error:
        raise HTTPException(503, str(error)) from None
    except TooMany:
        raise too_many from None
    return job.public()


@router.get("/api/jobs")
async def list_jobs(manager: Manager, browser: Browser) -> JobList:
    """This browser's jobs (newest first, without results) and whether jobs can run."""
    available, reason = await manager.status()
    return JobList(jobs=[job.public(with_result=False) for job in manager.of(browser)],
                   available=available, reason=reason)


@router.get("/api/jobs/{job_id}")
def get_job(job_id: str, manager: Manager, browser: Browser) -> dict[str, Any]:
    return _job(manager, job_id, browser).public()


@router.delete("/api/jobs/{job_id}")
async def cancel_job(job_id: str, manager: Manager, browser: Browser) -> dict[str, Any]:
    """Cancel: answers once the job stopped (within about a second)."""
    return (await manager.cancel(_job(manager, job_id, browser))).public()


@router.get("/api/jobs/{job_id}/result.json")
def download_result(job_id: str, manager: Manager, browser: Browser) -> JSONResponse:
    job = _job(manager, job_id, browser)
    name = f"backprop-lab-{job.kind}-{job.id[:8]}.json"
    return JSONResponse(job.public(),
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/jobs/{job_id}/report", response_class=HTMLResponse)
async def report(job_id: str, manager: Manager, browser: Browser) -> HTMLResponse:
    """The self-contained HTML report of a finished job (plotly.js inlined)."""
    job = _job(manager, job_id, browser)
    if job.state != "done":
        raise HTTPException(409, f"the job has no result to report (it is {job.state})")
    page = await run_in_threadpool(build_report, job.public())
    name = f"backprop-lab-{job.kind}-{job.id[:8]}.html"
    # inline script and style: this page gets its own policy, sandboxed, fetching nothing
    return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_CSP,
                                       "Content-Disposition": f'inline; filename="{name}"'})


@router.websocket("/ws/jobs/{job_id}")
async def job_socket(
    websocket: WebSocket, job_id: str, settings: Annotated[Settings, Depends(get_settings)]
) -> None:
    """The job, its progress as it happens, then the job with its result; then closes."""
    if not await admit_websocket(websocket, settings):  # another site's page: 1008
        return
    manager: JobManager = websocket.app.state.jobs
    job = manager.get(job_id, browser_id(websocket))
    await websocket.accept()  # then close: a handshake refused outright shows as 1006 only
    if job is None:
        await websocket.close(code=CLOSE_NOT_FOUND, reason=NOT_FOUND)
        return
    queue = manager.listen(job)
    # the client says nothing; reading notices when it goes away before the job ends
    gone = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        await websocket.send_json({"type": "job", "job": job.public(with_result=False)})
        while True:
            message = asyncio.ensure_future(queue.get())
            await asyncio.wait({message, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not message.done():
                message.cancel()
                return
            await websocket.send_json(message.result())
            if message.result()["type"] == "result":
                break
        await websocket.close()
    except WebSocketDisconnect:
        pass
    finally:
        gone.cancel()
        manager.unlisten(job, queue)


async def _until_disconnect(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
