"""GET /docs: Swagger UI from the vendored swagger-ui-dist (no CDN, works offline).

FastAPI's own page starts Swagger UI with an inline script, which the pages'
Content-Security-Policy (``script-src 'self'``) forbids; this page loads the same bundle
and starts it from static/js/swagger-init.js, which reads the schema's URL from the page.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter()
SWAGGER_UI = "/static/vendor/swagger-ui-5.35.0"


@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    openapi_url = escape(request.app.openapi_url or "/openapi.json", quote=True)
    title = escape(f"{request.app.title} — API", quote=False)
    return HTMLResponse(f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
  <link rel="stylesheet" href="/static/css/docs.css">
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>
<script src="/static/js/swagger-init.js"></script>
</body>
</html>
""")
