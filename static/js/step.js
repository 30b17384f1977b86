// The step-through page: its own session (the playground's network, restored from the config
// in the URL and the weights the playground left in sessionStorage), the computational graph of
// J on one example or a minibatch, stepped node by node forward and then backward; chain-rule
// paths, a gradient check and the update θ ← θ − ε∇θJ. Every number comes from the server's
// engine (docs/protocol.md, "Stepping through a pass").

import { SessionSocket } from "./socket.js";
import { readUrl, encodeBase64Url } from "./state.js";
import { GraphView, formatNumber, formatValue, flatten, describeNode, escapeHtml } from "./graph.js";

export const STEP_STORAGE_KEY = "backprop-lab:step-through";
const MAX_ROWS = 12; // rows of a matrix shown in the panels
const MAX_COLUMNS = 8;

const $ = (id) => document.getElementById(id);
const state = {
  config: null, // the session's configuration (from the playground's link)
  weights: null, // the network's weights, kept for a reconnect
  restored: false, // the weights came from the playground
  graph: null,
  event: null,
  cursor: { phase: "forward", position: 0, steps: 0, next: null },
  selected: null,
  source: { example: 0, batch: 1, level: "auto", preset: null, u1: 0.8 },
  trainSize: null,
  pending: new Map(), // command id -> what it was for
  connected: false,
  configured: false,
  palette: null, // the playground's colours, handed back to it by the "← playground" link
};

const view = new GraphView($("graph"), { onSelect: (id) => selectNode(id), tooltip: $("tooltip") });

