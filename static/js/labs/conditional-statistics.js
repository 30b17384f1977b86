// Lab 2: squared against absolute error on skewed noise, beside the data's own binned mean
// and median (sections 6.2 and 6.3.2). The verdict comes from the trained fits.

import { fmt, loadPlotly, onPrediction, play, postJSON, readSettings, renderMath, setupPrediction, showVerdict } from "./common.js";
import { COLORS, CONFIG, LAYOUT, startLab } from "./plots.js";
import { attachLive, engineConfig } from "./live.js";

renderMath();
const form = document.getElementById("predict");
const prediction = setupPrediction(form);
const lab = startLab();

onPrediction(form, prediction, lab, async (answer) => {
  const run = await postJSON("/api/labs/conditional-statistics/run", readSettings(form), { onLargest: lab.setField });
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  await play(run.snapshots, (snapshot) => draw(Plotly, run, snapshot));
  const o = run.outcome;
  const sits = o.answer === "same" ? "The two fits ended within 0.02 of each other on average"
    : `The ${o.answer === "squared" ? "squared-error" : "absolute-error"} fit ended higher, by ${fmt(Math.abs(o.squared_above_absolute), 2)} on average`;
  showVerdict(answer === o.answer,
    `${sits}. Squared error's fit lies ${fmt(o.squared_to_mean, 2)} from the data's mean and ${fmt(o.squared_to_median, 2)} from its median; ` +
    `absolute error's lies ${fmt(o.absolute_to_mean, 2)} from the mean and ${fmt(o.absolute_to_median, 2)} from the median. ` +
    "One-sided noise drags the mean up with every large draw, while the median only counts how many points lie above and below, so the mean sits above the median and each loss follows its own statistic.");
});

function draw(Plotly, run, snapshot) {
  Plotly.react("fit-plot", [
    { x: run.train.x, y: run.train.y, mode: "markers", name: "training points", marker: { size: 4, color: COLORS.points } },
    { x: run.bins.centres, y: run.bins.mean, mode: "markers", name: "mean of y per bin", marker: { symbol: "square", size: 9, color: COLORS.blue, line: { color: "#fff", width: 1 } } },
    { x: run.bins.centres, y: run.bins.median, mode: "markers", name: "median of y per bin", marker: { symbol: "diamond", size: 10, color: COLORS.accent, line: { color: "#fff", width: 1 } } },
    { x: run.grid, y: snapshot.squared, mode: "lines", name: "fit, squared error", line: { color: COLORS.blue, width: 2.5 } },
    { x: run.grid, y: snapshot.absolute, mode: "lines", name: "fit, absolute error", line: { color: COLORS.accent, width: 2.5 } },
  ], { ...LAYOUT, xaxis: { title: { text: "x" } }, yaxis: { title: { text: "y" } } }, CONFIG);
  const gaps = gapsAt(run, snapshot);
  Plotly.react("gap-plot", [
    { x: ["to the mean", "to the median"], y: gaps.squared, type: "bar", name: "squared-error fit", marker: { color: COLORS.blue } },
    { x: ["to the mean", "to the median"], y: gaps.absolute, type: "bar", name: "absolute-error fit", marker: { color: COLORS.accent } },
  ], { ...LAYOUT, barmode: "group", yaxis: { title: { text: "mean distance" }, rangemode: "tozero" } }, CONFIG);
  lab.drawn(snapshot.step);
}

// distances at the bins' centres, the fits read off the grid by linear interpolation
function gapsAt(run, snapshot) {
  const at = (curve, x) => {
    const grid = run.grid;
    let i = Math.min(grid.length - 2, Math.max(0, Math.floor((x - grid[0]) / (grid[1] - grid[0]))));
    const t = (x - grid[i]) / (grid[i + 1] - grid[i]);
    return curve[i] * (1 - t) + curve[i + 1] * t;
  };
  const gap = (curve, statistic) => {
    let total = 0;
    let count = 0;
    run.bins.centres.forEach((x, k) => {
      if (statistic[k] === null) return;
      total += Math.abs(at(curve, x) - statistic[k]);
      count += 1;
    });
    return count ? total / count : 0;
  };
  return {
    squared: [gap(snapshot.squared, run.bins.mean), gap(snapshot.squared, run.bins.median)],
    absolute: [gap(snapshot.absolute, run.bins.mean), gap(snapshot.absolute, run.bins.median)],
  };
}

// The live view: the `mean_median` preset's skewed data and net with the learner's settings,
// trained with the loss chosen in the panel (the lab trains both; the engine one at a time).
attachLive(form, document.getElementById("live-view"), {
  label: "the live network's fit over the skewed training points",
  steps: () => readSettings(form).steps,
  choice: { label: "live loss", options: [["absolute", "absolute error (median)"], ["squared", "squared error (mean)"]] },
  config: (loss) => {
    const s = readSettings(form);
    return engineConfig({
      model: { features: ["x1"], layers: [{ units: s.hidden, activation: "tanh" }], output: { loss: loss || "absolute" } },
      training: { optimizer: "adam", learning_rate: s.learning_rate, batch_size: 20 },
      data: { name: "skewed_1d", size: s.size, noise: s.noise, train_fraction: 0.75 },
    });
  },
});
