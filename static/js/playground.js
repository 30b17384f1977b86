// The playground page: wires the socket, the state and the views together, and draws
// everything in one animation frame (one redraw per frame for every view).

import { SessionSocket, adaptFrame, adaptData, typed } from "./socket.js";
import { PlaygroundState, readUrl, readImport } from "./state.js";
import { SurfaceView } from "./surface.js";
import { WarpView } from "./warp.js";
import { NetworkView } from "./network.js";
import { CurvesView } from "./curves.js";
import { Controls } from "./controls.js";
import { CanvasDescriber } from "./describe.js";
import { DEFAULT_PALETTE, PALETTES, setPalette } from "./palette.js";
import { OwnData } from "./owndata.js";

const ACTIVATIONS = ["tanh", "relu", "leaky_relu", "prelu", "sigmoid", "softplus", "hard_tanh", "abs", "maxout", "rbf", "linear"];
const body = document.body;
const state = new PlaygroundState();
const stats = { frames: 0, rendered: 0, firstFrameAt: null, navigationStart: performance.timeOrigin };
let pendingFrame = null;
let pendingData = null;
let connectedOnce = false;
let presetsPromise = null;
let initial = null; // what the first hello configures: {config, speed} from the URL or the default preset
let lastFrame = null;
let lastPatchPath = null; // where to show the error of the last `patch set`
let pendingImport = false; // a configure from an imported file is on its way
let pendingUrl = false; // a configure from the link's fragment is on its way
let readyOutstanding = false; // a `ready` went out and its frame has not arrived
let readySentAt = -Infinity;
let playAfterFirstFrame = false; // the first configure starts paused; play once its frame is drawn
let autoPlayId = null; // that play command, until the server's reply
// declared here, before the module's first await: socket messages may arrive meanwhile
let warpsInSight = true; // the warp panel is in sight (below)
let busyShown = false; // the "server busy" notice is shown (below)

