// Lab 7: depth against width at equal parameter counts, then the trained net's Hessian
// (Lanczos on Hessian-vector products, a slice along the top eigenvector), and the larger
// runs submitted to the jobs API and drawn here with the jobs page's own drawings.

import { drawResult } from "../jobplots.js";
import { fmt, loadPlotly, onPrediction, play, postJSON, readSettings, renderMath, setupPrediction, showError, showVerdict } from "./common.js";
import { COLORS, CONFIG, LAYOUT, startLab } from "./plots.js";
import { attachLive, engineConfig } from "./live.js";

renderMath();
const form = document.getElementById("predict");
const prediction = setupPrediction(form);
const lab = startLab();
const plotly = () => loadPlotly(document.body.dataset.plotlyUrl);

function depthName(depth) {
  return `${depth} hidden layer${depth === 1 ? "" : "s"}`;
}

function comparisonSettings() {
  const settings = readSettings(form);
  settings.budgets = document.getElementById("budgets").value.split(",").map((text) => text.trim())
    .filter((text) => text !== "").map((text) => (Number.isNaN(Number(text)) ? text : Number(text)));
  settings.depths = [...form.querySelectorAll("input.depth:checked")].map((box) => Number(box.value));
  settings.batch_size = 50;
  return settings;
}

function drawErrors(Plotly, run, shown) {
  const traces = run.curves.map((curve, i) => {
    const points = curve.points.slice(0, shown);
    return {
      x: points.map((p) => p.parameters), y: points.map((p) => p.test_error), mode: "lines+markers",
      name: depthName(curve.depth), line: { color: COLORS.series[i % COLORS.series.length], width: 2 },
      text: points.map((p) => `width ${p.width}, train error ${fmt(p.train_error)}`),
      hovertemplate: "%{x} parameters: test error %{y:.4g} (%{text})<extra></extra>",
    };
  });
  Plotly.react("error-plot", traces, {
    ...LAYOUT, xaxis: { title: { text: "parameters" }, type: "log" },
    yaxis: { title: { text: "test mean squared error" }, type: "log" },
  }, CONFIG);
  lab.drawn(shown);
  lab.shown = shown;
  document.getElementById("progress").textContent = `${shown} of ${Math.max(...run.curves.map((c) => c.points.length))} budgets`;
}

function drawFits(Plotly, run) {
  const title = document.getElementById("fits-title");
  if (run.fits) {
    title.textContent = "The fits at the largest budget";
    const traces = [{ x: run.fits.data.x, y: run.fits.data.y, mode: "markers", name: "training points", marker: { size: 4, color: COLORS.points } }];
    run.fits.curves.forEach((curve, i) => traces.push({
      x: run.fits.x, y: curve.y, mode: "lines", name: `${depthName(curve.depth)} × ${curve.width} (${curve.parameters} parameters)`,
      line: { color: COLORS.series[i % COLORS.series.length], width: 2 },
    }));
    Plotly.react("fits-plot", traces, { ...LAYOUT, xaxis: { title: { text: "x" } }, yaxis: { title: { text: "y" } } }, CONFIG);
    return;
  }
  title.textContent = "Training and test error at the largest budget";
  const last = run.curves.filter((c) => c.points.length).map((c) => ({ depth: c.depth, point: c.points[c.points.length - 1] }));
  const labels = last.map(({ depth, point }) => `${depthName(depth)} × ${point.width}`);
  Plotly.react("fits-plot", [
    { x: labels, y: last.map(({ point }) => point.train_error), type: "bar", name: "training error", marker: { color: COLORS.blue } },
    { x: labels, y: last.map(({ point }) => point.test_error), type: "bar", name: "test error", marker: { color: COLORS.accent } },
  ], { ...LAYOUT, yaxis: { title: { text: "mean squared error" }, type: "log" } }, CONFIG);
}

