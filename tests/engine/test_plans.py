"""Backward plans (engine.plans, issue 13): a compiled walk gives the generic walk's
gradients bit for bit, refuses every graph it was not made for, and ``grad`` uses plans
only where they fit."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Tensor, autodiff, grad, plans
from engine import functional as F
from engine import primitives as P


def leaf(shape, seed=0, requires_grad=True) -> Tensor:
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal(shape), requires_grad=requires_grad)


def walked(root: Tensor) -> dict[Tensor, np.ndarray]:
    """The generic walk's gradients of the requires-grad leaves."""
    grads = autodiff._backpropagate(root, np.ones(root.value.shape), create_graph=False)
    return {node: g for node, g in grads.items() if node.op is None and node.requires_grad}


def planned(root: Tensor, plan=None, unit=False) -> dict[Tensor, np.ndarray] | None:
    plan = plan or plans.compile_plan(root, unit=unit)
    assert plan is not None
    return plan(root, np.ones(root.value.shape))


def assert_same(first: dict, second: dict) -> None:
    assert set(first) == set(second)
    for node, g in first.items():
        np.testing.assert_array_equal(np.asarray(g), np.asarray(second[node]))
        assert np.shape(g) == node.value.shape


def mlp_cost(params, x, y):
    h = x
    for layer in range(len(params) // 2):
        a = h @ params[2 * layer] + params[2 * layer + 1]
        h = a if layer == len(params) // 2 - 1 else F.tanh(a)
    return ((h - y) ** 2).mean()


def mlp(batch: int, sizes=(2, 8, 8, 1)):
    rng = np.random.default_rng(batch)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append(Tensor(rng.standard_normal((fan_in, fan_out)), requires_grad=True))
        params.append(Tensor(rng.standard_normal(fan_out), requires_grad=True))
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.standard_normal((batch, sizes[-1]))
    return params, x, y


GRAPHS = {
    # small batches take the plain branches, tall ones the BLAS and in-place ones
    "mlp, batch 10": lambda: mlp_cost(*mlp(10)),
    "mlp, batch 500": lambda: mlp_cost(*mlp(500)),
    "mlp 3-16-1, batch 64": lambda: mlp_cost(*mlp(64, (3, 16, 1))),
    "shared leaf a * a": lambda: (lambda a: (a * a).sum())(leaf((3, 4))),
    "shared inner node t * t": lambda: (lambda t: (t * t).sum())(F.tanh(leaf((5,)))),
    "fan-out and re-join": lambda: (
        lambda a, b: ((a * b + F.tanh(a)) * (a - b) / (1.0 + b * b)).sum()
    )(leaf((4, 3), 1), leaf((4, 3), 2)),
    "broadcast column and row": lambda: (leaf((6, 1), 1) * leaf((1, 5), 2) - leaf((5,), 3)).sum(),
    "sum over an axis, exp, log": lambda: P.log(P.exp(leaf((4, 6))).sum(axis=1)).mean(),
    "reshape and transpose": lambda: (leaf((2, 6)).reshape(3, 4).T @ leaf((3, 2), 1)).sum(),
    "softmax loss": lambda: P.softmax_nll(
        leaf((7, 3)) @ leaf((3, 3), 1), Tensor(np.eye(3)[[0, 1, 2, 0, 1, 2, 0]])
    ),
    "sigmoid, relu, power": lambda: (P.sigmoid(leaf((9,))) + P.relu(leaf((9,), 1)) ** 3.0).sum(),
    "a constant that needs no gradient": lambda: (leaf((4,)) * Tensor(np.arange(4.0))).sum(),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_a_plan_gives_the_walks_gradients_bit_for_bit(name):
    root = GRAPHS[name]()
    assert_same(planned(root), walked(root))


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_a_plan_for_a_seed_of_ones_folds_the_ones_and_gives_the_same_gradients(name):
    root = GRAPHS[name]()
    assert_same(planned(root, unit=True), walked(root))
    again = GRAPHS[name]()
    assert_same(planned(again, plans.compile_plan(root, unit=True)), walked(again))


def test_folding_the_ones_leaves_a_directional_derivative_no_arithmetic():
    # ⟨g, v⟩ = Σ (g · v).sum(): from a seed of ones each g's gradient is v itself
    a, b = leaf((4, 3), 1), leaf((3,), 2)
    v, w = np.arange(12.0).reshape(4, 3), np.arange(3.0)
    root = (a * v).sum() + (b * w).sum()
    plan = plans.compile_plan(root, unit=True)
    assignments = [line.strip() for line in plan.source.splitlines() if " = (" in line]
    assert len(assignments) == 2
    assert all(line.endswith(".value)") for line in assignments)  # g = (n.value): v itself
    assert "NP_ONES" not in plan.source and "V" not in plan.source.split("def plan")[1]
    assert_same(planned(root, plan), walked(root))
    ga, gb = grad(root, [a, b])
    np.testing.assert_array_equal(ga.value, v)
    assert not np.shares_memory(ga.value, v)  # handed out as the caller's own copy


def test_a_seed_of_ones_summed_with_another_gradient_is_written_out():
    a = leaf((5,), 3)
    root = (a + a * 2.0).sum()  # a gets ones (from the add) and 2 (from the product)
    plan = plans.compile_plan(root, unit=True)
    assert "NP_ONES" in plan.source
    assert_same(planned(root, plan), walked(root))
    np.testing.assert_array_equal(planned(root, plan)[a], np.full(5, 3.0))


def test_an_output_gradient_that_is_not_ones_never_meets_a_folded_plan(fresh_plans):
    a = leaf((30, 3), 4)
    seed = np.full((30, 3), 2.0)
    for _ in range(plans.COMPILE_AFTER + 1):
        (ones,) = grad(a * a, [a], grad_output=np.ones((30, 3)))
        (twos,) = grad(a * a, [a], grad_output=seed)
    np.testing.assert_array_equal(twos.value, 2.0 * ones.value)
    np.testing.assert_array_equal(twos.value, 4.0 * a.value)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_a_plan_made_on_one_graph_fits_a_new_graph_of_the_same_shape(name):
    plan = plans.compile_plan(GRAPHS[name]())
    again = GRAPHS[name]()  # new nodes, new arrays, the same structure
    assert_same(planned(again, plan), walked(again))


def test_the_mlp_step_writes_its_common_vjps_as_expressions():
    plan = plans.compile_plan(mlp_cost(*mlp(500)))
    assert plan.source.count("ONE_MINUS_SQUARE(") == 2  # tanh's factor, once per layer
    assert "CONTIGUOUS(" in plan.source and "DOT(ONES500" in plan.source
    small = plans.compile_plan(mlp_cost(*mlp(10)))
    assert "CONTIGUOUS(" not in small.source and "ADD_REDUCE(" in small.source


def test_a_factor_two_vjps_need_is_computed_once():
    # grad of grad of a tanh layer: tanh's VJP and tanh_grad's both need 1 − t²
    params, x, y = mlp(64, (2, 6, 1))
    gradients = grad(mlp_cost(params, x, y), params, create_graph=True)
    directional = sum((g * np.ones(g.shape)).sum() for g in gradients)
    plan = plans.compile_plan(directional, unit=True)
    assert plan.source.count("ONE_MINUS_SQUARE(") == 1
    assert plan.source.count(" = ONE_MINUS_SQUARE(") == 1
    assert_same(planned(directional, plan), walked(directional))


def refusals():
    a, b = leaf((3, 4), 1), leaf((3, 4), 2)
    c = leaf((3, 4), 3)
    return {
        "another primitive": ((a * b).sum(), (a + b).sum()),
        "another axis": ((a * b).sum(axis=0).sum(), (a * b).sum(axis=1).sum()),
        "a leaf of another shape": (
            (a * b).sum(),
            (leaf((2, 4)) * leaf((2, 4), 1)).sum(),
        ),
        "a constant of another shape": (
            (a * Tensor(np.ones((3, 4)))).sum(),
            (a * Tensor(np.ones(4))).sum(),
        ),
        "a constant where a parameter was": (
            (a * b).sum(),
            (a * leaf((3, 4), 2, requires_grad=False)).sum(),
        ),
        "an inner node where a leaf was": ((a * b).sum(), (a * F.tanh(b)).sum()),
        "two leaves that are now one": ((a * b).sum(), (c * c).sum()),
        "a shared node that is now two": (
            (lambda t: (t * t).sum())(F.tanh(a)),
            (F.tanh(a) * F.tanh(b)).sum(),
        ),
    }


@pytest.mark.parametrize("case", sorted(refusals()))
def test_a_plan_refuses_a_graph_it_was_not_made_for(case):
    made_on, other = refusals()[case]
    plan = plans.compile_plan(made_on)
    assert plan(other, np.ones(())) is None
    assert planned(made_on, plan) is not None


def test_indexing_and_unknown_primitives_are_never_compiled():
    a = leaf((5,))
    assert plans.compile_plan(a[[0, 2]].sum()) is None
    square = autodiff.Primitive("my_square", np.square, (lambda g, out, x: 2.0 * x * g,))
    assert plans.compile_plan(square(a).sum()) is None


@pytest.fixture
def fresh_plans():
    plans.clear()
    yield
    plans.clear()


def test_grad_compiles_on_the_second_walk_and_then_replays(fresh_plans):
    params, x, y = mlp(10)
    calls = []
    original = plans.gradients

    def counting(root, seed, recorded, unit):
        result = original(root, seed, recorded, unit)
        calls.append(result is not None)
        return result

    autodiff.register_planner(counting)
    try:
        results = [grad(mlp_cost(params, x, y), params) for _ in range(4)]
    finally:
        autodiff.register_planner(plans.gradients)
    # walked until the COMPILE_AFTER-th walk, which compiles (and uses) a plan; then replays
    assert calls == [False] * (plans.COMPILE_AFTER - 1) + [True] * (5 - plans.COMPILE_AFTER)
    assert plans.statistics() == {"roots": 1, "plans": 1}
    for later in results[1:]:
        for first, second in zip(results[0], later):
            np.testing.assert_array_equal(first.value, second.value)


def test_grad_gives_the_same_gradients_with_and_without_plans(fresh_plans):
    params, x, y = mlp(500)
    autodiff.register_planner(None)
    try:
        expected = grad(mlp_cost(params, x, y), params)
    finally:
        autodiff.register_planner(plans.gradients)
    for _ in range(3):
        found = grad(mlp_cost(params, x, y), params)
    for e, f in zip(expected, found):
        np.testing.assert_array_equal(e.value, f.value)


def test_gradients_a_plan_hands_out_are_the_callers_own(fresh_plans):
    # add's VJP gives one array to both inputs: grad must still return separate arrays
    a, b = leaf((40, 3), 1), leaf((40, 3), 2)
    for _ in range(3):
        ga, gb = grad(((a + b) * 2.0).sum(), [a, b])
    np.testing.assert_array_equal(ga.value, np.full((40, 3), 2.0))
    assert not np.shares_memory(ga.value, gb.value)


def test_a_root_primitive_keeps_a_bounded_number_of_plans(fresh_plans):
    for size in range(2, 2 + 3 * plans.PLANS_PER_ROOT):
        a = leaf((size,))
        for _ in range(plans.COMPILE_AFTER + 1):
            (g,) = grad((a * a).sum(), [a])
            np.testing.assert_array_equal(g.value, 2.0 * a.value)
    assert plans.statistics()["plans"] <= plans.PLANS_PER_ROOT


def test_a_root_whose_graphs_never_repeat_compiles_ever_more_rarely(fresh_plans, monkeypatch):
    compiled = []
    original = plans.compile_plan

    def counting(root, recorded=False, unit=False):
        compiled.append(root)
        return original(root, recorded, unit)

    monkeypatch.setattr(plans, "compile_plan", counting)
    for size in range(1, 201):  # 200 graphs of 200 shapes under one root primitive
        a = leaf((size,))
        (g,) = grad((a * a).sum(), [a])
        np.testing.assert_array_equal(g.value, 2.0 * a.value)
    assert len(compiled) <= 12  # 100 with a fixed threshold of 2
    # and a root whose graph repeats still gets its plan on the second walk
    b = leaf((3, 3))
    results = [grad((F.tanh(b) * b).mean(), [b])[0].value for _ in range(3)]
    assert len(plans._unit_roots[P.divide].plans) == 1  # mean() ends in a division
    np.testing.assert_array_equal(results[0], results[2])


def test_gradients_with_respect_to_an_inner_node_take_the_walk(fresh_plans):
    a = leaf((4,))
    t = F.tanh(a)
    for _ in range(3):
        (g,) = grad((t * t).sum(), [t])
        np.testing.assert_array_equal(g.value, 2.0 * t.value)


@pytest.mark.parametrize("size", [3, 300])
def test_inline_templates_compute_what_the_vjps_compute(size):
    """Every template a plan writes instead of a VJP call, evaluated as a plan would,
    against the VJP function on the same arrays."""
    rng = np.random.default_rng(size)
    shapes = {
        "add": [(size, 4), (size, 4)],
        "subtract": [(size, 4), (size, 4)],
        "multiply": [(size, 4), (size, 4)],
        "divide": [(size, 4), (size, 4)],
        "negative": [(size, 4)],
        "exp": [(size, 4)],
        "tanh": [(size, 4)],
        "matmul": [(size, 4), (4, 6)],
        "matmul_tn": [(size, 4), (size, 6)],
        "matmul_nt": [(size, 4), (6, 4)],
        "tanh_grad": [(size, 4), (size, 4)],
        "sum": [(size, 4)],
        "sum, axis 0": ([(size, 4)], {"axis": 0}),
        "sum, axis 0 of a column": ([(size, 1)], {"axis": 0}),
    }
    for name, entry in shapes.items():
        operand_shapes, params = entry if isinstance(entry, tuple) else (entry, {})
        primitive = P.PRIMITIVES[name.split(",")[0]]
        operands = [rng.standard_normal(s) + 2.0 for s in operand_shapes]
        out = np.asarray(primitive.forward(*operands, **params))
        g = rng.standard_normal(out.shape)
        rule, helpers, _, _ = plans._inline[primitive]
        templates = rule(out.shape, *operand_shapes, **params)
        for index, template in enumerate(templates):
            names = {**helpers, "g": g, "out": out}
            names.update({f"v{i}": v for i, v in enumerate(operands)})
            expression = template.format(*[f"v{i}" for i in range(len(operands))], g="g", out="out")
            expression = expression.replace("⟦", "(").replace("⟧", ")")  # a shared factor
            found = eval(expression, names)  # noqa: S307  (the plan's own expression)
            expected = primitive.vjps[index](g, out, *operands, **params)
            np.testing.assert_array_equal(found, expected, err_msg=f"{name} input {index}")


@pytest.mark.parametrize("rows", [5, 31, 32, 500])
def test_the_faster_array_paths_give_numpys_results(rows):
    """The bias add through a column of ones, the 2-D product through ``np.dot``, g Wᵀ
    against a contiguous copy and the in-place tanh VJP: the same numbers as the plain
    numpy expressions."""
    rng = np.random.default_rng(rows)
    a, b = rng.standard_normal((rows, 8)), rng.standard_normal(8)
    np.testing.assert_array_equal(P.add.forward(a, b), a + b)
    np.testing.assert_array_equal(P.add.forward(b, a), b + a)
    w, column = rng.standard_normal((8, 3)), rng.standard_normal((rows, 1))
    np.testing.assert_allclose(P.matmul.forward(a, w), np.matmul(a, w), rtol=1e-14)
    np.testing.assert_allclose(P.matmul.forward(column, w[:1]), column * w[:1], rtol=1e-14)
    g = rng.standard_normal((rows, 3))
    np.testing.assert_allclose(P._matmul_vjp_left(g, None, a, w), g @ w.T, rtol=1e-14)
    out = np.tanh(a)
    np.testing.assert_array_equal(P.tanh.vjps[0](a, out, a), a * (1.0 - out * out))
    with pytest.raises(ValueError, match="matmul"):
        P.matmul(Tensor(a), Tensor(np.ones((3, 2))))


def hvp(params, x, y, vector):
    gradients = grad(mlp_cost(params, x, y), params, create_graph=True)
    directional = sum((g * v).sum() for g, v in zip(gradients, vector))
    return [g.value for g in gradients], [h.value for h in grad(directional, params)]


@pytest.mark.parametrize("batch", [10, 500])
def test_recorded_plans_give_the_recorded_walks_first_and_second_derivatives(fresh_plans, batch):
    params, x, y = mlp(batch)
    rng = np.random.default_rng(7)
    vector = [rng.standard_normal(p.value.shape) for p in params]
    autodiff.register_planner(None)
    try:
        expected = hvp(params, x, y, vector)
    finally:
        autodiff.register_planner(plans.gradients)
    for _ in range(plans.COMPILE_AFTER + 2):
        found = hvp(params, x, y, vector)
    assert len(plans._recorded_roots) == 1 and len(plans._unit_roots) == 1
    for first, second in zip(expected, found):
        for e, f in zip(first, second):
            np.testing.assert_allclose(f, e, rtol=1e-12, atol=1e-15)


def test_a_recorded_plan_records_a_bias_sum_as_the_walk_does():
    params, x, y = mlp(64)
    cost = mlp_cost(params, x, y)
    plan = plans.compile_plan(cost, recorded=True)
    assert plan.source.count("SUM_ROWS(") == 3  # one per bias
    previous = autodiff._grad_mode.enabled
    autodiff._grad_mode.enabled = True
    try:
        grads = plan(cost, Tensor(np.ones(())))
    finally:
        autodiff._grad_mode.enabled = previous
    walked_grads = grad(cost, params, create_graph=True)
    for bias, expected in zip(params[1::2], walked_grads[1::2]):
        found = grads[bias]
        assert found.op is P.sum_ and found.params == {"axis": 0} == expected.params
        np.testing.assert_allclose(found.value, expected.value, rtol=1e-13)


def test_a_recorded_plan_records_a_graph_that_differentiates_again():
    a = leaf((3, 4), 1)
    cost = (F.tanh(a) * F.tanh(a) / 3.0).sum()
    previous = autodiff._grad_mode.enabled
    plan = plans.compile_plan(cost, recorded=True)
    autodiff._grad_mode.enabled = True
    try:
        grads = plan(cost, Tensor(np.ones(())))
    finally:
        autodiff._grad_mode.enabled = previous
    (g,) = grads.values()
    assert g.requires_grad and g.op is not None
    t = np.tanh(a.value)
    np.testing.assert_allclose(g.value, 2.0 * t * (1.0 - t * t) / 3.0, rtol=1e-14)
    (second,) = grad(g.sum(), [a])
    np.testing.assert_allclose(
        second.value, (2.0 / 3.0) * (1.0 - t * t) * (1.0 - 3.0 * t * t), rtol=1e-12
    )


def test_threads_sharing_the_plans_get_the_walks_gradients(fresh_plans):
    """Sessions train in threads: plans are shared, compiled and reordered concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [mlp(batch) for batch in (10, 40, 500)]
    autodiff.register_planner(None)
    try:
        expected = [[g.value for g in grad(mlp_cost(*case), case[0])] for case in cases]
    finally:
        autodiff.register_planner(plans.gradients)

    def run(index: int) -> bool:
        params, x, y = cases[index % len(cases)]
        for _ in range(40):
            found = grad(mlp_cost(params, x, y), params)
            for e, f in zip(expected[index % len(cases)], found):
                if not np.array_equal(e, f.value):
                    return False
        return True

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(run, range(12)))
    assert 1 <= plans.statistics()["plans"] <= plans.PLANS_PER_ROOT


@pytest.mark.parametrize("recorded", [False, True])
@pytest.mark.parametrize("unit", [False, True])
def test_a_plan_for_one_batch_size_refuses_another_before_any_arithmetic(recorded, unit):
    """The shapes a plan writes in (reductions, broadcasts, rows of ones) are right only for
    a graph that passed every check, so every check comes first: a batch of 500 meeting a
    plan made at batch 10 (and the other way round) is refused, not an error."""
    if recorded and unit:
        return  # recorded plans never fold the seed
    costs = {batch: mlp_cost(*mlp(batch)) for batch in (10, 40, 500)}
    seed = Tensor(np.ones(())) if recorded else np.ones(())
    for made_at, cost in costs.items():
        plan = plans.compile_plan(cost, recorded=recorded, unit=unit)
        previous = autodiff._grad_mode.enabled
        autodiff._grad_mode.enabled = recorded or previous
        try:
            for other_batch, other in costs.items():
                found = plan(other, seed)
                assert (found is not None) == (other_batch == made_at)
        finally:
            autodiff._grad_mode.enabled = previous
    body = plans.compile_plan(costs[500], unit=unit).source.split("\n")
    last_check = max(i for i, line in enumerate(body) if line.strip().startswith("if "))
    first_sum = min(i for i, line in enumerate(body) if " g" in line and " = " in line)
    assert last_check < first_sum


def test_recorded_templates_record_what_the_vjps_record():
    rng = np.random.default_rng(5)
    a, w = Tensor(rng.standard_normal((40, 3))), Tensor(rng.standard_normal((3, 2)))
    g = Tensor(rng.standard_normal((40, 2)))
    t = Tensor(np.tanh(rng.standard_normal((40, 2))))
    cases = [(P.matmul, [a, w], Tensor(a.value @ w.value)), (P.tanh, [t], t)]
    previous = autodiff._grad_mode.enabled
    autodiff._grad_mode.enabled = True
    try:
        for primitive, operands, out in cases:
            for operand in operands:
                operand.requires_grad = True
            rule, helpers, recorded, _ = plans._inline[primitive]
            templates = recorded(out.shape, *[o.shape for o in operands])
            for index, template in enumerate(templates):
                names = {**helpers, "g": g, "out": out}
                names.update({f"v{i}": v for i, v in enumerate(operands)})
                expression = template.format(
                    *[f"v{i}" for i in range(len(operands))], g="g", out="out"
                )
                found = eval(expression, names)  # noqa: S307  (the plan's own expression)
                expected = primitive.vjps[index](g, out, *operands)
                assert found.op is expected.op and found.requires_grad
                np.testing.assert_array_equal(found.value, expected.value)
    finally:
        autodiff._grad_mode.enabled = previous