// ----- the socket -----------------------------------------------------------------------------
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/session`;
const socket = new SessionSocket(wsUrl, {
  onClose: (delay) => showBanner(`Connection lost — reconnecting in ${(delay / 1000).toFixed(1)} s; the network and the graph will be restored.`),
  on_hello: () => hello(),
  on_state: (message) => accepted(message),
  on_error: (message) => rejected(message),
  on_export: (message) => { state.weights = message.weights; },
  on_graph: (message) => showGraph(message),
  on_graph_event: (message) => stepped(message),
  on_graph_paths: (message) => showPaths(message),
  on_graph_check: (message) => showCheck(message),
  on_graph_applied: (message) => applied(message),
});

function send(message) {
  if (!socket.connected) {
    showNotice("Not connected: the command was not sent. Reconnecting…");
    return null;
  }
  return socket.send(message);
}

function hello() {
  hideBanner();
  state.configured = false;
  const command = { type: "configure", config: state.config, play: false };
  if (state.weights) command.weights = state.weights;
  send(command);
}

function accepted(message) {
  if (message.command !== "configure") return;
  state.config = message.config;
  state.configured = true;
  $("learning-rate").placeholder = String(message.config.training.learning_rate);
  updateLinks();
  openGraph();
}

function rejected(message) {
  const text = message.message || "The server refused the command.";
  const slot = {
    graph_open: "source-error", graph_paths: "paths-error", graph_check: "check-error", graph_apply: "apply-error",
  }[message.command];
  if (message.command === "configure") {
    if (state.weights && state.restored) {
      // weights that do not fit the configuration: start from the config's own initial weights
      showNotice(`The playground's weights could not be restored (${text}); the graph uses the configuration's initial weights.`);
      state.weights = null;
      state.restored = false;
      send({ type: "configure", config: state.config, play: false });
      return;
    }
    showNotice(`The network could not be loaded: ${text}`);
    return;
  }
  if (slot) {
    $(slot).textContent = text;
    return;
  }
  showNotice(text, true);
}

// ----- opening a graph --------------------------------------------------------------------------
function openGraph() {
  clearErrors();
  const source = state.source;
  if (source.preset) {
    send({ type: "graph_open", preset: source.preset, u1: source.u1 });
    return;
  }
  const command = { type: "graph_open", level: source.level };
  if (source.batch > 1) {
    const size = state.trainSize || source.example + source.batch;
    const batch = [];
    for (let i = 0; i < source.batch; i++) batch.push((source.example + i) % size);
    command.batch = batch;
  } else {
    command.example = source.example;
  }
  send(command);
}

function readSource() {
  const slot = $("source-error");
  slot.textContent = "";
  const example = Number($("example").value);
  const batch = Number($("batch-size").value);
  if (!Number.isInteger(example) || example < 0) {
    slot.textContent = "example: a whole number from 0";
    return false;
  }
  if (!Number.isInteger(batch) || batch < 1 || batch > 64) {
    slot.textContent = "m: a whole number of examples from 1 to 64";
    return false;
  }
  state.source.example = example;
  state.source.batch = batch;
  state.source.level = $("level").value;
  return true;
}

function showGraph(graph) {
  state.graph = graph;
  state.event = null;
  state.selected = null;
  state.trainSize = graph.preset ? state.trainSize : graph.train_size;
  state.cursor = { phase: graph.phase, position: graph.position, steps: graph.steps, next: graph.next };
  view.setGraph(graph);
  view.setCursor(null, graph.next);
  const message = $("graph-message");
  message.textContent = graph.message ? `Layer view: ${graph.message}.` : "";
  message.hidden = !graph.message;
  if (graph.preset === "fig_6_7") {
    $("graph-caption").textContent = "Fig. 6.7: u₂ = u₁², u₃ = exp(u₁ + u₂) at u₁ = " + formatNumber(graph.x[0][0]);
    // both paths from u₁ to u₃ with their products, straight away: moving u₁ shows them change
    if (graph.parameters.includes("u₁")) send({ type: "graph_paths", parameter: "u₁" });
  } else {
    const which = graph.batch ? `minibatch of ${graph.batch.length} training examples (${graph.batch[0]}…${graph.batch[graph.batch.length - 1]})`
      : `training example ${graph.example}`;
    const example = graph.batch ? "" : `: x = (${graph.x[0].map((v) => formatNumber(v)).join(", ")}), y = ${formatNumber(graph.y[0])}`;
    const penalty = graph.l2 || graph.l1 ? `, λ₂ = ${graph.l2}, λ₁ = ${graph.l1}` : "";
    $("graph-caption").textContent = `${graph.level} level, ${which}${example}${penalty}`;
    $("example-range").textContent = `of 0–${graph.train_size - 1}`;
  }
  if (graph.paused) showNotice("Training was paused: the graph is a snapshot of the weights.", true);
  fillParameters(graph);
  $("step-phase").textContent = "";
  $("step-detail").innerHTML = '<p class="hint">Press <b>forward ▶</b> (or →) to compute the first node.</p>';
  $("node-detail").innerHTML = '<p class="hint">No node selected.</p>';
  $("paths-result").textContent = "";
  $("check-result").textContent = "";
  renderProgress();
  updateLinks();
}

function fillParameters(graph) {
  const paths = $("paths-parameter");
  const check = $("check-parameter");
  const previousPath = paths.value;
  const previousCheck = check.value;
  paths.replaceChildren();
  check.replaceChildren(new Option("all", ""));
  for (const name of graph.parameters) {
    paths.appendChild(new Option(name, name));
    check.appendChild(new Option(name, name));
  }
  if (graph.parameters.includes(previousPath)) paths.value = previousPath;
  if (graph.parameters.includes(previousCheck)) check.value = previousCheck;
  const unit = graph.level === "unit";
  paths.disabled = !unit;
  $("paths").disabled = !unit;
  $("paths-error").textContent = unit ? "" : "Paths are listed in the unit-level view (one node per scalar): choose level unit for one example of a small network.";
}

// ----- stepping -----------------------------------------------------------------------------------
function stepAction(action) {
  if (!state.graph) return;
  send({ type: "graph_step", action });
}

function next() {
  if (!state.graph) return;
  if (state.cursor.phase === "done") return;
  stepAction("next");
}

function stepped(message) {
  view.update(message.changed);
  state.event = message.event;
  state.cursor = { phase: message.phase, position: message.position, steps: message.steps, next: message.next };
  view.setCursor(message.event, message.next);
  renderStep(message.event);
  renderProgress();
  announceStep(message.event);
  if (state.selected !== null) renderNode(state.selected);
}

// The graph's spoken summary (issue 12): each step the learner takes, in one sentence.
function announceStep(event) {
  const node = event && view.nodes.get(event.node);
  let text = "Back at the start: no node computed yet.";
  if (node) {
    const known = event.phase === "forward"
      ? `value ${formatValue(event.value, node.shape)}` : `∂J/∂${event.name} = ${formatValue(event.grad, node.shape)}`;
    text = `${event.phase === "forward" ? "Forward" : "Backward"} pass: ${event.name}, ${known}. ${$("progress").textContent}.`;
  }
  $("graph-status").textContent = text;
}

function renderProgress() {
  const graph = state.graph;
  const cursor = state.cursor;
  if (!graph) {
    $("progress").textContent = "–";
    return;
  }
  const forwardTotal = graph.forward.length;
  const forwardDone = Math.min(cursor.position, forwardTotal);
  const backwardDone = Math.max(0, cursor.position - forwardTotal);
  const phase = { forward: "forward pass", backward: "backward pass", done: "both passes done" }[cursor.phase];
  $("progress").textContent = `${phase} · forward ${forwardDone}/${forwardTotal} · backward ${backwardDone}/${graph.backward.length}`;
  $("progress").dataset.phase = cursor.phase;
  $("graph").setAttribute("aria-label", `Computational graph of ${graph.nodes.length} nodes: ${phase}, forward ${forwardDone} of ${forwardTotal}, backward ${backwardDone} of ${graph.backward.length}; ↑ ↓ move between nodes, Enter selects one`);
  $("forward").disabled = cursor.phase !== "forward";
  $("run-forward").disabled = cursor.phase !== "forward";
  $("backward").disabled = cursor.phase !== "backward";
  $("run").disabled = cursor.phase === "done";
  $("back").disabled = cursor.position === 0;
  $("reset").disabled = cursor.position === 0;
  $("apply").disabled = cursor.phase !== "done" || Boolean(graph.preset);
  $("apply").title = graph.preset ? "The Fig. 6.7 example has no network to update"
    : cursor.phase !== "done" ? "Finish the backward pass first (run to end)" : "Write θ ← θ − ε∇θJ into the network, then rebuild the graph at the new weights";
}

function renderStep(event) {
  const slot = $("step-detail");
  if (!event) {
    $("step-phase").textContent = "";
    slot.innerHTML = '<p class="hint">Back at the start: no node computed yet.</p>';
    return;
  }
  const node = view.nodes.get(event.node);
  const graph = state.graph;
  const parts = [];
  $("step-phase").textContent = event.phase === "forward" ? "forward pass (Algorithm 6.1 / 6.3)" : "backward pass (Algorithm 6.4)";
  parts.push(`<div class="step-node"><span class="phase-tag ${event.phase}">${event.phase}</span> <b data-testid="step-node">${escapeHtml(event.name)}</b> <span class="hint">${escapeHtml(describeNode(node, graph))}</span></div>`);
  parts.push(`<pre class="formula" data-testid="formula">${escapeHtml(event.formula)}</pre>`);
  if (event.phase === "forward") {
    parts.push(`<div class="quantity">value ${escapeHtml(event.name)} = ${renderValue(event.value, node.shape)}</div>`);
  } else {
    parts.push(`<div class="quantity">∂J/∂${escapeHtml(event.name)} = ${renderValue(event.grad, node.shape)}</div>`);
    if (event.terms.length) {
      const rows = event.terms.map((term) => `<tr><td>${escapeHtml(term.child_name)}</td>`
        + `<td>${renderValue(term.child_grad)}</td>`
        + `<td>${term.local === null ? '<span class="hint">Jacobian</span>' : renderValue(term.local)}</td>`
        + `<td>${renderValue(term.contribution)}</td></tr>`);
      parts.push(`<table class="terms" title="Algorithm 6.4: ∂J/∂u = Σ over the children c of u of (∂J/∂c) (∂c/∂u)"><thead><tr><th>child c</th><th>∂J/∂c</th><th>∂c/∂${escapeHtml(event.name)}</th><th>term</th></tr></thead><tbody>${rows.join("")}</tbody></table>`);
      parts.push('<div class="hint">The gradient is the sum of the terms, one per child (Algorithm 6.4).</div>');
    } else if (event.node === graph.cost) {
      parts.push('<div class="hint">The backward pass starts at the cost with ∂J/∂J = 1.</div>');
    }
    if (event.algorithm) {
      parts.push(`<div class="algorithm" title="The matching line of Algorithm 6.2 (backward computation for a deep MLP)"><span>Algorithm 6.2</span> ${escapeHtml(event.algorithm)}</div>`);
    }
  }
  slot.innerHTML = parts.join("");
}

// A number, or a small table for a vector or matrix (rows = examples in the layer view).
function renderValue(value, shape) {
  if (value === null || value === undefined) return '<span class="hint">unknown</span>';
  if (!Array.isArray(value)) return `<span class="number">${formatNumber(value, 6)}</span>`;
  const rows = Array.isArray(value[0]) ? value : [value];
  const shown = rows.slice(0, MAX_ROWS).map((row) => {
    const cells = row.slice(0, MAX_COLUMNS).map((v) => `<td>${formatNumber(v, 4)}</td>`);
    if (row.length > MAX_COLUMNS) cells.push(`<td class="hint">… ${row.length - MAX_COLUMNS} more</td>`);
    return `<tr>${cells.join("")}</tr>`;
  });
  if (rows.length > MAX_ROWS) shown.push(`<tr><td class="hint" colspan="${MAX_COLUMNS}">… ${rows.length - MAX_ROWS} more rows</td></tr>`);
  const size = shape && shape.length ? `<span class="hint">${shape.join(" × ")}</span>` : "";
  return `${size}<div class="matrix-wrap"><table class="matrix">${shown.join("")}</table></div>`;
}

// ----- a node -------------------------------------------------------------------------------------
function selectNode(id) {
  state.selected = id;
  view.select(id);
  renderNode(id);
  const node = view.nodes.get(id);
  if (node && state.graph.parameters.includes(node.name)) {
    if (!$("paths-parameter").disabled) $("paths-parameter").value = node.name;
    $("check-parameter").value = node.name;
  }
}

function renderNode(id) {
  const node = view.nodes.get(id);
  if (!node) return;
  const parents = node.parents.map((p) => view.nodes.get(p).name);
  const source = node.source ? `${node.source.parameter}${node.source.index ? `[${node.source.index.join(", ")}]` : ""}` : null;
  const grad = node.grad === null || node.grad === undefined ? null : node.grad;
  const exact = grad === null ? "" : Array.isArray(grad) ? flatten(grad).join(" ") : String(grad);
  $("node-detail").innerHTML = [
    `<div><b>${escapeHtml(node.name)}</b> <span class="hint">${escapeHtml(node.op)}${node.shape.length ? ` · ${node.shape.join(" × ")}` : ""}</span></div>`,
    `<div class="hint">${escapeHtml(describeNode(node, state.graph))}</div>`,
    source ? `<div>the network's <code>${escapeHtml(source)}</code></div>` : "",
    parents.length ? `<div class="hint">parents: ${parents.map(escapeHtml).join(", ")}</div>` : "",
    `<div class="quantity">value: ${renderValue(node.value, node.shape)}</div>`,
    `<div class="quantity">∂J/∂${escapeHtml(node.name)}: ${renderValue(grad, node.shape)}</div>`,
    `<div class="exact" data-testid="node-grad" title="∂J/∂${escapeHtml(node.name)} to full precision">${escapeHtml(exact)}</div>`,
  ].join("");
}