function judge(answer, run) {
  const last = run.curves.filter((c) => c.points.length).map((c) => ({ depth: c.depth, point: c.points[c.points.length - 1] }));
  const shallow = last.find((entry) => entry.depth === 1);
  const deeper = last.filter((entry) => entry.depth > 1);
  if (!shallow || !deeper.length) {
    showVerdict(false, "Compare at least one deeper net with the single layer to judge this.");
    return;
  }
  const best = deeper.reduce((a, b) => (a.point.test_error <= b.point.test_error ? a : b));
  const ratio = best.point.test_error / shallow.point.test_error;
  const actual = ratio < 0.9 ? "deep" : ratio > 1 / 0.9 ? "shallow" : "same";
  let why = `At the largest budget the single layer of ${shallow.point.width} units (${shallow.point.parameters} parameters) reached a test error of ${fmt(shallow.point.test_error)}; the best deeper net, ${depthName(best.depth)} of ${best.point.width} units (${best.point.parameters} parameters), reached ${fmt(best.point.test_error)}. `;
  if (actual === "deep") {
    why += "Composing layers lets a few units reuse each other's pieces: the second layer bends the first layer's features again instead of paying for each bump with a unit of its own.";
  } else if (actual === "shallow") {
    why += "Depth is no guarantee: with few units per layer a deep net can be too narrow to pass the input on, and it is harder to optimise in the same number of steps. A smooth target like this one may not need composition at all.";
  } else {
    why += "Either architecture has enough parameters for this target at this budget: the difference is within 10%.";
  }
  showVerdict(answer === actual, why);
}

onPrediction(form, prediction, lab, async (answer) => {
  const run = await postJSON("/api/labs/depth-and-curvature/compare", comparisonSettings(), { onLargest: lab.setField });
  const Plotly = await plotly();
  const longest = Math.max(...run.curves.map((c) => c.points.length));
  await play(Array.from({ length: longest }, (_, i) => i + 1), (shown) => drawErrors(Plotly, run, shown), 3);
  drawFits(Plotly, run);
  judge(answer, run);
});

// ----- the Hessian of one trained net ---------------------------------------------------
const curvatureForm = document.getElementById("curvature-form");
let trained = null; // the last net's config and weights, for the jobs

function setCurvatureField(name, value) {
  const input = curvatureForm.querySelector(`[data-setting="${name}"]`);
  if (input) input.value = value;
}

function readout(items) {
  const list = document.getElementById("curvature-readout");
  list.replaceChildren();
  for (const [label, value] of items) {
    const row = document.createElement("div");
    const term = document.createElement("dt");
    term.textContent = label;
    const detail = document.createElement("dd");
    detail.textContent = value;
    row.append(term, detail);
    list.append(row);
  }
}

curvatureForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const main = readSettings(form);
  const settings = {
    ...readSettings(curvatureForm), target: main.target, activation: main.activation,
    steps: main.steps, learning_rate: main.learning_rate, seed: main.seed, batch_size: 50,
  };
  const button = document.getElementById("curvature-run");
  const progress = document.getElementById("curvature-progress");
  button.disabled = true;
  progress.textContent = "training, then Lanczos…";
  try {
    const result = await postJSON("/api/labs/depth-and-curvature/curvature", settings, { onLargest: setCurvatureField });
    const Plotly = await plotly();
    trained = { config: result.config, weights: result.weights, parameters: result.parameters };
    lab.curvature = result;
    const notice = document.getElementById("curvature-notice");
    notice.hidden = !result.exact_reason;
    notice.textContent = result.exact_reason || "";
    readout([
      ["parameters", result.parameters], ["training cost J", fmt(result.cost)], ["‖∇J‖", fmt(result.gradient_norm)],
      ["Lanczos steps (HVPs)", result.iterations], ["λ_max", fmt(result.eigenvalues[0])],
      ["test error", fmt(result.test_error)],
    ]);
    const index = result.eigenvalues.map((_, i) => `λ${i + 1}`);
    const traces = [{ x: index, y: result.eigenvalues, type: "bar", name: "Lanczos", marker: { color: COLORS.blue } }];
    if (result.exact) traces.push({ x: index, y: result.exact, type: "bar", name: "whole Hessian", marker: { color: COLORS.grey } });
    Plotly.react("eigen-plot", traces, { ...LAYOUT, yaxis: { title: { text: "eigenvalue" } } }, CONFIG);
    const s = result.slice;
    Plotly.react("slice-plot", [
      { x: s.alphas, y: s.cost, mode: "lines+markers", name: "J(θ + αv)", line: { color: COLORS.blue, width: 2 }, marker: { size: 4 } },
      { x: s.alphas, y: s.quadratic, mode: "lines", name: "J + α gᵀv + ½ λ_max α²", line: { color: COLORS.accent, dash: "dash" } },
    ], { ...LAYOUT, xaxis: { title: { text: "α along the top eigenvector v" } }, yaxis: { title: { text: "training cost" } } }, CONFIG);
    progress.textContent = `${result.parameters} parameters, ${result.iterations} Hessian-vector products`;
    for (const id of ["job-spectrum", "job-landscape"]) document.getElementById(id).disabled = false;
    document.getElementById("job-status").textContent = `The net of ${result.parameters} parameters is ready for the spectrum and landscape jobs.`;
  } catch (error) {
    progress.textContent = "";
  } finally {
    button.disabled = false;
  }
});

