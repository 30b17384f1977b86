"""Reverse-mode automatic differentiation on numpy arrays.

A ``Tensor`` wraps a float64 ndarray. Every operation on tensors is a *primitive*
declared once (see ``engine.primitives``): a numpy forward and one vector-Jacobian
product (VJP) per input, the VJPs written with tensor operations so that the
backward pass can itself be recorded and differentiated (section 6.4.5).

Back-propagation follows Algorithm 6.4 of the chapter: visit the nodes in reverse
topological order and, for each node, add up the contributions of all its children.
The topological order is built iteratively, so deep graphs never hit Python's
recursion limit.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

import numpy as np

_ids = itertools.count()


class _GradMode(threading.local):
    enabled: bool = True


_grad_mode = _GradMode()


@contextmanager
def no_grad():
    """Run operations without recording them (no graph, no gradients)."""
    previous = _grad_mode.enabled
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


@contextmanager
def enable_grad():
    """Record operations even inside ``no_grad`` (used for ``create_graph``)."""
    previous = _grad_mode.enabled
    _grad_mode.enabled = True
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


Vjp = Callable[..., "Tensor"]


@dataclass(frozen=True)
class Primitive:
    """One differentiable operation: a numpy forward and one VJP per input.

    ``forward(*values, **params)`` returns an ndarray. ``vjps[i](g, out, *inputs,
    **params)`` returns the gradient with respect to input ``i`` as a Tensor, given
    the gradient ``g`` of the output; it may return a tensor of the broadcast shape,
    the engine sums it back to the input's shape (one place for every edge).
    ``None`` marks an input that is not differentiable (e.g. integer indices).
    """

    name: str
    forward: Callable[..., np.ndarray]
    vjps: tuple[Vjp | None, ...]
    formula: str = ""
    symbol: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _as_array(value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    return array


class Tensor:
    """A node of the computational graph holding a float64 numpy value."""

    __slots__ = ("value", "grad", "requires_grad", "name", "op", "parents", "params", "id")
    __array_priority__ = 1000  # so that ndarray <op> Tensor defers to Tensor

    def __init__(self, value: Any, requires_grad: bool = False, name: str | None = None):
        if isinstance(value, Tensor):
            value = value.value
        self.value: np.ndarray = _as_array(value)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op: Primitive | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.params: dict[str, Any] = {}
        self.id = next(_ids)

    # ----- plain attributes -------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def size(self) -> int:
        return self.value.size

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    def item(self) -> float:
        return float(self.value.item())

    def numpy(self) -> np.ndarray:
        return self.value

    def detach(self) -> Tensor:
        return _constant(self.value)

    def named(self, name: str) -> Tensor:
        """Give this node a name (shown by ``trace``) and return it."""
        self.name = name
        return self

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        op = f", op={self.op.name}" if self.op is not None else ""
        return f"Tensor({self.value!r}{label}{op})"

    def __len__(self) -> int:
        return len(self.value)

    __hash__ = object.__hash__

    # ----- operators (defined in engine.primitives, bound at import) --------
    def backward(self, gradient: Any = None) -> None:
        """Back-propagate from this node; leaves accumulate ``.grad`` as in torch,
        every other node of the graph keeps its own gradient for ``trace``."""
        backward(self, gradient)


_new_tensor = object.__new__
_no_parents: tuple = ()
_no_params: dict = {}


def _result(value: np.ndarray, op: Primitive, parents: tuple, params: dict) -> Tensor:
    tensor = _new_tensor(Tensor)
    tensor.value = value
    tensor.grad = None
    tensor.name = None
    tensor.id = next(_ids)
    tensor.requires_grad = True
    tensor.op = op
    tensor.parents = parents
    tensor.params = params
    return tensor


def _constant(value: np.ndarray) -> Tensor:
    tensor = _new_tensor(Tensor)
    tensor.value = value
    tensor.grad = None
    tensor.name = None
    tensor.id = next(_ids)
    tensor.requires_grad = False
    tensor.op = None
    tensor.parents = _no_parents
    tensor.params = _no_params
    return tensor


def as_tensor(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return _constant(_as_array(value))


def apply(prim: Primitive, *inputs: Any, **params: Any) -> Tensor:
    """Run a primitive's forward and, when recording, link the result to its inputs.

    With no Tensor among the inputs the primitive is plain numpy and returns an
    array: this is how VJPs run during a backward pass that is not recorded.
    """
    for x in inputs:
        if x.__class__ is Tensor:
            break
    else:
        return prim.forward(*inputs, **params)
    tensors = tuple([x if x.__class__ is Tensor else as_tensor(x) for x in inputs])
    try:
        value = prim.forward(*[t.value for t in tensors], **params)
    except ValueError as error:
        shapes = " and ".join(str(t.shape) for t in tensors)
        raise ValueError(f"{prim.name}: cannot apply to shapes {shapes}: {error}") from None
    if _grad_mode.enabled:
        for t in tensors:
            if t.requires_grad:
                return _result(value, prim, tensors, params)
    return _constant(value)


Primitive.__call__ = apply  # type: ignore[method-assign]  (no extra frame per op)


# ----- broadcast reduction: the one place it happens ---------------------------
_sum_to_shape: Callable[[Tensor, tuple[int, ...]], Tensor]  # set by engine.primitives


def register_sum_to_shape(function: Callable[[Tensor, tuple[int, ...]], Tensor]) -> None:
    global _sum_to_shape
    _sum_to_shape = function


def topological_order(root: Tensor) -> list[Tensor]:
    """Nodes that need a gradient, parents before children, found without recursion."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node.id in visited:
            continue
        visited.add(node.id)
        stack.append((node, True))
        for parent in node.parents:
            if parent.requires_grad and parent.id not in visited:
                stack.append((parent, False))
    return order


