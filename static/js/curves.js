// Curves over training time: the loss L on the training and test sets, the accuracy, and
// the gradient norm ‖∇J‖ of each layer's parameters (log scale: the vanishing gradients of
// saturating units show as lines that fall apart).
//
// They grow every frame, so they are drawn on canvas (NOTES: Plotly.react costs 25-60 ms a
// plot here, and evaluating plotly.min.js blocks the page for over a second). "Explore"
// loads Plotly on demand and opens the same curves with its zoom and hover, redrawn with
// Plotly.react from typed arrays at most once a second, inside the page's animation frame.

import { PlotArea, LABEL_FONT, TITLE_FONT, FONT_FAMILY } from "./plotarea.js";

const LAYER_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4"];
const OUTPUT_COLOR = "#444";
const EXPLORER_MS = 1000;
const CURVES_MS = 250; // new points join the curves four times a second

class LinePlot {
  constructor(container, { title, log = false, yRange = null, xLabel = "epoch" }) {
    this.area = new PlotArea(container, { margin: { left: 38, right: 6, top: 16, bottom: 18 } });
    this.area.onResize = () => { this.dirty = true; };
    this.title = title;
    this.log = log;
    this.yRange = yRange;
    this.xLabel = xLabel;
    this.series = [];
    this.hoverX = null;
    this.dirty = true;
    const canvas = this.area.canvases[0];
    canvas.addEventListener("mousemove", (event) => {
      const rect = canvas.getBoundingClientRect();
      this.hoverX = this.area.xRange ? this.area.dataX(event.clientX - rect.left) : null;
      this.dirty = true;
    });
    canvas.addEventListener("mouseleave", () => { this.hoverX = null; this.dirty = true; });
  }

  set(series) {
    this.series = series;
    this.dirty = true;
  }

