// Text alternatives for the playground's canvases (issue 12): each canvas carries an
// aria-label that says what it shows (the decision surface's accuracy, the curves' last
// values, the network's shape), and a polite live region reads a short summary aloud when
// training pauses or passes a milestone epoch.
//
// None of this runs per frame: the page hands over its newest frame (a reference, O(1)) and
// the labels are rebuilt at most every LABEL_MS while training runs, at once after a pause
// or a single step. Screen readers then hear a change when there is one to hear, and the
// drawing's hot path (render in playground.js) does no DOM work for them.

const LABEL_MS = 2000; // labels follow training at most this often
const SETTLE_MS = 250; // after a pause, step or reconfiguration
const ANNOUNCE_MS = 8000; // the live region speaks at most this often while training runs
const MILESTONES = [1, 2, 5]; // ×10ᵏ epochs: 1, 2, 5, 10, 20, 50, 100, …

export function epochMilestone(epoch) {
  if (!(epoch >= 1)) return 0;
  const power = 10 ** Math.floor(Math.log10(epoch));
  let best = power;
  for (const m of MILESTONES) if (m * power <= epoch) best = m * power;
  return best;
}

function number(value, digits = 2) {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 0.01 || abs >= 1e4)) return value.toExponential(1);
  return value.toFixed(digits);
}

// "after 40 epochs" (whole epochs once there is one), "after 12 steps" before that.
export function trainedFor(epoch, step) {
  if (epoch >= 1) {
    const whole = Math.floor(epoch);
    return `after ${whole} epoch${whole === 1 ? "" : "s"}`;
  }
  return `after ${step || 0} step${step === 1 ? "" : "s"}`;
}

export function describeSurface(frame, network, data) {
  if (!frame) return "Decision surface: waiting for the first frame";
  const when = trainedFor(frame.epoch, frame.step);
  const points = data ? data.train.y.length + data.test.y.length : null;
  const counted = points === null ? "" : `, ${points} points`;
  if (network && network.task === "regression") {
    const loss = number(frame.testLoss, 3) ?? number(frame.trainLoss, 3);
    return `Prediction ŷ over the input: test loss ${loss ?? "not known yet"} ${when}${counted}`;
  }
  const classes = Math.max(2, (network && network.classes) || 2);
  const accuracy = number(frame.testAccuracy) ?? number(frame.trainAccuracy);
  const measure = accuracy !== null ? `test accuracy ${accuracy}` : `test loss ${number(frame.testLoss, 3) ?? "not known yet"}`;
  return `Decision surface: ${measure} ${when}, ${classes} classes${counted}`;
}

export function describeNetwork(config, network, params) {
  if (!config) return "Network diagram";
  const model = config.model;
  const inputs = model.features.length;
  const layers = model.layers.length
    ? `${model.layers.length} hidden layer${model.layers.length === 1 ? "" : "s"} of ${model.layers.map((l) => `${l.units} ${l.activation.replace("_", " ")}`).join(", ")} units`
    : "no hidden layer";
  const outputs = network ? network.outputs : 1;
  const loss = network ? network.loss : model.output.loss;
  let largest = null;
  if (params) {
    for (const [name, parameter] of params) {
      if (!name.startsWith("W")) continue;
      for (const value of parameter.value) if (largest === null || Math.abs(value) > largest) largest = Math.abs(value);
    }
  }
  const weights = largest === null ? "" : `; largest weight |W| ${number(largest)}`;
  return `Network diagram: ${inputs} input feature${inputs === 1 ? "" : "s"} (${model.features.join(", ")}), ${layers}, ${outputs} output unit${outputs === 1 ? "" : "s"} (${loss})${weights}`;
}

function last(array) {
  for (let i = array.length - 1; i >= 0; i--) if (Number.isFinite(array[i])) return array[i];
  return null;
}

export function describeCurves(curves, frame, network) {
  const when = frame ? trainedFor(frame.epoch, frame.step) : "before training";
  const loss = `Loss curves over epochs: training loss ${number(last(curves.trainLoss), 3) ?? "–"}, test loss ${number(last(curves.testLoss), 3) ?? "–"} ${when}`;
  const accuracy = network && network.task === "regression"
    ? "Accuracy curves: classification only"
    : `Accuracy curves over epochs: training ${number(last(curves.trainAccuracy)) ?? "–"}, test ${number(last(curves.testAccuracy)) ?? "–"} ${when}`;
  const norms = curves.norms.length ? curves.norms[curves.norms.length - 1] : null;
  const gradient = norms
    ? `Gradient norm per layer over steps: ${norms.map((value, k) => `layer ${k + 1} ${number(value, 3) ?? "–"}`).join(", ")}`
    : "Gradient norm per layer over steps: none yet";
  return { loss, accuracy, norms: gradient };
}

export class CanvasDescriber {
  // targets: {surface, network, loss, accuracy, norms} elements that carry aria-labels;
  // status: the live region; read(): {frame, state} of the page now.
  constructor({ targets, status, read }) {
    this.targets = targets;
    this.status = status;
    this.read = read;
    this.timer = null;
    this.dueAt = Infinity;
    this.updates = 0; // label refreshes, for tests
    this.announced = { milestone: 0, at: -Infinity, paused: null };
    this.played = false; // a pause is news only after training ran (not the page's start)
  }

  // Training moved on (a new frame): refresh within LABEL_MS. O(1) unless a timer is due.
  frame() {
    this.schedule(LABEL_MS);
  }

  // Paused, stepped, reconfigured: refresh soon.
  changed() {
    this.schedule(SETTLE_MS);
  }

  schedule(delay) {
    const at = performance.now() + delay;
    if (this.timer !== null && this.dueAt <= at) return;
    clearTimeout(this.timer);
    this.dueAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.dueAt = Infinity;
      this.refresh();
    }, delay);
  }

  refresh() {
    const { frame, state } = this.read();
    const surface = describeSurface(frame, state.network, state.data);
    const curves = describeCurves(state.curves, frame, state.network);
    const labels = {
      surface,
      network: describeNetwork(state.config, state.network, state.weights),
      loss: curves.loss,
      accuracy: curves.accuracy,
      norms: curves.norms,
    };
    for (const [key, text] of Object.entries(labels)) {
      const element = this.targets[key];
      if (element && element.getAttribute("aria-label") !== text) element.setAttribute("aria-label", text);
    }
    this.updates += 1;
    this.announce(frame, state, surface);
  }

  // The live region speaks on a pause (once), and while training at milestone epochs.
  announce(frame, state, surface) {
    if (!frame || !this.status) return;
    const now = performance.now();
    const milestone = epochMilestone(frame.epoch);
    let text = null;
    if (state.playing) this.played = true;
    if (!state.playing && this.played && this.announced.paused !== frame.step) {
      text = `Paused. ${surface}.`;
      this.announced.paused = frame.step;
    } else if (state.playing && milestone !== this.announced.milestone && now - this.announced.at >= ANNOUNCE_MS) {
      text = `${surface}.`;
    }
    if (state.playing) this.announced.paused = null;
    if (milestone < this.announced.milestone) this.announced.milestone = milestone; // a reset
    if (text === null) return;
    this.announced.milestone = milestone;
    this.announced.at = now;
    this.status.textContent = text;
  }
}
