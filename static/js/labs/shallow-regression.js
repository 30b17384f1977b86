// Lab 1: Example 6.1.1's shallow network. The server trains the learner's λ and λ = 0
// side by side; the page animates the snapshots and judges the prediction from the run.

import { fmt, loadPlotly, onPrediction, play, postJSON, readSettings, renderMath, setupPrediction, showVerdict } from "./common.js";
import { COLORS, LAYOUT, CONFIG, startLab } from "./plots.js";
import { attachLive, engineConfig } from "./live.js";

renderMath();
const form = document.getElementById("predict");
const prediction = setupPrediction(form);
const lab = startLab();

const WHY = {
  smoother: "The penalty pulls W and V towards 0: gentler sigmoid steps, scaled down, add up to a smoother curve that no longer chases the noise, so the training error rises.",
  closer: "Here the penalised run ended closer to the training points: a small penalty can steer gradient descent to a better fit, though usually it costs training error.",
  same: "At this λ the penalty is tiny beside the squared error: the weights and the fit barely move from the unpenalised run.",
};

onPrediction(form, prediction, lab, async (answer) => {
  const settings = readSettings(form);
  const run = await postJSON("/api/labs/shallow-regression/run", settings, { onLargest: lab.setField });
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  await play(run.snapshots, (snapshot) => draw(Plotly, run, snapshot, false));
  draw(Plotly, run, run.snapshots[run.snapshots.length - 1], true);
  const o = run.outcome;
  const sign = o.loss_change >= 0 ? "+" : "";
  showVerdict(answer === o.answer,
    `With λ = ${fmt(o.l2)} the training error ended at ${fmt(o.loss)} against ${fmt(o.reference_loss)} with λ = 0 (${sign}${Math.round(100 * o.loss_change)}%), ` +
    `and the weights' squared norm ‖ω‖² at ${fmt(o.weight_norm)} against ${fmt(o.reference_weight_norm)}. ${WHY[o.answer]}`);
});

function draw(Plotly, run, snapshot, final) {
  const fit = [
    { x: run.train.x, y: run.train.y, mode: "markers", name: "training points", marker: { size: 4, color: COLORS.points } },
    { x: run.grid, y: snapshot.fit, mode: "lines", name: "f(x), your λ", line: { color: COLORS.blue, width: 2.5 } },
  ];
  if (final) fit.push({ x: run.grid, y: run.reference_fit, mode: "lines", name: "f(x), λ = 0", line: { color: COLORS.grey, dash: "dash", width: 2 } });
  Plotly.react("fit-plot", fit, { ...LAYOUT, xaxis: { title: { text: "x" } }, yaxis: { title: { text: "y" }, range: [-2, 2] } }, CONFIG);
  const largest = Math.max(1e-9, ...snapshot.output_weights.map(Math.abs));
  const units = snapshot.units.map((curve, j) => ({
    x: run.grid, y: curve, mode: "lines", name: `h${j + 1}: V = ${fmt(snapshot.output_weights[j], 2)}`,
    line: { width: 1 + 3 * Math.abs(snapshot.output_weights[j]) / largest, color: COLORS.series[j % COLORS.series.length] },
  }));
  Plotly.react("units-plot", units, { ...LAYOUT, xaxis: { title: { text: "x" } }, yaxis: { title: { text: "h_j(x)" }, range: [0, 1] } }, CONFIG);
  const seen = run.snapshots.slice(0, run.snapshots.indexOf(snapshot) + 1);
  Plotly.react("loss-plot", [
    { x: seen.map((s) => s.step), y: seen.map((s) => s.loss), mode: "lines+markers", name: "training loss ½(f − y)²", line: { color: COLORS.blue } },
    { x: seen.map((s) => s.step), y: seen.map((s) => s.weight_norm), mode: "lines", name: "‖ω‖²", yaxis: "y2", line: { color: COLORS.accent } },
  ], {
    ...LAYOUT, xaxis: { title: { text: "step" }, range: [0, run.snapshots[run.snapshots.length - 1].step] },
    yaxis: { title: { text: "loss" }, type: "log" }, yaxis2: { title: { text: "‖ω‖²" }, overlaying: "y", side: "right" },
  }, CONFIG);
  lab.drawn(snapshot.step);
}

// The live view: Example 6.1.1's network (the playground's `example_6_1_1` preset) with the
// learner's hidden units, λ, learning rate and noise, trained in the playground's engine.
attachLive(form, document.getElementById("live-view"), {
  label: "the live network's fit f(x) over the training points",
  steps: () => readSettings(form).steps,
  config: () => {
    const s = readSettings(form);
    return engineConfig({
      model: { features: ["x1"], layers: [{ units: s.hidden, activation: "sigmoid" }], output: { loss: "squared" } },
      training: { optimizer: "sgd", learning_rate: s.learning_rate, batch_size: 10, l2: s.l2 },
      data: { name: "sine_1d", size: 200, noise: s.noise, train_fraction: 0.75 },
    });
  },
});
