// Space warping (Fig. 6.2): one panel per hidden layer showing how that layer maps a
// regular grid of input lines and the data points, either after the affine step
// (a = hW + b) or after the non-linearity (h = φ(a)). 2-unit layers are drawn as they are,
// 3-unit layers as a rotatable 3-D box, wider layers through the server's PCA projection.
// The last hidden layer's panel shows the output unit's decision line: the linear
// classifier that the warped space makes sufficient. A morph animates input → a → h.

import { PlotArea, GridImage, LABEL_FONT } from "./plotarea.js";
import { CLASS_RGB, SURFACE_LUT, classColor, UNIT_LUT } from "./palette.js";

const STAGES = ["pre_activation", "activation"];
const MORPH_MS = 1400; // per step of the morph (previous space → a → h)
const INPUT_MS = 150; // the input panel follows the output's picture at about 7 frames/s

// Decode a quantised array {data, lo, hi, rows, cols} row by row into float32.
export function dequantise(q) {
  const { data, rows, cols } = q;
  const top = data.BYTES_PER_ELEMENT === 1 ? 255 : 65535;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const lo = rowValue(q.lo, r);
    const scale = (rowValue(q.hi, r) - lo) / top;
    const offset = r * cols;
    for (let c = 0; c < cols; c++) out[offset + c] = lo + data[offset + c] * scale;
  }
  return out;
}

function rowValue(value, row) {
  return typeof value === "number" ? value : value[row];
}

// The regular grid of input lines, exactly as the server samples it (engine.views.line_inputs):
// first `lines` lines at fixed x2 (x1 running), then `lines` lines at fixed x1.
export function inputLines(extent, lines, samples) {
  if (extent.length === 1) {
    const out = new Float32Array(samples);
    const [lo, hi] = extent[0];
    for (let s = 0; s < samples; s++) out[s] = lo + ((hi - lo) * s) / (samples - 1);
    return { dims: 1, coords: [out], count: 1, samples };
  }
  const [[lo1, hi1], [lo2, hi2]] = extent;
  const total = 2 * lines * samples;
  const first = new Float32Array(total);
  const second = new Float32Array(total);
  const along = (lo, hi, s) => lo + ((hi - lo) * s) / (samples - 1);
  const at = (lo, hi, l) => lo + ((hi - lo) * l) / (lines - 1);
  for (let l = 0; l < lines; l++) {
    for (let s = 0; s < samples; s++) {
      const i = l * samples + s;
      first[i] = along(lo1, hi1, s);
      second[i] = at(lo2, hi2, l);
      const j = (lines + l) * samples + s;
      first[j] = at(lo1, hi1, l);
      second[j] = along(lo2, hi2, s);
    }
  }
  return { dims: 2, coords: [first, second], count: 2 * lines, samples };
}

function lerp(a, b, t) { return a + (b - a) * t; }

// Everything a panel draws for one stage, in 2-D display coordinates.
class Scene {
  constructor(lines, points, xRange, yRange, square, lineSamples, extra = {}) {
    this.lines = lines; // Float32Array [x0, y0, x1, y1, ...] (null: no grid)
    this.points = points; // Float32Array [x, y, ...]
    this.xRange = xRange;
    this.yRange = yRange;
    this.square = square;
    this.lineSamples = lineSamples;
    Object.assign(this, extra);
  }

  static mix(a, b, t) {
    const mixArray = (p, q) => {
      if (!p || !q || p.length !== q.length) return t < 0.5 ? p : q;
      const out = new Float32Array(p.length);
      for (let i = 0; i < p.length; i++) out[i] = p[i] + (q[i] - p[i]) * t;
      return out;
    };
    return new Scene(
      mixArray(a.lines, b.lines), mixArray(a.points, b.points),
      [lerp(a.xRange[0], b.xRange[0], t), lerp(a.xRange[1], b.xRange[1], t)],
      [lerp(a.yRange[0], b.yRange[0], t), lerp(a.yRange[1], b.yRange[1], t)],
      a.square && b.square, b.lineSamples,
    );
  }
}

