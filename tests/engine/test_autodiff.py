"""The Tensor API: operators, reductions, shapes, indexing, backward, grad, no_grad, trace."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Tensor, backward, enable_grad, grad, gradcheck, is_grad_enabled, no_grad, trace

rng = np.random.default_rng(7)


def leaf(value, name=None) -> Tensor:
    return Tensor(np.asarray(value, dtype=np.float64), requires_grad=True, name=name)


# ----- construction ------------------------------------------------------------------------
def test_tensor_holds_float64_and_copies_from_a_tensor():
    x = Tensor([1, 2, 3])
    assert x.value.dtype == np.float64
    assert x.shape == (3,) and x.ndim == 1 and x.size == 3 and len(x) == 3
    assert not x.requires_grad and x.is_leaf and x.grad is None
    y = Tensor(x, requires_grad=True, name="y")
    assert y.requires_grad and y.name == "y"
    np.testing.assert_array_equal(y.value, [1.0, 2.0, 3.0])


def test_item_of_single_element_tensors():
    assert Tensor(2.5).item() == 2.5
    assert Tensor([[2.5]]).item() == 2.5
    with pytest.raises((ValueError, TypeError)):
        Tensor([1.0, 2.0]).item()


# ----- operators follow numpy --------------------------------------------------------------
@pytest.mark.parametrize(
    ("operator", "op_name"),
    [
        (lambda a, b: a + b, "add"),
        (lambda a, b: a - b, "subtract"),
        (lambda a, b: a * b, "multiply"),
        (lambda a, b: a / b, "divide"),
        (lambda a, b: a**b, "power"),
    ],
)
def test_binary_operators_match_numpy_with_tensors_scalars_and_arrays(operator, op_name):
    a_value = rng.uniform(0.5, 2.0, (3, 4))
    b_value = rng.uniform(0.5, 2.0, (4,))
    a, b = leaf(a_value), leaf(b_value)
    expected = operator(a_value, b_value)
    for result in (operator(a, b), operator(a, b_value), operator(a_value, b)):
        assert isinstance(result, Tensor)
        assert result.op is not None and result.op.name == op_name
        np.testing.assert_allclose(result.value, expected)
    np.testing.assert_allclose(operator(a, 1.5).value, operator(a_value, 1.5))
    np.testing.assert_allclose(operator(1.5, b).value, operator(1.5, b_value))
    np.testing.assert_allclose(operator(np.float64(1.5), b).value, operator(1.5, b_value))


def test_matmul_and_unary_minus():
    a_value, b_value = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    a, b = leaf(a_value), leaf(b_value)
    for result in (a @ b, a_value @ b, a @ b_value):
        assert isinstance(result, Tensor) and result.op.name == "matmul"
        np.testing.assert_allclose(result.value, a_value @ b_value)
    assert (-a).op.name == "negative"
    np.testing.assert_array_equal((-a).value, -a_value)


def test_operators_broadcast_like_numpy_and_gradients_keep_input_shapes():
    column, row = leaf(rng.standard_normal((3, 1))), leaf(rng.standard_normal((1, 4)))
    scalar = leaf(2.0)
    out = (column * row + scalar) * leaf(rng.standard_normal(4))
    assert out.shape == (3, 4)
    gradients = grad(out.sum(), [column, row, scalar])
    assert [g.shape for g in gradients] == [(3, 1), (1, 4), ()]


# ----- reductions and shapes ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("axis", "keepdims"),
    [
        (None, False),
        (None, True),
        (0, False),
        (1, True),
        (-1, False),
        ((0, 1), False),
        ([0, 1], True),
    ],
)
def test_sum_and_mean_match_numpy(axis, keepdims):
    value = rng.standard_normal((3, 4))
    x = leaf(value)
    numpy_axis = tuple(axis) if isinstance(axis, list) else axis
    total = x.sum(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(total.value, value.sum(axis=numpy_axis, keepdims=keepdims))
    mean = x.mean(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(mean.value, value.mean(axis=numpy_axis, keepdims=keepdims))
    (gradient,) = grad(mean.sum(), [x])
    count = value.size / np.asarray(value.mean(axis=numpy_axis)).size
    np.testing.assert_allclose(gradient.value, np.full((3, 4), 1.0 / count))


def test_reshape_accepts_a_tuple_separate_sizes_and_minus_one():
    x = leaf(np.arange(12.0))
    assert x.reshape(3, 4).shape == (3, 4)
    assert x.reshape((2, 6)).shape == (2, 6)
    assert x.reshape(-1, 3).shape == (4, 3)
    (gradient,) = grad((x.reshape(3, 4) * np.arange(12.0).reshape(3, 4)).sum(), [x])
    np.testing.assert_array_equal(gradient.value, np.arange(12.0))


def test_reshape_to_a_wrong_size_raises_value_error_naming_the_shapes():
    with pytest.raises(ValueError, match=r"\(12,\)"):
        leaf(np.arange(12.0)).reshape(5, 3)


def test_transpose_forms():
    value = rng.standard_normal((2, 3, 4))
    x = leaf(value)
    np.testing.assert_array_equal(leaf(value[0]).T.value, value[0].T)
    np.testing.assert_array_equal(x.transpose().value, value.transpose())
    np.testing.assert_array_equal(x.transpose(1, 0, 2).value, value.transpose(1, 0, 2))
    np.testing.assert_array_equal(x.transpose((2, 0, 1)).value, value.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.transpose(0, -1, -2).value, value.transpose(0, 2, 1))
    weights = rng.standard_normal((2, 4, 3))
    (gradient,) = grad((x.transpose(0, -1, -2) * weights).sum(), [x])
    np.testing.assert_array_equal(gradient.value, weights.transpose(0, 2, 1))


def test_integer_array_indexing_scatters_repeated_picks():
    value = rng.standard_normal((3, 4))
    x = leaf(value)
    labels = np.array([1, 3, 1])
    picked = x[np.arange(3), labels]
    np.testing.assert_array_equal(picked.value, value[np.arange(3), labels])
    rows = x[[0, 2, 0]]
    np.testing.assert_array_equal(rows.value, value[[0, 2, 0]])
    (gradient,) = grad(picked.sum() + rows.sum(), [x])
    expected = np.zeros((3, 4))
    expected[np.arange(3), labels] += 1.0
    expected[[0, 2]] += np.array([[2.0], [1.0]])
    np.testing.assert_array_equal(gradient.value, expected)
    np.testing.assert_array_equal(x[1].value, value[1])
    np.testing.assert_array_equal(x[:, 1:3].value, value[:, 1:3])


def test_indexing_with_a_tensor_is_refused():
    with pytest.raises(ValueError, match="integer"):
        leaf([1.0, 2.0])[Tensor([0.0])]


# ----- backward ----------------------------------------------------------------------------
def test_backward_fills_leaves_and_accumulates_like_torch():
    x = leaf([1.0, 2.0, 3.0])
    loss = (x * x).sum()
    loss.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0, 12.0])


def test_backward_leaves_get_their_own_writable_gradients():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad *= 0.5  # an optimiser may clip or scale in place
    b.grad += 1.0
    np.testing.assert_array_equal(a.grad, [0.5, 0.5])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])


def test_backward_sums_the_contributions_of_every_child():
    # Algorithm 6.4: x feeds three children; its gradient is the sum over them
    x = leaf(1.5)
    y = x * x + x.exp() + x.tanh()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * 1.5 + np.exp(1.5) + 1 - np.tanh(1.5) ** 2)


def test_backward_with_an_explicit_output_gradient():
    x = leaf([1.0, 2.0])
    y = x * x
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 40.0])
    backward(x * 3.0, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [5.0, 43.0])


def test_non_scalar_backward_without_a_gradient_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="non-scalar"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(3))


def test_backward_of_a_constant_raises():
    with pytest.raises(ValueError):
        Tensor(1.0).backward()


def test_intermediate_nodes_keep_their_gradient_without_accumulating():
    x = leaf(2.0)
    hidden = x * 3.0
    out = hidden * hidden
    out.backward()
    out.backward()
    assert float(hidden.grad) == 2 * 6.0  # set, not summed over the two passes
    assert float(x.grad) == 2 * 36.0  # leaves accumulate


# ----- grad --------------------------------------------------------------------------------
def test_grad_returns_zeros_for_unrelated_inputs_and_leaves_dot_grad_alone():
    x, unrelated = leaf([1.0, 2.0]), leaf([[5.0, 6.0, 7.0]])
    gx, gu = grad((x * x).sum(), [x, unrelated])
    np.testing.assert_array_equal(gx.value, [2.0, 4.0])
    np.testing.assert_array_equal(gu.value, np.zeros((1, 3)))
    assert x.grad is None and unrelated.grad is None
    (from_constant,) = grad(Tensor(3.0) * 2.0, [x])
    np.testing.assert_array_equal(from_constant.value, [0.0, 0.0])


def test_grad_with_respect_to_an_intermediate_node_and_a_single_input():
    x = leaf(0.3)
    hidden = x.tanh()
    out = hidden * hidden
    (gradient,) = grad(out, hidden)
    np.testing.assert_allclose(gradient.value, 2 * np.tanh(0.3))


def test_grad_refuses_non_tensor_inputs():
    x = leaf(1.0)
    with pytest.raises(ValueError, match="Tensor"):
        grad(x * x, [np.array(1.0)])


def test_grad_without_create_graph_records_nothing():
    x = leaf(2.0)
    (gradient,) = grad(x * x * x, [x])
    assert not gradient.requires_grad and gradient.is_leaf


def test_create_graph_gives_grad_of_grad_of_grad():
    x = leaf(1.7)
    y = x * x * x * x  # x⁴
    (first,) = grad(y, [x], create_graph=True)
    (second,) = grad(first, [x], create_graph=True)
    (third,) = grad(second, [x])
    np.testing.assert_allclose(
        [first.item(), second.item(), third.item()], [4 * 1.7**3, 12 * 1.7**2, 24 * 1.7]
    )


def test_hessian_vector_product_of_a_quadratic_form():
    matrix = rng.standard_normal((4, 4))
    direction = rng.standard_normal(4)
    x = leaf(rng.standard_normal(4))
    energy = (x @ Tensor(matrix) @ x) * 0.5
    (gradient,) = grad(energy, [x], create_graph=True)
    (hvp,) = grad((gradient * direction).sum(), [x])
    np.testing.assert_allclose(hvp.value, 0.5 * (matrix + matrix.T) @ direction)


# ----- no_grad -----------------------------------------------------------------------------
def test_no_grad_records_nothing_and_restores_the_mode():
    x = leaf([1.0, 2.0])
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).tanh().sum()
        with enable_grad():
            recorded = x * 2.0
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.parents == ()
    assert len(trace(y)) == 1
    assert recorded.requires_grad and recorded.op.name == "multiply"
    with pytest.raises(RuntimeError), no_grad():
        raise RuntimeError("leave the block by an exception")
    assert is_grad_enabled()


# ----- trace -------------------------------------------------------------------------------
def _small_network():
    x = Tensor(np.array([[0.5, -1.0]]), name="x")
    weights = leaf([[0.3, -0.2, 0.1], [0.4, 0.5, -0.6]], name="weights")
    bias = leaf([0.1, 0.0, -0.1], name="bias")
    pre_activation = (x @ weights + bias).named("pre_activation")
    activation = pre_activation.tanh().named("activation")
    loss = (activation * activation).sum().named("loss")
    return x, weights, bias, pre_activation, activation, loss


def test_trace_lists_nodes_in_forward_order_with_their_fields():
    x, weights, bias, pre_activation, activation, loss = _small_network()
    nodes = trace(loss)
    keys = {"id", "name", "op", "parents", "shape", "value", "grad"}
    assert all(keys <= set(node) for node in nodes)
    position = {node["id"]: i for i, node in enumerate(nodes)}
    assert len(position) == len(nodes)
    for i, node in enumerate(nodes):
        assert all(position[parent] < i for parent in node["parents"])
    assert nodes[-1]["id"] == loss.id
    by_name = {node["name"]: node for node in nodes if node["name"]}
    assert set(by_name) == {"x", "weights", "bias", "pre_activation", "activation", "loss"}
    assert by_name["x"]["op"] == "constant"
    assert by_name["weights"]["op"] == "parameter"
    assert by_name["activation"]["op"] == "tanh"
    assert by_name["activation"]["parents"] == [pre_activation.id]
    assert by_name["pre_activation"]["shape"] == [1, 3]
    np.testing.assert_allclose(by_name["activation"]["value"], np.tanh(pre_activation.value))
    assert all(node["grad"] is None for node in nodes)


def test_trace_gradients_are_filled_after_backward():
    x, weights, bias, pre_activation, activation, loss = _small_network()
    loss.backward()
    by_name = {node["name"]: node for node in trace(loss)}
    np.testing.assert_allclose(by_name["activation"]["grad"], 2 * activation.value)
    np.testing.assert_allclose(
        by_name["pre_activation"]["grad"], 2 * activation.value * (1 - activation.value**2)
    )
    np.testing.assert_allclose(by_name["bias"]["grad"], by_name["pre_activation"]["grad"][0])
    np.testing.assert_allclose(
        by_name["weights"]["grad"], x.value.T @ by_name["pre_activation"]["grad"]
    )
    assert by_name["x"]["grad"] is None  # a constant needs no gradient
    assert float(by_name["loss"]["grad"]) == 1.0


def test_trace_params_are_plain_python():
    x = leaf(np.arange(6.0).reshape(2, 3))
    picked = x[np.array([1, 0]), np.array([2, 2])].sum(axis=0)
    params = [node["params"] for node in trace(picked) if node["params"]]
    assert {"axis": 0, "keepdims": False} in params
    assert {"index": [[1, 0], [2, 2]]} in params


# ----- deep graphs -------------------------------------------------------------------------
def test_two_hundred_layers_backpropagate_and_match_finite_differences():
    layer_rng = np.random.default_rng(3)
    layers = [
        (layer_rng.standard_normal((3, 3)) * 0.6, layer_rng.standard_normal(3) * 0.1)
        for _ in range(200)
    ]

    def network(inputs: Tensor) -> Tensor:
        activation = inputs
        for weights, bias in layers:
            activation = (activation @ weights + bias).tanh()
        return activation.sum()

    inputs = np.array([[0.3, -0.8, 0.5]])
    assert gradcheck.check_grad(network, [inputs]) < 1e-6
    x = leaf(inputs)
    network(x).backward()
    assert x.grad.shape == (1, 3) and np.all(np.isfinite(x.grad))


def test_a_ten_thousand_op_chain_backpropagates_without_recursion():
    x = leaf(0.5)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001**10_000)
    assert len([node for node in trace(y) if node["op"] == "multiply"]) == 10_000
    (second,) = grad(grad(y * y, [x], create_graph=True)[0], [x])
    np.testing.assert_allclose(second.value, 2 * 1.0001**20_000)


# ----- bad input ---------------------------------------------------------------------------
def test_matmul_shape_mismatch_raises_value_error_naming_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(3, 4\).*\(3, 4\)"):
        leaf(np.ones((3, 4))) @ leaf(np.ones((3, 4)))


def test_add_shape_mismatch_raises_value_error_naming_op_and_shapes():
    with pytest.raises(ValueError, match=r"add.*\(3,\).*\(4,\)"):
        leaf(np.ones(3)) + leaf(np.ones(4))
