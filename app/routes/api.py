"""REST: health, presets, datasets and the protocol's JSON Schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.presets import PRESETS
from app.protocol import SCHEMA_VERSION, json_schema
from app.settings import Settings, get_settings
from engine.datasets import DATASETS

router = APIRouter()


@router.get("/healthz")
def health(request: Request) -> dict[str, Any]:
    """Liveness, open sessions, and the event loop's worst lag (ms) over the last 5 s."""
    return {"status": "ok", "sessions": len(request.app.state.registry),
            "schema_version": SCHEMA_VERSION,
            "loop_lag_ms": request.app.state.loop_monitor.worst_ms()}


@router.get("/api/presets")
def presets() -> list[dict[str, Any]]:
    """Named configurations; load one with {"type": "configure", "config": ...}."""
    return PRESETS


@router.get("/api/datasets")
def datasets() -> list[dict[str, Any]]:
    return [
        {"name": info.name, "title": info.title, "task": info.task,
         "input_dim": info.input_dim, "description": info.description}
        for info in DATASETS.values()
    ]


@router.get("/api/schema")
def schema(settings: Annotated[Settings, Depends(get_settings)]) -> dict[str, Any]:
    """JSON Schema of the session config and of every WebSocket message."""
    return json_schema(settings)
