"""The step-through page (/step) in Debian's chromium against a real uvicorn: a whole forward
and backward pass of the Fig. 6.2 net, the gradient the page shows against the engine's,
paths, the gradient check, the update, the playground's link, the layer view and bad input."""

from __future__ import annotations

import base64
import copy
import json
import math

import numpy as np
import pytest

from app.presets import PRESETS
from engine import grad
from engine.spec import Config
from engine.training import Trainer
from tests.browser.helpers import Playground


def preset(name: str) -> dict:
    """A copy of a preset's config (tests change it; PRESETS is shared)."""
    return copy.deepcopy(next(p for p in PRESETS if p["name"] == name)["config"])


def fragment(config: dict, **extra) -> str:
    text = json.dumps({"config": config}).encode()
    tail = "".join(f"&{key}={value}" for key, value in extra.items())
    return "#c=" + base64.urlsafe_b64encode(text).decode().rstrip("=") + tail


class StepPage:
    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url

    def open(self, suffix: str) -> StepPage:
        self.page.goto(self.base_url + "/step" + suffix)
        self.wait_for("window.stepPage && stepPage.graph !== null")
        return self

    def wait_for(self, expression: str, timeout: float = 15_000) -> None:
        self.page.wait_for_function(f"() => {expression}", timeout=timeout)

    def js(self, expression: str):
        return self.page.evaluate(f"() => {expression}")

    @property
    def position(self) -> int:
        return self.js("stepPage.state.cursor.position")

    def press(self, key: str) -> None:
        before = self.position
        self.page.keyboard.press(key)
        self.wait_for(f"stepPage.state.cursor.position !== {before}")

    def click(self, selector: str) -> None:
        before = self.position
        self.page.click(selector)
        self.wait_for(f"stepPage.state.cursor.position !== {before}")

    def calm(self) -> None:
        """Move the mouse off the graph so no tooltip covers a screenshot."""
        self.page.mouse.move(2, 2)


@pytest.fixture
def step_page(page, server_url, console_errors) -> StepPage:
    return StepPage(page, server_url)


def engine_cost_and_grads(config: dict, index: int):
    """J and ∂J/∂θ of the preset's initial network on one training example, by the engine."""
    trainer = Trainer(Config.from_dict(config))
    model, data, training = trainer.model, trainer.dataset, trainer.config.training
    cost = model.cost(data.x_train[[index]], data.y_train[[index]], training.l2, training.l1)
    grads = grad(cost, model.parameters())
    return cost.item(), {p.name: g.value for p, g in zip(model.parameters(), grads)}