  draw() {
    if (!this.dirty) return false;
    if (!this.series.some((s) => s.x.length) && !this.drawn) return false; // no points yet
    this.dirty = false;
    this.drawn = true;
    const area = this.area;
    const ctx = area.contexts[0];
    area.clear(0);
    const series = this.series.filter((s) => s.x.length);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    const value = (v) => (this.log ? Math.log10(v) : v);
    for (const s of series) {
      x0 = Math.min(x0, s.x[0]);
      x1 = Math.max(x1, s.x[s.x.length - 1]);
      for (const v of s.y) {
        if (!Number.isFinite(v) || (this.log && v <= 0)) continue;
        y0 = Math.min(y0, value(v));
        y1 = Math.max(y1, value(v));
      }
    }
    if (!Number.isFinite(x0)) { x0 = 0; x1 = 1; }
    if (x1 <= x0) x1 = x0 + 1;
    if (this.yRange) [y0, y1] = this.yRange;
    else if (!Number.isFinite(y0)) { y0 = 0; y1 = 1; }
    else if (!this.log) { y0 = Math.min(0, y0); y1 = y1 + 0.05 * (y1 - y0 || 1); }
    else { const pad = 0.05 * (y1 - y0 || 1); y0 -= pad; y1 += pad; }
    area.setRanges([x0, x1], [y0, y1]);
    ctx.fillStyle = "#fbfbfb";
    const inner = area.inner;
    ctx.fillRect(inner.left, inner.top, inner.width, inner.height);
    this.drawAxes(ctx);
    ctx.save();
    ctx.beginPath();
    ctx.rect(inner.left, inner.top, inner.width, inner.height);
    ctx.clip();
    for (const s of series) {
      ctx.beginPath();
      let drawing = false;
      const step = Math.max(1, Math.floor(s.x.length / (inner.width * 2)));
      for (let i = 0; i < s.x.length; i += step) {
        const v = s.y[i];
        if (!Number.isFinite(v) || (this.log && v <= 0)) { drawing = false; continue; }
        const px = area.px(s.x[i]);
        const py = area.py(value(v));
        if (drawing) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        drawing = true;
      }
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.4;
      ctx.setLineDash(s.dash ? [3, 2] : []);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.restore();
    this.drawLegend(ctx, series);
    if (this.hoverX !== null && series.length) this.drawHover(ctx, series, value);
    return true;
  }

  drawAxes(ctx) {
    const area = this.area;
    const inner = area.inner;
    ctx.fillStyle = "#27313b";
    ctx.font = TITLE_FONT;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(this.title, 2, 1);
    ctx.font = LABEL_FONT;
    ctx.fillStyle = "#5b6570";
    ctx.strokeStyle = "#e3e7eb";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const yTicks = this.log ? logTicks(area.yRange[0], area.yRange[1]) : ticks(area.yRange[0], area.yRange[1], Math.max(2, inner.height / 28));
    for (const v of yTicks) {
      const y = Math.round(area.py(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(inner.left, y);
      ctx.lineTo(inner.left + inner.width, y);
      ctx.stroke();
      ctx.fillText(label(this.log ? 10 ** v : v), inner.left - 3, y);
    }
    // the x axis's name sits at the right end of the tick labels' row (inside the plot it
    // hid the curves' newest values); a tick label that would touch it is left out
    const labelRow = inner.top + inner.height + 3;
    const right = inner.left + inner.width;
    const nameLeft = right - ctx.measureText(this.xLabel).width - 6;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of ticks(area.xRange[0], area.xRange[1], Math.max(2, inner.width / 60))) {
      const text = label(v);
      const x = area.px(v);
      if (x + ctx.measureText(text).width / 2 < nameLeft) ctx.fillText(text, x, labelRow);
    }
    ctx.textAlign = "right";
    ctx.fillStyle = "#8a949e";
    ctx.fillText(this.xLabel, right, labelRow);
    ctx.strokeStyle = "#b9c1c9";
    ctx.strokeRect(inner.left + 0.5, inner.top + 0.5, inner.width - 1, inner.height - 1);
  }

  drawLegend(ctx, series) {
    ctx.font = LABEL_FONT;
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    let x = this.area.width - 4;
    for (let i = series.length - 1; i >= 0; i--) {
      const s = series[i];
      const width = ctx.measureText(s.name).width;
      x -= width;
      ctx.fillStyle = "#27313b";
      ctx.fillText(s.name, x, 2);
      ctx.fillStyle = s.color;
      ctx.fillRect(x - 12, 7, 10, 2);
      x -= 18;
    }
  }

  drawHover(ctx, series, value) {
    const area = this.area;
    const inner = area.inner;
    const lines = [];
    let at = null;
    for (const s of series) {
      const i = nearest(s.x, this.hoverX);
      if (i < 0) continue;
      at = s.x[i];
      lines.push([s.color, `${s.name}: ${format(s.y[i])}`]);
    }
    if (at === null) return;
    const px = area.px(at);
    ctx.strokeStyle = "rgba(0,0,0,0.35)";
    ctx.beginPath();
    ctx.moveTo(px + 0.5, inner.top);
    ctx.lineTo(px + 0.5, inner.top + inner.height);
    ctx.stroke();
    ctx.font = LABEL_FONT;
    const header = `${this.xLabel} ${label(at)}`;
    const width = Math.max(ctx.measureText(header).width, ...lines.map(([, t]) => ctx.measureText(t).width)) + 10;
    const height = 13 * (lines.length + 1) + 4;
    const left = px + width + 8 > inner.left + inner.width ? px - width - 6 : px + 6;
    ctx.fillStyle = "rgba(33,38,44,0.88)";
    ctx.fillRect(left, inner.top + 2, width, height);
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#fff";
    ctx.fillText(header, left + 5, inner.top + 4);
    lines.forEach(([color, text], k) => {
      ctx.fillStyle = color === OUTPUT_COLOR ? "#ddd" : color;
      ctx.fillText(text, left + 5, inner.top + 4 + 13 * (k + 1));
    });
  }
}

export class CurvesView {
  constructor({ loss, accuracy, norms, explore = null, dialog = null, plotlyUrl = null }) {
    this.loss = new LinePlot(loss, { title: "loss L = −log p(y | x), mean" });
    this.accuracy = new LinePlot(accuracy, { title: "accuracy", yRange: [0, 1.02] });
    this.norms = new LinePlot(norms, { title: "gradient norm ‖∇J‖ per layer", log: true, xLabel: "step" });
    this.version = -1;
    this.task = "binary";
    this.dialog = dialog;
    this.plotlyUrl = plotlyUrl;
    this.explorer = null;
    this.explorerDrawn = 0;
    this.explorerVersion = -1;
    if (explore) explore.addEventListener("click", () => this.openExplorer());
  }

  setTask(task) {
    if (task === this.task) return;
    this.task = task;
    this.version = -1;
    // accuracy means nothing for regression: its plot makes way
    this.accuracy.area.container.hidden = task === "regression";
  }

  // Draws the plots that changed; once `deadline` has passed, the rest wait for the next call.
  draw(curves, now = performance.now(), deadline = Infinity) {
    let drew = false;
    if (curves.version !== this.version && now - (this.updatedAt || -Infinity) >= CURVES_MS) {
      this.version = curves.version;
      this.updatedAt = now;
      const x = curves.epoch;
      this.loss.set([
        { x, y: curves.trainLoss, name: "train", color: "#37414b" },
        { x, y: curves.testLoss, name: "test", color: "#d6402a", dash: true },
      ]);
      this.accuracy.title = this.task === "regression" ? "accuracy (classification only)" : "accuracy";
      this.accuracy.set(this.task === "regression" ? [] : [
        { x, y: curves.trainAccuracy, name: "train", color: "#37414b" },
        { x, y: curves.testAccuracy, name: "test", color: "#d6402a", dash: true },
      ]);
      this.norms.set(normSeries(curves));
    }
    for (const plot of [this.loss, this.accuracy, this.norms]) {
      if (drew && performance.now() > deadline) break;
      drew = plot.draw() || drew;
    }
    if (this.explorer && this.explorer.ready && curves.version !== this.explorerVersion && now - this.explorerDrawn > EXPLORER_MS) {
      this.drawExplorer(curves);
      this.explorerVersion = curves.version;
      this.explorerDrawn = now;
    }
    return drew;
  }

  // ----- Plotly, on demand ---------------------------------------------------------------------
  openExplorer() {
    if (!this.dialog) return;
    if (!this.dialog.open) this.dialog.showModal();
    if (this.explorer) { this.explorerVersion = -1; return; }
    this.explorer = { ready: false };
    const status = this.dialog.querySelector(".explorer-status");
    if (globalThis.Plotly) { this.explorer.ready = true; return; }
    status.textContent = "loading Plotly…";
    const script = document.createElement("script");
    script.src = this.plotlyUrl;
    script.onload = () => { this.explorer.ready = true; status.textContent = ""; this.explorerVersion = -1; };
    script.onerror = () => { status.textContent = "Plotly could not be loaded."; this.explorer = null; };
    document.head.appendChild(script);
    this.dialog.addEventListener("close", () => { this.explorerVersion = -1; });
  }

  drawExplorer(curves) {
    if (!this.dialog.open) return;
    const Plotly = globalThis.Plotly;
    const x = Float64Array.from(curves.epoch);
    const traces = [
      { x, y: Float64Array.from(curves.trainLoss), name: "train loss", line: { color: "#37414b" } },
      { x, y: Float64Array.from(curves.testLoss), name: "test loss", line: { color: "#d6402a", dash: "dot" } },
    ];
    if (this.task !== "regression") {
      traces.push(
        { x, y: Float64Array.from(curves.trainAccuracy), name: "train accuracy", yaxis: "y2", line: { color: "#37414b" } },
        { x, y: Float64Array.from(curves.testAccuracy), name: "test accuracy", yaxis: "y2", line: { color: "#d6402a", dash: "dot" } },
      );
    }
    for (const s of normSeries(curves)) {
      // the norms are recorded per frame; place them on the epoch axis by their step
      const epochs = Float64Array.from(s.x, (step) => epochAtStep(curves, step));
      traces.push({ x: epochs, y: Float64Array.from(s.y), name: `‖∇J‖ ${s.name}`, yaxis: "y3", line: { color: s.color, width: 1 } });
    }
    for (const trace of traces) trace.mode = "lines";
    Plotly.react(this.dialog.querySelector(".explorer-plot"), traces, {
      margin: { l: 56, r: 12, t: 12, b: 40 },
      font: { size: 11, family: FONT_FAMILY },
      hovermode: "x unified",
      xaxis: { title: { text: "epoch" }, anchor: "y3" },
      yaxis: { title: { text: "loss L" }, domain: [0.68, 1], rangemode: "tozero" },
      yaxis2: { title: { text: "accuracy" }, domain: [0.36, 0.64], range: [0, 1.02] },
      yaxis3: { title: { text: "‖∇J‖" }, domain: [0, 0.32], type: "log", exponentformat: "power" },
      legend: { orientation: "h", y: -0.12 },
    }, { displaylogo: false, responsive: true });
  }
}

function normSeries(curves) {
  const layers = curves.norms.reduce((most, row) => Math.max(most, row.length), 0);
  const series = [];
  for (let k = 0; k < layers; k++) {
    const y = curves.norms.map((row) => (row.length === layers ? row[k] : NaN));
    const last = k === layers - 1;
    series.push({
      x: curves.normStep, y, name: last ? "out" : `${k + 1}`,
      color: last ? OUTPUT_COLOR : LAYER_COLORS[k % LAYER_COLORS.length],
    });
  }
  return series;
}

function epochAtStep(curves, step) {
  const i = nearest(curves.step, step);
  return i < 0 ? NaN : curves.epoch[i];
}

function nearest(xs, x) {
  if (!xs.length) return -1;
  let lo = 0, hi = xs.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid; else hi = mid;
  }
  return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
}

function ticks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return [];
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : Number(v.toPrecision(6)));
  return out;
}

// Ticks of a log10 axis at 1, 2, 5 (or finer) times powers of ten (in log10 units): the
// coarsest set that gives at least three ticks, unless that crowds the axis.
function logTicks(lo, hi) {
  const sets = [[1], [1, 3], [1, 2, 5], [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9]];
  let best = [];
  for (const multipliers of sets) {
    const out = [];
    for (let power = Math.floor(lo); power <= Math.ceil(hi); power++) {
      for (const m of multipliers) {
        const v = power + Math.log10(m);
        if (v >= lo && v <= hi) out.push(v);
      }
    }
    if (out.length > 5 && best.length >= 2) break;
    best = out;
    if (out.length >= 3) break;
  }
  return best;
}

function label(v) {
  const abs = Math.abs(v);
  if (abs >= 10000) return v.toExponential(0);
  return String(Number(v.toPrecision(3)));
}

function format(v) {
  if (!Number.isFinite(v)) return "–";
  const abs = Math.abs(v);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e4) ? v.toExponential(2) : v.toFixed(4);
}
