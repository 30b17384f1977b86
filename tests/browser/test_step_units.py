"""The step page's Fig. 6.7 u₁ control and the unit-level graphs of maxout, PReLU and RBF nets,
in Debian's chromium against a real uvicorn."""

from __future__ import annotations

import math
import re

import pytest

from tests.browser.test_step_page import engine_cost_and_grads, fragment, preset


def paths_shown(page) -> tuple[float, dict[str, float], float]:
    """u₁ of the caption, the product of each listed path (by its nodes) and Σ products."""
    caption = page.text_content("#graph-caption")
    u1 = float(caption.rsplit("=", 1)[1])
    rows = page.locator("table.paths tbody tr")
    products = {}
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td")
        products[cells.nth(0).text_content()] = float(cells.nth(1).text_content())
    summary = page.text_content('[data-testid="paths-summary"]')
    total = float(re.search(r"Σ products = ([-0-9.e+]+)", summary).group(1))
    return u1, products, total


def closed_form(u1: float) -> tuple[float, float]:
    """Fig. 6.7's two paths from u₁ to u₃: the direct one e^(u₁+u₂) and the one through
    u₂ = u₁², e^(u₁+u₂)·2u₁."""
    top = math.exp(u1 + u1 * u1)
    return top, top * 2 * u1


DIRECT = "u₁ → u₁+u₂ → u₃"
THROUGH_U2 = "u₁ → u₂ → u₁+u₂ → u₃"


def check_paths(page, u1: float) -> None:
    shown_u1, products, total = paths_shown(page)
    assert shown_u1 == pytest.approx(u1)
    direct, through = closed_form(u1)
    assert set(products) == {DIRECT, THROUGH_U2}
    assert products[DIRECT] == pytest.approx(direct, rel=1e-5)
    assert products[THROUGH_U2] == pytest.approx(through, rel=1e-5)
    assert total == pytest.approx(direct + through, rel=1e-7)


def test_the_fig_6_7_u1_control_changes_both_paths(page, server_url, console_errors, shots):
    page.goto(server_url + "/step" + fragment(preset("fig_6_2")))
    page.wait_for_function("() => window.stepPage && stepPage.graph !== null")
    page.click("#open-fig67")
    page.wait_for_function("() => stepPage.graph.preset === 'fig_6_7'")
    page.wait_for_selector('[data-testid="paths-summary"]')
    check_paths(page, 0.8)

    def shown_after(action, u1: float) -> None:
        before = page.text_content("table.paths")
        action()
        page.wait_for_function(
            "([u1, before]) => stepPage.graph.x[0][0] === u1 && document.querySelector("
            "'table.paths') && document.querySelector('table.paths').textContent !== before",
            arg=[u1, before])
        check_paths(page, u1)

    # the slider, moved with the keyboard as a learner would: three steps of 0.05 down
    def slide() -> None:
        page.focus("#fig67-u1-slider")
        for _ in range(3):
            page.keyboard.press("ArrowLeft")

    shown_after(slide, 0.65)
    assert page.input_value("#fig67-u1") == "0.65"
    # the number field: negative u₁ turns the path through u₂ negative
    shown_after(lambda: (page.fill("#fig67-u1", "-1.5"), page.press("#fig67-u1", "Enter")),
                -1.5)
    assert page.input_value("#fig67-u1-slider") == "-1.5"
    _, products, _ = paths_shown(page)
    assert products[THROUGH_U2] < 0 < products[DIRECT]
    # stepping the graph at the new u₁ back-propagates the same sum
    page.click("#run")
    page.wait_for_function("() => stepPage.state.cursor.phase === 'done'")
    page.click('.graph-svg .node[data-name="u₁"]')
    grad = float(page.text_content('[data-testid="node-grad"]'))
    assert grad == pytest.approx(sum(closed_form(-1.5)), rel=1e-12)
    page.mouse.move(2, 2)
    shots(page, "step-fig-6-7-u1")
    # bad input is named next to the controls and changes nothing
    page.fill("#fig67-u1", "7")
    page.press("#fig67-u1", "Enter")
    assert page.text_content("#source-error") == "u₁: a number from −3 to 3"
    assert page.evaluate("() => stepPage.graph.x[0][0]") == -1.5
    assert console_errors == []