function interleave(x, y) {
  const out = new Float32Array(x.length * 2);
  for (let i = 0; i < x.length; i++) { out[2 * i] = x[i]; out[2 * i + 1] = y[i]; }
  return out;
}

function padRange([lo, hi], fraction = 0.04) {
  const span = hi - lo || 1;
  return [lo - span * fraction, hi + span * fraction];
}

export class WarpPanel {
  // kind: "input" or "layer"; index: 1-based hidden layer (0 for the input panel)
  constructor(parent, { index, onMorph }) {
    this.index = index;
    this.root = document.createElement("figure");
    this.root.className = "warp-panel";
    this.root.dataset.layer = String(index);
    this.title = document.createElement("figcaption");
    this.title.className = "warp-title";
    const plot = document.createElement("div");
    plot.className = "warp-plot";
    // the canvas's text alternative: the panel's title and note, set when they change
    plot.setAttribute("role", "img");
    this.plot = plot;
    this.note = document.createElement("div");
    this.note.className = "warp-note";
    this.root.append(this.title, plot, this.note);
    if (index > 0) {
      const morph = document.createElement("button");
      morph.type = "button";
      morph.className = "warp-morph small";
      morph.textContent = "▶ morph";
      morph.title = index === 1
        ? "Animate x → a⁽¹⁾ = xW⁽¹⁾ + b⁽¹⁾ → h⁽¹⁾ = φ(a⁽¹⁾)"
        : `Animate h⁽${index - 1}⁾ → a⁽${index}⁾ = h⁽${index - 1}⁾W⁽${index}⁾ + b⁽${index}⁾ → h⁽${index}⁾ = φ(a⁽${index}⁾)`;
      morph.addEventListener("click", () => onMorph && onMorph(index));
      this.root.appendChild(morph);
    }
    parent.appendChild(this.root);
    this.area = new PlotArea(plot, { margin: { left: 4, right: 4, top: 4, bottom: 4 } });
    this.area.onResize = () => { this.dirty = true; };
    this.shade = new GridImage();
    this.rotation = { yaw: 0.65, pitch: 0.35 };
    this.dirty = true;
    this.draws = 0;
    this.installRotation(plot);
  }

  installRotation(plot) {
    let last = null;
    plot.addEventListener("pointerdown", (event) => {
      if (!this.is3d()) return;
      last = [event.clientX, event.clientY];
      plot.setPointerCapture(event.pointerId);
    });
    plot.addEventListener("pointermove", (event) => {
      if (!last) return;
      this.rotation.yaw += (event.clientX - last[0]) * 0.012;
      this.rotation.pitch = Math.max(-1.5, Math.min(1.5, this.rotation.pitch + (event.clientY - last[1]) * 0.012));
      last = [event.clientX, event.clientY];
      this.dirty = true;
    });
    const stop = () => { last = null; };
    plot.addEventListener("pointerup", stop);
    plot.addEventListener("pointercancel", stop);
    // the keyboard's rotation (issue 12): the arrows turn a 3-D box as a drag does
    plot.addEventListener("keydown", (event) => {
      const turns = { ArrowLeft: [-0.15, 0], ArrowRight: [0.15, 0], ArrowUp: [0, -0.15], ArrowDown: [0, 0.15] };
      const turn = turns[event.key];
      if (!this.is3d() || !turn || event.ctrlKey || event.metaKey || event.altKey) return;
      event.preventDefault();
      event.stopPropagation(); // the page's own → (one step) stays out of the panel
      this.rotation.yaw += turn[0];
      this.rotation.pitch = Math.max(-1.5, Math.min(1.5, this.rotation.pitch + turn[1]));
      this.dirty = true;
    });
  }

