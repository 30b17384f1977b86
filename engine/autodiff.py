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
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

import numpy as np

from engine.allocator import keep_freed_memory

keep_freed_memory()  # fresh arrays every step: reuse freed memory (see engine.allocator)
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
_FLOAT64 = np.dtype(np.float64)


@dataclass(frozen=True, eq=False)  # one object per operation: compared and hashed by identity
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
    if value.__class__ is np.ndarray and value.dtype is _FLOAT64:
        return value  # what np.asarray would return, without its argument parsing
    return np.asarray(value, dtype=np.float64)


class Tensor:
    """A node of the computational graph holding a float64 numpy value."""

    __slots__ = ("value", "grad", "requires_grad", "name", "op", "parents", "params", "id")
    __array_priority__ = 1000  # so that ndarray <op> Tensor defers to Tensor
    # ... and at once: numpy checks this first and hands `ndarray @ Tensor` (the first layer
    # of every network) straight to Tensor.__rmatmul__ (0.6 µs less than the priority check)
    __array_ufunc__ = None

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


_scalar_arrays: dict[Any, np.ndarray] = {}


def _operand(value: Any) -> Tensor:
    """A non-Tensor operand of a Tensor operator as a constant node. Python numbers
    (``x ** 2``, ``s / n``, ``1.0 - h``) recur every step: their 0-d arrays are made
    once and kept read-only (a few hundred at most), since ``np.asarray`` of a number
    costs more than the rest of the constant. A float zero and NaN are left out (0.0 and
    −0.0 are one dictionary key, NaN is unequal to itself); an int zero is +0.0, which is
    what ``sum()`` of Tensors starts from."""
    cls = value.__class__
    if (cls is float and value and value == value) or cls is int:
        array = _scalar_arrays.get(value)
        if array is None:
            array = np.asarray(value, dtype=np.float64)
            array.flags.writeable = False
            if len(_scalar_arrays) < 256:
                _scalar_arrays[value] = array
        return _constant(array)
    return _constant(_as_array(value))


