// Draws a finished job's result with Plotly: these plots are drawn once and then explored
// (3-D rotation, zoom, hover), which is what Plotly is for; the playground's per-frame views
// are on canvas instead (NOTES). plotly.min.js is loaded on the first result only: its
// evaluation blocks the page for about a second, and a page that only submits jobs never
// needs it.

import { CLASS_COLORS } from "./palette.js";
import { FONT_FAMILY } from "./plotarea.js";

const CONFIG = { displaylogo: false, responsive: true };
let plotlyPromise = null;

export function loadPlotly(url) {
  if (globalThis.Plotly) return Promise.resolve(globalThis.Plotly);
  if (!plotlyPromise) {
    plotlyPromise = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.addEventListener("load", () => resolve(globalThis.Plotly));
      script.addEventListener("error", () => {
        plotlyPromise = null;
        reject(new Error("Plotly could not be loaded"));
      });
      document.head.appendChild(script);
    });
  }
  return plotlyPromise;
}

function layout(extra) {
  return {
    margin: { l: 54, r: 12, t: 30, b: 44 },
    font: { size: 11, family: FONT_FAMILY },
    title: { font: { size: 12 }, x: 0.02, xanchor: "left" },
    ...extra,
  };
}

// One plot area in `container`: a div with an accessible name (the plot's title).
function area(container, id, label, className = "plot") {
  const div = document.createElement("div");
  div.className = className;
  div.id = id;
  // a figure, not an image: Plotly puts buttons (its mode bar) inside
  div.setAttribute("role", "figure");
  div.setAttribute("aria-label", label);
  div.dataset.testid = id;
  container.appendChild(div);
  return div;
}

// Each drawer returns the plots' divs once Plotly has drawn them all.
export async function drawResult(Plotly, container, job) {
  Plotly.purge && container.querySelectorAll(".js-plotly-plot").forEach((div) => Plotly.purge(div));
  container.replaceChildren();
  const drawer = DRAWERS[job.kind];
  if (!drawer) throw new Error(`no drawing for jobs of kind ${job.kind}`);
  return drawer(Plotly, container, job.result, job.spec || {});
}

