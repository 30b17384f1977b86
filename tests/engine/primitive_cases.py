"""One table of small graphs, each exercising one primitive, shared by the finite-difference
tests (test_primitives.py) and the torch comparison (test_against_torch.py).

A case is written once against an ``ops`` namespace: ``ENGINE`` calls the entries of
``engine.primitives.PRIMITIVES`` directly, ``torch_ops()`` maps the same names to torch.
Inputs are float64 and kept away from kinks (relu, abs, hard_tanh, max ties) and from the
edges of domains (log, divide, a power's base), where finite differences mean nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import primitives
from engine.autodiff import as_tensor
from engine.primitives import PRIMITIVES


@dataclass(frozen=True)
class Case:
    primitive: str
    label: str
    build: Callable[..., Any]  # build(ops, *inputs) -> output
    inputs: tuple[np.ndarray, ...]

    @property
    def id(self) -> str:
        return f"{self.primitive}-{self.label}"


def head(ops: Any, output: Any) -> Any:
    """A nonlinearity after the case's output for second-order checks: it makes the
    gradient flowing into the primitive depend on the inputs, so the Hessian-vector
    product also differentiates the primitive's VJPs with respect to that gradient."""
    return ops.sin(output)


# ----- the two op namespaces ------------------------------------------------------------
class EngineOps:
    """The primitives of the table, called directly (not through Tensor operators)."""

    def const(self, value: Any) -> Any:
        return as_tensor(np.asarray(value, dtype=np.float64))

    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return PRIMITIVES["sum"](x, axis=axis, keepdims=keepdims)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return PRIMITIVES["reshape"](x, shape=shape)

    def broadcast_to(self, x: Any, shape: tuple[int, ...]) -> Any:
        return PRIMITIVES["broadcast_to"](x, shape=shape)

    def transpose(self, x: Any, axes: tuple[int, ...] | None = None) -> Any:
        return PRIMITIVES["transpose"](x, axes=axes)

    def index_add(self, x: Any, index: Any, shape: tuple[int, ...]) -> Any:
        return PRIMITIVES["index_add"](x, index=index, shape=shape)

    def getitem(self, x: Any, index: Any) -> Any:
        return PRIMITIVES["getitem"](x, index=index)

    def max(self, x: Any, axis: int) -> Any:
        return PRIMITIVES["max"](x, axis=axis)

    def logsumexp(self, x: Any, axis: int) -> Any:
        return PRIMITIVES["logsumexp"](x, axis=axis)

    # parametric primitives of the unit-level graph, made per fan-in by a factory
    def unit_sum(self, bias: Any, *pairs: Any) -> Any:
        return primitives.unit_sum(len(pairs) // 2)(bias, *pairs)

    def stack(self, *parts: Any) -> Any:
        return primitives.stack(len(parts))(*parts)

    def penalty(self, *weights: Any, l2: float, l1: float) -> Any:
        return primitives.scalar_penalty(len(weights))(*weights, l2=l2, l1=l1)

    def unit_max(self, *parts: Any) -> Any:
        return primitives.unit_max(len(parts))(*parts)

    def rbf_sum(self, bias: Any, width: Any, *pairs: Any) -> Any:
        return primitives.rbf_sum(len(pairs) // 2)(bias, width, *pairs)

    def leaky_relu(self, x: Any, slope: float) -> Any:
        return PRIMITIVES["leaky_relu"](x, slope=slope)

    def __getattr__(self, name: str) -> Any:
        # add, subtract, multiply, divide, negative, power, matmul, exp, log, sin, cos,
        # tanh, sigmoid, softplus, relu, abs, hard_tanh: positional inputs only
        return PRIMITIVES[name]


ENGINE = EngineOps()


def torch_ops() -> Any:
    """The same names on torch tensors (torch imported only when asked for)."""
    import torch

    def index_of(index: Any) -> Any:
        if isinstance(index, tuple):
            return tuple(index_of(i) for i in index)
        if isinstance(index, np.ndarray):
            return torch.as_tensor(index)
        return index

    class TorchOps:
        def const(self, value: Any) -> Any:
            return torch.as_tensor(np.asarray(value, dtype=np.float64))

        def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
            if axis is None:
                total = x.sum()
                return total.reshape((1,) * x.ndim) if keepdims else total
            dims = tuple(axis) if isinstance(axis, tuple) else (axis,)
            return torch.sum(x, dim=dims, keepdim=keepdims)

        def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
            return x.reshape(shape)

        def broadcast_to(self, x: Any, shape: tuple[int, ...]) -> Any:
            return torch.broadcast_to(x, shape)

        def transpose(self, x: Any, axes: tuple[int, ...] | None = None) -> Any:
            return x.permute(tuple(reversed(range(x.ndim))) if axes is None else axes)

        def index_add(self, x: Any, index: Any, shape: tuple[int, ...]) -> Any:
            parts = index if isinstance(index, tuple) else (index,)
            indices = tuple(torch.as_tensor(np.asarray(i)) for i in parts)
            zeros = torch.zeros(shape, dtype=torch.float64)
            return zeros.index_put(indices, x, accumulate=True)

        def getitem(self, x: Any, index: Any) -> Any:
            return x[index_of(index)]

        def max(self, x: Any, axis: int) -> Any:
            return torch.amax(x, dim=axis)

        def logsumexp(self, x: Any, axis: int) -> Any:
            return torch.logsumexp(x, dim=axis)

        add = staticmethod(torch.add)
        subtract = staticmethod(torch.sub)
        multiply = staticmethod(torch.mul)
        divide = staticmethod(torch.div)
        negative = staticmethod(torch.neg)
        power = staticmethod(torch.pow)
        matmul = staticmethod(torch.matmul)

        @staticmethod
        def tanh_grad(g: Any, t: Any) -> Any:
            return g * (1.0 - t * t)

        @staticmethod
        def matmul_tn(a: Any, b: Any) -> Any:
            return a.T @ b

        @staticmethod
        def matmul_nt(a: Any, b: Any) -> Any:
            return a @ b.T

        exp = staticmethod(torch.exp)
        log = staticmethod(torch.log)
        sin = staticmethod(torch.sin)
        cos = staticmethod(torch.cos)
        tanh = staticmethod(torch.tanh)
        sigmoid = staticmethod(torch.sigmoid)
        relu = staticmethod(torch.relu)
        abs = staticmethod(torch.abs)

        @staticmethod
        def softplus(x: Any) -> Any:
            # exact log(1 + e^x): torch's F.softplus switches to x above a threshold
            return torch.logaddexp(torch.zeros_like(x), x)

        @staticmethod
        def hard_tanh(x: Any) -> Any:
            return torch.clamp(x, -1.0, 1.0)

        @staticmethod
        def unit_sum(bias: Any, *pairs: Any) -> Any:
            return bias + sum(pairs[i] * pairs[i + 1] for i in range(0, len(pairs), 2))

        @staticmethod
        def stack(*parts: Any) -> Any:
            return torch.stack(parts)

        @staticmethod
        def penalty(*weights: Any, l2: float, l1: float) -> Any:
            flat = torch.stack(weights)
            return 0.5 * l2 * (flat * flat).sum() + l1 * flat.abs().sum()

        @staticmethod
        def unit_max(*parts: Any) -> Any:
            return torch.stack(parts).max()

        @staticmethod
        def rbf_sum(bias: Any, width: Any, *pairs: Any) -> Any:
            squared = sum((pairs[i + 1] - pairs[i]) ** 2 for i in range(0, len(pairs), 2))
            return bias - squared / width**2

        @staticmethod
        def leaky_relu(x: Any, slope: float) -> Any:
            return torch.nn.functional.leaky_relu(x, slope)

        @staticmethod
        def prelu(x: Any, slope: Any) -> Any:
            return torch.where(x > 0, x, slope * x)

        @staticmethod
        def affine(h: Any, weights: Any, bias: Any) -> Any:
            return h @ weights + bias

        @staticmethod
        def bernoulli_nll(z: Any, y: Any) -> Any:
            rows = z.shape[0] if z.ndim else 1
            return (
                torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum") / rows
            )

        @staticmethod
        def softmax_nll(z: Any, onehot: Any) -> Any:
            # the primitive's formula, mean(log Σ exp z − ⟨e_y, z⟩), linear in the targets
            return (torch.logsumexp(z, dim=1).sum() - (onehot * z).sum()) / z.shape[0]

    return TorchOps()


# ----- inputs ---------------------------------------------------------------------------
_rng = np.random.default_rng(20240611)


def smooth(shape: tuple[int, ...], low: float = -1.5, high: float = 1.5) -> np.ndarray:
    return _rng.uniform(low, high, size=shape)


def positive(shape: tuple[int, ...]) -> np.ndarray:
    return _rng.uniform(0.5, 2.0, size=shape)


def away_from_zero(shape: tuple[int, ...]) -> np.ndarray:
    """|x| in [0.3, 1.5] with random signs of both kinds present when there is room."""
    signs = np.where(_rng.permutation(np.arange(int(np.prod(shape)))) % 2 == 0, 1.0, -1.0)
    return signs.reshape(shape) * _rng.uniform(0.3, 1.5, size=shape)


def away_from_hard_tanh_kinks(shape: tuple[int, ...]) -> np.ndarray:
    """Values from the three linear pieces of hard tanh, at least 0.2 from ±1."""
    pieces = _rng.permutation(np.arange(int(np.prod(shape)))) % 3
    low, high = np.array([-2.5, -0.8, 1.2])[pieces], np.array([-1.2, 0.8, 2.5])[pieces]
    return _rng.uniform(low, high).reshape(shape)


def distinct(shape: tuple[int, ...]) -> np.ndarray:
    """All entries at least 0.2 apart, so a max never ties within a step of ε."""
    size = int(np.prod(shape))
    return (_rng.permutation(size) * 0.3 - 0.15 * size + _rng.uniform(0, 0.1, size)).reshape(shape)


UNARY_SHAPES = {"scalar": (), "vector": (5,), "matrix": (3, 4)}
BINARY_SHAPES = {
    "scalar": ((), ()),
    "vector": ((5,), (5,)),
    "matrix": ((3, 4), (3, 4)),
    "matrix+row": ((3, 4), (4,)),
    "row+matrix": ((4,), (3, 4)),
    "column*row": ((3, 1), (1, 4)),
    "scalar*matrix": ((), (3, 4)),
    "matrix*scalar": ((3, 4), ()),
    "tensor3*column": ((2, 3, 4), (3, 1)),
}


def _build_cases() -> list[Case]:
    cases: list[Case] = []

    def add_case(primitive: str, label: str, build: Callable[..., Any], *inputs: np.ndarray):
        cases.append(Case(primitive, label, build, tuple(inputs)))

    # shape primitives
    for label, shape, axis, keepdims in [
        ("scalar", (), None, False),
        ("vector", (5,), None, False),
        ("vector-axis0", (5,), 0, False),
        ("matrix", (3, 4), None, False),
        ("matrix-keepdims", (3, 4), None, True),
        ("matrix-axis0", (3, 4), 0, False),
        ("matrix-axis1-keepdims", (3, 4), 1, True),
        ("matrix-axis-1", (3, 4), -1, False),
        ("matrix-axes01", (3, 4), (0, 1), False),
        ("tensor3-axes02", (2, 3, 4), (0, 2), False),
        ("tensor3-axes-1-3-keepdims", (2, 3, 4), (-1, -3), True),
    ]:
        add_case(
            "sum",
            label,
            lambda ops, x, a=axis, k=keepdims: ops.sum(x, axis=a, keepdims=k),
            smooth(shape),
        )
    for label, source, target in [
        ("scalar", (), (1, 1)),
        ("vector", (12,), (3, 4)),
        ("matrix-flat", (3, 4), (12,)),
        ("matrix", (3, 4), (2, 6)),
        ("tensor3", (2, 3, 4), (6, 4)),
    ]:
        add_case("reshape", label, lambda ops, x, s=target: ops.reshape(x, s), smooth(source))
    for label, source, target in [
        ("scalar", (), (2, 3)),
        ("vector", (1,), (5,)),
        ("row", (4,), (3, 4)),
        ("column", (3, 1), (3, 4)),
        ("tensor3", (1, 4), (2, 3, 4)),
    ]:
        add_case(
            "broadcast_to",
            label,
            lambda ops, x, s=target: ops.broadcast_to(x, s),
            smooth(source),
        )
    for label, shape, axes in [
        ("scalar", (), None),
        ("vector", (5,), None),
        ("matrix", (3, 4), None),
        ("tensor3", (2, 3, 4), None),
        ("tensor3-axes", (2, 3, 4), (1, 2, 0)),
        ("tensor3-negative-axes", (2, 3, 4), (0, -1, -2)),
    ]:
        add_case("transpose", label, lambda ops, x, a=axes: ops.transpose(x, a), smooth(shape))
    labels = np.array([1, 0, 3])
    for label, shape, index in [
        ("vector-int", (5,), 2),
        ("vector-repeats", (5,), np.array([0, 2, 2, 4])),
        ("vector-slice", (5,), slice(1, 4)),
        ("matrix-row", (3, 4), 1),
        ("matrix-rows", (3, 4), np.array([2, 0, 2])),
        ("matrix-column", (3, 4), (slice(None), 2)),
        ("matrix-labels", (3, 4), (np.arange(3), labels)),
        ("matrix-mask", (3, 4), np.arange(12).reshape(3, 4) % 3 == 0),
    ]:
        add_case("getitem", label, lambda ops, x, i=index: ops.getitem(x, i), smooth(shape))
    for label, shape, index, target in [
        ("scalar-into-vector", (), 3, (5,)),
        ("vector-repeats", (4,), np.array([0, 2, 2, 4]), (5,)),
        ("matrix-labels", (3,), (np.arange(3), labels), (3, 4)),
        ("matrix-rows", (2, 4), np.array([2, 2]), (3, 4)),
    ]:
        add_case(
            "index_add",
            label,
            lambda ops, x, i=index, s=target: ops.index_add(x, i, s),
            smooth(shape),
        )

    # arithmetic, on every shape pair including broadcasts
    for label, (left, right) in BINARY_SHAPES.items():
        add_case("add", label, lambda ops, a, b: ops.add(a, b), smooth(left), smooth(right))
        add_case(
            "subtract", label, lambda ops, a, b: ops.subtract(a, b), smooth(left), smooth(right)
        )
        add_case(
            "multiply", label, lambda ops, a, b: ops.multiply(a, b), smooth(left), smooth(right)
        )
        add_case(
            "divide",
            label,
            lambda ops, a, b: ops.divide(a, b),
            smooth(left),
            away_from_zero(right),
        )
        add_case("power", label, lambda ops, a, b: ops.power(a, b), positive(left), smooth(right))
    for label, exponent in [("square", 2.0), ("cube", 3.0), ("sqrt", 0.5), ("inverse", -1.0)]:
        add_case(
            "power",
            f"constant-{label}",
            lambda ops, a, e=exponent: ops.power(a, ops.const(e)),
            positive((3, 4)),
        )
    add_case(
        "power",
        "negative-base-cube",
        lambda ops, a: ops.power(a, ops.const(3.0)),
        away_from_zero((3, 4)),
    )
    add_case("power", "constant-base", lambda ops, b: ops.power(ops.const(2.0), b), smooth((3, 4)))
    for label in UNARY_SHAPES:
        shape = UNARY_SHAPES[label]
        add_case("negative", label, lambda ops, x: ops.negative(x), smooth(shape))

    for label, left, right in [
        ("matrix-matrix", (3, 4), (4, 2)),
        ("vector-matrix", (4,), (4, 2)),
        ("matrix-vector", (3, 4), (4,)),
        ("vector-vector", (4,), (4,)),
        ("batch-matrix", (2, 3, 4), (4, 2)),
        ("matrix-batch", (3, 4), (2, 4, 2)),
        ("batch-batch", (2, 3, 4), (2, 4, 2)),
        ("broadcast-batch", (1, 3, 4), (2, 4, 2)),
        ("batch-vector", (2, 3, 4), (4,)),
        ("vector-batch", (4,), (2, 4, 2)),
    ]:
        add_case("matmul", label, lambda ops, a, b: ops.matmul(a, b), smooth(left), smooth(right))
    # tanh's recorded VJP on a block big enough for its in-place path (≥ 256 numbers)
    add_case(
        "tanh_grad",
        "tall",
        lambda ops, g, t: ops.tanh_grad(g, t),
        smooth((20, 15)),
        smooth((20, 15), -0.9, 0.9),
    )
    # the products a recorded matmul VJP makes (Aᵀ B and A Bᵀ), tall as in a minibatch
    for label, left, right in [("square", (3, 3), (3, 3)), ("tall", (40, 3), (40, 2))]:
        add_case(
            "matmul_tn", label, lambda ops, a, b: ops.matmul_tn(a, b), smooth(left), smooth(right)
        )
    for label, left, right in [("square", (3, 3), (3, 3)), ("tall", (40, 3), (2, 3))]:
        add_case(
            "matmul_nt", label, lambda ops, a, b: ops.matmul_nt(a, b), smooth(left), smooth(right)
        )

    # elementwise functions
    for label, shape in UNARY_SHAPES.items():
        add_case("exp", label, lambda ops, x: ops.exp(x), smooth(shape))
        add_case("log", label, lambda ops, x: ops.log(x), positive(shape))
        add_case("sin", label, lambda ops, x: ops.sin(x), smooth(shape, -3.0, 3.0))
        add_case("cos", label, lambda ops, x: ops.cos(x), smooth(shape, -3.0, 3.0))
        add_case("tanh", label, lambda ops, x: ops.tanh(x), smooth(shape, -2.5, 2.5))
        add_case(
            "tanh_grad",
            label,
            lambda ops, g, t: ops.tanh_grad(g, t),
            smooth(shape),
            smooth(shape, -0.9, 0.9),
        )
        add_case("sigmoid", label, lambda ops, x: ops.sigmoid(x), smooth(shape, -4.0, 4.0))
        add_case("softplus", label, lambda ops, x: ops.softplus(x), smooth(shape, -4.0, 4.0))
        add_case("relu", label, lambda ops, x: ops.relu(x), away_from_zero(shape))
        add_case("abs", label, lambda ops, x: ops.abs(x), away_from_zero(shape))
        add_case(
            "hard_tanh", label, lambda ops, x: ops.hard_tanh(x), away_from_hard_tanh_kinks(shape)
        )

    # reductions over one axis
    for label, shape, axis in [
        ("vector", (5,), 0),
        ("matrix-axis0", (3, 4), 0),
        ("matrix-axis1", (3, 4), 1),
        ("matrix-axis-1", (3, 4), -1),
        ("tensor3-axis1", (2, 3, 4), 1),
    ]:
        add_case("max", label, lambda ops, x, a=axis: ops.max(x, a), distinct(shape))
        add_case("logsumexp", label, lambda ops, x, a=axis: ops.logsumexp(x, a), smooth(shape))
    # fused layer and loss primitives (targets differentiated too: the table declares VJPs)
    add_case(
        "affine",
        "batch",
        lambda ops, h, w, b: ops.affine(h, w, b),
        smooth((5, 3)),
        smooth((3, 4)),
        smooth((4,)),
    )
    add_case(
        "bernoulli_nll",
        "column",
        lambda ops, z, y: ops.bernoulli_nll(z, y),
        smooth((5, 1), -3.0, 3.0),
        _rng.uniform(0.0, 1.0, (5, 1)),
    )
    add_case(
        "softmax_nll",
        "onehot",
        lambda ops, z, onehot: ops.softmax_nll(z, onehot),
        smooth((5, 3), -2.0, 2.0),
        np.eye(3)[[0, 2, 1, 1, 0]],
    )
    add_case(
        "softmax_nll",
        "soft-targets",
        lambda ops, z, onehot: ops.softmax_nll(z, onehot),
        smooth((4, 3), -2.0, 2.0),
        _rng.dirichlet(np.ones(3), size=4),
    )
    add_case(
        "logsumexp",
        "large-logits",
        lambda ops, x: ops.logsumexp(x, 1),
        smooth((3, 4)) + np.array([[40.0], [-40.0], [0.0]]),
    )
    add_case(
        "bernoulli_nll",
        "scalar",
        lambda ops, z, y: ops.bernoulli_nll(z, y),
        smooth((), -3.0, 3.0),
        _rng.uniform(0.0, 1.0, ()),
    )

    # parametric primitives of the unit-level graph (Fig. 6.8: one node per scalar)
    add_case(
        "unit_sum",
        "fan-in-3",
        lambda ops, b, w1, h1, w2, h2, w3, h3: ops.unit_sum(b, w1, h1, w2, h2, w3, h3),
        *(smooth(()) for _ in range(7)),
    )
    add_case("unit_sum", "fan-in-0", lambda ops, b: ops.unit_sum(b), smooth(()))
    add_case(
        "stack", "scalars", lambda ops, a, b, c: ops.stack(a, b, c), *(smooth(()) for _ in range(3))
    )
    add_case("stack", "vectors", lambda ops, a, b: ops.stack(a, b), smooth((4,)), smooth((4,)))
    add_case(
        "unit_max",
        "three-pieces",
        lambda ops, a, b, c: ops.unit_max(a, b, c),
        np.array(0.4),
        np.array(-0.7),
        np.array(1.3),
    )
    add_case(
        "rbf_sum",
        "fan-in-2",
        lambda ops, b, width, w1, h1, w2, h2: ops.rbf_sum(b, width, w1, h1, w2, h2),
        smooth(()),
        positive(()),
        *(smooth(()) for _ in range(4)),
    )
    add_case("leaky_relu", "matrix", lambda ops, x: ops.leaky_relu(x, 0.1), away_from_zero((3, 4)))
    add_case(
        "prelu",
        "slope-per-column",
        lambda ops, x, slope: ops.prelu(x, slope),
        away_from_zero((3, 4)),
        _rng.uniform(0.05, 0.5, (4,)),
    )
    add_case(
        "penalty",
        "l2-and-l1",
        lambda ops, w1, w2, w3: ops.penalty(w1, w2, w3, l2=0.3, l1=0.05),
        *(away_from_zero(()) for _ in range(3)),
    )
    return cases


def primitive_factories() -> dict[str, Any]:
    """The primitive made by each cached factory of engine.primitives, by primitive name."""
    factories = [
        member
        for member in vars(primitives).values()
        if callable(member) and hasattr(member, "cache_info")
    ]
    return {factory(2).name: factory for factory in factories}


CASES: list[Case] = _build_cases()
