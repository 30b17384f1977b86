// The heavy jobs page: a form per job kind (POST /api/jobs), this browser's jobs with their
// progress (one WebSocket per unfinished job, /ws/jobs/{id}), cancel, and the chosen job's
// result drawn with Plotly (jobplots.js). `#job=<id>` in the address chooses a job, so the
// playground can open a tab on the job it has just submitted.

import { loadPlotly, drawResult, percent, number } from "./jobplots.js";

const body = document.body;
const TERMINAL = new Set(["done", "failed", "cancelled"]);
const MAX_PARTIALS = 200; // progress events kept per job for the running job's log
const MAX_NETWORKS = 5; // playground networks offered to the landscape and spectrum forms
const wsBase = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;

const jobs = new Map(); // id -> {job, socket, partials, element, retries}
const networks = new Map(); // option value -> {label, config, weights, path}
let selectedId = null;
let available = true;
let drawQueue = Promise.resolve();
const page = { jobs, networks, drawn: null, get selected() { return selectedId; }, get available() { return available; } };
window.jobsPage = page; // a read-only window on the page's state, for tests

const forms = [...document.querySelectorAll("form.job-form")];
const list = document.getElementById("job-list");

// ----- the server --------------------------------------------------------------------------
async function api(method, url, payload) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (payload !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(payload);
  }
  const response = await fetch(url, options);
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    // no JSON body: the status says enough
  }
  return { ok: response.ok, status: response.status, data };
}

// A refusal as a sentence: FastAPI's {"detail": "..."} or our own {"message": ...}.
function refusal(data, status) {
  if (data && typeof data.detail === "string") return data.detail;
  if (data && data.detail && typeof data.detail.message === "string") return data.detail.message;
  if (data && typeof data.message === "string") return data.message;
  return `The server answered ${status}.`;
}

// A 422's detail as [{field, message}]: pydantic's list ({loc, msg, input}) or the settings'
// limit ({field, limit, message}), one object or a list of them.
export function fieldErrors(data, kind) {
  const detail = data && data.detail !== undefined ? data.detail : data;
  const items = Array.isArray(detail) ? detail : [detail];
  return items.map((item) => {
    if (!item || typeof item !== "object") return { field: "", message: String(item ?? "The job was refused.") };
    if (Array.isArray(item.loc)) {
      let loc = item.loc.filter((part) => part !== "body");
      if (loc[0] === kind) loc = loc.slice(1); // the union's tag: the spec's own fields follow
      const field = loc.join(".");
      const got = item.input !== undefined && (item.input === null || typeof item.input !== "object")
        ? ` (got ${JSON.stringify(item.input)})` : "";
      return { field, message: `${field || "spec"}: ${item.msg}${got}` };
    }
    const field = item.field !== undefined && item.field !== null ? String(item.field) : "";
    let message = item.message || item.msg || JSON.stringify(item);
    if (field && !message.includes(field)) message = `${field}: ${message}`;
    return { field, message };
  });
}

// ----- the forms ----------------------------------------------------------------------------
function parseValue(raw, type) {
  if (type === "string") return raw;
  if (type === "int-list") return raw.split(/[\s,;]+/).filter(Boolean).map((part) => parseValue(part, "int"));
  const value = Number(raw);
  if (Number.isFinite(value) && (type !== "int" || Number.isInteger(value))) return value;
  return raw; // not a number: sent as typed, so the server's message names the field
}

