// Lab 6: back-propagating through y = μ + σz. The server runs the three estimators many
// times at sample counts 2, 4, 8, ...; the page reveals the counts one by one and judges
// which estimate landed closest to the exact gradient at the largest count.

import { fmt, loadPlotly, onPrediction, play, postJSON, readSettings, renderMath, setupPrediction, showVerdict } from "./common.js";
import { COLORS, CONFIG, LAYOUT, startLab } from "./plots.js";

renderMath();
const form = document.getElementById("predict");
const prediction = setupPrediction(form);
const lab = startLab();

const NAMES = {
  reparametrised: "reparametrised",
  reinforce: "REINFORCE",
  reinforce_baseline: "REINFORCE + baseline",
};
const COLOUR = {
  reparametrised: COLORS.blue,
  reinforce: COLORS.accent,
  reinforce_baseline: COLORS.green,
};

function translucent(hex, alpha) {
  const value = parseInt(hex.slice(1), 16);
  return `rgba(${value >> 16}, ${(value >> 8) & 255}, ${value & 255}, ${alpha})`;
}

/** Traces for parameter `which` (0: μ, 1: σ) over the first `upTo` + 1 sample counts. */
function estimateTraces(run, which, upTo) {
  const counts = run.counts.slice(0, upTo + 1);
  const traces = [];
  for (const [name, curve] of Object.entries(run.estimators)) {
    const mean = curve.mean.slice(0, upTo + 1).map((m) => m[which]);
    const std = curve.std.slice(0, upTo + 1).map((s) => s[which]);
    traces.push({
      x: [...counts, ...counts.slice().reverse()],
      y: [...mean.map((m, i) => m + std[i]), ...mean.map((m, i) => m - std[i]).reverse()],
      fill: "toself", fillcolor: translucent(COLOUR[name], 0.13), line: { width: 0 },
      hoverinfo: "skip", showlegend: false, name: `${NAMES[name]} ± 1 sd`,
    });
    traces.push({ x: counts, y: mean, mode: "lines+markers", name: NAMES[name], line: { color: COLOUR[name], width: 2 }, marker: { size: 5 } });
  }
  traces.push({
    x: [run.counts[0], run.counts[run.counts.length - 1]], y: [run.exact[which], run.exact[which]],
    mode: "lines", name: "exact", line: { color: "#222", dash: "dash", width: 1.5 },
  });
  return traces;
}

function yRange(run, which) {
  // wide enough for the smallest count's bands of the two well-behaved estimators and the exact value
  const values = [run.exact[which]];
  for (const name of ["reparametrised", "reinforce_baseline"]) {
    const curve = run.estimators[name];
    values.push(curve.mean[0][which] + curve.std[0][which], curve.mean[0][which] - curve.std[0][which]);
  }
  const low = Math.min(...values);
  const high = Math.max(...values);
  const pad = 0.15 * Math.max(high - low, 0.2);
  return [low - pad, high + pad];
}

function draw(Plotly, run, index) {
  const axis = { title: { text: "samples n" }, type: "log", range: [Math.log10(1.5), Math.log10(run.counts[run.counts.length - 1] * 1.3)] };
  Plotly.react("mu-plot", estimateTraces(run, 0, index), { ...LAYOUT, xaxis: axis, yaxis: { title: { text: "∂E[J]/∂μ" }, range: yRange(run, 0) } }, CONFIG);
  Plotly.react("sigma-plot", estimateTraces(run, 1, index), { ...LAYOUT, xaxis: axis, yaxis: { title: { text: "∂E[J]/∂σ" }, range: yRange(run, 1) } }, CONFIG);
  const counts = run.counts.slice(0, index + 1);
  // a spread of 0 (the same value every time) has no place on a log axis: it is left out
  // and the legend says so
  const spread = Object.entries(run.estimators).map(([name, curve]) => {
    const values = curve.std.slice(0, index + 1).map((s) => (s[0] > 1e-12 ? s[0] : null));
    const constant = values.every((value) => value === null);
    return {
      x: counts, y: values, mode: "lines+markers", line: { color: COLOUR[name] },
      name: constant ? `${NAMES[name]} (spread 0: the same value every time)` : NAMES[name],
    };
  });
  const first = run.estimators.reinforce.std[0][0];
  spread.push({
    x: run.counts, y: run.counts.map((n) => first * Math.sqrt(run.counts[0] / n)), mode: "lines",
    name: "∝ 1/√n", line: { color: COLORS.grey, dash: "dot" },
  });
  Plotly.react("spread-plot", spread, { ...LAYOUT, xaxis: axis, yaxis: { title: { text: "standard deviation" }, type: "log" } }, CONFIG);
  lab.drawn(run.counts[index]);
  document.getElementById("progress").textContent = `n = ${run.counts[index]} samples`;
  lab.shown = index + 1;
}