  is3d() {
    return this.rotatable === true;
  }

  remove() {
    this.area.observer.disconnect();
    this.root.remove();
  }
}

export class WarpView {
  constructor(container, { caption = null } = {}) {
    this.container = container;
    this.caption = caption;
    this.panels = [];
    this.stage = "activation";
    this.morph = null; // {layer (0 = all), start}
    this.data = null;
    this.warps = null;
    this.loss = "bernoulli";
    this.layers = [];
    this.scenes = new Map(); // "layer:stage" -> Scene
    this.picture = null; // the output over the input plane, drawn under the input panel
  }

  // Fig. 6.2's left square shows the decision surface under the input grid.
  setPicture(picture) {
    this.picture = picture;
    this.inputStale = true;
  }

  // The palette changed (palette.js rewrote its tables): draw every panel again.
  recolour() {
    for (const panel of this.panels) panel.dirty = true;
    this.inputStale = true;
  }

  setStage(stage) {
    this.stage = stage;
    this.morph = null;
    for (const panel of this.panels) panel.dirty = true;
  }

  // data: same object as the surface view's; layers: [{units, activation}], loss
  setData(data) {
    this.data = data;
    this.inputScene = null;
    for (const panel of this.panels) panel.dirty = true;
  }

  setModel(layers, loss) {
    this.layers = layers;
    this.loss = loss;
    this.ensurePanels(layers.length);
  }

  setWarps(warps) {
    this.warps = warps;
    this.scenes.clear();
    if (warps) this.ensurePanels(warps.length);
    for (const panel of this.panels) if (panel.index > 0) panel.dirty = true;
    const first = warps && warps[0];
    const key = first ? `${first.lines}:${first.samples}` : "";
    if (key !== this.inputKey) {
      this.inputKey = key;
      this.inputScene = null;
      if (this.panels[0]) this.panels[0].dirty = true;
    }
  }

  startMorph(layer = 0) {
    this.morph = { layer, start: performance.now() };
  }

  ensurePanels(count) {
    const wanted = count + 1; // the input panel first
    while (this.panels.length < wanted) {
      const index = this.panels.length;
      this.panels.push(new WarpPanel(this.container, { index, onMorph: (layer) => this.startMorph(layer) }));
    }
    while (this.panels.length > wanted) this.panels.pop().remove();
  }

  labels() {
    const data = this.data;
    if (!data) return null;
    if (!this._labels || this._labelsFor !== data) {
      const y = new Float32Array(data.train.y.length + data.test.y.length);
      y.set(data.train.y, 0);
      y.set(data.test.y, data.train.y.length);
      this._labels = y;
      this._labelsFor = data;
    }
    return this._labels;
  }

  // ----- scenes: each space in 2-D display coordinates -------------------------------------
  inputSceneFor() {
    if (this.inputScene) return this.inputScene;
    const data = this.data;
    const warp = this.warps && this.warps[0];
    if (!data || !warp) return null;
    const extent = data.extent;
    const grid = inputLines(extent, warp.lines, warp.samples);
    const n = data.train.y.length + data.test.y.length;
    const dims = data.inputDim;
    const points = new Float32Array(n * 2);
    const all = [data.train, data.test];
    let k = 0;
    for (const set of all) {
      for (let i = 0; i < set.y.length; i++, k++) {
        points[2 * k] = set.x[i * dims];
        points[2 * k + 1] = dims === 1 ? set.y[i] : set.x[i * dims + 1];
      }
    }
    let lines;
    let yRange;
    if (dims === 1) {
      lines = null;
      yRange = data.targetExtent || [-1, 1];
    } else {
      lines = interleave(grid.coords[0], grid.coords[1]);
      yRange = extent[1];
    }
    this.inputScene = new Scene(lines, points, extent[0], yRange, dims === 2, grid.samples, { input: true });
    return this.inputScene;
  }

