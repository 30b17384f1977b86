"""The table of primitives: each forward beside its vector-Jacobian products.

Adding an operation is adding one ``Primitive(...)`` entry here. Every VJP is written
with tensor operations (never raw numpy on ``g``), so gradients can be differentiated
again. Masks such as ``x > 0`` are constants: their derivative is zero almost
everywhere, and the chapter asks no more of a non-linearity (Algorithm 6.1: differentiable
almost everywhere).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from engine import plans
from engine.autodiff import (
    Primitive,
    Tensor,
    Vjp,
    as_tensor,
    binary_operator,
    register_planner,
    register_sum_to_shape,
    unary_operator,
)


def _value(x: Tensor | np.ndarray) -> np.ndarray:
    """The numbers behind an operand: VJPs run on Tensors when the backward pass is
    recorded (create_graph) and on plain arrays otherwise."""
    return x.value if isinstance(x, Tensor) else x


# ----- shape primitives (declared first: the others' VJPs use them) -----------
_add_reduce = np.add.reduce
# For two matrices ``np.dot`` is the same BLAS product as ``np.matmul`` without the ufunc
# machinery: 0.2–0.5 µs less a call, and a column times a row (k = 1) runs in BLAS
# (1.1 µs at 500 × 8) where matmul falls back to a loop (5.2 µs).
_dot = np.dot
_ndarray = np.ndarray


def _sum_forward(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    if axis == 0 and not keepdims and np.ndim(x) == 2 and x.shape[0] >= 32:
        # a bias gradient Σ_examples g: as a product with ones it runs in BLAS, ~4× faster
        return _dot(_ones(x.shape[0]), x)
    return _add_reduce(x, axis=axis, keepdims=keepdims)


def _sum_vjp(g: Tensor, out: Tensor, x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    if g.__class__ is Tensor and not g.requires_grad:
        # a constant gradient (recorded from a constant seed) spreads back to a constant:
        # the array path, wrapped once, instead of a reshape and a broadcast node each
        return as_tensor(_sum_vjp(g.value, None, x.value, axis, keepdims))
    if axis is None and np.ndim(g) == 0 and g.__class__ is not Tensor:
        return _broadcast_forward(g, x.shape)  # a plain total: it broadcasts as it is
    if not keepdims and axis is not None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = tuple(a % x.ndim for a in axes)
        if sorted(axes) == list(range(len(axes))):
            # summed over leading axes (a bias gradient): g broadcasts back as it is, one
            # node when recorded instead of a reshape and a broadcast
            return broadcast_to(g, x.shape)
        shape = [1 if i in axes else n for i, n in enumerate(x.shape)]
        g = reshape(g, tuple(shape))
    elif not keepdims:
        g = reshape(g, (1,) * x.ndim)
    return broadcast_to(g, x.shape)


sum_ = Primitive("sum", _sum_forward, (_sum_vjp,), formula="Σ x", symbol="Σ")

reshape_p = Primitive(
    "reshape",
    lambda x, shape: np.asarray(x).reshape(shape),
    (lambda g, out, x, shape: reshape(g, x.shape),),
    formula="reshape(x)",
)


def _broadcast_forward(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    result = np.empty(shape)
    result[...] = x
    return result


broadcast_to_p = Primitive(
    "broadcast_to",
    _broadcast_forward,
    (lambda g, out, x, shape: sum_to_shape(g, x.shape),),
    formula="broadcast(x)",
)


def _transpose_vjp(g: Tensor, out: Tensor, x: Tensor, axes: Any = None) -> Tensor:
    if axes is None:
        return transpose(g)
    return transpose(g, tuple(int(i) for i in np.argsort([a % x.ndim for a in axes])))


transpose_p = Primitive(
    "transpose",
    lambda x, axes=None: np.asarray(x).transpose(axes),
    (_transpose_vjp,),
    formula="xᵀ",
    symbol="ᵀ",
)


def _index_add_forward(g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    result = np.zeros(shape)
    np.add.at(result, index, g)
    return result


# Scatter-add is getitem's VJP; getitem is scatter-add's: so both differentiate forever.
index_add_p = Primitive(
    "index_add",
    _index_add_forward,
    (lambda g, out, x, index, shape: getitem_p(g, index=index),),
    formula="scatter(x)",
)
getitem_p = Primitive(
    "getitem",
    lambda x, index: x[index],
    (lambda g, out, x, index: index_add_p(g, index=index, shape=x.shape),),
    formula="x[i]",
)


# The shape helpers below are what VJPs call: on a Tensor (a recorded backward pass)
# they add a node; on a plain array (an unrecorded one) they are the numpy call alone,
# without a trip through ``apply``: the same result as the primitive's forward.
def reshape(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    if x.__class__ is Tensor:
        return reshape_p(x, shape=tuple(shape))
    return np.asarray(x).reshape(shape)


def broadcast_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    shape = tuple(shape)
    if x.__class__ is Tensor:
        if x.value.shape == shape:
            return x
        return broadcast_to_p(x, shape=shape)
    if np.shape(x) == shape:
        return x
    if (
        len(shape) == 2
        and shape[0] >= 32
        and x.__class__ is _ndarray
        and x.shape in ((1, shape[1]), (shape[1],))
    ):
        # a row repeated down a tall matrix (the VJP of a bias sum): one BLAS product
        # with a column of ones (1.1 µs at 500 × 8) instead of numpy's broadcast copy (3.5)
        return _dot(_ones_column(shape[0]), x.reshape(1, shape[1]))
    return _broadcast_forward(x, shape)


def transpose(x: Tensor, axes: tuple[int, ...] | None = None) -> Tensor:
    if x.__class__ is Tensor:
        return transpose_p(x, axes=None if axes is None else tuple(axes))
    return np.asarray(x).transpose(None if axes is None else tuple(axes))


def sum_to_shape(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a gradient of a broadcast result back to the shape of the input."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    leading = g.ndim - len(shape)
    if g.shape[leading:] == shape:  # the common case: a bias broadcast over the batch
        axis = tuple(range(leading)) if leading > 1 else 0
        # plain arrays (a backward pass that is not recorded) go straight to numpy
        return sum_(g, axis=axis) if isinstance(g, Tensor) else _sum_forward(g, axis)
    axes = tuple(range(leading)) + tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and g.shape[leading + i] != 1
    )
    result = sum_(g, axis=axes, keepdims=True) if axes else g
    return reshape(result, shape)


_ones_cache: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    ones = _ones_cache.get(n)
    if ones is None:
        ones = np.ones(n)
        ones.flags.writeable = False
        if len(_ones_cache) < 64:
            _ones_cache[n] = ones
    return ones


def _sum_array_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``sum_to_shape`` for the plain arrays of an unrecorded backward pass: a bias
    broadcast over the rows of a matrix (the usual case) is one numpy call."""
    g_shape = np.shape(g) if g.__class__ is float else g.shape
    if len(g_shape) == 2 and len(shape) == 1 and g_shape[1:] == shape:
        if g_shape[0] >= 32:  # Σ over the batch as a product with ones: BLAS, ~4× faster
            return _dot(_ones(g_shape[0]), g)
        return _add_reduce(g, 0)
    return sum_to_shape(g, shape)


