// The settings panel and the top bar: every control sends one `patch` (or command) and is
// set back from the server's `state` reply, so the page always shows what the session
// really runs. A rejected value stays in its box, marked, with the server's sentence
// beside it; the session keeps running with the value it had.

import { FEATURE_LABELS } from "./network.js";
import { classColor } from "./palette.js";

// Which output units suit which task (engine.datasets.LOSS_TASKS, section 6.3.2).
const LOSS_TASKS = {
  bernoulli: ["binary"],
  softmax: ["binary", "multiclass"],
  squared: ["binary", "multiclass", "regression"],
  absolute: ["binary", "multiclass", "regression"],
  gaussian: ["regression"],
  gaussian_learned: ["regression"],
  mixture: ["regression"],
};
const LOSS_TITLES = {
  bernoulli: "sigmoid unit, Bernoulli −log p",
  softmax: "softmax units, multinoulli −log p",
  squared: "linear unit, squared error",
  absolute: "linear unit, absolute error",
  gaussian: "linear unit, Gaussian (fixed β)",
  gaussian_learned: "Gaussian with learned precision β(x)",
  mixture: "mixture density network",
};
const SPEED_MIN = 1;
const SPEED_MAX = 20000;

export function speedFromSlider(position) {
  return Math.round(SPEED_MIN * (SPEED_MAX / SPEED_MIN) ** (position / 100));
}
export function sliderFromSpeed(speed) {
  return Math.round((100 * Math.log(Math.max(SPEED_MIN, speed) / SPEED_MIN)) / Math.log(SPEED_MAX / SPEED_MIN));
}

function getPath(object, path) {
  return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), object);
}

function formatValue(value) {
  if (typeof value !== "number") return value;
  return String(Number(value.toPrecision(6)));
}