// ----- paths, check, update -------------------------------------------------------------------------
function showPaths(message) {
  $("paths-error").textContent = "";
  const difference = message.sum !== null && message.gradient !== null ? Math.abs(message.sum - message.gradient) : null;
  const agree = message.complete && difference !== null && difference <= 1e-9 * Math.max(1, Math.abs(message.gradient));
  const rows = message.paths.map((path, index) => `<tr data-index="${index}"><td>${path.nodes.map(escapeHtml).join(" → ")}</td><td class="number">${formatNumber(path.product, 6)}</td></tr>`);
  const growth = message.growth.map((row) => `<tr><td>${row.depth}</td><td class="number">${row.paths}</td><td class="number">${row.arcs}</td></tr>`);
  $("paths-result").innerHTML = [
    `<div class="summary ${agree ? "ok" : ""}" data-testid="paths-summary">${message.count} path${message.count === 1 ? "" : "s"} from ${escapeHtml(message.parameter)} to J`
      + `${message.complete ? "" : ` (the first ${message.paths.length} listed)`}: Σ products = <b>${formatNumber(message.sum, 8)}</b>; back-propagation: ∂J/∂${escapeHtml(message.parameter)} = <b>${formatNumber(message.gradient, 8)}</b>`
      + (message.complete ? (agree ? " ✓ equal" : ` ✗ differ by ${formatNumber(difference, 3)}`) : "") + "</div>",
    `<table class="paths"><thead><tr><th>path (click to show it)</th><th>product of ∂child/∂parent</th></tr></thead><tbody>${rows.join("")}</tbody></table>`,
    `<div class="growth"><div class="hint">Listing paths does not scale: for tanh nets ${message.growth_width} units wide, a first-layer weight has width^(depth−1) paths to J, while back-propagation visits each of the graph's arcs once (this graph: ${message.arcs} arcs).</div>`
      + `<table class="growth-table"><thead><tr><th>depth</th><th>paths</th><th>arcs</th></tr></thead><tbody>${growth.join("")}</tbody></table></div>`,
  ].join("");
  const table = $("paths-result").querySelector("table.paths");
  table.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-index]");
    if (!row) return;
    table.querySelectorAll("tr.chosen").forEach((r) => r.classList.remove("chosen"));
    row.classList.add("chosen");
    view.showPath(message.paths[Number(row.dataset.index)].ids);
  });
  if (message.paths.length) {
    table.querySelector("tr[data-index]").classList.add("chosen");
    view.showPath(message.paths[0].ids);
  }
}

