"""HEAD on every page and route a GET answers, and the favicon (issue 12)."""

from __future__ import annotations

import re

from tests.routes import get_paths


def test_every_get_route_answers_head_with_get_headers_and_no_body(app, client):
    paths = get_paths(app)  # from the app: pages added later are covered
    assert {"/", "/step", "/jobs", "/docs", "/healthz", "/favicon.ico"} <= set(paths)
    for path in paths:
        get = client.get(path)
        head = client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
        if "content-length" in get.headers:
            assert head.headers["content-length"] == get.headers["content-length"], path
        # the security headers come with HEAD as with GET
        assert head.headers["content-security-policy"] == get.headers[
            "content-security-policy"], path


def test_head_on_static_files_and_plotly(client):
    for path in ("/static/js/playground.js", "/vendor/plotly.min.js", "/static/favicon.svg"):
        head = client.head(path)
        assert head.status_code == 200, path
        assert head.content == b""
        assert int(head.headers["content-length"]) > 0


def test_head_leaves_other_methods_alone(client):
    # a POST-only route says which methods it takes; HEAD on a missing page is a 404
    assert client.head("/no/such/page").status_code == 404
    assert client.get("/api/jobs").status_code == 200
    assert client.head("/api/jobs").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_favicon_is_our_svg_and_every_page_links_it(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg") and "<circle" in icon.text
    assert client.get("/static/favicon.svg").content == icon.content
    pages = [path for path in get_paths(client.app)
             if client.get(path).headers["content-type"].startswith("text/html")]
    assert {"/", "/step", "/jobs", "/docs"} <= set(pages)
    for path in pages:  # every HTML page, those added later too
        html = client.get(path).text
        links = re.findall(r'<link rel="icon" href="([^"]+)"', html)
        assert links == ["/static/favicon.svg"], (path, links)
