"""A thin driver for the playground page: open it, read its state, sample canvas pixels."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

# Every 5th pixel's RGB of a canvas, to compare pictures rather than DOM presence.
_PIXELS = """(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const out = [];
  for (let i = 0; i < data.length; i += 20) out.push(data[i], data[i + 1], data[i + 2]);
  return out;
}"""


class Playground:
    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.base_url = base_url

    def open(self, suffix: str = "/", frames: int = 1) -> Playground:
        self.page.goto(self.base_url + suffix)
        self.wait_frames(frames)
        return self

    def wait_frames(self, count: int = 1, timeout: float = 15_000) -> None:
        """Wait until `count` more frames have been drawn."""
        start = self.page.evaluate("() => window.playground ? playground.stats.rendered : 0")
        self.page.wait_for_function(
            f"() => window.playground && playground.stats.rendered >= {start + count}",
            timeout=timeout,
        )

    def wait_for(self, expression: str, timeout: float = 15_000) -> None:
        self.page.wait_for_function(f"() => {expression}", timeout=timeout)

    def js(self, expression: str) -> Any:
        return self.page.evaluate(f"() => {expression}")

    @property
    def config(self) -> dict:
        return self.js("playground.state.config")

    @property
    def step(self) -> int:
        return self.js("playground.state.step")

    def loss(self) -> float | None:
        return self.js("playground.lastFrame && playground.lastFrame.trainLoss")

    def weights(self) -> dict[str, list[float]]:
        return self.js(
            "Object.fromEntries([...playground.state.weights].map(([k, v]) => [k, Array.from(v.value)]))"
        )

    def pause(self) -> None:
        if self.js("playground.state.playing"):
            self.page.click("#play")
        self.wait_for("!playground.state.playing")
        self.page.wait_for_timeout(300)  # a frame already in flight lands

    def play(self) -> None:
        if not self.js("playground.state.playing"):
            self.page.click("#play")
        self.wait_for("playground.state.playing")

    def pixels(self, selector: str) -> list[int]:
        return self.page.locator(selector).first.evaluate(_PIXELS)

    def settle(self) -> None:
        """Let the page draw what it has received (paused sessions send no new frames)."""
        self.page.wait_for_timeout(150)
        self.wait_for("!playground.pending")
        self.page.evaluate(
            "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
        )


def changed_fraction(before: list[int], after: list[int]) -> float:
    assert len(before) == len(after), "the canvas changed size"
    differing = sum(1 for a, b in zip(before, after) if abs(a - b) > 8)
    return differing / max(1, len(before))
