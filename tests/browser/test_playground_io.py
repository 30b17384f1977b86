"""Shared links, export and import, bad input and reconnection on the playground page."""

from __future__ import annotations

import base64
import json

import pytest

from tests.browser.helpers import Playground


@pytest.fixture
def playground(page, server_url, console_errors) -> Playground:
    return Playground(page, server_url)


def _fragment(payload: dict) -> str:
    text = json.dumps(payload).encode()
    return "#c=" + base64.urlsafe_b64encode(text).decode().rstrip("=")


def test_shared_url_restores_the_configuration(playground, context, server_url, shots):
    pg = playground.open()
    page = pg.page
    page.select_option("#dataset", "xor")
    pg.wait_for("playground.state.config.data.name === 'xor'")
    page.fill("#learning-rate", "0.1")
    page.press("#learning-rate", "Enter")
    pg.wait_for("playground.state.config.training.learning_rate === 0.1")
    page.click('[data-action="add-layer"]')
    pg.wait_for("playground.state.config.model.layers.length === 3")
    page.select_option(".activation-select >> nth=2", "sigmoid")
    pg.wait_for("playground.state.config.model.layers[2].activation === 'sigmoid'")
    page.check("input[data-feature='x1_x2']")
    pg.wait_for("playground.state.config.model.features.includes('x1_x2')")
    config = pg.config
    pg.wait_for(
        "location.hash.startsWith('#c=') && location.hash === playground.state.urlFragment()"
    )
    url = page.url
    fresh = Playground(context.new_page(), server_url)
    fresh.page.goto(url)
    fresh.wait_frames(2)
    assert fresh.config == config
    assert fresh.js("playground.state.playing") is True
    assert fresh.page.input_value("#learning-rate") == "0.1"
    assert fresh.page.locator(".warp-panel").count() == 4
    shots(fresh.page, "restored-from-link")
    fresh.page.close()


def test_broken_links_show_a_message_and_train_the_default(playground, shots):
    pg = playground.open("/#c=this-is-not-a-configuration!!!")
    assert pg.page.is_visible("#notice")
    assert "could not be read" in pg.page.text_content("#notice")
    assert pg.config["data"]["name"] == "circle"
    shots(pg.page, "broken-link")
    # well-formed, but a value the server refuses: the field and its limit are named
    config = pg.config
    config["training"]["learning_rate"] = 50
    pg.page.goto("about:blank")  # a new document: a fragment change alone would not reload
    pg.open("/" + _fragment({"config": config}))
    pg.wait_for("playground.state.config.training.learning_rate === 0.03")
    notice = pg.page.text_content("#notice")
    assert "rejected" in notice and "learning_rate" in notice
    assert pg.js("playground.state.playing") is True


def test_export_then_import_restores_the_weights(playground, tmp_path, shots):
    pg = playground.open()
    page = pg.page
    pg.wait_for("playground.state.step > 200")
    pg.pause()
    with page.expect_download() as download_info:
        page.click("#export")
    path = tmp_path / "exported.json"
    download_info.value.save_as(path)
    exported = json.loads(path.read_text())
    assert exported["config"] == pg.config
    assert {"W1", "b1", "W2", "b2", "Wout", "bout"} <= set(exported["weights"])
    trained = pg.weights()
    page.keyboard.press("r")  # new initial weights
    pg.wait_for("playground.state.step === 0")
    pg.settle()
    assert pg.weights()["W1"] != pytest.approx(trained["W1"], abs=1e-6)
    page.set_input_files("#import", str(path))
    first = exported["weights"]["W1"][0][0]
    pg.wait_for(f"Math.abs(playground.state.weights.get('W1').value[0] - {first}) < 1e-6")
    pg.settle()
    restored = pg.weights()
    for name, values in trained.items():
        assert restored[name] == pytest.approx(values, abs=1e-6), name
    assert pg.config == exported["config"]
    shots(page, "imported")


def test_broken_imports_are_refused_with_a_message(playground):
    pg = playground.open()
    page = pg.page
    step = pg.step
    pg.import_bytes(b"{not json")
    pg.wait_for("document.getElementById('io-error').textContent.includes('not JSON')")
    pg.import_bytes(b'{"weights": {}}')
    pg.wait_for("document.getElementById('io-error').textContent.includes('config')")
    wrong = {"config": pg.config, "weights": {"W1": [[1.0]], "b1": [0.0]}}
    pg.import_bytes(json.dumps(wrong).encode())
    pg.wait_for("document.getElementById('io-error').textContent.includes('Import rejected')")
    assert "weights" in page.text_content("#io-error")
    # the session kept training
    pg.wait_for(f"playground.state.step > {step}")
    assert pg.js("playground.state.playing") is True