function readForm(form) {
  // not form.dataset: a form exposes its controls by name, and the sweep has one named "dataset"
  const kind = form.getAttribute("data-kind");
  const spec = { kind };
  for (const input of form.querySelectorAll("[name][data-type]")) {
    const raw = input.value.trim();
    if (raw === "") continue; // the spec's default
    spec[input.name] = parseValue(raw, input.dataset.type);
  }
  const source = form.querySelector("select.network-source");
  if (source) {
    const network = networks.get(source.value);
    if (!network) return { error: "The network list is still loading; try again in a moment." };
    spec.config = network.config;
    spec.weights = network.weights;
    if (kind === "landscape" && network.path && network.path.length) spec.path = network.path;
  }
  return { spec };
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function showErrors(form, errors) {
  const general = form.querySelector('.form-error[data-error-for=""]');
  const left = [];
  for (const { field, message } of errors) {
    const name = field.split(".")[0];
    const slot = name ? form.querySelector(`.field-error[data-error-for="${CSS.escape(name)}"]`) : null;
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
      const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      left.push(message);
    }
  }
  general.textContent = left.join(" ");
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

async function submit(form) {
  clearErrors(form);
  const general = form.querySelector('.form-error[data-error-for=""]');
  const { spec, error } = readForm(form);
  if (error) {
    general.textContent = error;
    return;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const { ok, status, data } = await api("POST", "/api/jobs", spec);
    if (ok) {
      addJob(data);
      select(data.id);
    } else if (status === 422) {
      showErrors(form, fieldErrors(data, spec.kind));
    } else {
      general.textContent = refusal(data, status);
    }
  } catch (failure) {
    general.textContent = `The server could not be reached: ${failure.message}`;
  } finally {
    button.disabled = false;
  }
}

for (const form of forms) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form);
  });
}

function setAvailable(isAvailable, reason) {
  available = isAvailable;
  for (const form of forms) form.querySelector("fieldset").disabled = !isAvailable;
  const banner = document.getElementById("unavailable");
  banner.hidden = isAvailable;
  const why = reason || "jobs cannot run: no job cluster can be reached";
  banner.textContent = isAvailable ? "" : `${why[0].toUpperCase()}${why.slice(1).replace(/\.$/, "")}. The forms are off until the cluster is back.`;
  document.getElementById("cluster-status").textContent = isAvailable ? "job cluster ready" : "job cluster unavailable";
}

// ----- networks for the landscape and spectrum --------------------------------------------------
function addNetworkOption(value, network, { prepend = false, choose = false } = {}) {
  networks.set(value, network);
  for (const select of document.querySelectorAll("select.network-source")) {
    let option = [...select.options].find((o) => o.value === value);
    if (!option) {
      option = new Option(network.label, value);
      if (prepend) select.prepend(option);
      else select.append(option);
    }
    if (choose) select.value = value;
  }
}

// A landscape or spectrum job sent from the playground carries that session's config and
// weights: the other kind's form can use the same network.
function offerJobNetwork(job, choose) {
  const spec = job.spec || {};
  if (!["landscape", "spectrum"].includes(job.kind) || !spec.weights || !spec.config) return;
  const value = `job:${job.id}`;
  const when = job.created ? new Date(job.created).toLocaleTimeString() : "";
  const layers = (spec.config.model && spec.config.model.layers) || [];
  const shape = layers.map((layer) => layer.units).join("-") || "no hidden layer";
  addNetworkOption(value, {
    label: `playground network ${shape} (sent ${when} with job ${job.id.slice(0, 6)})`,
    config: spec.config, weights: spec.weights, path: spec.path || null,
  }, { prepend: true, choose });
  const offered = [...networks.keys()].filter((key) => key.startsWith("job:"));
  for (const key of offered.slice(0, Math.max(0, offered.length - MAX_NETWORKS))) {
    networks.delete(key);
    document.querySelectorAll(`select.network-source option[value="${CSS.escape(key)}"]`).forEach((o) => o.remove());
  }
}

async function loadPresets() {
  try {
    const { ok, status, data } = await api("GET", "/api/presets");
    if (!ok) throw new Error(`${status}`);
    const preferred = data.find((p) => p.default) || data.find((p) => p.name === "default") || data[0];
    for (const preset of [preferred, ...data.filter((p) => p !== preferred)]) {
      addNetworkOption(`preset:${preset.name}`, {
        label: `preset ${preset.title || preset.name}, fresh weights`, config: preset.config, weights: null, path: null,
      });
    }
  } catch (error) {
    showNotice(`The presets could not be loaded (${error.message}): landscape and spectrum jobs need one.`);
  }
}

