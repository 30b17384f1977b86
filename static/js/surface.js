// The decision surface: the output unit's prediction over the input plane, with the
// training and test points. Drawn on canvas every frame (an 8-bit grid scaled up), with
// the points on a second canvas that is redrawn only when the data or options change.
//
// Click adds a point of the selected class; shift-click removes the nearest point.

import { PlotArea, GridImage, clampIndex, LABEL_FONT } from "./plotarea.js";
import { SURFACE_LUT, UNIT_LUT, DENSITY_LUT, CLASS_RGB, classColor } from "./palette.js";

const WHITE = [248, 248, 248];

export class SurfaceView {
  constructor(container, { onAddPoint = null, onRemovePoint = null, onHover = null } = {}) {
    // as much margin across as down (36 px each), so that a square container gives a square
    // plot box; `setRanges(..., square)` keeps equal scales whatever the container's shape
    this.area = new PlotArea(container, { layers: 2, margin: { left: 30, right: 6, top: 16, bottom: 20 } });
    this.area.onResize = () => { this.dirty = true; this.pointsDirty = true; };
    this.image = new GridImage();
    this.unitImage = new GridImage();
    this.data = null;
    this.surface = null;
    this.unitMap = null;
    this.options = { showTest: true, discretize: false };
    this.dirty = true;
    this.pointsDirty = true;
    this.onAddPoint = onAddPoint;
    this.onRemovePoint = onRemovePoint;
    this.onHover = onHover;
    this.frames = 0;
    const overlay = this.area.canvases[1];
    overlay.addEventListener("click", (event) => this.click(event));
    overlay.addEventListener("mousemove", (event) => this.hover(event));
    overlay.addEventListener("mouseleave", () => this.onHover && this.onHover(null));
    // the keyboard's way to place points (issue 12): arrows move a cross, Enter adds a point
    // of the chosen class there, Delete removes the nearest
    this.cursor = null; // [x1, x2] in data coordinates while the keyboard has the surface
    container.tabIndex = 0;
    container.setAttribute("aria-keyshortcuts", "ArrowUp ArrowDown ArrowLeft ArrowRight Enter Delete");
    container.addEventListener("keydown", (event) => this.key(event));
    container.addEventListener("focus", () => {
      if (!container.matches(":focus-visible") || !this.equalScales) return;
      const [[a, b], [c, d]] = this.ranges();
      if (!this.cursor) this.cursor = [(a + b) / 2, (c + d) / 2];
      this.moveCursor(0, 0);
    });
    container.addEventListener("blur", () => {
      if (!this.cursor) return;
      this.cursor = null;
      this.pointsDirty = true;
      if (this.onHover) this.onHover(null);
    });
  }

