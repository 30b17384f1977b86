// The WebSocket to /ws/session: JSON commands out; JSON replies (hello, state, error,
// export) and msgpack frames in. Frames are client-paced: the page says `ready` when it
// takes a frame to draw, so at most one is in flight and none goes stale. A lost
// connection is retried with backoff; the caller restores its configuration on `hello`.
// The msgpack frames are decoded in a worker (decoder.worker.js); every message, JSON or
// binary, is handed on in the order it arrived.

export class SessionSocket {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.closedByUs = false;
    this.connected = false;
    this.nextId = 1;
    this.bytes = 0;
    this.timer = null;
    this.decoder = null;
    this.inbox = []; // messages in arrival order: {ready, message} or a frame being decoded
    this.sequence = 0;
  }

  startDecoder() {
    if (this.decoder) return;
    this.decoder = new Worker(new URL("./decoder.worker.js", import.meta.url));
    this.decoder.addEventListener("message", (event) => this.decoded(event.data));
    this.decoder.addEventListener("error", (event) => {
      event.preventDefault();
      const text = `The frame decoder failed: ${event.message || "it could not start"}`;
      if (this.handlers.onDecoderError) this.handlers.onDecoderError(text);
      else console.error(text);
    });
  }

  connect() {
    clearTimeout(this.timer);
    this.startDecoder();
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.connected = true;
      this.handlers.onOpen && this.handlers.onOpen();
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.connected = false;
      if (this.closedByUs) return;
      this.attempt += 1;
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt - 1, 5));
      // a refusal (server full, origin not allowed) says why in the close frame's reason
      this.handlers.onClose && this.handlers.onClose(delay, this.attempt, event.reason || "");
      this.timer = setTimeout(() => this.connect(), delay);
    });
    socket.addEventListener("error", () => {});
  }

  close() {
    this.closedByUs = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
  }

  // Drop the connection as a network fault would (for tests and the benchmark).
  drop() {
    if (this.socket) this.socket.close();
  }

  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return null;
    if (message.type !== "ready" && message.id === undefined) message.id = this.nextId++;
    this.socket.send(JSON.stringify(message));
    return message.id;
  }

  receive(raw) {
    if (typeof raw === "string") {
      let message = null;
      try {
        message = JSON.parse(raw);
      } catch (error) {
        // not JSON: nothing to hand on
      }
      this.inbox.push({ ready: true, message });
    } else {
      this.bytes += raw.byteLength;
      this.startDecoder();
      const seq = ++this.sequence;
      this.inbox.push({ ready: false, seq, message: null });
      this.decoder.postMessage({ seq, buffer: raw }, [raw]);
    }
    this.flush();
  }

  decoded({ seq, message, error }) {
    const entry = this.inbox.find((item) => item.seq === seq);
    if (!entry) return;
    entry.ready = true;
    entry.message = message || null;
    if (error) console.error(`A frame could not be decoded: ${error}`);
    this.flush();
  }

  flush() {
    while (this.inbox.length && this.inbox[0].ready) {
      const { message } = this.inbox.shift();
      if (!message) continue;
      const handler = this.handlers[`on_${message.type}`];
      if (handler) handler(message);
    }
  }
}

// ----- arrays: {dtype, shape, data, lo, hi} -----------------------------------------------
// The decoder worker hands u2/f4 data over as aligned typed arrays already; a byte string
// (msgpack's, at any offset) is copied before it is viewed as 16- or 32-bit values.
export function typed(array) {
  if (!array) return null;
  const bytes = array.data;
  if (array.dtype === "u1" || !(bytes instanceof Uint8Array)) return bytes;
  const copy = bytes.slice().buffer;
  if (array.dtype === "u2") return new Uint16Array(copy);
  return new Float32Array(copy);
}

// A quantised array as {data, lo, hi, rows, cols}: rows = the first axis.
export function quantised(array) {
  const shape = array.shape;
  const rows = shape.length > 1 ? shape[0] : 1;
  const cols = shape.reduce((a, b) => a * b, 1) / rows;
  return { data: typed(array), lo: array.lo, hi: array.hi, rows, cols, shape };
}

