"""Limits that keep one client from taking the server from the others: how deeply a
message may nest, how fast a session may send commands, how many sessions one address
may hold. The numbers live in ``app.settings`` (one block); the mechanisms live here.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np

# a JSON string, escapes included, written so that the regex engine never backtracks
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# +1 for an opening bracket, -1 for a closing one, 0 for every other byte
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1


def json_depth(text: str) -> int:
    """How deeply the brackets of a JSON text nest, brackets inside strings ignored.

    Runs before any parser sees the text: Python's ``json`` recurses once per level and
    raises RecursionError at about a thousand, which must never reach a session. A
    running sum over the bytes (numpy, as a byte scanner) costs under 10 ms for the
    largest message the server accepts (1 MB), whatever its shape; a loop in Python
    would take ten times as long, and ``str.replace`` passes have pathological inputs.
    """
    if '"' in text:
        text = _STRING.sub('""', text)
    # multi-byte UTF-8 sequences use bytes >= 0x80, never a bracket
    steps = _DEPTH_STEP[np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def too_deep(text: str, limit: int) -> bool:
    """Whether ``text`` nests deeper than ``limit``; free when it has few brackets."""
    if text.count("[") + text.count("{") <= limit:
        return False  # n opening brackets nest at most n deep
    return json_depth(text) > limit


class TokenBucket:
    """``rate`` commands per second sustained, ``burst`` at once: a person clicking and
    dragging never meets it, a script that floods the socket does, on every command
    beyond it, while the session goes on serving at the sustained rate."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.last = clock()

    def take(self) -> bool:
        """Spend one token; False when none is left (the command is refused)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class AddressCounter:
    """Open sessions per client address. A class behind one NAT shares one address, so
    the cap is generous; it stops one machine from taking every place on the server."""

    def __init__(self) -> None:
        self.open: Counter[str] = Counter()

    def acquire(self, address: str, limit: int) -> bool:
        """Count one more session for ``address``; False (and nothing counted) at the cap."""
        if self.open[address] >= limit:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]
