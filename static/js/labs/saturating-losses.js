// Lab 3: softmax + NLL against softmax + squared error from the same confidently wrong start
// (section 6.3.2). The verdict counts the confidently wrong examples each run ends with.

import { fmt, loadPlotly, onPrediction, play, postJSON, readSettings, renderMath, setupPrediction, showVerdict } from "./common.js";
import { COLORS, CONFIG, LAYOUT, startLab } from "./plots.js";

renderMath();
const form = document.getElementById("predict");
const prediction = setupPrediction(form);
const lab = startLab();

onPrediction(form, prediction, lab, async (answer) => {
  const run = await postJSON("/api/labs/saturating-losses/run", readSettings(form), { onLargest: lab.setField });
  const Plotly = await loadPlotly(document.body.dataset.plotlyUrl);
  await play(run.snapshots, (snapshot) => draw(Plotly, run, snapshot));
  const o = run.outcome;
  const reason = o.answer === "same"
    ? "With this start the squared-error run escaped too: its confidently wrong examples were few or not confident enough for the vanishing factor p_y to stop them. Raise the initial weight scale to start more of them deep in the flat region."
    : o.answer === "squared"
      ? "Its gradient on a_y carries the factor p_y, about 0 for those examples, so they barely moved (the flat left end of the red curve); the NLL pushed each of them with about −1 until it was fixed."
      : "Unusually, the NLL run kept more of them: look at the dots to see where each run's examples sit.";
  showVerdict(answer === o.answer,
    `Both started with ${o.start_wrong} of ${o.size} examples confidently wrong. After training, the NLL run had ${o.nll_wrong} ` +
    `(accuracy ${fmt(100 * o.nll_accuracy, 3)}%) and the squared-error run ${o.squared_wrong} (accuracy ${fmt(100 * o.squared_accuracy, 3)}%). ${reason}`);
});

function draw(Plotly, run, snapshot) {
  Plotly.react("gradient-plot", [
    { x: run.curve.score, y: run.curve.nll, mode: "lines", name: "NLL: p_y − 1", line: { color: COLORS.blue, width: 2.5 } },
    { x: run.curve.score, y: run.curve.squared, mode: "lines", name: "squared error (Eq. 6.7)", line: { color: COLORS.accent, width: 2.5 } },
    { x: snapshot.nll.score, y: snapshot.nll.gradient, mode: "markers", name: "examples, NLL run", marker: { size: 5, color: "rgba(43, 108, 212, 0.45)" } },
    { x: snapshot.squared.score, y: snapshot.squared.gradient, mode: "markers", name: "examples, squared-error run", marker: { size: 5, symbol: "x", color: "rgba(214, 64, 42, 0.55)" } },
  ], { ...LAYOUT, xaxis: { title: { text: "a_y, the correct class's score" }, range: [-15, 15] }, yaxis: { title: { text: "∂L/∂a_y" }, range: [-1.1, 0.2] } }, CONFIG);
  const seen = run.snapshots.slice(0, run.snapshots.indexOf(snapshot) + 1);
  const last = run.snapshots[run.snapshots.length - 1].step;
  Plotly.react("wrong-plot", [
    { x: seen.map((s) => s.step), y: seen.map((s) => s.nll.wrong), mode: "lines+markers", name: "NLL", line: { color: COLORS.blue } },
    { x: seen.map((s) => s.step), y: seen.map((s) => s.squared.wrong), mode: "lines+markers", name: "squared error", line: { color: COLORS.accent } },
  ], { ...LAYOUT, xaxis: { title: { text: "step" }, range: [0, last] }, yaxis: { title: { text: "examples with p_y < 0.05" }, rangemode: "tozero" } }, CONFIG);
  lab.drawn(snapshot.step);
}
