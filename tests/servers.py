"""A dedicated ``uvicorn app.main:app`` for tests that set its limits, kill it, restart it
on the same port or read its memory: the shared ``live_server`` must not see any of that."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port


class Uvicorn:
    """One uvicorn process on 127.0.0.1; ``start``/``kill`` may be called again and again
    (the port stays the same). Output goes to a log file, never to an unread pipe."""

    def __init__(self, log_path: Path, port: int | None = None, **settings: object):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.env.update({f"BACKPROP_LAB_{name.upper()}": str(value)
                         for name, value in settings.items()})
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Uvicorn:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """End the process (SIGKILL: as a crash or a pulled plug would)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=10).json()

    def rss_kib(self) -> int:
        """Resident memory of the server process (VmRSS in /proc/<pid>/status)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_sessions(self, count: int, timeout: float = 20.0) -> None:
        """Until /healthz reports ``count`` open sessions (closing one takes a moment)."""
        deadline = time.monotonic() + timeout
        while (sessions := self.health()["sessions"]) != count:
            assert time.monotonic() < deadline, f"{sessions} sessions open, expected {count}"
            time.sleep(0.05)
