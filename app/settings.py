"""Server settings, read once from the environment (prefix ``BACKPROP_LAB_``).

Every limit that protects the server lives here, so that a deployment can tighten it
without touching code: ``BACKPROP_LAB_MAX_UNITS=16 uvicorn app.main:app``. Routes get
the settings through ``Depends(get_settings)``; tests override that dependency or pass
a ``Settings`` to ``create_app``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKPROP_LAB_", frozen=True)

    # what one session may ask for
    max_layers: int = Field(8, ge=0, le=32, description="hidden layers per network")
    max_units: int = Field(32, ge=1, le=256, description="units per hidden layer")
    max_points: int = Field(5000, ge=2, le=5000, description="data points (generated or placed)")
    max_grid: int = Field(200, ge=10, le=400, description="surface cells per side")
    max_warp_lines: int = Field(41, ge=2, le=101, description="grid lines per direction")
    max_warp_samples: int = Field(201, ge=2, le=1001, description="points per grid line")
    max_speed: float = Field(100_000, gt=0, description="training steps per second")
    max_steps_per_command: int = Field(10_000, ge=1, description="steps one `step` may ask for")
    max_epochs_per_command: int = Field(100, ge=1, description="epochs one `epoch` may ask for")
    max_message_bytes: int = Field(1_048_576, ge=1024, description="largest client message")
    # what one server process holds
    max_sessions: int = Field(200, ge=1, description="open sessions per server process")
    worker_threads: int = Field(1, ge=1, le=64, description="threads running numerical work")
    slice_ms: float = Field(4.0, gt=0, le=1000, description="longest training slice")
    switch_interval_ms: float = Field(1.0, gt=0, le=100, description="GIL switch interval")
    history_length: int = Field(1000, ge=1, description="loss history points kept per frame")
    # the training loop (issue 10): every playing session of a process trains once per tick,
    # sessions sharing a model shape as one stacked computation
    train_tick_ms: float = Field(20.0, gt=0, le=1000, description="training loop period")
    train_budget_ms: float = Field(10.0, gt=0, le=1000,
                                   description="most training time per tick (all sessions)")
    idle_after_s: float = Field(2.0, gt=0, description="a playing session whose client has "
                                "not asked for a frame for this long stops training")
    # defaults of a new session
    default_speed: float = Field(500.0, gt=0, description="training steps per second")
    # ----- hostile input (issue 10): who may connect, how fast, how deep ---------------------
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins (scheme://host[:port]) besides the app's own whose pages may open "
        "a WebSocket; comma-separated or a JSON list; '*' allows any",
    )
    max_json_depth: int = Field(32, ge=4, le=1000, description="nesting of brackets per message")
    # a held arrow key repeats up to ~30-50 times a second; a script sends thousands
    command_rate: float = Field(50.0, gt=0, description="commands per second, sustained")
    command_burst: int = Field(200, ge=1, description="commands a session may send at once")
    max_sessions_per_address: int = Field(
        60, ge=1, description="open sessions per client address (a class behind one NAT)"
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        # the environment gives a string: a JSON list or comma-separated origins
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    # heavy jobs (issue 9, docs/jobs.md): where they run and what one browser may ask for.
    # A size limit is named max_<kind>_<size>, <size> being a key of jobs.specs.size_of.
    scheduler: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786); unset: embedded cluster"
    )
    local_workers: int = Field(0, ge=0, le=64, description="embedded workers; 0: min(cores, 4)")
    scheduler_timeout_s: float = Field(5.0, gt=0, le=120, description="connecting to it")
    jobs_per_browser: int = Field(2, ge=1, le=100, description="queued or running at once")
    jobs_kept_per_browser: int = Field(20, ge=1, le=1000, description="finished jobs kept")
    jobs_kept: int = Field(2000, ge=1, description="finished jobs kept, all browsers")
    job_time_limit_s: float = Field(600.0, gt=0, description="a longer job is stopped")
    max_job_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="a job request's body")
    max_digits_epochs: int = Field(20, ge=1, description="digits: passes over the data")
    max_digits_hidden: int = Field(500, ge=1, description="digits: hidden units")
    max_sweep_nets: int = Field(60, ge=1, description="sweep: depths x widths x seeds")
    max_sweep_total_steps: int = Field(300_000, ge=1, description="sweep: updates, all nets")
    max_landscape_points: int = Field(101 * 101, ge=9, description="landscape: grid points")
    max_landscape_parameters: int = Field(20_000, ge=1, description="landscape: net size")
    max_landscape_path: int = Field(200, ge=0, description="landscape: weight snapshots")
    max_spectrum_parameters: int = Field(20_000, ge=1, description="spectrum: net size")
    max_spectrum_iterations: int = Field(300, ge=1, description="spectrum: Lanczos steps")

    def job_limit(self, kind: str, size: str) -> tuple[str, float] | None:
        """(setting name, value) of the limit on ``size`` of a ``kind`` job, if one is set."""
        name = f"max_{kind}_{size}"
        return (name, getattr(self, name)) if name in type(self).model_fields else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