def _backpropagate(
    root: Tensor, seed: Any, create_graph: bool
) -> tuple[list[Tensor], dict[int, Any]]:
    """Algorithm 6.4: gradient of ``root`` with respect to every node it depends on.

    A node is always created after its parents, so ids increase in forward order;
    taking the pending node with the largest id visits children before parents
    (a reverse topological order) in the same pass that finds the graph.
    With ``create_graph`` the VJPs run on Tensors and are recorded; otherwise they
    run on the nodes' plain arrays, which is the same code without the bookkeeping.
    """
    grads: dict[int, Any] = {root.id: seed}
    heap: list[tuple[int, Tensor]] = [(-root.id, root)]
    visited: list[Tensor] = []
    with enable_grad() if create_graph else no_grad():
        while heap:
            node = heappop(heap)[1]
            visited.append(node)
            if node.op is None:
                continue
            g = grads[node.id]
            parents = node.parents
            if create_graph:
                out, operands = node, parents
            else:
                out, operands = node.value, [p.value for p in parents]
            vjps = node.op.vjps
            for index, parent in enumerate(parents):
                if not parent.requires_grad:
                    continue
                vjp = vjps[index]
                if vjp is None:
                    continue
                contribution = vjp(g, out, *operands, **node.params)
                if np.shape(contribution) != parent.value.shape:
                    contribution = _sum_to_shape(contribution, parent.value.shape)
                previous = grads.get(parent.id)
                if previous is None:
                    grads[parent.id] = contribution
                    heappush(heap, (-parent.id, parent))
                else:
                    grads[parent.id] = previous + contribution
    return visited, grads


def _seed(output: Tensor, gradient: Any, create_graph: bool) -> Any:
    if gradient is None:
        if output.size != 1:
            raise ValueError(
                f"backward/grad of a non-scalar output of shape {output.shape} needs an explicit "
                "output gradient"
            )
        seed = np.ones(np.shape(output.value))
    else:
        seed = gradient.value if isinstance(gradient, Tensor) else _as_array(gradient)
        if seed.shape != output.shape:
            raise ValueError(f"output gradient has shape {seed.shape}, output has {output.shape}")
    return as_tensor(seed) if create_graph else seed


def _array(gradient: Any) -> np.ndarray:
    # a fresh, writable array the caller owns (VJPs may return shared or broadcast views)
    return np.array(gradient.value if isinstance(gradient, Tensor) else gradient, dtype=np.float64)


def backward(output: Tensor, gradient: Any = None) -> None:
    if not output.requires_grad:
        raise ValueError("backward() called on a tensor that does not require a gradient")
    order, grads = _backpropagate(output, _seed(output, gradient, False), create_graph=False)
    for node in order:
        g = grads.get(node.id)
        if g is None:
            continue
        if node.op is None and node.grad is not None:
            node.grad = node.grad + g
        else:
            node.grad = _array(g)


def grad(
    output: Tensor,
    inputs: Tensor | Sequence[Tensor],
    create_graph: bool = False,
    grad_output: Any = None,
) -> list[Tensor]:
    """Gradients of ``output`` with respect to ``inputs``, like ``torch.autograd.grad``.

    With ``create_graph=True`` the returned tensors are themselves recorded, so they
    can be differentiated again (grad of grad, Hessian-vector products).
    An input that ``output`` does not depend on gets a zero gradient.
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = list(inputs)
    for t in inputs:
        if not isinstance(t, Tensor):
            raise ValueError(f"grad() inputs must be Tensors, got {type(t).__name__}")
    if not output.requires_grad:
        return [_constant(np.zeros_like(t.value)) for t in inputs]
    seed = _seed(output, grad_output, create_graph)
    _, grads = _backpropagate(output, seed, create_graph=create_graph)
    result = []
    for t in inputs:
        g = grads.get(t.id)
        if g is None:
            result.append(_constant(np.zeros_like(t.value)))
        elif create_graph:
            result.append(g if isinstance(g, Tensor) else as_tensor(g))
        else:
            result.append(_constant(_array(g)))
    return result


def trace(output: Tensor) -> list[dict[str, Any]]:
    """The computational graph behind ``output`` in forward order, ready to serialise.

    Every node (constants included) appears once with its id, name, op, parent ids,
    shape, value and gradient (``None`` until ``backward`` has run).
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node.id in visited:
            continue
        visited.add(node.id)
        stack.append((node, True))
        for parent in reversed(node.parents):
            if parent.id not in visited:
                stack.append((parent, False))
    return [
        {
            "id": node.id,
            "name": node.name,
            "op": node.op.name
            if node.op is not None
            else ("parameter" if node.requires_grad else "constant"),
            "parents": [p.id for p in node.parents],
            "params": {k: _plain(v) for k, v in node.params.items()},
            "shape": list(node.shape),
            "value": node.value,
            "grad": node.grad,
            "requires_grad": node.requires_grad,
        }
        for node in order
    ]


def _plain(value: Any) -> Any:
    """Make a primitive's parameters JSON-safe (index tuples, slices, arrays)."""
    if isinstance(value, slice):
        return {"slice": [value.start, value.stop, value.step]}
    if value is Ellipsis:
        return "..."
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def parameters_of(tensors: Iterable[Tensor]) -> list[Tensor]:
    return [t for t in tensors if t.requires_grad and t.is_leaf]