function showCheck(message) {
  $("check-error").textContent = "";
  const rows = message.rows.map((row) => `<tr class="${row.flagged ? "flagged" : ""}"><td>${escapeHtml(row.name)}</td>`
    + `<td class="number">${formatNumber(row.backprop, 8)}</td><td class="number">${formatNumber(row.numeric, 8)}</td>`
    + `<td class="number">${row.relative_error === null ? "?" : row.relative_error.toExponential(1)}</td><td>${row.flagged ? "⚠ above 1e-6" : "✓"}</td></tr>`);
  $("check-result").innerHTML = [
    `<div class="summary ${message.flagged ? "bad" : "ok"}" data-testid="check-summary">${message.checked} of ${message.total} entries · largest relative error ${message.max_relative_error === null ? "?" : message.max_relative_error.toExponential(1)} · ${message.flagged} flagged above ${message.threshold.toExponential(0)}</div>`,
    message.note ? `<div class="hint">${escapeHtml(message.note)}</div>` : "",
    message.flagged ? '<div class="hint">A flag next to a ReLU, |·| or hard-tanh kink can be genuine: the finite differences straddle the kink.</div>' : "",
    `<table class="check"><thead><tr><th>θ</th><th>back-propagation</th><th title="(−J(θ+2ε) + 8J(θ+ε) − 8J(θ−ε) + J(θ−2ε)) / 12ε with ε = ${message.epsilon}">finite differences</th><th>relative error</th><th></th></tr></thead><tbody>${rows.join("")}</tbody></table>`,
  ].join("");
}

