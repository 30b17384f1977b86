// A lab's live view (issue 11: "live views reuse the playground's canvas modules"): the
// lab's net, as the playground's engine can express it, trained in a session of its own on
// /ws/session and drawn with the playground's SurfaceView (decision surface or 1-D fit) and
// CurvesView (loss curve). The lab's read plots (Plotly) stay as they are; this panel runs
// beside the lab's server-side run.
//
// The session opens when the learner presses Run (after answering the question), asks for
// frames one at a time like the playground (`ready` when a frame is taken), and closes when
// the page is hidden or left; shown again, it reopens with the weights it had. A command
// the server rejects is shown in the panel and the lab goes on.

import { SessionSocket, adaptData, adaptFrame, typed } from "../socket.js";
import { PlaygroundState } from "../state.js";
import { SurfaceView } from "../surface.js";
import { CurvesView } from "../curves.js";

// Small pictures: a lab's panel is a third of the playground's surface, and it trains beside
// the lab's own run. Weights ride along (`gradients`) so that a hidden page can come back.
const VIEW = { grid: 64, unit_grid: 4, warp_lines: 2, warp_samples: 2, gradients: true };
const SPEED = 250; // steps/s: gentle on a server that also trains the lab's run

const DEFAULTS = {
  model: {
    features: ["x1", "x2"], layers: [], output: { loss: "bernoulli", precision: 1.0, components: 3 },
    init: "xavier", init_scale: 1.0, seed: 0,
  },
  training: {
    optimizer: "sgd", learning_rate: 0.03, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8,
    batch_size: 10, l2: 0.0, l1: 0.0, clip_norm: 0.0,
  },
  data: {
    name: "circle", size: 500, noise: 0.0, train_fraction: 0.5, seed: 0, classes: 3, points: [],
    inputs: 2, target: "class",
  },
};

/** A whole engine Config (engine/spec.py) from the parts a lab sets; `layers` items may
 *  leave out `slope` and `pieces`. */
export function engineConfig({ model = {}, training = {}, data = {} }) {
  const layers = (model.layers || []).map((layer) => ({ slope: 0.01, pieces: 2, ...layer }));
  return {
    model: {
      ...DEFAULTS.model, ...model, layers,
      output: { ...DEFAULTS.model.output, ...(model.output || {}) },
    },
    training: { ...DEFAULTS.training, ...training },
    data: { ...DEFAULTS.data, ...data },
  };
}

/** The live panel inside `container`. Options: `config()` gives the Config from the lab's
 *  current settings (and `choice`'s value); `steps()` the lab's run length, where the live
 *  run pauses (null: it trains until paused); `choice`, an optional `{label, options:
 *  [[value, text]]}` select of the panel's own (lab 2's loss); `label`, what the surface
 *  shows, for screen readers. */
export class LiveView {
  constructor(container, { config, steps = () => null, choice = null, label = "the live network's prediction" }) {
    this.container = container;
    this.buildConfig = config;
    this.runLength = steps;
    this.state = new PlaygroundState();
    this.socket = null;
    this.pending = null; // the newest frame, not yet drawn
    this.pendingData = null;
    this.configured = false; // the server accepted this panel's configure
    this.wanted = null; // the configure to send on the next hello
    this.resume = null; // what a hidden page reopens with
    this.stopAt = null; // pause the live run at this step (the lab's run length)
    this.pauseAsked = false; // a pause at stopAt was sent and no paused frame came back yet
    this.frames = 0; // frames drawn (for tests)
    this.step = 0;
    this.loss = null;
    this.lastError = null;
    this.animation = null;
    this.build(label, choice);
    this.surface = new SurfaceView(this.surfaceElement);
    this.curves = new CurvesView({ loss: this.lossElement, accuracy: this.accuracyElement, norms: this.normsElement });
    // every lab's loss is a mean negative log-likelihood or error: one neutral title for all
    this.curves.loss.title = "loss L, mean over the examples";
    this.refreshLink();
    document.addEventListener("visibilitychange", () => (document.hidden ? this.suspend() : this.wake()));
    window.addEventListener("pagehide", () => this.suspend());
    window.addEventListener("pageshow", (event) => { if (event.persisted) this.wake(); });
  }

