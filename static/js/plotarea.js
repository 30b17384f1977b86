// A canvas that fills its container at the device's pixel ratio, with a data-to-pixel
// mapping and light axes. The views that redraw every frame (surface, warps) draw on it:
// Plotly is far too slow for that here (see NOTES: 5 frames/s with Plotly, 60 on canvas).

// The page's type, on canvas as in the stylesheet: DejaVu Sans where it is installed (it has
// every symbol the chapter's notation needs: Greek, sub- and superscripts, ∇, ‖, arrows, so
// no fallback font is looked up glyph by glyph), else the system's.
export const FONT_FAMILY = '"DejaVu Sans", system-ui, sans-serif';
export const LABEL_FONT = `11px ${FONT_FAMILY}`;
export const TITLE_FONT = `600 11px ${FONT_FAMILY}`;

// The page's canvases are redrawn up to once per animation frame. Desynchronised (low-latency)
// contexts hand their pixels to the compositor as they are drawn; a synchronised one is
// rasterised again and copied while the main thread commits the frame, which in software
// compositing (no GPU) cost about 4 ms of every animation frame here (docs/benchmarks.md).
// The views never leave a canvas half drawn at the end of a task, so nothing tears.
export const CANVAS_OPTIONS = { desynchronized: true };

export class PlotArea {
  constructor(container, { margin = { left: 30, right: 6, top: 6, bottom: 20 }, layers = 1 } = {}) {
    this.container = container;
    this.margin = margin;
    this.canvases = [];
    for (let i = 0; i < layers; i++) {
      const canvas = document.createElement("canvas");
      canvas.className = "plot-layer";
      container.appendChild(canvas);
      this.canvases.push(canvas);
    }
    this.contexts = this.canvases.map((c) => c.getContext("2d", CANVAS_OPTIONS));
    this.width = 0;
    this.height = 0;
    this.onResize = null;
    // contentRect, not getBoundingClientRect: reading it forces no layout of the page
    this.observer = new ResizeObserver((entries) => {
      const rect = entries[entries.length - 1].contentRect;
      this.resize(rect.width, rect.height);
    });
    // the observer's first call sizes the canvases (no forced layout while the page builds)
    this.observer.observe(container);
  }

  resize(cssWidth, cssHeight) {
    if (cssWidth === undefined) {
      const rect = this.container.getBoundingClientRect();
      cssWidth = rect.width;
      cssHeight = rect.height;
    }
    const width = Math.max(10, Math.round(cssWidth));
    const height = Math.max(10, Math.round(cssHeight));
    if (width === this.width && height === this.height) return;
    this.width = width;
    this.height = height;
    const ratio = window.devicePixelRatio || 1;
    for (let i = 0; i < this.canvases.length; i++) {
      const canvas = this.canvases[i];
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      this.contexts[i].setTransform(ratio, 0, 0, ratio, 0, 0);
    }
    if (this.onResize) this.onResize();
  }

  // The plot rectangle inside the margins, in CSS pixels.
  get inner() {
    const m = this.margin;
    return {
      left: m.left, top: m.top,
      width: Math.max(1, this.width - m.left - m.right),
      height: Math.max(1, this.height - m.top - m.bottom),
    };
  }

  // Map from data coordinates: xRange, yRange = [lo, hi]; `square` keeps equal scales.
  setRanges(xRange, yRange, square = false) {
    let [x0, x1] = xRange;
    let [y0, y1] = yRange;
    if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
    if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
    const inner = this.inner;
    if (square) {
      const scale = Math.min(inner.width / (x1 - x0), inner.height / (y1 - y0));
      const xPad = (inner.width / scale - (x1 - x0)) / 2;
      const yPad = (inner.height / scale - (y1 - y0)) / 2;
      x0 -= xPad; x1 += xPad; y0 -= yPad; y1 += yPad;
    }
    this.xRange = [x0, x1];
    this.yRange = [y0, y1];
    this.sx = inner.width / (x1 - x0);
    this.sy = inner.height / (y1 - y0);
  }

  px(x) { return this.inner.left + (x - this.xRange[0]) * this.sx; }
  py(y) { return this.inner.top + this.inner.height - (y - this.yRange[0]) * this.sy; }
  dataX(px) { return this.xRange[0] + (px - this.inner.left) / this.sx; }
  dataY(py) { return this.yRange[0] + (this.inner.top + this.inner.height - py) / this.sy; }

