"""The layer-wise back-propagation of Algorithms 6.1 and 6.2, for fast live training.

The generic engine (``engine.grad`` on ``MLP.cost``) builds a graph of a few dozen
nodes per step and walks it; that flexibility costs Python overhead on every step. For
the plain chain of affine layers and element-wise units that the playground trains,
the chapter's Algorithm 6.2 is enough:

    forward:   a⁽ᵏ⁾ = h⁽ᵏ⁻¹⁾ W⁽ᵏ⁾ + b⁽ᵏ⁾,  h⁽ᵏ⁾ = f(a⁽ᵏ⁾)       (row-vector minibatches)
    backward:  g ← ∇_ŷ J
               for k = l … 1:  g ← g ⊙ f'(a⁽ᵏ⁾)
                               ∇b⁽ᵏ⁾ = Σₙ g,  ∇W⁽ᵏ⁾ = h⁽ᵏ⁻¹⁾ᵀ g + λ ∇_W Ω
                               g ← g W⁽ᵏ⁾ᵀ

Every array it touches is allocated once per batch size and reused (``out=``), so a
step does no allocation beyond numpy's own scratch. The derivative conventions at
kinks are the generic engine's (ReLU'(0) = 0, |·|'(0) = 0, hard tanh'(±1) = 0, maxout
sends the gradient to the first of tied pieces), and tests hold both paths to the same
gradients within 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.nn import MLP, Layer
from engine.spec import ACTIVATIONS

# Every hidden unit but RBF (its pre-activation is not affine). Derived from the spec: a new
# activation is claimed here at once, and test_fastpath (each supported unit against the
# general engine) fails until its derivative is written or it is excluded.
SUPPORTED_UNITS = tuple(kind for kind in ACTIVATIONS if kind != "rbf")
SUPPORTED_LOSSES = ("bernoulli", "softmax", "squared", "absolute", "gaussian")
_MAX_WORKSPACES = 6


def unsupported_reason(model: MLP) -> str | None:
    """Why the fast path cannot train ``model`` exactly, or None when it can."""
    for index, layer in enumerate(model.layers):
        if layer.spec.activation not in SUPPORTED_UNITS:
            return f"layer {index + 1} uses {layer.spec.activation!r} units"
    if model.spec.output.loss not in SUPPORTED_LOSSES:
        return f"the {model.spec.output.loss!r} output"
    return None


# numpy's float64 tanh is about twice as slow as its exp on CPUs without AVX-512; on
# arrays larger than this, tanh and σ are computed from one exp (a few cheap ops more)
_EXP_FORM_SIZE = 400


def _tanh(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    if a.size < _EXP_FORM_SIZE:
        return np.tanh(a, out=out)
    # tanh(a) = 2 / (1 + e^(−2a)) − 1; the exponent is capped so that e^(−2a) cannot
    # overflow (the result is already −1 there); absolute error below 1e-15
    np.multiply(a, -2.0, out=out)
    np.minimum(out, 700.0, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(2.0, out, out=out)
    out -= 1.0
    return out


def _sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    if a.size < _EXP_FORM_SIZE:
        # σ(a) = (1 + tanh(a/2)) / 2: never overflows, one transcendental call
        np.multiply(a, 0.5, out=out)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out
    # σ(a) = 1 / (1 + e^(−a)), the exponent capped as in _tanh
    np.negative(a, out=out)
    np.minimum(out, 700.0, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(1.0, out, out=out)
    return out


# ----- hidden units: forward h = f(a) and backward g ← ∂J/∂h ⊙ f'(a) ---------------------
@dataclass
class _Buffers:
    """One hidden layer's arrays for one batch size."""

    pre_activation: np.ndarray  # a, (n, width)
    activation: np.ndarray  # h, (n, units); the same array as a for linear units
    grad_activation: np.ndarray  # ∂J/∂h, (n, units)
    grad_pre_activation: np.ndarray  # ∂J/∂a, (n, width); may be grad_activation itself
    scratch: np.ndarray  # (n, width)
    mask: np.ndarray  # (n, width) booleans
    winners: np.ndarray | None = None  # maxout: index of the winning piece, (n, units, 1)


def _forward_tanh(layer: Layer, buffers: _Buffers) -> None:
    _tanh(buffers.pre_activation, buffers.activation)


