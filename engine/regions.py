"""Linear regions of piecewise-linear networks: which linear piece every unit is on.

Section 6.8 of the chapter: a network of piecewise-linear units is itself piecewise
linear, and the input space splits into regions, one per combination of the units'
pieces. Here a point's *activation pattern* lists, for every hidden unit, the piece its
pre-activation falls on (off/on for a rectifier, the sign for |a|, below/inside/above
for hard tanh, the winning filter for maxout). With the pattern fixed, every layer's
pre-activation is an affine function of the input, so the set of inputs sharing a
pattern is an intersection of half-spaces: convex, hence connected. Counting the
distinct patterns met on a grid therefore counts the linear regions that the grid
touches (a region thinner than the grid spacing can be missed, never split in two).

Section 6.6 cites results that deep rectifier nets can need exponentially many units
to be matched by one hidden layer; ``sawtooth_network`` builds the classic example
(k layers of 2 rectifiers, 2^k regions on (0, 1)) beside the bound of one layer
(``shallow_region_bound``). numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.autodiff import no_grad
from engine.nn import MLP, Layer
from engine.spec import LayerSpec, ModelSpec, OutputSpec

# hidden units that are piecewise linear, with the number of pieces each has
PIECEWISE_LINEAR = ("relu", "leaky_relu", "prelu", "abs", "hard_tanh", "maxout", "linear")


def unit_pieces(spec: LayerSpec) -> int:
    """How many linear pieces one unit of this layer has (1 for a linear unit)."""
    kind = spec.activation
    if kind == "linear":
        return 1
    if kind in ("relu", "leaky_relu", "prelu", "abs"):
        return 2
    if kind == "hard_tanh":
        return 3
    if kind == "maxout":
        return spec.pieces
    raise ValueError(
        f"{kind!r} units are not piecewise linear, so the net has no linear regions; "
        f"choose from {', '.join(PIECEWISE_LINEAR)}"
    )


def check_piecewise_linear(model: MLP) -> None:
    """Raise ValueError naming the first hidden layer whose units are not piecewise linear."""
    for index, layer in enumerate(model.layers, start=1):
        try:
            unit_pieces(layer.spec)
        except ValueError as error:
            raise ValueError(f"layer {index}: {error}") from None


def layer_pattern(layer: Layer, pre_activation: np.ndarray) -> np.ndarray:
    """(n, units) small integers: the piece each unit's pre-activation lies on."""
    kind = layer.spec.activation
    a = np.asarray(pre_activation)
    if kind == "linear":
        return np.zeros((a.shape[0], 0), dtype=np.int8)
    if kind in ("relu", "leaky_relu", "prelu", "abs"):
        return (a > 0).astype(np.int8)  # the kink is at a = 0 for all four
    if kind == "hard_tanh":
        return ((a > -1.0).astype(np.int8) + (a > 1.0)).astype(np.int8)
    if kind == "maxout":
        pieces = layer.spec.pieces
        grouped = a.reshape(a.shape[0], a.shape[1] // pieces, pieces)
        return np.argmax(grouped, axis=2).astype(np.int8)
    unit_pieces(layer.spec)  # raises with the reason
    raise AssertionError("unreachable")


def activation_patterns(model: MLP, x: np.ndarray) -> np.ndarray:
    """(n, hidden units) activation pattern of every input row (layer by layer)."""
    check_piecewise_linear(model)
    with no_grad():
        layers = model.forward_layers(np.asarray(x, dtype=np.float64))
    columns = [
        layer_pattern(layer, a.value) for layer, (a, _) in zip(model.layers, layers[:-1])
    ]
    if not columns:
        return np.zeros((np.asarray(x).shape[0], 0), dtype=np.int8)
    return np.concatenate(columns, axis=1)


def region_ids(patterns: np.ndarray) -> tuple[np.ndarray, int]:
    """Label each row's pattern 0, 1, ... in order of first appearance; and the count."""
    n = patterns.shape[0]
    if patterns.shape[1] == 0:
        return np.zeros(n, dtype=np.int64), 1 if n else 0
    # one opaque byte string per row: np.unique sorts those far faster than rows
    rows = np.ascontiguousarray(patterns, dtype=np.int8)
    keys = rows.view(np.dtype((np.void, rows.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # unique patterns sorted by where they first appear
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    return relabel[inverse], int(order.size)


def grid(extent: tuple[tuple[float, float], ...], resolution: int) -> np.ndarray:
    """Cell centres of a regular grid over ``extent`` (1-D or 2-D), rows in x1-fastest
    order. Centres, not edges: a kink lying exactly on the box's edge adds no region."""
    if not 1 <= len(extent) <= 2:
        raise ValueError("a region map needs one or two inputs")
    if not 2 <= resolution <= 1024:
        raise ValueError(f"resolution must be from 2 to 1024, got {resolution}")
    axes = []
    for low, high in extent:
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"extent ({low}, {high}) must be finite with low < high")
        step = (high - low) / resolution
        axes.append(low + step * (np.arange(resolution) + 0.5))
    if len(axes) == 1:
        return axes[0].reshape(-1, 1)
    x1, x2 = np.meshgrid(axes[0], axes[1])  # rows follow x2, columns x1
    return np.stack([x1.reshape(-1), x2.reshape(-1)], axis=1)


@dataclass
class RegionMap:
    ids: np.ndarray  # (resolution,) or (resolution, resolution): region label per cell
    count: int  # distinct activation patterns met on the grid
    extent: tuple[tuple[float, float], ...]


def region_map(
    model: MLP, extent: tuple[tuple[float, float], ...], resolution: int
) -> RegionMap:
    """The linear region of every grid cell over the raw inputs' ``extent``.

    The net must take the raw inputs as its features (x1 or x1, x2): with feature crosses
    such as x1² the map over the raw inputs is no longer piecewise linear.
    """
    if model.spec.features != ["x1", "x2"][: model.input_dim]:
        raise ValueError("a region map needs the raw inputs as features (no feature crosses)")
    if len(extent) != model.input_dim:
        raise ValueError(f"the extent has {len(extent)} axes, the net {model.input_dim} inputs")
    points = grid(extent, resolution)
    ids, count = region_ids(activation_patterns(model, points))
    shape = (resolution,) * len(extent)
    return RegionMap(ids.reshape(shape), count, extent)


def shallow_region_bound(units: int, input_dim: int, kinks_per_unit: int = 1,
                         parallel: bool = False) -> int:
    """The most regions one layer of ``units`` two-piece units can make in ``input_dim``
    dimensions: Σ_{i ≤ d} C(n, i), reached when the kinks are hyperplanes in general
    position (n + 1 intervals on a line; 1 + n + C(n, 2) regions of the plane).
    A hard tanh unit kinks on two parallel hyperplanes (``kinks_per_unit`` = 2,
    ``parallel``): in the plane its pair never crosses itself, so 1 + 2n + C(2n, 2) − n.
    A maxout unit's k pieces meet on parts of at most C(k, 2) lines, so the same count
    with that many lines per unit bounds it (reached for k = 2 only)."""
    lines = units * kinks_per_unit
    bound = sum(math.comb(lines, i) for i in range(min(lines, input_dim) + 1))
    if input_dim == 2 and parallel:
        bound -= units * math.comb(kinks_per_unit, 2)  # a unit's parallel lines never meet
    return bound


def kink_lines(model: MLP) -> tuple[np.ndarray, np.ndarray] | None:
    """The lines w·x + b = c where the first layer's units switch piece, as (normals
    (L, 2), offsets (L,)) meaning normal·x + offset = 0; None for a net whose first
    layer has no straight kinks (maxout pieces meet on half-lines, smooth units none)."""
    if not model.layers or model.input_dim != 2:
        return None
    layer = model.layers[0]
    kind = layer.spec.activation
    weights, bias = layer.weights.value, layer.bias.value
    if kind in ("relu", "leaky_relu", "prelu", "abs"):
        return weights.T.copy(), bias.copy()
    if kind == "hard_tanh":  # kinks at a = −1 and a = +1
        return np.concatenate([weights.T, weights.T]), np.concatenate([bias + 1.0, bias - 1.0])
    return None


def arrangement_count(normals: np.ndarray, offsets: np.ndarray,
                      extent: tuple[tuple[float, float], ...]) -> dict[str, int]:
    """Regions that lines in general position cut a box into: 1 + (lines crossing the
    box) + (crossing points inside it), by Euler's formula, each new line adding one
    region plus one per line it crosses inside the box. Computed from the lines alone
    (no grid), so it checks ``region_map`` of a one-layer net independently."""
    (x_low, x_high), (y_low, y_high) = extent
    corners = np.array([[x_low, y_low], [x_high, y_low], [x_low, y_high], [x_high, y_high]])
    inside = []
    for normal, offset in zip(normals, offsets):
        sides = corners @ normal + offset
        if np.any(normal != 0) and sides.min() < 0 < sides.max():
            inside.append((normal, offset))
    crossings = 0
    for i in range(len(inside)):
        for j in range(i + 1, len(inside)):
            matrix = np.array([inside[i][0], inside[j][0]])
            if abs(np.linalg.det(matrix)) < 1e-12:
                continue  # parallel lines never cross
            point = np.linalg.solve(matrix, -np.array([inside[i][1], inside[j][1]]))
            if x_low < point[0] < x_high and y_low < point[1] < y_high:
                crossings += 1
    return {"lines": len(inside), "crossings": crossings,
            "regions": 1 + len(inside) + crossings}


def sawtooth_network(depth: int) -> MLP:
    """A 1-D ReLU net of ``depth`` layers of 2 units whose output on [0, 1] is the tent
    map t(x) = 2x on [0, ½], 2 − 2x on [½, 1] composed ``depth`` times: 2^depth linear
    pieces (and regions) from 2·depth units, where one layer of 2·depth rectifiers
    makes at most 2·depth + 1.

    Each layer computes relu(s) and relu(s − ½) of its input s and the next layer (or
    the output) combines them as t(s) = 2 relu(s) − 4 relu(s − ½).
    """
    if not 1 <= depth <= 12:
        raise ValueError(f"depth must be from 1 to 12, got {depth}")
    spec = ModelSpec(
        features=["x1"],
        layers=[LayerSpec(2, "relu") for _ in range(depth)],
        output=OutputSpec("squared"),
    )
    model = MLP(spec, input_dim=1, classes=2)
    tent = np.array([[2.0], [-4.0]])  # t(s) from (relu(s), relu(s − ½))
    for index, layer in enumerate(model.layers):
        incoming = np.array([[1.0, 1.0]]) if index == 0 else tent @ np.array([[1.0, 1.0]])
        layer.weights.value = incoming
        layer.bias.value = np.array([0.0, -0.5])
    model.output.weights.value = tent.copy()
    model.output.bias.value = np.zeros(1)
    return model
