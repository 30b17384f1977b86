"""The labs' pages: the /labs index with the chapter map, each lab's page, the 404 page."""

from __future__ import annotations

import re
from pathlib import Path

from app.labs import LABS, chapter_map

CHAPTER = "shared/reference/chapter6-feedforward-deep-networks.md"


def chapter_text() -> str:
    """The chapter the app teaches: in the checkout's shared/ or the workplace's."""
    from tests.conftest import ROOT

    for folder in (ROOT, ROOT.parent, Path("/work")):
        if (folder / CHAPTER).exists():
            return (folder / CHAPTER).read_text()
    raise AssertionError(f"the chapter ({CHAPTER}) is not beside this checkout")


def built(client) -> list:
    """The registered labs whose page answers (labs 5-7 come from another branch)."""
    return [lab for lab in LABS if client.get(f"/labs/{lab.name}").status_code == 200]


def test_index_lists_every_lab_in_order(client):
    response = client.get("/labs")
    assert response.status_code == 200
    cards = response.text[response.text.index('id="labs"'):]
    labs = built(client)
    assert {"shallow-regression", "conditional-statistics", "saturating-losses",
            "output-units"} <= {lab.name for lab in labs}
    card_positions = [cards.index(f'href="/labs/{lab.name}"') for lab in labs]
    assert card_positions == sorted(card_positions)
    assert [lab.number for lab in LABS] == sorted(lab.number for lab in LABS)


def test_index_map_has_the_chapters_sections_in_order(client):
    html = client.get("/labs").text
    numbers = [section.number for section in chapter_map()]
    spots = [html.index(f'<span class="number">{number}</span>') for number in numbers]
    assert spots == sorted(spots)
    # every section number is one of the chapter's headings
    headings = re.findall(r"^#+ (?:Example )?(6\.[0-9.]*[0-9])", chapter_text(), re.M)
    for number in numbers:
        assert number in headings, number
    for lab in LABS:
        assert lab.section in headings, lab.section


def test_every_link_on_the_index_answers(client):
    html = client.get("/labs").text
    for href in sorted(set(re.findall(r'href="(/[^"#]*)[^"]*"', html))):
        if href.startswith("/static/"):
            continue
        assert client.get(href).status_code == 200, href


def test_preset_links_name_existing_presets(client):
    names = {preset["name"] for preset in client.get("/api/presets").json()}
    for section in chapter_map():
        for runner in section.runners:
            if runner.kind == "preset" and "preset=" in runner.href:
                assert runner.href.split("preset=")[1] in names, runner.href


def test_each_lab_page_renders_its_question(client):
    for lab in built(client):
        response = client.get(f"/labs/{lab.name}")
        assert lab.title in response.text
        assert 'id="run"' in response.text and "disabled" in response.text


def test_unknown_lab_is_a_clear_404_page(client):
    response = client.get("/labs/no-such-lab")
    assert response.status_code == 404
    assert "no lab called" in response.text
    for lab in built(client):
        assert f'href="/labs/{lab.name}"' in response.text


def test_katex_is_vendored_with_its_licence(client):
    html = client.get("/labs").text
    script = re.search(r'src="(/static/vendor/katex-[0-9.]+/katex\.min\.js)"', html).group(1)
    assert client.get(script).status_code == 200
    folder = script.rsplit("/", 1)[0]
    assert "MIT" in client.get(f"{folder}/LICENSE").text
    css = client.get(f"{folder}/katex.min.css").text
    for font in set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css)):
        assert client.get(f"{folder}/{font}").status_code == 200, font


def test_playground_links_to_the_labs(client):
    assert 'href="/labs"' in client.get("/").text
