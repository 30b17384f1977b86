// Colours shared by every view: the two classes of Fig. 6.2 are blue (0) and red (1);
// a weight is red when positive and blue when negative, like the surface it pushes.
//
// Two palettes: "standard" (the colours above) and "okabe-ito", safe for the common kinds of
// colour blindness (Okabe and Ito's eight colours for classes; blue against orange, never red
// against green, for signs and surfaces). `setPalette` rewrites the exported arrays and
// tables in place, so every view that imported them draws with the new colours at its next
// redraw (the views are told to redraw by the page; nothing here is looked up per pixel).

export const PALETTES = {
  standard: {
    title: "standard",
    classes: [
      "#2b6cd4", "#d6402a", "#2a9d55", "#8e44ad", "#e08a0b",
      "#17a2b8", "#c2185b", "#6d4c41", "#607d8b", "#9e9d24",
    ],
    positive: [214, 64, 42],
    negative: [43, 108, 212],
  },
  "okabe-ito": {
    title: "colour-blind safe (Okabe–Ito)",
    classes: [
      "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9",
      "#d55e00", "#f0e442", "#000000", "#999999", "#882255",
    ],
    positive: [230, 159, 0],
    negative: [0, 114, 178],
  },
};
export const DEFAULT_PALETTE = "standard";

export const CLASS_COLORS = [...PALETTES.standard.classes];
export const POSITIVE = [...PALETTES.standard.positive];
export const NEGATIVE = [...PALETTES.standard.negative];
const WHITE = [248, 248, 248];

export function hexToRgb(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}
export const CLASS_RGB = CLASS_COLORS.map(hexToRgb);

function mix(a, b, t) {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

// A 256-entry RGBA table: index 0 = negative colour, 128 = white, 255 = positive colour,
// pale like Fig. 6.2's regions.
function fillDiverging(table, strength) {
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    const side = t < 0.5 ? NEGATIVE : POSITIVE;
    const color = mix(WHITE, side, strength * Math.abs(2 * t - 1) ** 0.8);
    table.set([color[0], color[1], color[2], 255], i * 4);
  }
  return table;
}
export const SURFACE_LUT = fillDiverging(new Uint8ClampedArray(256 * 4), 0.55);
export const UNIT_LUT = fillDiverging(new Uint8ClampedArray(256 * 4), 0.9);

// Sequential table (white → dark) for densities and non-negative values.
export const DENSITY_LUT = (() => {
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const color = mix(WHITE, [95, 80, 160], 0.8 * (i / 255) ** 0.8);
    table.set([color[0], color[1], color[2], 255], i * 4);
  }
  return table;
})();

let current = DEFAULT_PALETTE;

export function paletteName() {
  return current;
}

// Switch every shared colour to the palette `name`; false (and no change) for an unknown name.
export function setPalette(name) {
  const palette = PALETTES[name];
  if (!palette) return false;
  current = name;
  CLASS_COLORS.splice(0, CLASS_COLORS.length, ...palette.classes);
  CLASS_RGB.splice(0, CLASS_RGB.length, ...palette.classes.map(hexToRgb));
  POSITIVE.splice(0, 3, ...palette.positive);
  NEGATIVE.splice(0, 3, ...palette.negative);
  fillDiverging(SURFACE_LUT, 0.55);
  fillDiverging(UNIT_LUT, 0.9);
  return true;
}

export function weightColor(value, alpha = 1) {
  const c = value >= 0 ? POSITIVE : NEGATIVE;
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}

export function classColor(label) {
  return CLASS_COLORS[((label | 0) % CLASS_COLORS.length + CLASS_COLORS.length) % CLASS_COLORS.length];
}
