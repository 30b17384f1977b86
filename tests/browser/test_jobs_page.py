"""The heavy jobs page (/jobs) and the playground's job buttons, in chromium against the real
server: jobs run on its embedded Dask cluster, progress arrives over /ws/jobs, results are
drawn with Plotly. The page is served with its own Content-Security-Policy, so a script the
policy refuses would show up as a console error and fail the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.browser.helpers import Playground
from tests.conftest import free_port
from tests.servers import Uvicorn

JOB_TIMEOUT = 180_000  # the first job starts the embedded cluster; CI machines are slow
EXPECTED_CSP = "script-src 'self' 'unsafe-eval'"


# Chromium reports a refused `eval`/`Function` only as a `securitypolicyviolation` event, and
# Plotly then quietly shows "WebGL is not supported" instead of the plot: make every violation
# a console error, which fails the test (tests/browser/conftest.py).
REPORT_CSP_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) =>
  console.error(`CSP violation: ${event.violatedDirective} refused ${event.blockedURI}`));"""

# How many pixels of a plot's WebGL canvas are painted (Plotly keeps its drawing buffer).
GL_PIXELS = """(plot) => {
  const gl = plot.querySelector("canvas.gl-canvas-context");
  if (!gl || !gl.width) return 0;
  const copy = document.createElement("canvas");
  copy.width = gl.width;
  copy.height = gl.height;
  const context = copy.getContext("2d");
  context.drawImage(gl, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  return painted;
}"""


@pytest.fixture(autouse=True)
def csp_violations_fail(page: Page) -> None:
    page.context.add_init_script(REPORT_CSP_VIOLATIONS)


def open_jobs_page(page: Page, url: str, suffix: str = "") -> None:
    response = page.goto(f"{url}/jobs{suffix}")
    assert response is not None and response.status == 200
    # the page runs under its own policy (plotly's WebGL traces need 'unsafe-eval')
    assert EXPECTED_CSP in response.headers["content-security-policy"]
    page.wait_for_function("() => window.jobsPage && jobsPage.ready")


def wait_drawn(page: Page, kind: str, timeout: float = JOB_TIMEOUT) -> str:
    """Wait until the page has drawn a finished job of `kind`; returns the job's id."""
    page.wait_for_function(
        f"() => jobsPage.drawn && jobsPage.drawn.kind === '{kind}'", timeout=timeout
    )
    return page.evaluate("() => jobsPage.drawn.id")


def plot_data(page: Page, plot_id: str) -> list[dict]:
    """The traces Plotly holds for a plot (gd.data), as JSON."""
    return page.evaluate(
        f"""() => document.getElementById('{plot_id}').data.map((trace) => ({{
            type: trace.type, name: trace.name, x: Array.from(trace.x || []),
            y: Array.from(trace.y || []), z: trace.z || null }}))"""
    )


def without_expected_refusals(errors: list[str], status: int) -> None:
    """Chromium logs every response of status >= 400 as a console error, even one the page
    asked for and handles (a 422 the form shows): drop exactly those, keep the rest."""
    errors[:] = [e for e in errors if f"status of {status}" not in e]


@pytest.fixture
def popups(page: Page) -> Iterator[list[str]]:
    """Console errors of the tabs the page opens (the playground's buttons open /jobs)."""
    errors: list[str] = []

    def watch(popup: Page) -> None:
        popup.on(
            "console",
            lambda m: errors.append(f"popup console.{m.type}: {m.text}") if m.type == "error"
            else None,
        )
        popup.on("pageerror", lambda error: errors.append(f"popup uncaught: {error}"))

    page.context.on("page", watch)
    yield errors
    assert errors == [], "the opened tab reported errors:\n" + "\n".join(errors)


