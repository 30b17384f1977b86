"""A thin driver for the playground page: open it, read its state, sample canvas pixels."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
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
        # the page trains once every view has drawn the initial weights
        self.wait_for("!playground.starting")
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
            "Object.fromEntries([...playground.state.weights]"
            ".map(([name, p]) => [name, Array.from(p.value)]))"
        )

    # the points the server's data holds (what the surface draws), train and test
    POINT_COUNT = (
        "(playground.state.data"
        " ? playground.state.data.train.y.length + playground.state.data.test.y.length : 0)"
    )

    def point_count(self) -> int:
        return self.js(self.POINT_COUNT)

    def text(self, selector: str) -> str:
        return self.page.text_content(selector) or ""

    def unit_centre(self, column: int, unit: int) -> tuple[float, float]:
        """Page coordinates of a unit in the network diagram (column 0: the inputs)."""
        x, y = self.js(
            f"(() => {{ const view = playground.network, u = view.cols[{column}].units[{unit}];"
            " return [u.x + view.unitSize / 2, u.y + view.unitSize / 2]; })()"
        )
        box = self.page.locator(".network-canvas").bounding_box()
        return box["x"] + x, box["y"] + y

    def link_centre(self, layer: int, i: int, j: int) -> tuple[float, float]:
        """Page coordinates of the middle of the link W<layer>[i, j] in the diagram."""
        x, y = self.js(
            f"(() => {{ const view = playground.network; const s = view.unitSize;"
            f" for (const l of view.links()) if (l.layer === {layer} && l.i === {i} && l.j === {j})"
            " return [(l.from.x + s + l.to.x) / 2, (l.from.y + l.to.y + s) / 2]; })()"
        )
        box = self.page.locator(".network-canvas").bounding_box()
        return box["x"] + x, box["y"] + y

    def import_bytes(self, content: bytes) -> None:
        """Choose a file with `content` in the import button's file dialog."""
        self.page.set_input_files(
            "#import", files=[{"name": "x.json", "mimeType": "application/json", "buffer": content}]
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


SERIOUS = ("serious", "critical")


# ----- axe --------------------------------------------------------------------------------------
def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each
    (rule id, impact, what it asks, the nodes). axe is injected with Playwright's evaluate,
    which the pages' script-src 'self' policy does not cover, so no bypass_csp is needed."""
    violations = Axe().run(page).response["violations"]
    lines = []
    for violation in violations:
        if violation["impact"] not in SERIOUS:
            continue
        targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:8])
        more = len(violation["nodes"]) - 8
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — "
                     f"{targets}{f' and {more} more' if more > 0 else ''}")
    return lines


def check(page: Page, where: str) -> None:
    found = serious_violations(page)
    print(f"axe on {where}: " + ("no serious or critical violation" if not found else
                                 f"{len(found)} serious or critical:\n  " + "\n  ".join(found)))
    assert not found, f"axe on {where}:\n" + "\n".join(found)
