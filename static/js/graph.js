// The computational graph of the step-through page, drawn as SVG (Figs. 6.6–6.8): one box per
// node, arcs from parents to children, laid out in columns from the inputs (left) to the cost J
// (right). Parameters and constants sit in the column just before the first node that uses
// them; the penalty Ω's chain sits next to the loss. The view shows what the stepper knows:
// values once the forward pass has computed them, ∂J/∂u once the backward pass has, the node
// of the current step and the arcs its formula uses.

const SVG = "http://www.w3.org/2000/svg";
const COMPACT_COLUMN = 14; // more nodes than this in one column: one-line boxes

// ----- numbers ------------------------------------------------------------------------------
export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || typeof value !== "number") return "?";
  if (value === 0) return "0";
  const size = Math.abs(value);
  if (size >= 1e4 || size < 1e-3) return value.toExponential(Math.max(digits - 2, 1));
  return String(Number(value.toPrecision(digits)));
}

export function flatten(value) {
  if (!Array.isArray(value)) return [value];
  return value.flatMap((item) => flatten(item));
}

// A value for a box: the number, a short vector, or the shape of a matrix.
export function formatValue(value, shape) {
  if (value === null || value === undefined) return "";
  if (!Array.isArray(value)) return formatNumber(value);
  const entries = flatten(value);
  if (entries.length <= 2) return `[${entries.map((v) => formatNumber(v, 3)).join(", ")}]`;
  if (shape && shape.length === 2) return `${shape[0]}×${shape[1]}`;
  return `[${entries.length}]`;
}

// ----- what a node is, in the chapter's words ------------------------------------------------
const ACTIVATION_WORDS = {
  tanh: "tanh(a)", relu: "max(0, a), the rectified linear unit", sigmoid: "σ(a) = 1 / (1 + e⁻ᵃ)",
  softplus: "ζ(a) = log(1 + eᵃ)", hard_tanh: "max(−1, min(1, a))", absolute: "|a|",
  leaky_relu: "max(0, a) + α min(0, a) with a small fixed α, the leaky ReLU",
  prelu: "max(0, a) + α min(0, a), the PReLU, whose slope α is learned",
  unit_max: "the largest of the unit's pieces, the maxout unit; the gradient flows back to the winning piece only",
};
// exp is an RBF unit's output only when it is a hidden activation h (elsewhere, e.g. u₃ of
// Fig. 6.7 or inside a loss, it is just exp)
const RBF_OUTPUT = "exp(a), the radial basis function unit's output (its largest, e^b, at the template; smaller with distance)";

export function describeNode(node, graph) {
  const name = node.name;
  if (graph && graph.preset === "fig_6_7") {
    const words = {
      "u₁": "u₁: the variable we differentiate with respect to",
      "u₂": "u₂ = u₁²: one path from u₁ to u₃ goes through it",
      "u₁+u₂": "u₁ + u₂: both paths meet here",
      "u₃": "u₃ = exp(u₁ + u₂): the output; ∂u₃/∂u₁ sums the two paths",
    };
    if (words[name]) return words[name];
  }
  if (node.kind === "input") return `input ${name}: a feature of the example x`;
  if (node.kind === "parameter") {
    if (/^b/.test(name)) return `bias ${name}: a parameter θ; it shifts a unit's pre-activation a, and biases are not penalised by Ω`;
    if (/^α/.test(name)) return `slope ${name}: a parameter θ; the PReLU unit's slope for negative a, learned like a weight`;
    if (/^σ/.test(name)) return `width ${name}: a parameter θ; how fast the RBF unit's response falls off with distance from its template`;
    if (/^c/.test(name)) return `template coordinate ${name}: a parameter θ; one coordinate of the point the RBF unit compares its input with`;
    return `weight ${name}: a parameter θ; it multiplies a unit's input h in a = b + Σ w h (penalised by Ω)`;
  }
  if (node.kind === "constant") {
    if (name === "y") return "target y of the example (what the output should predict)";
    if (name === "e_y") return "target as a one-hot vector e_y (softmax output, Eq. 6.5)";
    if (name.startsWith("λ")) return `${name}: the penalty's coefficient (regularisation rate λ)`;
    if (name === "Ω") return "penalty Ω = 0: no weight penalty (λ = 0), so J = L";
    return `constant ${name}`;
  }
  if (name === "J") return "cost J = L + Ω: the loss plus the weight penalty, what gradient descent minimises; the backward pass starts here with ∂J/∂J = 1";
  if (name === "L") return "loss L = −log p(y | x): the negative log-likelihood of the target under the output unit";
  if (name === "Ω" || node.op === "penalty") return "penalty Ω(θ) = λ₂/2 Σ w² + λ₁ Σ |w|, on the weights only (weight decay)";
  if (node.op === "unit_sum" && /\.[₀-₉]+$/.test(name)) return `piece ${name} = b + Σ W h: one of a maxout unit's affine pieces`;
  if (node.op === "unit_sum") {
    if (/^z/.test(name)) return `output pre-activation ${name} = b + Σ w h: the logit or mean the output unit turns into p(y | x)`;
    return `pre-activation ${name} = b + Σ W h: the affine step of one hidden unit`;
  }
  if (node.op === "rbf_sum") return `${name} = b − Σ (h − c)² / σ²: how close the unit's input is to its template c`;
  if (node.op === "affine") {
    if (name === "z") return "output pre-activations z = h W + b, one row per example";
    return `pre-activations ${name} = h W + b: the affine step of a whole layer, one row per example`;
  }
  if (node.op === "exp" && /^h/.test(name)) return `activation ${name} = ${RBF_OUTPUT}: the hidden unit's non-linearity φ`;
  if (ACTIVATION_WORDS[node.op]) return `activation ${name} = ${ACTIVATION_WORDS[node.op]}: the hidden unit's non-linearity φ`;
  if (node.op === "stack") return "z: the output pre-activations gathered into one vector for the softmax";
  if (/^u/.test(name)) return `intermediate value ${name} (the chapter's u⁽ⁱ⁾), computed by ${node.op}`;
  return `${name}, computed by ${node.op}`;
}

