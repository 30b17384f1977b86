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


@lru_cache
def get_settings() -> Settings:
    return Settings()
