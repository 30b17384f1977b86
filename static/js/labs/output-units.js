// Lab 4: output units as conditional distributions (section 6.3.2). Each unit asks its own
// question; the run's outcome, measured on the trained network, decides the verdict.

import { fmt, loadPlotly, onPrediction, play, postJSON, readSettings, renderMath, setupPrediction, showVerdict } from "./common.js";
import { COLORS, CONFIG, LAYOUT, startLab } from "./plots.js";
import { attachLive, engineConfig } from "./live.js";

const QUESTIONS = {
  bernoulli: {
    text: "Far to the right, about 95% of the examples have y = 1. What will σ(z) settle near there?",
    choices: [["one", "1: it learns to be certain"], ["frequency", "about 0.95, the share of y = 1 there"], ["half", "½: it cannot tell"]],
    caption: "Points: examples (y = 0 or 1). Blue: the learned P(y = 1 | x) = σ(z). Dashed: the true probability the data were drawn from.",
  },
  softmax: {
    text: "Where will the network be least sure of the class (its three probabilities most even)?",
    choices: [["edges", "At the far left and right edges"], ["boundaries", "Where two classes are about equally likely"], ["middles", "In the middle of each class's region"]],
    caption: "Lines: the learned P(y = k | x), one colour per class; dashed: the true probabilities. Points at the bottom: the examples, one row per class.",
  },
  gaussian_learned: {
    text: "The targets spread out more and more from left to right. Where will the learned precision β(x) be largest?",
    choices: [["left", "On the left"], ["right", "On the right"], ["same", "About the same everywhere"]],
    caption: "Blue: the learned mean μ(x); the band is μ ± 2/√β(x), which holds about 95% of a Gaussian.",
  },
  mixture: {
    text: "At x = 0 the data have three branches. How many of the mixture's components will carry a weight above 0.15 there?",
    choices: [["1", "One"], ["2", "Two"], ["3", "Three or more"]],
    caption: "Each component's mean μ_i(x) with a band of ±1/√β_i(x), drawn more opaque where its weight p(c = i | x) is larger.",
  },
};

renderMath();
const form = document.getElementById("predict");
const prediction = setupPrediction(form);
const lab = startLab();
const unitInputs = [...form.querySelectorAll('input[name="unit"]')];

function unit() {
  return unitInputs.find((input) => input.checked).value;
}

function showQuestion() {
  const question = QUESTIONS[unit()];
  document.getElementById("question-text").textContent = question.text;
  const choices = document.getElementById("choices");
  choices.replaceChildren(...question.choices.map(([value, text]) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "prediction";
    input.value = value;
    label.append(input, ` ${text}`);
    return label;
  }));
  document.getElementById("main-caption").textContent = question.caption;
  for (const field of form.querySelectorAll("[data-for-unit]")) field.hidden = field.dataset.forUnit !== unit();
  prediction.reset();
}
for (const input of unitInputs) input.addEventListener("change", showQuestion);
showQuestion();

onPrediction(form, prediction, lab, async (answer) => {
  const run = await postJSON("/api/labs/output-units/run", readSettings(form), { onLargest: lab.setField });
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  await play(run.snapshots, (snapshot) => draw(Plotly, run, snapshot));
  showVerdict(answer === run.outcome.answer, explain(run.outcome));
});

function explain(o) {
  if (o.unit === "bernoulli") {
    return `On the right the network's σ(z) averaged ${fmt(o.learned)}; the true share of y = 1 there is ${fmt(o.frequency)}. ` +
      "Maximum likelihood makes σ(z) estimate P(y = 1 | x), not the most common label: pushing it to 1 would make every y = 0 example there infinitely unlikely.";
  }
  if (o.unit === "softmax") {
    return `The probabilities were most even at x = ${fmt(o.least_sure_at, 2)}; the true class boundaries lie at ${o.boundaries.map((b) => fmt(b, 2)).join(" and ")}. ` +
      "The softmax's outputs estimate each class's probability given x, so they are most even where the classes are most mixed.";
  }
  if (o.unit === "gaussian_learned") {
    return `β(x) peaked at x = ${fmt(o.largest_precision_at, 2)}, ${fmt(o.ratio, 3)} times its smallest value. ` +
      "The loss ½β(y − μ)² − ½ log β is smallest at β = 1/(y − μ)², so the precision grows where the targets hug the mean and shrinks where they spread.";
  }
  const clip = o.clipped_steps ? ` Clipping shortened ${o.clipped_steps} of the steps' gradients (the largest norm was ${fmt(o.largest_gradient_norm)}).` : ` The largest gradient norm was ${fmt(o.largest_gradient_norm)}.`;
  return `At x = 0, ${o.carried} component(s) carried a weight above 0.15 (weights ${o.middle_weights.map((w) => fmt(w, 2)).join(", ")}). ` +
    "Each branch of the data needs a component of its own; a single Gaussian would put its mean between the branches, where there are no data." + clip;
}

