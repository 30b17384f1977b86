"""Access (issue 12): the canvases say what they show, in words that follow training, and a
colour-blind safe palette travels in the shared link and recolours what is drawn."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.browser.helpers import Playground, changed_fraction

STANDARD_RED = (214, 64, 42)  # class 1 in the standard palette
OKABE_ITO_ORANGE = (230, 159, 0)  # class 1 in the Okabe–Ito palette
SURFACE_LABEL = re.compile(
    r"^Decision surface: test accuracy (\d\.\d\d) after (\d+) (epochs?|steps?), 2 classes, "
    r"(\d+) points$")

# Pixels of a canvas within 12 of an RGB colour on every channel.
_COUNT_COLOUR = """([canvas, rgb]) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    const near = (k) => Math.abs(data[i + k] - rgb[k]) <= 12;
    if (data[i + 3] > 200 && near(0) && near(1) && near(2)) count += 1;
  }
  return count;
}"""


@pytest.fixture
def playground(page, server_url, console_errors) -> Playground:
    return Playground(page, server_url)


def label(pg: Playground, selector: str) -> str:
    return pg.page.get_attribute(selector, "aria-label") or ""


def test_canvas_descriptions_follow_training(playground):
    pg = playground.open(frames=2)
    page = pg.page
    pg.wait_for("document.getElementById('surface').getAttribute('aria-label')"
                ".startsWith('Decision surface: test accuracy')")
    first = label(pg, "#surface")
    match = SURFACE_LABEL.match(first)
    assert match, first
    assert int(match[4]) == pg.point_count()
    # the words change as training goes on: a later label, a later epoch
    pg.wait_for(f"document.getElementById('surface').getAttribute('aria-label') !== {first!r}"
                " && playground.state.epoch >= 2", timeout=30_000)
    pg.wait_for("/after \\d+ epochs?,/.test(document.getElementById('surface')"
                ".getAttribute('aria-label'))", timeout=30_000)
    later = SURFACE_LABEL.match(label(pg, "#surface"))
    assert later, label(pg, "#surface")
    before = (int(match[2]), match[3]) if match[3].startswith("epoch") else (0, "steps")
    assert later[3].startswith("epoch") and int(later[2]) >= before[0]

    # labels are rebuilt a few times a second at most, not with every frame drawn
    updates, rendered = pg.js("[playground.describer.updates, playground.stats.rendered]")
    pg.wait_frames(40, timeout=60_000)
    updates_after, rendered_after = pg.js(
        "[playground.describer.updates, playground.stats.rendered]")
    assert updates_after - updates <= (rendered_after - rendered) / 4

    # paused: the label says exactly the last frame's numbers, and the live region speaks
    pg.pause()
    pg.settle()
    pg.wait_for("document.getElementById('canvas-status').textContent.startsWith('Paused.')")
    frame = pg.js("({accuracy: playground.lastFrame.testAccuracy,"
                  " epoch: playground.lastFrame.epoch, step: playground.lastFrame.step})")
    pg.wait_for("document.getElementById('surface').getAttribute('aria-label')"
                f".includes('after {int(frame['epoch'])} epoch')")
    final = SURFACE_LABEL.match(label(pg, "#surface"))
    assert final and final[1] == f"{frame['accuracy']:.2f}", (label(pg, "#surface"), frame)
    spoken = page.text_content("#canvas-status")
    assert spoken == f"Paused. {label(pg, '#surface')}.", spoken

    # the other canvases
    network = label(pg, ".network-canvas")
    assert network.startswith(
        "Network diagram: 2 input features (x1, x2), 2 hidden layers of 4 tanh, 2 tanh units,"
        " 1 output unit (bernoulli); largest weight"), network
    assert re.search(r"training loss \d\.\d{3}, test loss \d\.\d{3} after \d+ epochs?",
                     label(pg, "#curve-loss")), label(pg, "#curve-loss")
    assert re.search(r"training 0\.\d\d|training 1\.00", label(pg, "#curve-accuracy"))
    assert re.search(r"layer 1 [\d.e-]+, layer 2 [\d.e-]+, layer 3 [\d.e-]+",
                     label(pg, "#curve-norms")), label(pg, "#curve-norms")
    warps = page.eval_on_selector_all(".warp-plot", "(plots) => plots.map((p) =>"
                                      " [p.getAttribute('role'), p.getAttribute('aria-label')])")
    assert [role for role, _ in warps] == ["img"] * 3
    assert warps[0][1].startswith("Space warping, input space")
    assert warps[1][1].startswith("Space warping, layer 1: h⁽¹⁾ = tanh(a⁽¹⁾): 4 units")

    # a change of shape shows in the diagram's words
    page.click('[data-action="add-unit"] >> nth=0')
    pg.wait_for("playground.network.canvas.getAttribute('aria-label')"
                ".includes('of 5 tanh, 2 tanh units')")


def fragment_payload(url: str) -> dict:
    encoded = url.split("#c=", 1)[1]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def with_payload(url: str, payload: dict) -> str:
    text = json.dumps(payload).encode()
    return url.split("#", 1)[0] + "#c=" + base64.urlsafe_b64encode(text).decode().rstrip("=")


def count_colour(pg: Playground, selector: str, rgb: tuple[int, int, int]) -> int:
    return pg.page.locator(selector).evaluate(
        "(canvas, rgb) => (" + _COUNT_COLOUR + ")([canvas, rgb])", list(rgb))


def test_palette_travels_in_the_link_and_recolours(playground, page, tmp_path):
    points = "#surface canvas >> nth=1"
    surface = "#surface canvas >> nth=0"
    pg = playground.open()
    pg.pause()
    pg.settle()
    assert pg.page.input_value("#palette") == "standard"
    assert count_colour(pg, points, STANDARD_RED) > 50
    assert count_colour(pg, points, OKABE_ITO_ORANGE) == 0
    picture = pg.pixels(surface)
    diagram = pg.pixels(".network-canvas")

    page.select_option("#palette", "okabe-ito")
    pg.wait_for("location.hash.length > 3")
    pg.settle()
    page.wait_for_timeout(200)  # the diagram redraws at its own pace
    assert count_colour(pg, points, OKABE_ITO_ORANGE) > 50
    assert count_colour(pg, points, STANDARD_RED) == 0
    assert changed_fraction(picture, pg.pixels(surface)) > 0.05
    assert changed_fraction(diagram, pg.pixels(".network-canvas")) > 0.02
    pg.wait_for("location.hash.includes('#c=')")
    link = pg.js("location.href")
    assert fragment_payload(link)["palette"] == "okabe-ito"
    # through the step-through page and back
    pg.wait_for("document.getElementById('step-link').href.includes('#c=')")
    step_link = page.get_attribute("#step-link", "href")
    assert fragment_payload(step_link)["palette"] == "okabe-ito"
    step = page.context.new_page()
    step.goto(pg.base_url + step_link)
    step.wait_for_function("() => window.stepPage && stepPage.graph !== null")
    back = step.get_attribute("#playground-link", "href")
    assert fragment_payload(back)["palette"] == "okabe-ito"
    step.close()

    # the shared link opens in the same colours
    other = page.context.new_page()
    opened = Playground(other, pg.base_url).open(link[len(pg.base_url):])
    opened.pause()
    opened.settle()
    assert other.input_value("#palette") == "okabe-ito"
    assert count_colour(opened, points, OKABE_ITO_ORANGE) > 50
    assert count_colour(opened, points, STANDARD_RED) == 0

    # the exported file keeps it too, and importing it brings it back
    with other.expect_download() as download:
        other.click("#export")
    exported = tmp_path / "exported.json"
    download.value.save_as(exported)
    assert json.loads(exported.read_text())["palette"] == "okabe-ito"

    # back to standard: the link no longer names a palette
    page.select_option("#palette", "standard")
    pg.wait_for("!location.hash.includes('palette') && "
                "document.getElementById('palette').value === 'standard'")
    pg.wait_for(f"location.href !== {link!r}")
    assert "palette" not in fragment_payload(pg.js("location.href"))

    # a link naming a palette the page does not have opens in the standard colours
    unknown = with_payload(link, {**fragment_payload(link), "palette": "sepia"})
    third = page.context.new_page()
    third.goto(unknown)
    Playground(third, pg.base_url).wait_frames(1)
    assert third.input_value("#palette") == "standard"
    third.set_input_files("#import", str(exported))
    third.wait_for_function("() => document.getElementById('palette').value === 'okabe-ito'")
    other.close()
    third.close()