function apply() {
  const slot = $("apply-error");
  slot.textContent = "";
  const text = $("learning-rate").value.trim();
  const command = { type: "graph_apply" };
  if (text) {
    const rate = Number(text);
    if (!Number.isFinite(rate) || rate <= 0 || rate > 10) {
      slot.textContent = "learning rate ε: a number above 0 and at most 10";
      return;
    }
    command.learning_rate = rate;
  }
  send(command);
}

function applied(message) {
  const changes = message.changes.slice(0, 12).map((change) => {
    const before = formatValue(change.before);
    const after = formatValue(change.after);
    return `<tr><td>${escapeHtml(change.name)}</td><td class="number">${before}</td><td class="number">${formatValue(change.grad)}</td><td class="number">${after}</td></tr>`;
  });
  const more = message.changes.length > 12 ? `<div class="hint">… and ${message.changes.length - 12} more parameters</div>` : "";
  const loss = message.loss_before === null ? "" : ` · loss L: ${formatNumber(message.loss_before, 6)} → ${formatNumber(message.loss_after, 6)}`;
  $("applied").innerHTML = [
    `<div class="summary ${message.cost_after < message.cost_before ? "ok" : "bad"}" data-testid="applied-summary">ε = ${message.learning_rate}: cost J ${formatNumber(message.cost_before, 6)} → <b>${formatNumber(message.cost_after, 6)}</b>${loss}</div>`,
    `<table class="changes"><thead><tr><th>θ</th><th>before</th><th>∂J/∂θ</th><th>after = θ − ε∂J/∂θ</th></tr></thead><tbody>${changes.join("")}</tbody></table>${more}`,
    '<div class="hint">The graph is rebuilt at the new weights: step through it again to see J fall.</div>',
  ].join("");
  showGraph(message.graph);
  send({ type: "export" }); // keep the new weights for a reconnect and for the playground link
}