  build(label, choice) {
    const make = (tag, className, text) => {
      const element = document.createElement(tag);
      if (className) element.className = className;
      if (text) element.textContent = text;
      return element;
    };
    const bar = make("div", "live-toolbar");
    this.playButton = make("button", "live-play", "Pause");
    this.playButton.type = "button";
    this.playButton.disabled = true;
    this.playButton.setAttribute("aria-label", "pause the live network");
    this.playButton.addEventListener("click", () => this.togglePlay());
    this.resetButton = make("button", "live-reset", "Reset");
    this.resetButton.type = "button";
    this.resetButton.disabled = true;
    this.resetButton.setAttribute("aria-label", "reset the live network to new initial weights");
    this.resetButton.addEventListener("click", () => this.send({ type: "reset" }));
    bar.append(this.playButton, this.resetButton);
    if (choice) {
      const field = make("label", "live-choice");
      field.append(make("span", null, choice.label));
      this.choice = make("select");
      for (const [value, text] of choice.options) {
        const option = make("option", null, text);
        option.value = value;
        this.choice.append(option);
      }
      this.choice.addEventListener("change", () => {
        this.refreshLink();
        if (this.socket) this.start();
      });
      field.append(this.choice);
      bar.append(field);
    }
    this.link = make("a", "live-link", "open in the playground");
    this.link.target = "_blank";
    this.link.rel = "noopener";
    bar.append(this.link);
    this.status = make("p", "live-status", "Press Run to start the live network.");
    this.status.dataset.testid = "live-status";
    this.error = make("div", "live-error");
    this.error.setAttribute("role", "alert");
    this.error.hidden = true;
    // the pictures take their room with the first frame: before Run there is nothing to show
    const figures = make("div", "live-figures");
    figures.hidden = true;
    this.figures = figures;
    this.surfaceElement = make("div", "surface live-surface");
    this.surfaceElement.setAttribute("role", "img");
    this.surfaceElement.setAttribute("aria-label", label);
    const curves = make("div", "curves live-curves");
    this.lossElement = make("div", "curve");
    this.lossElement.setAttribute("role", "img");
    this.lossElement.setAttribute("aria-label", "the live network's training and test loss against epochs");
    this.accuracyElement = make("div", "curve");
    this.accuracyElement.setAttribute("role", "img");
    this.accuracyElement.setAttribute("aria-label", "the live network's training and test accuracy against epochs");
    this.normsElement = make("div", "curve");
    this.normsElement.hidden = true; // the gradient norms are the playground's; not drawn here
    curves.append(this.lossElement, this.accuracyElement, this.normsElement);
    figures.append(this.surfaceElement, curves);
    this.container.append(bar, this.status, this.error, figures);
  }

  get canvas() { return this.surface.canvas; }

  /** The Config from the lab's settings now (and the panel's choice). */
  config() {
    return this.buildConfig(this.choice ? this.choice.value : null);
  }

  // "open in the playground": the playground's share link (state.js), carrying the config.
  refreshLink() {
    let config = null;
    try {
      config = this.configured && this.state.config ? this.state.config : this.config();
    } catch (error) {
      return;
    }
    const carrier = new PlaygroundState();
    carrier.config = config;
    carrier.speed = SPEED;
    this.link.href = `/${carrier.urlFragment()}`;
  }

  /** Train the lab's current settings from fresh weights (Run). */
  start() {
    this.showError(null);
    this.resume = null;
    const steps = Number(this.runLength());
    this.stopAt = Number.isInteger(steps) && steps > 0 ? steps : null;
    this.pauseAsked = false;
    this.wanted = { type: "configure", config: this.config(), view: VIEW, speed: SPEED, play: true };
    this.configured = false;
    this.state.resetCurves();
    this.status.textContent = "Connecting…";
    if (this.socket && this.socket.connected) this.send(this.wanted);
    else if (!this.socket) this.open();
  }