const DRAWERS = {
  async digits(Plotly, container, result) {
    const confusion = area(container, "plot-confusion", "confusion matrix of the test set");
    const history = area(container, "plot-history", "loss and test accuracy per epoch");
    const inputMap = area(container, "plot-input-map", "the test digits in input space, coloured by class");
    const hiddenMap = area(container, "plot-hidden-map", "the test digits in the hidden layer's space, coloured by class");
    const classes = result.confusion.map((_, i) => i);
    await Plotly.newPlot(confusion, [{
      type: "heatmap", z: result.confusion, x: classes, y: classes, colorscale: [[0, "#f7fbff"], [0.25, "#c6dbef"], [1, "#1f4f99"]],
      texttemplate: "%{z}", hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>",
      showscale: false,
    }], layout({
      title: { text: `confusion matrix (test accuracy ${percent(result.test_accuracy)})` },
      xaxis: { title: { text: "predicted class" }, constrain: "domain", dtick: 1 },
      yaxis: { title: { text: "true class" }, autorange: "reversed", scaleanchor: "x", dtick: 1 },
    }), CONFIG);
    const epochs = (result.history || []).map((row) => row.epoch);
    await Plotly.newPlot(history, [
      { x: epochs, y: result.history.map((row) => row.loss), name: "training loss L", mode: "lines+markers", line: { color: "#37414b" } },
      { x: epochs, y: result.history.map((row) => row.test_accuracy), name: "test accuracy", yaxis: "y2", mode: "lines+markers", line: { color: "#d6402a", dash: "dot" } },
    ], layout({
      title: { text: "training" },
      xaxis: { title: { text: "epoch" }, dtick: 1 },
      yaxis: { title: { text: "loss L" }, rangemode: "tozero" },
      yaxis2: { title: { text: "test accuracy" }, overlaying: "y", side: "right", range: [0, 1.02], dtick: 0.2, tickformat: ".0%", showgrid: false },
      legend: { orientation: "h", y: -0.25 },
      margin: { l: 54, r: 54, t: 30, b: 60 },
    }), CONFIG);
    const mapName = (map) => (map.method === "tsne" ? "t-SNE" : "PCA");
    await Plotly.newPlot(inputMap, classTraces(result.input_map), layout({
      title: { text: `input space x (${mapName(result.input_map)} of the 784 pixels)` },
      xaxis: { zeroline: false }, yaxis: { zeroline: false }, legend: { title: { text: "class" } },
    }), CONFIG);
    await Plotly.newPlot(hiddenMap, classTraces(result.hidden_map), layout({
      title: { text: `hidden layer h (${mapName(result.hidden_map)} of its activations)` },
      xaxis: { zeroline: false }, yaxis: { zeroline: false }, legend: { title: { text: "class" } },
    }), CONFIG);
    return [confusion, history, inputMap, hiddenMap];
  },

  async sweep(Plotly, container, result) {
    const plot = area(container, "plot-sweep", "test accuracy against the number of parameters, one curve per depth", "plot wide");
    const traces = [];
    for (const [i, curve] of result.curves.entries()) {
      const color = CLASS_COLORS[i % CLASS_COLORS.length];
      const name = `${curve.depth} hidden layer${curve.depth === 1 ? "" : "s"}`;
      traces.push({
        type: "scatter", mode: "lines+markers", name, legendgroup: name, x: curve.parameters, y: curve.test_accuracy,
        error_y: curve.std ? { type: "data", array: curve.std, visible: true, thickness: 1 } : undefined,
        line: { color }, marker: { color, size: 7 },
        hovertemplate: `depth ${curve.depth}: %{x} parameters, test accuracy %{y:.3f}<extra></extra>`,
      });
      const runs = result.runs.filter((run) => run.depth === curve.depth);
      traces.push({
        type: "scatter", mode: "markers", name: `${name}, each seed`, legendgroup: name, showlegend: false,
        x: runs.map((run) => run.parameters), y: runs.map((run) => run.test_accuracy),
        marker: { color, size: 4, opacity: 0.35 },
        text: runs.map((run) => `width ${run.width}, seed ${run.seed}`),
        hovertemplate: "%{text}: test accuracy %{y:.3f}<extra></extra>",
      });
    }
    await Plotly.newPlot(plot, traces, layout({
      title: { text: `test accuracy against parameters on ${result.dataset} (mean over seeds ± one standard deviation)` },
      xaxis: { title: { text: "parameters (log scale)" }, type: "log" },
      yaxis: { title: { text: "test accuracy" } },
    }), CONFIG);
    return [plot];
  },

  async landscape(Plotly, container, result) {
    const surface = area(container, "plot-landscape-surface", "the cost J over the plane, as a surface");
    const contour = area(container, "plot-landscape-contour", "the cost J over the plane, as contours, with the training path");
    const [first, second] = result.directions === "hessian"
      ? ["α (along the gradient)", "β (along the top Hessian eigenvector)"]
      : ["α (random direction 1)", "β (random direction 2)"];
    await Plotly.newPlot(surface, [{
      type: "surface", x: result.alphas, y: result.betas, z: result.cost, colorscale: "Viridis", showscale: false,
      contours: { z: { show: true, usecolormap: true, project: { z: true } } },
      hovertemplate: "α %{x:.3f}, β %{y:.3f}: J = %{z:.4f}<extra></extra>",
    }], layout({
      title: { text: "cost J(θ + αd₁ + βd₂)" },
      margin: { l: 0, r: 0, t: 30, b: 0 },
      scene: { xaxis: { title: { text: "α" } }, yaxis: { title: { text: "β" } }, zaxis: { title: { text: "J" } } },
    }), CONFIG);
    const traces = [{
      type: "contour", x: result.alphas, y: result.betas, z: result.cost, colorscale: "Viridis", ncontours: 24,
      colorbar: { title: { text: "J" }, thickness: 10 },
      hovertemplate: "α %{x:.3f}, β %{y:.3f}: J = %{z:.4f}<extra></extra>",
    }];
    const path = result.path || [];
    if (path.length) {
      traces.push({
        type: "scatter", mode: "lines+markers", name: "training path", x: path.map((p) => p[0]), y: path.map((p) => p[1]),
        line: { color: "#d6402a", width: 2 }, marker: { color: "#ffffff", size: 5, line: { color: "#d6402a", width: 1.5 } },
        hovertemplate: "snapshot %{pointNumber}: α %{x:.3f}, β %{y:.3f}<extra></extra>",
      });
    }
    traces.push({
      type: "scatter", mode: "markers", name: "current weights θ", x: [0], y: [0],
      marker: { color: "#37414b", size: 11, symbol: "x", line: { color: "#fff", width: 1 } },
      hovertemplate: `θ: J = ${number(result.center_cost)}<extra></extra>`,
    });
    await Plotly.newPlot(contour, traces, layout({
      title: { text: path.length ? "contours and the training path" : "contours" },
      xaxis: { title: { text: first } }, yaxis: { title: { text: second } },
      legend: { orientation: "h", y: -0.22 }, margin: { l: 54, r: 12, t: 30, b: 70 },
    }), CONFIG);
    return [surface, contour];
  },

  async spectrum(Plotly, container, result) {
    const plot = area(container, "plot-spectrum", "the largest eigenvalues of the Hessian", "plot wide");
    const index = result.eigenvalues.map((_, i) => i + 1);
    const traces = [{
      type: "bar", name: "Lanczos (Hessian-vector products)", x: index, y: result.eigenvalues, width: 0.12,
      marker: { color: "#2b6cd4" }, hovertemplate: "λ%{x} = %{y:.5g}<extra></extra>",
    }, {
      type: "scatter", mode: "markers", name: "Lanczos", showlegend: false, x: index, y: result.eigenvalues,
      marker: { color: "#2b6cd4", size: 8 }, hoverinfo: "skip",
    }];
    if (Array.isArray(result.exact) && result.exact.length) {
      traces.push({
        type: "scatter", mode: "markers", name: "exact (full Hessian)", x: result.exact.map((_, i) => i + 1), y: result.exact,
        marker: { color: "#d6402a", size: 13, symbol: "circle-open", line: { width: 2 } },
        hovertemplate: "exact λ%{x} = %{y:.5g}<extra></extra>",
      });
    }
    await Plotly.newPlot(plot, traces, layout({
      title: { text: `top ${index.length} eigenvalues of the Hessian ∇²J (${result.parameters} parameters)` },
      xaxis: { title: { text: "rank i" }, dtick: 1 },
      yaxis: { title: { text: "eigenvalue λᵢ" }, zeroline: true },
      legend: { orientation: "h", y: -0.18 },
    }), CONFIG);
    return [plot];
  },
};

// One WebGL scatter trace per class, so that the legend names the classes (Fig. 6.3's
// colours: the playground's class colours).
function classTraces(map) {
  const byClass = new Map();
  for (let i = 0; i < map.label.length; i++) {
    const label = map.label[i];
    if (!byClass.has(label)) byClass.set(label, { x: [], y: [] });
    const points = byClass.get(label);
    points.x.push(map.x[i]);
    points.y.push(map.y[i]);
  }
  return [...byClass.keys()].sort((a, b) => a - b).map((label) => ({
    type: "scattergl", mode: "markers", name: String(label), x: byClass.get(label).x, y: byClass.get(label).y,
    marker: { color: CLASS_COLORS[label % CLASS_COLORS.length], size: 4, opacity: 0.75 },
    hovertemplate: `class ${label}<extra></extra>`,
  }));
}

export function percent(value) {
  return typeof value === "number" ? `${(100 * value).toFixed(1)} %` : "–";
}

export function number(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toPrecision(4) : "–";
}
