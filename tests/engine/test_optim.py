"""Optimisers against hand computations on a quadratic, against torch.optim, and clipping."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from engine.autodiff import Tensor
from engine.optim import Optimizer, check_training_spec, clip_by_norm
from engine.spec import TrainingSpec

# J(θ) = ½ θᵀ A θ − bᵀ θ, gradient A θ − b, for two parameters of different shapes
A1 = np.array([[3.0, 0.5], [0.5, 1.0]])
B1 = np.array([1.0, -2.0])
A2 = np.diag([0.2, 4.0, 1.5])
B2 = np.array([0.3, 0.0, -1.0])
START = (np.array([1.0, 2.0]), np.array([-1.0, 0.5, 2.0]))


def gradients(values: list[np.ndarray]) -> list[np.ndarray]:
    return [A1 @ values[0] - B1, A2 @ values[1] - B2]


def run_engine(spec: TrainingSpec, steps: int) -> list[list[np.ndarray]]:
    parameters = [Tensor(v.copy(), requires_grad=True) for v in START]
    optimizer = Optimizer(parameters, spec)
    trajectory = []
    for _ in range(steps):
        optimizer.step(gradients([p.value for p in parameters]))
        trajectory.append([p.value.copy() for p in parameters])
    return trajectory


def run_by_hand(spec: TrainingSpec, steps: int) -> list[list[np.ndarray]]:
    values = [v.copy() for v in START]
    velocity = [np.zeros_like(v) for v in values]
    second = [np.zeros_like(v) for v in values]
    rate, mu = spec.learning_rate, spec.momentum
    trajectory = []
    for t in range(1, steps + 1):
        for i, g in enumerate(gradients(values)):
            if spec.optimizer == "sgd":
                values[i] = values[i] - rate * g
            elif spec.optimizer == "momentum":
                velocity[i] = mu * velocity[i] + g
                values[i] = values[i] - rate * velocity[i]
            elif spec.optimizer == "nesterov":
                velocity[i] = mu * velocity[i] + g
                values[i] = values[i] - rate * (g + mu * velocity[i])
            else:  # Adam, Kingma & Ba Algorithm 1
                velocity[i] = spec.beta1 * velocity[i] + (1 - spec.beta1) * g
                second[i] = spec.beta2 * second[i] + (1 - spec.beta2) * g * g
                m_hat = velocity[i] / (1 - spec.beta1**t)
                s_hat = second[i] / (1 - spec.beta2**t)
                values[i] = values[i] - rate * m_hat / (np.sqrt(s_hat) + spec.epsilon)
        trajectory.append([v.copy() for v in values])
    return trajectory


SPECS = {
    "sgd": TrainingSpec(optimizer="sgd", learning_rate=0.1),
    "momentum": TrainingSpec(optimizer="momentum", learning_rate=0.05, momentum=0.8),
    "nesterov": TrainingSpec(optimizer="nesterov", learning_rate=0.05, momentum=0.7),
    "adam": TrainingSpec(optimizer="adam", learning_rate=0.1, beta1=0.8, beta2=0.95, epsilon=1e-3),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_optimiser_matches_a_hand_computation(name):
    engine_path = run_engine(SPECS[name], 25)
    hand_path = run_by_hand(SPECS[name], 25)
    for ours, theirs in zip(engine_path, hand_path):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", list(SPECS))
def test_optimisers_converge_on_the_quadratic(name):
    final = run_engine(SPECS[name], 400)[-1]
    np.testing.assert_allclose(final[0], np.linalg.solve(A1, B1), atol=1e-2)
    np.testing.assert_allclose(final[1], np.linalg.solve(A2, B2), atol=1e-2)


def test_adam_first_step_has_the_learning_rate_as_size():
    # m̂ / √ŝ = g / |g| on the first step: every coordinate moves by ε whatever its scale
    spec = TrainingSpec(optimizer="adam", learning_rate=0.01, epsilon=1e-12)
    parameter = Tensor(np.zeros(3), requires_grad=True)
    Optimizer([parameter], spec).step([np.array([1e-4, -3.0, 250.0])])
    np.testing.assert_allclose(parameter.value, [-0.01, 0.01, -0.01], rtol=1e-6)


@pytest.mark.parametrize("name", list(SPECS))
def test_optimiser_matches_torch(name):
    torch = pytest.importorskip("torch")
    spec = SPECS[name]
    parameters = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in START]
    if name == "adam":
        optimizer = torch.optim.Adam(
            parameters, lr=spec.learning_rate, betas=(spec.beta1, spec.beta2), eps=spec.epsilon
        )
    else:
        optimizer = torch.optim.SGD(
            parameters,
            lr=spec.learning_rate,
            momentum=0.0 if name == "sgd" else spec.momentum,
            nesterov=name == "nesterov",
        )
    engine_path = run_engine(spec, 25)
    for ours in engine_path:
        optimizer.zero_grad()
        for parameter, g in zip(parameters, gradients([p.detach().numpy() for p in parameters])):
            parameter.grad = torch.from_numpy(g.copy())
        optimizer.step()
        for a, p in zip(ours, parameters):
            np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_optimiser_updates_in_place_and_counts_steps():
    parameter = Tensor(np.ones(2), requires_grad=True)
    storage = parameter.value
    optimizer = Optimizer([parameter], SPECS["momentum"])
    optimizer.step([np.ones(2)])
    optimizer.step([np.ones(2)])
    assert parameter.value is storage
    assert optimizer.steps == 2


def test_wrong_number_of_gradients():
    optimizer = Optimizer([Tensor(np.ones(2), requires_grad=True)], SPECS["sgd"])
    with pytest.raises(ValueError, match="2 gradients for 1 parameters"):
        optimizer.step([np.ones(2), np.ones(2)])


def test_clipping_scales_all_gradients_together():
    grads = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])]
    norm = clip_by_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(grads[0], [0.6, 0.0], rtol=1e-10)
    np.testing.assert_allclose(grads[1], [[0.0], [0.8]], rtol=1e-10)
    assert math.sqrt(sum(float((g * g).sum()) for g in grads)) == pytest.approx(1.0)


@pytest.mark.parametrize("limit", [0.0, 10.0])
def test_clipping_leaves_small_gradients_and_zero_turns_it_off(limit):
    grads = [np.array([3.0, 4.0])]
    assert clip_by_norm(grads, limit) == pytest.approx(5.0)
    np.testing.assert_array_equal(grads[0], [3.0, 4.0])


def test_clipping_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(3, 4)), rng.normal(size=5)]
    tensors = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for a in arrays]
    for t, a in zip(tensors, arrays):
        t.grad = torch.from_numpy(a.copy())
    torch.nn.utils.clip_grad_norm_(tensors, 0.5)
    clip_by_norm(arrays, 0.5)
    for t, a in zip(tensors, arrays):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"optimizer": "rmsprop"}, "training.optimizer"),
        ({"learning_rate": 0.0}, "training.learning_rate"),
        ({"learning_rate": float("nan")}, "training.learning_rate"),
        ({"learning_rate": "fast"}, "training.learning_rate"),
        ({"batch_size": 0}, "training.batch_size"),
        ({"batch_size": 2.5}, "training.batch_size"),
        ({"l2": -1.0}, "training.l2"),
        ({"l1": float("inf")}, "training.l1"),
        ({"clip_norm": -0.1}, "training.clip_norm"),
        ({"momentum": 1.0}, "training.momentum"),
        ({"beta2": -0.5}, "training.beta2"),
        ({"epsilon": 0.0}, "training.epsilon"),
    ],
)
def test_bad_training_spec_names_the_field(changes, field):
    spec = dataclasses.replace(TrainingSpec(), **changes)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        check_training_spec(spec)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        Optimizer([Tensor(np.ones(1), requires_grad=True)], spec)