// ----- jobs -----------------------------------------------------------------------------
const status = document.getElementById("job-status");

async function submit(spec) {
  const response = await fetch("/api/jobs", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec),
  });
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = reply.detail;
    const message = typeof detail === "string" ? detail : detail && detail.message ? detail.message
      : Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : `status ${response.status}`;
    status.textContent = `The ${spec.kind} job was refused: ${message}`;
    return;
  }
  lab.job = reply;
  await follow(reply.id, spec.kind);
}

async function follow(id, kind) {
  for (;;) {
    const response = await fetch(`/api/jobs/${encodeURIComponent(id)}`, { credentials: "same-origin" });
    if (!response.ok) {
      status.textContent = `The ${kind} job could not be read (status ${response.status}).`;
      return;
    }
    const job = await response.json();
    lab.job = job;
    if (job.state === "done") {
      status.textContent = `The ${kind} job is done. `;
      const link = document.createElement("a");
      link.href = `/jobs#job=${encodeURIComponent(job.id)}`;
      link.textContent = "open it on the jobs page";
      status.append(link);
      const container = document.getElementById("job-result");
      await drawResult(await plotly(), container, job);
      lab.jobsDrawn = (lab.jobsDrawn || 0) + 1;
      return;
    }
    if (job.state === "failed" || job.state === "cancelled") {
      status.textContent = `The ${kind} job ${job.state}: ${job.message}`;
      return;
    }
    status.textContent = `${kind} job ${job.state}: ${Math.round(100 * job.progress)}% ${job.message || ""}`;
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

document.getElementById("job-sweep").addEventListener("click", () => {
  const main = readSettings(form);
  const activation = main.activation;
  submit({ kind: "sweep", dataset: "spiral", depths: [1, 2, 3], widths: [2, 4, 8, 16], seeds: 2, steps: 1500, activation });
});
document.getElementById("job-spectrum").addEventListener("click", () => {
  if (!trained) return;
  showError(null);
  submit({ kind: "spectrum", config: trained.config, weights: trained.weights, k: 10, iterations: 80 });
});
document.getElementById("job-landscape").addEventListener("click", () => {
  if (!trained) return;
  submit({ kind: "landscape", config: trained.config, weights: trained.weights, directions: "hessian", resolution: 25, span: 1 });
});

// The live view: one of the nets the comparison trains (the widest of its depth within the
// largest budget: engine/depth.py width_for_budget), in the playground's engine.
function parameterCount(inputs, depth, width) {
  return (inputs + 1) * width + (depth - 1) * (width + 1) * width + width + 1;
}

attachLive(form, document.getElementById("live-view"), {
  label: "the live network's fit to the target: a surface over the input plane, or a curve for the 1-D sine",
  steps: () => readSettings(form).steps,
  choice: { label: "live net", options: [["1", "one hidden layer"], ["deep", "the deepest compared"]] },
  config: (which) => {
    const s = comparisonSettings();
    const inputs = s.target === "ripple_2d" ? 2 : 1;
    const budget = Math.max(...s.budgets.map(Number));
    if (!Number.isFinite(budget)) throw new Error("the parameter budgets must be numbers.");
    const depth = which === "deep" ? Math.max(1, ...s.depths) : 1;
    if (parameterCount(inputs, depth, 1) > budget) {
      throw new Error(`no net of ${depthName(depth)} fits within ${budget} parameters.`);
    }
    let width = 1;
    while (parameterCount(inputs, depth, width + 1) <= budget) width += 1;
    return engineConfig({
      model: {
        features: ["x1", "x2"].slice(0, inputs), output: { loss: "squared" }, seed: s.seed,
        layers: Array.from({ length: depth }, () => ({ units: width, activation: s.activation })),
      },
      training: { optimizer: "adam", learning_rate: s.learning_rate, batch_size: 50 },
      data: { name: s.target, size: 200, noise: 0 },
    });
  },
});