  scene(layer, stage, panel) {
    if (layer === 0) return this.inputSceneFor();
    const key = `${layer}:${stage}`;
    const view = this.warps && this.warps[layer - 1] && this.warps[layer - 1][stage];
    if (!view) return null;
    const dims = view.dims;
    let scene = dims !== 3 ? this.scenes.get(key) : null;
    if (scene) return scene;
    const lines = dequantise(view.grid);
    const points = dequantise(view.points);
    const m = view.grid.cols;
    const n = view.points.cols;
    const bounds = view.bounds;
    const samples = this.warps[layer - 1].samples;
    if (dims === 2) {
      scene = new Scene(
        interleave(lines.subarray(0, m), lines.subarray(m, 2 * m)),
        interleave(points.subarray(0, n), points.subarray(n, 2 * n)),
        padRange([bounds[0], bounds[1]]), padRange([bounds[2], bounds[3]]), true, samples,
        { view, bounds },
      );
    } else if (dims === 1) {
      // One unit: h along x, the input's second coordinate (or the target) along y.
      const input = this.inputSceneFor();
      const xs = points;
      const ys = new Float32Array(n);
      if (input) for (let i = 0; i < n; i++) ys[i] = input.points[2 * i + 1];
      let lineCoords = null;
      if (this.data && this.data.inputDim === 1) lineCoords = null;
      scene = new Scene(lineCoords, interleave(xs, ys), padRange([bounds[0], bounds[1]]),
        input ? input.yRange : [-1, 1], false, samples, { view, bounds, oneUnit: true });
    } else {
      scene = this.project3d(view, lines, points, m, n, samples, panel.rotation);
    }
    if (dims !== 3) this.scenes.set(key, scene);
    return scene;
  }