  clear(index = 0) {
    this.contexts[index].clearRect(0, 0, this.width, this.height);
  }

  drawAxes(ctx, { xLabel = "", yLabel = "", ticks = true } = {}) {
    const inner = this.inner;
    ctx.save();
    ctx.strokeStyle = "#9aa3ad";
    ctx.lineWidth = 1;
    ctx.strokeRect(inner.left + 0.5, inner.top + 0.5, inner.width - 1, inner.height - 1);
    if (ticks) {
      ctx.fillStyle = "#5b6570";
      ctx.font = LABEL_FONT;
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (const value of niceTicks(this.xRange[0], this.xRange[1], Math.max(2, inner.width / 60))) {
        const x = this.px(value);
        ctx.fillRect(x, inner.top + inner.height, 1, 3);
        ctx.fillText(formatTick(value), x, inner.top + inner.height + 4);
      }
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (const value of niceTicks(this.yRange[0], this.yRange[1], Math.max(2, inner.height / 40))) {
        const y = this.py(value);
        ctx.fillRect(inner.left - 3, y, 3, 1);
        ctx.fillText(formatTick(value), inner.left - 5, y);
      }
    }
    ctx.fillStyle = "#333c46";
    ctx.font = LABEL_FONT;
    if (xLabel) {
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      ctx.fillText(xLabel, inner.left + inner.width - 3, inner.top + inner.height - 2);
    }
    if (yLabel) {
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(yLabel, inner.left + 3, inner.top + 2);
    }
    ctx.restore();
  }
}

export function niceTicks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0) || !isFinite(span)) return [];
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) {
    ticks.push(Math.abs(v) < step * 1e-6 ? 0 : v);
  }
  return ticks;
}

export function formatTick(value) {
  const abs = Math.abs(value);
  if (abs === 0) return "0";
  if (abs >= 1000 || abs < 0.01) return value.toExponential(0);
  return String(Number(value.toPrecision(3)));
}

// Paint a grid of values into an offscreen canvas through a colour table, once per frame;
// the caller scales it onto the plot with drawImage (smoothing interpolates the grid).
export class GridImage {
  constructor() {
    this.canvas = document.createElement("canvas");
    this.context = this.canvas.getContext("2d");
    this.image = null;
  }

  ensure(width, height) {
    if (!this.image || this.image.width !== width || this.image.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
      this.image = this.context.createImageData(width, height);
    }
    return this.image.data;
  }

  // values: row-major, row 0 at the bottom (smallest y). `toIndex(v)` maps a value to 0..255
  // (identity when omitted). 8-bit grids go through a 256-colour palette built once per call,
  // so each pixel is one table lookup and one 32-bit store (RGBA bytes of a little-endian word).
  paint(width, height, values, lut, toIndex = null) {
    const data = this.ensure(width, height);
    if (values instanceof Uint8Array) {
      const palette = this.palette || (this.palette = new Uint32Array(256));
      for (let q = 0; q < 256; q++) {
        const i = (toIndex ? toIndex(q) : q) * 4;
        palette[q] = ((255 << 24) | (lut[i + 2] << 16) | (lut[i + 1] << 8) | lut[i]) >>> 0;
      }
      const pixels = new Uint32Array(data.buffer, data.byteOffset, width * height);
      for (let row = 0; row < height; row++) {
        const target = (height - 1 - row) * width;
        const source = row * width;
        for (let col = 0; col < width; col++) pixels[target + col] = palette[values[source + col]];
      }
    } else {
      for (let row = 0; row < height; row++) {
        const target = (height - 1 - row) * width * 4;
        const source = row * width;
        for (let col = 0; col < width; col++) {
          const index = toIndex(values[source + col]) * 4;
          const offset = target + col * 4;
          data[offset] = lut[index];
          data[offset + 1] = lut[index + 1];
          data[offset + 2] = lut[index + 2];
          data[offset + 3] = 255;
        }
      }
    }
    this.context.putImageData(this.image, 0, 0);
    return this.canvas;
  }

  // rgb: a function (col, row) -> writes into data; used for class tints.
  paintWith(width, height, fill) {
    const data = this.ensure(width, height);
    fill(data);
    this.context.putImageData(this.image, 0, 0);
    return this.canvas;
  }
}

export function clampIndex(value) {
  const index = value | 0;
  return index < 0 ? 0 : index > 255 ? 255 : index;
}
