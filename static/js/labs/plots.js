// Shared look of the labs' Plotly figures, and the page's test hook `window.lab`.

import { FONT_FAMILY } from "../plotarea.js";

export const COLORS = {
  blue: "#2b6cd4", accent: "#d6402a", grey: "#7b8590", points: "rgba(60, 70, 80, 0.35)", green: "#2a8a4a",
  series: ["#2b6cd4", "#d6402a", "#2a8a4a", "#8a4fc7", "#c98a12", "#168f9c", "#b34a83", "#5d6d7e"],
};
export const LAYOUT = {
  margin: { l: 52, r: 52, t: 10, b: 40 }, font: { family: FONT_FAMILY, size: 11 },
  legend: { orientation: "h", y: -0.22 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
};
export const CONFIG = { displaylogo: false, responsive: true };

/** The page's run state, for the progress line and for tests (`window.lab`). */
export function startLab() {
  const progress = document.getElementById("progress");
  const state = {
    running: false, frames: 0, runs: 0,
    begin() {
      state.running = true;
      state.frames = 0;
      progress.textContent = "training…";
    },
    drawn(step) {
      state.frames += 1;
      progress.textContent = `step ${step}`;
    },
    end() {
      state.running = false;
      if (state.frames === 0) progress.textContent = ""; // the run was refused: nothing trained
      state.runs += 1;
    },
    setField(name, value) {
      const input = document.querySelector(`[data-setting="${name}"]`);
      if (input) input.value = value;
    },
  };
  window.lab = state;
  return state;
}
