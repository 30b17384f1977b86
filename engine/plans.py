"""Backward plans: the backward pass of a graph's shape, compiled once (issue 13).

A training loop builds the same graph every step: the same primitives, wired the same
way, over operands of the same shapes. The generic backward walk
(``autodiff._walk_arrays``) rediscovers that graph every time: for every node it finds
the next one to visit, branches on its arity, looks its gradient up, compares every
contribution's shape with its parent's and decides where to add it. For a small
network that bookkeeping costs as much as the arithmetic.

A *plan* does that work once. When ``grad`` meets a graph whose root primitive it has
seen walked before, it records the walk (the visiting order, which edge reaches which
node, which contributions need summing back to their input's shape, which nodes receive
several contributions) and writes it out as one straight-line Python function:

    n1, n2 = n0.parents
    if n1.op is not OP1 or n1.params: return None        # guards
    ...
    g1 = V0_0(g0, n0.value, n1.value, n2.value)          # the primitive's own VJP
    g1 = R(g1, S1)                                       # only where shapes differ
    ...

The function walks the new graph by its parents as it goes and checks, for every node,
what the plan assumed: the same primitive with the same parameters, a leaf where there
was a leaf (with the same shape and the same ``requires_grad``), the same node where
two edges met. Shapes only need checking at the leaves: every other shape follows from
them, the primitives and their parameters. If any check fails the plan returns
``None`` and ``grad`` takes the generic walk (and, seen again, compiles a plan for the
new shape too). A plan calls the same VJP functions the walk calls (or writes the common
ones in as the same numpy expressions), on the same values in the same order, so its
gradients are the walk's, bit for bit.

Recorded passes (``create_graph``) get plans of their own, which hand the VJPs the
Tensors so that the gradients are new nodes, differentiable again; and plans for the
default seed of ones fold the ones away (see ``_write``).

Only graphs made of the primitives registered with :func:`allow` (the engine's own)
whose parameters are plain values (numbers, strings, tuples of them) are compiled;
anything else takes the walk. Plans hold no reference to any node or to a graph's
arrays (only primitives, shapes, parameters and cached rows of ones).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from heapq import heappop, heappush
from typing import Any

import numpy as np

from engine import autodiff
from engine.autodiff import Primitive, Tensor

_sum: Primitive | None = None  # engine.primitives.sum_, set by fold_sum (its VJP spreads g back)
_sum_rows: Callable[[Any], Any] | None = None  # Σ over axis 0 as sum_to_shape records it

#: compile a plan the N-th time a root primitive's graph takes the generic walk (more
#: rarely for a root whose compiled plans are not replayed)
COMPILE_AFTER = int(os.environ.get("BACKPROP_LAB_PLAN_AFTER", "2"))
PLANS_PER_ROOT = 4  # shapes kept per root primitive (the most recent first)
MAX_THRESHOLD = 512  # the most walks between compiles of a root whose plans never replay
MAX_NODES = 400  # larger graphs are walked (a plan's source grows with the graph)
ENABLED = os.environ.get("BACKPROP_LAB_PLANS", "on") != "off"

_allowed: set[Primitive] = set()
# per primitive: (rule, helpers, recorded, with_params); rule(out_shape, *input_shapes) gives one
# template per input, or None, for writing that VJP into the plan as an expression
# instead of a call (see ``inline``)
_inline: dict[Primitive, tuple[Callable[..., Any], dict[str, Any], Any, bool]] = {}
_simple = (int, float, str, bool, type(None), slice, type(Ellipsis))


class _Root:
    """The plans of one root primitive, the walks since the last compile, how many walks
    make a compile, and whether any plan was replayed since the last one."""

    __slots__ = ("plans", "walks", "threshold", "replayed", "compiled")

    def __init__(self) -> None:
        self.plans: list[Any] = []
        self.walks = 0
        self.threshold = COMPILE_AFTER
        self.replayed = False
        self.compiled = 0


# the plans of each root primitive: for plain-array backward passes (from a seed of ones,
# ``grad`` without an output gradient, or any seed), and for recorded ones
# (``create_graph``, whose VJPs run on the Tensors and record new nodes)
_roots: dict[Primitive, _Root] = {}
_unit_roots: dict[Primitive, _Root] = {}
_recorded_roots: dict[Primitive, _Root] = {}
_tables = {(False, False): _roots, (False, True): _unit_roots, (True, False): _recorded_roots}


def allow(primitives: Iterable[Primitive]) -> None:
    """Let graphs made of these primitives be compiled (their VJPs must give results
    whose shapes depend only on the operands' shapes and the parameters)."""
    _allowed.update(primitives)


def inline(
    primitive: Primitive,
    rule: Callable[..., Any],
    recorded: bool | Callable[..., Any] = False,
    with_params: bool = False,
    **helpers: Any,
) -> None:
    """Let plans write ``primitive``'s VJPs as expressions (a call less per edge).

    ``rule(out_shape, *input_shapes)`` returns, per input, a template such as
    ``"{g} * {1}"`` (``{g}`` the output's gradient, ``{out}`` its value, ``{0}``, ``{1}``
    the inputs' values) or ``None`` to call the VJP; the template must compute exactly
    what the VJP computes on arrays of those shapes. ``helpers`` are names the templates
    use. ``recorded``: True when the templates are Tensor operators alone, so recorded
    plans may use them too (they record the same nodes the VJP records); or a rule of
    its own for recorded plans. ``with_params``: the rule also
    takes the node's parameters as keywords (else it is used only for nodes without any)."""
    _inline[primitive] = (rule, helpers, recorded, with_params)


def fold_sum(primitive: Primitive, rows: Callable[[Any], Any] | None = None) -> None:
    """The sum primitive: its VJP of all-ones is all ones of the input's shape. ``rows``:
    the sum over a matrix's rows as one call (what ``sum_to_shape`` records for a bias)."""
    global _sum, _sum_rows
    _sum = primitive
    _sum_rows = rows


def clear() -> None:
    """Forget every plan (tests; a process that changes its primitives)."""
    for table in _tables.values():
        table.clear()


def statistics() -> dict[str, int]:
    entries = [entry for table in _tables.values() for entry in table.values()]
    return {"roots": len(entries), "plans": sum(len(entry.plans) for entry in entries)}


def gradients(
    root: Tensor, seed: Any, recorded: bool = False, unit: bool = False
) -> dict[Tensor, Any] | None:
    """The gradients of ``root`` with respect to its requires-grad leaves, from a
    plan; ``None`` when no plan fits (the caller then takes the generic walk).
    ``recorded``: a ``create_graph`` pass (the caller has switched recording on and
    passes the seed as a Tensor). ``unit``: the seed is all ones (``grad`` without an
    output gradient), which a plain-array plan may fold into its expressions."""
    unit = unit and not recorded
    roots = _tables[recorded, unit]
    entry = roots.get(root.op)
    if entry is None:
        if root.op not in _allowed:
            return None
        entry = roots[root.op] = _Root()
    plans = entry.plans
    for plan in plans:
        grads = plan(root, seed)
        if grads is not None:
            entry.replayed = True
            if plan is not plans[0]:  # the latest shape first
                try:
                    plans.remove(plan)
                except ValueError:  # another thread moved it first
                    pass
                plans.insert(0, plan)
            return grads
    entry.walks += 1
    if entry.walks < entry.threshold:
        return None
    entry.walks = 0
    if entry.compiled and not entry.replayed:
        # nothing compiled here has been replayed since the last compile: graphs under this
        # root keep changing shape, so compile (0.5–1.5 ms, 25–65 walks) ever more rarely
        entry.threshold = min(2 * entry.threshold, MAX_THRESHOLD)
    entry.replayed = False
    entry.compiled += 1
    plan = compile_plan(root, recorded, unit)
    if plan is None:
        entry.walks = -8 * entry.threshold  # not compilable: walk a while before trying again
        return None
    grads = plan(root, seed)
    if grads is None:  # cannot happen: a plan fits the graph it was made from
        return None
    plans.insert(0, plan)
    del plans[PLANS_PER_ROOT:]
    return grads


# ----- compiling -------------------------------------------------------------------
def _plain_params(params: dict[str, Any]) -> bool:
    return all(_plain_value(v) for v in params.values())


def _plain_value(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_plain_value(v) for v in value)
    return isinstance(value, _simple)


def _shape_of(value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else np.shape(value)


def compile_plan(root: Tensor, recorded: bool = False, unit: bool = False) -> Any:
    """A plan for ``root``'s graph, or ``None`` when the graph cannot have one.
    ``recorded``: a plan for ``create_graph`` passes (call it with recording on).
    ``unit``: a plan for a seed of ones only (plain arrays)."""
    if root.op is None:
        return None
    # the nodes with VJPs to run, in the walk's order (largest id first)
    slots: dict[Tensor, int] = {root: 0}
    order: list[Tensor] = []
    heap: list[tuple[int, Tensor]] = [(-root.id, root)]
    seen = {root}
    while heap:
        node = heappop(heap)[1]
        if node.op not in _allowed or not _plain_params(node.params):
            return None
        order.append(node)
        if len(order) > MAX_NODES:
            return None
        for parent in node.parents:
            if parent.__class__ is not Tensor:
                return None
            if parent not in slots:
                slots[parent] = len(slots)
            if parent.op is not None and parent not in seen:
                seen.add(parent)
                heappush(heap, (-parent.id, parent))
    if recorded:
        previous = autodiff._grad_mode.enabled
        autodiff._grad_mode.enabled = True
        try:
            return _write(root, order, slots, recorded, False)
        finally:
            autodiff._grad_mode.enabled = previous
    return _write(root, order, slots, recorded, unit)


def _write(
    root: Tensor, order: list[Tensor], slots: dict[Tensor, int], recorded: bool, unit: bool
) -> Any:
    """The plan's source, compiled. The walk is replayed on the compiling graph to learn
    each contribution's shape (so that only the edges that need it are summed back).
    A recorded plan hands the VJPs the Tensors themselves, so the gradients it returns
    are nodes of a new graph, as the recorded walk's are.

    From a seed of ones (``unit``) the plan folds the ones forward: a gradient known to be
    all ones is not materialised until something needs its array, a sum's VJP of ones is
    ones of the input's shape, ``ones · b`` is ``b`` itself (exactly: 1.0 · x = x), and an
    add passes the ones on. ⟨∇J, v⟩ = Σ (g · v).sum() then hands each g the array v with
    no arithmetic at all."""
    names: dict[str, Any] = {
        "R": autodiff._sum_to_shape if recorded else autodiff._sum_array_to_shape
    }
    value = "" if recorded else ".value"  # what a VJP is handed: the node, or its array
    # every check first (the walk through the parents and the guards on every node), then
    # the arithmetic: shapes the plan wrote in (reductions, broadcasts) are only right for
    # a graph that has passed every check, and a graph that fails one must not reach them
    checks = ["def plan(n0, g0):"]
    lines: list[str] = []
    reached = {root}
    received: dict[Tensor, int] = {root: 1}  # contributions each node's gradient has had
    grads: dict[Tensor, Any] = {}
    leaves: list[Tensor] = []

    def guard(node: Tensor, slot: int) -> None:
        n = f"n{slot}"
        if node.op is not None:
            names[f"OP{slot}"] = node.op
            test = f"{n}.op is not OP{slot}"
            if node.params:
                names[f"P{slot}"] = dict(node.params)
                test += f" or {n}.params != P{slot}"
            else:
                test += f" or {n}.params"
            checks.append(f"    if {test}: return None")
            return
        names[f"S{slot}"] = node.value.shape
        flag = "not " if node.requires_grad else ""
        checks.append(
            f"    if {n}.op is not None or {flag}{n}.requires_grad"
            f" or {n}.value.shape != S{slot}: return None"
        )
        if node.requires_grad:
            leaves.append(node)

    guard(root, 0)
    # the root's own gradient is the seed
    grads[root] = _seed_like(root, recorded)
    # gradients known to be all ones (from a unit seed), and those of them not yet in a
    # variable (a lazily-made array of ones)
    ones: set[Tensor] = {root} if unit else set()
    unbound: set[Tensor] = set()
    names["NP_ONES"] = np.ones

    shared: dict[str, str] = {}  # factors written once and shared (⟦…⟧ in a template)
    owned: set[Tensor] = set()  # nodes whose gradient is an array the plan made, unshared

    def materialise(node: Tensor) -> None:
        if node in unbound:
            slot = slots[node]
            names[f"S{slot}"] = node.value.shape
            lines.append(f"    g{slot} = NP_ONES(S{slot})")
            unbound.discard(node)

    for node in order:
        k = slots[node]
        parents = node.parents
        # reach the parents: new ones are unpacked and checked, known ones must match
        targets, known, fresh = [], [], []
        for index, parent in enumerate(parents):
            slot = slots[parent]
            if parent in reached:  # met before (or earlier in this same tuple)
                targets.append(f"_p{index}")
                known.append((index, slot))
            else:
                reached.add(parent)
                targets.append(f"n{slot}")
                fresh.append((parent, slot))
        unpack = ", ".join(targets) + ("," if len(targets) == 1 else "")
        checks.append(f"    {unpack} = n{k}.parents")
        for index, slot in known:
            checks.append(f"    if _p{index} is not n{slot}: return None")
        for parent, slot in fresh:
            guard(parent, slot)
        # run the VJPs of the edges to parents that need a gradient
        g = grads[node]
        values = list(parents) if recorded else [p.value for p in parents]
        out = node if recorded else node.value
        operands = ", ".join(f"n{slots[p]}{value}" for p in parents)
        keywords = ""
        if node.params:
            names[f"K{k}"] = dict(node.params)
            keywords = f", **K{k}"
        templates = None
        rule = _inline.get(node.op)
        chosen = None
        if rule is not None and (rule[3] or not node.params):
            chosen = rule[0] if not recorded or rule[2] is True else rule[2] or None
        if chosen is not None:
            shapes = [p.value.shape for p in parents]
            templates = chosen(node.value.shape, *shapes, **node.params)
            names.update(rule[1])
        first_of_node = None  # (parent, expression) of this node's edge that started a gradient
        for index, (vjp, parent) in enumerate(zip(node.op.vjps, parents)):
            if vjp is None or not parent.requires_grad:
                continue
            contribution = vjp(g, out, *values, **node.params)
            slot = slots[parent]
            shape = parent.value.shape
            found = _shape_of(contribution)
            template = templates[index] if templates is not None else None
            gives_ones = False  # this edge's contribution is all ones of the parent's shape
            if node in ones and found == shape:
                if template == "{g}" or node.op is _sum:
                    gives_ones = True  # ones passed on, or a sum's ones spread back
                elif template in ("{g} * {0}", "{g} * {1}"):
                    other = 1 if template.endswith("{1}") else 0
                    if parents[other].value.shape == shape:
                        template = f"{{{other}}}"  # ones · b is b itself
            # fresh: the expression makes a new array nobody else holds (so a later
            # contribution may be added into it); a VJP call or a passed-on array is not
            fresh = gives_ones or (
                template is not None and template not in _ALIASES and "BT(" not in template
            )
            if gives_ones:
                names[f"S{slot}"] = shape
                call = f"NP_ONES(S{slot})"  # written out only if the ones must be summed
            elif template is not None:
                if "{g}" in template:
                    materialise(node)
                call = (
                    "("
                    + template.format(
                        *[f"n{slots[p]}{value}" for p in parents], g=f"g{k}", out=f"n{k}{value}"
                    )
                    + ")"
                )
                call = _share(call, shared, lines)
            else:
                materialise(node)
                names[f"V{k}_{index}"] = vjp
                call = f"V{k}_{index}(g{k}, n{k}{value}, {operands}{keywords})"
            if found != shape:
                if recorded:
                    contribution = autodiff._sum_to_shape(contribution, shape)
                    if _sum_rows is not None and len(found) == 2 and found[1:] == shape:
                        # a bias's gradient summed over the batch: the one sum node that
                        # sum_to_shape records, made directly
                        names["SUM_ROWS"] = _sum_rows
                        call = f"SUM_ROWS({call})"
                    else:
                        names[f"S{slot}"] = shape
                        call = f"R({call}, S{slot})"
                else:
                    contribution = autodiff._sum_array_to_shape(contribution, shape)
                    call = _reduction(call, found, shape, slot, names)
                    fresh = not call.startswith("R(")  # the bias cases make new arrays
            count = received.get(parent, 0)
            received[parent] = count + 1
            if count == 0:
                grads[parent] = contribution
                if gives_ones:  # kept in mind, not in an array, until something needs it
                    ones.add(parent)
                    unbound.add(parent)
                else:
                    lines.append(f"    g{slot} = {call}")
                    if fresh and not recorded:
                        owned.add(parent)
                first_of_node = (parent, call)
                continue
            grads[parent] = grads[parent] + contribution
            if parent in unbound:  # ones written out now: a fresh array of the plan's own
                materialise(parent)
                owned.add(parent)
            ones.discard(parent)
            if count == 1 and first_of_node == (parent, call):
                # the same parent twice with the same expression (x * x): computed once and
                # doubled, which is exactly the sum of the two equal contributions
                if parent in owned:
                    lines.append(f"    g{slot} += g{slot}")
                else:
                    lines.append(f"    g{slot} = g{slot} + g{slot}")
            elif parent in owned:  # an array this plan made and nobody else holds
                lines.append(f"    g{slot} += {call}")
            else:
                lines.append(f"    g{slot} = g{slot} + {call}")
            if not recorded:
                owned.add(parent)  # g + c is a new array
    for leaf in leaves:
        materialise(leaf)
    entries = ", ".join(f"n{slots[leaf]}: g{slots[leaf]}" for leaf in leaves)
    lines.append(f"    grads = {{{entries}}}")
    # two leaves of the plan that are one tensor in this graph: let the walk add them up
    lines.append(f"    return grads if len(grads) == {len(leaves)} else None")
    source = "\n".join(checks + lines) + "\n"
    namespace = dict(names)
    kind = "recorded backward plan" if recorded else "backward plan"
    exec(compile(source, f"<{kind} of {root.op.name}>", "exec"), namespace)  # noqa: S102
    plan = namespace["plan"]
    plan.source = source
    return plan


_ALIASES = ("{g}", "{0}", "{1}")  # templates that hand on an existing array


def _share(call: str, shared: dict[str, str], lines: list[str]) -> str:
    """Each ⟦factor⟧ in ``call`` computed once per plan: the first time into a local
    (written before the line that uses it), later times the same local. A factor's
    operands are node values, all bound by the checks before any arithmetic."""
    while "⟦" in call:
        start = call.index("⟦")
        end = call.index("⟧", start)
        factor = call[start + 1 : end]
        name = shared.get(factor)
        if name is None:
            name = shared[factor] = f"f{len(shared)}"
            lines.append(f"    {name} = {factor}")
        call = call[:start] + name + call[end + 1 :]
    return call


def _reduction(
    call: str, found: tuple[int, ...], shape: tuple[int, ...], slot: int, names: dict[str, Any]
) -> str:
    """``call``'s result summed back to ``shape``: what ``_sum_array_to_shape`` does for
    these shapes, written out when it is the bias case (one numpy call)."""
    if len(found) == 2 and len(shape) == 1 and found[1:] == shape:
        if found[0] >= 32:
            names["DOT"] = np.dot
            names[f"ONES{found[0]}"] = _ones_row(found[0])
            return f"DOT(ONES{found[0]}, {call})"
        names["ADD_REDUCE"] = np.add.reduce
        return f"ADD_REDUCE({call}, 0)"
    names[f"S{slot}"] = shape
    return f"R({call}, S{slot})"


def _ones_row(n: int) -> np.ndarray:
    from engine.primitives import _ones  # the same cached row the walk uses

    return _ones(n)


def _seed_like(root: Tensor, recorded: bool) -> Any:
    seed = np.ones(root.value.shape)
    return autodiff.as_tensor(seed) if recorded else seed