  // Rotate the box [bounds] normalised to [-1, 1]³ and project it orthographically;
  // h₃ points up before rotation.
  project3d(view, lines, points, m, n, samples, rotation) {
    const b = view.bounds;
    const centre = [(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2];
    const half = [(b[1] - b[0]) / 2 || 1, (b[3] - b[2]) / 2 || 1, (b[5] - b[4]) / 2 || 1];
    const cy = Math.cos(rotation.yaw), sy = Math.sin(rotation.yaw);
    const cp = Math.cos(rotation.pitch), sp = Math.sin(rotation.pitch);
    const project = (u0, u1, u2, out, i) => {
      // yaw about the vertical axis (u2), then pitch about the screen's x axis
      const x = cy * u0 - sy * u1;
      const depth = sy * u0 + cy * u1;
      out[2 * i] = x;
      out[2 * i + 1] = cp * u2 - sp * depth;
    };
    const map = (source, count) => {
      const out = new Float32Array(count * 2);
      for (let i = 0; i < count; i++) {
        project(
          (source[i] - centre[0]) / half[0],
          (source[count + i] - centre[1]) / half[1],
          (source[2 * count + i] - centre[2]) / half[2], out, i);
      }
      return out;
    };
    const corners = [];
    for (const u0 of [-1, 1]) for (const u1 of [-1, 1]) for (const u2 of [-1, 1]) corners.push([u0, u1, u2]);
    const projected = new Float32Array(16);
    corners.forEach((c, i) => project(c[0], c[1], c[2], projected, i));
    const scene = new Scene(map(lines, m), map(points, n), [-1.8, 1.8], [-1.8, 1.8], true, samples,
      { view, box: projected, corners, project, centre, half });
    return scene;
  }

  // ----- drawing ----------------------------------------------------------------------------
  // Draw the panels that changed; stop once `deadline` (a performance.now() time) has passed,
  // leaving the rest marked for the next animation frame.
  draw(now = performance.now(), deadline = Infinity) {
    let drew = false;
    for (const panel of this.panels) {
      const layer = panel.index;
      let scene = null;
      let t = null;
      if (this.morph && layer > 0 && (this.morph.layer === 0 || this.morph.layer === layer)) {
        // one layer: x (or h of the layer before) → a → h; all layers: one after the other,
        // each panel waiting in its input space until its turn
        const elapsed = (now - this.morph.start) / MORPH_MS;
        t = Math.max(0, Math.min(2, this.morph.layer === 0 ? elapsed - 2 * (layer - 1) : elapsed));
        const before = t < 1 ? this.scene(layer - 1, "activation", this.panels[layer - 1]) : this.scene(layer, "pre_activation", panel);
        const after = t < 1 ? this.scene(layer, "pre_activation", panel) : this.scene(layer, "activation", panel);
        if (before && after) {
          const k = t < 1 ? t : t - 1;
          const eased = k * k * (3 - 2 * k);
          scene = Scene.mix(before, after, eased);
          panel.dirty = true;
        }
      }
      if (layer === 0) {
        const due = panel.dirty || (this.inputStale && now - (panel.drawnAt || 0) > INPUT_MS);
        if (!due) continue;
      } else if (!panel.dirty) {
        continue;
      }
      if (drew && performance.now() > deadline) break;
      if (!scene) scene = this.scene(layer, layer === 0 ? "activation" : this.stage, panel);
      this.drawPanel(panel, scene, t);
      if (layer === 0) this.inputStale = false;
      panel.dirty = false;
      panel.drawnAt = now;
      drew = true;
    }
    const steps = this.morph && this.morph.layer === 0 ? 2 * (this.panels.length - 1) : 2;
    if (this.morph && now - this.morph.start > (steps + 0.1) * MORPH_MS) {
      // the morph ends on h; show the chosen stage again
      this.morph = null;
      for (const panel of this.panels) panel.dirty = true;
    }
    return drew;
  }

  describe(panel, t) {
    const layer = panel.index;
    if (layer === 0) {
      const one = this.data && this.data.inputDim === 1;
      return {
        title: one ? "input x and target y" : "input space x = (x₁, x₂)",
        note: one ? "the data before any layer" : "the regular grid before any layer, over the output ŷ",
      };
    }
    const spec = this.layers[layer - 1] || {};
    const warp = this.warps && this.warps[layer - 1];
    if (t !== null && t <= 0) {
      return { title: `layer ${layer}: waiting in h${superscript(layer - 1)}`, note: "its turn comes after the layer before" };
    }
    const stage = t !== null ? (t < 1 ? "pre_activation" : "activation") : this.stage;
    const view = warp && warp[stage];
    const sup = superscript(layer);
    const symbol = stage === "activation"
      ? `h${sup} = ${spec.activation || "φ"}(a${sup})`
      : `a${sup} = ${layer === 1 ? "x" : `h${superscript(layer - 1)}`}W${sup} + b${sup}`;
    let note = `${spec.units || (warp && warp.units) || "?"} units`;
    if (view && view.projection === "pca") {
      note += `, PCA to 2-D (${Math.round((view.explained || 0) * 100)}% of variance)`;
    } else if (view && view.dims === 3) {
      note += ", 3-D: drag (or focus and use the arrows) to rotate";
    } else if (view && view.dims === 1) {
      note += ", one unit: h along x";
    }
    const last = this.warps && layer === this.warps.length;
    if (last && stage === "activation" && view && view.readout && (this.loss === "bernoulli" || this.loss === "softmax")) {
      note += this.loss === "bernoulli" ? "; dashed: the output unit's decision line" : "; shading: the softmax output's classes";
    }
    return { title: `layer ${layer}: ${symbol}`, note };
  }

  drawPanel(panel, scene, t) {
    const area = panel.area;
    const ctx = area.contexts[0];
    const { title, note } = this.describe(panel, t);
    if (panel.title.textContent !== title) {
      panel.title.textContent = title;
      panel.root.title = panel.index === 0
        ? "The input space: a regular grid of lines and the data, before any layer"
        : `Layer ${panel.index}'s space: every input x (grid lines and data points) mapped to its a = hW + b or h = φ(a)`;
    }
    if (panel.note.textContent !== note) panel.note.textContent = note;
    const label = `Space warping, ${title}: ${note}`;
    if (panel.described !== label) {
      panel.plot.setAttribute("aria-label", label);
      panel.described = label;
    }
    area.clear(0);
    const inner = area.inner;
    ctx.fillStyle = "#fbfbfb";
    ctx.fillRect(inner.left, inner.top, inner.width, inner.height);
    if (!scene) return;
    panel.draws += 1;
    const rotatable = Boolean(scene.box);
    if (rotatable !== panel.rotatable) {
      // in the tab order only while there is something to turn
      panel.plot.tabIndex = rotatable ? 0 : -1;
      if (!rotatable) panel.plot.removeAttribute("tabindex");
    }
    panel.rotatable = rotatable;
    panel.root.classList.toggle("rotatable", panel.rotatable);
    area.setRanges(scene.xRange, scene.yRange, scene.square);
    ctx.save();
    ctx.beginPath();
    ctx.rect(inner.left, inner.top, inner.width, inner.height);
    ctx.clip();
    const layer = panel.index;
    const isLast = this.warps && layer === this.warps.length;
    const showReadout = isLast && t === null && this.stage === "activation" && scene.view && scene.view.readout;
    if (scene.input && this.picture && t === null) this.drawPicture(ctx, area);
    if (showReadout && scene.view.dims === 2) this.drawReadout2d(ctx, area, scene);
    if (scene.box) this.drawBox(ctx, area, scene);
    if (showReadout && scene.box) this.drawPlane3d(ctx, area, scene);
    if (scene.lines) this.drawLines(ctx, area, scene);
    this.drawPoints(ctx, area, scene);
    if (showReadout && scene.view.dims === 2) this.drawReadoutLine(ctx, area, scene);
    ctx.restore();
    ctx.strokeStyle = "#c3c9d0";
    ctx.lineWidth = 1;
    ctx.strokeRect(inner.left + 0.5, inner.top + 0.5, inner.width - 1, inner.height - 1);
  }

  drawPicture(ctx, area) {
    const { canvas, extent } = this.picture;
    const [[x0, x1], [y0, y1]] = extent;
    ctx.save();
    ctx.globalAlpha = 0.85;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(canvas, area.px(x0), area.py(y1), area.px(x1) - area.px(x0), area.py(y0) - area.py(y1));
    ctx.restore();
  }

  drawLines(ctx, area, scene) {
    const lines = scene.lines;
    const samples = scene.lineSamples;
    const count = lines.length / 2 / samples;
    const half = count / 2;
    for (let family = 0; family < 2; family++) {
      ctx.beginPath();
      for (let l = family === 0 ? 0 : half; l < (family === 0 ? half : count); l++) {
        const start = l * samples;
        ctx.moveTo(area.px(lines[2 * start]), area.py(lines[2 * start + 1]));
        for (let s = 1; s < samples; s++) {
          const i = 2 * (start + s);
          ctx.lineTo(area.px(lines[i]), area.py(lines[i + 1]));
        }
      }
      ctx.strokeStyle = family === 0 ? "rgba(80,90,110,0.45)" : "rgba(120,95,80,0.45)";
      ctx.lineWidth = 0.8;
      ctx.stroke();
      if (count < 2) break;
    }
  }

  drawPoints(ctx, area, scene) {
    const points = scene.points;
    const labels = this.labels();
    if (!points || !labels) return;
    const n = Math.min(points.length / 2, labels.length);
    const regression = this.data.task === "regression";
    const radius = n > 600 ? 1.8 : 2.4;
    if (regression) {
      const [lo, hi] = this.data.targetExtent || [-1, 1];
      for (let i = 0; i < n; i++) {
        const index = Math.max(0, Math.min(255, ((labels[i] - lo) / (hi - lo)) * 255)) | 0;
        ctx.fillStyle = `rgb(${UNIT_LUT[index * 4]},${UNIT_LUT[index * 4 + 1]},${UNIT_LUT[index * 4 + 2]})`;
        ctx.fillRect(area.px(points[2 * i]) - radius, area.py(points[2 * i + 1]) - radius, 2 * radius, 2 * radius);
      }
      return;
    }
    const classes = Math.max(2, this.data.classes || 2);
    for (let k = 0; k < classes; k++) {
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        if (labels[i] !== k) continue;
        const x = area.px(points[2 * i]);
        const y = area.py(points[2 * i + 1]);
        ctx.moveTo(x + radius, y);
        ctx.arc(x, y, radius, 0, 2 * Math.PI);
      }
      ctx.fillStyle = classColor(k);
      ctx.fill();
    }
  }