// ----- the socket -------------------------------------------------------------------------
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/session`;
const socket = new SessionSocket(wsUrl, {
  onClose: (delay, attempt, reason) => showBanner(reason
    ? `The server refused the connection: ${reason}. Trying again in ${(delay / 1000).toFixed(1)} s.`
    : `Connection lost — reconnecting in ${(delay / 1000).toFixed(1)} s; your network and weights will be restored.`),
  on_hello: (message) => hello(message),
  on_state: (message) => accepted(message),
  on_error: (message) => rejected(message),
  on_export: (message) => download(message),
  on_frame: (frame) => receiveFrame(frame),
  onDecoderError: (text) => showNotice(text),
});

// The page builds in a few tasks rather than one: the module's evaluation joins the
// parser's last task and the page's first layout, and building every view (canvases,
// contexts, lookup tables, the diagram's controls) in it too made that one task 60-80 ms on
// a 2-core machine (issue 4: no task over 50 ms). Each `await nextTask()` lets the browser
// lay out, paint or handle input in between.
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
await nextTask();

// ----- views ----------------------------------------------------------------------------
const surface = new SurfaceView(document.getElementById("surface"), {
  onAddPoint: (x1, x2) => addPoint(x1, x2),
  onRemovePoint: (x1, x2) => send({ type: "remove_point", x: [x1, x2] }),
  onHover: (info) => showReadout(info),
});
const warps = new WarpView(document.getElementById("warps"));
const network = new NetworkView(document.getElementById("network"), {
  onAddLayer: () => send({ type: "patch", op: "add_layer" }),
  onRemoveLayer: () => send({ type: "patch", op: "remove_layer" }),
  onAddUnit: (layer) => send({ type: "patch", op: "add_unit", layer }),
  onRemoveUnit: (layer) => send({ type: "patch", op: "remove_unit", layer }),
  onActivation: (layer, activation) => patch(`model.layers.${layer}.activation`, activation),
  onParameter: (path, value) => patch(path, value),
  onParameterError: (text) => controls.showError("model.layers", text),
  onToggleFeature: (name) => controls.toggleFeature(name, !state.config.model.features.includes(name)),
  onSetWeight: (edit) => setWeight(edit),
  onHoverUnit: (target) => hoverUnit(target),
});
network.setActivations(ACTIVATIONS);
await nextTask();
const curves = new CurvesView({
  loss: document.getElementById("curve-loss"),
  accuracy: document.getElementById("curve-accuracy"),
  norms: document.getElementById("curve-norms"),
  explore: document.getElementById("explore-curves"),
  dialog: document.getElementById("curves-dialog"),
  plotlyUrl: body.dataset.plotlyUrl,
});
const controls = new Controls(document.getElementById("controls"), {
  onPatch: (path, value) => patch(path, value),
  onCommand: (command) => send(command),
  onTogglePlay: () => togglePlay(),
  onSpeed: (speed) => patch("speed", speed),
  onPreset: (preset) => loadPreset(preset),
  onExport: () => send({ type: "export" }),
  onShare: () => share(),
  onImport: (text) => importFile(text),
});

// a learner's own CSV file (issue 12): the server checks it; its error shows by the button
const ownData = new OwnData(document.getElementById("own-data"), {
  onCsv: (message) => { controls.clearError("csv"); send(message); },
  onJson: (text) => importFile(text),
  onError: (text) => controls.showError("csv", text),
  limits: () => state.limits,
});

document.querySelectorAll('input[name="stage"]').forEach((radio) => {
  radio.addEventListener("change", () => {
    if (!radio.checked) return;
    state.options.stage = radio.value;
    warps.setStage(radio.value);
  });
});
document.getElementById("morph-all").addEventListener("click", () => warps.startMorph(0));
document.getElementById("show-test").addEventListener("change", (event) => {
  state.options.showTest = event.target.checked;
  surface.setOptions({ showTest: state.options.showTest });
});
document.getElementById("discretize").addEventListener("change", (event) => {
  state.options.discretize = event.target.checked;
  surface.setOptions({ discretize: state.options.discretize });
});
document.getElementById("point-class").addEventListener("change", (event) => {
  state.options.pointClass = Number(event.target.value);
});

// ----- access (issue 12): colours and the canvases' text alternatives -------------------------
const paletteSelect = document.getElementById("palette");
for (const [name, palette] of Object.entries(PALETTES)) paletteSelect.add(new Option(palette.title, name));
paletteSelect.addEventListener("change", () => {
  usePalette(paletteSelect.value);
  syncUrl(); // the link carries the palette
});
function usePalette(name) {
  if (!setPalette(name)) return false;
  state.options.palette = name;
  paletteSelect.value = name;
  surface.recolour();
  warps.recolour();
  network.recolour();
  controls.recolour();
  return true;
}
const describer = new CanvasDescriber({
  targets: {
    surface: document.getElementById("surface"),
    network: network.canvas,
    loss: document.getElementById("curve-loss"),
    accuracy: document.getElementById("curve-accuracy"),
    norms: document.getElementById("curve-norms"),
  },
  status: document.getElementById("canvas-status"),
  read: () => ({ frame: lastFrame, state }),
});

function send(message) {
  if (message.type === "patch") lastPatchPath = message.op === "set" ? message.path : null;
  if (["play", "pause", "configure", "reset"].includes(message.type)) playAfterFirstFrame = false;
  if (!socket.connected) {
    showNotice("Not connected: the command was not sent. Reconnecting…");
    return null;
  }
  return socket.send(message);
}

function patch(path, value) {
  return send({ type: "patch", op: "set", path, value });
}

async function hello(message) {
  state.session = message.session;
  state.limits = message.limits || {};
  hideBanner();
  if (!connectedOnce) {
    connectedOnce = true;
    const presets = await presetsPromise;
    const start = initial || presetFromQuery(presets) || defaultPreset(presets);
    // Training starts once every view has drawn the first frame (the initial weights): the
    // page draws cold without the server's training competing for the CPU (where both run
    // on one machine), and the learner sees where the network starts from.
    const command = { type: "configure", play: false };
    if (start) command.config = start.config;
    else command.config = message.config;
    if (start && start.speed) command.speed = start.speed;
    // imported weights: the learner came to look at these weights, keep them still
    if (start && start.weights) command.weights = start.weights;
    else playAfterFirstFrame = true;
    pendingUrl = Boolean(initial);
    socket.send(command);
  } else if (state.config) {
    // a new connection (maybe another server process): restore what this tab holds
    const command = { type: "configure", config: state.config, play: state.playing };
    const weights = state.weightsAsLists();
    if (weights) {
      command.weights = weights;
      // and how far it had trained: the curves and the step counter carry on
      command.step = state.step;
      command.epoch = state.epoch;
    }
    if (state.speed) command.speed = state.speed;
    if (state.view) command.view = state.view;
    socket.send(command);
  }
  readyOutstanding = false;
  pendingFrame = null;
  sendReady();
}

function accepted(message) {
  const previousConfig = state.config;
  const autoPlay = message.id === autoPlayId; // the page's own start: leaves notices shown
  if (autoPlay) autoPlayId = null;
  if (message.command === "configure") {
    pendingImport = false;
    pendingUrl = false;
  }
  state.accept(message);
  controls.clearAllErrors();
  controls.sync(state.config, { network: state.network, speed: state.speed, playing: state.playing });
  ownData.sync(state.network);
  if (previousConfig) applyNetwork();
  else buildFirstModel();
  if (message.notes && message.notes.length) showNotice(message.notes.join(" "), true);
  else if (previousConfig && !autoPlay) hideNotice();
  syncUrl();
  describer.changed();
}

// The link in the address bar follows the configuration. history.replaceState is a round
// trip to the browser process (8-25 ms on a 2-core machine): only when the fragment changed,
// and in a task of its own, not in the one that handles the server's reply.
let urlTimer = null;
function syncUrl() {
  clearTimeout(urlTimer);
  urlTimer = setTimeout(() => {
    const fragment = state.urlFragment();
    if (fragment !== location.hash) history.replaceState(null, "", fragment || location.pathname);
    updateStepLink(fragment);
  }, 0);
}

// The first accepted state builds the diagram's layer controls, the warp panels and the
// diagram's thumbnail canvases: each in a task of its own after this one (controls and link
// now), so that no one task holds them all with their layout (issue 4: no task over 50 ms).
// A frame taken before they ran builds the same model itself (`applyNetwork` is idempotent).
function buildFirstModel() {
  const steps = [
    () => applyNetwork({ warps: false }),
    () => applyNetwork({ network: false }),
    () => network.prepareThumbnails(),
  ];
  const next = () => {
    if (!steps.length) return;
    steps.shift()();
    setTimeout(next, 0);
  };
  setTimeout(next, 0);
}

function rejected(message) {
  const text = message.message || "The server rejected the command.";
  if (message.id === autoPlayId) autoPlayId = null;
  if (message.code === "diverged") {
    showNotice(`${text} Reset (r) draws new initial weights.`);
    state.playing = false;
    controls.setPlaying(false);
    return;
  }
  let field = message.field || "";
  if (message.command === "configure" && pendingUrl) {
    pendingUrl = false;
    showNotice(`The link's configuration was rejected (${text}); the default network is shown instead.`);
    presetsPromise.then((presets) => {
      const start = defaultPreset(presets);
      if (start) send({ type: "configure", config: start.config, play: true });
    });
    return;
  }
  if (message.command === "configure" && pendingImport) {
    document.getElementById("io-error").textContent = `Import rejected: ${text}`;
    pendingImport = false;
    return;
  }
  if (message.command === "patch" && lastPatchPath && (!field || field === "value")) field = lastPatchPath;
  if (message.command === "add_point" || message.command === "remove_point") field = "x";
  if (message.command === "set_weight") field = "model.layers";
  if (message.command === "load_csv") field = "csv";
  if (message.command === "patch" && field && !field.includes(".")) field = lastPatchPath || field;
  controls.showError(field, text);
}