// ----- layout -------------------------------------------------------------------------------
// Columns: inputs at 0; an operation one column right of its latest input-side parent, two
// when it also has parameters (their column); constants share the column before their first
// child; parts of the graph that do not depend on the input (Ω and its terms) sit as late as
// their children allow.
export function layoutColumns(nodes) {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const children = new Map(nodes.map((node) => [node.id, []]));
  for (const node of nodes) for (const parent of node.parents) children.get(parent).push(node.id);
  const fromInput = new Map();
  const column = new Map();
  for (const node of nodes) {
    const isInput = node.kind === "input";
    fromInput.set(node.id, isInput || node.parents.some((p) => fromInput.get(p)));
    if (isInput) { column.set(node.id, 0); continue; }
    if (node.kind !== "operation") continue;
    let base = -1;
    let gap = 1;
    for (const parent of node.parents) {
      const kind = byId.get(parent).kind;
      if (kind === "parameter") gap = 2;
      else if (kind !== "constant") base = Math.max(base, column.get(parent));
    }
    column.set(node.id, Math.max(base, 0) + gap);
  }
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const after = children.get(node.id).map((id) => column.get(id)).filter((c) => c !== undefined);
    if (!after.length) continue;
    const latest = Math.min(...after) - 1;
    if (node.kind === "operation" && !fromInput.get(node.id)) column.set(node.id, Math.max(column.get(node.id), latest));
    else if (node.kind === "parameter" || node.kind === "constant") column.set(node.id, Math.max(latest, 0));
  }
  for (const node of nodes) if (!column.has(node.id)) column.set(node.id, 0);
  return { column, children };
}

// ----- the view -----------------------------------------------------------------------------
export class GraphView {
  constructor(container, handlers = {}) {
    this.container = container;
    this.handlers = handlers;
    this.graph = null;
    this.nodes = new Map(); // id -> node state (value, grad, ...)
    this.boxes = new Map(); // id -> {group, x, y, width, height, value, grad}
    this.edges = []; // {from, to, path}
    this.current = null;
    this.selected = null;
    this.tooltip = handlers.tooltip || null;
  }

  setGraph(graph) {
    this.graph = graph;
    this.nodes = new Map(graph.nodes.map((node) => [node.id, { ...node }]));
    this.current = null;
    this.selected = null;
    this.build();
  }

