// The client's copy of the session: the configuration the server last accepted, the
// curves accumulated from every frame's history, the latest weights (kept so that a
// reconnect can restore them), and the page's own options. The URL fragment holds the
// whole configuration, so that a link reopens the same run (in the same colours).

import { DEFAULT_PALETTE, PALETTES } from "./palette.js";

const URL_KEY = "c";
const MAX_CURVE = 4000; // points per curve before they are thinned by half
// Weight snapshots along training, for a loss landscape's path (issue 9): at most this many,
// spread over the whole run (thinned by half, and taken half as often, when full).
const MAX_SNAPSHOTS = 50;
let curveVersion = 0; // grows with every change, across resets of the curves

export class PlaygroundState {
  constructor() {
    this.config = null;
    this.view = null;
    this.speed = null;
    this.playing = false;
    this.network = null;
    this.step = 0;
    this.epoch = 0;
    this.session = null;
    this.limits = {};
    this.weights = null; // Map name -> {value: Float32Array, shape}
    this.curves = emptyCurves();
    this.options = { showTest: true, discretize: false, pointClass: 1, stage: "activation", palette: DEFAULT_PALETTE };
    this.data = null; // decoded points of the current data_version
    this.dataVersion = -1;
    this.snapshots = []; // {step, params}: the frames' weights (float32) along training
    this.snapshotGap = 1; // steps between kept snapshots
  }

  // A frame's weights (a Map from adaptFrame, not copied: each frame has its own arrays).
  recordSnapshot(step, params) {
    const list = this.snapshots;
    const last = list[list.length - 1];
    if (last && step < last.step) {
      // a reset or a new configuration: the counters restarted, and so does the path
      list.length = 0;
      this.snapshotGap = 1;
    } else if (last && step - last.step < this.snapshotGap) {
      return;
    }
    list.push({ step, params });
    if (list.length > MAX_SNAPSHOTS) {
      this.snapshots = list.filter((_, i) => i % 2 === 0);
      this.snapshotGap *= 2;
    }
  }

  // The snapshots whose parameters have the shapes of `weights` (nested lists, as `export`
  // gives them), as nested lists: a unit or layer added since then changed the shapes.
  snapshotsLike(weights) {
    const shapeOf = (value) => (Array.isArray(value) ? [value.length, ...shapeOf(value[0])] : []);
    const shapes = Object.entries(weights).map(([name, value]) => [name, shapeOf(value).join("x")]);
    const out = [];
    for (const { params } of this.snapshots) {
      const same = shapes.every(([name, shape]) => params.has(name)
        && (params.get(name).shape || []).join("x") === shape);
      if (!same) continue;
      const snapshot = {};
      for (const [name] of shapes) {
        // float32 values to 8 significant digits: all they hold, in half the JSON
        const { value, shape } = params.get(name);
        snapshot[name] = nest(Float64Array.from(value, (x) => Number(x.toPrecision(8))), shape);
      }
      out.push(snapshot);
    }
    return out;
  }

  // A "state" or "hello" reply: the server's word on what the session now is.
  accept(message) {
    if (message.config) this.config = message.config;
    if (message.view) this.view = message.view;
    if (message.speed !== undefined) this.speed = message.speed;
    if (message.playing !== undefined) this.playing = message.playing;
    if (message.network) this.network = message.network;
    if (message.step !== undefined) this.step = message.step;
    if (message.epoch !== undefined) this.epoch = message.epoch;
  }

  resetCurves() {
    this.curves = emptyCurves();
    this.curves.version = ++curveVersion;
  }

