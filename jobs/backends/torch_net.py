"""The engine's MLP written again in torch, for the torch backend of the job kinds.

Same parameters in the same order as ``engine.nn.MLP.parameters()`` (W, b, then a PReLU
slope or RBF widths, per layer; the output layer last), same units, same losses (means
over the minibatch) and the same derivative conventions at kinks (ReLU'(0) = 0,
hard tanh'(±1) = 0), so that the two backends give the same losses and gradients on the
same weights. The input features (x1², sin x1, ...) hold no parameter: they are computed
by the engine and handed over as a tensor. torch is imported here only, and this module is
imported only by job code that runs on the torch backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as TF

from engine.nn import MLP
from engine.spec import ModelSpec, TrainingSpec

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def dtype_for(device: str) -> torch.dtype:
    """float64 on the CPU (the engine's precision, for parity); float32 on a GPU (speed)."""
    return torch.float64 if device == "cpu" else torch.float32


def tensors_of(
    model: MLP, device: str, dtype: torch.dtype | None = None, requires_grad: bool = True
) -> list[torch.Tensor]:
    """The model's parameters as torch leaves (copies), in ``model.parameters()`` order."""
    dtype = dtype_for(device) if dtype is None else dtype
    return [
        torch.tensor(p.value, dtype=dtype, device=device).requires_grad_(requires_grad)
        for p in model.parameters()
    ]


def as_tensor(array: np.ndarray, device: str, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(array), dtype=dtype, device=device)  # a copy


def softplus(a: torch.Tensor) -> torch.Tensor:
    """ζ(a) = log(1 + e^a) exactly as the engine computes it (no linear cut-off)."""
    return torch.logaddexp(a, torch.zeros((), dtype=a.dtype, device=a.device))


def _activate(kind: str, a: torch.Tensor, slope: Any, pieces: int) -> torch.Tensor:
    if kind == "tanh":
        return torch.tanh(a)
    if kind == "relu":
        return torch.relu(a)
    if kind in ("leaky_relu", "prelu"):
        return torch.relu(a) - slope * torch.relu(-a)
    if kind == "sigmoid":
        return torch.sigmoid(a)
    if kind == "softplus":
        return softplus(a)
    if kind == "hard_tanh":
        return TF.hardtanh(a)  # its gradient is 0 at ±1, as in the engine
    if kind == "abs":
        return torch.abs(a)
    if kind == "maxout":
        return a.reshape(a.shape[:-1] + (a.shape[-1] // pieces, pieces)).amax(dim=-1)
    if kind == "linear":
        return a
    if kind == "rbf":
        return torch.exp(a)
    raise ValueError(f"the torch backend has no {kind!r} units")


def forward(spec: ModelSpec, params: Sequence[torch.Tensor], features: torch.Tensor) -> list:
    """Every hidden layer's activation h, then the output pre-activations z.

    Parameters may carry leading batch dimensions (B, …): then the same features go
    through B nets at once and every result has the batch dimensions in front (how the
    landscape evaluates a row of points in one pass).
    """
    h = features
    index = 0
    layers = []
    for layer in spec.layers:
        weights, bias = params[index], params[index + 1]
        index += 2
        slope: Any = None
        if layer.activation == "prelu":
            slope = params[index].unsqueeze(-2)
            index += 1
        elif layer.activation == "leaky_relu":
            slope = layer.slope
        if layer.activation == "rbf":
            widths = params[index].unsqueeze(-2)
            index += 1
            diff = h.unsqueeze(-1) - weights.unsqueeze(-3)  # (…, n, fan_in, units)
            a = bias.unsqueeze(-2) - (diff * diff).sum(dim=-2) / (widths * widths)
        else:
            a = _affine(h, weights, bias)
        h = _activate(layer.activation, a, slope, layer.pieces)
        layers.append(h)
    layers.append(_affine(h, params[index], params[index + 1]))
    return layers


def _affine(h: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """h W + b, for one net (2-D weights) or a batch of nets (3-D weights)."""
    if weights.dim() == 2 and h.dim() == 2:
        return torch.addmm(bias, h, weights)
    if weights.dim() == 3 and h.dim() == 3:
        return torch.baddbmm(bias.unsqueeze(-2), h, weights)  # the add fused into the product
    return torch.matmul(h, weights) + bias.unsqueeze(-2)


def _total(per_entry: torch.Tensor) -> torch.Tensor:
    """Sum over the last two dimensions (examples, outputs), keeping batch dimensions."""
    return per_entry.sum(dim=(-2, -1))


def loss(spec: ModelSpec, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The output's negative log-likelihood, a mean over the minibatch (as ``output_loss``);
    one value per net when ``z`` has batch dimensions in front of (examples, outputs)."""
    output = spec.output
    n = z.shape[-2]
    if output.loss == "softmax":
        log_p = torch.log_softmax(z, dim=-1)
        labels = y.long().reshape(-1, 1).expand(z.shape[:-1] + (1,))
        return -_total(torch.gather(log_p, -1, labels)) / n
    target = y.reshape(-1, 1)
    if output.loss == "bernoulli":
        return _total(softplus(z) - target * z) / n
    if output.loss == "squared":
        diff = z - target
        return 0.5 * _total(diff * diff) / n
    if output.loss == "absolute":
        return _total(torch.abs(z - target)) / n
    if output.loss == "gaussian":
        beta = output.precision
        diff = target - z
        constant = -0.5 * math.log(beta) + _HALF_LOG_TWO_PI
        return _total(0.5 * beta * diff * diff + constant) / n
    if output.loss == "gaussian_learned":
        precision = softplus(z[..., 1:2])
        diff = target - z[..., 0:1]
        per = 0.5 * precision * diff * diff - 0.5 * torch.log(precision) + _HALF_LOG_TWO_PI
        return _total(per) / n
    if output.loss == "mixture":
        k = output.components
        log_weights = torch.log_softmax(z[..., :k], dim=-1)
        precision = softplus(z[..., 2 * k : 3 * k])
        diff = target - z[..., k : 2 * k]
        log_density = 0.5 * torch.log(precision) - _HALF_LOG_TWO_PI - 0.5 * precision * diff * diff
        return -torch.logsumexp(log_weights + log_density, dim=-1).sum(dim=-1) / n
    raise ValueError(f"the torch backend has no {output.loss!r} output")


def weight_indices(spec: ModelSpec) -> list[int]:
    """Positions of the weight matrices W that the penalties apply to (not RBF templates)."""
    indices, index = [], 0
    for layer in spec.layers:
        if layer.activation != "rbf":
            indices.append(index)
        index += 2 + (1 if layer.activation in ("prelu", "rbf") else 0)
    indices.append(index)
    return indices


def cost(
    spec: ModelSpec,
    params: Sequence[torch.Tensor],
    features: torch.Tensor,
    y: torch.Tensor,
    l2: float = 0.0,
    l1: float = 0.0,
) -> torch.Tensor:
    """J = L + Ω with Ω = λ₂/2 ‖W‖² + λ₁ ‖W‖₁ on weights only (``MLP.cost``)."""
    total = loss(spec, forward(spec, params, features)[-1], y)
    if l2 or l1:
        for index in weight_indices(spec):
            weights = params[index]
            if l2:
                total = total + (0.5 * l2) * _total(weights * weights)
            if l1:
                total = total + l1 * _total(torch.abs(weights))
    return total


class Optimizer:
    """``engine.optim.Optimizer`` in torch: SGD, momentum, Nesterov and Adam, same formulas."""

    def __init__(self, params: Sequence[torch.Tensor], spec: TrainingSpec):
        self.params = list(params)
        self.spec = spec
        self.steps = 0
        self.velocity = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params] if spec.optimizer == "adam" else []

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor]) -> None:
        spec = self.spec
        rate = spec.learning_rate
        self.steps += 1
        if spec.optimizer == "sgd":
            for p, g in zip(self.params, grads):
                p.sub_(rate * g)
        elif spec.optimizer in ("momentum", "nesterov"):
            mu = spec.momentum
            for p, g, v in zip(self.params, grads, self.velocity):
                v.mul_(mu).add_(g)
                p.sub_(rate * (v if spec.optimizer == "momentum" else g + mu * v))
        else:
            beta1, beta2 = spec.beta1, spec.beta2
            step_size = rate / (1.0 - beta1**self.steps)
            root_correction2 = math.sqrt(1.0 - beta2**self.steps)
            for p, g, m, s in zip(self.params, grads, self.velocity, self.second):
                m.mul_(beta1).add_((1.0 - beta1) * g)
                s.mul_(beta2).add_((1.0 - beta2) * g * g)
                denominator = s.sqrt() / root_correction2 + spec.epsilon
                p.sub_(step_size * m / denominator)


def clip_by_norm(grads: Sequence[torch.Tensor], max_norm: float) -> None:
    """Scale the gradients together to a joint norm of at most ``max_norm`` (in place)."""
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads:
            g.mul_(scale)