export class Controls {
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    this.datasets = [];
    this.presets = [];
    this.config = null;
    this.inputs = [...root.querySelectorAll("[data-path]")];
    for (const input of this.inputs) {
      const event = input.type === "range" ? "change" : input.tagName === "SELECT" ? "change" : "change";
      input.addEventListener(event, () => this.changed(input));
      if (input.type === "range") {
        input.addEventListener("input", () => this.showRangeValue(input));
      }
      if (input.type === "text") {
        input.addEventListener("keydown", (event) => {
          if (event.key === "Enter") { event.preventDefault(); this.changed(input); }
        });
      }
    }
    this.penalty = document.getElementById("penalty");
    this.penaltyRate = document.getElementById("penalty-rate");
    this.penalty.addEventListener("change", () => this.penaltyChanged());
    this.penaltyRate.addEventListener("change", () => this.penaltyChanged());
    this.features = document.getElementById("features");
    document.getElementById("regenerate").addEventListener("click", () => {
      const seed = Math.floor(Math.random() * 2 ** 31);
      this.handlers.onPatch("data.seed", seed);
    });
    this.bindTopbar();
  }

  bindTopbar() {
    const h = this.handlers;
    this.playButton = document.getElementById("play");
    this.playButton.addEventListener("click", () => h.onTogglePlay());
    document.getElementById("step").addEventListener("click", () => h.onCommand({ type: "step" }));
    document.getElementById("epoch").addEventListener("click", () => h.onCommand({ type: "epoch" }));
    document.getElementById("reset").addEventListener("click", () => h.onCommand({ type: "reset" }));
    this.speed = document.getElementById("speed");
    this.speedValue = document.getElementById("speed-value");
    this.speed.addEventListener("input", () => { this.speedValue.textContent = `${speedFromSlider(Number(this.speed.value))}/s`; });
    this.speed.addEventListener("change", () => h.onSpeed(speedFromSlider(Number(this.speed.value))));
    this.preset = document.getElementById("preset");
    this.preset.addEventListener("change", () => {
      const preset = this.presets.find((p) => p.name === this.preset.value);
      if (preset) h.onPreset(preset);
    });
    document.getElementById("export").addEventListener("click", () => h.onExport());
    document.getElementById("share").addEventListener("click", () => h.onShare());
    const importInput = document.getElementById("import");
    importInput.addEventListener("change", async () => {
      const file = importInput.files && importInput.files[0];
      if (!file) return;
      const text = await file.text();
      importInput.value = "";
      h.onImport(text);
    });
    this.counters = {
      epoch: document.getElementById("epoch-count"),
      step: document.getElementById("step-count"),
      trainLoss: document.getElementById("train-loss"),
      testLoss: document.getElementById("test-loss"),
    };
  }

  setPresets(presets) {
    this.presets = presets;
    this.preset.textContent = "";
    const custom = document.createElement("option");
    custom.value = "";
    custom.textContent = "(your own)";
    this.preset.appendChild(custom);
    for (const preset of presets) {
      const option = document.createElement("option");
      option.value = preset.name;
      option.textContent = preset.title || preset.name;
      this.preset.appendChild(option);
    }
  }

  setDatasets(datasets) {
    this.datasets = datasets;
    const select = document.getElementById("dataset");
    select.textContent = "";
    const groups = {};
    for (const info of datasets) {
      const task = info.task || "binary";
      if (!groups[task]) {
        groups[task] = document.createElement("optgroup");
        groups[task].label = { binary: "two classes", multiclass: "several classes", regression: "regression" }[task] || task;
        select.appendChild(groups[task]);
      }
      const option = document.createElement("option");
      option.value = info.name;
      option.textContent = info.title || info.name;
      option.title = info.description || "";
      groups[task].appendChild(option);
    }
  }

  datasetInfo(name) {
    return this.datasets.find((d) => d.name === name) || null;
  }

  // ----- from the server ------------------------------------------------------------------
  sync(config, { network = null, speed = null, playing = null } = {}) {
    this.config = config;
    for (const input of this.inputs) {
      if (input.getAttribute("aria-invalid") === "true") continue; // keep the user's bad value on show
      const value = getPath(config, input.dataset.path);
      if (value === undefined) continue;
      if (document.activeElement === input && input.type === "text") continue;
      input.value = formatValue(value);
      if (input.type === "range") this.showRangeValue(input);
    }
    const training = config.training;
    const kind = training.l1 > 0 ? "l1" : training.l2 > 0 ? "l2" : "none";
    this.penalty.value = kind;
    if (document.activeElement !== this.penaltyRate && this.penaltyRate.getAttribute("aria-invalid") !== "true") {
      this.penaltyRate.value = kind === "none" ? "" : formatValue(kind === "l1" ? training.l1 : training.l2);
    }
    this.penaltyRate.disabled = kind === "none";
    document.getElementById("momentum-field").hidden = !["momentum", "nesterov"].includes(training.optimizer);
    document.getElementById("classes-field").hidden = config.data.name !== "spiral_multiclass";
    document.getElementById("components-field").hidden = config.model.output.loss !== "mixture";
    document.getElementById("precision-field").hidden = config.model.output.loss !== "gaussian";
    const info = this.datasetInfo(config.data.name);
    document.getElementById("dataset-description").textContent = info ? info.description || "" : "";
    this.syncLosses(config, info);
    this.syncFeatures(config, info);
    this.syncPointClasses(config, network);
    if (speed !== null && document.activeElement !== this.speed) {
      this.speed.value = String(sliderFromSpeed(speed));
      this.speedValue.textContent = `${Math.round(speed)}/s`;
    }
    if (playing !== null) this.setPlaying(playing);
    this.syncPreset(config);
  }

  syncLosses(config, info) {
    const select = document.getElementById("loss");
    // a file's points may hold regression targets (data.target "value", issue 12)
    const fileValues = config.data.name === "user" && config.data.target === "value";
    const task = fileValues ? "regression" : info ? info.task : "binary";
    const wanted = Object.keys(LOSS_TASKS).filter((loss) => LOSS_TASKS[loss].includes(task) || (config.data.name === "user" && !fileValues));
    const current = [...select.options].map((o) => o.value).join(",");
    if (current !== wanted.join(",")) {
      select.textContent = "";
      for (const loss of wanted) {
        const option = document.createElement("option");
        option.value = loss;
        option.textContent = LOSS_TITLES[loss] || loss;
        select.appendChild(option);
      }
    }
    select.value = config.model.output.loss;
  }

  syncFeatures(config, info) {
    const oneInput = config.data.name === "user" ? config.data.inputs === 1 : info && info.input_dim === 1;
    const names = oneInput ? ["x1", "x1_squared", "sin_x1"] : Object.keys(FEATURE_LABELS);
    const key = names.join(",");
    if (this.featureKey !== key) {
      this.featureKey = key;
      this.features.textContent = "";
      for (const name of names) {
        const label = document.createElement("label");
        label.title = `feature ${FEATURE_LABELS[name]} as an input to the first layer`;
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = name;
        box.dataset.feature = name;
        box.addEventListener("change", () => this.toggleFeature(name, box.checked));
        label.append(box, ` ${FEATURE_LABELS[name]}`);
        this.features.appendChild(label);
      }
    }
    for (const box of this.features.querySelectorAll("input")) box.checked = config.model.features.includes(box.value);
  }

  toggleFeature(name, on) {
    const features = this.config.model.features.filter((f) => f !== name);
    if (on) features.push(name);
    // keep the canonical order so that the diagram's rows stay put
    const order = Object.keys(FEATURE_LABELS);
    features.sort((a, b) => order.indexOf(a) - order.indexOf(b));
    this.handlers.onPatch("model.features", features);
  }

  syncPointClasses(config, network) {
    const select = document.getElementById("point-class");
    const task = network ? network.task : "binary";
    const classes = task === "regression" ? 0 : Math.max(2, (network && network.classes) || 2);
    const hint = document.getElementById("surface-hint");
    hint.textContent = task === "regression" ? "the mean prediction ŷ(x) and, where the output has one, its spread" : "click: add a point, shift-click: remove";
    for (const id of ["discretize", "point-class"]) document.getElementById(id).closest("label").hidden = task === "regression";
    if (select.options.length === classes && select.dataset.classes === String(classes)) return;
    const previous = select.value;
    select.textContent = "";
    select.dataset.classes = String(classes);
    for (let k = 0; k < Math.max(classes, 0); k++) {
      const option = document.createElement("option");
      option.value = String(k);
      option.textContent = `y = ${k}`;
      option.style.color = classColor(k);
      select.appendChild(option);
    }
    select.disabled = classes === 0;
    if (previous && Number(previous) < classes) select.value = previous;
    else if (classes) select.value = "1";
  }

  // The palette changed: the class choices take their new colours.
  recolour() {
    for (const option of document.getElementById("point-class").options) option.style.color = classColor(Number(option.value));
  }

  syncPreset(config) {
    const text = JSON.stringify(config);
    const match = this.presets.find((p) => JSON.stringify(normalise(p.config, config)) === text);
    this.preset.value = match ? match.name : "";
  }

  setPlaying(playing) {
    this.playButton.textContent = playing ? "❚❚" : "▶";
    this.playButton.classList.toggle("playing", playing);
    this.playButton.setAttribute("aria-pressed", String(playing));
  }

  setCounters({ epoch, step, trainLoss, testLoss }) {
    const c = this.counters;
    const set = (element, text) => { if (element.textContent !== text) element.textContent = text; };
    set(c.epoch, epoch === undefined ? "0" : epoch.toFixed(epoch < 10 ? 2 : 1));
    set(c.step, String(step ?? 0));
    set(c.trainLoss, trainLoss == null ? "–" : trainLoss.toFixed(3));
    set(c.testLoss, testLoss == null ? "–" : testLoss.toFixed(3));
  }

  // ----- to the server ----------------------------------------------------------------------
  changed(input) {
    const path = input.dataset.path;
    const type = input.dataset.type;
    const text = input.value.trim();
    let value = text;
    if (type === "number" || type === "int") {
      value = Number(text);
      if (text === "" || !Number.isFinite(value)) {
        this.showError(path, `“${text}” is not a number`, input);
        return;
      }
      if (type === "int" && !Number.isInteger(value)) {
        this.showError(path, `${text} is not a whole number`, input);
        return;
      }
    }
    this.clearError(path);
    this.handlers.onPatch(path, value);
  }

  penaltyChanged() {
    const kind = this.penalty.value;
    const text = this.penaltyRate.value.trim();
    this.clearError("training.l1");
    this.clearError("training.l2");
    if (kind === "none") {
      this.penaltyRate.value = "";
      this.penaltyRate.disabled = true;
      this.handlers.onPatch("training.l1", 0);
      this.handlers.onPatch("training.l2", 0);
      return;
    }
    this.penaltyRate.disabled = false;
    let rate = text === "" ? 0.001 : Number(text);
    if (!Number.isFinite(rate)) {
      this.showError(`training.${kind}`, `“${text}” is not a number`, this.penaltyRate);
      return;
    }
    if (text === "") this.penaltyRate.value = String(rate);
    const other = kind === "l1" ? "l2" : "l1";
    this.handlers.onPatch(`training.${other}`, 0);
    this.handlers.onPatch(`training.${kind}`, rate);
  }

  showRangeValue(input) {
    const output = this.root.querySelector(`output[data-for="${input.dataset.path}"]`);
    if (output) output.textContent = input.value;
  }

  // A message next to the control that owns `path` (or in the general slot).
  showError(path, message, input = null) {
    const slot = this.errorSlot(path);
    slot.textContent = message;
    const control = input || this.inputs.find((i) => i.dataset.path === path)
      || (path === "training.l1" || path === "training.l2" ? this.penaltyRate : null);
    if (control) control.setAttribute("aria-invalid", "true");
    return slot;
  }

  clearError(path) {
    const slot = this.errorSlot(path, false);
    if (slot) slot.textContent = "";
    const control = this.inputs.find((i) => i.dataset.path === path)
      || (path === "training.l1" || path === "training.l2" ? this.penaltyRate : null);
    if (control) control.removeAttribute("aria-invalid");
  }

  clearAllErrors() {
    for (const slot of document.querySelectorAll(".field-error")) slot.textContent = "";
    for (const control of document.querySelectorAll('[aria-invalid="true"]')) control.removeAttribute("aria-invalid");
  }

  errorSlot(path, fallback = true) {
    let slot = document.querySelector(`[data-error-for="${CSS.escape(path || "")}"]`);
    if (!slot && path) {
      // model.layers.0.units → nearest owner we show: try shorter prefixes
      const parts = path.split(".");
      while (!slot && parts.length > 1) {
        parts.pop();
        slot = document.querySelector(`[data-error-for="${CSS.escape(parts.join("."))}"]`);
      }
    }
    if (!slot && fallback) slot = document.getElementById("general-error");
    return slot;
  }
}

// A preset's config with the server's defaults filled in, for comparing with the live one.
function normalise(presetConfig, live) {
  const merge = (a, b) => {
    if (Array.isArray(b)) {
      if (!Array.isArray(a)) return a;
      return a.map((item, i) => (b[i] !== undefined && typeof item === "object" && item !== null ? merge(item, b[i]) : item));
    }
    if (b && typeof b === "object") {
      const out = {};
      for (const key of Object.keys(b)) out[key] = a && key in a ? merge(a[key], b[key]) : b[key];
      return out;
    }
    return a;
  };
  return merge(presetConfig, live);
}
