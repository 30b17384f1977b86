// Submits a heavy job on the playground's network: its exact weights (the session's `export`)
// and, for a loss landscape, the weight snapshots taken along training, so that the job can
// project the training path onto the plane. Loaded by the playground on the first click.

const EXPORT_TIMEOUT_MS = 10000;

// kind: "landscape" | "spectrum"; exported: a promise of the `export` reply; tab: the window
// opened at the click (null where pop-ups are blocked); slot: where errors go.
export async function submitJob({ kind, exported, state, tab, slot }) {
  if (tab) tab.document.title = "Backprop Lab — submitting the job…";
  let timer = null;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("the session did not send its weights")), EXPORT_TIMEOUT_MS);
  });
  let message;
  try {
    message = await Promise.race([exported, timeout]);
  } finally {
    clearTimeout(timer);
  }
  const spec = { kind, config: message.config, weights: message.weights };
  if (kind === "landscape") {
    // the path ends at the weights the plane is centred on
    const path = state.snapshotsLike(message.weights);
    path.push(message.weights);
    if (path.length > 1) spec.path = path;
  }
  const response = await fetch("/api/jobs", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec),
  });
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    // no JSON body
  }
  if (!response.ok) {
    if (tab) tab.close();
    slot.textContent = `The ${kind} job was refused: ${refusal(data, response.status)}`;
    return null;
  }
  const url = `/jobs#job=${encodeURIComponent(data.id)}`;
  if (tab && !tab.closed) {
    tab.location.href = url;
  } else {
    // pop-ups blocked: say where the job is instead
    slot.textContent = "";
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.textContent = `open the ${kind} job ${data.id.slice(0, 6)} on the jobs page`;
    slot.append("Submitted: ", link);
  }
  return data;
}

function refusal(data, status) {
  const detail = data && data.detail !== undefined ? data.detail : data;
  if (typeof detail === "string") return detail;
  const items = Array.isArray(detail) ? detail : detail ? [detail] : [];
  const texts = items.map((item) => {
    if (Array.isArray(item.loc)) return `${item.loc.filter((p) => p !== "body").join(".")}: ${item.msg}`;
    return item.message || item.msg || JSON.stringify(item);
  });
  return texts.length ? texts.join("; ") : `the server answered ${status}`;
}
