"""The app's routes as a flat list, read from the app itself (so pages added later are
covered): FastAPI 0.165 keeps an included router as one lazy entry of ``app.routes``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute


def flat_routes(app: Any) -> Iterator[Any]:
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            yield from (context.original_route for context in contexts())
        elif hasattr(route, "original_router"):  # pragma: no cover - another FastAPI layout
            yield from route.original_router.routes
        else:
            yield route


def get_paths(app: Any) -> list[str]:
    """Every GET route without path parameters."""
    return sorted({
        route.path for route in flat_routes(app)
        if isinstance(route, APIRoute) and "GET" in route.methods and "{" not in route.path
    })