register_sum_to_shape(sum_to_shape, _sum_array_to_shape)


# ----- arithmetic ---------------------------------------------------------------
def _add_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if (
        a.__class__ is _ndarray is b.__class__
        and a.ndim == 2
        and b.ndim == 1
        and a.shape[0] >= 32
        and a.shape[1] == b.shape[0]
    ):
        # a bias added to every row of a tall matrix: numpy's broadcast loop runs a short
        # inner loop per row; the rows of b made by one BLAS product with a column of ones
        # and then one contiguous add is 30% faster, with the same sums
        result = _dot(_ones_column(a.shape[0]), b.reshape(1, -1))
        result += a
        return result
    return np.add(a, b)


_ones_columns: dict[int, np.ndarray] = {}


def _ones_column(n: int) -> np.ndarray:
    column = _ones_columns.get(n)
    if column is None:
        column = _ones(n).reshape(n, 1)
        if len(_ones_columns) < 64:
            _ones_columns[n] = column
    return column


add = Primitive(
    "add",
    _add_forward,
    (lambda g, out, a, b: g, lambda g, out, a, b: g),
    formula="a + b",
    symbol="+",
)
subtract = Primitive(
    "subtract",
    np.subtract,
    (lambda g, out, a, b: g, lambda g, out, a, b: negative(g)),
    formula="a − b",
    symbol="−",
)
multiply = Primitive(
    "multiply",
    np.multiply,
    (lambda g, out, a, b: g * b, lambda g, out, a, b: g * a),
    formula="a × b",
    symbol="×",
)
divide = Primitive(
    "divide",
    np.divide,
    (lambda g, out, a, b: g / b, lambda g, out, a, b: negative(g) * out / b),
    formula="a / b",
    symbol="÷",
)
negative = Primitive("negative", np.negative, (lambda g, out, x: negative(g),), formula="−x")