def test_a_whole_forward_and_backward_pass_of_the_fig_6_2_net(step_page, shots):
    config = preset("fig_6_2")  # 2 inputs, 2 tanh units, sigmoid output
    sp = step_page.open(fragment(config, e=4))
    page = sp.page
    graph = sp.js("stepPage.graph")
    assert graph["level"] == "unit" and graph["example"] == 4
    names = {node["name"] for node in graph["nodes"]}
    assert {"x₁", "x₂", "W₁:₁,₁", "b₁,₂", "a₁,₁", "h₁,₂", "w₁", "b", "z", "y", "L", "Ω",
            "J"} <= names
    assert page.locator(".graph-svg .node").count() == len(graph["nodes"])
    assert page.is_disabled("#backward") and page.is_disabled("#apply")

    # the forward pass, one node per press of →
    forward = graph["forward"]
    for index, node_id in enumerate(forward):
        sp.press("ArrowRight")
        assert sp.js("stepPage.state.event.node") == node_id
        shown = page.text_content('[data-testid="step-node"]')
        assert shown == next(n["name"] for n in graph["nodes"] if n["id"] == node_id)
        assert " = " in page.text_content('[data-testid="formula"]')
        if index == 1:
            sp.calm()
            shots(page, "step-forward-h")
    formula = page.text_content('[data-testid="formula"]')
    assert formula.startswith("J = L + Ω")
    cost, expected = engine_cost_and_grads(config, 4)
    cost_box = f'.graph-svg .node[data-id="{graph["cost"]}"] .node-value'
    value = float(page.text_content(cost_box))
    assert value == pytest.approx(cost, rel=1e-3)  # the box shows 4 significant digits
    assert page.is_disabled("#forward") and not page.is_disabled("#backward")
    sp.calm()
    shots(page, "step-forward-done")

    # the backward pass: the button for the first steps, then →
    backward = graph["backward"]
    for index, node_id in enumerate(backward):
        if index < 3:
            sp.click("#backward")
        else:
            sp.press("ArrowRight")
        assert sp.js("stepPage.state.event.node") == node_id
        if index == 4:
            # a step of Algorithm 6.4: the terms table sums to the gradient
            assert page.locator("table.terms tbody tr").count() >= 1
            sp.calm()
            shots(page, "step-backward-middle")
    assert "both passes done" in page.text_content('[data-testid="progress"]')
    assert not page.is_disabled("#apply")

    # the gradient of one weight, read from the page, against the engine's
    page.click('.graph-svg .node[data-name="W₁:₁,₁"]')
    shown = float(page.text_content('[data-testid="node-grad"]'))
    assert shown == pytest.approx(expected["W1"][0, 0], rel=1e-12, abs=1e-15)
    box = page.text_content('.graph-svg .node[data-name="W₁:₁,₁"] .node-grad')
    assert float(box.split(":")[1]) == pytest.approx(expected["W1"][0, 0], rel=2e-3)
    assert "W1[0, 0]" in page.text_content('[data-testid="node-detail"]')
    for node in graph["nodes"]:  # every parameter node shows the engine's gradient
        source = node["source"]
        if source:
            state = sp.js(f"stepPage.view.nodes.get({node['id']}).grad")
            want = expected[source["parameter"]][tuple(source["index"])]
            assert state == pytest.approx(want, rel=1e-12, abs=1e-15), node["name"]
    sp.calm()
    shots(page, "step-done")

    # ← takes one step back: the gradient of the last node is forgotten
    last = backward[-1]
    sp.press("ArrowLeft")
    assert sp.js(f"stepPage.view.nodes.get({last}).grad") is None
    assert page.text_content(f'.graph-svg .node[data-id="{last}"] .node-grad') == ""


def test_paths_gradient_check_and_the_update(step_page, shots):
    config = preset("fig_6_2")
    config["training"]["l2"] = 0.01
    sp = step_page.open(fragment(config, e=9))
    page = sp.page
    sp.press("End")
    page.select_option("#paths-parameter", "W₁:₁,₁")
    page.click("#paths")
    page.wait_for_selector('[data-testid="paths-summary"]')
    summary = page.text_content('[data-testid="paths-summary"]')
    assert summary.startswith("2 paths from W₁:₁,₁ to J") and "✓ equal" in summary
    assert page.locator("table.paths tbody tr").count() == 2
    assert page.locator(".graph-svg .node.on-path").count() >= 3
    assert page.locator("table.growth-table tbody tr").count() == 6

    page.select_option("#check-parameter", "")
    page.click("#check")
    page.wait_for_selector('[data-testid="check-summary"]')
    check = page.text_content('[data-testid="check-summary"]')
    assert check.startswith("9 of 9 entries") and "0 flagged above 1e-6" in check
    assert page.locator("table.check tr.flagged").count() == 0
    sp.calm()
    shots(page, "step-paths-check")

    page.fill("#learning-rate", "0.5")
    page.click("#apply")
    page.wait_for_selector('[data-testid="applied-summary"]')
    text = page.text_content('[data-testid="applied-summary"]')
    before, after = (float(v) for v in text.split("cost J ")[1].split(" · ")[0].split(" → "))
    cost, _ = engine_cost_and_grads(config, 9)
    assert before == pytest.approx(cost, rel=1e-5) and after < before
    # the graph is rebuilt at the new weights, at the start of the forward pass
    sp.wait_for("stepPage.state.cursor.position === 0")
    assert page.is_disabled("#apply")
    shots(page, "step-applied")


def test_the_playgrounds_link_carries_its_network_and_weights(page, server_url, console_errors,
                                                              shots):
    playground = Playground(page, server_url).open("/" + fragment(preset("fig_6_2")), frames=2)
    playground.wait_frames(3)  # it trains: the weights are no longer the initial ones
    playground.pause()
    page.click("#step-link")
    page.wait_for_url(lambda url: "/step#c=" in url)
    sp = StepPage(page, server_url)
    sp.wait_for("window.stepPage && stepPage.graph !== null")
    stored = sp.js("JSON.parse(sessionStorage.getItem('backprop-lab:step-through'))")
    assert stored["config"]["data"]["name"] == "two_curves"
    initial = Trainer(Config.from_dict(stored["config"])).model.state_dict()
    assert stored["weights"] != initial
    for node in sp.js("stepPage.graph.nodes"):
        source = node["source"]
        if source:
            want = np.asarray(stored["weights"][source["parameter"]])[tuple(source["index"])]
            assert node["value"] == want  # the exact weights, not float32 copies
    assert page.get_attribute("#playground-link", "href").startswith("/#c=")
    shots(page, "step-from-playground")


