"""The /labs index (the chapter map) and the playground's /?preset=NAME links."""

from __future__ import annotations

from tests.browser.helpers import Playground
from tests.browser.lab_driver import serious_violations


def test_the_index_maps_the_chapter_and_links_every_lab(page, server_url, console_errors, shots):
    page.goto(f"{server_url}/")
    page.click("#labs-link")
    page.wait_for_url(f"{server_url}/labs")
    rows = page.locator(".chapter-map tbody tr")
    assert rows.count() >= 12
    assert rows.first.inner_text().startswith("6.1")
    for name in ("shallow-regression", "conditional-statistics", "saturating-losses",
                 "output-units"):
        assert page.locator(f'.lab-cards a[href="/labs/{name}"]').count() == 1
    shots(page, "labs-index")
    assert serious_violations(page) == []


def test_a_preset_link_opens_the_playground_on_it(page, server_url, console_errors):
    page.goto(f"{server_url}/labs")
    page.click('a[href="/?preset=example_6_1_1"] >> nth=0')
    playground = Playground(page, server_url)
    playground.wait_frames(1)
    config = playground.config
    assert config["data"]["name"] == "sine_1d"
    assert config["model"]["layers"][0]["activation"] == "sigmoid"
    assert config["training"]["l2"] > 0
    assert page.input_value("#preset") == "example_6_1_1"


def test_an_unknown_preset_says_so_and_opens_the_default(page, server_url):
    page.goto(f"{server_url}/?preset=nonesuch")
    playground = Playground(page, server_url)
    playground.wait_frames(1)
    notice = page.locator("#notice")
    notice.wait_for(state="visible")
    assert "nonesuch" in notice.inner_text()
    assert playground.config["data"]["name"] == "circle"
