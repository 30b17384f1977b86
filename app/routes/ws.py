"""WS /ws/session: one WebSocket, one session (docs/protocol.md)."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.connection import Connection
from app.protocol import protocol_for
from app.security import admit_websocket, refuse
from app.settings import Settings, get_settings

router = APIRouter()
TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the server is overloaded for now


@router.websocket("/ws/session")
async def session_socket(
    websocket: WebSocket, settings: Annotated[Settings, Depends(get_settings)]
) -> None:
    if not await admit_websocket(websocket, settings):
        return
    state = websocket.app.state
    address = websocket.client.host if websocket.client else "unknown"
    if not state.addresses.acquire(address, settings.max_sessions_per_address):
        limit = settings.max_sessions_per_address
        await _refuse_session(websocket, settings, "max_sessions_per_address", limit,
                              "this address already holds the most sessions one address "
                              f"may open ({limit})")
        return
    try:
        await websocket.accept()
        session = await state.registry.open(state.worker, settings)
        if session is None:
            await _refuse_session(websocket, settings, "max_sessions", settings.max_sessions,
                                  f"this server holds at most {settings.max_sessions} "
                                  "sessions; try again in a moment")
            return
        try:
            await Connection(websocket, session, state.worker, settings).run()
        finally:
            state.registry.close(session.id)
    finally:
        state.addresses.release(address)


async def _refuse_session(websocket: WebSocket, settings: Settings, field: str, limit: int,
                          message: str) -> None:
    """The error as a message (the page shows it), then the close with its reason."""
    error = protocol_for(settings).Error(code="too_many_sessions", field=field, limit=limit,
                                         message=message)
    if websocket.client_state == WebSocketState.CONNECTING:
        await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client may be gone
        await websocket.send_json(error.model_dump())
        await refuse(websocket, TRY_AGAIN_LATER, message)