def test_a_large_network_shows_the_layer_view_with_algorithm_6_2(step_page, shots):
    sp = step_page.open(fragment(preset("deep_spiral"), level="unit"))
    page = sp.page
    assert sp.js("stepPage.graph.level") == "layer"
    message = page.text_content("#graph-message")
    assert "51 scalar units" in message and "at most 40" in message
    assert page.is_visible("#graph-message")
    sp.click("#run-forward")
    for _ in range(9):
        sp.press("ArrowRight")
    algorithm = page.text_content(".algorithm")
    assert algorithm.startswith("Algorithm 6.2")
    assert page.is_disabled("#paths")
    sp.calm()
    shots(page, "step-layer-view")
    page.fill("#batch-size", "8")
    page.press("#batch-size", "Enter")
    sp.wait_for("stepPage.graph.batch && stepPage.graph.batch.length === 8")
    assert "minibatch of 8" in page.text_content("#graph-caption")


def test_the_figure_6_7_example(step_page, shots):
    sp = step_page.open(fragment(preset("fig_6_2")))
    page = sp.page
    page.click("#open-fig67")
    sp.wait_for("stepPage.graph.preset === 'fig_6_7'")
    assert page.locator(".graph-svg .node").count() == 4
    sp.click("#run")
    u1 = 0.8
    want = math.exp(u1 + u1 * u1) * (1 + 2 * u1)
    page.click('.graph-svg .node[data-name="u₁"]')
    assert float(page.text_content('[data-testid="node-grad"]')) == pytest.approx(want, rel=1e-12)
    page.click("#paths")
    page.wait_for_selector('[data-testid="paths-summary"]')
    assert page.text_content('[data-testid="paths-summary"]').startswith("2 paths from u₁")
    assert page.is_disabled("#apply")
    sp.calm()
    shots(page, "step-fig-6-7")


def test_bad_input_is_explained_next_to_the_control(step_page, shots):
    sp = step_page.open(fragment(preset("fig_6_2")))
    page = sp.page
    page.fill("#example", "abc")
    page.press("#example", "Enter")
    assert "example" in page.text_content("#source-error")
    page.fill("#example", "5000")
    page.press("#example", "Enter")
    page.wait_for_function(
        "() => document.getElementById('source-error').textContent.includes('0 to 99')"
    )
    assert page.text_content("#source-error").startswith("example:")
    page.fill("#learning-rate", "-3")
    sp.click("#run")
    page.click("#apply")
    assert "learning rate" in page.text_content("#apply-error")
    # the graph still steps
    sp.press("ArrowLeft")
    shots(page, "step-bad-input")


def test_the_update_travels_back_to_the_playground(step_page, server_url, shots):
    config = preset("fig_6_2")
    sp = step_page.open(fragment(config, e=3))
    page = sp.page
    sp.press("End")
    page.fill("#learning-rate", "0.5")
    page.click("#apply")
    page.wait_for_selector('[data-testid="applied-summary"]')
    sp.wait_for("stepPage.state.cursor.position === 0")
    # the page asks the server for the updated weights (an export) after the update
    initial = Trainer(Config.from_dict(config)).model.state_dict()
    before = json.dumps(initial["W1"], separators=(",", ":"))
    sp.wait_for(
        f"stepPage.state.weights && JSON.stringify(stepPage.state.weights.W1) !== '{before}'"
    )
    updated = sp.js("stepPage.state.weights")
    page.click("#playground-link")
    page.wait_for_url(lambda url: url.startswith(server_url + "/#c="))
    playground = Playground(page, server_url)
    playground.wait_for("playground.state.weights && playground.state.weights.size > 0")
    playground.settle()
    assert not playground.js("playground.state.playing")  # it waits with the weights it got
    shown = playground.weights()
    for name, values in updated.items():
        # frames carry float32 copies of the session's (float64) weights
        assert shown[name] == pytest.approx(np.ravel(values).tolist(), rel=1e-6, abs=1e-7), name
    shots(page, "playground-after-step-update")
