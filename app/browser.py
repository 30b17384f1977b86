"""Which browser a request comes from: a random id in an HttpOnly, SameSite=Strict cookie.

Jobs belong to the browser that submitted them (another browser gets 404), so each browser
needs an id that scripts cannot read (HttpOnly) and that other sites cannot send along
(SameSite=Strict). ``BrowserCookie`` gives every HTTP request and WebSocket an id (the
cookie's, or a new one) and sets the cookie on the first page or jobs response without it.
"""

from __future__ import annotations

import re
import secrets

from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "backprop_lab_browser"
SCOPE_KEY = "backprop_lab.browser"
MAX_AGE_S = 365 * 24 * 3600
_VALID = re.compile(r"[A-Za-z0-9_-]{20,64}")


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)


def browser_id(connection: HTTPConnection) -> str:
    """The id of the browser behind this request or WebSocket (``Depends`` on it)."""
    return connection.scope[SCOPE_KEY]


def _cookie_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(COOKIE)
            if found and _VALID.fullmatch(found):
                return found
    return None


def _needs_cookie(scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
    """Pages (HTML) and the jobs API carry the cookie; static files and the rest do not."""
    if scope["path"].startswith("/api/jobs"):
        return True
    return any(name.lower() == b"content-type" and value.startswith(b"text/html")
               for name, value in headers)


class BrowserCookie:
    """ASGI middleware: puts the browser's id in the scope, sets the cookie when missing."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        known = _cookie_of(scope)
        scope[SCOPE_KEY] = known or new_browser_id()
        if known or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = (f"{COOKIE}={scope[SCOPE_KEY]}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly; "
                  "SameSite=Strict").encode("latin-1")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if _needs_cookie(scope, headers):
                    message = {**message, "headers": [*headers, (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