// ----- links, messages ------------------------------------------------------------------------------
// Back to the playground with this network: the link carries the configuration and the exact
// weights (updated by "apply update") travel in sessionStorage, as they came.
const RETURN_STORAGE_KEY = "backprop-lab:from-step-through";
$("playground-link").addEventListener("click", () => {
  if (!state.config || !state.weights) return;
  try {
    sessionStorage.setItem(RETURN_STORAGE_KEY, JSON.stringify({ config: state.config, weights: state.weights }));
  } catch (error) {
    // storage off or full: the playground starts from the configuration's initial weights
  }
});

function updateLinks() {
  if (!state.config) return;
  // the playground's palette rides along, there and back (issue 12)
  const payload = state.palette ? { config: state.config, palette: state.palette } : { config: state.config };
  const fragment = `c=${encodeBase64Url(JSON.stringify(payload))}`;
  $("playground-link").href = `/#${fragment}`;
  const source = state.source;
  const extra = source.preset ? `&preset=${source.preset}&u1=${source.u1}` : `&e=${source.example}&m=${source.batch}&level=${source.level}`;
  history.replaceState(null, "", `${location.pathname}#${fragment}${extra}`);
}

function clearErrors() {
  for (const id of ["source-error", "paths-error", "check-error", "apply-error"]) $(id).textContent = "";
}

function showBanner(text) {
  $("banner").textContent = text;
  $("banner").hidden = false;
}
function hideBanner() {
  $("banner").hidden = true;
}
let noticeTimer = null;
function showNotice(text, transient = false) {
  $("notice").textContent = text;
  $("notice").hidden = false;
  clearTimeout(noticeTimer);
  if (transient) noticeTimer = setTimeout(() => { $("notice").hidden = true; }, 6000);
}