  // Append a frame's history (everything since the previous frame) to the curves.
  addHistory(history, gradientNorms) {
    const steps = history.step;
    if (!steps || !steps.length) return;
    let curves = this.curves;
    // a reset, new data or a restored session starts the counters again: start new curves
    const n = curves.step.length;
    if (n && (steps[0] < curves.step[n - 1] || history.epoch[0] < curves.epoch[n - 1] - 1e-9)) {
      this.resetCurves();
      curves = this.curves;
    }
    for (let i = 0; i < steps.length; i++) {
      curves.step.push(steps[i]);
      curves.epoch.push(history.epoch[i]);
      curves.trainLoss.push(history.train_loss[i]);
      curves.testLoss.push(history.test_loss[i]);
      curves.trainAccuracy.push(history.train_accuracy ? history.train_accuracy[i] : NaN);
      curves.testAccuracy.push(history.test_accuracy ? history.test_accuracy[i] : NaN);
    }
    if (gradientNorms) {
      curves.normStep.push(steps[steps.length - 1]);
      curves.norms.push(gradientNorms);
    }
    if (curves.step.length > MAX_CURVE) thin(curves, ["step", "epoch", "trainLoss", "testLoss", "trainAccuracy", "testAccuracy"]);
    if (curves.normStep.length > MAX_CURVE / 4) thin(curves, ["normStep", "norms"]);
    curves.version = ++curveVersion;
  }

  // Weights as the server's `export` / `configure.weights` want them: nested lists.
  weightsAsLists() {
    if (!this.weights) return null;
    const result = {};
    for (const [name, parameter] of this.weights) result[name] = nest(parameter.value, parameter.shape);
    return result;
  }

  // ----- the URL -----------------------------------------------------------------------
  urlFragment() {
    if (!this.config) return "";
    const payload = { config: this.config };
    if (this.speed !== null) payload.speed = this.speed;
    if (this.options.palette !== DEFAULT_PALETTE) payload.palette = this.options.palette;
    return `#${URL_KEY}=${encodeBase64Url(JSON.stringify(payload))}`;
  }
}

function emptyCurves() {
  return {
    version: 0, step: [], epoch: [], trainLoss: [], testLoss: [], trainAccuracy: [], testAccuracy: [],
    normStep: [], norms: [],
  };
}

function thin(curves, keys) {
  for (const key of keys) curves[key] = curves[key].filter((_, i) => i % 2 === 0);
}

function nest(values, shape) {
  if (!shape || shape.length <= 1) return Array.from(values, Number);
  const rows = shape[0];
  const width = values.length / rows;
  const out = [];
  for (let r = 0; r < rows; r++) out.push(nest(values.subarray(r * width, (r + 1) * width), shape.slice(1)));
  return out;
}

export function encodeBase64Url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeBase64Url(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

// Read the configuration from a location hash. Returns {config, speed, palette} or {error} or
// null; `palette` is null unless the link names a palette this page has.
export function readUrl(hash) {
  if (!hash || hash.length < 2) return null;
  const params = new URLSearchParams(hash.slice(1));
  const encoded = params.get(URL_KEY);
  if (encoded === null) return null;
  let payload;
  try {
    payload = JSON.parse(decodeBase64Url(encoded));
  } catch (error) {
    return { error: "The link's configuration could not be read (it is cut short or damaged); the default network is shown instead." };
  }
  if (!payload || typeof payload !== "object" || !payload.config || typeof payload.config !== "object") {
    return { error: "The link does not hold a configuration; the default network is shown instead." };
  }
  return {
    config: payload.config,
    speed: typeof payload.speed === "number" ? payload.speed : null,
    palette: Object.hasOwn(PALETTES, payload.palette) ? payload.palette : null,
  };
}

// Check an imported JSON file before it is sent: {config, weights?, speed?, view?, palette?}
// or {error}.
export function readImport(text) {
  let payload;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    return { error: `The file is not JSON: ${error.message}` };
  }
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
    return { error: "The file must hold one JSON object with a \"config\" (as written by Export)." };
  }
  if (!payload.config || typeof payload.config !== "object") {
    return { error: "The file has no \"config\" object; export a network first to see the format." };
  }
  if (payload.weights !== undefined && (typeof payload.weights !== "object" || Array.isArray(payload.weights) || payload.weights === null)) {
    return { error: "\"weights\" must be an object of named arrays (W1, b1, …, Wout, bout)." };
  }
  return {
    config: payload.config,
    weights: payload.weights || null,
    speed: typeof payload.speed === "number" ? payload.speed : null,
    view: payload.view && typeof payload.view === "object" ? payload.view : null,
    palette: Object.hasOwn(PALETTES, payload.palette) ? payload.palette : null,
  };
}
