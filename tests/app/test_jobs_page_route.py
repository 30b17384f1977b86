"""The /jobs page as the server sends it: its own Content-Security-Policy, forms that show
the job specs' defaults, and nothing the policy would refuse (inline scripts or handlers)."""

from __future__ import annotations

from html.parser import HTMLParser

from app.routes.pages import JOBS_PAGE_CSP
from jobs.specs import SWEEP_DATASETS, DigitsSpec, SpectrumSpec, SweepSpec


class _Page(HTMLParser):
    """Collects the scripts, the inline handlers and the value of every form control."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.values: dict[str, str | None] = {}
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.handlers += [name for name in attributes if name.startswith("on")]
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "input" and attributes.get("id"):
            self.values[attributes["id"]] = attributes.get("value")
        if tag == "select":
            self._select = attributes.get("id")
            self.options[self._select] = []
        if tag == "option" and self._select:
            self.options[self._select].append(attributes.get("value"))
        if tag == "label" and attributes.get("for"):
            self.labels.add(attributes["for"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _page(client) -> tuple[_Page, object]:
    response = client.get("/jobs")
    assert response.status_code == 200
    page = _Page()
    page.feed(response.text)
    return page, response


def test_the_jobs_page_sets_its_own_policy(client) -> None:
    _, response = _page(client)
    policy = response.headers["content-security-policy"]
    assert policy == JOBS_PAGE_CSP
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    # scripts from this origin only, with eval for Plotly's WebGL traces; nothing framed elsewhere
    assert directives["script-src"] == "'self' 'unsafe-eval'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'self'"
    # the other pages keep the stricter default: no eval there
    assert "unsafe-eval" not in client.get("/").headers.get("content-security-policy", "")


def test_the_jobs_page_has_no_inline_script_or_handler(client) -> None:
    page, _ = _page(client)
    assert page.scripts and all(script.get("src") for script in page.scripts)
    assert page.handlers == []


def test_the_forms_show_the_specs_defaults_with_a_label_each(client) -> None:
    page, _ = _page(client)
    digits, sweep, spectrum = DigitsSpec(), SweepSpec(), SpectrumSpec()
    assert page.values["digits-epochs"] == str(digits.epochs)
    assert page.values["digits-hidden"] == str(digits.hidden)
    assert float(page.values["digits-learning-rate"]) == digits.learning_rate
    assert page.values["sweep-depths"] == ", ".join(map(str, sweep.depths))
    assert page.values["sweep-widths"] == ", ".join(map(str, sweep.widths))
    assert page.values["spectrum-k"] == str(spectrum.k)
    assert page.options["sweep-dataset"] == list(SWEEP_DATASETS)
    assert page.options["landscape-directions"] == ["random", "hessian"]
    # every input and select has a <label for=...> (not a title alone)
    controls = set(page.values) | set(page.options)
    assert controls <= page.labels, controls - page.labels