def as_tensor(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return _constant(_as_array(value))


def _operand_error(prim: Primitive, inputs: Sequence[Any], error: ValueError) -> ValueError:
    shapes = " and ".join(str(np.shape(_value_of(x))) for x in inputs)
    return ValueError(f"{prim.name}: cannot apply to shapes {shapes}: {error}")


def _value_of(x: Any) -> Any:
    return x.value if x.__class__ is Tensor else x


def apply(prim: Primitive, *inputs: Any, **params: Any) -> Any:
    """Run a primitive's forward and, when recording, link the result to its inputs.

    With no Tensor among the inputs the primitive is plain numpy and returns an
    array: this is how VJPs run during a backward pass that is not recorded.
    One and two inputs (nearly every call) take a straight path with the node record
    written inline: the per-node cost is most of a small network's step.
    """
    forward = prim.forward
    count = len(inputs)
    if count == 1:
        (x,) = inputs
        if x.__class__ is not Tensor:
            return forward(x, **params)
        try:
            value = forward(x.value, **params)
        except ValueError as error:
            raise _operand_error(prim, inputs, error) from None
        recording = x.requires_grad and _grad_mode.enabled
    elif count == 2:
        a, b = inputs
        if a.__class__ is Tensor:
            if b.__class__ is not Tensor:
                b = _operand(b)
                inputs = (a, b)
        elif b.__class__ is Tensor:
            a = _operand(a)
            inputs = (a, b)
        else:
            return forward(a, b, **params)
        try:
            value = forward(a.value, b.value, **params)
        except ValueError as error:
            raise _operand_error(prim, inputs, error) from None
        recording = (a.requires_grad or b.requires_grad) and _grad_mode.enabled
    else:
        for x in inputs:
            if x.__class__ is Tensor:
                break
        else:
            return forward(*inputs, **params)
        inputs = tuple([x if x.__class__ is Tensor else as_tensor(x) for x in inputs])
        try:
            value = forward(*[t.value for t in inputs], **params)
        except ValueError as error:
            raise _operand_error(prim, inputs, error) from None
        recording = False
        if _grad_mode.enabled:
            for t in inputs:
                if t.requires_grad:
                    recording = True
                    break
    tensor = _new_tensor(Tensor)
    tensor.value = value
    tensor.grad = None
    tensor.name = None
    tensor.id = next(_ids)
    if recording:
        tensor.requires_grad = True
        tensor.op = prim
        tensor.parents = inputs
        tensor.params = params
    else:
        tensor.requires_grad = False
        tensor.op = None
        tensor.parents = _no_parents
        tensor.params = _no_params
    return tensor


def unary_operator(
    prim: Primitive, forward: Callable[[Any], Any] | None = None, **fixed: Any
) -> Callable[[Any], Any]:
    """``prim`` as a one-argument function (a Tensor method such as ``-x`` or ``x.T``, a
    unit such as ``F.tanh``), the same as ``prim(x, **fixed)`` without the generic
    call's argument packing. ``forward``: the primitive's forward with ``fixed`` already
    applied, when a direct function is cheaper than passing them each time."""
    fixed_params = dict(fixed)  # one dict for every node this operator makes: never written
    if forward is None:
        forward = prim.forward
        if fixed:
            plain = forward

            def forward(x: Any) -> Any:
                return plain(x, **fixed)

    def operator(x: Any) -> Any:
        if x.__class__ is not Tensor:
            return forward(x)
        value = forward(x.value)
        tensor = _new_tensor(Tensor)
        tensor.value = value
        tensor.grad = None
        tensor.name = None
        tensor.id = next(_ids)
        if x.requires_grad and _grad_mode.enabled:
            tensor.requires_grad = True
            tensor.op = prim
            tensor.parents = (x,)
            tensor.params = fixed_params
        else:
            tensor.requires_grad = False
            tensor.op = None
            tensor.parents = _no_parents
            tensor.params = _no_params
        return tensor

    operator.__name__ = prim.name
    return operator


def binary_operator(prim: Primitive, reflected: bool = False) -> Callable[[Any, Any], Any]:
    """``prim`` as a Tensor operator method (``a + b``; ``reflected`` for ``b + a`` via
    ``__radd__``), the same as ``prim(a, b)`` in one frame instead of three."""
    forward = prim.forward

    def operator(a: Any, b: Any) -> Any:
        if reflected:
            a, b = b, a
        if a.__class__ is Tensor:
            if b.__class__ is not Tensor:
                b = _operand(b)
        elif b.__class__ is Tensor:
            a = _operand(a)
        else:
            return forward(a, b)
        try:
            value = forward(a.value, b.value)
        except ValueError as error:
            raise _operand_error(prim, (a, b), error) from None
        tensor = _new_tensor(Tensor)
        tensor.value = value
        tensor.grad = None
        tensor.name = None
        tensor.id = next(_ids)
        if (a.requires_grad or b.requires_grad) and _grad_mode.enabled:
            tensor.requires_grad = True
            tensor.op = prim
            tensor.parents = (a, b)
            tensor.params = _no_params  # shared and never written: one dict less per node
        else:
            tensor.requires_grad = False
            tensor.op = None
            tensor.parents = _no_parents
            tensor.params = _no_params
        return tensor

    operator.__name__ = f"{'r' if reflected else ''}{prim.name}"
    return operator


Primitive.__call__ = apply  # type: ignore[method-assign]  (no extra frame per op)


# ----- broadcast reduction: the one place it happens ---------------------------
_sum_to_shape: Callable[[Tensor, tuple[int, ...]], Tensor]  # set by engine.primitives
_sum_array_to_shape: Callable[[Any, tuple[int, ...]], Any]


def register_sum_to_shape(
    function: Callable[[Tensor, tuple[int, ...]], Tensor],
    for_arrays: Callable[[Any, tuple[int, ...]], Any] | None = None,
) -> None:
    """The reduction of a broadcast gradient (``for_arrays``: its plain-array version,
    used by the unrecorded backward pass; ``function`` itself when not given)."""
    global _sum_to_shape, _sum_array_to_shape
    _sum_to_shape = function
    _sum_array_to_shape = function if for_arrays is None else for_arrays


# ----- backward plans (engine.plans): the walk of a graph's shape, compiled once ----------
_Planner = Callable[[Tensor, Any, bool, bool], "dict[Tensor, Any] | None"]
_planner: _Planner | None = None


def register_planner(planner: _Planner | None) -> None:
    """What ``grad`` asks first: ``planner(output, seed, recorded, unit)`` gives the
    leaves' gradients or ``None`` (then the generic walk runs); ``unit``: the seed is the
    default one of ones. ``None``: always walk."""
    global _planner
    _planner = planner


def _backpropagate(root: Tensor, seed: Any, create_graph: bool) -> dict[Tensor, Any]:
    """Algorithm 6.4: gradient of ``root`` with respect to every node it depends on,
    as a dict from node to gradient (plain arrays, or Tensors with ``create_graph``).

    A node is always created after its parents, so ids increase in forward order;
    taking the pending node with the largest id visits children before parents
    (a reverse topological order) in the same pass that finds the graph.
    """
    if root.op is None:  # a leaf: its gradient is the seed
        return {root: seed}
    previous_mode = _grad_mode.enabled
    _grad_mode.enabled = create_graph
    try:
        if create_graph:
            return _walk_recorded(root, seed)
        return _walk_arrays(root, seed)
    finally:
        _grad_mode.enabled = previous_mode


def _walk_arrays(root: Tensor, seed: Any) -> dict[Tensor, Any]:
    """The backward pass on the nodes' plain arrays (nothing recorded): the VJPs are the
    same code as when recording, they just see ndarrays and so run as plain numpy.

    Leaves get their gradient without a trip through the heap (they have no VJPs to
    run), and the next node of a chain is taken straight from the edge that reached it
    (see the end of the loop). A node's VJPs are called with positional arguments
    (Python calls those faster than ``f(*args, **kwargs)``) from a per-arity branch
    taken once per node, and each edge's contribution goes through one shared
    accumulation step, so the per-edge work is the VJP call, one shape comparison and
    one dictionary look-up."""
    grads: dict[Tensor, Any] = {root: seed}
    owned: set[Tensor] = set()  # gradients this walk created by a sum: safe to add into
    heap: list[tuple[int, Tensor]] = []  # pending nodes other than the next one
    reduce = _sum_array_to_shape
    get = grads.get
    pop = heappop
    push = heappush
    node = root
    while True:
        g = grads[node]
        out = node.value
        params = node.params
        parents = node.parents
        vjps = node.op.vjps
        arity = len(parents)
        # the contributions of this node's edges, as (parent, gradient) pairs
        if arity == 2:
            a, b = parents
            va, vb = vjps
            first, second = a.value, b.value
            edges = []
            if va is not None and a.requires_grad:
                if params:
                    edges.append((a, va(g, out, first, second, **params)))
                else:
                    edges.append((a, va(g, out, first, second)))
            if vb is not None and b.requires_grad:
                if params:
                    edges.append((b, vb(g, out, first, second, **params)))
                else:
                    edges.append((b, vb(g, out, first, second)))
        elif arity == 1:
            a = parents[0]
            va = vjps[0]
            if va is None or not a.requires_grad:
                edges = ()
            elif params:
                edges = ((a, va(g, out, a.value, **params)),)
            else:
                edges = ((a, va(g, out, a.value)),)
        else:
            operands = [p.value for p in parents]
            edges = [
                (parent, vjp(g, out, *operands, **params))
                for vjp, parent in zip(vjps, parents)
                if vjp is not None and parent.requires_grad
            ]
        fresh = None  # the first parent this node gave a gradient to that has VJPs to run
        for parent, contribution in edges:
            shape = parent.value.shape
            try:
                mismatch = contribution.shape != shape
            except AttributeError:  # a Python number
                mismatch = np.shape(contribution) != shape
            if mismatch:
                contribution = reduce(contribution, shape)
            previous = get(parent)
            if previous is None:
                grads[parent] = contribution
                if parent.op is not None:
                    if fresh is None:
                        fresh = parent
                    else:
                        push(heap, (-parent.id, parent))
            elif parent in owned:
                previous += contribution
            else:
                total = previous + contribution
                grads[parent] = total
                if total.__class__ is np.ndarray:
                    owned.add(parent)
        # the next node is the pending one created last; in a chain (most of a network's
        # graph) that is the parent just reached, taken without a trip through the heap
        if fresh is not None and (not heap or fresh.id > -heap[0][0]):
            node = fresh
        elif heap:
            if fresh is not None:
                push(heap, (-fresh.id, fresh))
            node = pop(heap)[1]
        else:
            return grads


def _walk_recorded(root: Tensor, seed: Tensor) -> dict[Tensor, Any]:
    """The backward pass with ``create_graph``: VJPs run on the Tensors themselves, so
    every gradient is a node that can be differentiated again."""
    grads: dict[Tensor, Any] = {root: seed}
    heap: list[tuple[int, Tensor]] = [(-root.id, root)]
    while heap:
        node = heappop(heap)[1]
        g = grads[node]
        params = node.params
        parents = node.parents
        for vjp, parent in zip(node.op.vjps, parents):
            if vjp is None or not parent.requires_grad:
                continue
            contribution = vjp(g, node, *parents, **params)
            shape = parent.value.shape
            if np.shape(_value_of(contribution)) != shape:
                contribution = _sum_to_shape(contribution, shape)
            previous = grads.get(parent)
            if previous is None:
                grads[parent] = contribution
                if parent.op is not None:
                    heappush(heap, (-parent.id, parent))
            else:
                grads[parent] = previous + contribution
    return grads


def _seed(output: Tensor, gradient: Any, create_graph: bool) -> Any:
    if gradient is None:
        if output.value.size != 1:
            raise ValueError(
                f"backward/grad of a non-scalar output of shape {output.shape} needs an explicit "
                "output gradient"
            )
        seed = np.ones(output.value.shape)
    else:
        seed = gradient.value if isinstance(gradient, Tensor) else _as_array(gradient)
        if seed.shape != output.shape:
            raise ValueError(f"output gradient has shape {seed.shape}, output has {output.shape}")
    return _constant(seed) if create_graph else seed


def _array(gradient: Any) -> np.ndarray:
    # a fresh, writable array the caller owns (VJPs may return shared or broadcast views)
    return np.array(gradient.value if isinstance(gradient, Tensor) else gradient, dtype=np.float64)


def _references(array: np.ndarray) -> int:
    return sys.getrefcount(array)


def _references_of_a_private_array() -> int:
    # what _references says, called as ``_owned_array`` calls it, of an array held by
    # nothing but one local name (the count varies with the Python version): a gradient
    # with no more references than that is nobody else's
    holder = [np.empty(1)]
    array = holder.pop()
    return _probe(array) if hasattr(sys, "getrefcount") else -1


def _probe(array: np.ndarray) -> int:
    return _references(array)


_PRIVATE_REFERENCES = _references_of_a_private_array()


def _owned_array(gradient: Any) -> np.ndarray:
    """``gradient`` itself when it is a writable float64 array of its own memory that
    nothing else refers to (the usual result of a VJP), else a copy: so the arrays
    ``grad`` returns are never re-copied for nothing, and never alias each other, the
    seed, a node's value or a view of any of them."""
    if (
        gradient.__class__ is np.ndarray
        and gradient.base is None
        and _references(gradient) <= _PRIVATE_REFERENCES
        and gradient.dtype is _FLOAT64
        and gradient.flags.writeable
    ):
        return gradient
    return _array(gradient)


def backward(output: Tensor, gradient: Any = None) -> None:
    if not output.requires_grad:
        raise ValueError("backward() called on a tensor that does not require a gradient")
    grads = _backpropagate(output, _seed(output, gradient, False), create_graph=False)
    for node, g in grads.items():
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
    leaves_only = True  # plans keep only the leaves' gradients, not an inner node's
    if isinstance(inputs, Tensor):
        inputs = [inputs]
        leaves_only = inputs[0].op is None
    else:
        inputs = list(inputs)
        for t in inputs:
            if t.__class__ is not Tensor and not isinstance(t, Tensor):
                raise ValueError(f"grad() inputs must be Tensors, got {type(t).__name__}")
            if t.op is not None:
                leaves_only = False
    if not output.requires_grad:
        return [_constant(np.zeros_like(t.value)) for t in inputs]
    seed = _seed(output, grad_output, create_graph)
    grads = None
    if _planner is not None and output.op is not None and leaves_only:
        if create_graph:
            previous_mode = _grad_mode.enabled
            _grad_mode.enabled = True
            try:
                grads = _planner(output, seed, True, False)
            finally:
                _grad_mode.enabled = previous_mode
        else:
            grads = _planner(output, seed, False, grad_output is None)
    if grads is None:
        grads = _backpropagate(output, seed, create_graph)
    result: list[Tensor] = []
    pop = grads.pop
    for index, t in enumerate(inputs):
        g = pop(t, None)  # popped: a gradient nothing else holds can be handed out as it is
        if g is None:
            earlier = next((result[i] for i in range(index) if inputs[i] is t), None)
            if earlier is None:
                tensor = _constant(np.zeros_like(t.value))
            else:  # the same input twice: an equal, separate array
                tensor = earlier if create_graph else _constant(_array(earlier.value))
        elif create_graph:
            tensor = g if g.__class__ is Tensor else as_tensor(g)
        else:
            tensor = _constant(_owned_array(g))
        del g
        result.append(tensor)
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
