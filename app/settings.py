"""Server settings, read once from the environment (prefix ``BACKPROP_LAB_``).

Every limit that protects the server lives here, so that a deployment can tighten it
without touching code: ``BACKPROP_LAB_MAX_UNITS=16 uvicorn app.main:app``. Routes get
the settings through ``Depends(get_settings)``; tests override that dependency or pass
a ``Settings`` to ``create_app``.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache
def get_settings() -> Settings:
    return Settings()