def _power_vjp_base(g: Tensor, out: Tensor, a: Tensor, b: Tensor) -> Tensor:
    if b.__class__ is not Tensor or not b.requires_grad:
        exponent = _value(b)
        if exponent.ndim == 0 and exponent == 2.0:
            # a constant square, the usual case: (2g) a, two products (no a ** 1 node);
            # when recorded from a constant g (a loss's own gradient) one node, since 2g is
            # a constant. Doubling is exact, so (2g) a and g (2a) are the same numbers.
            return (2.0 * g) * a
    return g * b * a ** (b - 1.0)


def _power_vjp_exponent(g: Tensor, out: Tensor, a: Tensor, b: Tensor) -> Tensor:
    # d a^b / db = a^b log a, defined where a > 0 (taken as 0 elsewhere); log of a masked
    # copy of a, not of a constant, so that the mixed second derivative keeps its a^(b−1)
    positive = (_value(a) > 0).astype(np.float64)
    return g * out * log(a * positive + (1.0 - positive))


power = Primitive(
    "power", np.power, (_power_vjp_base, _power_vjp_exponent), formula="a ^ b", symbol="^"
)


def _matmul_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.__class__ is _ndarray is b.__class__ and a.ndim == 2 and b.ndim == 2:
        return _dot(a, b)
    return np.matmul(a, b)


