// The network diagram: input features, every hidden unit with its response map, the output
// units; links coloured by the sign of their weight and sized by |w|. Hover a link for its
// weight W and gradient ∂J/∂W, hover a unit for its bias b and mean |∂J/∂a|; click either to
// type a new value. All of it is one canvas (redrawn each frame) plus a few HTML controls
// per layer (units −/+, activation).

import { UNIT_LUT, SURFACE_LUT, weightColor } from "./palette.js";
import { CANVAS_OPTIONS, GridImage, LABEL_FONT } from "./plotarea.js";
import { superscript } from "./warp.js";

export const FEATURE_LABELS = {
  x1: "x₁", x2: "x₂", x1_squared: "x₁²", x2_squared: "x₂²", x1_x2: "x₁x₂", sin_x1: "sin x₁", sin_x2: "sin x₂",
};
const FEATURE_FUNCTIONS = {
  x1: (a) => a, x2: (a, b) => b, x1_squared: (a) => a * a, x2_squared: (a, b) => b * b,
  x1_x2: (a, b) => a * b, sin_x1: (a) => Math.sin(a), sin_x2: (a, b) => Math.sin(b),
};
const ONE_INPUT_FEATURES = ["x1", "x1_squared", "sin_x1"];
const HEADER = 64; // room above the columns for each layer's controls
const FEATURE_MAP = 24; // cells per side of a computed input-feature map

function sub(n) {
  const digits = "₀₁₂₃₄₅₆₇₈₉";
  return String(n).split("").map((d) => digits[Number(d)]).join("");
}

