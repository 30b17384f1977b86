// Decodes the session's msgpack frames off the page's main thread (a classic worker).
// Each frame comes in as the WebSocket's ArrayBuffer and goes back as the decoded message,
// its u2/f4 arrays already copied into aligned Uint16Array/Float32Array (msgpack's byte
// strings are views at any offset), every buffer transferred, not copied. The main thread
// then only takes the structured clone apart: no decoder to compile, no frame to walk.
importScripts("../vendor/msgpack-3.1.3/msgpack.min.js");

function align(value, buffers) {
  if (value === null || typeof value !== "object") return;
  if (ArrayBuffer.isView(value)) {
    buffers.add(value.buffer);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) align(item, buffers);
    return;
  }
  const data = value.data;
  if (data instanceof Uint8Array && (value.dtype === "u2" || value.dtype === "f4")) {
    const copy = data.slice().buffer;
    value.data = value.dtype === "u2" ? new Uint16Array(copy) : new Float32Array(copy);
  }
  for (const key in value) align(value[key], buffers);
}

self.onmessage = (event) => {
  const { seq, buffer } = event.data;
  try {
    const message = self.MessagePack.decode(new Uint8Array(buffer));
    const buffers = new Set();
    align(message, buffers);
    self.postMessage({ seq, message }, [...buffers]);
  } catch (error) {
    self.postMessage({ seq, error: String(error && error.message ? error.message : error) });
  }
};