  build() {
    const graph = this.graph;
    const { column, children } = layoutColumns(graph.nodes);
    this.children = children;
    const columns = [];
    for (const node of graph.nodes) {
      const c = column.get(node.id);
      (columns[c] = columns[c] || []).push(node);
    }
    const tallest = Math.max(...columns.map((list) => (list ? list.length : 0)));
    const compact = tallest > COMPACT_COLUMN;
    const layer = graph.level === "layer";
    const width = layer ? 104 : compact ? 124 : 86;

    const height = compact ? 20 : 46;
    const rowGap = compact ? 6 : 14;
    const columnGap = compact ? 46 : 50;
    const pad = 14;
    const totalHeight = Math.max(tallest * (height + rowGap) - rowGap, height) + 2 * pad;
    const totalWidth = columns.length * (width + columnGap) - columnGap + 2 * pad;
    this.compact = compact;
    // a graph a little wider than the panel is shrunk to fit; a much wider one scrolls
    const available = this.container.clientWidth - 4;
    const scale = available > 0 && totalWidth > available && available / totalWidth >= 0.7
      ? available / totalWidth : 1;
    this.scale = scale;

    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", `graph-svg level-${graph.level}${compact ? " compact" : ""}`);
    svg.setAttribute("width", Math.floor(totalWidth * scale));
    svg.setAttribute("height", Math.ceil(totalHeight * scale));
    svg.setAttribute("viewBox", `0 0 ${totalWidth} ${totalHeight}`);
    const defs = document.createElementNS(SVG, "defs");
    defs.innerHTML = '<marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" class="arrow-head"/></marker>';
    svg.appendChild(defs);
    const edgeLayer = document.createElementNS(SVG, "g");
    edgeLayer.setAttribute("class", "edges");
    const nodeLayer = document.createElementNS(SVG, "g");
    nodeLayer.setAttribute("class", "nodes");
    svg.append(edgeLayer, nodeLayer);

    this.boxes = new Map();
    columns.forEach((list, c) => {
      if (!list) return;
      const columnHeight = list.length * (height + rowGap) - rowGap;
      const top = pad + (totalHeight - 2 * pad - columnHeight) / 2;
      list.forEach((node, row) => {
        const x = pad + c * (width + columnGap);
        const y = top + row * (height + rowGap);
        this.boxes.set(node.id, this.buildNode(nodeLayer, node, x, y, width, height, compact));
      });
    });
    this.edges = [];
    const crowded = (node) => node.parents.length > 12;
    for (const node of graph.nodes) {
      const to = this.boxes.get(node.id);
      // one arc per parent (u₂ = u₁ · u₁ has one), their ends spread over the box's left side
      const parents = [...new Set(node.parents)].sort((a, b) => this.boxes.get(a).y - this.boxes.get(b).y);
      parents.forEach((parent, index) => {
        const from = this.boxes.get(parent);
        const path = document.createElementNS(SVG, "path");
        const x1 = from.x + from.width;
        const y1 = from.y + from.height / 2;
        const x2 = to.x;
        const spread = parents.length > 1 && !crowded(node) ? (index / (parents.length - 1) - 0.5) * 0.6 : 0;
        const y2 = to.y + to.height * (0.5 + spread);
        const bend = Math.max(18, (x2 - x1) / 2);
        path.setAttribute("d", `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2 - 1},${y2}`);
        path.setAttribute("class", `edge${crowded(node) ? " faint" : ""}`);
        path.setAttribute("marker-end", "url(#arrow)");
        path.dataset.from = parent;
        path.dataset.to = node.id;
        edgeLayer.appendChild(path);
        this.edges.push({ from: parent, to: node.id, path });
      });
    }
    this.container.replaceChildren(svg);
    this.svg = svg;
    for (const id of this.nodes.keys()) this.paint(id);
    // one node in the tab order (roving focus): Tab reaches the graph once, ↑ ↓ move along
    // the nodes in computation order, Enter or Space selects one (as a click does)
    this.order = graph.nodes.map((node) => node.id);
    this.focusable = null;
    if (this.order.length) this.makeFocusable(this.order[0]);
  }

  makeFocusable(id) {
    if (this.focusable !== null && this.boxes.has(this.focusable)) this.boxes.get(this.focusable).group.setAttribute("tabindex", "-1");
    this.focusable = id;
    this.boxes.get(id).group.setAttribute("tabindex", "0");
  }