  open() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/session`;
    this.socket = new SessionSocket(url, {
      onClose: (delay, attempt, reason) => {
        this.status.textContent = reason
          ? `The server refused the live session (${reason}); trying again in ${(delay / 1000).toFixed(1)} s.`
          : `Connection lost; reconnecting in ${(delay / 1000).toFixed(1)} s.`;
      },
      on_hello: () => this.hello(),
      on_state: (message) => this.accepted(message),
      on_error: (message) => this.rejected(message),
      on_frame: (frame) => this.receive(frame),
      onDecoderError: (text) => this.showError(text),
    });
    this.socket.connect();
    if (this.animation === null) this.animation = requestAnimationFrame((now) => this.render(now));
  }

  // Closing on hide and on leave: a lab left open in a background tab costs the server nothing.
  suspend() {
    if (!this.socket) return;
    if (this.configured && this.state.config) {
      this.resume = {
        type: "configure", config: this.state.config, view: VIEW, speed: SPEED,
        play: this.state.playing, weights: this.state.weightsAsLists() || undefined,
        step: this.state.step, epoch: this.state.epoch,
      };
      if (!this.resume.weights) { delete this.resume.weights; delete this.resume.step; delete this.resume.epoch; }
    } else if (this.wanted) {
      this.resume = this.wanted; // Run was pressed and the session had not started yet
    }
    this.close();
    if (this.resume) this.status.textContent = `Paused while the page was hidden, at step ${this.step}.`;
  }

  wake() {
    if (this.socket || !this.resume || document.hidden) return;
    this.wanted = this.resume;
    this.resume = null;
    this.open();
  }

  close() {
    if (!this.socket) return;
    const socket = this.socket;
    this.socket = null;
    socket.close();
    if (socket.decoder) socket.decoder.terminate();
    this.configured = false;
    this.pending = null;
    this.playButton.disabled = true;
    this.resetButton.disabled = true;
    if (this.animation !== null) cancelAnimationFrame(this.animation);
    this.animation = null;
  }

  send(message) {
    if (!this.socket || !this.socket.connected) return null;
    return this.socket.send(message);
  }

  hello() {
    this.readyOut = false;
    this.pending = null;
    // a reconnect (another server process, a dropped line) restores what the panel held
    if (!this.wanted && this.configured && this.state.config) {
      this.wanted = {
        type: "configure", config: this.state.config, view: VIEW, speed: SPEED, play: this.state.playing,
      };
      const weights = this.state.weightsAsLists();
      if (weights) Object.assign(this.wanted, { weights, step: this.state.step, epoch: this.state.epoch });
    }
    this.configured = false;
    if (this.wanted) this.send(this.wanted);
    this.wanted = null;
  }

  accepted(message) {
    if (message.command === "configure") {
      this.configured = true;
      this.readyOut = false;
    }
    this.state.accept(message);
    if (message.network) {
      this.curves.setTask(message.network.task);
      this.surface.setOptions({});
    }
    this.playButton.disabled = false;
    this.resetButton.disabled = false;
    this.syncPlay();
    if (message.command === "configure") this.refreshLink();
    if (message.notes && message.notes.length) this.showError(message.notes.join(" "));
    this.askForFrame();
  }

  rejected(message) {
    // one sentence, ended, whatever the server's message ends with
    const text = (message.message || "The server rejected the command").replace(/[.\s]*$/, ".");
    this.lastError = message;
    if (message.command === "configure") {
      this.showError(`The live network could not start: ${text} The lab's own run goes on.`);
      this.status.textContent = this.configured ? this.status.textContent : "Not running.";
      return;
    }
    if (message.code === "diverged") {
      this.state.playing = false;
      this.syncPlay();
      this.showError(`${text} Reset draws new initial weights.`);
      return;
    }
    this.showError(text);
  }

  showError(text) {
    this.error.hidden = !text;
    this.error.textContent = text || "";
  }

  togglePlay() {
    const playing = !this.state.playing;
    // playing on past the lab's run length: the learner wants more, so no stop this time
    if (playing && this.stopAt !== null && this.step >= this.stopAt) this.stopAt = null;
    this.send({ type: playing ? "play" : "pause" });
  }

  syncPlay() {
    const playing = this.state.playing;
    this.playButton.textContent = playing ? "Pause" : "Play";
    this.playButton.setAttribute("aria-label", playing ? "pause the live network" : "play: train the live network");
  }

  // ----- frames: one asked for at a time, the newest drawn each animation frame -----
  askForFrame() {
    if (this.readyOut || !this.configured || !this.socket || document.hidden) return;
    this.readyOut = true;
    this.socket.send({ type: "ready", warps: false });
  }

  receive(raw) {
    this.readyOut = false;
    if (!this.configured) return; // the session's default before our configure landed
    const history = {};
    for (const key of Object.keys(raw.history)) history[key] = raw.history[key] ? typed(raw.history[key]) : null;
    this.state.addHistory(history, null);
    if (raw.data) this.pendingData = adaptData(raw.data, raw.network);
    this.pending = raw;
  }

  render(now) {
    this.animation = requestAnimationFrame((time) => this.render(time));
    if (this.pending) {
      const raw = this.pending;
      this.pending = null;
      try {
        this.take(raw);
      } catch (error) {
        this.showError(`A live frame could not be drawn: ${error.message}`);
      }
      this.askForFrame();
    }
    this.surface.draw();
    this.curves.draw(this.state.curves, now);
  }

  take(raw) {
    const frame = adaptFrame(raw);
    this.figures.hidden = false;
    if (this.pendingData) {
      this.surface.setData(this.pendingData);
      this.pendingData = null;
    }
    this.surface.setSurface(frame.surface);
    if (frame.params) this.state.weights = frame.params;
    this.state.step = frame.step;
    this.state.epoch = frame.epoch;
    this.state.playing = frame.playing;
    this.syncPlay();
    this.step = frame.step;
    this.loss = frame.trainLoss;
    this.frames += 1;
    const loss = Number.isFinite(frame.trainLoss) ? frame.trainLoss.toPrecision(3) : "–";
    const accuracy = Number.isFinite(frame.trainAccuracy) ? ` · accuracy ${(100 * frame.trainAccuracy).toFixed(0)}%` : "";
    let text = `step ${frame.step} · epoch ${frame.epoch.toFixed(1)} · training loss ${loss}${accuracy}`;
    if (this.stopAt !== null && frame.step >= this.stopAt) {
      // frames already on their way still say "playing": ask once, and say "paused" (with the
      // button reading Play) only when a frame shows the server has paused
      if (frame.playing) {
        if (!this.pauseAsked) this.send({ type: "pause" });
        this.pauseAsked = true;
        text += ` · stopping at the lab's ${this.stopAt} steps`;
      } else {
        this.pauseAsked = false;
        text += ` · paused at the lab's ${this.stopAt} steps (Play goes on)`;
      }
    } else if (!frame.playing) {
      text += " · paused";
    }
    this.status.textContent = text;
  }
}

/** Wire a LiveView to a lab's predict-first form: it starts on Run once a prediction is
 *  chosen (the lab's own handler runs the lab) and its link follows the settings. */
export function attachLive(form, container, options) {
  const live = new LiveView(container, options);
  form.addEventListener("submit", () => {
    if (!form.querySelector('input[name="prediction"]:checked')) return;
    try {
      live.start();
    } catch (error) {
      live.showError(`The live network could not start: ${error.message}`);
    }
  });
  form.addEventListener("change", () => live.refreshLink());
  window.labLive = live; // for tests
  return live;
}