// ----- the list ---------------------------------------------------------------------------------
function describe(job) {
  const spec = job.spec || {};
  switch (job.kind) {
    case "digits": return `${spec.epochs} epoch${spec.epochs === 1 ? "" : "s"}, 784-${spec.hidden}-10, ε = ${spec.learning_rate}`;
    case "sweep": return `${spec.dataset}: depths ${(spec.depths || []).join(", ")} × widths ${(spec.widths || []).join(", ")}, ${spec.seeds} seed${spec.seeds === 1 ? "" : "s"}`;
    case "landscape": return `${spec.resolution}×${spec.resolution}, ±${spec.span}, ${spec.directions} directions${spec.weights ? "" : ", fresh weights"}`;
    case "spectrum": return `top ${spec.k}, ${spec.iterations} Lanczos steps${spec.weights ? "" : ", fresh weights"}`;
    default: return "";
  }
}

const KIND_TITLES = { digits: "Digits", sweep: "Depth × width sweep", landscape: "Loss landscape", spectrum: "Hessian spectrum" };

function buildItem(job) {
  const item = document.createElement("li");
  item.className = "job";
  item.dataset.id = job.id;
  item.dataset.testid = `job-${job.id}`;
  const head = document.createElement("div");
  head.className = "job-head";
  const title = document.createElement("button");
  title.type = "button";
  title.className = "job-title";
  title.addEventListener("click", () => select(job.id));
  const state = document.createElement("span");
  state.className = "job-state";
  head.append(title, state);
  const spec = document.createElement("div");
  spec.className = "job-spec";
  const bar = document.createElement("progress");
  bar.max = 1;
  const message = document.createElement("div");
  message.className = "job-message";
  const actions = document.createElement("div");
  actions.className = "job-actions";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "cancel";
  cancel.textContent = "cancel";
  cancel.addEventListener("click", () => cancelJob(job.id, cancel));
  const report = document.createElement("a");
  report.className = "button report";
  report.textContent = "HTML report";
  report.href = `/api/jobs/${encodeURIComponent(job.id)}/report`;
  report.target = "_blank";
  report.rel = "noopener";
  const json = document.createElement("a");
  json.className = "button json";
  json.textContent = "JSON";
  json.href = `/api/jobs/${encodeURIComponent(job.id)}/result.json`;
  json.download = `backprop-lab-${job.kind}-${job.id}.json`;
  actions.append(cancel, report, json);
  item.append(head, spec, bar, message, actions);
  return item;
}

function renderItem(entry) {
  const { job, element } = entry;
  const kindTitle = KIND_TITLES[job.kind] || job.kind;
  element.dataset.state = job.state;
  element.classList.toggle("selected", job.id === selectedId);
  const title = element.querySelector(".job-title");
  title.textContent = `${kindTitle} · ${job.id.slice(0, 6)}`;
  title.setAttribute("aria-pressed", String(job.id === selectedId));
  // the controls of every item name their job: "cancel" alone would be one of many
  const name = `${kindTitle} · ${job.id.slice(0, 6)}`;
  element.querySelector(".cancel").setAttribute("aria-label", `cancel ${name}`);
  element.querySelector(".report").setAttribute("aria-label", `HTML report of ${name}`);
  element.querySelector(".json").setAttribute("aria-label", `JSON of ${name}`);
  element.querySelector(".job-state").textContent = job.state;
  element.querySelector(".job-spec").textContent = describe(job);
  const bar = element.querySelector("progress");
  bar.value = job.state === "done" ? 1 : Math.max(0, Math.min(1, job.progress || 0));
  bar.setAttribute("aria-label", `progress of ${kindTitle.toLowerCase()} job ${job.id.slice(0, 6)}`);
  bar.textContent = `${Math.round(100 * bar.value)} %`;
  element.querySelector(".job-message").textContent = statusLine(entry);
  element.querySelector(".cancel").hidden = TERMINAL.has(job.state);
  element.querySelector(".report").hidden = job.state !== "done";
  element.querySelector(".json").hidden = !TERMINAL.has(job.state);
}

