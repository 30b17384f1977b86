"""Backprop Lab's numpy autodiff engine: tensors, primitives, networks, optimisers, data."""

from engine import primitives as _primitives  # noqa: F401  (binds Tensor's operators)
from engine.autodiff import Tensor, backward, enable_grad, grad, is_grad_enabled, no_grad, trace

__all__ = ["Tensor", "backward", "enable_grad", "grad", "is_grad_enabled", "no_grad", "trace"]