def _backward_tanh(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    # tanh'(a) = 1 − h²
    derivative = buffers.scratch
    np.multiply(buffers.activation, buffers.activation, out=derivative)
    np.subtract(1.0, derivative, out=derivative)
    buffers.grad_activation *= derivative


def _forward_sigmoid(layer: Layer, buffers: _Buffers) -> None:
    _sigmoid(buffers.pre_activation, buffers.activation)


def _backward_sigmoid(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    # σ'(a) = h (1 − h)
    derivative = buffers.scratch
    np.subtract(1.0, buffers.activation, out=derivative)
    derivative *= buffers.activation
    buffers.grad_activation *= derivative


def _forward_softplus(layer: Layer, buffers: _Buffers) -> None:
    np.logaddexp(0.0, buffers.pre_activation, out=buffers.activation)


def _backward_softplus(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    # ζ'(a) = σ(a)
    buffers.grad_activation *= _sigmoid(buffers.pre_activation, buffers.scratch)


def _forward_relu(layer: Layer, buffers: _Buffers) -> None:
    np.maximum(buffers.pre_activation, 0.0, out=buffers.activation)


def _backward_relu(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    np.greater(buffers.pre_activation, 0.0, out=buffers.mask)
    buffers.grad_activation *= buffers.mask


def _negative_part(buffers: _Buffers) -> np.ndarray:
    """min(a, 0) in the scratch buffer."""
    return np.minimum(buffers.pre_activation, 0.0, out=buffers.scratch)


def _forward_leaky(layer: Layer, buffers: _Buffers, slope: np.ndarray | float) -> None:
    # relu(a) − α relu(−a) = max(a, 0) + α min(a, 0)
    negative = _negative_part(buffers)
    negative *= slope
    np.maximum(buffers.pre_activation, 0.0, out=buffers.activation)
    buffers.activation += negative


def _backward_leaky(buffers: _Buffers, slope: np.ndarray | float) -> None:
    # f'(a) = 1 for a > 0, α for a < 0, and 0 at a = 0 (the generic engine's convention)
    derivative = buffers.scratch
    np.less(buffers.pre_activation, 0.0, out=buffers.mask)
    np.multiply(buffers.mask, slope, out=derivative)
    np.greater(buffers.pre_activation, 0.0, out=buffers.mask)
    derivative += buffers.mask
    buffers.grad_activation *= derivative


def _forward_leaky_relu(layer: Layer, buffers: _Buffers) -> None:
    _forward_leaky(layer, buffers, layer.spec.slope)


def _backward_leaky_relu(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    _backward_leaky(buffers, layer.spec.slope)


def _forward_prelu(layer: Layer, buffers: _Buffers) -> None:
    _forward_leaky(layer, buffers, layer.slope.value)


def _backward_prelu(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    # ∂h/∂α = min(a, 0): the learned slope's gradient, summed over the minibatch
    negative = _negative_part(buffers)
    negative *= buffers.grad_activation
    np.add.reduce(negative, axis=0, out=slope_grad)
    _backward_leaky(buffers, layer.slope.value)


def _forward_hard_tanh(layer: Layer, buffers: _Buffers) -> None:
    np.clip(buffers.pre_activation, -1.0, 1.0, out=buffers.activation)


def _backward_hard_tanh(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    derivative = np.absolute(buffers.pre_activation, out=buffers.scratch)
    np.less(derivative, 1.0, out=buffers.mask)
    buffers.grad_activation *= buffers.mask


def _forward_abs(layer: Layer, buffers: _Buffers) -> None:
    np.absolute(buffers.pre_activation, out=buffers.activation)


def _backward_abs(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    buffers.grad_activation *= np.sign(buffers.pre_activation, out=buffers.scratch)


def _forward_linear(layer: Layer, buffers: _Buffers) -> None:
    pass  # h is a: the buffers share memory


def _backward_linear(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    pass


def _forward_maxout(layer: Layer, buffers: _Buffers) -> None:
    n, units = buffers.activation.shape
    pieces = layer.spec.pieces
    grouped = buffers.pre_activation.reshape(n, units, pieces)
    winners = buffers.winners
    winners[...] = np.argmax(grouped, axis=2)[:, :, None]
    buffers.activation[...] = np.take_along_axis(grouped, winners, axis=2)[:, :, 0]


def _backward_maxout(layer: Layer, buffers: _Buffers, slope_grad: np.ndarray | None) -> None:
    # each unit's gradient flows to its winning piece only
    n, units = buffers.activation.shape
    grad = buffers.grad_pre_activation
    grad.fill(0.0)
    np.put_along_axis(
        grad.reshape(n, units, layer.spec.pieces),
        buffers.winners,
        buffers.grad_activation[:, :, None],
        axis=2,
    )


Forward = Callable[[Layer, _Buffers], None]
Backward = Callable[[Layer, _Buffers, "np.ndarray | None"], None]
UNITS: dict[str, tuple[Forward, Backward]] = {
    "tanh": (_forward_tanh, _backward_tanh),
    "sigmoid": (_forward_sigmoid, _backward_sigmoid),
    "softplus": (_forward_softplus, _backward_softplus),
    "relu": (_forward_relu, _backward_relu),
    "leaky_relu": (_forward_leaky_relu, _backward_leaky_relu),
    "prelu": (_forward_prelu, _backward_prelu),
    "hard_tanh": (_forward_hard_tanh, _backward_hard_tanh),
    "abs": (_forward_abs, _backward_abs),
    "linear": (_forward_linear, _backward_linear),
    "maxout": (_forward_maxout, _backward_maxout),
}


# ----- output units: the loss and g ← ∇_z J at the output pre-activations z ---------------
@dataclass
class _Output:
    logits: np.ndarray  # z, (n, outputs)
    grad: np.ndarray  # ∂J/∂z, (n, outputs)
    scratch: np.ndarray  # (n, outputs)
    column: np.ndarray  # (n, 1)
    target: np.ndarray  # (n, 1) targets as a column
    rows: np.ndarray  # 0..n-1, to pick each example's label


def _loss_bernoulli(output: _Output, n: int, gradient: bool, precision: float) -> float:
    # Eq. 6.3 in its stable form: J = mean(ζ(z) − y z), ∂J/∂z = (σ(z) − y) / n
    z, y, scratch = output.logits, output.target, output.scratch
    np.logaddexp(0.0, z, out=scratch)
    loss = float(np.add.reduce(scratch, axis=None)) - float(np.vdot(y, z))
    if gradient:
        grad = _sigmoid(z, output.grad)
        grad -= y
        grad *= 1.0 / n
    return loss / n


def _loss_softmax(output: _Output, n: int, gradient: bool, precision: float) -> float:
    # J = mean(log Σⱼ exp zⱼ − z_y); ∂J/∂z = (softmax(z) − e_y) / n (Eq. 6.5)
    z, exps, peak = output.logits, output.scratch, output.column
    labels = output.target[:, 0].astype(np.intp)
    np.maximum.reduce(z, axis=1, keepdims=True, out=peak)
    np.subtract(z, peak, out=exps)
    picked = float(np.add.reduce(exps[output.rows, labels], axis=None))
    np.exp(exps, out=exps)
    total = np.add.reduce(exps, axis=1, keepdims=True)
    loss = float(np.add.reduce(np.log(total), axis=None)) - picked
    if gradient:
        grad = np.divide(exps, total, out=output.grad)
        grad[output.rows, labels] -= 1.0
        grad *= 1.0 / n
    return loss / n


def _loss_squared(output: _Output, n: int, gradient: bool, precision: float) -> float:
    # J = mean(½ β (z − y)²) + const; ∂J/∂z = β (z − y) / n (β = 1 for squared error)
    difference = np.subtract(output.logits, output.target, out=output.scratch)
    loss = 0.5 * precision * float(np.vdot(difference, difference))
    if gradient:
        np.multiply(difference, precision / n, out=output.grad)
    return loss / n


def _loss_absolute(output: _Output, n: int, gradient: bool, precision: float) -> float:
    difference = np.subtract(output.logits, output.target, out=output.scratch)
    if gradient:
        np.sign(difference, out=output.grad)
        output.grad *= 1.0 / n
    return float(np.add.reduce(np.absolute(difference, out=difference), axis=None)) / n


_HALF_LOG_TWO_PI = 0.5 * np.log(2.0 * np.pi)
Loss = Callable[[_Output, int, bool, float], float]
LOSSES: dict[str, Loss] = {
    "bernoulli": _loss_bernoulli,
    "softmax": _loss_softmax,
    "squared": _loss_squared,
    "absolute": _loss_absolute,
    "gaussian": _loss_squared,  # fixed precision: squared error scaled by β, plus a constant
}


@dataclass
class _Workspace:
    hidden: list[_Buffers]
    output: _Output
    ones: np.ndarray  # (n,): Σₙ g is computed as onesᵀ g
    # per hidden layer: (layer, weights, bias, its buffers, forward)
    forward_plan: list[tuple]
    # per layer from the top: (weights, input h⁽ᵏ⁻¹⁾ᵀ or None for the features, slot of
    # ∇W in the gradient list, penalty scratch, buffers below or None, that layer,
    # its backward, slot of its PReLU slope gradient or -1)
    backward_plan: list[tuple]


class FastPath:
    """Algorithm 6.2 for one ``MLP``: loss and gradients with preallocated buffers.

    The parameters are read from the model's tensors on every call, so the path keeps
    following the model when an optimiser updates (or replaces) their values.
    """

    def __init__(self, model: MLP):
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the layer-wise fast path cannot train {reason}")
        self.model = model
        self.layers = model.all_layers
        self._loss = LOSSES[model.spec.output.loss]
        output = model.spec.output
        self._precision = float(output.precision) if output.loss == "gaussian" else 1.0
        self._constant = (
            _HALF_LOG_TWO_PI - 0.5 * np.log(self._precision) if output.loss == "gaussian" else 0.0
        )
        self._workspaces: dict[int, _Workspace] = {}
        self._penalty_scratch = [np.empty_like(layer.weights.value) for layer in self.layers]
        # where each layer's gradients start in the model.parameters() order
        self._slots = []
        slot = 0
        for layer in self.layers:
            self._slots.append(slot)
            slot += len(layer.parameters())

    # ----- buffers -----------------------------------------------------------------
    def _workspace(self, n: int) -> _Workspace:
        workspace = self._workspaces.get(n)
        if workspace is not None:
            return workspace
        if len(self._workspaces) >= _MAX_WORKSPACES:
            self._workspaces.clear()
        hidden = []
        for layer in self.model.layers:
            width = layer.weights.value.shape[1]
            units = layer.units
            pre_activation = np.empty((n, width))
            linear = layer.spec.activation == "linear"
            activation = pre_activation if linear else np.empty((n, units))
            grad_activation = np.empty((n, units))
            maxout = layer.spec.activation == "maxout"
            hidden.append(
                _Buffers(
                    pre_activation=pre_activation,
                    activation=activation,
                    grad_activation=grad_activation,
                    grad_pre_activation=np.empty((n, width)) if maxout else grad_activation,
                    scratch=np.empty((n, width)),
                    mask=np.empty((n, width), dtype=bool),
                    winners=np.empty((n, units, 1), dtype=np.intp) if maxout else None,
                )
            )
        outputs = self.model.output.units
        output = _Output(
            logits=np.empty((n, outputs)),
            grad=np.empty((n, outputs)),
            scratch=np.empty((n, outputs)),
            column=np.empty((n, 1)),
            target=np.empty((n, 1)),
            rows=np.arange(n),
        )
        forward_plan = [
            (layer, layer.weights, layer.bias, buffers, UNITS[layer.spec.activation][0])
            for layer, buffers in zip(self.model.layers, hidden)
        ]
        backward_plan = []
        for k in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[k]
            inputs_transposed = hidden[k - 1].activation.T if k > 0 else None
            if k > 0:
                below_layer = self.layers[k - 1]
                below = (
                    hidden[k - 1],
                    below_layer,
                    UNITS[below_layer.spec.activation][1],
                    self._slots[k - 1] + 2 if below_layer.slope is not None else -1,
                )
            else:
                below = None
            backward_plan.append(
                (layer.weights, inputs_transposed, self._slots[k], self._penalty_scratch[k], below)
            )
        workspace = _Workspace(hidden, output, np.ones(n), forward_plan, backward_plan)
        self._workspaces[n] = workspace
        return workspace

    # ----- Algorithm 6.1 -------------------------------------------------------------
    def _forward(self, features: np.ndarray) -> _Workspace:
        workspace = self._workspace(features.shape[0])
        h = features
        for layer, weights, bias, buffers, forward in workspace.forward_plan:
            a = buffers.pre_activation
            np.matmul(h, weights.value, out=a)
            a += bias.value
            forward(layer, buffers)
            h = buffers.activation
        z = workspace.output.logits
        output = self.model.output
        np.matmul(h, output.weights.value, out=z)
        z += output.bias.value
        return workspace

    def outputs(self, features: np.ndarray) -> np.ndarray:
        """Output pre-activations z for a batch of input features (a new array)."""
        return self._forward(np.asarray(features, dtype=np.float64)).output.logits.copy()

    def loss_and_outputs(self, features: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The loss L (without penalty) on a batch and the output pre-activations z
        (a new array), without computing gradients."""
        workspace = self._forward(features)
        workspace.output.target[:, 0] = y
        n = features.shape[0]
        loss = self._loss(workspace.output, n, False, self._precision) + self._constant
        return loss, workspace.output.logits.copy()

    # ----- Algorithm 6.2 ---------------------------------------------------------------
    def loss_and_grads(
        self,
        features: np.ndarray,
        y: np.ndarray,
        grads: list[np.ndarray],
        l2: float = 0.0,
        l1: float = 0.0,
    ) -> float:
        """Write ∇J into ``grads`` (one array per ``model.parameters()``, same order) and
        return the minibatch loss L (J = L + Ω; the penalty's value is not computed)."""
        workspace = self._forward(features)
        output = workspace.output
        output.target[:, 0] = y
        loss = self._loss(output, features.shape[0], True, self._precision) + self._constant
        g = output.grad
        ones = workspace.ones
        penalty = bool(l2 or l1)
        for weights, inputs_transposed, slot, scratch, below in workspace.backward_plan:
            weights = weights.value
            grad_weights = grads[slot]
            if inputs_transposed is None:
                inputs_transposed = features.T
            np.matmul(inputs_transposed, g, out=grad_weights)
            if penalty:
                self._add_penalty(grad_weights, weights, scratch, l2, l1)
            # Σₙ g as onesᵀ g: one BLAS call, much faster than a reduction along axis 0
            np.matmul(ones, g, out=grads[slot + 1])
            if below is None:
                break
            buffers, below_layer, unit_backward, slope_slot = below
            if weights.shape[1] == 1:  # one output: g Wᵀ is an outer product
                np.multiply(g, weights.T, out=buffers.grad_activation)
            else:
                np.matmul(g, weights.T, out=buffers.grad_activation)
            unit_backward(below_layer, buffers, grads[slope_slot] if slope_slot >= 0 else None)
            g = buffers.grad_pre_activation
        return loss

    def pre_activation_grads(self, batch_size: int) -> list[np.ndarray] | None:
        """∂J/∂a of every hidden layer, then ∂J/∂z of the output layer, as left by the
        last ``loss_and_grads`` on a batch of ``batch_size`` rows (the buffers
        themselves: copy them to keep them), or None when there was no such call."""
        workspace = self._workspaces.get(batch_size)
        if workspace is None:
            return None
        return [b.grad_pre_activation for b in workspace.hidden] + [workspace.output.grad]

    @staticmethod
    def _add_penalty(
        grad: np.ndarray, weights: np.ndarray, scratch: np.ndarray, l2: float, l1: float
    ) -> None:
        # Ω = λ₂/2 ‖W‖² + λ₁ ‖W‖₁ on weights only: ∇Ω = λ₂ W + λ₁ sign(W)
        if l2:
            np.multiply(weights, l2, out=scratch)
            grad += scratch
        if l1:
            np.sign(weights, out=scratch)
            scratch *= l1
            grad += scratch

    def gradients(
        self, features: np.ndarray, y: np.ndarray, l2: float = 0.0, l1: float = 0.0
    ) -> tuple[float, list[np.ndarray]]:
        """Loss and freshly allocated gradients, in ``model.parameters()`` order."""
        grads = [np.empty_like(p.value) for p in self.model.parameters()]
        features = np.ascontiguousarray(features, dtype=np.float64)
        loss = self.loss_and_grads(features, np.asarray(y, dtype=np.float64), grads, l2, l1)
        return loss, grads
