"""The playground page trains, and every control changes the picture (issue 4)."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.helpers import Playground, changed_fraction

SURFACE = "#surface canvas"


@pytest.fixture
def playground(page, server_url, console_errors) -> Playground:
    return Playground(page, server_url)


def test_first_screen_trains_and_play_pause(playground, shots):
    pg = playground.open(frames=2)
    page = pg.page
    # the first screen already trains the default preset
    assert pg.js("playground.state.playing") is True
    assert pg.config["data"]["name"] == "circle"
    pg.pause()
    start_loss = pg.loss()
    start_surface = pg.pixels(SURFACE)
    shots(page, "paused-start")
    page.click("#play")
    pg.wait_for("playground.state.playing")
    pg.wait_for(f"playground.lastFrame.trainLoss < {start_loss} * 0.8", timeout=20_000)
    pg.settle()
    assert pg.loss() < start_loss
    assert float(page.text_content("#train-loss")) < start_loss
    assert changed_fraction(start_surface, pg.pixels(SURFACE)) > 0.02
    # the curves are drawn from every frame's history
    assert pg.js("playground.state.curves.trainLoss.length") >= 3
    shots(page, "trained")


def test_keyboard(playground):
    pg = playground.open()
    page = pg.page
    page.keyboard.press("Space")
    pg.wait_for("!playground.state.playing")
    page.wait_for_timeout(300)
    step = pg.js("playground.state.step")
    page.keyboard.press("ArrowRight")
    pg.wait_for(f"playground.state.step === {step + 1}")
    page.keyboard.press("e")
    pg.wait_for(f"playground.state.step > {step + 1}")
    page.keyboard.press("r")
    pg.wait_for("playground.state.step === 0")
    page.keyboard.press("Space")
    pg.wait_for("playground.state.playing")


def test_add_and_remove_layers_while_training(playground, shots):
    pg = playground.open()
    page = pg.page
    assert len(pg.config["model"]["layers"]) == 2
    page.click('[data-action="add-layer"]')
    pg.wait_for("playground.state.config.model.layers.length === 3")
    pg.wait_for("playground.lastFrame.warps.length === 3")
    pg.settle()
    assert page.locator(".warp-panel").count() == 4  # the input space and one per layer
    assert page.locator(".layer-controls").count() == 3
    step = pg.step
    pg.wait_for(f"playground.state.step > {step}")  # still training
    shots(page, "three-layers")
    page.click('[data-action="add-unit"] >> nth=0')
    pg.wait_for("playground.state.config.model.layers[0].units === 5")
    page.click('[data-action="remove-layer"]')
    page.click('[data-action="remove-layer"]')
    pg.wait_for("playground.state.config.model.layers.length === 1")
    pg.wait_for("playground.lastFrame.warps.length === 1")
    pg.settle()
    assert page.locator(".warp-panel").count() == 2
    assert pg.js("playground.state.playing") is True
    page.click('[data-action="remove-unit"] >> nth=0')
    pg.wait_for("playground.state.config.model.layers[0].units === 4")


def test_change_activation(playground, shots):
    pg = playground.open()
    page = pg.page
    pg.pause()
    before = pg.pixels(".warp-panel[data-layer='1'] canvas")
    network_before = pg.pixels(".network-canvas")
    page.select_option(".activation-select >> nth=0", "relu")
    pg.wait_for("playground.state.config.model.layers[0].activation === 'relu'")
    pg.wait_for("playground.lastFrame.network.layers[0].activation === 'relu'")
    pg.settle()
    assert "relu" in page.text_content(".warp-panel[data-layer='1'] .warp-title")
    assert changed_fraction(before, pg.pixels(".warp-panel[data-layer='1'] canvas")) > 0.01
    assert changed_fraction(network_before, pg.pixels(".network-canvas")) > 0.001
    shots(page, "relu")


def test_add_and_remove_point_by_clicking(playground, shots):
    pg = playground.open()
    page = pg.page
    pg.pause()
    count = pg.point_count()
    page.select_option("#point-class", "0")
    box = page.locator("#surface canvas").last.bounding_box()
    # the middle of the plot: the circle's inner class is 1, so a 0 there is visible
    page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
    # the config changes at once; the server's data (what the surface draws) follows
    pg.wait_for(
        f"playground.state.config.data.points.length === {count + 1} && "
        f"{pg.POINT_COUNT} === {count + 1}"
    )
    assert pg.point_count() == count + 1
    assert pg.config["data"]["name"] == "user"
    points = pg.config["data"]["points"]
    assert len(points) == count + 1
    assert 0 in [p[2] for p in points]
    shots(page, "added-point")
    page.keyboard.down("Shift")
    page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
    page.keyboard.up("Shift")
    pg.wait_for(f"playground.state.config.data.points.length === {count}")
    pg.wait_for(f"{pg.POINT_COUNT} === {count}")


def test_every_preset_loads_and_trains(playground, server_url, shots):
    presets = httpx.get(f"{server_url}/api/presets").json()
    assert len(presets) >= 5
    pg = playground.open()
    page = pg.page
    for preset in presets:
        page.select_option("#preset", preset["name"])
        wanted = preset["config"]
        pg.wait_for(
            f"playground.state.config.data.name === {wanted['data']['name']!r} && "
            f"playground.state.config.model.layers.length === {len(wanted['model']['layers'])} && "
            f"playground.lastFrame.warps.length === {len(wanted['model']['layers'])}"
        )
        step = pg.step
        pg.wait_for(f"playground.state.step > {step}")
        pg.settle()
        assert page.locator(".warp-panel").count() == len(wanted["model"]["layers"]) + 1
        assert page.input_value("#preset") == preset["name"]
        shots(page, f"preset-{preset['name']}")


def test_warp_panels_follow_the_weights(playground, shots):
    pg = playground.open()
    page = pg.page
    pg.pause()
    layers = pg.config["model"]["layers"]
    panels = page.locator(".warp-panel")
    assert panels.count() == len(layers) + 1
    for k in range(1, len(layers) + 1):
        title = page.text_content(f".warp-panel[data-layer='{k}'] .warp-title")
        assert f"layer {k}" in title
    before = [pg.pixels(f".warp-panel[data-layer='{k}'] canvas") for k in range(1, len(layers) + 1)]
    # edit a first-layer weight through the diagram: click a link, type a value
    x, y = pg.link_centre(1, 0, 0)
    page.mouse.move(x, y)
    page.wait_for_selector(".network-tooltip:not([hidden])")
    tooltip = pg.text(".network-tooltip")
    assert "W⁽¹⁾" in tooltip and "∂J/∂W" in tooltip
    page.mouse.click(x, y)
    page.wait_for_selector(".weight-editor:not([hidden])")
    shots(page, "weight-editor")
    page.fill(".weight-editor input", "4.5")
    page.press(".weight-editor input", "Enter")
    pg.wait_for("Math.abs(playground.state.weights.get('W1').value[0] - 4.5) < 1e-4")
    pg.settle()
    for k in range(1, len(layers) + 1):
        after = pg.pixels(f".warp-panel[data-layer='{k}'] canvas")
        assert changed_fraction(before[k - 1], after) > 0.005, f"layer {k}'s panel did not change"
    shots(page, "edited-weight")


def test_warp_stage_switch_and_morph(playground, shots):
    pg = playground.open()
    page = pg.page
    pg.pause()
    panel = ".warp-panel[data-layer='1'] canvas"
    after_nonlinearity = pg.pixels(panel)
    page.check("input[name='stage'][value='pre_activation']")
    pg.page.wait_for_timeout(200)
    assert "a⁽¹⁾" in page.text_content(".warp-panel[data-layer='1'] .warp-title")
    assert changed_fraction(after_nonlinearity, pg.pixels(panel)) > 0.01
    page.check("input[name='stage'][value='activation']")
    page.click("#morph-all")
    page.wait_for_timeout(700)
    midway = pg.pixels(panel)
    shots(page, "morphing")
    pg.wait_for("playground.warps.morph === null", timeout=10_000)
    page.wait_for_timeout(100)
    assert changed_fraction(midway, pg.pixels(panel)) > 0.01


def test_hover_unit_shows_its_map(playground, shots):
    pg = playground.open()
    page = pg.page
    pg.pause()
    before = pg.pixels(SURFACE)
    page.mouse.move(*pg.unit_centre(1, 0))
    page.wait_for_selector(".network-tooltip:not([hidden])")
    text = page.text_content(".network-tooltip")
    assert "h₁⁽¹⁾" in text and "bias b" in text
    page.wait_for_timeout(200)
    assert changed_fraction(before, pg.pixels(SURFACE)) > 0.05
    shots(page, "hover-unit")
    box = page.locator(".network-canvas").bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.wait_for_timeout(200)
    assert changed_fraction(before, pg.pixels(SURFACE)) < 0.01


def test_controls_patch_the_session(playground):
    pg = playground.open()
    page = pg.page
    page.fill("#learning-rate", "0.1")
    page.press("#learning-rate", "Enter")
    pg.wait_for("playground.state.config.training.learning_rate === 0.1")
    page.select_option("#optimizer", "momentum")
    pg.wait_for("playground.state.config.training.optimizer === 'momentum'")
    assert page.is_visible("#momentum-field")
    page.select_option("#penalty", "l2")
    pg.wait_for("playground.state.config.training.l2 > 0")
    # a click, not check(): a state reply may redraw the box before the patch's own reply
    page.click("input[data-feature='x1_squared']")
    pg.wait_for("playground.state.config.model.features.includes('x1_squared')")
    page.select_option("#dataset", "xor")
    pg.wait_for("playground.state.config.data.name === 'xor' && playground.lastFrame")
    page.select_option("#dataset", "spiral_multiclass")
    pg.wait_for("playground.state.network.task === 'multiclass'")
    assert pg.config["model"]["output"]["loss"] in ("softmax", "squared", "absolute")
    pg.wait_for("['probabilities', 'value'].includes(playground.lastFrame.surface.kind)")
    page.select_option("#dataset", "sine_1d")
    pg.wait_for("playground.lastFrame && playground.lastFrame.surface.kind === 'curve'")
    pg.settle()


def test_three_unit_layer_rotates_in_3d(playground, shots):
    pg = playground.open()
    page = pg.page
    page.select_option("#preset", "fig_6_2")
    pg.wait_for("playground.state.config.data.name === 'two_curves'")
    pg.wait_for("playground.lastFrame.warps.length === 1")
    page.click('[data-action="add-unit"] >> nth=0')
    pg.wait_for("playground.lastFrame.warps[0].activation.dims === 3")
    pg.pause()
    pg.settle()
    assert "3-D" in page.text_content(".warp-panel[data-layer='1'] .warp-note")
    panel = ".warp-panel[data-layer='1'] canvas"
    before = pg.pixels(panel)
    box = page.locator(".warp-panel[data-layer='1'] .warp-plot").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 20, steps=5)
    page.mouse.up()
    pg.settle()
    assert changed_fraction(before, pg.pixels(panel)) > 0.01
    shots(page, "rotated-3d")


def test_speed_regenerate_and_explorer(playground, shots):
    pg = playground.open()
    page = pg.page
    slider = page.locator("#speed")
    slider.evaluate("(s) => { s.value = '20'; s.dispatchEvent(new Event('change')); }")
    pg.wait_for("playground.state.speed < 10")
    assert page.text_content("#speed-value").endswith("/s")
    seed = pg.config["data"]["seed"]
    points = "#surface canvas >> nth=1"
    before = pg.pixels(points)
    page.click("#regenerate")
    pg.wait_for(f"playground.state.config.data.seed !== {seed}")
    pg.wait_for("playground.lastFrame.dataVersion === playground.state.dataVersion")
    pg.settle()
    assert changed_fraction(before, pg.pixels(points)) > 0.01
    # the curves in Plotly, loaded on demand
    page.click("#explore-curves")
    pg.wait_for("document.querySelector('.explorer-plot .main-svg')", timeout=30_000)
    assert pg.js("document.querySelector('.explorer-plot').data.length") >= 4
    shots(page, "explorer")
    page.click(".explorer-head button")
    assert not pg.js("document.getElementById('curves-dialog').open")


def test_activation_parameters(playground, shots):
    pg = playground.open()
    page = pg.page
    page.select_option(".activation-select >> nth=0", "leaky_relu")
    pg.wait_for("playground.state.config.model.layers[0].activation === 'leaky_relu'")
    slope = page.locator("input[data-path='model.layers.0.slope']")
    slope.fill("0.2")
    slope.press("Enter")
    pg.wait_for("playground.state.config.model.layers[0].slope === 0.2")
    page.select_option(".activation-select >> nth=1", "maxout")
    pg.wait_for("playground.state.config.model.layers[1].activation === 'maxout'")
    pieces = page.locator("input[data-path='model.layers.1.pieces']")
    pieces.fill("3")
    pieces.press("Enter")
    pg.wait_for("playground.state.config.model.layers[1].pieces === 3")
    pg.wait_for("playground.lastFrame.params.get('W2').shape[1] === 6")  # 2 units × 3 pieces
    pg.settle()
    shots(page, "leaky-and-maxout")
    pieces = page.locator("input[data-path='model.layers.1.pieces']")
    pieces.fill("99")
    pieces.press("Enter")
    pg.wait_for("document.getElementById('network-error').textContent.includes('pieces')")
    assert pg.config["model"]["layers"][1]["pieces"] == 3