function statusLine(entry) {
  const { job } = entry;
  const last = entry.partials.length ? entry.partials[entry.partials.length - 1] : null;
  const parts = [];
  if (job.message) parts.push(job.message);
  if (last && !TERMINAL.has(job.state)) {
    const text = formatPartials(last);
    if (text && !parts.includes(text)) parts.push(text);
  }
  if (!parts.length) return job.state === "queued" ? "waiting for a worker" : "";
  return parts.join(" · ");
}

// Partial results of a progress event ({epoch, loss, ...}) as one line. Where it runs (worker,
// backend) is in the "started on ..." message already; the piece is shown as "i/n".
const PLACE_KEYS = new Set(["worker", "backend", "device", "piece", "pieces"]);
function formatPartials(data) {
  const entries = Object.entries(data || {})
    .filter(([key, value]) => !PLACE_KEYS.has(key) && (typeof value === "number" || typeof value === "string"));
  const piece = data && data.pieces > 1 ? [`piece ${data.piece + 1}/${data.pieces}`] : [];
  return piece.concat(entries
    .map(([key, value]) => {
      const name = key.replace(/_/g, " ");
      if (typeof value === "string") return `${name} ${value}`;
      if (key.includes("accuracy")) return `${name} ${percent(value)}`;
      return `${name} ${Number.isFinite(value) ? Number(value.toPrecision(4)) : "–"}`;
    }))
    .join(", ");
}

function addJob(job) {
  let entry = jobs.get(job.id);
  if (!entry) {
    entry = { job, socket: null, partials: [], element: buildItem(job), retries: 0 };
    jobs.set(job.id, entry);
    // newest first
    const after = [...list.children].find((li) => {
      const other = jobs.get(li.dataset.id);
      return other && (other.job.created || "") < (job.created || "");
    });
    list.insertBefore(entry.element, after || null);
  } else {
    entry.job = { ...entry.job, ...job, result: job.result ?? entry.job.result ?? null };
  }
  document.getElementById("no-jobs").hidden = jobs.size > 0;
  offerJobNetwork(entry.job, false);
  renderItem(entry);
  follow(job.id);
  if (job.id === selectedId) showSelected();
  return entry;
}

// ----- progress over the WebSocket ------------------------------------------------------------
function follow(id) {
  const entry = jobs.get(id);
  if (!entry || entry.socket || TERMINAL.has(entry.job.state)) return;
  const socket = new WebSocket(`${wsBase}/ws/jobs/${encodeURIComponent(id)}`);
  entry.socket = socket;
  socket.addEventListener("message", (event) => {
    let message = null;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if ((message.type === "job" || message.type === "result") && message.job) {
      entry.retries = 0;
      addJob(message.job);
    } else if (message.type === "progress") {
      progress(entry, message);
    }
  });
  socket.addEventListener("close", () => {
    if (entry.socket === socket) entry.socket = null;
    if (TERMINAL.has(entry.job.state)) return;
    // closed before the result (a restart, a lost network): ask again, a few times
    entry.retries += 1;
    if (entry.retries > 5) {
      entry.job.message = "Lost contact with the server; reload the page to follow this job.";
      renderItem(entry);
      return;
    }
    setTimeout(() => refresh(id), 500 * entry.retries);
  });
}

async function refresh(id) {
  try {
    const { ok, status, data } = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
    if (ok) addJob(data);
    else if (status === 404) forget(id, "This job is no longer on the server.");
    else follow(id);
  } catch (error) {
    const entry = jobs.get(id);
    if (entry) setTimeout(() => follow(id), 1000);
  }
}

function forget(id, text) {
  const entry = jobs.get(id);
  if (!entry) return;
  entry.job.state = "failed";
  entry.job.message = text;
  renderItem(entry);
}

