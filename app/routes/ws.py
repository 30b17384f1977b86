"""WS /ws/session: one WebSocket, one session (docs/protocol.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket

from app.connection import Connection
from app.protocol import protocol_for
from app.settings import Settings, get_settings

router = APIRouter()


@router.websocket("/ws/session")
async def session_socket(
    websocket: WebSocket, settings: Annotated[Settings, Depends(get_settings)]
) -> None:
    await websocket.accept()
    state = websocket.app.state
    session = await state.registry.open(state.worker, settings)
    if session is None:
        error = protocol_for(settings).Error(
            code="too_many_sessions", field="max_sessions", limit=settings.max_sessions,
            message=f"this server holds at most {settings.max_sessions} sessions; "
            "try again in a moment",
        )
        await websocket.send_json(error.model_dump())
        await websocket.close(code=1013)
        return
    try:
        await Connection(websocket, session, state.worker, settings).run()
    finally:
        state.registry.close(session.id)