// ----- controls ------------------------------------------------------------------------------------
$("forward").addEventListener("click", () => stepAction("forward"));
$("backward").addEventListener("click", () => stepAction("backward"));
$("back").addEventListener("click", () => stepAction("back"));
$("reset").addEventListener("click", () => stepAction("reset"));
$("run").addEventListener("click", () => stepAction("run"));
$("run-forward").addEventListener("click", () => stepAction("run_forward"));
$("apply").addEventListener("click", () => apply());
$("paths").addEventListener("click", () => {
  const parameter = $("paths-parameter").value;
  if (parameter) send({ type: "graph_paths", parameter });
});
$("check").addEventListener("click", () => {
  const parameter = $("check-parameter").value;
  send(parameter ? { type: "graph_check", parameter } : { type: "graph_check" });
});
$("open-network").addEventListener("click", () => {
  if (!readSource()) return;
  state.source.preset = null;
  openGraph();
});
$("open-fig67").addEventListener("click", () => {
  if (!readU1()) return;
  state.source.preset = "fig_6_7";
  openGraph();
});
// u₁ of Fig. 6.7: the slider and the number field show the same value; either opens the example
function readU1() {
  const slot = $("source-error");
  const text = $("fig67-u1").value.trim();
  const u1 = Number(text);
  if (text === "" || !Number.isFinite(u1) || u1 < -3 || u1 > 3) {
    slot.textContent = "u₁: a number from −3 to 3";
    return false;
  }
  slot.textContent = "";
  state.source.u1 = u1;
  $("fig67-u1-slider").value = String(u1);
  return true;
}
function openFig67() {
  if (!readU1()) return;
  state.source.preset = "fig_6_7";
  openGraph();
}
$("fig67-u1-slider").addEventListener("input", () => {
  $("fig67-u1").value = $("fig67-u1-slider").value;
  openFig67();
});
$("fig67-u1").addEventListener("change", () => openFig67());
for (const id of ["example", "batch-size"]) {
  $(id).addEventListener("change", () => {
    if (!readSource()) return;
    state.source.preset = null;
    openGraph();
  });
}
$("level").addEventListener("change", () => {
  if (!readSource()) return;
  state.source.preset = null;
  openGraph();
});
function moveExample(delta) {
  const size = state.trainSize || 1;
  const current = Number($("example").value) || 0;
  $("example").value = String((current + delta + size) % size);
  if (!readSource()) return;
  state.source.preset = null;
  openGraph();
}
$("example-prev").addEventListener("click", () => moveExample(-1));
$("example-next").addEventListener("click", () => moveExample(1));

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "ArrowRight") { event.preventDefault(); next(); }
  else if (event.key === "ArrowLeft") { event.preventDefault(); if (state.cursor.position > 0) stepAction("back"); }
  else if (event.key === "Home") { event.preventDefault(); stepAction("reset"); }
  else if (event.key === "End") { event.preventDefault(); if (state.cursor.phase !== "done") stepAction("run"); }
});

// ----- start -----------------------------------------------------------------------------------------
async function start() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromUrl = readUrl(location.hash);
  if (fromUrl && fromUrl.error) showNotice(fromUrl.error);
  let stored = null;
  try {
    stored = JSON.parse(sessionStorage.getItem(STEP_STORAGE_KEY) || "null");
  } catch (error) {
    stored = null;
  }
  if (fromUrl && fromUrl.config) state.config = fromUrl.config;
  if (fromUrl && fromUrl.palette) state.palette = fromUrl.palette;
  if (stored && stored.config && stored.weights
      && (!state.config || JSON.stringify(stored.config) === JSON.stringify(state.config))) {
    state.config = stored.config;
    state.weights = stored.weights;
    state.restored = true;
  }
  if (!state.config) {
    // no network handed over: the chapter's Fig. 6.2 net
    try {
      const presets = await (await fetch("/api/presets")).json();
      const preset = presets.find((p) => p.name === "fig_6_2") || presets[0];
      state.config = preset.config;
    } catch (error) {
      showNotice(`Presets could not be loaded: ${error.message}`);
      return;
    }
  }
  const example = Number(params.get("e"));
  const batch = Number(params.get("m"));
  if (Number.isInteger(example) && example >= 0) state.source.example = example;
  if (Number.isInteger(batch) && batch >= 1 && batch <= 64) state.source.batch = batch;
  if (["auto", "unit", "layer"].includes(params.get("level"))) state.source.level = params.get("level");
  if (params.get("preset") === "fig_6_7") state.source.preset = "fig_6_7";
  const u1 = Number(params.get("u1"));
  if (params.has("u1") && Number.isFinite(u1) && u1 >= -3 && u1 <= 3) state.source.u1 = u1;
  $("fig67-u1").value = String(state.source.u1);
  $("fig67-u1-slider").value = String(state.source.u1);
  $("example").value = String(state.source.example);
  $("batch-size").value = String(state.source.batch);
  $("level").value = state.source.level;
  socket.connect();
}

// For tests: a read-only window on the page's state.
window.stepPage = { state, view, socket, get graph() { return state.graph; } };
start();