  // Shade the last hidden layer's space by the output unit: its prediction is a linear
  // function of h there, so the regions meet along straight lines.
  drawReadout2d(ctx, area, scene) {
    const readout = scene.view.readout; // {rows, cols, data}: [w₁, w₂, b] per output
    const size = 48;
    const [x0, x1] = area.xRange;
    const [y0, y1] = area.yRange;
    const rows = readout.rows;
    const softmax = this.loss === "softmax" && rows > 1;
    if (this.loss !== "bernoulli" && !softmax) return;
    const w = readout.data;
    const canvas = panelShade(this, size, (pixels) => {
      for (let r = 0; r < size; r++) {
        const y = y0 + ((size - 1 - r + 0.5) / size) * (y1 - y0);
        for (let c = 0; c < size; c++) {
          const x = x0 + ((c + 0.5) / size) * (x1 - x0);
          const offset = (r * size + c) * 4;
          if (!softmax) {
            const z = w[0] * x + w[1] * y + w[2];
            const p = 1 / (1 + Math.exp(-z));
            const index = Math.max(0, Math.min(255, Math.round(p * 255))) * 4;
            pixels[offset] = SURFACE_LUT[index];
            pixels[offset + 1] = SURFACE_LUT[index + 1];
            pixels[offset + 2] = SURFACE_LUT[index + 2];
          } else {
            let best = 0;
            let bestZ = -Infinity;
            for (let k = 0; k < rows; k++) {
              const z = w[k * 3] * x + w[k * 3 + 1] * y + w[k * 3 + 2];
              if (z > bestZ) { bestZ = z; best = k; }
            }
            const color = CLASS_RGB[best % CLASS_RGB.length];
            pixels[offset] = 248 + (color[0] - 248) * 0.3;
            pixels[offset + 1] = 248 + (color[1] - 248) * 0.3;
            pixels[offset + 2] = 248 + (color[2] - 248) * 0.3;
          }
          pixels[offset + 3] = 255;
        }
      }
    });
    ctx.imageSmoothingEnabled = true;
    const inner = area.inner;
    ctx.drawImage(canvas, inner.left, inner.top, inner.width, inner.height);
  }

