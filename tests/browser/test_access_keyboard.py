"""Access (issue 12): the playground and the step-through page work from the keyboard alone,
and every control the Tab key reaches shows a focus ring."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.helpers import Playground
from tests.browser.test_access import open_drawn, page_urls

# What has the focus, and whether it shows a ring: its own outline, or for a control hidden
# inside its label (the import button's file input) the label's, or for a node of the step
# page's graph (an SVG group, which draws no outline) its box's stroke.
FOCUS = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const ringed = (target) => {
    const style = getComputedStyle(target);
    return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2
      && style.outlineColor !== "rgba(0, 0, 0, 0)";
  };
  let ring = ringed(element);
  if (!ring && element.classList.contains("visually-hidden") && element.parentElement) {
    ring = ringed(element.parentElement);
  }
  if (!ring && element.matches(".graph-svg .node")) {
    ring = parseFloat(getComputedStyle(element.querySelector("rect")).strokeWidth) >= 3;
  }
  const name = element.id ? `#${element.id}`
    : element.dataset.action ? `[data-action=${element.dataset.action}]`
    : element.getAttribute("aria-label") || element.getAttribute("name") || element.tagName;
  return { name, ring, visible: element.matches(":focus-visible") };
}"""


def tab_until(page: Page, selector: str, limit: int = 120, key: str = "Tab") -> list[dict]:
    """Press Tab until the element matching `selector` has the focus; returns what had the
    focus on the way (each with its ring). Fails if the element is never reached."""
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        focus = page.evaluate(FOCUS)
        if focus:
            seen.append(focus)
        if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
            return seen
    raise AssertionError(f"{selector} was not reached in {limit} presses of {key}: {seen}")


def assert_rings(seen: list[dict]) -> None:
    missing = [focus["name"] for focus in seen if not (focus["ring"] and focus["visible"])]
    assert not missing, f"focused without a visible ring: {missing}"


@pytest.fixture
def playground(page, server_url, console_errors) -> Playground:
    return Playground(page, server_url)


def test_playground_by_keyboard(playground):
    pg = playground.open()
    page = pg.page
    # every control is in the tab order with a ring: from the top to the last warp button
    seen = tab_until(page, ".warp-panel .warp-morph")
    assert_rings(seen)
    reached = {focus["name"] for focus in seen}
    for name in ("#preset", "#reset", "#play", "#step", "#epoch", "#speed", "#share",
                 "#export", "#import", "#dataset", "#learning-rate", "#optimizer",
                 "[data-action=add-layer]", "[data-action=add-unit]",
                 "[data-action=remove-unit]", "activation of layer 1", "#palette",
                 "#explore-curves", "#morph-all"):
        assert name in reached, f"{name} is not reached by Tab: {sorted(reached)}"

    # play / pause: Enter and Space on the focused button, each toggling once
    page.focus("body")
    page.evaluate("() => document.activeElement.blur()")
    tab_until(page, "#play")
    playing = pg.js("playground.state.playing")
    page.keyboard.press("Enter")
    pg.wait_for(f"playground.state.playing === {str(not playing).lower()}")
    page.keyboard.press("Space")
    pg.wait_for(f"playground.state.playing === {str(playing).lower()}")
    page.wait_for_timeout(300)  # a second toggle would have landed by now
    assert pg.js("playground.state.playing") is playing

    # the speed slider: arrows move it and the session takes the new speed
    tab_until(page, "#speed")
    speed = pg.js("playground.state.speed")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    pg.wait_for(f"playground.state.speed > {speed}")

    # a select in the diagram: layer 1's activation
    tab_until(page, '.activation-select[data-layer="1"]')
    page.keyboard.press("ArrowDown")
    pg.wait_for("playground.state.config.model.layers[0].activation !== 'tanh'")
    # the rebuilt controls keep the focus where it was
    pg.wait_for("document.activeElement.matches('.activation-select[data-layer=\"1\"]')")

    # the diagram's unit buttons: + then − on layer 1, the focus staying on each
    tab_until(page, '[data-action="add-unit"]', key="Shift+Tab")
    units = pg.config["model"]["layers"][0]["units"]
    page.keyboard.press("Enter")
    pg.wait_for(f"playground.state.config.model.layers[0].units === {units + 1}")
    pg.wait_for("document.activeElement.matches('[data-action=\"add-unit\"]')")
    page.keyboard.press("Enter")
    pg.wait_for(f"playground.state.config.model.layers[0].units === {units + 2}")
    tab_until(page, '[data-action="remove-unit"]', key="Shift+Tab")
    page.keyboard.press("Space")
    pg.wait_for(f"playground.state.config.model.layers[0].units === {units + 1}")

    # the palette, from the keyboard
    tab_until(page, "#palette")
    page.keyboard.press("ArrowDown")
    pg.wait_for("playground.state.options.palette === 'okabe-ito'")


@pytest.fixture
def step_page(page, server_url, console_errors) -> Page:
    page.goto(server_url + "/step")
    page.wait_for_function("() => window.stepPage && stepPage.graph !== null")
    return page