function draw(Plotly, run, snapshot) {
  const x = run.grid;
  const layout = { ...LAYOUT, xaxis: { title: { text: "x" } } };
  const points = { x: run.train.x, y: run.train.y, mode: "markers", name: "examples", marker: { size: 4, color: COLORS.points } };
  let main = [];
  let side = [];
  let sideLayout = { ...layout };
  const seen = run.snapshots.slice(0, run.snapshots.indexOf(snapshot) + 1);
  const lossCurve = { x: seen.map((s) => s.step), y: seen.map((s) => s.loss), mode: "lines+markers", name: "training loss −log p(y | x)", line: { color: COLORS.blue } };
  if (run.unit === "bernoulli") {
    main = [points,
      { x, y: run.truth.probability, mode: "lines", name: "true P(y = 1 | x)", line: { color: COLORS.grey, dash: "dash" } },
      { x, y: snapshot.probability, mode: "lines", name: "σ(z)", line: { color: COLORS.blue, width: 2.5 } }];
    side = [lossCurve];
    sideLayout = { ...layout, xaxis: { title: { text: "step" } }, yaxis: { title: { text: "loss" } } };
  } else if (run.unit === "softmax") {
    main = [0, 1, 2].flatMap((k) => [
      { x, y: run.truth.probabilities[k], mode: "lines", name: `true P(y = ${k})`, line: { color: COLORS.series[k], dash: "dash", width: 1 } },
      { x, y: snapshot.probabilities[k], mode: "lines", name: `P(y = ${k} | x)`, line: { color: COLORS.series[k], width: 2.5 } },
    ]);
    main.push({ x: run.train.x, y: run.train.y.map((k) => -0.06 - 0.04 * k), mode: "markers", name: "examples", marker: { size: 3, color: run.train.y.map((k) => COLORS.series[k]) } });
    side = [lossCurve];
    sideLayout = { ...layout, xaxis: { title: { text: "step" } }, yaxis: { title: { text: "loss" } } };
  } else if (run.unit === "gaussian_learned") {
    const upper = snapshot.mean.map((m, i) => m + 2 * snapshot.spread[i]);
    const lower = snapshot.mean.map((m, i) => m - 2 * snapshot.spread[i]);
    main = [points,
      { x, y: lower, mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
      { x, y: upper, mode: "lines", fill: "tonexty", fillcolor: "rgba(43, 108, 212, 0.18)", line: { width: 0 }, name: "μ ± 2σ" },
      { x, y: snapshot.mean, mode: "lines", name: "μ(x)", line: { color: COLORS.blue, width: 2.5 } }];
    side = [{ x, y: snapshot.precision, mode: "lines", name: "β(x)", line: { color: COLORS.accent, width: 2.5 } }];
    sideLayout = { ...layout, yaxis: { title: { text: "precision β(x)" }, type: "log" } };
  } else {
    main = [points];
    snapshot.means.forEach((mean, i) => {
      const weight = snapshot.weights[i];
      const colour = COLORS.series[i % COLORS.series.length];
      const averageWeight = weight.reduce((a, b) => a + b, 0) / weight.length;
      main.push(
        { x, y: mean.map((m, j) => m - snapshot.spreads[i][j]), mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
        { x, y: mean.map((m, j) => m + snapshot.spreads[i][j]), mode: "lines", fill: "tonexty", fillcolor: rgba(colour, 0.08 + 0.3 * averageWeight), line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
        { x, y: mean, mode: "markers", name: `μ${i + 1}(x)`, marker: { size: 4, color: weight.map((w) => rgba(colour, 0.1 + 0.9 * w)) } },
      );
    });
    side = snapshot.weights.map((weight, i) => ({ x, y: weight, mode: "lines", name: `p(c = ${i + 1} | x)`, line: { color: COLORS.series[i % COLORS.series.length], width: 2 } }));
    sideLayout = { ...layout, yaxis: { title: { text: "mixture weight" }, range: [0, 1] } };
  }
  Plotly.react("main-plot", main, { ...layout, yaxis: { title: { text: run.unit === "bernoulli" || run.unit === "softmax" ? "probability" : "y" } } }, CONFIG);
  Plotly.react("side-plot", side, sideLayout, CONFIG);
  document.getElementById("side-title").textContent = run.unit === "gaussian_learned" ? "The learned precision β(x)"
    : run.unit === "mixture" ? "The mixture's weights" : "Training loss";
  document.getElementById("side-caption").textContent = run.unit === "gaussian_learned"
    ? "The learned precision β(x) = ζ(a) on a log scale: large where the network is sure."
    : run.unit === "mixture" ? "Each component's weight p(c = i | x): the softmax's share of the examples at each x." : "The training loss against steps.";
  lab.drawn(snapshot.step);
}

function rgba(hex, alpha) {
  const value = parseInt(hex.slice(1), 16);
  return `rgba(${value >> 16}, ${(value >> 8) & 255}, ${value & 255}, ${Math.min(1, alpha).toFixed(3)})`;
}

// The live view: the chosen output unit in the playground's engine. The Gaussian with learned
// precision and the mixture train on the lab's own data sets; the lab's Bernoulli and softmax
// data are 1-D classes, which the engine's data sets do not offer, so those two train on
// 2-D data (moons; the three-armed spiral) where the surface shows p(y | x).
attachLive(form, document.getElementById("live-view"), {
  label: "the live network's prediction: p(y | x) over the inputs, or the mean and spread of y against x",
  steps: () => readSettings(form).steps,
  config: () => {
    const s = readSettings(form);
    const layers = [{ units: s.hidden === undefined ? 16 : s.hidden, activation: "tanh" }];
    const training = { optimizer: "adam", learning_rate: s.learning_rate, batch_size: 20 };
    if (s.unit === "bernoulli") {
      return engineConfig({ model: { layers, output: { loss: "bernoulli" } }, training, data: { name: "moons", size: 400, noise: 0.1 } });
    }
    if (s.unit === "softmax") {
      return engineConfig({
        model: { layers, output: { loss: "softmax" } }, training,
        data: { name: "spiral_multiclass", classes: 3, size: 400, noise: 0.1 },
      });
    }
    const mixture = s.unit === "mixture";
    return engineConfig({
      model: { features: ["x1"], layers, output: { loss: s.unit, components: mixture ? s.components : 3 } },
      training: { ...training, clip_norm: mixture && s.clip ? s.clip_norm : 0 },
      data: { name: mixture ? "inverse_sine" : "heteroscedastic_1d", size: 400, noise: mixture ? 0 : 0.3, train_fraction: 0.75 },
    });
  },
});