  key(event) {
    if (!this.cursor || event.ctrlKey || event.metaKey || event.altKey) return;
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (steps[event.key]) {
      const fraction = event.shiftKey ? 0.01 : 0.05; // of the plane's width per press
      this.moveCursor(steps[event.key][0] * fraction, steps[event.key][1] * fraction);
    } else if (event.key === "Enter" || event.key === " ") {
      if (this.onAddPoint) this.onAddPoint(this.cursor[0], this.cursor[1]);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      if (this.onRemovePoint) this.onRemovePoint(this.cursor[0], this.cursor[1]);
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation(); // the page's own keys (space, →) stay out of the surface
  }

  moveCursor(dx, dy) {
    const [[a, b], [c, d]] = this.ranges();
    const clamp = (value, lo, hi) => Math.max(lo, Math.min(hi, value));
    this.cursor = [clamp(this.cursor[0] + dx * (b - a), a, b), clamp(this.cursor[1] + dy * (d - c), c, d)];
    this.pointsDirty = true;
    if (this.onHover) {
      this.onHover({ x1: this.cursor[0], x2: this.cursor[1], value: this.valueAt(this.cursor), byKey: true });
    }
  }

  get canvas() { return this.area.canvases[0]; }

  // data: {task, classes, inputDim, extent, targetExtent, train: {x, y}, test: {x, y}}
  setData(data) {
    this.data = data;
    this.dirty = true;
    this.pointsDirty = true;
  }

  setSurface(surface) {
    this.surface = surface;
    this.dirty = true;
  }

  setOptions(options) {
    Object.assign(this.options, options);
    this.dirty = true;
    this.pointsDirty = true;
  }

  // Show one unit's response map over the data instead of the output (hover in the diagram).
  showUnitMap(map) {
    this.unitMap = map;
    this.dirty = true;
  }

  ranges() {
    const surface = this.surface;
    const data = this.data;
    const extent = (surface && surface.extent) || (data && data.extent) || [[-6, 6], [-6, 6]];
    if (extent.length === 1 || (surface && surface.kind === "curve")) {
      const target = (surface && surface.targetExtent) || (data && data.targetExtent) || [-2, 2];
      return [extent[0], target];
    }
    return [extent[0], extent[1]];
  }

  // Whether both axes are input coordinates (x₁, x₂): then they share one scale, so that a
  // circle in the data is drawn as a circle. A 1-D input's curve plots y against x₁ instead.
  get equalScales() {
    const surface = this.surface;
    const data = this.data;
    if (surface && surface.kind === "curve") return false;
    const extent = (surface && surface.extent) || (data && data.extent);
    return !extent || extent.length !== 1;
  }

  // The input plane's rectangle in CSS pixels: where the surface's grid is drawn.
  get planeRect() {
    const area = this.area;
    const [[x0, x1], [y0, y1]] = (this.surface && this.surface.extent) || this.ranges();
    const left = area.px(x0);
    const top = area.py(y1);
    return { left, top, width: area.px(x1) - left, height: area.py(y0) - top };
  }

  draw() {
    if (!this.dirty && !this.pointsDirty) return false;
    if (!this.surface && !this.data) return false; // nothing to show before the first frame
    const area = this.area;
    const [xRange, yRange] = this.ranges();
    area.setRanges(xRange, yRange, this.equalScales);
    if (this.dirty) {
      const ctx = area.contexts[0];
      area.clear(0);
      const inner = area.inner;
      ctx.fillStyle = "#f8f8f8";
      ctx.fillRect(inner.left, inner.top, inner.width, inner.height);
      if (this.unitMap) this.drawUnitMap(ctx);
      else if (this.surface) this.drawSurface(ctx);
      this.templatesDrawn = 0;
      if (this.surface && this.surface.templates) this.drawTemplates(ctx, this.surface.templates);
      this.dirty = false;
      this.frames += 1;
    }
    if (this.pointsDirty) {
      this.drawPoints();
      this.pointsDirty = false;
    }
    return true;
  }

  drawImage(ctx, canvas, smooth = true) {
    const rect = this.planeRect;
    ctx.imageSmoothingEnabled = smooth;
    ctx.drawImage(canvas, rect.left, rect.top, rect.width, rect.height);
  }

  // The output's picture over the input plane, as last painted (null for 1-D data).
  get picture() {
    const kind = this.surface && this.surface.kind;
    return kind && kind !== "curve" && this.image.image ? { canvas: this.image.canvas, extent: this.surface.extent } : null;
  }

  drawSurface(ctx) {
    const surface = this.surface;
    const { discretize } = this.options;
    if (surface.kind === "probability") {
      const { data, width, height } = surface.values;
      const toIndex = discretize ? (q) => (q >= 128 ? 230 : 25) : (q) => q;
      this.drawImage(ctx, this.image.paint(width, height, data, SURFACE_LUT, toIndex), !discretize);
    } else if (surface.kind === "probabilities") {
      this.drawImage(ctx, this.paintClasses(surface.values, discretize), !discretize);
    } else if (surface.kind === "value") {
      const { data, width, height } = surface.values;
      const toIndex = discretize ? (q) => (q >= 128 ? 230 : 25) : (q) => q;
      this.drawImage(ctx, this.image.paint(width, height, data, SURFACE_LUT, toIndex), !discretize);
    } else if (surface.kind === "curve") {
      this.drawCurve(ctx, surface);
    }
  }

  // Softmax outputs: each cell takes the colour of its most probable class, paler where
  // that probability is low (K classes share the plane).
  paintClasses(values, discretize) {
    const { data, width, height, channels } = values;
    const cells = width * height;
    return this.image.paintWith(width, height, (pixels) => {
      for (let row = 0; row < height; row++) {
        const target = (height - 1 - row) * width;
        for (let col = 0; col < width; col++) {
          const cell = row * width + col;
          let best = 0;
          let bestValue = -1;
          for (let k = 0; k < channels; k++) {
            const value = data[k * cells + cell];
            if (value > bestValue) { bestValue = value; best = k; }
          }
          const floor = 1 / channels;
          const confidence = discretize ? 1 : Math.max(0, (bestValue / 255 - floor) / (1 - floor));
          const color = CLASS_RGB[best % CLASS_RGB.length];
          const strength = 0.15 + 0.45 * confidence;
          const offset = (target + col) * 4;
          pixels[offset] = WHITE[0] + (color[0] - WHITE[0]) * strength;
          pixels[offset + 1] = WHITE[1] + (color[1] - WHITE[1]) * strength;
          pixels[offset + 2] = WHITE[2] + (color[2] - WHITE[2]) * strength;
          pixels[offset + 3] = 255;
        }
      }
    });
  }

  drawCurve(ctx, surface) {
    const area = this.area;
    if (surface.density) {
      const { data, width, height } = surface.density;
      ctx.save();
      const top = area.py(surface.targetExtent ? surface.targetExtent[1] : area.yRange[1]);
      const bottom = area.py(surface.targetExtent ? surface.targetExtent[0] : area.yRange[0]);
      const canvas = this.image.paint(width, height, data, DENSITY_LUT, (q) => q);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(canvas, area.inner.left, top, area.inner.width, bottom - top);
      ctx.restore();
    }
    const x = surface.x;
    const mean = surface.mean;
    if (surface.std) {
      ctx.beginPath();
      for (let i = 0; i < x.length; i++) ctx.lineTo(area.px(x[i]), area.py(mean[i] + surface.std[i]));
      for (let i = x.length - 1; i >= 0; i--) ctx.lineTo(area.px(x[i]), area.py(mean[i] - surface.std[i]));
      ctx.closePath();
      ctx.fillStyle = "rgba(214,64,42,0.15)";
      ctx.fill();
    }
    ctx.beginPath();
    for (let i = 0; i < x.length; i++) ctx.lineTo(area.px(x[i]), area.py(mean[i]));
    ctx.strokeStyle = "#c0392b";
    ctx.lineWidth = 2;
    ctx.stroke();
  }

  // RBF units' templates: a cross at each centre (on a 1-D plot, a tick on the x axis),
  // larger than a data point so that a template sitting on its example stays visible.
  drawTemplates(ctx, templates) {
    const area = this.area;
    const { data, dims } = templates;
    const inner = area.inner;
    const points = [];
    for (let i = 0; i + dims <= data.length; i += dims) {
      const x = area.px(data[i]);
      const y = dims === 1 ? inner.top + inner.height - 7 : area.py(data[i + 1]);
      if (x >= inner.left && x <= inner.left + inner.width && y >= inner.top && y <= inner.top + inner.height) points.push([x, y]);
    }
    ctx.save();
    ctx.lineCap = "round";
    for (const [width, colour] of [[4.5, "rgba(255,255,255,0.95)"], [2, "#1d2630"]]) {
      ctx.lineWidth = width;
      ctx.strokeStyle = colour;
      ctx.beginPath();
      for (const [x, y] of points) {
        ctx.moveTo(x - 6, y - 6); ctx.lineTo(x + 6, y + 6);
        ctx.moveTo(x - 6, y + 6); ctx.lineTo(x + 6, y - 6);
      }
      ctx.stroke();
    }
    ctx.restore();
    this.templatesDrawn = points.length;
  }

  drawUnitMap(ctx) {
    const map = this.unitMap;
    if (map.kind === "curve") {
      const area = this.area;
      const x = map.x;
      ctx.save();
      ctx.beginPath();
      for (let i = 0; i < x.length; i++) ctx.lineTo(area.px(x[i]), area.py(map.values[i]));
      ctx.strokeStyle = "#444";
      ctx.lineWidth = 2;
      ctx.stroke();
      ctx.restore();
    } else {
      const canvas = this.unitImage.paint(map.width, map.height, map.data, UNIT_LUT, map.toIndex || ((q) => q));
      this.drawImage(ctx, canvas, true);
    }
    ctx.save();
    ctx.fillStyle = "rgba(30,35,40,0.8)";
    ctx.font = LABEL_FONT;
    ctx.textBaseline = "top";
    ctx.fillText(map.label, this.area.inner.left + 6, this.area.inner.top + 4);
    ctx.restore();
  }

  // The palette changed (palette.js rewrote its tables): draw the surface and points again.
  recolour() {
    this.dirty = true;
    this.pointsDirty = true;
  }

  drawPoints() {
    const area = this.area;
    const ctx = area.contexts[1];
    area.clear(1);
    const data = this.data;
    const oneDimensional = data && data.inputDim === 1;
    area.drawAxes(ctx, { xLabel: "x₁", yLabel: oneDimensional ? "y" : "x₂" });
    if (!data) return;
    const inner = area.inner;
    ctx.save();
    ctx.beginPath();
    ctx.rect(inner.left, inner.top, inner.width, inner.height);
    ctx.clip();
    const regression = data.task === "regression";
    const draw = (set, test) => {
      const n = set.y.length;
      const x = set.x;
      const dims = data.inputDim;
      for (let i = 0; i < n; i++) {
        const px = area.px(x[i * dims]);
        const py = oneDimensional ? area.py(set.y[i]) : area.py(x[i * dims + 1]);
        ctx.beginPath();
        ctx.arc(px, py, test ? 3.2 : 3.4, 0, 2 * Math.PI);
        if (regression && !oneDimensional) {
          ctx.fillStyle = valueColor(set.y[i], data.targetExtent);
        } else {
          ctx.fillStyle = regression ? "#37414b" : classColor(set.y[i]);
        }
        if (test) {
          ctx.lineWidth = 1.6;
          ctx.strokeStyle = ctx.fillStyle;
          ctx.fillStyle = "rgba(255,255,255,0.85)";
          ctx.fill();
          ctx.stroke();
        } else {
          ctx.fill();
          ctx.lineWidth = 0.8;
          ctx.strokeStyle = "rgba(255,255,255,0.9)";
          ctx.stroke();
        }
      }
    };
    draw(data.train, false);
    if (this.options.showTest && data.test) draw(data.test, true);
    if (this.cursor) {
      // the keyboard's cross
      const x = area.px(this.cursor[0]);
      const y = area.py(this.cursor[1]);
      ctx.beginPath();
      ctx.moveTo(x - 9, y); ctx.lineTo(x + 9, y);
      ctx.moveTo(x, y - 9); ctx.lineTo(x, y + 9);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    ctx.restore();
  }

  eventPoint(event) {
    const rect = this.area.canvases[1].getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    const inner = this.area.inner;
    if (px < inner.left || px > inner.left + inner.width || py < inner.top || py > inner.top + inner.height) {
      return null;
    }
    return [this.area.dataX(px), this.area.dataY(py)];
  }

  click(event) {
    const point = this.eventPoint(event);
    if (!point) return;
    if (event.shiftKey) {
      if (this.onRemovePoint) this.onRemovePoint(point[0], point[1]);
    } else if (this.onAddPoint) {
      this.onAddPoint(point[0], point[1]);
    }
  }

  hover(event) {
    if (!this.onHover) return;
    const point = this.eventPoint(event);
    this.onHover(point && { x1: point[0], x2: point[1], value: point && this.valueAt(point) });
  }

  // The prediction under the pointer, read back from the 8-bit grid.
  valueAt([x1, x2]) {
    const surface = this.surface;
    if (!surface || surface.kind === "curve" || !surface.values) return null;
    const { width, height, data, lo, hi, channels } = surface.values;
    const [[a, b], [c, d]] = surface.extent;
    const col = Math.floor(((x1 - a) / (b - a)) * width);
    const row = Math.floor(((x2 - c) / (d - c)) * height);
    if (col < 0 || col >= width || row < 0 || row >= height) return null;
    const cell = row * width + col;
    const decode = (q, k = 0) => {
      const low = Array.isArray(lo) || ArrayBuffer.isView(lo) ? lo[k] : lo;
      const high = Array.isArray(hi) || ArrayBuffer.isView(hi) ? hi[k] : hi;
      return low + (q / 255) * (high - low);
    };
    if (surface.kind === "probabilities") {
      const result = [];
      for (let k = 0; k < channels; k++) result.push(decode(data[k * width * height + cell], k));
      return result;
    }
    return decode(data[cell]);
  }
}

function valueColor(value, range) {
  const [lo, hi] = range || [-1, 1];
  const t = (value - lo) / (hi - lo || 1);
  const index = clampIndex(t * 255) * 4;
  const strong = UNIT_LUT;
  return `rgb(${strong[index]},${strong[index + 1]},${strong[index + 2]})`;
}