function applyNetwork({ network: withNetwork = true, warps: withWarps = true } = {}) {
  const net = state.network;
  if (!net || !state.config) return;
  const layers = state.config.model.layers.map((layer) => ({
    units: layer.units, activation: layer.activation, pieces: layer.pieces, slope: layer.slope,
  }));
  if (withNetwork) {
    network.setModel({
      features: net.features, layers, outputs: net.outputs, loss: net.loss, inputDim: net.input_dim,
      extent: state.data ? state.data.extent : null,
    });
  }
  if (withWarps) warps.setModel(layers, net.loss);
  curves.setTask(net.task);
}

function defaultPreset(presets) {
  if (!presets || !presets.length) return null;
  const preset = presets.find((p) => p.default) || presets.find((p) => p.name === "default") || presets[0];
  return { config: preset.config };
}

// `/?preset=NAME` opens the playground on a named preset (the /labs index links to them); a
// configuration in the link's hash (a shared link) comes first.
function presetFromQuery(presets) {
  const name = new URLSearchParams(location.search).get("preset");
  if (!name) return null;
  const preset = (presets || []).find((p) => p.name === name);
  if (!preset) {
    showNotice(`There is no preset called “${name}”; the default network is shown instead.`);
    return null;
  }
  controls.preset.value = preset.name;
  return { config: preset.config };
}