def _product_with_transpose(g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """g bᵀ on arrays: for a tall g, BLAS is faster against a contiguous copy of the small
    bᵀ than against the transposed view (2.1 against 3.2 µs at 500 × 8 · 8 × 8)."""
    if g.shape[0] >= 32 and b.shape[1] > 1:
        return _dot(g, np.ascontiguousarray(b.T))
    return _dot(g, b.T)


def _matmul_vjp_left(g: Tensor, out: Tensor, a: Tensor, b: Tensor) -> Tensor:
    if a.ndim == 2 and b.ndim == 2:  # the common case first: one Python frame
        if g.__class__ is np.ndarray:
            return _product_with_transpose(g, b)
        return _nt(g, b)  # one node g bᵀ, no transpose node (see matmul_nt)
    if b.ndim == 1:
        if a.ndim == 1:
            return g * b
        return reshape(g, g.shape + (1,)) @ reshape(b, (1, b.shape[0]))
    if a.ndim == 1:
        # a acts as a (1, k) row against every matrix of a batched b: (..., 1, k) → (..., k)
        row = reshape(g, g.shape[:-1] + (1, g.shape[-1])) @ _swap(b)
        return reshape(row, row.shape[:-2] + row.shape[-1:])
    return g @ _swap(b)


def _matmul_vjp_right(g: Tensor, out: Tensor, a: Tensor, b: Tensor) -> Tensor:
    if a.ndim == 2 and b.ndim == 2:
        if g.__class__ is np.ndarray:
            return _dot(a.T, g)
        return _tn(a, g)
    if a.ndim == 1:
        if b.ndim == 1:
            return g * a
        return reshape(a, (a.shape[0], 1)) @ reshape(g, g.shape[:-1] + (1, g.shape[-1]))
    if b.ndim == 1:
        # one (k, 1) column per matrix of a batched a; the engine sums the batch away
        column = _swap(a) @ reshape(g, g.shape + (1,))
        return reshape(column, column.shape[:-1])
    return _swap(a) @ g


def _swap(x: Tensor) -> Tensor:
    if x.ndim == 2:
        return x.T  # ndarray.T when not recording, the transpose primitive when recording
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return transpose(x, axes)


matmul = Primitive(
    "matmul", _matmul_forward, (_matmul_vjp_left, _matmul_vjp_right), formula="A · B", symbol="·"
)


# A matrix product's recorded VJPs, g Bᵀ and Aᵀ g, as single nodes: the three products
# differentiate into one another (the VJPs of Aᵀ B are B Gᵀ and A G; of A Bᵀ, G B and
# Gᵀ A), so a recorded backward pass (grad of grad, Hessian-vector products) records no
# transpose nodes, and its second pass works on contiguous arrays.
def _matrices(name: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.__class__ is _ndarray is b.__class__ and a.ndim == 2 == b.ndim:
        return
    if np.ndim(a) != 2 or np.ndim(b) != 2:
        raise ValueError(f"{name} takes two matrices, got shapes {np.shape(a)} and {np.shape(b)}")


def _tn_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _matrices("matmul_tn", a, b)
    return _dot(a.T, b)


def _nt_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _matrices("matmul_nt", a, b)
    return _product_with_transpose(a, b)


matmul_tn = Primitive(
    "matmul_tn",
    _tn_forward,
    (lambda g, out, a, b: _nt(b, g), lambda g, out, a, b: _mm(a, g)),
    formula="Aᵀ · B",
    symbol="ᵀ·",
)
matmul_nt = Primitive(
    "matmul_nt",
    _nt_forward,
    (lambda g, out, a, b: _mm(g, b), lambda g, out, a, b: _tn(g, a)),
    formula="A · Bᵀ",
    symbol="·ᵀ",
)


# ----- elementwise functions ----------------------------------------------------
exp = Primitive("exp", np.exp, (lambda g, out, x: g * out,), formula="exp(x)")
log = Primitive("log", np.log, (lambda g, out, x: g / x,), formula="log(x)")
sin = Primitive("sin", np.sin, (lambda g, out, x: g * cos(x),), formula="sin(x)")
cos = Primitive("cos", np.cos, (lambda g, out, x: negative(g * sin(x)),), formula="cos(x)")


def _tanh_grad(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """g (1 − out²) on arrays, in one fresh array: the same three operations as the
    expression without its two temporaries (20% faster from a few hundred numbers on)."""
    result = out * out
    np.subtract(1.0, result, out=result)
    np.multiply(g, result, out=result)
    return result


def _tanh_grad_forward(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    if g.__class__ is _ndarray and out.size >= _IN_PLACE and g.shape == out.shape:
        return _tanh_grad(g, out)
    return g * (1.0 - out * out)


def _minus_twice_product(a: Any, b: Any, c: Any) -> Any:
    """a · b · c · (−2), left to right: tanh_grad's VJP with respect to t. On arrays of the
    same shape the last two products go into the first's result (two arrays fewer)."""
    if a.__class__ is _ndarray is b.__class__ is c.__class__ and a.shape == b.shape == c.shape:
        result = a * b
        result *= c
        result *= -2.0
        return result
    return a * b * c * -2.0


def _tanh_vjp(g: Tensor, out: Tensor, x: Tensor) -> Tensor:
    if g.__class__ is Tensor:  # recorded: one node with its own derivatives
        return _tanh_grad_op(g, out)
    return _tanh_grad_forward(g, out)


_IN_PLACE = 256  # from this many numbers, VJPs on arrays work in their own result
tanh = Primitive("tanh", np.tanh, (_tanh_vjp,), formula="tanh(x)")
# tanh's VJP g (1 − t²), t = tanh(x), as one node when a backward pass is recorded (grad of
# grad, Hessian-vector products): three nodes and a constant fewer per layer, and its own
# VJPs, G (1 − t²) with respect to g and −2 G g t with respect to t
tanh_grad = Primitive(
    "tanh_grad",
    _tanh_grad_forward,
    (
        lambda G, r, g, out: _tanh_grad_op(G, out),
        lambda G, r, g, out: _minus_twice_product(G, g, out),
    ),
    formula="g (1 − t²)",
)

# the recorded VJPs above call these (one frame each, like a Tensor operator, instead of
# the generic ``apply`` with its argument packing)
_mm = binary_operator(matmul)
_tn = binary_operator(matmul_tn)
_nt = binary_operator(matmul_nt)
_tanh_grad_op = binary_operator(tanh_grad)


def _sigmoid_forward(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^-x) written so that neither branch overflows and the left tail keeps
    # its relative precision ((1 + tanh(x/2)) / 2 rounds σ(−40) to 0, so log σ = −inf)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


sigmoid = Primitive(
    "sigmoid",
    _sigmoid_forward,
    (lambda g, out, x: g * out * (1.0 - out),),
    formula="σ(x) = 1 / (1 + e^−x)",
    symbol="σ",
)
# ζ(x) = log(1 + e^x); its derivative is σ(x) (chapter, softplus units)
softplus = Primitive(
    "softplus",
    lambda x: np.logaddexp(0.0, x),
    (lambda g, out, x: g * sigmoid(x),),
    formula="ζ(x) = log(1 + e^x)",
    symbol="ζ",
)
relu = Primitive(
    "relu",
    lambda x: np.maximum(x, 0.0),
    (lambda g, out, x: g * (_value(x) > 0),),
    formula="max(0, x)",
)
absolute = Primitive("abs", np.abs, (lambda g, out, x: g * np.sign(_value(x)),), formula="|x|")
hard_tanh = Primitive(
    "hard_tanh",
    lambda x: np.clip(x, -1.0, 1.0),
    (lambda g, out, x: g * (np.abs(_value(x)) < 1.0),),
    formula="max(−1, min(1, x))",
)


# ----- reductions ---------------------------------------------------------------
def _max_vjp(g: Tensor, out: Tensor, x: Tensor, axis: int) -> Tensor:
    # the gradient goes to one winner per group (the first, if several tie)
    winners = np.argmax(_value(x), axis=axis)
    mask = np.zeros_like(_value(x))
    np.put_along_axis(mask, np.expand_dims(winners, axis), 1.0, axis=axis)
    return broadcast_to(_expand(g, axis, x.ndim), x.shape) * mask


def _expand(g: Tensor, axis: int, ndim: int) -> Tensor:
    axis = axis % ndim
    shape = list(g.shape)
    shape.insert(axis, 1)
    return reshape(g, tuple(shape))


max_ = Primitive("max", lambda x, axis: np.max(x, axis=axis), (_max_vjp,), formula="max_j x_j")


def _logsumexp_forward(x: np.ndarray, axis: int) -> np.ndarray:
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    return np.squeeze(peak, axis=axis) + np.log(np.sum(np.exp(x - peak), axis=axis))


def _logsumexp_vjp(g: Tensor, out: Tensor, x: Tensor, axis: int) -> Tensor:
    # d/dx log Σ exp(x) = softmax(x)
    return _expand(g, axis, x.ndim) * exp(x - _expand(out, axis, x.ndim))


logsumexp = Primitive(
    "logsumexp",
    _logsumexp_forward,
    (_logsumexp_vjp,),
    formula="log Σ_j exp(x_j)",
)


# ----- fused layer and loss primitives ----------------------------------------------
# One node for a whole step of the chapter's algorithms: the affine step of a layer
# and the two classification losses. Their VJPs are the textbook formulas, written
# with engine ops so they can be differentiated again.


def _affine_forward(h: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    if h.ndim != 2 or weights.ndim != 2 or bias.shape != weights.shape[1:]:
        raise ValueError(
            f"affine needs h (n, fan_in), W (fan_in, fan_out), b (fan_out,); got "
            f"{h.shape}, {weights.shape}, {bias.shape}"
        )
    result = h @ weights
    result += bias
    return result


affine = Primitive(
    "affine",
    _affine_forward,
    (
        lambda g, out, h, weights, bias: g @ weights.T,  # g ← g Wᵀ (Alg. 6.2)
        lambda g, out, h, weights, bias: h.T @ g,  # ∇W J = hᵀ g
        lambda g, out, h, weights, bias: sum_(g, axis=0),  # ∇b J = Σ g
    ),
    formula="a = h W + b",
    symbol="a",
)


def _rows(z: Tensor | np.ndarray) -> float:
    # the minibatch size; a scalar logit (the unit-level graph) is one example
    return float(z.shape[0]) if z.ndim else 1.0


def _bernoulli_forward(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Eq. 6.3 as ζ(z) − y z: the mean over the rows of the minibatch
    return np.add.reduce(np.logaddexp(0.0, z) - y * z, axis=None) / _rows(z)


bernoulli_nll = Primitive(
    "bernoulli_nll",
    _bernoulli_forward,
    (
        lambda g, out, z, y: (sigmoid(z) - y) * (g / _rows(z)),  # dJ/dz = σ(z) − y
        lambda g, out, z, y: z * (-g / _rows(z)),
    ),
    formula="J = mean(ζ(z) − y z)",
    symbol="J",
)


def _softmax_nll_forward(z: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    lse = _logsumexp_forward(z, axis=1)
    return (np.add.reduce(lse) - np.vdot(onehot, z)) / z.shape[0]


def _softmax_nll_vjp(g: Tensor, out: Tensor, z: Tensor, onehot: Tensor) -> Tensor:
    # Eq. 6.5: dJ/dz = p − e_y, with p = softmax(z)
    probabilities = exp(z - _expand(logsumexp(z, axis=1), 1, 2))
    return (probabilities - onehot) * (g / z.shape[0])


softmax_nll = Primitive(
    "softmax_nll",
    _softmax_nll_forward,
    (_softmax_nll_vjp, lambda g, out, z, onehot: z * (-g / z.shape[0])),
    formula="J = mean(log Σ exp z − z_y)",
    symbol="J",
)


# ----- scalar primitives of the unit-level graph (one node per scalar, Fig. 6.8) ----
@cache
def unit_sum(fan_in: int) -> Primitive:
    """a = b + Σ_i w_i h_i for one unit, over scalars: inputs (b, w_1, h_1, w_2, h_2, ...)."""

    def forward(bias: np.ndarray, *pairs: np.ndarray) -> np.ndarray:
        total = np.array(bias, dtype=np.float64)
        for i in range(0, len(pairs), 2):
            total = total + pairs[i] * pairs[i + 1]
        return total

    def weight_vjp(i: int) -> Vjp:
        return lambda g, out, bias, *pairs: g * pairs[2 * i + 1]  # ∂a/∂w_i = h_i

    def input_vjp(i: int) -> Vjp:
        return lambda g, out, bias, *pairs: g * pairs[2 * i]  # ∂a/∂h_i = w_i

    vjps: list[Vjp] = [lambda g, out, bias, *pairs: g]  # ∂a/∂b = 1
    for i in range(fan_in):
        vjps += [weight_vjp(i), input_vjp(i)]
    return Primitive("unit_sum", forward, tuple(vjps), formula="a = b + Σ w h", symbol="Σ")


def _positive(x: Tensor | np.ndarray) -> np.ndarray:
    return (_value(x) > 0).astype(np.float64)


# h = max(0, a) + α min(0, a) with a fixed α (leaky ReLU) or a learned one (PReLU):
# one node per unit, and for PReLU an arc from its slope α with ∂h/∂α = min(0, a)
leaky_relu = Primitive(
    "leaky_relu",
    lambda x, slope: np.where(x > 0, x, slope * x),
    (lambda g, out, x, slope: g * (_positive(x) + slope * (1.0 - _positive(x))),),
    formula="max(0, x) + α min(0, x)",
)
prelu = Primitive(
    "prelu",
    lambda x, slope: np.where(x > 0, x, slope * x),
    (
        lambda g, out, x, slope: g * (slope * (1.0 - _positive(x)) + _positive(x)),
        lambda g, out, x, slope: g * (x * (1.0 - _positive(x))),
    ),
    formula="max(0, x) + α min(0, x), α learned",
)


@cache
def unit_max(pieces: int) -> Primitive:
    """h = max(a_1, …, a_k) over one maxout unit's pieces: the gradient goes to the
    winning piece only (the first, if several tie, as in the layer-level max)."""

    def winner(parts: tuple[Any, ...]) -> int:
        return int(np.argmax([float(_value(part)) for part in parts]))

    def pick(i: int) -> Vjp:
        return lambda g, out, *parts: g * float(winner(parts) == i)

    return Primitive(
        "unit_max",
        lambda *parts: np.asarray(max(float(part) for part in parts)),
        tuple(pick(i) for i in range(pieces)),
        formula="max_j a_j",
    )


@cache
def rbf_sum(fan_in: int) -> Primitive:
    """a = b − Σ_i (h_i − w_i)² / σ² for one RBF unit over scalars: inputs
    (b, σ, w_1, h_1, w_2, h_2, …); the unit's output is then exp(a)."""

    def forward(bias: np.ndarray, width: np.ndarray, *pairs: np.ndarray) -> np.ndarray:
        squared = sum((pairs[i + 1] - pairs[i]) ** 2 for i in range(0, len(pairs), 2))
        return np.asarray(bias - squared / (width * width), dtype=np.float64)

    def width_vjp(g, out, bias, width, *pairs):  # ∂a/∂σ = 2 Σ (h − w)² / σ³
        squared = sum(
            (pairs[i + 1] - pairs[i]) * (pairs[i + 1] - pairs[i]) for i in range(0, len(pairs), 2)
        )
        return g * (2.0 * squared / (width * width * width))

    def template_vjp(i: int) -> Vjp:  # ∂a/∂w_i = 2 (h_i − w_i) / σ²
        return lambda g, out, bias, width, *pairs: (
            g * (2.0 * (pairs[2 * i + 1] - pairs[2 * i]) / (width * width))
        )

    def input_vjp(i: int) -> Vjp:  # ∂a/∂h_i = −2 (h_i − w_i) / σ²
        return lambda g, out, bias, width, *pairs: (
            g * (-2.0 * (pairs[2 * i + 1] - pairs[2 * i]) / (width * width))
        )

    vjps: list[Vjp] = [lambda g, out, bias, width, *pairs: g, width_vjp]  # ∂a/∂b = 1
    for i in range(fan_in):
        vjps += [template_vjp(i), input_vjp(i)]
    return Primitive("rbf_sum", forward, tuple(vjps), formula="a = b − Σ (h − w)² / σ²")


@cache
def scalar_penalty(count: int) -> Primitive:
    """Ω = λ₂/2 Σ w² + λ₁ Σ |w| over ``count`` scalar weights (params l2, l1); the arc
    from each weight carries ∂Ω/∂w = λ₂ w + λ₁ sign(w)."""

    def forward(*weights: np.ndarray, l2: float, l1: float) -> np.ndarray:
        values = np.array(weights, dtype=np.float64)
        return np.asarray(0.5 * l2 * np.dot(values, values) + l1 * np.abs(values).sum())

    def vjp(i: int) -> Vjp:
        return lambda g, out, *weights, l2, l1: (
            g * (l2 * weights[i] + l1 * np.sign(_value(weights[i])))
        )

    return Primitive(
        "penalty", forward, tuple(vjp(i) for i in range(count)), formula="Ω", symbol="Ω"
    )


@cache
def stack(count: int) -> Primitive:
    """Gather ``count`` scalars into a vector (so a softmax can see all its inputs)."""

    def pick(i: int) -> Vjp:
        return lambda g, out, *parts: getitem_p(g, index=i)

    vjps = tuple(pick(i) for i in range(count))
    return Primitive("stack", lambda *parts: np.stack(parts), vjps, formula="[x₁, …, x_k]")


# ----- Tensor methods and operators ----------------------------------------------
_total = unary_operator(
    sum_, lambda x: _add_reduce(x, None), axis=None, keepdims=False
)  # x.sum(): _sum_forward's axis=None path, without its keywords


def _sum_method(self: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    if axis is None and not keepdims:
        return _total(self)
    if isinstance(axis, list):
        axis = tuple(axis)
    return sum_(self, axis=axis, keepdims=keepdims)


def _mean_method(self: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    if axis is None:
        total = _total(self) if not keepdims else sum_(self, axis=None, keepdims=True)
        return total / float(self.value.size)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    count = int(np.prod([self.shape[a] for a in axes]))
    return _sum_method(self, axis, keepdims) / float(count)


def _reshape_method(self: Tensor, *shape: Any) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    # let numpy resolve -1 and validate the shape, with its own error message
    try:
        target = np.reshape(self.value, shape).shape
    except ValueError as error:
        raise ValueError(
            f"cannot reshape a tensor of shape {self.shape} to {shape}: {error}"
        ) from None
    return reshape(self, target)


def _transpose_method(self: Tensor, *axes: Any) -> Tensor:
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return transpose(self, axes or None)


def _getitem(self: Tensor, index: Any) -> Tensor:
    if isinstance(index, Tensor):
        raise ValueError("index a Tensor with integers or integer arrays, not with a Tensor")
    if isinstance(index, list):
        index = np.asarray(index)
    return getitem_p(self, index=index)


_methods = {
    "__add__": binary_operator(add),
    "__radd__": binary_operator(add, reflected=True),
    "__sub__": binary_operator(subtract),
    "__rsub__": binary_operator(subtract, reflected=True),
    "__mul__": binary_operator(multiply),
    "__rmul__": binary_operator(multiply, reflected=True),
    "__truediv__": binary_operator(divide),
    "__rtruediv__": binary_operator(divide, reflected=True),
    "__matmul__": binary_operator(matmul),
    "__rmatmul__": binary_operator(matmul, reflected=True),
    "__pow__": binary_operator(power),
    "__rpow__": binary_operator(power, reflected=True),
    "__neg__": unary_operator(negative),
    "__getitem__": _getitem,
    "sum": _sum_method,
    "mean": _mean_method,
    "reshape": _reshape_method,
    "transpose": _transpose_method,
    "T": property(unary_operator(transpose_p, axes=None)),
    "exp": unary_operator(exp),
    "log": unary_operator(log),
    "tanh": unary_operator(tanh),
}
for _name, _method in _methods.items():
    setattr(Tensor, _name, _method)


def maximum_over(x: Tensor, axis: int) -> Tensor:
    return max_(x, axis=axis)


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        sum_,
        reshape_p,
        broadcast_to_p,
        transpose_p,
        index_add_p,
        getitem_p,
        add,
        subtract,
        multiply,
        divide,
        negative,
        power,
        matmul,
        matmul_tn,
        matmul_nt,
        exp,
        log,
        sin,
        cos,
        tanh,
        tanh_grad,
        sigmoid,
        softplus,
        relu,
        absolute,
        hard_tanh,
        max_,
        logsumexp,
        affine,
        bernoulli_nll,
        softmax_nll,
        leaky_relu,
        prelu,
    )
}


# ----- backward plans: graphs of these primitives may have their walk compiled --------
# (not indexing: its index may be an array, which a plan's check could not compare)
plans.allow(p for p in PRIMITIVES.values() if p not in (getitem_p, index_add_p))
plans.fold_sum(sum_, unary_operator(sum_, lambda x: _sum_forward(x, 0), axis=0))
if plans.ENABLED:
    register_planner(plans.gradients)


def _one_minus_square(t: np.ndarray) -> np.ndarray:
    """1 − t², in one fresh array (the factor tanh's VJPs share)."""
    result = t * t
    if result.__class__ is not _ndarray:  # a numpy scalar (a 0-d tanh)
        return 1.0 - result
    np.subtract(1.0, result, out=result)
    return result


def _tanh_template(out: tuple[int, ...], x: tuple[int, ...]) -> tuple[str]:
    # ⟦…⟧: a factor a plan computes once and shares (tanh_grad's VJP needs the same one)
    return ("{g} * ⟦ONE_MINUS_SQUARE({out})⟧",)


def _matmul_templates(out: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...]) -> Any:
    if len(a) != 2 or len(b) != 2:
        return None
    if out[0] >= 32 and b[1] > 1:  # as _product_with_transpose chooses
        left = "DOT({g}, CONTIGUOUS({1}.T))"
    else:
        left = "DOT({g}, {1}.T)"
    return (left, "DOT({0}.T, {g})")


def _sum_templates(
    out: tuple[int, ...], x: tuple[int, ...], axis: Any = None, keepdims: bool = False
) -> Any:
    # what _sum_vjp returns on arrays, for a total or a sum over leading axes: the
    # gradient broadcast back to x's shape (BT: broadcast_to's array path)
    if keepdims:
        return None
    if axis is not None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = sorted(a % len(x) for a in axes)
        if axes != list(range(len(axes))):
            return None
    if len(x) == 2 and x[0] >= 32 and out in ((x[1],), (1, x[1])):
        # broadcast_to's BLAS path for a row down a tall matrix (out: 1-D, so an array)
        return (f"DOT(ONES_COLUMN({x[0]}), {{g}}.reshape(1, {x[1]}))",)
    return (f"BT({{g}}, {tuple(x)!r})",)


plans.inline(
    sum_,
    _sum_templates,
    with_params=True,
    BT=broadcast_to,
    DOT=np.dot,
    ONES_COLUMN=_ones_column,
)
plans.inline(add, lambda out, a, b: ("{g}", "{g}"), recorded=True)
plans.inline(subtract, lambda out, a, b: ("{g}", "-{g}"), recorded=True)
plans.inline(multiply, lambda out, a, b: ("{g} * {1}", "{g} * {0}"), recorded=True)
plans.inline(divide, lambda out, a, b: ("{g} / {1}", "-{g} * {out} / {1}"), recorded=True)
plans.inline(negative, lambda out, x: ("-{g}",), recorded=True)
plans.inline(exp, lambda out, x: ("{g} * {out}",), recorded=True)
plans.inline(
    tanh,
    _tanh_template,
    recorded=lambda out, x: ("TANH_GRAD_OP({g}, {out})",),  # what _tanh_vjp records
    ONE_MINUS_SQUARE=_one_minus_square,
    TANH_GRAD_OP=_tanh_grad_op,
)
plans.inline(
    tanh_grad,
    lambda out, g, t: ("{g} * ⟦ONE_MINUS_SQUARE({1})⟧", "MINUS_TWICE_PRODUCT({g}, {0}, {1})"),
    ONE_MINUS_SQUARE=_one_minus_square,
    MINUS_TWICE_PRODUCT=_minus_twice_product,
)
plans.inline(
    matmul,
    _matmul_templates,
    # what the VJPs record for two matrices: one matmul_nt and one matmul_tn node
    recorded=lambda out, a, b: (
        ("NT_OP({g}, {1})", "TN_OP({0}, {g})") if len(a) == 2 and len(b) == 2 else None
    ),
    DOT=np.dot,
    CONTIGUOUS=np.ascontiguousarray,
    NT_OP=_nt,
    TN_OP=_tn,
)
plans.inline(
    matmul_tn,
    lambda out, a, b: ("NT({1}, {g})", "DOT({0}, {g})"),
    NT=_product_with_transpose,  # _nt_forward without its checks: the plan checked the shapes
    DOT=np.dot,
)
plans.inline(matmul_nt, lambda out, a, b: ("DOT({g}, {1})", "DOT({g}.T, {0})"), DOT=np.dot)