def test_step_page_by_keyboard(step_page):
    page = step_page
    position = "stepPage.state.cursor.position"
    seen = tab_until(page, "#forward")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => {position} === 1")
    # the spoken summary follows the step
    status = page.text_content("#graph-status")
    assert status.startswith("Forward pass: ") and "forward 1/" in status, status
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => {position} === 2")
    seen += tab_until(page, "#run")
    page.keyboard.press("Enter")
    page.wait_for_function("() => stepPage.state.cursor.phase === 'done'")
    assert page.text_content("#graph-status").startswith("Backward pass: ")
    # into the graph: one node in the tab order, ↓ to the next, Enter selects it
    seen += tab_until(page, "#graph .node")
    first = page.evaluate("() => document.activeElement.dataset.id")
    page.keyboard.press("ArrowDown")
    second = page.evaluate("() => document.activeElement.dataset.id")
    assert second != first
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => String(stepPage.state.selected) === {second!r}")
    name = page.evaluate("() => document.activeElement.dataset.name")
    assert name in page.text_content("#node-detail")
    label = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert label.startswith(f"{name}: ") and "value" in label, label
    # Tab leaves the graph in one press (the other nodes are not in the tab order)
    page.keyboard.press("Tab")
    assert not page.evaluate("() => document.activeElement.matches('#graph .node')")
    # a select: the level
    seen += tab_until(page, "#level", key="Shift+Tab")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => stepPage.state.source.level !== 'auto'")
    assert_rings(seen)


def test_diagram_and_surface_by_keyboard(playground):
    pg = playground.open()
    page = pg.page
    pg.pause()
    spoken = ".network [role=status]"
    # the diagram: the arrows choose a unit, W its weights, Enter edits the chosen one
    assert_rings(tab_until(page, ".network-canvas"))
    assert page.text_content(spoken).startswith("hidden unit h₁⁽¹⁾"), page.text_content(spoken)
    page.keyboard.press("ArrowDown")
    assert page.text_content(spoken).startswith("hidden unit h₂⁽¹⁾"), page.text_content(spoken)
    page.keyboard.press("w")
    assert page.text_content(spoken).startswith("weight W⁽¹⁾1,2: x₁ → a₂⁽¹⁾")
    page.keyboard.press("ArrowDown")
    assert page.text_content(spoken).startswith("weight W⁽¹⁾2,2: x₂ → a₂⁽¹⁾")
    page.keyboard.press("Enter")
    page.wait_for_selector(".weight-editor:not([hidden])")
    assert page.evaluate("() => document.activeElement.name") == "value"
    page.keyboard.type("1.5")
    page.keyboard.press("Enter")
    width = pg.config["model"]["layers"][0]["units"]
    pg.wait_for(f"playground.state.weights.get('W1').value[{width} + 1] === 1.5")
    assert page.evaluate("() => document.activeElement.matches('.network-canvas')")
    # Escape lets go; the page's own keys work again outside the diagram
    page.keyboard.press("Escape")
    assert page.is_hidden(".network-tooltip")

    # the surface: a cross moved by the arrows, Enter adds a point there, Delete removes it
    count = pg.point_count()
    assert_rings(tab_until(page, "#surface"))
    pg.wait_for("document.getElementById('canvas-status').textContent.startsWith('x = (')")
    start = pg.js("playground.surface.cursor")  # the middle of the plane
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    x1, x2 = pg.js("playground.surface.cursor")
    width = pg.js("playground.surface.ranges()[0][1] - playground.surface.ranges()[0][0]")
    assert x1 == pytest.approx(start[0] - 0.2 * width) and x2 > start[1]
    status = page.text_content("#canvas-status")
    assert status.startswith(f"x = ({x1:.2f}, {x2:.2f})  p(y = 1 | x) = "), status
    page.keyboard.press("Enter")
    pg.wait_for(f"{Playground.POINT_COUNT} === {count + 1}")
    assert pg.js("playground.state.playing") is False  # Enter here is the surface's
    page.keyboard.press("Delete")
    pg.wait_for(f"{Playground.POINT_COUNT} === {count}")

    # a 3-unit layer's warp panel turns by the arrows, as by a drag
    units = pg.config["model"]["layers"][0]["units"]
    for _ in range(units - 3):
        page.click('[data-action="remove-unit"] >> nth=0')
    pg.wait_for("playground.state.config.model.layers[0].units === 3")
    page.locator(".warp-section").scroll_into_view_if_needed()
    pg.wait_for("playground.warps.panels[1] && playground.warps.panels[1].rotatable === true")
    page.focus("#morph-all")
    assert_rings(tab_until(page, ".warp-plot[tabindex='0']"))
    yaw, pitch = pg.js("[playground.warps.panels[1].rotation.yaw,"
                       " playground.warps.panels[1].rotation.pitch]")
    step = pg.step
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    turned = pg.js("[playground.warps.panels[1].rotation.yaw,"
                   " playground.warps.panels[1].rotation.pitch]")
    assert turned == pytest.approx([yaw + 0.3, pitch - 0.15])
    page.wait_for_timeout(300)  # a step the page sent would have come back by now
    assert pg.step == step  # → turned the panel; it did not take a training step


@pytest.mark.parametrize("url", page_urls())
def test_every_page_shows_where_the_focus_is(page, server_url, url):
    """The first 60 stops of the Tab key on each page all show a ring."""
    page.set_viewport_size({"width": 1280, "height": 900})
    open_drawn(page, server_url, url)
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS)
        if focus:
            seen.append(focus)
    assert len(seen) >= 3, seen
    assert_rings(seen)