function loadPreset(preset) {
  send({ type: "configure", config: preset.config, play: true });
}

function togglePlay() {
  send({ type: state.playing ? "pause" : "play" });
}

function addPoint(x1, x2) {
  const slot = document.getElementById("point-error");
  if (state.network && state.network.task === "regression") {
    slot.textContent = "Points can be placed on classification data only; pick a two-class or K-class data set.";
    return;
  }
  slot.textContent = "";
  send({ type: "add_point", x: [x1, x2], label: state.options.pointClass });
}

function setWeight(edit) {
  const L = state.config.model.layers.length;
  const tag = edit.layer === L + 1 ? "out" : String(edit.layer);
  const name = `${edit.parameter === "weights" ? "W" : "b"}${tag}`;
  const index = edit.parameter === "weights" ? [edit.row, edit.column] : [edit.column];
  send({ type: "set_weight", name, index, value: edit.value });
}

function hoverUnit(target) {
  if (!target || target.column.kind === "output" || !lastFrame) {
    surface.showUnitMap(null);
    return;
  }
  const layer = target.layer;
  const sub = (n) => String(n).split("").map((d) => "₀₁₂₃₄₅₆₇₈₉"[Number(d)]).join("");
  if (target.column.kind === "input") {
    surface.showUnitMap(null);
    return;
  }
  const maps = lastFrame.unitMaps[layer - 1];
  if (!maps || target.unit >= maps.count) return;
  const label = `unit h${sub(target.unit + 1)} of layer ${layer} (${maps.activation})`;
  if (maps.kind === "curve") {
    const n = maps.samples;
    surface.showUnitMap({ kind: "curve", x: lastFrame.surface.x, values: maps.data.subarray(target.unit * n, (target.unit + 1) * n), label });
  } else {
    const cells = maps.size * maps.size;
    surface.showUnitMap({
      width: maps.size, height: maps.size, data: maps.data.subarray(target.unit * cells, (target.unit + 1) * cells),
      toIndex: maps.toIndex(target.unit), label, layer, unit: target.unit,
    });
  }
  surface.hoveredUnit = { layer, unit: target.unit };
}

function showReadout(info) {
  const slot = document.getElementById("surface-readout");
  if (!info) { slot.innerHTML = "&nbsp;"; return; }
  let text = `x = (${info.x1.toFixed(2)}, ${info.x2.toFixed(2)})`;
  const value = info.value;
  if (Array.isArray(value)) text += `  p(y | x) = ${value.map((p) => p.toFixed(2)).join(", ")}`;
  else if (typeof value === "number") {
    text += state.network && state.network.loss === "bernoulli" ? `  p(y = 1 | x) = ${value.toFixed(3)}` : `  ŷ = ${value.toFixed(3)}`;
  }
  slot.textContent = text;
  // the keyboard's cross on the surface: its place and value are spoken
  if (info.byKey) document.getElementById("canvas-status").textContent = text;
}

// ----- frames -------------------------------------------------------------------------------
// Frames are client-paced with one frame buffered and one in flight: `ready` goes out when
// a frame arrives into an empty buffer and when the animation frame takes the buffered one,
// so the server builds the next frame while this one waits for its animation frame. The
// curves take every frame's history at once; only the newest pictures are drawn.
// A frame that arrives less than one display frame after the last `ready` waits for the
// animation frame to ask again, so the page never asks for more frames than it can show.
const READY_GAP_MS = 14;

