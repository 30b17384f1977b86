"""The jobs REST and WebSocket API (docs/jobs.md) on the embedded Dask cluster: the browser
cookie and ownership, validation and limits, progress then result, cancel, downloads, and
an app whose scheduler cannot be reached."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.browser import COOKIE, new_browser_id
from app.main import create_app
from app.reports import REPORT_CSP
from app.settings import Settings
from tests.conftest import ROOT, free_port

SMALL_SWEEP = {"kind": "sweep", "depths": [1], "widths": [2, 3], "seeds": 1, "steps": 3000,
               "size": 100, "backend": "numpy"}
LONG_SWEEP = {**SMALL_SWEEP, "widths": [2], "steps": 100_000}
SMALL_DIGITS = {"kind": "digits", "epochs": 1, "hidden": 16, "train_size": 300,
                "map_points": 20, "backend": "numpy"}


@pytest.fixture(scope="module")
def jobs_client() -> Iterator[TestClient]:
    """One app for the module, its embedded cluster of one worker process started by the
    first job and closed by the app's shutdown."""
    settings = Settings(local_workers=1, jobs_per_browser=2, max_sweep_nets=8,
                        max_job_bytes=65536)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(jobs_client: TestClient) -> TestClient:
    """The module's client as a browser of its own (a fresh cookie jar)."""
    jobs_client.cookies.clear()
    jobs_client.get("/api/jobs")
    return jobs_client


def another_browser() -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={new_browser_id()}"}


