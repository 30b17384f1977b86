"""HEAD on every GET route: the same status and headers, no body (RFC 9110, section 9.3.2).

FastAPI routes answer only the methods they declare, so ``HEAD /`` was 405; link checkers,
uptime monitors and ``curl -I`` send HEAD. This middleware serves a HEAD as the GET it
mirrors and drops the body, for every route present and future.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as GET; the response keeps its status and
    headers (Content-Length included: the length a GET would get) and loses its body."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
