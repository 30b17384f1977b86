"""How the browser tests and benchmarks/browser.py start chromium: Debian's build (never
`playwright install`, which downloads a browser this machine cannot fetch), headless, with
everything that would reach the network or the GPU turned off."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
