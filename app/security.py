"""What a page from another site may not do: open a session, run script, frame us.

Browsers send the page's ``Origin`` with every WebSocket handshake but never check it
against the server (the same-origin policy does not cover WebSockets), so the server
does: a socket opened by a page of any other site is refused with close code 1008 before
a session exists, as Jupyter's and Bokeh's servers do. Clients that are not browsers
send no ``Origin`` and are let in: they could forge one anyway.

Every HTTP response gets a Content-Security-Policy (script only from this origin, no
inline script, no other origin at all), ``X-Content-Type-Options: nosniff`` and a
``Referrer-Policy``, unless the route set its own.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.settings import Settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
POLICY_VIOLATION = 1008  # RFC 6455 close code: the message broke the server's policy
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTTP_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def normalise_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None when
    ``origin`` is not an http(s) origin (``null``, ``file://``, garbage)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origin(scheme: str, host_header: str | None) -> str | None:
    """The origin of the pages this server serves, as the request addressed it."""
    if not host_header:
        return None
    return normalise_origin(f"{_HTTP_SCHEME.get(scheme, scheme)}://{host_header}")


def origin_refusal(websocket: WebSocket, settings: Settings) -> str | None:
    """Why this handshake's Origin may not open a socket, or None when it may."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return None  # not a browser: scripts and tests send no Origin
    if "*" in settings.allowed_origins:
        return None
    allowed = {normalise_origin(item) for item in settings.allowed_origins}
    allowed.add(own_origin(websocket.url.scheme, websocket.headers.get("host")))
    allowed.discard(None)
    if normalise_origin(origin) in allowed:
        return None
    shown = origin if len(origin) <= 40 else origin[:37] + "..."
    # a close reason holds at most 123 bytes
    return f"origin {shown} not allowed; see BACKPROP_LAB_ALLOWED_ORIGINS"[:123]


async def admit_websocket(websocket: WebSocket, settings: Settings) -> bool:
    """Call first in every WebSocket route: False when the socket was refused (accepted
    then closed with 1008 and the reason, so the page can show why; nothing was created).
    """
    reason = origin_refusal(websocket, settings)
    if reason is None:
        return True
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client may be gone
        await refuse(websocket, POLICY_VIOLATION, reason)
    return False


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with a code and a reason the client can read. A close before the handshake
    completes becomes a bare HTTP 403, which a browser reports without any reason."""
    if websocket.client_state == WebSocketState.CONNECTING:
        await websocket.accept()
    await websocket.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))


class SecurityHeaders:
    """ASGI middleware: the headers of ``SECURITY_HEADERS`` on every HTTP response that
    did not set them itself (the jobs page and the job reports bring their own policy)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None):
        self.app = app
        self.headers = [(name.encode(), value.encode())
                        for name, value in (headers or SECURITY_HEADERS).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.headers if name not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