export class NetworkView {
  constructor(container, handlers = {}) {
    this.container = container;
    this.handlers = handlers;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "network-canvas";
    // a text alternative for what the canvas shows (describe.js keeps it current)
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "Network diagram");
    // the keyboard's way in (issue 12): arrows move over units, W through a unit's weights,
    // Enter edits what is chosen; the choice is spoken through `announcer`
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("aria-keyshortcuts", "ArrowUp ArrowDown ArrowLeft ArrowRight W Enter Escape");
    container.appendChild(this.canvas);
    const keys = document.createElement("p");
    keys.id = "network-keys";
    keys.className = "visually-hidden";
    keys.textContent = "Keys: the arrows choose a unit, W goes through the weights into it, Enter edits its bias or the chosen weight, Escape lets go.";
    container.appendChild(keys);
    this.canvas.setAttribute("aria-describedby", keys.id);
    this.announcer = document.createElement("div");
    this.announcer.className = "visually-hidden";
    this.announcer.setAttribute("role", "status");
    container.appendChild(this.announcer);
    this.keyTarget = null; // {column, unit} or {layer, i, j}: what the keyboard chose
    this.context = this.canvas.getContext("2d", CANVAS_OPTIONS);
    this.controls = document.createElement("div");
    this.controls.className = "network-controls";
    container.appendChild(this.controls);
    this.tooltip = document.createElement("div");
    this.tooltip.className = "tooltip network-tooltip";
    this.tooltip.hidden = true;
    container.appendChild(this.tooltip);
    this.editor = this.buildEditor();
    this.thumbnails = []; // [column][unit] -> GridImage, each with the version it shows
    this.images = []; // [column][unit] -> the canvas to draw (or null), once prepared
    this.version = 0; // bumped by every frame and model: thumbnails older than it are stale
    this.pass = null; // the version the thumbnails being painted are brought up to
    this.model = null;
    this.params = null;
    this.unitMaps = null;
    this.unitGrads = null;
    this.surface = null;
    this.dirty = true;
    this.hovered = null;
    this.width = 0;
    this.height = 0;
    this.activations = ["tanh"];
    this.observer = new ResizeObserver((entries) => {
      const rect = entries[entries.length - 1].contentRect;
      this.resize(rect.width, rect.height);
    });
    this.observer.observe(container);
    this.canvas.addEventListener("mousemove", (event) => this.mouseMove(event));
    this.canvas.addEventListener("mouseleave", () => this.setHovered(null));
    this.canvas.addEventListener("click", (event) => this.click(event));
    this.canvas.addEventListener("keydown", (event) => this.key(event));
    this.canvas.addEventListener("focus", () => {
      // from the keyboard only: a click focuses the canvas too, and the pointer chooses then
      if (this.canvas.matches(":focus-visible")) this.chooseByKey(this.keyTarget || { column: 1, unit: 0 });
    });
    this.canvas.addEventListener("blur", () => { if (this.editor.hidden) this.setHovered(null); });
    this.urgent = false; // an interaction to show at once, whatever the frame-rate budget
  }

  resize(cssWidth, cssHeight) {
    const width = Math.max(50, Math.round(cssWidth));
    const height = Math.max(50, Math.round(cssHeight));
    if (width === this.width && height === this.height) return;
    this.width = width;
    this.height = height;
    this.urgent = true;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.layout();
  }

  setActivations(list) { this.activations = list; }

  // The palette changed (palette.js rewrote its tables): paint every thumbnail again.
  recolour() {
    this.featureMaps = null;
    this.version += 1;
    this.pass = null;
    this.dirty = true;
    this.urgent = true;
  }

  // model: {features, layers: [{units, activation, pieces}], outputs, loss, inputDim, extent}
  setModel(model) {
    const same = this.model && JSON.stringify(model) === JSON.stringify(this.model);
    // only the data's extent changed (the first frame's points): the feature thumbnails
    // change, the layout and the layer controls do not
    const sameShape = this.model && JSON.stringify({ ...model, extent: null }) === JSON.stringify({ ...this.model, extent: null });
    this.model = model;
    if (!same && sameShape) {
      this.urgent = true;
      this.featureMaps = null;
      this.version += 1;
      this.pass = null;
      this.dirty = true;
    } else if (!same) {
      this.urgent = true;
      this.featureMaps = null;
      this.version += 1;
      this.pass = null;
      this.layout();
      this.buildControls();
    }
  }

  // params: Map name -> {value, grad, shape}; unitMaps: per hidden layer; unitGrads: per layer
  setFrame({ params, unitMaps, unitGrads, surface }) {
    if (params) this.params = params;
    if (unitMaps) this.unitMaps = unitMaps;
    if (unitGrads) this.unitGrads = unitGrads;
    if (surface) this.surface = surface;
    this.version += 1;
    this.dirty = true;
    if (this.hovered) this.showTooltip(this.hovered);
  }

  // ----- layout -----------------------------------------------------------------------
  columns() {
    const model = this.model;
    if (!model) return [];
    const inputs = model.inputDim === 1 ? ONE_INPUT_FEATURES : Object.keys(FEATURE_LABELS);
    const columns = [{ kind: "input", units: inputs.length, names: inputs }];
    model.layers.forEach((layer, k) => columns.push({ kind: "hidden", layer: k + 1, units: layer.units }));
    columns.push({ kind: "output", layer: model.layers.length + 1, units: model.outputs });
    return columns;
  }

  layout() {
    const columns = this.columns();
    if (!columns.length) { this.cols = []; this.dirty = true; return; }
    const left = 44;
    const right = 36;
    const withParameter = this.model.layers.some((l) => ["leaky_relu", "prelu", "maxout"].includes(l.activation));
    const header = HEADER + (withParameter ? 20 : 0);
    const usable = this.height - header - 10;
    const most = Math.max(...columns.map((c) => c.units));
    const size = Math.max(8, Math.min(40, Math.floor(usable / most) - 6));
    const gap = Math.max(2, Math.min(12, (usable - most * size) / Math.max(1, most)));
    const span = this.width - left - right - size;
    this.unitSize = size;
    this.cols = columns.map((column, c) => {
      const x = left + (columns.length === 1 ? 0 : (span * c) / (columns.length - 1));
      const total = column.units * size + (column.units - 1) * gap;
      const top = header + Math.max(0, (usable - total) / 2);
      const units = [];
      for (let u = 0; u < column.units; u++) units.push({ x, y: top + u * (size + gap) });
      return { ...column, x, units };
    });
    this.dirty = true;
    this.positionControls();
  }

  // Which input unit rows are live features, in the order the network uses them.
  featureRows() {
    const names = this.cols[0].names;
    return this.model.features.map((name) => names.indexOf(name));
  }

  // ----- per-layer HTML controls ---------------------------------------------------------
  buildControls() {
    // the keyboard's place among the controls survives their rebuild (a unit added by Enter
    // leaves the focus on the same button of the new controls)
    const active = document.activeElement;
    const focused = active && this.controls.contains(active) ? controlKey(active) : null;
    this.controls.textContent = "";
    const model = this.model;
    if (!model) return;
    const bar = document.createElement("div");
    bar.className = "layer-bar";
    const add = button("+", "Add a hidden layer", () => this.handlers.onAddLayer && this.handlers.onAddLayer());
    add.dataset.action = "add-layer";
    const remove = button("−", "Remove the last hidden layer", () => this.handlers.onRemoveLayer && this.handlers.onRemoveLayer());
    remove.dataset.action = "remove-layer";
    remove.disabled = model.layers.length === 0;
    const count = document.createElement("span");
    count.className = "layer-count";
    count.textContent = `${model.layers.length} hidden layer${model.layers.length === 1 ? "" : "s"}`;
    bar.append(remove, add, count);
    this.controls.appendChild(bar);
    this.layerControls = model.layers.map((layer, k) => {
      const box = document.createElement("div");
      box.className = "layer-controls";
      box.dataset.layer = String(k + 1);
      const minus = button("−", `Remove a unit from layer ${k + 1}`, () => this.handlers.onRemoveUnit && this.handlers.onRemoveUnit(k));
      minus.dataset.action = "remove-unit";
      minus.disabled = layer.units <= 1;
      const plus = button("+", `Add a unit to layer ${k + 1}`, () => this.handlers.onAddUnit && this.handlers.onAddUnit(k));
      plus.dataset.action = "add-unit";
      const label = document.createElement("span");
      label.className = "unit-count";
      label.textContent = `${layer.units}`;
      label.title = `layer ${k + 1}: ${layer.units} units h${superscript(k + 1)}`;
      const row = document.createElement("div");
      row.className = "unit-buttons";
      row.append(minus, label, plus);
      const select = document.createElement("select");
      select.className = "activation-select";
      select.dataset.layer = String(k + 1);
      select.title = `activation φ of layer ${k + 1}: h${superscript(k + 1)} = φ(a${superscript(k + 1)})`;
      // a title alone is not a label (axe: label-title-only)
      select.setAttribute("aria-label", `activation of layer ${k + 1}`);
      for (const name of this.activations) {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name.replace("_", " ");
        select.appendChild(option);
      }
      select.value = layer.activation;
      select.addEventListener("change", () => this.handlers.onActivation && this.handlers.onActivation(k, select.value));
      box.append(row, select);
      const parameter = this.activationParameter(k, layer);
      if (parameter) box.appendChild(parameter);
      this.controls.appendChild(box);
      return box;
    });
    this.positionControls();
    if (focused) {
      const again = [...this.controls.querySelectorAll("button, select, input")].find((element) => controlKey(element) === focused);
      if (again && !again.disabled) again.focus();
    }
  }

  // The unit's own parameter, where it has one: the leaky/PReLU slope α, maxout's pieces k.
  activationParameter(k, layer) {
    const kind = layer.activation;
    if (!["leaky_relu", "prelu", "maxout"].includes(kind)) return null;
    const maxout = kind === "maxout";
    const label = document.createElement("label");
    label.className = "activation-parameter";
    label.title = maxout
      ? `maxout: each unit of layer ${k + 1} takes the largest of k affine pieces`
      : kind === "prelu"
        ? `PReLU: the initial learned slope α for a < 0 (h = max(0, a) + α min(0, a))`
        : `leaky ReLU: the fixed slope α for a < 0 (h = max(0, a) + α min(0, a))`;
    const input = document.createElement("input");
    input.type = "text";
    input.inputMode = maxout ? "numeric" : "decimal";
    input.value = String(maxout ? layer.pieces : layer.slope);
    input.dataset.path = `model.layers.${k}.${maxout ? "pieces" : "slope"}`;
    input.addEventListener("change", () => {
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value) || (maxout && !Number.isInteger(value))) {
        if (this.handlers.onParameterError) {
          this.handlers.onParameterError(`${maxout ? "pieces" : "slope α"} of layer ${k + 1}: “${input.value}” is not ${maxout ? "a whole number" : "a number"}`);
        }
        return;
      }
      if (this.handlers.onParameter) this.handlers.onParameter(input.dataset.path, value);
    });
    input.addEventListener("keydown", (event) => event.stopPropagation());
    label.append(maxout ? "k " : "α ", input);
    return label;
  }

  positionControls() {
    if (!this.layerControls || !this.cols) return;
    this.layerControls.forEach((box, k) => {
      const column = this.cols[k + 1];
      if (!column) return;
      box.style.left = `${column.x + this.unitSize / 2}px`;
    });
  }

  // ----- drawing -----------------------------------------------------------------------
  // Paints the stale thumbnails first, as many as fit before `deadline` (a performance.now()
  // time; at least one per call): the diagram on screen stays as it was until every one is
  // ready, then it is drawn whole. A first frame's thumbnails (cold code, new canvases, the
  // input features' maps) are spread over a few animation frames that way.
  draw(deadline = Infinity) {
    if (!this.dirty || !this.model || !this.cols || !this.cols.length) return false;
    if (!this.prepare(deadline)) return false;
    this.dirty = false;
    this.urgent = false;
    const ctx = this.context;
    ctx.clearRect(0, 0, this.width, this.height);
    this.drawLinks(ctx);
    this.drawUnits(ctx);
    return true;
  }

  weightsOf(layer) {
    // layer: 1..L hidden, L+1 output
    if (!this.params) return null;
    const tag = layer === this.model.layers.length + 1 ? "out" : String(layer);
    return { weights: this.params.get(`W${tag}`), bias: this.params.get(`b${tag}`), tag };
  }

  pieces(layer) {
    const spec = this.model.layers[layer - 1];
    return spec && spec.activation === "maxout" ? spec.pieces || 2 : 1;
  }

  // Each drawn link: from unit i of column c-1 to unit j of column c, with its weight(s).
  *links() {
    const cols = this.cols;
    const rows = this.featureRows();
    for (let c = 1; c < cols.length; c++) {
      const entry = this.weightsOf(c);
      const weights = entry && entry.weights;
      const fanIn = c === 1 ? rows.length : cols[c - 1].units.length;
      const pieces = this.pieces(c);
      for (let i = 0; i < fanIn; i++) {
        const from = c === 1 ? cols[0].units[rows[i]] : cols[c - 1].units[i];
        if (!from) continue;
        for (let j = 0; j < cols[c].units.length; j++) {
          let value = 0;
          let piece = 0;
          if (weights && weights.shape[0] === fanIn) {
            const width = weights.shape[1];
            for (let p = 0; p < pieces; p++) {
              const v = weights.value[i * width + j * pieces + p];
              if (Math.abs(v) > Math.abs(value)) { value = v; piece = p; }
            }
          }
          yield { layer: c, i, j, piece, from, to: cols[c].units[j], value };
        }
      }
    }
  }

  drawLinks(ctx) {
    const size = this.unitSize;
    let scale = 0;
    for (const link of this.links()) scale = Math.max(scale, Math.abs(link.value));
    scale = Math.max(scale, 1);
    for (const link of this.links()) {
      const x0 = link.from.x + size;
      const y0 = link.from.y + size / 2;
      const x1 = link.to.x;
      const y1 = link.to.y + size / 2;
      const magnitude = Math.abs(link.value);
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      const mid = (x0 + x1) / 2;
      ctx.bezierCurveTo(mid, y0, mid, y1, x1, y1);
      const hovered = this.hovered && this.hovered.kind === "link" && this.hovered.layer === link.layer
        && this.hovered.i === link.i && this.hovered.j === link.j;
      ctx.strokeStyle = hovered ? "#111" : weightColor(link.value, 0.25 + 0.65 * Math.min(1, magnitude / scale));
      ctx.lineWidth = hovered ? 3 : Math.max(0.5, Math.min(6, 0.5 + 5 * magnitude / scale));
      ctx.stroke();
    }
  }

  drawUnits(ctx) {
    const size = this.unitSize;
    const cols = this.cols;
    const live = new Set(this.featureRows());
    cols.forEach((column, c) => {
      column.units.forEach((unit, u) => {
        const image = this.images[c] ? this.images[c][u] : null;
        ctx.save();
        if (column.kind === "input" && !live.has(u)) ctx.globalAlpha = 0.3;
        if (image) {
          ctx.imageSmoothingEnabled = true;
          ctx.drawImage(image, unit.x, unit.y, size, size);
        } else {
          ctx.fillStyle = "#eef0f2";
          ctx.fillRect(unit.x, unit.y, size, size);
        }
        const hovered = this.hovered && this.hovered.kind === "unit" && this.hovered.layer === c && this.hovered.unit === u;
        ctx.strokeStyle = hovered ? "#111" : "#7d8791";
        ctx.lineWidth = hovered ? 2 : 1;
        ctx.strokeRect(unit.x + 0.5, unit.y + 0.5, size - 1, size - 1);
        ctx.restore();
        if (column.kind === "input") {
          ctx.fillStyle = live.has(u) ? "#27313b" : "#9aa3ad";
          ctx.font = LABEL_FONT;
          ctx.textAlign = "right";
          ctx.textBaseline = "middle";
          ctx.fillText(FEATURE_LABELS[column.names[u]], unit.x - 4, unit.y + size / 2);
        }
        if (column.kind !== "input") this.drawGradientBar(ctx, c, u, unit, size);
      });
    });
    const output = cols[cols.length - 1];
    ctx.fillStyle = "#27313b";
    ctx.font = LABEL_FONT;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    output.units.forEach((unit, u) => {
      ctx.fillText(output.units.length > 1 ? `z${sub(u + 1)}` : "ŷ", unit.x + size + 4, unit.y + size / 2);
    });
  }

  // A small bar under a unit: its mean |∂J/∂a| relative to the largest in the network, so
  // that vanishing gradients in saturated layers show at a glance.
  drawGradientBar(ctx, c, u, unit, size) {
    if (!this.unitGrads || !this.unitGrads[c - 1]) return;
    let largest = 1e-12;
    for (const layer of this.unitGrads) for (const v of layer) largest = Math.max(largest, v);
    const value = this.unitGrads[c - 1][u] || 0;
    const fraction = Math.min(1, Math.sqrt(value / largest));
    ctx.fillStyle = "rgba(90,60,140,0.75)";
    ctx.fillRect(unit.x, unit.y + size + 1, Math.max(1, fraction * size), 2);
  }

  // Creates the thumbnails' canvases (and their contexts) ahead of the first draw, so that
  // the first draw does not create a dozen canvases in one animation frame.
  prepareThumbnails() {
    (this.cols || []).forEach((column, c) => {
      if (!this.thumbnails[c]) this.thumbnails[c] = [];
      column.units.forEach((unit, u) => {
        if (!this.thumbnails[c][u]) this.thumbnails[c][u] = new GridImage();
      });
    });
  }

  // Brings every unit's thumbnail up to date; false when `deadline` passed first. A pass
  // that spans several calls finishes with the data of the frames that arrive meanwhile
  // (the diagram is drawn once the pass is complete, never starved by new frames).
  prepare(deadline) {
    const cols = this.cols;
    if (this.pass === null) this.pass = this.version;
    const pass = this.pass;
    this.images.length = cols.length;
    for (let c = 0; c < cols.length; c++) {
      if (!this.thumbnails[c]) this.thumbnails[c] = [];
      if (!this.images[c]) this.images[c] = [];
      const column = cols[c];
      this.images[c].length = column.units.length;
      for (let u = 0; u < column.units.length; u++) {
        let image = this.thumbnails[c][u];
        if (!image) { image = new GridImage(); this.thumbnails[c][u] = image; }
        if (image.version === pass) continue;
        this.images[c][u] = this.thumbnail(column, c, u, image);
        image.version = pass;
        const last = c === cols.length - 1 && u === column.units.length - 1;
        if (!last && performance.now() > deadline) return false;
      }
    }
    this.pass = null;
    return true;
  }

  thumbnail(column, c, u, image) {
    if (column.kind === "input") return this.featureThumbnail(column.names[u], image);
    if (column.kind === "hidden") {
      const maps = this.unitMaps && this.unitMaps[c - 1];
      if (!maps || u >= maps.count) return null;
      if (maps.kind === "curve") return this.curveThumbnail(maps, u, image);
      const cells = maps.size * maps.size;
      const values = maps.data.subarray(u * cells, (u + 1) * cells);
      const toIndex = maps.toIndex(u);
      return image.paint(maps.size, maps.size, values, UNIT_LUT, toIndex);
    }
    return this.outputThumbnail(u, image);
  }

  featureThumbnail(name, image) {
    const model = this.model;
    if (!model.extent) return null;
    if (!this.featureMaps) this.featureMaps = {};
    if (!this.featureMaps[name]) {
      const size = FEATURE_MAP;
      const values = new Float32Array(size * size);
      const [[a, b], [c, d] = [0, 0]] = model.extent;
      const feature = FEATURE_FUNCTIONS[name];
      let bound = 0;
      for (let r = 0; r < size; r++) {
        for (let k = 0; k < size; k++) {
          const x1 = a + ((k + 0.5) / size) * (b - a);
          const x2 = model.inputDim === 1 ? 0 : c + ((r + 0.5) / size) * (d - c);
          const v = feature(x1, x2);
          values[r * size + k] = v;
          bound = Math.max(bound, Math.abs(v));
        }
      }
      // on the units' diverging scale, zero at the middle: 8-bit levels take the palette path
      const levels = new Uint8Array(size * size);
      const scale = 127.5 / (bound || 1);
      for (let i = 0; i < levels.length; i++) levels[i] = Math.round(127.5 + scale * values[i]);
      this.featureMaps[name] = image.paint(size, size, levels, UNIT_LUT);
    }
    return this.featureMaps[name];
  }

  curveThumbnail(maps, u, image) {
    const size = 24;
    const n = maps.samples;
    const values = maps.data.subarray(u * n, (u + 1) * n);
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const grid = new Float32Array(size * size);
    for (let col = 0; col < size; col++) {
      const v = values[Math.min(n - 1, Math.floor(((col + 0.5) / size) * n))];
      const level = Math.round(((v - lo) / (hi - lo || 1)) * (size - 1));
      for (let row = 0; row < size; row++) grid[row * size + col] = row <= level ? 1 : 0;
    }
    return image.paint(size, size, grid, UNIT_LUT, (v) => (v ? 200 : 128));
  }

  outputThumbnail(u, image) {
    const surface = this.surface;
    if (surface && surface.kind === "curve") {
      return this.curveThumbnail({ samples: surface.mean.length, data: surface.mean }, 0, image);
    }
    if (!surface || !surface.values) return null;
    const { data, width, height, channels } = surface.values;
    const cells = width * height;
    const step = Math.max(1, Math.floor(width / 40));
    const size = Math.floor(width / step);
    const sample = new Uint8Array(size * size);
    const channel = surface.kind === "probabilities" ? Math.min(u, (channels || 1) - 1) : 0;
    for (let r = 0; r < size; r++) {
      for (let k = 0; k < size; k++) sample[r * size + k] = data[channel * cells + r * step * width + k * step];
    }
    return image.paint(size, size, sample, SURFACE_LUT, (q) => q);
  }

  // ----- interaction ------------------------------------------------------------------------
  hit(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    const size = this.unitSize;
    for (let c = 0; c < (this.cols || []).length; c++) {
      const units = this.cols[c].units;
      for (let u = 0; u < units.length; u++) {
        const unit = units[u];
        if (x >= unit.x && x <= unit.x + size && y >= unit.y && y <= unit.y + size) {
          return { kind: "unit", layer: c, unit: u, column: this.cols[c], x, y };
        }
      }
    }
    let best = null;
    let bestDistance = 5;
    for (const link of this.links()) {
      const x0 = link.from.x + size, y0 = link.from.y + size / 2;
      const x1 = link.to.x, y1 = link.to.y + size / 2;
      if (x < x0 - 2 || x > x1 + 2) continue;
      const distance = bezierDistance(x, y, x0, y0, x1, y1);
      if (distance < bestDistance) { bestDistance = distance; best = { kind: "link", ...link, x, y }; }
    }
    return best;
  }

  mouseMove(event) {
    if (!this.model) return;
    this.setHovered(this.hit(event));
  }

  setHovered(target) {
    const same = (a, b) => a && b && a.kind === b.kind && a.layer === b.layer && a.unit === b.unit && a.i === b.i && a.j === b.j;
    if (same(target, this.hovered)) {
      if (target) { this.hovered = target; this.showTooltip(target); }
      return;
    }
    this.hovered = target;
    this.dirty = true;
    this.urgent = true;
    this.canvas.style.cursor = target && !(target.kind === "unit" && target.column.kind === "input") ? "pointer" : "default";
    if (!target) {
      this.tooltip.hidden = true;
      if (this.handlers.onHoverUnit) this.handlers.onHoverUnit(null);
      return;
    }
    this.showTooltip(target);
    if (this.handlers.onHoverUnit) {
      this.handlers.onHoverUnit(target.kind === "unit" ? { layer: target.layer, unit: target.unit, column: target.column } : null);
    }
  }

  describe(target) {
    const L = this.model.layers.length;
    if (target.kind === "link") {
      const { layer, i, j } = target;
      const entry = this.weightsOf(layer);
      const sup = layer === L + 1 ? "⁽ᵒᵘᵗ⁾" : superscript(layer);
      const source = layer === 1 ? FEATURE_LABELS[this.model.features[i]] : `h${sub(i + 1)}${superscript(layer - 1)}`;
      const target_ = layer === L + 1 ? `z${sub(j + 1)}` : `a${sub(j + 1)}${sup}`;
      const lines = [`<b>weight W${sup}<sub>${i + 1},${j + 1}</sub></b>: ${source} → ${target_}`];
      const w = entry && entry.weights;
      if (w) {
        const pieces = this.pieces(layer);
        for (let p = 0; p < pieces; p++) {
          const index = i * w.shape[1] + j * pieces + p;
          const label = pieces > 1 ? ` (piece ${p + 1})` : "";
          lines.push(`W${label} = ${fmt(w.value[index])}`);
          if (w.grad) lines.push(`∂J/∂W${label} = ${fmt(w.grad[index])}`);
        }
      }
      lines.push("<i>click to type a new weight</i>");
      return lines.join("<br>");
    }
    const { layer, unit, column } = target;
    if (column.kind === "input") {
      const name = column.names[unit];
      const live = this.model.features.includes(name);
      return `<b>input feature ${FEATURE_LABELS[name]}</b><br>${live ? "used: click to remove" : "not used: click to add"} (a feature cross)`;
    }
    const output = column.kind === "output";
    const sup = output ? "⁽ᵒᵘᵗ⁾" : superscript(layer);
    const entry = this.weightsOf(layer);
    const lines = [];
    if (output) {
      lines.push(`<b>output unit ${this.model.outputs > 1 ? unit + 1 : ""}</b>: z${sub(unit + 1)} = h${superscript(L)}W${sup} + b${sup}, then the ${this.model.loss} output`);
    } else {
      const activation = this.model.layers[layer - 1].activation;
      lines.push(`<b>hidden unit h${sub(unit + 1)}${sup}</b> = ${activation}(a${sub(unit + 1)}${sup}), a = hW + b`);
    }
    if (entry && entry.bias) {
      const pieces = this.pieces(layer);
      for (let p = 0; p < pieces; p++) {
        const index = unit * pieces + p;
        lines.push(`bias b${sup}<sub>${unit + 1}</sub>${pieces > 1 ? ` (piece ${p + 1})` : ""} = ${fmt(entry.bias.value[index])}`
          + (entry.bias.grad ? `, ∂J/∂b = ${fmt(entry.bias.grad[index])}` : ""));
      }
    }
    const grads = this.unitGrads && this.unitGrads[layer - 1];
    if (grads) lines.push(`mean |∂L/∂a| = ${fmt(grads[unit])}`);
    lines.push("<i>map: the unit's response over the input plane</i>");
    lines.push("<i>click to type a new bias</i>");
    return lines.join("<br>");
  }

  showTooltip(target) {
    this.tooltip.innerHTML = this.describe(target);
    this.tooltip.hidden = false;
    const left = Math.min(target.x + 14, this.width - 230);
    this.tooltip.style.left = `${Math.max(0, left)}px`;
    this.tooltip.style.top = `${Math.min(target.y + 14, this.height - 90)}px`;
  }

  click(event) {
    const target = this.hit(event);
    if (!target) { this.closeEditor(); return; }
    if (target.kind === "unit" && target.column.kind === "input") {
      if (this.handlers.onToggleFeature) this.handlers.onToggleFeature(target.column.names[target.unit]);
      return;
    }
    this.openEditor(target);
  }

  // ----- the keyboard ---------------------------------------------------------------------------
  // A target as `hit` gives it (for the tooltip, the highlight and the editor) from a choice
  // {column, unit} or {layer, i, j}, clamped to the diagram as it is now; null if it has none.
  targetOf(choice) {
    const cols = this.cols || [];
    if (!cols.length) return null;
    const size = this.unitSize;
    if (choice.layer !== undefined) {
      for (const link of this.links()) {
        if (link.layer === choice.layer && link.i === choice.i && link.j === choice.j) {
          const x = (link.from.x + size + link.to.x) / 2;
          const y = (link.from.y + link.to.y + size) / 2;
          return { kind: "link", ...link, x, y };
        }
      }
      return null;
    }
    const c = Math.max(0, Math.min(cols.length - 1, choice.column));
    const u = Math.max(0, Math.min(cols[c].units.length - 1, choice.unit));
    const unit = cols[c].units[u];
    return { kind: "unit", layer: c, unit: u, column: cols[c], x: unit.x + size / 2, y: unit.y + size / 2 };
  }

  chooseByKey(choice) {
    const target = this.targetOf(choice);
    if (!target) return;
    this.keyTarget = target.kind === "link" ? { layer: target.layer, i: target.i, j: target.j } : { column: target.layer, unit: target.unit };
    this.setHovered(target);
    // the tooltip's words, for a screen reader
    const text = this.describe(target).replace(/<br>/g, ". ").replace(/<[^>]+>/g, "").replace(/click to/g, "Enter to");
    if (this.announcer.textContent !== text) this.announcer.textContent = text;
  }

  key(event) {
    if (!this.model || !this.cols || !this.cols.length || event.ctrlKey || event.metaKey || event.altKey) return;
    const choice = this.keyTarget || { column: 1, unit: 0 };
    const link = choice.layer !== undefined;
    const unitChoice = link ? { column: choice.layer, unit: choice.j } : choice;
    let next = null;
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      const step = event.key === "ArrowUp" ? -1 : 1;
      if (link) {
        const fanIn = choice.layer === 1 ? this.featureRows().length : this.cols[choice.layer - 1].units.length;
        next = { ...choice, i: (choice.i + step + fanIn) % fanIn };
      } else {
        next = { column: choice.column, unit: choice.unit + step };
      }
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      next = { column: unitChoice.column + (event.key === "ArrowLeft" ? -1 : 1), unit: unitChoice.unit };
    } else if (event.key === "w" || event.key === "W") {
      // through the weights into the chosen unit (none into the inputs)
      if (unitChoice.column < 1) return;
      next = link ? { ...choice, i: choice.i + 1 } : { layer: unitChoice.column, i: 0, j: unitChoice.unit };
      if (link && !this.targetOf(next)) next = { ...choice, i: 0 };
    } else if (event.key === "Enter" || event.key === " ") {
      const target = this.targetOf(choice);
      if (!target) return;
      if (target.kind === "unit" && target.column.kind === "input") {
        if (this.handlers.onToggleFeature) this.handlers.onToggleFeature(target.column.names[target.unit]);
      } else {
        this.openEditor(target);
        this.editorByKey = true;
      }
    } else if (event.key === "Escape") {
      this.setHovered(null);
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation(); // the page's own keys (space, →) stay out of the diagram
    if (next) this.chooseByKey(next);
  }

  // ----- the weight / bias editor -------------------------------------------------------------
  buildEditor() {
    const form = document.createElement("form");
    form.className = "weight-editor";
    form.hidden = true;
    form.innerHTML = `<label><span class="editor-label"></span>
      <input type="text" inputmode="decimal" name="value" autocomplete="off"></label>
      <button type="submit" class="small">set</button>
      <button type="button" class="small" data-action="cancel">×</button>
      <div class="field-error" role="alert"></div>`;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitEditor();
    });
    form.querySelector('[data-action="cancel"]').addEventListener("click", () => this.closeEditor());
    form.addEventListener("keydown", (event) => {
      event.stopPropagation();
      if (event.key === "Escape") this.closeEditor();
    });
    this.container.appendChild(form);
    return form;
  }

  openEditor(target) {
    const L = this.model.layers.length;
    const entry = this.weightsOf(target.layer);
    const sup = target.layer === L + 1 ? "out" : String(target.layer);
    let label;
    let current = null;
    if (target.kind === "link") {
      label = `W${sup}[${target.i + 1},${target.j + 1}]`;
      const w = entry && entry.weights;
      if (w) current = w.value[target.i * w.shape[1] + target.j * this.pieces(target.layer) + target.piece];
      this.editing = { parameter: "weights", layer: target.layer, row: target.i, column: target.j * this.pieces(target.layer) + target.piece, name: `W${sup}` };
    } else {
      label = `b${sup}[${target.unit + 1}]`;
      const b = entry && entry.bias;
      if (b) current = b.value[target.unit * this.pieces(target.layer)];
      this.editing = { parameter: "bias", layer: target.layer, row: null, column: target.unit * this.pieces(target.layer), name: `b${sup}` };
    }
    this.editor.querySelector(".editor-label").textContent = `${label} =`;
    const input = this.editor.querySelector("input");
    input.value = current === null ? "" : String(Number(current.toPrecision(4)));
    this.editor.querySelector(".field-error").textContent = "";
    this.editor.hidden = false;
    this.editor.style.left = `${Math.max(0, Math.min(target.x, this.width - 240))}px`;
    this.editor.style.top = `${Math.max(0, Math.min(target.y + 10, this.height - 70))}px`;
    input.focus();
    input.select();
  }

  submitEditor() {
    const input = this.editor.querySelector("input");
    const text = input.value.trim();
    const value = Number(text);
    const error = this.editor.querySelector(".field-error");
    if (text === "" || !Number.isFinite(value)) {
      error.textContent = `“${text}” is not a number: type a finite value such as 0.5 or -1.2`;
      return;
    }
    if (Math.abs(value) > 1e4) {
      error.textContent = "Choose a value between -10000 and 10000";
      return;
    }
    if (this.handlers.onSetWeight) this.handlers.onSetWeight({ ...this.editing, value });
    this.closeEditor();
  }

  closeEditor() {
    this.editor.hidden = true;
    this.editing = null;
    if (this.editorByKey) {
      // back where the keyboard was
      this.editorByKey = false;
      this.canvas.focus();
    }
  }
}