  drawReadoutLine(ctx, area, scene) {
    if (this.loss !== "bernoulli") return;
    const w = scene.view.readout.data;
    const [x0, x1] = area.xRange;
    const [y0, y1] = area.yRange;
    // w₁x + w₂y + b = 0, clipped to the panel
    const candidates = [];
    if (Math.abs(w[1]) > 1e-12) {
      for (const x of [x0, x1]) candidates.push([x, -(w[0] * x + w[2]) / w[1]]);
    }
    if (Math.abs(w[0]) > 1e-12) {
      for (const y of [y0, y1]) candidates.push([-(w[1] * y + w[2]) / w[0], y]);
    }
    const inside = candidates.filter(([x, y]) => x >= x0 - 1e-9 && x <= x1 + 1e-9 && y >= y0 - 1e-9 && y <= y1 + 1e-9);
    if (inside.length < 2) return;
    ctx.beginPath();
    ctx.moveTo(area.px(inside[0][0]), area.py(inside[0][1]));
    ctx.lineTo(area.px(inside[1][0]), area.py(inside[1][1]));
    ctx.strokeStyle = "#1b1f24";
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  drawBox(ctx, area, scene) {
    const box = scene.box;
    const edges = [[0, 1], [0, 2], [0, 4], [1, 3], [1, 5], [2, 3], [2, 6], [3, 7], [4, 5], [4, 6], [5, 7], [6, 7]];
    ctx.beginPath();
    for (const [a, b] of edges) {
      ctx.moveTo(area.px(box[2 * a]), area.py(box[2 * a + 1]));
      ctx.lineTo(area.px(box[2 * b]), area.py(box[2 * b + 1]));
    }
    ctx.strokeStyle = "rgba(60,70,80,0.35)";
    ctx.lineWidth = 1;
    ctx.stroke();
    // axis names at the ends of the three edges leaving the (-1,-1,-1) corner
    ctx.fillStyle = "#4a5560";
    ctx.font = LABEL_FONT;
    const labelAt = (corner, text) => ctx.fillText(text, area.px(box[2 * corner]) + 2, area.py(box[2 * corner + 1]) - 2);
    labelAt(4, "1"); labelAt(2, "2"); labelAt(1, "3");
  }

  // w·h + b = 0 inside the box: the polygon where the plane crosses the box's edges.
  drawPlane3d(ctx, area, scene) {
    if (this.loss !== "bernoulli") return;
    const w = scene.view.readout.data;
    const { centre, half, project } = scene;
    const normal = [w[0] * half[0], w[1] * half[1], w[2] * half[2]];
    const offset = w[0] * centre[0] + w[1] * centre[1] + w[2] * centre[2] + w[3];
    const c = scene.corners;
    const edges = [[0, 1], [0, 2], [0, 4], [1, 3], [1, 5], [2, 3], [2, 6], [3, 7], [4, 5], [4, 6], [5, 7], [6, 7]];
    const value = (p) => normal[0] * p[0] + normal[1] * p[1] + normal[2] * p[2] + offset;
    const hits = [];
    for (const [a, b] of edges) {
      const va = value(c[a]);
      const vb = value(c[b]);
      if ((va < 0) === (vb < 0)) continue;
      const t = va / (va - vb);
      hits.push([0, 1, 2].map((d) => c[a][d] + (c[b][d] - c[a][d]) * t));
    }
    if (hits.length < 3) return;
    const out = new Float32Array(hits.length * 2);
    hits.forEach((p, i) => project(p[0], p[1], p[2], out, i));
    let cx = 0, cy = 0;
    for (let i = 0; i < hits.length; i++) { cx += out[2 * i]; cy += out[2 * i + 1]; }
    cx /= hits.length; cy /= hits.length;
    const order = hits.map((_, i) => i).sort((i, j) =>
      Math.atan2(out[2 * i + 1] - cy, out[2 * i] - cx) - Math.atan2(out[2 * j + 1] - cy, out[2 * j] - cx));
    ctx.beginPath();
    order.forEach((i, k) => {
      const x = area.px(out[2 * i]);
      const y = area.py(out[2 * i + 1]);
      if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.closePath();
    ctx.fillStyle = "rgba(40,45,55,0.12)";
    ctx.fill();
    ctx.strokeStyle = "rgba(27,31,36,0.8)";
    ctx.setLineDash([5, 3]);
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

function panelShade(view, size, fill) {
  if (!view._shade) view._shade = new GridImage();
  return view._shade.paintWith(size, size, fill);
}

const SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹";
export function superscript(n) {
  return `⁽${String(n).split("").map((d) => SUPERSCRIPTS[Number(d)]).join("")}⁾`;
}