function progress(entry, message) {
  const job = entry.job;
  if (job.state === "queued") job.state = "running";
  if (typeof message.progress === "number") job.progress = message.progress;
  if (typeof message.message === "string") job.message = message.message;
  if (message.data && Object.keys(message.data).length) {
    entry.partials.push(message.data);
    if (entry.partials.length > MAX_PARTIALS) entry.partials.splice(0, entry.partials.length - MAX_PARTIALS);
  }
  renderItem(entry);
  if (job.id === selectedId) showSummary(entry);
}

async function cancelJob(id, button) {
  button.disabled = true;
  try {
    const { ok, status, data } = await api("DELETE", `/api/jobs/${encodeURIComponent(id)}`);
    if (ok) addJob(data);
    else showNotice(`The job could not be cancelled: ${refusal(data, status)}`);
  } catch (error) {
    showNotice(`The job could not be cancelled: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// ----- the chosen job ------------------------------------------------------------------------
function select(id) {
  if (location.hash !== `#job=${id}`) history.replaceState(null, "", `#job=${encodeURIComponent(id)}`);
  choose(id);
}

function choose(id) {
  const previous = selectedId;
  selectedId = id;
  for (const entry of jobs.values()) if (entry.job.id === previous || entry.job.id === id) renderItem(entry);
  showSelected();
}

function showSummary(entry) {
  const { job } = entry;
  const summary = document.getElementById("result-summary");
  const caption = document.getElementById("result-caption");
  caption.textContent = `${KIND_TITLES[job.kind] || job.kind} ${job.id.slice(0, 6)}: ${describe(job)}`;
  summary.replaceChildren();
  const line = document.createElement("p");
  if (job.state === "done" && job.result) {
    line.textContent = resultLine(job);
  } else if (job.state === "failed") {
    line.className = "failed";
    line.textContent = `Failed: ${job.message || "no reason given"}`;
  } else if (job.state === "cancelled") {
    const said = job.message && job.message.toLowerCase() !== "cancelled" ? `: ${job.message}` : ".";
    line.textContent = `Cancelled${said}`;
  } else if (job.state === "done") {
    line.textContent = "Done; fetching the result…";
  } else {
    line.textContent = `${job.state === "queued" ? "Queued" : "Running"}: ${Math.round(100 * (job.progress || 0))} %${job.message ? `, ${job.message}` : ""}`;
  }
  summary.append(line);
  if (!TERMINAL.has(job.state) && entry.partials.length) {
    const log = document.createElement("ol");
    log.className = "partials";
    log.setAttribute("aria-label", "partial results so far");
    for (const data of entry.partials.slice(-8)) {
      const row = document.createElement("li");
      row.textContent = formatPartials(data);
      log.append(row);
    }
    summary.append(log);
  }
}

function resultLine(job) {
  const r = job.result;
  const where = [r.backend, r.device].filter(Boolean).join(" on ");
  const tail = `${where ? ` (${where}` : ""}${typeof r.seconds === "number" ? `${where ? ", " : " ("}${r.seconds.toFixed(1)} s` : ""}${where || typeof r.seconds === "number" ? ")" : ""}`;
  switch (job.kind) {
    case "digits":
      return `Test accuracy ${percent(r.test_accuracy)} after ${r.history.length} epoch${r.history.length === 1 ? "" : "s"}${tail}.`;
    case "sweep": {
      const best = r.runs.reduce((a, b) => (b.test_accuracy > a.test_accuracy ? b : a), r.runs[0]);
      return `${r.runs.length} nets on ${r.dataset}; the best test accuracy ${percent(best.test_accuracy)}, depth ${best.depth} × width ${best.width}, ${best.parameters} parameters${tail}.`;
    }
    case "landscape": {
      const finite = r.cost.flat().filter((v) => typeof v === "number");
      return `J at the weights θ: ${number(r.center_cost)}; over the plane from ${number(Math.min(...finite))} to ${number(Math.max(...finite))}${r.path && r.path.length ? `; ${r.path.length} snapshots of the training path` : ""}${tail}.`;
    }
    case "spectrum": {
      let text = `Largest eigenvalue λ₁ = ${number(r.eigenvalues[0])}, smallest of the top ${r.eigenvalues.length} ${number(r.eigenvalues[r.eigenvalues.length - 1])} (${r.parameters} parameters)`;
      if (Array.isArray(r.exact) && r.exact.length) text += `; the full Hessian's λ₁ = ${number(r.exact[0])}`;
      return `${text}${tail}.`;
    }
    default:
      return "Done.";
  }
}

async function showSelected() {
  const entry = jobs.get(selectedId);
  if (!entry) return;
  showSummary(entry);
  const plots = document.getElementById("result-plots");
  const { job } = entry;
  if (job.state !== "done") {
    if (plots.dataset.job !== job.id || plots.childElementCount) clearPlots(plots, job.id);
    return;
  }
  if (plots.dataset.drawn === job.id) return;
  if (!job.result) {
    if (entry.fetching) return;
    entry.fetching = true;
    try {
      const { ok, status, data } = await api("GET", `/api/jobs/${encodeURIComponent(job.id)}`);
      if (ok) addJob(data); // shows it again, with the result
      else showNotice(`The result could not be fetched: ${refusal(data, status)}`);
    } finally {
      entry.fetching = false;
    }
    return;
  }
  drawQueue = drawQueue.then(() => draw(job.id)).catch((error) => {
    showNotice(`The result could not be drawn: ${error.message}`);
    console.error(error);
  });
}

function clearPlots(plots, id) {
  if (globalThis.Plotly) plots.querySelectorAll(".js-plotly-plot").forEach((div) => globalThis.Plotly.purge(div));
  plots.replaceChildren();
  plots.dataset.job = id;
  delete plots.dataset.drawn;
}

async function draw(id) {
  const plots = document.getElementById("result-plots");
  const entry = jobs.get(id);
  if (id !== selectedId || !entry || !entry.job.result || plots.dataset.drawn === id) return;
  plots.setAttribute("aria-busy", "true");
  const Plotly = await loadPlotly(body.dataset.plotlyUrl);
  if (id !== selectedId) return;
  clearPlots(plots, id);
  const divs = await drawResult(Plotly, plots, entry.job);
  plots.dataset.drawn = id;
  plots.removeAttribute("aria-busy");
  page.drawn = { id, kind: entry.job.kind, plots: divs.map((div) => div.id) };
}

window.addEventListener("hashchange", () => {
  const id = jobFromHash();
  if (id && id !== selectedId) openJob(id);
});

function jobFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return params.get("job");
}

async function openJob(id) {
  if (!jobs.has(id)) {
    const { ok, status, data } = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
    if (!ok) {
      showNotice(status === 404
        ? `Job ${id} is not one of this browser's jobs (or the server has forgotten it).`
        : `Job ${id} could not be loaded: ${refusal(data, status)}`);
      return;
    }
    addJob(data);
  }
  const entry = jobs.get(id);
  offerJobNetwork(entry.job, true); // opened from the playground: its network is the one to use
  choose(id);
}

// ----- messages ------------------------------------------------------------------------------
function showNotice(text) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.hidden = false;
}

// ----- start ------------------------------------------------------------------------------------
async function loadJobs() {
  const { ok, status, data } = await api("GET", "/api/jobs");
  if (!ok) throw new Error(refusal(data, status));
  setAvailable(data.available !== false, data.reason);
  for (const job of [...(data.jobs || [])].sort((a, b) => ((a.created || "") < (b.created || "") ? -1 : 1))) addJob(job);
  return data;
}

async function start() {
  await loadPresets();
  let listed = null;
  try {
    listed = await loadJobs();
  } catch (error) {
    setAvailable(false, `the jobs API did not answer (${error.message})`);
  }
  const id = jobFromHash();
  if (id) await openJob(id);
  // while the cluster is down, look again now and then: the forms come back with it
  if (listed && listed.available === false) {
    const timer = setInterval(async () => {
      try {
        const { ok, data } = await api("GET", "/api/jobs");
        if (ok && data.available !== false) {
          setAvailable(true, null);
          clearInterval(timer);
        }
      } catch (error) {
        // still down
      }
    }, 15000);
  }
  page.ready = true;
}

start();