def test_impossible_values_are_explained_next_to_the_control(playground, shots):
    pg = playground.open()
    page = pg.page
    page.fill("#learning-rate", "fast")
    page.press("#learning-rate", "Enter")
    message = page.locator("[data-error-for='training.learning_rate']")
    assert "not a number" in message.text_content()
    assert page.get_attribute("#learning-rate", "aria-invalid") == "true"
    page.fill("#learning-rate", "100")
    page.press("#learning-rate", "Enter")
    pg.wait_for(
        "playground.controls.errorSlot('training.learning_rate').textContent.includes('10')"
    )
    assert "learning_rate" in message.text_content()
    page.fill("#batch-size", "0")
    page.press("#batch-size", "Enter")
    pg.wait_for("playground.controls.errorSlot('training.batch_size').textContent.length > 0")
    shots(page, "bad-input")
    # the session kept its values and kept training
    assert pg.config["training"]["learning_rate"] == 0.03
    assert pg.config["training"]["batch_size"] == 10
    step = pg.step
    pg.wait_for(f"playground.state.step > {step}")
    # a good value clears the message
    page.fill("#learning-rate", "0.01")
    page.press("#learning-rate", "Enter")
    pg.wait_for("playground.state.config.training.learning_rate === 0.01")
    assert message.text_content() == ""
    # a weight typed into the diagram's editor is checked too
    page.mouse.click(*pg.unit_centre(1, 0))
    page.fill(".weight-editor input", "1e99")
    page.press(".weight-editor input", "Enter")
    assert "between" in page.text_content(".weight-editor .field-error")
    page.fill(".weight-editor input", "abc")
    page.press(".weight-editor input", "Enter")
    assert "not a number" in page.text_content(".weight-editor .field-error")
    page.press(".weight-editor input", "Escape")


def test_reconnect_restores_configuration_and_weights(playground, shots):
    pg = playground.open()
    page = pg.page
    page.click('[data-action="add-layer"]')
    pg.wait_for("playground.state.config.model.layers.length === 3")
    pg.wait_for("playground.state.step > 100")
    pg.pause()
    config = pg.config
    weights = pg.weights()
    session = pg.js("playground.state.session")
    pg.js("playground.socket.drop()")
    pg.wait_for("!document.getElementById('banner').hidden")
    assert "reconnecting" in page.text_content("#banner")
    shots(page, "reconnecting")
    pg.wait_for(f"playground.state.session !== {session!r}")
    pg.wait_for("document.getElementById('banner').hidden")
    pg.wait_for(
        "playground.state.weights.has('W3') && playground.lastFrame.network.layers.length === 3"
    )
    pg.settle()
    assert pg.config == config
    assert pg.js("playground.state.playing") is False
    restored = pg.weights()
    for name, values in weights.items():
        assert restored[name] == pytest.approx(values, abs=1e-6), name
    pg.play()
    step = pg.step
    pg.wait_for(f"playground.state.step > {step}")


def test_divergence_pauses_with_an_explanation(playground, shots):
    pg = playground.open()
    page = pg.page
    page.select_option("#preset", "sine")
    pg.wait_for("playground.state.config.data.name === 'sine_1d'")
    page.select_option("#optimizer", "sgd")
    pg.wait_for("playground.state.config.training.optimizer === 'sgd'")
    page.fill("#learning-rate", "10")
    page.press("#learning-rate", "Enter")
    notice = "document.getElementById('notice')"
    pg.wait_for(f"!{notice}.hidden && {notice}.textContent.includes('diverged')", timeout=30_000)
    pg.wait_for("!playground.state.playing")
    assert page.text_content("#play") == "▶"
    assert "learning rate" in page.text_content("#notice")
    shots(page, "diverged")
    # a smaller learning rate and new weights train again
    page.fill("#learning-rate", "0.01")
    page.press("#learning-rate", "Enter")
    pg.wait_for("playground.state.config.training.learning_rate === 0.01")
    page.click("#reset")
    pg.wait_for("playground.state.step === 0")
    page.click("#play")
    pg.wait_for("playground.state.playing && playground.state.step > 50")
    assert pg.js("playground.state.playing") is True