  // Keys on a focused node: ↑ ↓ Home End move, Enter and Space select.
  nodeKey(id, event) {
    const at = this.order.indexOf(id);
    let to = null;
    if (event.key === "ArrowDown") to = Math.min(this.order.length - 1, at + 1);
    else if (event.key === "ArrowUp") to = Math.max(0, at - 1);
    else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      event.stopPropagation();
      if (this.handlers.onSelect) this.handlers.onSelect(id);
      return;
    }
    if (to === null) return;
    event.preventDefault();
    event.stopPropagation();
    const next = this.order[to];
    this.makeFocusable(next);
    this.boxes.get(next).group.focus();
  }

  buildNode(layer, node, x, y, width, height, compact) {
    const group = document.createElementNS(SVG, "g");
    group.setAttribute("class", `node kind-${node.kind}`);
    group.setAttribute("transform", `translate(${x},${y})`);
    group.dataset.id = node.id;
    group.dataset.name = node.name;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("width", width);
    rect.setAttribute("height", height);
    rect.setAttribute("rx", node.kind === "operation" ? 5 : 10);
    const name = document.createElementNS(SVG, "text");
    name.setAttribute("class", "node-name");
    name.setAttribute("x", compact ? 5 : width / 2);
    name.setAttribute("y", compact ? 14 : 14);
    if (!compact) name.setAttribute("text-anchor", "middle");
    name.textContent = node.name;
    group.append(rect, name);
    let value = null;
    let grad = null;
    if (compact) {
      value = document.createElementNS(SVG, "text");
      value.setAttribute("class", "node-value");
      value.setAttribute("x", width - 4);
      value.setAttribute("y", 14);
      value.setAttribute("text-anchor", "end");
      group.append(value);
    } else {
      value = document.createElementNS(SVG, "text");
      value.setAttribute("class", "node-value");
      value.setAttribute("x", width / 2);
      value.setAttribute("y", 28);
      value.setAttribute("text-anchor", "middle");
      grad = document.createElementNS(SVG, "text");
      grad.setAttribute("class", "node-grad");
      grad.setAttribute("x", width / 2);
      grad.setAttribute("y", 41);
      grad.setAttribute("text-anchor", "middle");
      group.append(value, grad);
    }
    group.setAttribute("role", "button");
    group.setAttribute("tabindex", "-1");
    group.addEventListener("click", () => this.handlers.onSelect && this.handlers.onSelect(node.id));
    group.addEventListener("keydown", (event) => this.nodeKey(node.id, event));
    group.addEventListener("focus", () => {
      this.makeFocusable(node.id);
      this.reveal(this.boxes.get(node.id));
    });
    group.addEventListener("mouseenter", (event) => this.hover(node.id, event));
    group.addEventListener("mousemove", (event) => this.hover(node.id, event));
    group.addEventListener("mouseleave", () => this.hover(null));
    layer.appendChild(group);
    return { group, rect, x, y, width, height, value, grad };
  }

  // Apply node states from a graph_event's `changed`.
  update(changed) {
    for (const state of changed) {
      const node = this.nodes.get(state.id);
      if (!node) continue;
      node.value = state.value;
      node.grad = state.grad;
      this.paint(state.id);
    }
  }

  paint(id) {
    const node = this.nodes.get(id);
    const box = this.boxes.get(id);
    if (!node || !box) return;
    if (node.op === "unit_max") this.markWinner(node);
    const hasValue = node.value !== null && node.value !== undefined;
    const hasGrad = node.grad !== null && node.grad !== undefined;
    box.group.classList.toggle("has-value", hasValue && node.kind === "operation");
    box.group.classList.toggle("has-grad", hasGrad);
    // what a screen reader says for the node: its name, what it is, what is known of it
    const known = [hasValue ? `value ${formatValue(node.value, node.shape)}` : "value not computed yet"];
    if (hasGrad) known.push(`∂J/∂${node.name} ${formatValue(node.grad, node.shape)}`);
    box.group.setAttribute("aria-label", `${node.name}: ${describeNode(node, this.graph)}; ${known.join("; ")}`);
    if (this.compact) {
      box.value.textContent = hasGrad ? `∂ ${formatValue(node.grad, node.shape)}` : hasValue ? formatValue(node.value, node.shape) : "";
      box.value.setAttribute("class", `node-value${hasGrad ? " grad" : ""}`);
    } else {
      box.value.textContent = hasValue ? formatValue(node.value, node.shape) : "·";
      box.grad.textContent = hasGrad ? `∂J: ${formatValue(node.grad, node.shape)}` : "";
    }
  }

  // A maxout unit (max over its pieces): once computed, the arc from the winning piece is
  // drawn bold and the others faded, since the backward pass sends the gradient to it alone.
  markWinner(node) {
    const computed = node.value !== null && node.value !== undefined;
    const values = node.parents.map((parent) => this.nodes.get(parent).value);
    const winner = computed ? node.parents[values.indexOf(Math.max(...values))] : null;
    for (const edge of this.edges) {
      if (edge.to !== node.id) continue;
      edge.path.classList.toggle("winner", computed && edge.from === winner);
      edge.path.classList.toggle("loser", computed && edge.from !== winner);
      const piece = this.boxes.get(edge.from);
      if (piece) piece.group.classList.toggle("losing-piece", computed && edge.from !== winner);
    }
  }

  // The current step (`event` from the server, or null), the node the next step computes.
  setCursor(event, next) {
    for (const box of this.boxes.values()) box.group.classList.remove("current", "next", "operand", "child-term");
    for (const edge of this.edges) edge.path.classList.remove("active-forward", "active-backward");
    this.current = event ? event.node : null;
    if (next !== null && next !== undefined && this.boxes.has(next)) this.boxes.get(next).group.classList.add("next");
    if (!event) return;
    const box = this.boxes.get(event.node);
    if (!box) return;
    box.group.classList.add("current");
    if (event.phase === "forward") {
      for (const edge of this.edges) {
        if (edge.to !== event.node) continue;
        edge.path.classList.add("active-forward");
        this.boxes.get(edge.from).group.classList.add("operand");
      }
    } else {
      const terms = new Set((event.terms || []).map((term) => term.child));
      for (const edge of this.edges) {
        if (edge.from !== event.node || !terms.has(edge.to)) continue;
        edge.path.classList.add("active-backward");
        this.boxes.get(edge.to).group.classList.add("child-term");
      }
    }
    this.reveal(box);
  }

  // Scroll so that a box is visible.
  reveal(box) {
    const view = this.container;
    const scale = this.scale || 1;
    const left = (box.x - 40) * scale;
    const right = (box.x + box.width + 40) * scale;
    const top = (box.y - 30) * scale;
    const bottom = (box.y + box.height + 30) * scale;
    if (left < view.scrollLeft || right > view.scrollLeft + view.clientWidth) {
      view.scrollLeft = Math.max(0, (left + right) / 2 - view.clientWidth / 2);
    }
    if (top < view.scrollTop || bottom > view.scrollTop + view.clientHeight) {
      view.scrollTop = Math.max(0, (top + bottom) / 2 - view.clientHeight / 2);
    }
  }

  select(id) {
    if (this.selected !== null && this.boxes.has(this.selected)) this.boxes.get(this.selected).group.classList.remove("selected");
    this.selected = id;
    if (id !== null && this.boxes.has(id)) this.boxes.get(id).group.classList.add("selected");
  }

  // Highlight one chain-rule path (node ids from the parameter to J), or none.
  showPath(ids) {
    for (const box of this.boxes.values()) box.group.classList.remove("on-path");
    for (const edge of this.edges) edge.path.classList.remove("on-path");
    if (!ids) return;
    const steps = new Set();
    for (let i = 0; i < ids.length; i++) {
      const box = this.boxes.get(ids[i]);
      if (box) box.group.classList.add("on-path");
      if (i > 0) steps.add(`${ids[i - 1]}>${ids[i]}`);
    }
    for (const edge of this.edges) if (steps.has(`${edge.from}>${edge.to}`)) edge.path.classList.add("on-path");
  }

  hover(id, event) {
    const tip = this.tooltip;
    if (!tip) return;
    if (id === null) { tip.hidden = true; return; }
    const node = this.nodes.get(id);
    const value = node.value === null || node.value === undefined ? "not computed yet" : formatValue(node.value, node.shape);
    const grad = node.grad === null || node.grad === undefined ? "not computed yet" : formatValue(node.grad, node.shape);
    const shape = node.shape.length ? ` <i>(${node.shape.join(" × ")})</i>` : "";
    tip.innerHTML = `<b>${escapeHtml(node.name)}</b>${shape}<br>${escapeHtml(describeNode(node, this.graph))}`
      + `<br>value: ${escapeHtml(value)}<br>∂J/∂${escapeHtml(node.name)}: ${escapeHtml(grad)}`;
    tip.hidden = false;
    const margin = 14;
    const width = tip.offsetWidth;
    const left = Math.min(event.clientX + margin, window.innerWidth - width - 8);
    tip.style.left = `${left + window.scrollX}px`;
    tip.style.top = `${event.clientY + margin + window.scrollY}px`;
  }
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}
