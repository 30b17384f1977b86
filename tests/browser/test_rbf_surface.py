"""The playground draws RBF units' templates on the decision surface: one cross per unit at
the centre the frame carries, starting on training examples and following them as they
learn (Debian's chromium against a real uvicorn)."""

from __future__ import annotations

import pytest

from tests.browser.helpers import Playground
from tests.browser.test_step_page import fragment, preset


# the cross's core is #1d2630; anti-aliased at a centre between pixels it stays dark, while
# every colour of the surface has a channel above 140 (pale blues and reds, white)
def is_cross(rgba: list[int]) -> bool:
    return max(rgba[:3]) < 100

CROSS_PIXELS = """() => {
  const surface = playground.surface;
  const { data, dims } = surface.surface.templates;
  const canvas = surface.area.canvases[0];
  const ratio = canvas.width / canvas.clientWidth;
  const context = canvas.getContext("2d");
  const out = [];
  for (let i = 0; i < data.length; i += dims) {
    const x = Math.round(surface.area.px(data[i]) * ratio);
    const y = Math.round(surface.area.py(data[i + 1]) * ratio);
    out.push([data[i], data[i + 1], Array.from(context.getImageData(x, y, 1, 1).data)]);
  }
  return out;
}"""


def rbf_config(units: int = 5) -> dict:
    config = preset("fig_6_2")
    config["model"]["layers"] = [{"units": units, "activation": "rbf", "slope": 0.01,
                                  "pieces": 2}]
    return config


def test_the_templates_are_drawn_on_the_surface(page, server_url, console_errors, shots):
    playground = Playground(page, server_url).open("/" + fragment(rbf_config()))
    playground.pause()
    # fresh initial weights, untrained: the templates sit on training examples
    page.click("#reset")
    playground.wait_for("playground.lastFrame.step === 0 && !playground.lastFrame.playing")
    playground.settle()  # the reset frame drawn, not only received
    playground.wait_for("playground.surface.templatesDrawn === 5 && !playground.surface.dirty")
    crosses = page.evaluate(CROSS_PIXELS)
    assert len(crosses) == 5
    for _, _, rgba in crosses:
        assert is_cross(rgba), rgba
    # the frame's templates are the network's first-layer weights, and training examples
    weights = playground.weights()["W1"]  # flattened (features, units)
    units = 5
    for unit, (x1, x2, _) in enumerate(crosses):
        assert (x1, x2) == pytest.approx((weights[unit], weights[units + unit]), abs=1e-5)
    train = page.evaluate("() => Array.from(playground.state.data.train.x)")
    pairs = list(zip(train[0::2], train[1::2], strict=True))
    for x1, x2, _ in crosses:
        assert min(abs(x1 - a) + abs(x2 - b) for a, b in pairs) < 2e-3
    page.mouse.move(2, 2)
    shots(page, "playground-rbf-templates")
    # as the units learn, the crosses move with them
    playground.play()
    playground.wait_for("playground.state.step > 300", timeout=30_000)
    playground.pause()
    playground.settle()
    playground.wait_for("!playground.surface.dirty")
    moved = page.evaluate(CROSS_PIXELS)
    assert any(abs(a[0] - b[0]) + abs(a[1] - b[1]) > 1e-3 for a, b in zip(crosses, moved,
                                                                           strict=True))
    for _, _, rgba in moved:
        assert is_cross(rgba), rgba
    assert console_errors == []


def test_no_templates_for_other_units(page, server_url, console_errors):
    Playground(page, server_url).open("/" + fragment(preset("fig_6_2")))
    assert page.evaluate("() => playground.surface.templatesDrawn") == 0
    assert page.evaluate("() => playground.lastFrame.surface.templates === undefined")
    assert console_errors == []


def test_one_dimensional_templates_sit_on_the_x_axis(page, server_url, console_errors, shots):
    config = preset("sine")
    config["model"]["layers"] = [{"units": 6, "activation": "rbf", "slope": 0.01, "pieces": 2}]
    playground = Playground(page, server_url).open("/" + fragment(config))
    playground.pause()
    page.click("#reset")
    playground.wait_for("playground.lastFrame.step === 0 && !playground.lastFrame.playing")
    playground.settle()
    playground.wait_for("playground.surface.templatesDrawn === 6 && !playground.surface.dirty")
    templates = page.evaluate("() => Array.from(playground.lastFrame.surface.templates.data)")
    train = page.evaluate("() => Array.from(playground.state.data.train.x)")
    assert len(templates) == 6
    assert all(min(abs(t - x) for x in train) < 2e-3 for t in templates)
    page.mouse.move(2, 2)
    shots(page, "playground-rbf-templates-1d")
    assert console_errors == []