function sendReady() {
  // a tab in the background asks for nothing: the server idles its session (issue 10)
  if (readyOutstanding || !socket.connected || document.hidden) return;
  readyOutstanding = true;
  readySentAt = performance.now();
  // the server builds the warps only while their panel is in sight (they are a third of a
  // frame's cost); when it comes back into sight, the next frame carries them at once
  socket.send({ type: "ready", warps: warpsInSight });
}

function receiveFrame(raw) {
  readyOutstanding = false;
  stats.frames += 1;
  updateBusy(raw);
  const history = {};
  for (const key of Object.keys(raw.history)) history[key] = raw.history[key] ? typed(raw.history[key]) : null;
  const norms = raw.gradients ? raw.gradients.layers.map((layer) => layer.grad_norm) : null;
  state.addHistory(history, norms);
  if (raw.data) {
    // a frame carries the points only when they changed (or on a new connection)
    state.dataVersion = raw.data_version;
    pendingData = adaptData(raw.data, raw.network);
  }
  const empty = pendingFrame === null;
  pendingFrame = raw;
  if (empty && performance.now() - readySentAt >= READY_GAP_MS) sendReady();
}

function takeFrame() {
  const raw = pendingFrame;
  pendingFrame = null;
  sendReady();
  const frame = adaptFrame(raw);
  lastFrame = frame;
  if (pendingData) {
    state.data = pendingData;
    pendingData = null;
    surface.setData(state.data);
    warps.setData(state.data);
    applyNetwork();
  }
  state.step = frame.step;
  state.epoch = frame.epoch;
  if (frame.network && JSON.stringify(frame.network) !== JSON.stringify(state.network)) {
    state.network = frame.network;
    applyNetwork();
  }
  if (frame.params) {
    state.weights = frame.params;
    state.recordSnapshot(frame.step, frame.params);
  }
  surface.setSurface(frame.surface);
  if (surface.hoveredUnit && surface.unitMap && network.hovered) {
    hoverUnit(network.hovered.kind === "unit" ? { layer: network.hovered.layer, unit: network.hovered.unit, column: network.hovered.column } : null);
  }
  if (frame.warps) warps.setWarps(frame.warps);
  network.setFrame({ params: frame.params, unitMaps: frame.unitMaps, unitGrads: frame.unitGrads, surface: frame.surface });
  controls.setCounters(frame);
  stats.rendered += 1;
  describer.frame();
}

const NETWORK_MS = 66;
const BUDGET_MS = 12; // drawing per animation frame; what does not fit waits for the next
let networkDrawnAt = -Infinity;

function render(now) {
  requestAnimationFrame(render);
  // the first frames meet cold code and new canvases: one piece of work per animation
  // frame then (taking the frame, then each view in turn)
  const cold = stats.rendered < 4;
  const deadline = performance.now() + (cold ? 2 : BUDGET_MS);
  if (pendingFrame) {
    try {
      takeFrame();
    } catch (error) {
      console.error(error);
      showNotice(`A frame could not be drawn: ${error.message}`);
    }
    if (cold) return;
  }
  // The surface and the warps follow every frame; the diagram's thumbnails and link widths
  // at about 15 frames/s (each redrawn canvas costs its copy to the compositor, NOTES), and
  // at once when the learner interacts with it. A first frame (cold code, new canvases) is
  // spread over several animation frames by the budget.
  if (surface.draw()) warps.setPicture(surface.picture);
  if (stats.firstFrameAt === null && lastFrame) stats.firstFrameAt = performance.now();
  if (performance.now() < deadline && (network.urgent || now - networkDrawnAt >= NETWORK_MS)) {
    if (network.draw(deadline)) networkDrawnAt = now;
  }
  if (performance.now() < deadline) warps.draw(now, deadline);
  if (performance.now() < deadline) curves.draw(state.curves, now, deadline);
  if (playAfterFirstFrame && stats.firstFrameAt !== null) {
    // every view has drawn the initial weights once (or it is taking too long): train
    const settled = !network.dirty && warps.panels.every((panel) => !panel.dirty);
    if (settled || performance.now() - stats.firstFrameAt > 1500) autoPlayId = send({ type: "play" });
  }
}