def wait_until_finished(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_a_browser_gets_a_random_httponly_strict_cookie_once(jobs_client):
    jobs_client.cookies.clear()
    first = jobs_client.get("/api/jobs")
    cookie = first.headers["set-cookie"]
    assert re.match(rf"{COOKIE}=[A-Za-z0-9_-]{{32}};", cookie)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "set-cookie" not in jobs_client.get("/api/jobs").headers  # it has one now
    jobs_client.cookies.clear()
    assert jobs_client.get("/").headers["set-cookie"] != cookie  # pages set it too, anew
    jobs_client.cookies.clear()
    assert "set-cookie" not in jobs_client.get("/healthz").headers


def test_a_job_streams_progress_then_its_result(client):
    created = client.post("/api/jobs", json=SMALL_SWEEP)
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["state"] == "queued" and job["kind"] == "sweep" and job["result"] is None
    assert job["spec"]["steps"] == 3000 and job["spec"]["optimizer"] == "adam"  # defaults
    with client.websocket_connect(f"/ws/jobs/{job['id']}") as socket:
        first = socket.receive_json()
        assert first["type"] == "job" and first["job"]["id"] == job["id"]
        messages = []
        while not messages or messages[-1]["type"] != "result":
            messages.append(socket.receive_json())
        with pytest.raises(WebSocketDisconnect):
            socket.receive_json()  # the server closes after the result
    progress = messages[:-1]
    assert progress and all(message["type"] == "progress" for message in progress)
    assert any("loss" in message["data"] for message in progress)
    assert [m["progress"] for m in progress] == sorted(m["progress"] for m in progress)
    final = messages[-1]["job"]
    assert final["state"] == "done" and final["progress"] == 1.0
    assert [run["width"] for run in final["result"]["runs"]] == [2, 3]
    assert client.get(f"/api/jobs/{job['id']}").json() == final
    listing = client.get("/api/jobs").json()
    assert listing["available"] is True and listing["reason"] is None
    assert [(entry["id"], "result" in entry) for entry in listing["jobs"]] == [(job["id"], False)]
    # a socket opened after the end gets the job and its result at once
    with client.websocket_connect(f"/ws/jobs/{job['id']}") as socket:
        assert socket.receive_json()["type"] == "job"
        assert socket.receive_json() == {"type": "result", "job": final}
        with pytest.raises(WebSocketDisconnect):
            socket.receive_json()  # and is closed: nothing of the session is left running


def test_a_digits_job_downloads_as_json_and_as_an_offline_report(client):
    job_id = client.post("/api/jobs", json=SMALL_DIGITS).json()["id"]
    job = wait_until_finished(client, job_id)
    assert job["state"] == "done", job["message"]
    assert 0 <= job["result"]["test_accuracy"] <= 1
    assert len(job["result"]["confusion"]) == 10
    download = client.get(f"/api/jobs/{job_id}/result.json")
    assert download.headers["content-disposition"].startswith("attachment; filename=")
    assert download.json() == job
    report = client.get(f"/api/jobs/{job_id}/report")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert report.headers["content-security-policy"] == REPORT_CSP
    page = report.text
    assert "plotly.js v" in page  # inlined, not fetched
    assert not re.search(r"<script[^>]*\ssrc\s*=", page)
    assert not re.search(r"""<(link|img|iframe|script)[^>]*(src|href)\s*=\s*["']?(https?:)?//""",
                         page)
    assert "Confusion matrix" in page and "Hidden layer" in page


def test_an_invalid_spec_is_a_422_naming_the_field(client):
    for spec, field in (({"kind": "sweep", "depths": [0]}, "depths"),
                        ({"kind": "digits", "epochs": "many"}, "epochs"),
                        ({"kind": "sweep", "dataset": "nowhere"}, "dataset"),
                        ({"kind": "digits", "colour": "red"}, "colour"),
                        ({"kind": "teleport"}, "kind")):
        reply = client.post("/api/jobs", json=spec)
        assert reply.status_code == 422, spec
        assert any(field in item["loc"] or field in str(item["loc"])
                   for item in reply.json()["detail"]), reply.json()
    assert client.post("/api/jobs", json=[1, 2]).status_code == 422
    assert client.post("/api/jobs", content=b"{not json",
                       headers={"Content-Type": "application/json"}).status_code == 422
    assert client.get("/api/jobs").json()["jobs"] == []


def test_a_spec_over_a_limit_is_a_422_naming_the_limit(client):
    reply = client.post("/api/jobs", json={"kind": "sweep", "widths": [1, 2, 3, 4, 5],
                                          "seeds": 2})
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert detail["field"] == "nets" and detail["limit"] == 8 and detail["value"] == 30
    assert detail["setting"] == "max_sweep_nets"
    assert "BACKPROP_LAB_MAX_SWEEP_NETS" in detail["message"]


def test_a_body_over_the_size_limit_is_a_413_read_no_further(client):
    reply = client.post("/api/jobs", json={"kind": "digits", "padding": "x" * 70_000})
    assert reply.status_code == 413
    assert "BACKPROP_LAB_MAX_JOB_BYTES" in reply.json()["detail"]

    def chunks():  # no Content-Length: the server counts what it reads
        yield b'{"kind": "digits", "padding": "'
        for _ in range(100):
            yield b"x" * 1000

    assert client.post("/api/jobs", content=chunks(),
                       headers={"Content-Type": "application/json"}).status_code == 413


def test_too_many_jobs_is_a_429_and_cancel_frees_a_place(client):
    first = client.post("/api/jobs", json=LONG_SWEEP).json()
    second = client.post("/api/jobs", json=LONG_SWEEP).json()
    third = client.post("/api/jobs", json=LONG_SWEEP)
    assert third.status_code == 429
    assert "BACKPROP_LAB_JOBS_PER_BROWSER" in third.json()["detail"]
    other = another_browser()
    assert client.post("/api/jobs", json=SMALL_SWEEP, headers=other).status_code == 202
    assert client.get(f"/api/jobs/{first['id']}/report").status_code == 409
    for job in (first, second):
        cancelled = client.delete(f"/api/jobs/{job['id']}")
        assert cancelled.status_code == 200
        # stopped by itself, or dropped after the second the server waits (how soon a piece
        # stops is measured by benchmarks/jobs.py; tests/jobs/test_cluster.py checks that it
        # stops by itself)
        assert cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["message"].startswith("cancelled")
    again = client.post("/api/jobs", json=SMALL_SWEEP)
    assert again.status_code == 202
    assert wait_until_finished(client, again.json()["id"])["state"] == "done"


def test_another_browser_gets_404_for_a_job(client):
    job = client.post("/api/jobs", json=SMALL_SWEEP).json()
    wait_until_finished(client, job["id"])
    other = another_browser()
    for path in ("", "/report", "/result.json"):
        reply = client.get(f"/api/jobs/{job['id']}{path}", headers=other)
        assert reply.status_code == 404, path
    assert client.delete(f"/api/jobs/{job['id']}", headers=other).status_code == 404
    assert client.get("/api/jobs", headers=other).json()["jobs"] == []
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect(f"/ws/jobs/{job['id']}", headers=other) as socket:
            socket.receive_json()
    assert closed.value.code == 4404
    assert client.get(f"/api/jobs/{job['id']}").status_code == 200  # still its owner's
    assert client.get("/api/jobs/no-such-job").status_code == 404


def test_without_a_reachable_cluster_pages_work_and_jobs_say_why():
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings(scheduler=address, scheduler_timeout_s=1.0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/").status_code == 200
        assert client.get("/healthz").status_code == 200
        listing = client.get("/api/jobs").json()
        assert listing["available"] is False
        assert address in listing["reason"] and "cannot be reached" in listing["reason"]
        reply = client.post("/api/jobs", json=SMALL_SWEEP)
        assert reply.status_code == 503
        assert address in reply.json()["detail"]
        assert client.post("/api/jobs", json={"kind": "sweep", "depths": [0]}).status_code == 422
        assert client.get("/api/jobs").json()["jobs"] == []


def test_a_real_server_starts_its_cluster_with_the_first_job_and_closes_it(tmp_path):
    """uvicorn as deployed: no worker process before the first job (a fast start), the
    spawned workers import the app's modules without starting another server, and the
    shutdown closes them all."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BACKPROP_LAB_LOCAL_WORKERS": "1"}
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as browser:
            deadline = time.monotonic() + 30
            while True:
                try:
                    listing = browser.get("/api/jobs").json()
                    break
                except httpx.TransportError:
                    assert server.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            assert listing["available"] is True
            assert psutil.Process(server.pid).children(recursive=True) == []
            job_id = browser.post("/api/jobs", json=SMALL_SWEEP).json()["id"]
            job = wait_until_finished(browser, job_id)
            assert job["state"] == "done", job["message"]
        workers = psutil.Process(server.pid).children(recursive=True)
        assert workers
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)  # uvicorn re-raises the signal once it has shut down
        output = (tmp_path / "server.log").read_text()
        assert "Application shutdown complete" in output, output
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == [], output
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_app_imports_dask_only_when_a_job_comes():
    """``make run`` starts as fast as without jobs: not even Dask is imported until then."""
    check = ("import sys, app.main; "
             "print(sorted(name for name in ('dask', 'distributed') if name in sys.modules))")
    output = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert output.stdout.strip() == "[]"
