// What every lab page shares: the chapter's equations rendered by KaTeX (vendored, loaded by
// labs/base.html before this module runs), the predict-first widget, a JSON POST that shows
// the server's own error message, Plotly loaded on demand, and a player that animates the
// snapshots a lab's run returns.

export { loadPlotly } from "../jobplots.js";

/** Render every element with `data-tex` (or class `math`, its text as TeX) inside `root`.
 *  `display` class or a block element gives display mode. */
export function renderMath(root = document) {
  const katex = globalThis.katex;
  if (!katex) throw new Error("KaTeX is not loaded");
  for (const element of root.querySelectorAll("[data-tex], .math")) {
    if (element.dataset.rendered) continue;
    const tex = element.dataset.tex ?? element.textContent;
    const display = element.classList.contains("display") || element.tagName === "DIV";
    katex.render(tex, element, { displayMode: display, throwOnError: false, output: "htmlAndMathml" });
    element.dataset.rendered = "1";
  }
}

/** The predict-first widget: the form's radio buttons named `prediction`; its Run button
 *  (`#run`) stays disabled until one is chosen. `onAnswered(value)` is called on each
 *  choice. Returns `{ answer(), reset(), lock(locked) }`. */
export function setupPrediction(form, onAnswered = () => {}) {
  const run = form.querySelector("#run");
  const hint = form.querySelector("#run-hint");
  let locked = false;
  const answer = () => {
    const checked = form.querySelector('input[name="prediction"]:checked');
    return checked ? checked.value : null;
  };
  const refresh = () => {
    const value = answer();
    run.disabled = locked || value === null;
    if (hint) hint.hidden = value !== null;
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "prediction") {
      hideVerdict();
      onAnswered(answer());
    }
    refresh();
  });
  refresh();
  return {
    answer,
    reset() {
      for (const input of form.querySelectorAll('input[name="prediction"]')) input.checked = false;
      hideVerdict();
      refresh();
    },
    lock(value) {
      locked = value;
      refresh();
    },
  };
}

/** Run the lab (`run(answer)`) each time its form is submitted with a prediction chosen:
 *  the Run button locked and the lab's progress shown until the run ends, however it ends
 *  (postJSON shows the server's message itself). */
export function onPrediction(form, prediction, lab, run) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = prediction.answer();
    if (!answer) return;
    prediction.lock(true);
    lab.begin();
    try {
      await run(answer);
    } catch (error) {
      // postJSON has shown the server's message
    } finally {
      prediction.lock(false);
      lab.end();
    }
  });
}

/** Say whether the learner's prediction held (`correct`) and why, from the run's numbers. */
export function showVerdict(correct, why) {
  const verdict = document.getElementById("verdict");
  verdict.hidden = false;
  verdict.className = `verdict ${correct ? "held" : "missed"}`;
  verdict.replaceChildren();
  const head = document.createElement("strong");
  head.textContent = correct ? "Your prediction held. " : "Not this time. ";
  const body = document.createElement("span");
  body.textContent = why;
  verdict.append(head, body);
}

function hideVerdict() {
  const verdict = document.getElementById("verdict");
  if (verdict) verdict.hidden = true;
}

/** Show (or with `null`, clear) an error in the page's error box; `offer` is an optional
 *  `{ label, apply }` button, e.g. "use the largest that works". */
export function showError(message, offer = null) {
  const box = document.getElementById("lab-error");
  if (!box) return;
  box.replaceChildren();
  box.hidden = !message;
  if (!message) return;
  const text = document.createElement("span");
  text.textContent = message;
  box.append(text);
  if (offer) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = offer.label;
    button.addEventListener("click", () => {
      offer.apply();
      showError(null);
    });
    box.append(" ", button);
  }
}

/** The server's error as one readable sentence: FastAPI's 422 list (`loc`, `msg`) or our
 *  own `{ detail: { message, field, largest } }`. */
export function errorMessage(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${item.msg}` : item.msg;
      })
      .join("; ");
  }
  if (detail && detail.message) return detail.message;
  return "the server refused the request";
}

/** POST `body` as JSON; resolves to the reply. On an error reply the server's message is
 *  shown in the page (with an offer of the largest setting that works, when the reply has
 *  one and `onLargest` is given) and the promise rejects with it. */
export async function postJSON(url, body, { onLargest = null } = {}) {
  showError(null);
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    showError(`The server could not be reached (${error.message}).`);
    throw error;
  }
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = reply.detail;
    const message = errorMessage(detail);
    let offer = null;
    let field = detail && detail.field;
    let largest = detail && detail.largest;
    // a field over its limit (pydantic's `le`): offer the limit itself
    const over = Array.isArray(detail) && detail.find((item) => item.ctx && item.ctx.le !== undefined);
    if (over) [field, largest] = [over.loc[over.loc.length - 1], over.ctx.le];
    if (onLargest && field && largest !== undefined) {
      offer = { label: `use ${field} = ${largest}`, apply: () => onLargest(field, largest) };
    }
    showError(message, offer);
    throw new Error(message);
  }
  return reply;
}

/** Read a form's named controls into an object: numbers from `data-type="number"|"int"`,
 *  booleans from checkboxes, strings otherwise. Empty numbers stay as text so that the
 *  server says what is wrong with them. */
export function readSettings(root) {
  const values = {};
  for (const element of root.querySelectorAll("[data-setting]")) {
    const name = element.dataset.setting;
    if (element.type === "checkbox") {
      values[name] = element.checked;
    } else if (element.type === "radio") {
      if (element.checked) values[name] = element.value;
    } else if (element.dataset.type === "number" || element.dataset.type === "int") {
      const number = Number(element.value);
      values[name] = element.value.trim() === "" || Number.isNaN(number) ? element.value : number;
    } else {
      values[name] = element.value;
    }
  }
  return values;
}

/** Animate a run's snapshots one after another (`draw(snapshot, index)`), about `fps` a
 *  second; resolves when the last one is drawn. */
export function play(snapshots, draw, fps = 12) {
  return new Promise((resolve) => {
    let index = 0;
    const interval = 1000 / fps;
    let last = 0;
    const tick = (time) => {
      if (time - last >= interval || index === 0) {
        last = time;
        draw(snapshots[index], index);
        index += 1;
        if (index >= snapshots.length) {
          resolve();
          return;
        }
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

/** A number with `digits` significant digits, for verdicts and labels. */
export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const text = Number(value).toPrecision(digits);
  return text.includes(".") && !text.includes("e") ? text.replace(/\.?0+$/, "") : text;
}
