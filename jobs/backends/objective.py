"""A session's training cost J(θ) = L + Ω as a function of one flat parameter vector,
on either backend: its value at many points, its gradient and Hessian-vector products at
the session's weights. The landscape and spectrum kinds are written against this.

θ concatenates ``MLP.parameters()`` in order (``engine.curvature.flatten``). The data are
the session's whole training set; Ω holds the session's L2/L1 penalties on the weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from engine.autodiff import no_grad
from engine.curvature import HessianVectorProduct, flatten, unflatten
from engine.datasets import make_dataset
from engine.fastpath import FastPath, unsupported_reason
from engine.nn import MLP
from engine.spec import Config
from jobs.specs import load_model


class Objective(ABC):
    """What both backends offer; ``theta`` is the session's point."""

    model: MLP
    theta: np.ndarray
    shapes: list[tuple[int, ...]]

    @abstractmethod
    def values(self, thetas: np.ndarray) -> np.ndarray:
        """J at each row of ``thetas`` (B × P)."""

    @abstractmethod
    def gradient(self) -> np.ndarray:
        """∇J at ``theta``."""

    @abstractmethod
    def hvp(self, vector: np.ndarray) -> np.ndarray:
        """H v at ``theta``."""

    @property
    def size(self) -> int:
        return int(self.theta.size)

    @property
    def weight_mask(self) -> list[bool]:
        """Which parameters are weight matrices (the others: biases, slopes, widths)."""
        return [len(shape) >= 2 for shape in self.shapes]


def _setup(config: dict[str, Any], weights: dict[str, list] | None) -> tuple:
    engine_config = Config.from_dict(config)
    dataset = make_dataset(engine_config.data)
    model = load_model(engine_config, weights)
    return engine_config, dataset, model


class NumpyObjective(Objective):
    """J on the numpy engine: the layer-wise fast path for values when the net allows it,
    the generic engine (and its grad of grad) otherwise and for the Hessian."""

    def __init__(self, config: dict[str, Any], weights: dict[str, list] | None):
        engine_config, dataset, model = _setup(config, weights)
        self.model = model
        self.params = model.parameters()
        self.shapes = [p.shape for p in self.params]
        self.theta = flatten([p.value for p in self.params])
        self.x = dataset.x_train
        self.y = dataset.y_train
        self.features = np.ascontiguousarray(model.features(self.x))
        self.l2 = float(engine_config.training.l2)
        self.l1 = float(engine_config.training.l1)
        self.fastpath = FastPath(model) if unsupported_reason(model) is None else None
        self._hvp: HessianVectorProduct | None = None

    def _load(self, theta: np.ndarray) -> None:
        for p, value in zip(self.params, unflatten(theta, self.shapes)):
            p.value = value

    def _penalty(self) -> float:
        total = 0.0
        for weights in self.model.weight_tensors():
            if self.l2:
                total += 0.5 * self.l2 * float(np.vdot(weights.value, weights.value))
            if self.l1:
                total += self.l1 * float(np.abs(weights.value).sum())
        return total

    def value_at(self, theta: np.ndarray) -> float:
        self._load(np.array(theta, dtype=np.float64))
        if self.fastpath is not None:
            loss, _ = self.fastpath.loss_and_outputs(self.features, self.y)
            return float(loss) + self._penalty()
        with no_grad():
            return float(self.model.cost(self.x, self.y, self.l2, self.l1).value)

    def values(self, thetas: np.ndarray) -> np.ndarray:
        try:
            return np.array([self.value_at(theta) for theta in np.atleast_2d(thetas)])
        finally:
            self._load(self.theta.copy())

    def _operator(self) -> HessianVectorProduct:
        if self._hvp is None:
            self._load(self.theta.copy())
            cost = self.model.cost(self.x, self.y, self.l2, self.l1)
            self._hvp = HessianVectorProduct(cost, self.params)
        return self._hvp

    def gradient(self) -> np.ndarray:
        return self._operator().gradient

    def hvp(self, vector: np.ndarray) -> np.ndarray:
        return self._operator()(vector)


class TorchObjective(Objective):
    """J in torch (``jobs.backends.torch_net``): values of a batch of points in one
    batched forward pass, the gradient and HVPs by torch's autograd (grad of grad)."""

    def __init__(
        self, config: dict[str, Any], weights: dict[str, list] | None, device: str = "cpu"
    ):
        import torch

        from jobs.backends import torch_net as tn

        engine_config, dataset, model = _setup(config, weights)
        self.torch, self.tn = torch, tn
        self.model = model
        self.spec = engine_config.model
        self.device = device
        self.dtype = tn.dtype_for(device)
        self.shapes = [p.shape for p in model.parameters()]
        self.theta = flatten([p.value for p in model.parameters()])
        self.features = tn.as_tensor(model.features(dataset.x_train), device, self.dtype)
        self.y = tn.as_tensor(dataset.y_train, device, self.dtype)
        self.l2 = float(engine_config.training.l2)
        self.l1 = float(engine_config.training.l1)
        self._gradients: list | None = None
        self._params: list | None = None

    def _split(self, flat: Any) -> list:
        """Views of a flat (…, P) tensor as the parameters' shapes, batch dims first."""
        parts, offset = [], 0
        lead = tuple(flat.shape[:-1])
        for shape in self.shapes:
            size = int(np.prod(shape))
            parts.append(flat[..., offset : offset + size].reshape(lead + tuple(shape)))
            offset += size
        return parts

    def values(self, thetas: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            flat = torch.as_tensor(np.atleast_2d(thetas), dtype=self.dtype, device=self.device)
            params = self._split(flat)
            costs = self.tn.cost(self.spec, params, self.features, self.y, self.l2, self.l1)
            return costs.reshape(-1).cpu().numpy().astype(np.float64)

    def _first(self) -> tuple[list, list]:
        if self._gradients is None:
            torch = self.torch
            self._params = [
                torch.tensor(value, dtype=self.dtype, device=self.device, requires_grad=True)
                for value in unflatten(self.theta.copy(), self.shapes)
            ]
            cost = self.tn.cost(self.spec, self._params, self.features, self.y, self.l2, self.l1)
            self._gradients = list(torch.autograd.grad(cost, self._params, create_graph=True))
        return self._params, self._gradients  # type: ignore[return-value]

    def gradient(self) -> np.ndarray:
        _, gradients = self._first()
        return flatten([g.detach().cpu().numpy() for g in gradients])

    def hvp(self, vector: np.ndarray) -> np.ndarray:
        torch = self.torch
        params, gradients = self._first()
        parts = unflatten(np.asarray(vector, dtype=np.float64), self.shapes)
        directional = sum(
            (g * torch.as_tensor(v, dtype=self.dtype, device=self.device)).sum()
            for g, v in zip(gradients, parts)
        )
        if not directional.requires_grad:
            return np.zeros(self.size)
        second = torch.autograd.grad(directional, params, retain_graph=True, allow_unused=True)
        return flatten(
            [
                np.zeros(shape) if s is None else s.detach().cpu().numpy()
                for s, shape in zip(second, self.shapes)
            ]
        )


def objective_for(
    config: dict[str, Any], weights: dict[str, list] | None, backend: str, device: str
) -> Objective:
    if backend == "torch":
        return TorchObjective(config, weights, device)
    return NumpyObjective(config, weights)