// Which control this is, the same for its copy in rebuilt controls: its action (or class)
// and its layer.
function controlKey(element) {
  const box = element.closest(".layer-controls");
  const what = element.dataset.action || element.dataset.path || element.className;
  return `${what}@${box ? box.dataset.layer : "bar"}`;
}

function button(text, title, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "small";
  element.textContent = text;
  element.title = title;
  element.addEventListener("click", onClick);
  return element;
}

function fmt(value) {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e4)) return value.toExponential(2);
  return value.toFixed(abs < 0.1 ? 4 : 3);
}

// Distance from (x, y) to the cubic link curve, sampled at a few points.
function bezierDistance(x, y, x0, y0, x1, y1) {
  const mid = (x0 + x1) / 2;
  let best = Infinity;
  let px = x0, py = y0;
  for (let k = 1; k <= 16; k++) {
    const t = k / 16;
    const u = 1 - t;
    const bx = u * u * u * x0 + 3 * u * u * t * mid + 3 * u * t * t * mid + t * t * t * x1;
    const by = u * u * u * y0 + 3 * u * u * t * y0 + 3 * u * t * t * y1 + t * t * t * y1;
    best = Math.min(best, segmentDistance(x, y, px, py, bx, by));
    px = bx; py = by;
  }
  return best;
}

function segmentDistance(x, y, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const length = dx * dx + dy * dy;
  const t = length ? Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / length)) : 0;
  const cx = ax + t * dx - x, cy = ay + t * dy - y;
  return Math.sqrt(cx * cx + cy * cy);
}

