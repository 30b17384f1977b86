// Lab 5: hidden units. The server trains one net and returns snapshots (region map or
// prediction surface, dead and saturated units); the page animates them on a canvas and
// judges the learner's region-count prediction from the last one.

import { fmt, loadPlotly, onPrediction, play, postJSON, readSettings, renderMath, setupPrediction, showVerdict } from "./common.js";
import { COLORS, CONFIG, LAYOUT, startLab } from "./plots.js";
import { attachLive, engineConfig } from "./live.js";

renderMath();
const form = document.getElementById("predict");
const prediction = setupPrediction(form);
const lab = startLab();
const canvas = document.getElementById("region-map");
const SMOOTH = new Set(["sigmoid", "tanh", "softplus", "rbf"]);

/** A region id's colour: hues spread by the golden angle so neighbours differ. */
function regionColour(id) {
  const hue = (id * 137.508) % 360;
  const light = 62 + 14 * ((id * 7) % 3) / 2;
  return hslToRgb(hue / 360, 0.55, light / 100);
}

function hslToRgb(h, s, l) {
  const f = (n) => {
    const k = (n + h * 12) % 12;
    const a = s * Math.min(l, 1 - l);
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** P(y = 1 | x) as a blue-white-orange colour. */
function probabilityColour(p) {
  const low = [43, 108, 212];
  const high = [214, 110, 42];
  const t = Math.abs(p - 0.5) * 2;
  const end = p < 0.5 ? low : high;
  return end.map((c) => Math.round(255 + (c - 255) * t));
}

function drawMap(run, frame) {
  const n = run.resolution;
  const image = new ImageData(n, n);
  const cells = frame.regions ?? frame.surface;
  for (let row = 0; row < n; row += 1) {
    for (let col = 0; col < n; col += 1) {
      // the server's rows run from the lowest x2 upwards; the canvas draws top down
      const value = cells[row * n + col];
      const rgb = frame.regions ? regionColour(value) : probabilityColour(value);
      const at = 4 * ((n - 1 - row) * n + col);
      image.data[at] = rgb[0];
      image.data[at + 1] = rgb[1];
      image.data[at + 2] = rgb[2];
      image.data[at + 3] = 255;
    }
  }
  const context = canvas.getContext("2d");
  const scratch = new OffscreenCanvas(n, n);
  scratch.getContext("2d").putImageData(image, 0, 0);
  context.imageSmoothingEnabled = false;
  context.drawImage(scratch, 0, 0, canvas.width, canvas.height);
  const [[x0, x1], [y0, y1]] = run.extent;
  const px = (x) => ((x - x0) / (x1 - x0)) * canvas.width;
  const py = (y) => canvas.height - ((y - y0) / (y1 - y0)) * canvas.height;
  run.points.x.forEach(([x, y], i) => {
    context.beginPath();
    context.arc(px(x), py(y), 3, 0, 2 * Math.PI);
    context.fillStyle = run.points.y[i] > 0.5 ? "#fff" : "#222";
    context.strokeStyle = run.points.y[i] > 0.5 ? "#222" : "#fff";
    context.lineWidth = 1;
    context.fill();
    context.stroke();
  });
  const templates = run.units_detail.rbf_templates;
  if (templates) {
    context.strokeStyle = "#8a4fc7";
    context.lineWidth = 2;
    templates.centres.forEach(([x, y], i) => {
      const radius = (templates.widths[i] / (x1 - x0)) * canvas.width;
      context.beginPath();
      context.arc(px(x), py(y), Math.max(2, radius), 0, 2 * Math.PI);
      context.stroke();
    });
  }
  document.getElementById("readout-step").textContent = frame.step;
  document.getElementById("readout-regions").textContent = frame.region_count ?? "none";
  document.getElementById("readout-bound").textContent = run.shallow_bound ?? "–";
  document.getElementById("readout-accuracy").textContent = fmt(frame.test_accuracy);
  lab.drawn(frame.step);
  lab.regionCount = frame.region_count;
}

function deadTotal(frame) {
  return frame.layers.reduce((sum, layer) => sum + layer.dead.length, 0);
}

function saturatedTotal(frame) {
  return frame.layers.reduce((sum, layer) => sum + layer.saturated.length, 0);
}

function drawUnits(Plotly, run, upTo) {
  const seen = run.frames.slice(0, upTo + 1);
  const steps = seen.map((f) => f.step);
  Plotly.react("units-plot", [
    { x: steps, y: seen.map(deadTotal), mode: "lines+markers", name: "dead units", line: { color: COLORS.accent } },
    { x: steps, y: seen.map(saturatedTotal), mode: "lines+markers", name: "saturated units", line: { color: COLORS.series[3] } },
    { x: steps, y: seen.map((f) => f.test_accuracy), mode: "lines", name: "test accuracy", yaxis: "y2", line: { color: COLORS.green, dash: "dot" } },
  ], {
    ...LAYOUT,
    xaxis: { title: { text: "step" }, range: [0, run.frames[run.frames.length - 1].step || 1] },
    yaxis: { title: { text: "units" }, rangemode: "tozero", range: [0, run.units + 0.5] },
    yaxis2: { title: { text: "accuracy" }, overlaying: "y", side: "right", range: [0, 1] },
  }, CONFIG);
  const table = document.getElementById("unit-table");
  const last = seen[seen.length - 1];
  table.replaceChildren();
  const head = table.insertRow();
  for (const label of ["layer", "units", "dead", "saturated", "on (share of inputs × units)"]) {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = label;
    head.append(cell);
  }
  last.layers.forEach((layer, i) => {
    const row = table.insertRow();
    for (const value of [i + 1, layer.units, layer.dead.length, layer.saturated.length, fmt(layer.active_fraction, 2)]) {
      row.insertCell().textContent = value;
    }
  });
}

function drawDetail(Plotly, run) {
  const detail = run.units_detail;
  const caption = document.getElementById("detail-caption");
  if (detail.prelu_slopes) {
    const traces = detail.prelu_slopes.map((slopes, layer) => ({
      x: slopes.map((_, j) => `unit ${j + 1}`), y: slopes, type: "bar", name: `layer ${layer + 1}`,
      marker: { color: COLORS.series[layer % COLORS.series.length] },
    }));
    Plotly.react("detail-plot", traces, { ...LAYOUT, yaxis: { title: { text: "learned α" } } }, CONFIG);
    caption.textContent = `Each PReLU unit's negative slope α after training; all started at ${fmt(readSettings(form).slope)}.`;
  } else if (detail.maxout_share) {
    const first = detail.maxout_share[0];
    const pieces = first[0].length;
    const traces = [];
    for (let piece = 0; piece < pieces; piece += 1) {
      traces.push({
        x: first.map((_, j) => `unit ${j + 1}`), y: first.map((shares) => shares[piece]), type: "bar",
        name: `piece ${piece + 1}`, marker: { color: COLORS.series[piece % COLORS.series.length] },
      });
    }
    Plotly.react("detail-plot", traces, { ...LAYOUT, barmode: "stack", yaxis: { title: { text: "share of inputs it wins" }, range: [0, 1] } }, CONFIG);
    caption.textContent = "For each maxout unit of the first layer, the share of training inputs on which each of its linear pieces is the largest: a unit whose pieces all win somewhere bends there.";
  } else if (detail.rbf_templates) {
    const t = detail.rbf_templates;
    Plotly.react("detail-plot", [
      { x: run.points.x.map((p) => p[0]), y: run.points.x.map((p) => p[1]), mode: "markers", name: "training points", marker: { size: 4, color: COLORS.points } },
      { x: t.centres.map((c) => c[0]), y: t.centres.map((c) => c[1]), mode: "markers+text", name: "templates w_i", text: t.widths.map((w) => `σ=${fmt(w, 2)}`), textposition: "top center", marker: { size: 11, symbol: "x", color: COLORS.series[3] } },
    ], { ...LAYOUT, xaxis: { title: { text: "x₁" } }, yaxis: { title: { text: "x₂" }, scaleanchor: "x" } }, CONFIG);
    caption.textContent = "The first layer's RBF templates w_i in the input plane, with their learned widths σ_i (also drawn as purple circles on the map).";
  } else {
    drawShape(Plotly, readSettings(form));
  }
}

/** φ(a) and φ'(a) of the chosen unit: where its slope vanishes is where it dies or saturates. */
function drawShape(Plotly, settings) {
  const kind = settings.activation;
  const slope = Number(settings.slope) || 0;
  const sigmoid = (a) => 1 / (1 + Math.exp(-a));
  const shapes = {
    relu: [(a) => Math.max(0, a), (a) => (a > 0 ? 1 : 0)],
    leaky_relu: [(a) => (a > 0 ? a : slope * a), (a) => (a > 0 ? 1 : slope)],
    prelu: [(a) => (a > 0 ? a : slope * a), (a) => (a > 0 ? 1 : slope)],
    abs: [(a) => Math.abs(a), (a) => Math.sign(a)],
    hard_tanh: [(a) => Math.max(-1, Math.min(1, a)), (a) => (Math.abs(a) < 1 ? 1 : 0)],
    sigmoid: [sigmoid, (a) => sigmoid(a) * (1 - sigmoid(a))],
    tanh: [Math.tanh, (a) => 1 - Math.tanh(a) ** 2],
    softplus: [(a) => Math.log1p(Math.exp(a)), sigmoid],
    linear: [(a) => a, () => 1],
  };
  const caption = document.getElementById("detail-caption");
  const shape = shapes[kind];
  if (!shape) return;
  const a = Array.from({ length: 161 }, (_, i) => -4 + i * 0.05);
  Plotly.react("detail-plot", [
    { x: a, y: a.map(shape[0]), mode: "lines", name: "φ(a)", line: { color: COLORS.blue, width: 2.5 } },
    { x: a, y: a.map(shape[1]), mode: "lines", name: "φ′(a)", line: { color: COLORS.accent, dash: "dash" } },
  ], { ...LAYOUT, xaxis: { title: { text: "pre-activation a" } }, yaxis: { title: { text: "φ" }, range: [-1.2, 2.2] } }, CONFIG);
  caption.textContent = "The unit φ(a) and its slope φ′(a): back-propagation multiplies the gradient by φ′(a), so where it is 0 the unit learns nothing from that input.";
}

/** What the run says about dead units and random features, for the end of the verdict. */
function postscript(run, settings) {
  const first = run.frames[0];
  const last = run.frames[run.frames.length - 1];
  let text = ` Dead units: ${deadTotal(first)} of ${run.units} at the start, ${deadTotal(last)} at the end`;
  text += settings.bias === null ? " (engine's starting biases)." : ` (every hidden bias started at ${settings.bias}).`;
  if (!settings.train_hidden) {
    text += ` Only the output layer learned, on random ${settings.activation} features: test accuracy ${fmt(last.test_accuracy)}.`;
  }
  return text;
}

function judge(answer, run, settings) {
  const last = run.frames[run.frames.length - 1];
  const count = last.region_count;
  const bound = run.shallow_bound;
  const activation = readSettings(form).activation;
  if (count === null) {
    const held = answer === "none";
    showVerdict(held, `${activation} units are smooth: the net bends everywhere, so no two nearby inputs share one linear map and there are no regions to count. The map shows P(y = 1 | x) instead.${postscript(run, settings)}`);
    return;
  }
  const actual = count < bound ? "fewer" : count === bound ? "equal" : "more";
  const units = run.units;
  let why;
  why = `The map has ${count} regions (counted on a ${run.count_resolution}² grid); ${units} units in one layer make at most ${bound} (1 + L + L(L−1)/2 for L kink lines in general position${activation === "maxout" ? ", counting every pair of a maxout unit's pieces as a line" : ""}). `;
  if (last.arrangement) {
    const a = last.arrangement;
    why += `Here ${a.lines} kink lines cross the window and ${a.crossings} of their crossings lie inside it, so the geometry allows 1 + ${a.lines} + ${a.crossings} = ${a.regions}: a one-layer net reaches the bound only when every pair of lines crosses inside the window.`;
  } else if (actual === "more") {
    why += "Later layers fold the regions the first one makes, so a deeper net can exceed what its units could make side by side.";
  } else {
    why += "Depth can multiply regions, but training does not have to use that: here the later layers folded few of the first layer's regions.";
  }
  showVerdict(answer === actual, why + postscript(run, settings));
}

onPrediction(form, prediction, lab, async (answer) => {
  const settings = readSettings(form);
  const bias = document.getElementById("bias").value;
  settings.bias = bias === "default" ? null : Number(bias);
  const run = await postJSON("/api/labs/hidden-units/run", settings, { onLargest: lab.setField });
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  document.getElementById("map-title").textContent = run.regions_reason
    ? "P(y = 1 | x) over the input plane (smooth units: no linear regions)"
    : "Linear regions of the input plane";
  document.getElementById("map-caption").textContent = run.regions_reason
    ? "Blue: the net says class 0; orange: class 1; white: undecided. Dots: training points of class 0 (dark) and 1 (white)."
    : "Each colour is one activation pattern: one linear piece of the net. Dots: training points of class 0 (dark) and 1 (white).";
  drawDetail(Plotly, run);
  await play(run.frames, (frame, index) => {
    drawMap(run, frame);
    drawUnits(Plotly, run, index);
  }, 4);
  judge(answer, run, settings);
});

// ----- the sawtooth: regions from depth -------------------------------------------------
const slider = document.getElementById("sawtooth-depth");
let sawtoothRequest = 0;
async function drawSawtooth() {
  const request = ++sawtoothRequest;
  const depth = Number(slider.value);
  let run;
  try {
    run = await postJSON("/api/labs/hidden-units/sawtooth", { depth, points: 1024 });
  } catch (error) {
    return;
  }
  if (request !== sawtoothRequest) return;
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  const traces = [];
  let start = 0;
  for (let i = 1; i <= run.x.length; i += 1) {
    if (i === run.x.length || run.regions[i] !== run.regions[start]) {
      const [r, g, b] = regionColour(run.regions[start]);
      traces.push({
        x: run.x.slice(start, i), y: run.y.slice(start, i), mode: "lines", showlegend: false,
        hoverinfo: "x+y", line: { color: `rgb(${r},${g},${b})`, width: 3 },
      });
      start = i;
    }
  }
  Plotly.react("sawtooth-plot", traces, { ...LAYOUT, xaxis: { title: { text: "x" } }, yaxis: { title: { text: "f(x)" }, range: [-0.05, 1.05] } }, CONFIG);
  slider.setAttribute("aria-valuetext", `${depth} layers`);
  document.getElementById("sawtooth-readout").textContent =
    `${depth} layer${depth > 1 ? "s" : ""}, ${run.units} units: ${run.count} regions; one layer of ${run.units} units: at most ${run.shallow_bound}`;
}
slider.addEventListener("input", drawSawtooth);
drawSawtooth();

document.getElementById("activation").addEventListener("change", async (event) => {
  lab.activation = event.target.value;
  lab.smooth = SMOOTH.has(event.target.value);
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  drawShape(Plotly, readSettings(form));
});
loadPlotly(document.body.dataset.plotlyUrl).then((Plotly) => drawShape(Plotly, readSettings(form)));

// The live view: the chosen hidden unit, depth and width on the chosen data set, as the
// playground trains it (a Bernoulli output, like the lab's net).
attachLive(form, document.getElementById("live-view"), {
  label: "the live network's decision surface p(y = 1 | x) over the input plane, with the data",
  steps: () => readSettings(form).steps,
  config: () => {
    const s = readSettings(form);
    const layer = { units: s.width, activation: s.activation, slope: s.slope, pieces: s.pieces };
    return engineConfig({
      model: { layers: Array.from({ length: Number(s.depth) || 1 }, () => ({ ...layer })), output: { loss: "bernoulli" } },
      training: { optimizer: s.optimizer, learning_rate: s.learning_rate, batch_size: 20 },
      data: { name: s.dataset, size: 300, noise: 0.1 },
    });
  },
});