// Turn a decoded frame into what the views draw.
export function adaptFrame(frame) {
  const out = {
    seq: frame.seq, step: frame.step, epoch: frame.epoch, playing: frame.playing,
    trainLoss: frame.train_loss, testLoss: frame.test_loss,
    trainAccuracy: frame.train_accuracy, testAccuracy: frame.test_accuracy,
    network: frame.network, dataVersion: frame.data_version, version: frame.version,
    buildMs: frame.build_ms,
  };
  out.surface = adaptSurface(frame.surface);
  out.unitMaps = (frame.units || []).map((maps) => adaptUnitMaps(maps));
  // nil when the page asked for a frame without them (its warp panel out of sight)
  out.warps = frame.warps && frame.warps.map((warp) => ({
    units: warp.units, lines: warp.lines, samples: warp.samples,
    pre_activation: adaptWarpView(warp.pre_activation),
    activation: adaptWarpView(warp.activation),
  }));
  if (frame.gradients) {
    const params = new Map();
    for (const p of frame.gradients.parameters) {
      params.set(p.name, { value: typed(p.value), grad: typed(p.grad), shape: p.value.shape });
    }
    out.params = params;
    out.unitGrads = frame.gradients.layers.map((layer) => typed(layer.pre_activation_grad));
    out.gradNorms = frame.gradients.layers.map((layer) => layer.grad_norm);
    out.cost = frame.gradients.cost;
  }
  return out;
}

// Any array as float32 values, de-quantised (value = lo + q (hi − lo) / top per row).
export function decodeArray(array) {
  const values = typed(array);
  if (array.dtype === "f4") return values;
  const { rows, cols } = quantised(array);
  const top = array.dtype === "u1" ? 255 : 65535;
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    const lo = typeof array.lo === "number" ? array.lo : array.lo[r];
    const hi = typeof array.hi === "number" ? array.hi : array.hi[r];
    const scale = (hi - lo) / top;
    for (let c = 0; c < cols; c++) out[r * cols + c] = lo + values[r * cols + c] * scale;
  }
  return out;
}

export function adaptData(data, network) {
  // x travels as (input_dim, n); the views want rows of (x₁, x₂)
  const columns = decodeArray(data.x);
  const dims = data.x.shape[0];
  const n = data.x.shape[1];
  const x = new Float32Array(n * dims);
  for (let d = 0; d < dims; d++) for (let i = 0; i < n; i++) x[i * dims + d] = columns[d * n + i];
  const y = decodeArray(data.y);
  if (network.task !== "regression") for (let i = 0; i < y.length; i++) y[i] = Math.round(y[i]);
  const train = data.train;
  return {
    version: data.version,
    task: network.task,
    classes: network.classes,
    inputDim: dims,
    extent: data.extent,
    targetExtent: data.target_extent || null,
    train: { x: x.subarray(0, train * dims), y: y.subarray(0, train) },
    test: { x: x.subarray(train * dims), y: y.subarray(train) },
  };
}

function adaptSurface(surface) {
  const out = { kind: surface.kind, extent: surface.extent, targetExtent: surface.target_extent || null };
  if (surface.values) {
    const shape = surface.values.shape;
    const channels = shape.length === 3 ? shape[0] : 1;
    out.values = {
      data: typed(surface.values), lo: surface.values.lo, hi: surface.values.hi,
      channels, height: shape[shape.length - 2], width: shape[shape.length - 1],
    };
  }
  if (surface.templates) {
    // RBF units' templates (units × input dims) for the surface's markers
    out.templates = { data: typed(surface.templates), dims: surface.templates.shape[1] };
  }
  if (surface.kind === "curve") {
    out.x = typed(surface.x);
    out.mean = typed(surface.mean);
    if (surface.std) out.std = typed(surface.std);
    if (surface.density) {
      const shape = surface.density.shape;
      out.density = { data: typed(surface.density), width: shape[1], height: shape[0] };
    }
  }
  return out;
}

function adaptUnitMaps(maps) {
  const values = maps.values;
  const shape = values.shape;
  if (shape.length === 2) {
    // 1-D data: one curve h(x) per unit
    return { kind: "curve", activation: maps.activation, data: typed(values), count: shape[0], samples: shape[1] };
  }
  const lo = values.lo;
  const hi = values.hi;
  // Colour each map on a scale symmetric about 0 (white = 0), using its own lo/hi.
  const toIndex = (u) => {
    const low = typeof lo === "number" ? lo : lo[u];
    const high = typeof hi === "number" ? hi : hi[u];
    const bound = Math.max(Math.abs(low), Math.abs(high)) || 1;
    const scale = (high - low) / 255;
    return (q) => {
      const index = Math.round(127.5 + 127.5 * ((low + q * scale) / bound));
      return index < 0 ? 0 : index > 255 ? 255 : index;
    };
  };
  return { kind: "map", activation: maps.activation, data: typed(values), count: shape[0], size: shape[1], lo, hi, toIndex };
}

function adaptWarpView(view) {
  const out = {
    dims: view.dims, projection: view.projection, explained: view.explained,
    bounds: view.bounds.flat(), grid: quantised(view.grid), points: quantised(view.points),
  };
  if (view.readout) {
    const shape = view.readout.shape;
    out.readout = { data: typed(view.readout), rows: shape[0], cols: shape[1] };
  }
  return out;
}
