// Colours shared by every view: the two classes of Fig. 6.2 are blue (0) and red (1);
// a weight is red when positive and blue when negative, like the surface it pushes.

export const CLASS_COLORS = [
  "#2b6cd4", "#d6402a", "#2a9d55", "#8e44ad", "#e08a0b",
  "#17a2b8", "#c2185b", "#6d4c41", "#607d8b", "#9e9d24",
];
export const POSITIVE = [214, 64, 42];
export const NEGATIVE = [43, 108, 212];
const WHITE = [248, 248, 248];

export function hexToRgb(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}
export const CLASS_RGB = CLASS_COLORS.map(hexToRgb);

function mix(a, b, t) {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

// A 256-entry RGBA table: index 0 = blue, 128 = white, 255 = red, pale like Fig. 6.2's regions.
function buildDiverging(strength) {
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    const side = t < 0.5 ? NEGATIVE : POSITIVE;
    const color = mix(WHITE, side, strength * Math.abs(2 * t - 1) ** 0.8);
    table.set([color[0], color[1], color[2], 255], i * 4);
  }
  return table;
}
export const SURFACE_LUT = buildDiverging(0.55);
export const UNIT_LUT = buildDiverging(0.9);

// Sequential table (white → dark) for densities and non-negative values.
export const DENSITY_LUT = (() => {
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const color = mix(WHITE, [95, 80, 160], 0.8 * (i / 255) ** 0.8);
    table.set([color[0], color[1], color[2], 255], i * 4);
  }
  return table;
})();

export function weightColor(value, alpha = 1) {
  const c = value >= 0 ? POSITIVE : NEGATIVE;
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}

export function classColor(label) {
  return CLASS_COLORS[((label | 0) % CLASS_COLORS.length + CLASS_COLORS.length) % CLASS_COLORS.length];
}