function drawCost(Plotly, run) {
  Plotly.react("cost-plot", [
    { x: run.curve.y, y: run.curve.cost, mode: "lines", name: "J(y)", line: { color: COLORS.blue, width: 2.5 } },
    { x: run.curve.y, y: run.curve.density, mode: "lines", name: "p(y)", yaxis: "y2", fill: "tozeroy", line: { color: COLORS.grey }, fillcolor: "rgba(123,133,144,0.15)" },
  ], {
    ...LAYOUT, xaxis: { title: { text: "y" } }, yaxis: { title: { text: "J(y)" } },
    yaxis2: { title: { text: "p(y)" }, overlaying: "y", side: "right", rangemode: "tozero" },
  }, CONFIG);
}

/** Root-mean-square error of one n-sample estimate of ∂/∂μ at the largest count. */
function rmse(run, name) {
  const curve = run.estimators[name];
  const last = curve.mean.length - 1;
  const bias = curve.mean[last][0] - run.exact[0];
  return Math.sqrt(bias * bias + curve.std[last][0] ** 2);
}

function judge(answer, run, cost) {
  const errors = Object.fromEntries(Object.keys(run.estimators).map((name) => [name, rmse(run, name)]));
  const best = Object.keys(errors).reduce((a, b) => (errors[a] <= errors[b] ? a : b));
  const n = run.counts[run.counts.length - 1];
  const list = Object.entries(errors).map(([name, e]) => `${NAMES[name]} ${fmt(e)}`).join(", ");
  let why = `With n = ${n} samples, the typical distance of one estimate from the exact ∂E[J]/∂μ = ${fmt(run.exact[0])} was: ${list}. `;
  if (cost === "step") {
    why += "The step cost is flat almost everywhere, so J′(y) = 0 on every sample and back-propagating through the sample always says 0: unbiased only where J is differentiable. REINFORCE never differentiates J, so it still finds the gradient.";
  } else if (best === "reparametrised") {
    why += "Back-propagating through the sample uses how J changes at each y, so every sample carries information about the slope; REINFORCE only correlates J's values with the noise, and even with a baseline that is noisier.";
  } else {
    why += "Here the cost's slope swings a lot across the samples, so the reparametrised samples vary more than REINFORCE's baseline-corrected ones.";
  }
  const gain = run.estimators.reinforce.std.at(-1)[0] / Math.max(run.estimators.reinforce_baseline.std.at(-1)[0], 1e-300);
  why += ` The baseline cut REINFORCE's spread by a factor of ${fmt(gain, 2)}.`;
  showVerdict(answer === best, why);
  lab.best = best;
}

onPrediction(form, prediction, lab, async (answer) => {
  const settings = readSettings(form);
  const run = await postJSON("/api/labs/random-operations/compare", settings, { onLargest: lab.setField });
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  drawCost(Plotly, run);
  await play(run.counts.map((_, i) => i), (index) => draw(Plotly, run, index), 5);
  judge(answer, run, settings.cost);
});
