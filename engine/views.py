"""What the playground draws, computed from the network's weights: one frame's views.

For the current network and data, in float32 numpy:

- the decision surface: the output unit's prediction on a grid over the data,
- every hidden unit's response map (the thumbnails of the network diagram),
- the warp of a regular grid of input lines and of the data points in every hidden layer,
  after the affine step (a = hW + b) and after the non-linearity (h = φ(a)): Fig. 6.2,
- gradient summaries of the cost J on the training set.

One batched forward pass of all the grids serves every view, so a frame costs little more
than the surface alone. Layers wider than three units are projected onto two principal
axes fitted per layer and stage and rotated towards the previous frame's axes, so the
picture turns smoothly instead of flipping. float32 is plenty for pictures that travel
quantised to 8 or 16 bits; the gradients shown as numbers come from the float64 engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.autodiff import grad
from engine.nn import MLP, Layer

F32 = np.float32
# activations whose range is fixed, so that unit maps are coloured on one scale
_BOUNDED = {"tanh": (-1.0, 1.0), "hard_tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


@dataclass
class ViewSpec:
    """How finely to sample the views (the protocol's ``view`` settings)."""

    grid: int = 100  # surface cells per side (2-D data) or samples (1-D data)
    unit_grid: int = 40  # cells per side of each unit's response map (at most ``grid``)
    warp_lines: int = 21  # grid lines per direction in the input space
    warp_samples: int = 41  # points along each grid line


@dataclass
class Quantised:
    """An array stored as unsigned integers: value ≈ lo + q · (hi − lo) / (2^bits − 1).

    ``lo`` and ``hi`` are one number for the whole array, or one per slice along axis 0.
    """

    data: np.ndarray
    lo: float | np.ndarray
    hi: float | np.ndarray

    def decode(self) -> np.ndarray:
        top = float(np.iinfo(self.data.dtype).max)
        lo, hi = np.asarray(self.lo, F32), np.asarray(self.hi, F32)
        shape = (-1,) + (1,) * (self.data.ndim - 1) if lo.ndim else ()
        lo, hi = lo.reshape(shape), hi.reshape(shape)
        return lo + self.data.astype(F32) * ((hi - lo) / top)


def quantise(
    values: np.ndarray,
    bits: int = 8,
    lo: float | np.ndarray | None = None,
    hi: float | np.ndarray | None = None,
    per_row: bool = False,
) -> Quantised:
    """Quantise to uint8 or uint16 over [lo, hi] (the data's own range by default), one
    range for the whole array or, with ``per_row``, one per slice along axis 0."""
    values = np.asarray(values, dtype=F32)
    dtype = np.uint8 if bits == 8 else np.uint16
    top = float(np.iinfo(dtype).max)
    rows = len(values) if per_row and values.ndim else 1
    flat = values.reshape(rows, -1)
    if lo is None or hi is None:
        low, high = _range(flat)
    if lo is not None:
        low = _finite(np.broadcast_to(np.asarray(lo, F32), (rows,)))
    if hi is not None:
        high = _finite(np.broadcast_to(np.asarray(hi, F32), (rows,)))
    span = np.where(high > low, high - low, F32(1.0)).astype(F32)
    scaled = flat - low[:, None]
    scaled *= (top / span)[:, None]
    scaled += 0.5
    # fmax/fmin pick the number over a NaN: NaN becomes 0, ±inf the ends of the range
    np.fmax(scaled, 0.0, out=scaled)
    np.fmin(scaled, top, out=scaled)
    data = scaled.astype(dtype).reshape(values.shape)
    if per_row:
        return Quantised(data, low, high)
    return Quantised(data, float(low[0]), float(high[0]))


def _range(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's smallest and largest finite entry."""
    if flat.shape[1] == 0:
        return np.zeros(len(flat), F32), np.ones(len(flat), F32)
    low, high = flat.min(axis=1), flat.max(axis=1)
    bad = ~(np.isfinite(low) & np.isfinite(high))
    for row in np.flatnonzero(bad):
        finite = flat[row][np.isfinite(flat[row])]
        low[row], high[row] = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    return low, high


def _finite(x: Any) -> Any:
    x = np.asarray(x, dtype=F32)
    if np.isfinite(x).all():
        return x
    return np.nan_to_num(x, nan=0.0, posinf=3e38, neginf=-3e38)


# ----- the forward pass in float32 ------------------------------------------------------


def pre_activation(layer: Layer, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a = hW + b (or the RBF units' b − ‖h − w‖²/σ²), into ``out`` when given."""
    weights = layer.weights.value.astype(F32)
    bias = layer.bias.value.astype(F32)
    if layer.spec.activation == "rbf":
        # ‖h − w‖² = ‖h‖² − 2 h·w + ‖w‖²
        widths = layer.widths.value.astype(F32)
        squared = (h * h).sum(axis=1, keepdims=True) - 2.0 * (h @ weights)
        squared += (weights * weights).sum(axis=0)
        np.maximum(squared, 0.0, out=squared)
        return bias - squared / (widths * widths)
    a = np.matmul(h, weights, out=out)
    a += bias
    return a


def activate(layer: Layer, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """h = φ(a), the units of ``engine.functional`` in numpy, into ``out`` when given."""
    kind = layer.spec.activation
    if kind == "tanh":
        return np.tanh(a, out=out)
    if kind == "relu":
        return np.maximum(a, 0.0, out=out)
    if kind in ("leaky_relu", "prelu"):
        slope = layer.slope.value if kind == "prelu" else np.float64(layer.spec.slope)
        slope = np.asarray(slope, dtype=F32)
        if np.all((slope >= 0) & (slope <= 1)):  # then max(a, αa) is a for a > 0, else αa
            scaled = np.multiply(a, slope, out=out)
            return np.maximum(a, scaled, out=scaled)
        return np.where(a > 0, a, slope * a)
    if kind == "sigmoid":
        h = np.multiply(a, 0.5, out=out)  # σ(a) = (1 + tanh(a/2)) / 2 never overflows
        np.tanh(h, out=h)
        h += 1.0
        h *= 0.5
        return h
    if kind == "softplus":
        return np.logaddexp(F32(0.0), a, out=out)
    if kind == "hard_tanh":
        return np.clip(a, -1.0, 1.0, out=out)
    if kind == "abs":
        return np.abs(a, out=out)
    if kind == "maxout":
        pieces = layer.spec.pieces
        return a.reshape(a.shape[0], a.shape[1] // pieces, pieces).max(axis=2, out=out)
    if kind == "rbf":
        return np.exp(a, out=out)
    if kind == "linear":
        return a
    raise ValueError(f"unknown activation {kind!r}")


def forward(
    model: MLP, features: np.ndarray, buffers: dict | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pre_activation a, activation h) per hidden layer, then (z, z) for the output,
    like ``MLP.forward_layers`` but in float32 numpy, for many points at once.

    ``buffers`` keeps the arrays between calls: the same shapes every frame, and fresh
    large arrays would cost a page fault per 4 KiB on every frame.
    """
    h = np.asarray(features, dtype=F32)
    rows = len(h)
    result = []
    for index, layer in enumerate(model.all_layers):
        width = layer.weights.shape[1]
        a = pre_activation(layer, h, _buffer(buffers, (index, "a"), (rows, width)))
        if layer is model.output:
            result.append((a, a))
            break
        h = activate(layer, a, _buffer(buffers, (index, "h"), (rows, layer.units)))
        result.append((a, h))
    return result


def _buffer(buffers: dict | None, key: tuple, shape: tuple[int, int]) -> np.ndarray | None:
    if buffers is None:
        return None
    array = buffers.get(key)
    if array is None or array.shape != shape:
        array = buffers[key] = np.empty(shape, dtype=F32)
    return array


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(F32(0.0), x)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


# ----- grids ----------------------------------------------------------------------------


def cell_centres(low: float, high: float, cells: int) -> np.ndarray:
    """Centres of ``cells`` equal cells covering [low, high]: pixel i of a drawn image."""
    return low + (np.arange(cells) + 0.5) * ((high - low) / cells)


def surface_inputs(extent: tuple[tuple[float, float], ...], grid: int) -> np.ndarray:
    """Row i·grid + j holds (x1_j, x2_i): rows of the surface run along x1, upwards in x2."""
    if len(extent) == 1:
        return cell_centres(*extent[0], grid).reshape(-1, 1)
    x1 = cell_centres(*extent[0], grid)
    x2 = cell_centres(*extent[1], grid)
    return np.stack([np.tile(x1, grid), np.repeat(x2, grid)], axis=1)


def line_inputs(
    extent: tuple[tuple[float, float], ...], lines: int, samples: int
) -> np.ndarray:
    """A regular grid of input lines, each sampled densely: the first ``lines`` lines keep
    x2 fixed (x1 runs from low to high), the next ``lines`` keep x1 fixed. 1-D data has
    one line, the x1 axis."""
    if len(extent) == 1:
        return np.linspace(*extent[0], samples).reshape(-1, 1)
    (low1, high1), (low2, high2) = extent
    along1, along2 = np.linspace(low1, high1, samples), np.linspace(low2, high2, samples)
    at1, at2 = np.linspace(low1, high1, lines), np.linspace(low2, high2, lines)
    horizontal = np.stack([np.tile(along1, lines), np.repeat(at2, samples)], axis=1)
    vertical = np.stack([np.repeat(at1, samples), np.tile(along2, lines)], axis=1)
    return np.concatenate([horizontal, vertical])


# ----- stable projections ----------------------------------------------------------------


@dataclass
class Axes:
    centre: np.ndarray  # (width,)
    basis: np.ndarray  # (width, 2), orthonormal columns
    explained: float  # fraction of the variance the two axes keep


def principal_axes(points: np.ndarray, previous: Axes | None = None) -> Axes:
    """The two principal axes of ``points``, turned to match ``previous`` as closely as
    the new plane allows (orthogonal Procrustes), so that a frame never flips or
    spins the picture; the first fit fixes each axis's sign by its largest entry."""
    return principal_axes_of_many([points], [previous])[0]


def principal_axes_of_many(
    clouds: list[np.ndarray], previous: list[Axes | None]
) -> list[Axes]:
    """``principal_axes`` of several point clouds of the same width (n, w), computed in
    stacked linear-algebra calls: one frame's layers in one go."""
    x = np.stack([np.asarray(c) for c in clouds]).astype(np.float64)  # (k, n, w)
    count, width = max(x.shape[1], 1), x.shape[2]
    centres = x.mean(axis=1)
    covariances = np.matmul(x.transpose(0, 2, 1), x)
    covariances -= count * centres[:, :, None] * centres[:, None, :]
    finite = np.isfinite(covariances).all(axis=(1, 2)) & np.isfinite(centres).all(axis=1)
    covariances[~finite] = np.eye(width)
    values, vectors = np.linalg.eigh(covariances)
    bases = vectors[:, :, :-3:-1].copy()  # eigh sorts ascending: the last two, largest first
    totals = values.sum(axis=1)
    kept = values[:, :-3:-1].sum(axis=1)
    explained = np.clip(np.divide(kept, totals, out=np.ones_like(kept), where=totals > 0), 0, 1)
    aligned = [i for i, p in enumerate(previous) if p is not None and p.basis.shape == (width, 2)]
    if aligned:
        before = np.stack([previous[i].basis for i in aligned])
        u, _, vt = np.linalg.svd(np.matmul(bases[aligned].transpose(0, 2, 1), before))
        bases[aligned] = np.matmul(bases[aligned], np.matmul(u, vt))
    result = []
    for i, basis in enumerate(bases):
        if not finite[i]:
            # overflowing activations of a blown-up network: keep the picture's axes
            old = previous[i]
            if old is not None and old.basis.shape == (width, 2):
                result.append(old)
            else:
                result.append(Axes(np.zeros(width), np.eye(width, 2), 0.0))
            continue
        if i not in aligned:
            largest = np.abs(basis).argmax(axis=0)
            basis = basis * np.where(basis[largest, [0, 1]] < 0, -1.0, 1.0)
        result.append(Axes(centres[i], basis, float(explained[i])))
    return result


def stable_bounds(
    previous: list[list[float]] | None, low: list[float], high: list[float]
) -> list[list[float]]:
    """Axis ranges [[lo, hi] per dimension] for a panel that should not jump: they grow at
    once to keep every point in view and shrink only when the points fill less than
    half of them."""
    spans = [max(h - l, 1e-6) for l, h in zip(low, high)]
    if previous is not None and len(previous) == len(low):
        inside = all(p[0] <= l and h <= p[1] for p, l, h in zip(previous, low, high))
        if inside and all(s >= 0.5 * (p[1] - p[0]) for p, s in zip(previous, spans)):
            return previous
    return [[l - 0.1 * s, h + 0.1 * s] for l, h, s in zip(low, high, spans)]


# ----- gradients -------------------------------------------------------------------------


def gradient_summary(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 0.0,
    l1: float = 0.0,
    fastpath: Any = None,
) -> dict[str, Any]:
    """∇J of the cost J = mean loss + Ω(θ) over (x, y), in float64.

    Returns every parameter with its gradient, each unit's mean |∂L/∂a| over the examples
    (L the example's own loss, so the number does not shrink with the data set's size),
    and the gradient norm of each layer's parameters. ``fastpath`` (an
    ``engine.fastpath.FastPath`` of this model) computes the same gradients layer by
    layer (Algorithm 6.2) about ten times faster than the generic engine.
    """
    parameters = model.parameters()
    found = None
    if fastpath is not None and getattr(fastpath, "model", None) is model:
        found = _fast_gradients(model, fastpath, x, y, l2, l1)
    if found is None:
        found = _engine_gradients(model, x, y, l2, l1)
    loss, parameter_grads, unit_grads = found
    examples = max(len(x), 1)
    by_name = dict(zip((p.name for p in parameters), parameter_grads))
    layers = []
    for layer, unit_grad in zip(model.all_layers, unit_grads):
        squares = sum(float(np.vdot(by_name[p.name], by_name[p.name])) for p in layer.parameters())
        layers.append({
            "pre_activation_grad": (np.abs(unit_grad).mean(axis=0) * examples).astype(F32),
            "grad_norm": float(np.sqrt(squares)),
        })
    penalty = 0.0
    for weights in model.weight_tensors():
        if l2:
            penalty += 0.5 * l2 * float(np.vdot(weights.value, weights.value))
        if l1:
            penalty += l1 * float(np.abs(weights.value).sum())
    return {
        "loss": loss,
        "cost": loss + penalty,
        "parameters": [
            {"name": p.name, "value": p.value.astype(F32), "grad": g.astype(F32)}
            for p, g in zip(parameters, parameter_grads)
        ],
        "layers": layers,
    }


def _engine_gradients(model: MLP, x, y, l2: float, l1: float):
    layers = model.forward_layers(x)
    loss = model.loss(layers[-1][1], y)
    penalty = model.penalty(l2, l1)
    cost = loss if penalty is None else loss + penalty
    parameters = model.parameters()
    grads = grad(cost, parameters + [a for a, _ in layers])
    values = [g.value for g in grads]
    return float(loss.value), values[: len(parameters)], values[len(parameters) :]


def _fast_gradients(model: MLP, fastpath: Any, x, y, l2: float, l1: float):
    """The fast path's gradients and ∂J/∂a (None if it kept no buffers for this batch)."""
    features = np.ascontiguousarray(model.features(x))
    grads = [np.empty_like(p.value) for p in model.parameters()]
    loss = fastpath.loss_and_grads(features, np.asarray(y, dtype=np.float64), grads, l2, l1)
    unit_grads = fastpath.pre_activation_grads(len(features))
    if unit_grads is None:
        return None
    return float(loss), grads, unit_grads


# ----- the frame -------------------------------------------------------------------------


@dataclass
class _Inputs:
    key: tuple
    dataset: Any
    features: np.ndarray  # float32 rows: surface, then grid lines, then data points
    surface: slice
    lines: slice
    points: slice
    line_count: int
    samples: int


class FrameBuilder:
    """Builds the views of one session's successive frames. It remembers each layer's
    projection axes and view bounds, so the pictures stay still from frame to frame,
    and the grid inputs, which change only with the data or the view settings."""

    def __init__(self) -> None:
        self._axes: dict[tuple[int, str, int], Axes] = {}
        self._bounds: dict[tuple[int, str, int], np.ndarray] = {}
        self._inputs: _Inputs | None = None
        self._buffers: dict = {}
        self._surface_buffers: dict = {}  # the forward pass of frames without warps

    def forget_layout(self) -> None:
        """Drop remembered axes and bounds (the architecture or the data changed)."""
        self._axes.clear()
        self._bounds.clear()

    def _grid_inputs(self, model: MLP, dataset: Any, spec: ViewSpec) -> _Inputs:
        extent = tuple(tuple(map(float, e)) for e in dataset.extent)
        key = (tuple(model.spec.features), extent, spec.grid, spec.warp_lines, spec.warp_samples)
        cached = self._inputs
        if cached is not None and cached.key == key and cached.dataset is dataset:
            return cached
        surface = surface_inputs(extent, spec.grid)
        if len(extent) == 1:
            lines, line_count, samples = line_inputs(extent, 1, spec.grid), 1, spec.grid
        else:
            line_count, samples = spec.warp_lines, spec.warp_samples
            lines = line_inputs(extent, line_count, samples)
        points = np.concatenate([dataset.x_train, dataset.x_test])
        raw = np.concatenate([surface, lines, points])
        a, b = len(surface), len(surface) + len(lines)
        self._inputs = _Inputs(
            key, dataset, model.features(raw).astype(F32),
            slice(0, a), slice(a, b), slice(b, len(raw)), line_count, samples,
        )
        if cached is None or cached.dataset is not dataset:
            self._bounds.clear()
        return self._inputs

    def build(
        self,
        model: MLP,
        dataset: Any,
        spec: ViewSpec | None = None,
        l2: float = 0.0,
        l1: float = 0.0,
        gradients: bool = True,
        fastpath: Any = None,
        warps: bool = True,
    ) -> dict[str, Any]:
        """Every view of the current network as numpy arrays and ``Quantised`` arrays;
        without ``warps`` (the page's warp panel is out of sight) the warps are None and
        neither the grid lines nor the data points go through the network."""
        with np.errstate(all="ignore"):  # a diverging network's overflows become nil values
            return self._build(model, dataset, spec or ViewSpec(), l2, l1, gradients, fastpath,
                               warps)

    def _build(self, model, dataset, spec: ViewSpec, l2, l1, gradients, fastpath,
               warps: bool = True) -> dict:
        inputs = self._grid_inputs(model, dataset, spec)
        if warps:
            outputs = forward(model, inputs.features, self._buffers)
        else:  # the surface's rows come first: the unit maps index them the same way
            outputs = forward(model, inputs.features[inputs.surface], self._surface_buffers)
        z = outputs[-1][1]
        surface = self._surface(model, dataset, z[inputs.surface], spec)
        templates = rbf_templates(model)
        if templates is not None:
            surface["templates"] = templates
        frame: dict[str, Any] = {
            "surface": surface,
            "units": self._unit_maps(model, dataset, outputs, inputs, spec),
            "warps": self._warps(model, outputs, inputs) if warps else None,
        }
        if gradients:
            frame["gradients"] = gradient_summary(
                model, dataset.x_train, dataset.y_train, l2, l1, fastpath
            )
        return frame

    # ----- pieces --------------------------------------------------------------------
    def _surface(self, model: MLP, dataset: Any, z: np.ndarray, spec: ViewSpec) -> dict:
        output = model.spec.output
        grid = spec.grid
        extent = [list(map(float, e)) for e in dataset.extent]
        if dataset.input_dim == 1:
            return self._curve(model, dataset, z, spec, extent)
        shape = (grid, grid)
        if output.loss == "bernoulli":
            p = 0.5 * (1.0 + np.tanh(0.5 * z[:, 0]))  # σ(z), finite for any z
            return {"kind": "probability", "extent": extent,
                    "values": quantise(p.reshape(shape), 8, 0.0, 1.0)}
        if output.loss == "softmax":
            p = _softmax(z).T.reshape((z.shape[1],) + shape)
            return {"kind": "probabilities", "extent": extent,
                    "values": quantise(p, 8, 0.0, 1.0)}
        mean = _mean_prediction(output, z)
        return {"kind": "value", "extent": extent, "values": quantise(mean.reshape(shape), 8)}

    def _curve(self, model: MLP, dataset: Any, z: np.ndarray, spec: ViewSpec, extent) -> dict:
        output = model.spec.output
        x = cell_centres(*extent[0], spec.grid).astype(F32)
        curve: dict[str, Any] = {"kind": "curve", "extent": extent, "x": x,
                                 "mean": _mean_prediction(output, z).astype(F32)}
        if dataset.target_extent is not None:
            curve["target_extent"] = list(map(float, dataset.target_extent))
        if output.loss == "gaussian":
            curve["std"] = np.full(len(z), 1.0 / np.sqrt(output.precision), F32)
        elif output.loss == "gaussian_learned":
            curve["std"] = (1.0 / np.sqrt(_softplus(z[:, 1]) + 1e-12)).astype(F32)
        elif output.loss == "mixture" and dataset.target_extent is not None:
            k = output.components
            weights = _softmax(z[:, :k])
            means, precision = z[:, k : 2 * k], _softplus(z[:, 2 * k : 3 * k]) + 1e-12
            y = cell_centres(*dataset.target_extent, spec.grid).astype(F32)
            diff = y[:, None, None] - means[None]  # (y, x, component)
            density = (weights * np.sqrt(precision / (2 * np.pi))
                       * np.exp(-0.5 * precision * diff * diff)).sum(axis=2)
            # rows run upwards in y, columns along x, like the 2-D surface
            curve["density"] = quantise(density, 8, 0.0)
        return curve

    def _unit_maps(self, model, dataset, outputs, inputs: _Inputs, spec: ViewSpec) -> list:
        hidden = list(zip(model.layers, outputs[:-1]))
        if not hidden:
            return []
        if dataset.input_dim == 1:
            return [{"activation": layer.spec.activation, "values": h[inputs.surface].T.copy()}
                    for layer, (_, h) in hidden]
        grid = spec.grid
        size = max(1, min(spec.unit_grid, grid))
        # the surface's cells nearest to the centres of a coarser grid's cells
        index = ((np.arange(size) + 0.5) * (grid / size)).astype(np.intp)
        cells = (index[:, None] * grid + index[None, :]).ravel()
        stacked = np.empty((sum(layer.units for layer, _ in hidden), len(cells)), dtype=F32)
        start = 0
        for layer, (_, h) in hidden:
            stacked[start : start + layer.units] = h.take(cells, axis=0).T
            start += layer.units
        low, high = stacked.min(axis=1), stacked.max(axis=1)
        start = 0
        for layer, _ in hidden:
            bounded = _BOUNDED.get(layer.spec.activation)
            if bounded is not None:
                low[start : start + layer.units], high[start : start + layer.units] = bounded
            start += layer.units
        values = quantise(stacked.reshape(-1, size, size), 8, low, high, per_row=True)
        maps, start = [], 0
        for layer, _ in hidden:
            part = slice(start, start + layer.units)
            maps.append({"activation": layer.spec.activation,
                         "values": Quantised(values.data[part], values.lo[part], values.hi[part])})
            start += layer.units
        return maps

    def _fit_axes(self, stages: list, line_rows: int, block: slice) -> dict:
        """Principal axes of every panel wider than 3, fitted to the data points, in one
        stacked computation per width."""
        by_width: dict[int, list] = {}
        for index, stage, values in stages:
            if values.shape[1] > 3:
                by_width.setdefault(values.shape[1], []).append((index, stage, values))
        fitted = {}
        for width, group in by_width.items():
            keys = [(index, stage, width) for index, stage, _ in group]
            points = [values[block][line_rows:] for _, _, values in group]
            axes = principal_axes_of_many(points, [self._axes.get(key) for key in keys])
            for key, found in zip(keys, axes):
                fitted[key] = self._axes[key] = found
        return fitted

    def _warps(self, model: MLP, outputs, inputs: _Inputs) -> list:
        """Every hidden layer's grid lines and data points, in one quantised block."""
        block = slice(inputs.lines.start, inputs.points.stop)  # the lines, then the points
        line_rows = inputs.lines.stop - inputs.lines.start
        stages = [(index, stage, values) for index, (a, h) in enumerate(outputs[:-1])
                  for stage, values in (("pre_activation", a), ("activation", h))]
        if not stages:
            return []
        dims = [values.shape[1] if values.shape[1] <= 3 else 2 for _, _, values in stages]
        # every panel's coordinates as rows of one array: (Σ dims, lines + points)
        stacked = np.empty((sum(dims), block.stop - block.start), dtype=F32)
        fitted = self._fit_axes(stages, line_rows, block)
        views, start = [], 0
        for (index, stage, values), count in zip(stages, dims):
            width = values.shape[1]
            key = (index, stage, width)
            rows = values[block]
            target = stacked[start : start + count]
            start += count
            view: dict[str, Any] = {"dims": count}
            if width > 3:
                axes = fitted[key]
                basis, centre = axes.basis.astype(F32), axes.centre.astype(F32)
                # Bᵀ(v − c), written straight into its rows
                np.matmul(basis.T, rows.T, out=target)
                target -= (basis.T @ centre)[:, None]
                view.update(projection="pca", basis=basis, centre=centre,
                            explained=axes.explained)
            else:
                target[...] = rows.T
                view["projection"] = "none"
            views.append((index, stage, key, view))
        lines, points = stacked[:, :line_rows], stacked[:, line_rows:]
        point_low, point_high = points.min(axis=1), points.max(axis=1)
        low = np.minimum(point_low, lines.min(axis=1))
        high = np.maximum(point_high, lines.max(axis=1))
        quantised = quantise(stacked, 16, low, high, per_row=True)
        point_low, point_high = _finite(point_low).tolist(), _finite(point_high).tolist()
        warps: list[dict[str, Any]] = []
        last, start = len(model.layers) - 1, 0
        for index, stage, key, view in views:
            rows = slice(start, start + view["dims"])
            start = rows.stop
            bounds = stable_bounds(self._bounds.get(key), point_low[rows], point_high[rows])
            self._bounds[key] = bounds
            view["bounds"] = bounds
            lo, hi = quantised.lo[rows], quantised.hi[rows]
            view["grid"] = Quantised(quantised.data[rows, :line_rows], lo, hi)
            view["points"] = Quantised(quantised.data[rows, line_rows:], lo, hi)
            if stage == "activation" and index == last:
                view["readout"] = _readout(model, view)
            if stage == "pre_activation":
                layer = model.layers[index]
                warps.append({"units": layer.units, "lines": inputs.line_count,
                              "samples": inputs.samples})
            warps[-1][stage] = view
        return warps


def rbf_templates(model: MLP) -> np.ndarray | None:
    """The first hidden layer's RBF templates as points of the input plane (or line),
    f4 (units, input_dim), for the surface to mark where each unit responds most; None
    unless that layer is RBF on the raw inputs (other features put the templates in a
    space the surface does not draw)."""
    if not model.layers or model.layers[0].spec.activation != "rbf":
        return None
    if list(model.spec.features) != ["x1", "x2"][: model.input_dim]:
        return None
    return model.layers[0].weights.value.T.astype(F32)


def _mean_prediction(output: Any, z: np.ndarray) -> np.ndarray:
    if output.loss == "mixture":
        k = output.components
        return (_softmax(z[:, :k]) * z[:, k : 2 * k]).sum(axis=1)
    return z[:, 0]


def _readout(model: MLP, view: dict) -> np.ndarray:
    """The output layer z = hW + b written in this panel's coordinates, one row
    [w_1, ..., w_dims, b] per output: z = 0 (or z_i = z_j) is the decision line that the
    last hidden layer's space is cut by, the linear classifier of Fig. 6.2."""
    weights = model.output.weights.value
    bias = model.output.bias.value
    if view["projection"] == "pca":
        basis, centre = view["basis"].astype(np.float64), view["centre"].astype(np.float64)
        weights, bias = basis.T @ weights, bias + centre @ weights
    return np.concatenate([weights.T, bias[:, None]], axis=1).astype(F32)