// ----- sharing, export and import ------------------------------------------------------------
async function share() {
  const url = location.href;
  const slot = document.getElementById("io-error");
  try {
    await navigator.clipboard.writeText(url);
    slot.textContent = "";
    showNotice("Link copied: it reopens this configuration.", true);
  } catch (error) {
    window.prompt("Copy this link:", url);
  }
}

function download(message) {
  if (message.id === STEP_EXPORT_ID) {
    openStepThrough(message);
    return;
  }
  if (message.id === JOB_EXPORT_ID) {
    if (jobExport) jobExport(message);
    jobExport = null;
    return;
  }
  const payload = {
    format: "backprop-lab", schema_version: message.schema_version, config: message.config,
    view: message.view, speed: message.speed, weights: message.weights, step: message.step, epoch: message.epoch,
  };
  if (state.options.palette !== DEFAULT_PALETTE) payload.palette = state.options.palette;
  const blob = new Blob([JSON.stringify(payload, null, 1)], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `backprop-lab-${(state.config && state.config.data.name) || "network"}-step${message.step}.json`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function importFile(text) {
  const slot = document.getElementById("io-error");
  const parsed = readImport(text);
  if (parsed.error) {
    slot.textContent = `Import failed: ${parsed.error}`;
    return;
  }
  slot.textContent = "";
  if (parsed.palette) usePalette(parsed.palette);
  const command = { type: "configure", config: parsed.config, play: false };
  if (parsed.weights) command.weights = parsed.weights;
  if (parsed.speed) command.speed = parsed.speed;
  if (parsed.view) command.view = parsed.view;
  pendingImport = true;
  send(command);
}

// The step-through page (/step) restores this network: its link carries the configuration,
// and the exact weights (an export) travel in sessionStorage, which a same-tab navigation keeps.
const STEP_EXPORT_ID = "step-through";
const STEP_STORAGE_KEY = "backprop-lab:step-through";
document.getElementById("step-link").addEventListener("click", (event) => {
  if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || !socket.connected) return;
  event.preventDefault();
  socket.send({ type: "export", id: STEP_EXPORT_ID });
});

function openStepThrough(message) {
  try {
    sessionStorage.setItem(STEP_STORAGE_KEY, JSON.stringify({ config: message.config, weights: message.weights }));
  } catch (error) {
    // storage off or full: the page starts from the configuration's initial weights
  }
  location.href = document.getElementById("step-link").href;
}

function updateStepLink(fragment = state.urlFragment()) {
  const link = document.getElementById("step-link");
  const base = body.dataset.stepUrl || "/step";
  link.href = `${base}${fragment}`;
}

// ----- heavy jobs on this network (issue 9) ---------------------------------------------------
// The buttons send the session's exact weights (an `export`) and, for a landscape, the
// snapshots taken along training, to POST /api/jobs, and open /jobs on the new job. The tab
// is opened at the click (a tab opened later, after the replies, is a blocked pop-up); the
// code that submits is loaded on the first click, so the page's load does not grow.
const JOB_EXPORT_ID = "jobs";
let jobExport = null; // resolves the export on its way for a job
for (const button of document.querySelectorAll(".jobs-row button[data-kind]")) {
  button.addEventListener("click", () => {
    const slot = document.getElementById("jobs-error");
    slot.textContent = "";
    if (!socket.connected) {
      slot.textContent = "Not connected to the server: the network could not be sent.";
      return;
    }
    const tab = window.open("", "_blank");
    const exported = new Promise((resolve) => { jobExport = resolve; });
    socket.send({ type: "export", id: JOB_EXPORT_ID });
    button.disabled = true;
    import("./jobsubmit.js")
      .then(({ submitJob }) => submitJob({ kind: button.dataset.kind, exported, state, tab, slot }))
      .catch((error) => {
        if (tab) tab.close();
        slot.textContent = `The job could not be submitted: ${error.message}`;
      })
      .finally(() => { button.disabled = false; });
  });
}

// Whether the warp panel is in sight (scrolled away, it costs the server nothing).
new IntersectionObserver((entries) => {
  const visible = entries[entries.length - 1].isIntersecting;
  if (visible === warpsInSight) return;
  warpsInSight = visible;
  if (visible && !readyOutstanding) sendReady();
}).observe(document.querySelector(".warp-section"));

// A tab in the background stops asking for frames, and the server stops training its
// session soon after (it idles a session whose client has not asked for a while): a class's
// hidden tabs cost the server nothing. Visible again, the tab asks and training resumes.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) sendReady();
});