def test_digits_job_runs_from_the_jobs_page_to_its_plots(
    page: Page, server_url: str, console_errors: list[str], shots
) -> None:
    open_jobs_page(page, server_url)
    assert page.is_enabled("#form-digits button[type=submit]")
    page.fill("#digits-epochs", "1")
    page.fill("#digits-hidden", "40")
    page.click("#form-digits button[type=submit]")
    # the job is listed at once, with a progress bar, and followed over its WebSocket
    page.wait_for_selector("#job-list .job progress")
    job_id = wait_drawn(page, "digits")
    item = page.locator(f'#job-list .job[data-id="{job_id}"]')
    assert item.get_attribute("data-state") == "done"
    assert item.locator("progress").evaluate("(bar) => bar.value") == 1
    # the epoch's loss arrived as a partial result while it ran
    partials = page.evaluate(f"() => jobsPage.jobs.get('{job_id}').partials")
    assert any("loss" in p and p.get("epoch") == 1 for p in partials), partials

    confusion = plot_data(page, "plot-confusion")
    assert confusion[0]["type"] == "heatmap"
    matrix = confusion[0]["z"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    spec = page.evaluate(f"() => jobsPage.jobs.get('{job_id}').job.spec")
    assert spec["epochs"] == 1 and spec["hidden"] == 40
    assert sum(map(sum, matrix)) == 10_000 - spec["train_size"]  # every test digit once
    correct = sum(matrix[i][i] for i in range(10)) / sum(map(sum, matrix))
    result = page.evaluate(f"() => jobsPage.jobs.get('{job_id}').job.result")
    assert correct == pytest.approx(result["test_accuracy"])
    assert page.get_by_text("Test accuracy").first.is_visible()

    for plot_id in ("plot-input-map", "plot-hidden-map"):
        traces = plot_data(page, plot_id)
        assert {t["type"] for t in traces} == {"scattergl"}
        assert sorted(t["name"] for t in traces) == [str(c) for c in range(10)]
        assert sum(len(t["x"]) for t in traces) == spec["map_points"]
        # WebGL drew the points (not Plotly's "WebGL is not supported" in their place)
        plot = page.locator(f"#{plot_id}")
        assert "WebGL is not supported" not in plot.text_content()
        assert plot.evaluate(GL_PIXELS) > 500
    # the heatmap is drawn as an image in the SVG
    assert page.locator("#plot-confusion .hm image").count() == 1
    history = plot_data(page, "plot-history")
    assert history[0]["y"] == [row["loss"] for row in result["history"]]

    # the report and the JSON download belong to this browser (its cookie)
    report_href = item.locator("a.report").get_attribute("href")
    report = page.request.get(server_url + report_href)
    assert report.status == 200 and "text/html" in report.headers["content-type"]
    json_href = item.locator("a.json").get_attribute("href")
    assert page.request.get(server_url + json_href).json()["result"]["confusion"] == matrix
    shots(page, "jobs-digits")

    # reloading shows the same job, drawn again from GET /api/jobs/{id}
    page.reload()
    page.wait_for_function("() => window.jobsPage && jobsPage.ready")
    assert page.locator(f'#job-list .job[data-id="{job_id}"]').count() == 1
    assert wait_drawn(page, "digits") == job_id


def test_a_running_job_is_cancelled(
    page: Page, server_url: str, console_errors: list[str], shots
) -> None:
    open_jobs_page(page, server_url)
    page.fill("#digits-epochs", "20")
    page.fill("#digits-hidden", "300")
    page.fill("#digits-learning-rate", "0.05")
    page.click("#form-digits button[type=submit]")
    page.wait_for_function(
        "() => [...jobsPage.jobs.values()].some((e) => e.job.spec.epochs === 20"
        " && e.job.state === 'running')",
        timeout=JOB_TIMEOUT,
    )
    job_id = page.evaluate(
        "() => [...jobsPage.jobs.values()].find((e) => e.job.spec.epochs === 20"
        " && e.job.state === 'running').job.id"
    )
    item = page.locator(f'#job-list .job[data-id="{job_id}"]')
    shots(page, "jobs-running")
    item.locator("button.cancel").click()
    page.wait_for_function(
        f"() => jobsPage.jobs.get('{job_id}').job.state === 'cancelled'", timeout=30_000
    )
    assert item.get_attribute("data-state") == "cancelled"
    assert item.locator(".job-state").text_content() == "cancelled"
    assert item.locator("button.cancel").is_hidden()
    assert page.request.get(f"{server_url}/api/jobs/{job_id}").json()["state"] == "cancelled"
    # a cancelled job has nothing to draw
    page.locator(f'#job-list .job[data-id="{job_id}"] .job-title').click()
    assert "Cancelled" in page.text_content("#result-summary")
    assert page.locator("#result-plots .js-plotly-plot").count() == 0
    shots(page, "jobs-cancelled")

    # another browser (a fresh context, no cookie) neither lists nor opens this job
    other = page.context.browser.new_context()
    try:
        stranger = other.new_page()
        open_jobs_page(stranger, server_url, f"#job={job_id}")
        stranger.wait_for_selector("#notice:not([hidden])")
        assert "not one of this browser's jobs" in stranger.text_content("#notice")
        assert stranger.locator("#job-list .job").count() == 0
    finally:
        other.close()


def test_a_bad_field_is_named_beside_the_form(
    page: Page, server_url: str, console_errors: list[str], shots
) -> None:
    open_jobs_page(page, server_url)
    before = page.evaluate("() => jobsPage.jobs.size")

    page.fill("#digits-epochs", "0")  # below the spec's bound (ge=1)
    page.click("#form-digits button[type=submit]")
    page.wait_for_function("() => document.getElementById('digits-epochs-error').textContent")
    message = page.text_content("#digits-epochs-error")
    assert message.startswith("epochs:") and "greater than or equal to 1" in message
    assert page.get_attribute("#digits-epochs", "aria-invalid") == "true"
    # the message is tied to its input for assistive technology, and the input has focus
    assert page.get_attribute("#digits-epochs", "aria-describedby") == "digits-epochs-error"
    assert page.evaluate("() => document.activeElement.id") == "digits-epochs"

    # not a number at all: sent as typed, the server's message names the field
    page.fill("#digits-epochs", "3")
    page.fill("#digits-learning-rate", "fast")
    page.click("#form-digits button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('digits-learning-rate-error').textContent"
    )
    assert page.text_content("#digits-epochs-error") == ""  # the old message went
    assert page.get_attribute("#digits-epochs", "aria-invalid") is None
    assert page.text_content("#digits-learning-rate-error").startswith("learning_rate:")

    # over this server's limit (settings): the 422 names the limit
    page.fill("#digits-learning-rate", "0.1")
    page.fill("#digits-epochs", "50")  # the spec allows 100, this server 20
    page.click("#form-digits button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('digits-epochs-error').textContent.includes('limit')"
    )
    limit = page.text_content("#digits-epochs-error")
    assert "epochs" in limit and "BACKPROP_LAB_MAX_DIGITS_EPOCHS" in limit

    # a sweep's list field: the message lands beside the list
    page.fill("#sweep-depths", "1, 99")
    page.click("#form-sweep button[type=submit]")
    page.wait_for_function("() => document.getElementById('sweep-depths-error').textContent")
    assert page.text_content("#sweep-depths-error").startswith("depths.1:")

    assert page.evaluate("() => jobsPage.jobs.size") == before  # nothing was queued
    shots(page, "jobs-422")
    without_expected_refusals(console_errors, 422)


def test_playground_buttons_send_this_network_to_jobs_drawn_on_the_jobs_page(
    page: Page, server_url: str, console_errors: list[str], popups: list[str], shots
) -> None:
    playground = Playground(page, server_url).open()
    playground.wait_frames(20)  # some training: snapshots along the way for the path
    playground.pause()
    weights = playground.weights()
    parameters = sum(len(values) for values in weights.values())

    with page.context.expect_page() as opened:
        page.click("#spectrum-job")
    jobs = opened.value
    jobs.wait_for_url("**/jobs#job=*", timeout=30_000)
    job_id = jobs.url.split("#job=")[1]
    jobs.wait_for_function("() => window.jobsPage && jobsPage.ready")
    assert wait_drawn(jobs, "spectrum") == job_id
    job = jobs.evaluate(f"() => jobsPage.jobs.get('{job_id}').job")
    # the session's own network and weights went with the job
    assert job["spec"]["config"]["model"] == playground.config["model"]
    sent = {name: _flat(value) for name, value in job["spec"]["weights"].items()}
    assert sent.keys() == weights.keys()
    for name in weights:
        assert sent[name] == pytest.approx(weights[name], rel=1e-5, abs=1e-6)
    traces = plot_data(jobs, "plot-spectrum")
    assert traces[0]["type"] == "bar" and len(traces[0]["y"]) == job["spec"]["k"]
    assert traces[0]["y"] == sorted(traces[0]["y"], reverse=True)
    # the net is small enough for the full Hessian: the exact eigenvalues are drawn beside
    exact = [t for t in traces if t["name"] == "exact (full Hessian)"]
    assert exact and exact[0]["y"][0] == pytest.approx(traces[0]["y"][0], rel=1e-3)
    assert job["result"]["parameters"] == parameters
    # the jobs page offers the same network to its landscape form
    chosen = jobs.eval_on_selector("#landscape-network", "(s) => s.selectedOptions[0].text")
    assert chosen.startswith("playground network")
    shots(jobs, "jobs-spectrum-from-playground")

    # the landscape button: the plane through the same weights, the training path on it
    with page.context.expect_page() as opened:
        page.click("#landscape-job")
    landscape = opened.value
    landscape.wait_for_url("**/jobs#job=*", timeout=30_000)
    landscape.wait_for_function("() => window.jobsPage && jobsPage.ready")
    landscape_id = wait_drawn(landscape, "landscape")
    # the snapshots kept along training (at most 50) and the current weights last
    sent_path = landscape.evaluate(f"() => jobsPage.jobs.get('{landscape_id}').job.spec.path")
    assert 3 <= len(sent_path) <= 51
    assert _flat(sent_path[-1]["W1"]) == pytest.approx(weights["W1"], rel=1e-5, abs=1e-6)
    surface = plot_data(landscape, "plot-landscape-surface")
    assert surface[0]["type"] == "surface"
    assert "WebGL is not supported" not in landscape.text_content("#plot-landscape-surface")
    contour = plot_data(landscape, "plot-landscape-contour")
    path = [t for t in contour if t["name"] == "training path"]
    assert path and len(path[0]["x"]) >= 2
    # the path ends at the weights the plane is centred on
    assert path[0]["x"][-1] == pytest.approx(0, abs=1e-6)
    assert path[0]["y"][-1] == pytest.approx(0, abs=1e-6)
    shots(landscape, "jobs-landscape-from-playground")


def _flat(value) -> list[float]:
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [value]


@pytest.fixture
def server_without_cluster(tmp_path) -> Iterator[str]:
    """A second real server whose Dask scheduler address has nobody listening."""
    server = Uvicorn(tmp_path / "server.log", scheduler=f"tcp://127.0.0.1:{free_port()}",
                     scheduler_timeout_s=1).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_without_a_cluster_the_page_says_why_and_the_forms_are_off(
    page: Page, server_without_cluster: str, console_errors: list[str], shots
) -> None:
    open_jobs_page(page, server_without_cluster)
    banner = page.locator("#unavailable")
    assert banner.is_visible()
    reason = page.request.get(f"{server_without_cluster}/api/jobs").json()["reason"]
    assert reason and reason[1:] in banner.text_content()  # the sentence starts in capitals
    for kind in ("digits", "sweep", "landscape", "spectrum"):
        controls = page.evaluate(
            f"""() => [...document.querySelectorAll('#form-{kind} :is(input, select, button)')]
                .map((control) => control.matches(':disabled'))"""
        )
        assert len(controls) >= 3 and all(controls), (kind, controls)
    assert page.text_content("#cluster-status") == "job cluster unavailable"
    shots(page, "jobs-unavailable")

    # the playground's buttons say so too: the tab they opened closes, the reason stays
    Playground(page, server_without_cluster).open()
    with page.context.expect_page() as opened:
        page.click("#spectrum-job")
    page.wait_for_function("() => document.getElementById('jobs-error').textContent")
    if not opened.value.is_closed():
        opened.value.wait_for_event("close")
    message = page.text_content("#jobs-error")
    assert message.startswith("The spectrum job was refused:") and "cannot be reached" in message
    page.wait_for_function("() => document.getElementById('spectrum-job').disabled === false")
    without_expected_refusals(console_errors, 503)


def test_weight_snapshots_stay_few_and_span_the_run(
    page: Page, server_url: str, console_errors: list[str]
) -> None:
    open_jobs_page(page, server_url)
    steps = page.evaluate(
        """async () => {
          const { PlaygroundState } = await import("/static/js/state.js");
          const state = new PlaygroundState();
          const params = (shape) => new Map([["W1", { value: new Float32Array(6), shape }]]);
          const kept = [];
          for (let step = 0; step <= 10000; step += 7) state.recordSnapshot(step, params([2, 3]));
          kept.push(state.snapshots.map((s) => s.step));
          // a reset: the counters start again, and so does the path
          for (let step = 0; step <= 70; step += 7) state.recordSnapshot(step, params([3, 2]));
          kept.push(state.snapshots.map((s) => s.step));
          // only snapshots of the current shapes go to a job
          kept.push(state.snapshotsLike({ W1: [[0, 0], [0, 0], [0, 0]] }).length);
          kept.push(state.snapshotsLike({ W1: [[0, 0, 0], [0, 0, 0]] }).length);
          return kept;
        }"""
    )
    run, after_reset, matching, other_shape = steps
    assert 25 <= len(run) <= 50
    assert run == sorted(run) and run[0] == 0 and run[-1] >= 9000
    assert after_reset == list(range(0, 71, 7))
    assert matching == len(after_reset) and other_shape == 0