def unit_config(activation: str, units: int = 2, pieces: int = 2) -> dict:
    config = preset("fig_6_2")
    config["model"]["layers"] = [{"units": units, "activation": activation, "slope": 0.2,
                                  "pieces": pieces}]
    return config


@pytest.mark.parametrize("activation", ["maxout", "rbf", "prelu"])
def test_unit_level_graphs_of_maxout_rbf_and_prelu_nets(page, server_url, console_errors,
                                                        shots, activation):
    config = unit_config(activation, units=2, pieces=3)
    page.goto(server_url + "/step" + fragment(config, level="unit"))
    page.wait_for_function("() => window.stepPage && stepPage.graph !== null")
    assert page.evaluate("() => stepPage.graph.level") == "unit"
    assert page.locator("#graph-message").is_hidden()
    page.click("#run")
    page.wait_for_function("() => stepPage.state.cursor.phase === 'done'")
    names = page.evaluate("() => stepPage.graph.nodes.map((n) => n.name)")
    cost, grads = engine_cost_and_grads(config, 0)
    shown = page.evaluate("() => Object.fromEntries([...stepPage.view.nodes.values()]"
                          ".map((n) => [n.name, n.grad]))")
    if activation == "maxout":
        # three pieces per unit; the winner's arc drawn bold, the two others faded
        assert {"a₁,₁.₁", "a₁,₁.₂", "a₁,₁.₃", "a₁,₂.₃"} <= set(names)
        assert page.locator(".graph-svg .edge.winner").count() == 2
        assert page.locator(".graph-svg .edge.loser").count() == 4
        assert shown["W₁:₂,₂.₃"] == pytest.approx(grads["W1"][1, 5], abs=1e-12)
        assert shown["b₁,₁.₁"] == pytest.approx(grads["b1"][0], abs=1e-12)
    elif activation == "rbf":
        assert {"c₁:₁,₁", "c₁:₂,₂", "σ₁,₁", "σ₁,₂", "b₁,₂"} <= set(names)
        assert shown["c₁:₂,₁"] == pytest.approx(grads["W1"][1, 0], abs=1e-12)
        assert shown["σ₁,₂"] == pytest.approx(grads["σ1"][1], abs=1e-12)
        for name, words in (("σ₁,₂", "width σ₁,₂"), ("c₁:₂,₁", "template coordinate"),
                            ("h₁,₁", "radial basis function")):
            page.hover(f'.graph-svg .node[data-name="{name}"]')
            assert words in page.text_content("#tooltip")
    else:
        assert {"α₁,₁", "α₁,₂"} <= set(names)
        assert shown["α₁,₂"] == pytest.approx(grads["α1"][1], abs=1e-12)
        page.hover('.graph-svg .node[data-name="α₁,₂"]')
        assert "slope α₁,₂" in page.text_content("#tooltip")
    assert shown["J"] == 1.0
    # the maxout unit's forward step names the winning piece
    if activation == "maxout":
        page.click("#reset")
        page.wait_for_function("() => stepPage.state.cursor.position === 0")
        for _ in range(12):  # 6 pieces, then the two maxima (after the features' nodes)
            before = page.evaluate("() => stepPage.state.cursor.position")
            page.keyboard.press("ArrowRight")
            page.wait_for_function(f"() => stepPage.state.cursor.position !== {before}")
            if "wins" in page.text_content('[data-testid="step-detail"]'):
                break
        assert re.search(r"piece [123] \(a₁,₁\.[₁₂₃]\) wins",
                         page.text_content('[data-testid="step-detail"]'))
        page.click("#run")
        page.wait_for_function("() => stepPage.state.cursor.phase === 'done'")
    page.mouse.move(2, 2)
    shots(page, f"step-unit-{activation}")
    assert console_errors == []
