"""Your own data (issue 12): a CSV file picked or dropped on the playground becomes the
points the surface draws and the network trains on; a bad file is named with its line."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.helpers import Playground


def blobs_csv() -> str:
    rng = np.random.default_rng(5)
    lines = ["x1,x2,label"]
    for label, centre in enumerate([(-2.0, -1.0), (2.0, -1.0), (0.0, 2.0)]):
        for x, y in rng.normal(centre, 0.5, size=(25, 2)):
            lines.append(f"{x:.3f},{y:.3f},{label}")
    return "\n".join(lines) + "\n"


# the share of the file's training points with a drawn (opaque) pixel at their centre on
# the surface's points canvas
DRAWN = """() => {
  const view = playground.surface, canvas = view.area.canvases[1];
  const scale = canvas.width / canvas.clientWidth;
  const ctx = canvas.getContext("2d");
  const { x, y } = view.data.train, dims = view.data.inputDim;
  let drawn = 0;
  for (let i = 0; i < y.length; i++) {
    const px = view.area.px(x[i * dims]);
    const py = dims === 1 ? view.area.py(y[i]) : view.area.py(x[i * dims + 1]);
    const alpha = ctx.getImageData(Math.round(px * scale), Math.round(py * scale), 1, 1).data[3];
    if (alpha > 200) drawn += 1;
  }
  return drawn / y.length;
}"""


@pytest.fixture
def playground(page, server_url, console_errors) -> Playground:
    return Playground(page, server_url)


def test_a_picked_csv_file_is_drawn_and_trained_on(playground, shots):
    pg = playground.open()
    page = pg.page
    pg.wait_for("playground.state.playing && playground.state.step > 0")
    page.set_input_files("#csv-file", files=[{
        "name": "blobs.csv", "mimeType": "text/csv", "buffer": blobs_csv().encode(),
    }])
    pg.wait_for("playground.state.config.data.name === 'user'"
                f" && {Playground.POINT_COUNT} === 75 && !playground.surface.pointsDirty")
    assert pg.config["model"]["output"]["loss"] == "softmax"
    assert pg.js("playground.state.network.classes") == 3
    assert page.evaluate(DRAWN) == 1.0  # every training point of the file is on the canvas
    assert "75 points from blobs.csv" in pg.text("#notice")
    # and the network trains on them: the step counter moves and the loss falls
    start_step, start_loss = pg.step, pg.loss()
    page.fill("#learning-rate", "0.3")
    page.press("#learning-rate", "Enter")
    pg.wait_for(f"playground.state.step > {start_step + 1500}", timeout=60_000)
    pg.wait_for(f"playground.lastFrame.trainLoss < {start_loss} * 0.7", timeout=60_000)
    page.locator("#own-data").scroll_into_view_if_needed()
    shots(page, "csv-loaded")

    # a bad file: the line is named beside the button, the points stay
    page.set_input_files("#csv-file", files=[{
        "name": "broken.csv", "mimeType": "text/csv",
        "buffer": b"x1,x2,label\n0,0,0\n1,1,1\n2,2,one\n",
    }])
    pg.wait_for("document.querySelector('[data-error-for=\"csv\"]').textContent !== ''")
    message = pg.text('[data-error-for="csv"]')
    assert message == "broken.csv: line 4: label is 'one', not a number"
    assert pg.point_count() == 75 and pg.config["data"]["name"] == "user"
    page.locator("#own-data").scroll_into_view_if_needed()
    shots(page, "csv-error")

    # a file larger than one message may be is stopped in the page, with the server's limit
    limit = pg.js("playground.state.limits.max_message_bytes")
    big = ("0.125,0.25,1\n" * (limit // 13 + 10)).encode()
    page.set_input_files("#csv-file", files=[{"name": "huge.csv", "mimeType": "text/csv",
                                              "buffer": big}])
    pg.wait_for("document.querySelector('[data-error-for=\"csv\"]').textContent"
                ".startsWith('huge.csv')")
    assert f"this server takes at most {limit // 1024} kB" in pg.text('[data-error-for="csv"]')
    assert pg.point_count() == 75


def test_a_dropped_one_input_regression_file_draws_a_curve(playground, shots):
    pg = playground.open()
    page = pg.page
    xs = np.linspace(-3, 3, 50)
    text = "\n".join(f"{x:.4f},{np.sin(2 * x):.4f}" for x in xs)  # no header
    page.select_option("#csv-task", "regression")
    page.evaluate("""(text) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([text], "wave.csv", { type: "text/csv" }));
      const target = document.getElementById("surface");
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true,
                                                   cancelable: true }));
      }
    }""", text)
    pg.wait_for(f"playground.state.network.input_dim === 1 && {Playground.POINT_COUNT} === 50"
                " && playground.lastFrame.surface.kind === 'curve'"
                " && !playground.surface.pointsDirty")
    assert pg.config["data"]["target"] == "value" and pg.config["model"]["features"] == ["x1"]
    assert page.evaluate(DRAWN) == 1.0
    assert not pg.js("document.body.classList.contains('dropping')")
    # the feature boxes follow the file: one input, so no x2 crosses are offered
    assert page.locator("input[data-feature='x2']").count() == 0
    pg.wait_for("playground.state.step > 500", timeout=60_000)
    shots(page, "csv-regression-dropped")