// ----- a busy server --------------------------------------------------------------------------
// Every frame reports the speed the learner set and the training speed the session actually
// got. When a busy server gives less, the page says so and by how much; the notice goes when
// the speed recovers (a margin either way, so that it does not flicker at the edge).
function updateBusy(frame) {
  const set = frame.speed;
  const got = frame.achieved_speed;
  let show = busyShown;
  if (!frame.playing || got == null || !set) show = false;
  else if (got < 0.85 * set) show = true;
  else if (got >= 0.95 * set) show = false;
  const element = document.getElementById("busy");
  if (show) {
    // two significant digits: the measured speed wanders a little from frame to frame
    const step = 10 ** Math.max(0, Math.floor(Math.log10(Math.max(got, 1))) - 1);
    const text = `Server busy: training at ${Math.round(got / step) * step} steps/s of the ${Math.round(set)} you set.`;
    if (element.textContent !== text) element.textContent = text;
  }
  if (show !== busyShown) {
    element.hidden = !show;
    busyShown = show;
  }
}

// ----- messages --------------------------------------------------------------------------------
function showBanner(text) {
  const banner = document.getElementById("banner");
  banner.textContent = text;
  banner.hidden = false;
}
function hideBanner() {
  document.getElementById("banner").hidden = true;
}
let noticeTimer = null;
function showNotice(text, transient = false) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  if (transient) noticeTimer = setTimeout(hideNotice, 6000);
}
function hideNotice() {
  document.getElementById("notice").hidden = true;
}

// ----- keyboard -----------------------------------------------------------------------------------
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  // Space on a focused button presses that button, as everywhere (issue 12)
  if (event.key === " " && target && target.closest && target.closest("button, a[href], [role=button]")) return;
  if (event.key === " ") { event.preventDefault(); togglePlay(); }
  else if (event.key === "ArrowRight") { event.preventDefault(); send({ type: "step" }); }
  else if (event.key === "e") send({ type: "epoch" });
  else if (event.key === "r") send({ type: "reset" });
});

// ----- start -----------------------------------------------------------------------------------
async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

// Weights handed back by the step-through page (its "← playground" link), used once.
function weightsFromStepThrough(config) {
  let stored = null;
  try {
    stored = JSON.parse(sessionStorage.getItem("backprop-lab:from-step-through") || "null");
    sessionStorage.removeItem("backprop-lab:from-step-through");
  } catch (error) {
    return null;
  }
  if (!stored || !stored.weights || JSON.stringify(stored.config) !== JSON.stringify(config)) return null;
  return stored.weights;
}

function start() {
  const fromUrl = readUrl(location.hash);
  if (fromUrl && fromUrl.error) showNotice(fromUrl.error);
  else if (fromUrl) {
    initial = fromUrl;
    if (fromUrl.palette) usePalette(fromUrl.palette);
    const weights = weightsFromStepThrough(fromUrl.config);
    if (weights) initial = { ...fromUrl, weights };
  }
  presetsPromise = getJson("/api/presets").then((presets) => {
    controls.setPresets(presets);
    return presets;
  }).catch((error) => { showNotice(`Presets could not be loaded: ${error.message}`); return []; });
  getJson("/api/datasets").then((datasets) => {
    controls.setDatasets(Array.isArray(datasets) ? datasets : datasets.datasets || []);
    if (state.config) controls.sync(state.config, { network: state.network, speed: state.speed, playing: state.playing });
  }).catch((error) => showNotice(`Data sets could not be loaded: ${error.message}`));
  socket.connect();
  requestAnimationFrame(render);
}

// For tests and benchmarks: a read-only window on the page's state.
await nextTask();
window.playground = {
  state, stats, socket, surface, warps, network, curves, controls, describer,
  get lastFrame() { return lastFrame; },
  get pending() { return pendingFrame !== null; },
  get starting() { return playAfterFirstFrame || autoPlayId !== null; }, // the first play is still to come
};
start();
