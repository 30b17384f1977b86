"""A multilayer perceptron built from the model spec (engine.spec).

Row-vector convention: a minibatch ``h`` is (n, fan_in) and each layer computes the
pre-activation a = h W + b with W of shape (fan_in, fan_out), then h' = g(a).
Layers keep their parameters as leaf Tensors so that the generic engine can
differentiate anything built from them; ``engine.fastpath`` trains the same
parameters with the layer-wise algorithm for speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine import functional as F
from engine import primitives as P
from engine.autodiff import Tensor, as_tensor, no_grad
from engine.spec import (
    ACTIVATIONS,
    FEATURES,
    INITS,
    LOSSES,
    LayerSpec,
    ModelSpec,
    OutputSpec,
    output_units,
)

FEATURE_FUNCTIONS = {
    "x1": lambda x: x[:, 0],
    "x2": lambda x: x[:, 1],
    "x1_squared": lambda x: x[:, 0] ** 2,
    "x2_squared": lambda x: x[:, 1] ** 2,
    "x1_x2": lambda x: x[:, 0] * x[:, 1],
    "sin_x1": lambda x: np.sin(x[:, 0]),
    "sin_x2": lambda x: np.sin(x[:, 1]),
}
_FEATURE_NEEDS_X2 = {"x2", "x2_squared", "x1_x2", "sin_x2"}


def check_model_spec(spec: ModelSpec, input_dim: int = 2) -> None:
    """Raise ValueError naming the first thing in the spec the engine cannot build."""
    if not spec.features:
        raise ValueError("model.features: choose at least one input feature")
    for name in spec.features:
        if name not in FEATURES:
            raise ValueError(f"model.features: unknown feature {name!r}; choose from {FEATURES}")
        if input_dim < 2 and name in _FEATURE_NEEDS_X2:
            raise ValueError(f"model.features: {name!r} needs x2 but the data has one input")
    if len(set(spec.features)) != len(spec.features):
        raise ValueError("model.features: a feature is listed twice")
    for index, layer in enumerate(spec.layers):
        where = f"model.layers[{index}]"
        if layer.activation not in ACTIVATIONS:
            raise ValueError(
                f"{where}.activation: unknown activation {layer.activation!r}; "
                f"choose from {ACTIVATIONS}"
            )
        if not isinstance(layer.units, int) or layer.units < 1:
            raise ValueError(f"{where}.units must be a positive integer, got {layer.units!r}")
        if layer.activation == "maxout" and layer.pieces < 1:
            raise ValueError(f"{where}.pieces must be at least 1, got {layer.pieces}")
        if not math.isfinite(layer.slope):
            raise ValueError(f"{where}.slope must be finite")
    if spec.output.loss not in LOSSES:
        raise ValueError(
            f"model.output.loss: unknown loss {spec.output.loss!r}; choose from {LOSSES}"
        )
    if spec.output.loss == "gaussian" and not spec.output.precision > 0:
        raise ValueError("model.output.precision must be positive")
    if spec.output.loss == "mixture" and spec.output.components < 1:
        raise ValueError("model.output.components must be at least 1")
    if spec.init not in INITS:
        raise ValueError(f"model.init: unknown initialisation {spec.init!r}; choose from {INITS}")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, (int, np.integer)) or spec.seed < 0:
        raise ValueError(f"model.seed must be a non-negative integer, got {spec.seed!r}")
    scale = spec.init_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"model.init_scale must be a finite number, got {scale!r}")


def initial_weights(
    rng: np.random.Generator, fan_in: int, fan_out: int, init: str, scale: float
) -> np.ndarray:
    if init == "xavier":  # Glorot uniform: keeps activation variance across tanh layers
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        weights = rng.uniform(-limit, limit, size=(fan_in, fan_out))
    elif init == "he":  # for rectifiers: variance 2 / fan_in
        weights = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
    elif init == "normal":
        weights = rng.normal(0.0, 1.0, size=(fan_in, fan_out))
    elif init == "uniform":
        weights = rng.uniform(-0.5, 0.5, size=(fan_in, fan_out))
    else:
        raise ValueError(f"unknown initialisation {init!r}")
    return weights * scale


@dataclass
class Layer:
    """One hidden layer: weights W, bias b and, for some units, extra parameters."""

    spec: LayerSpec
    weights: Tensor
    bias: Tensor
    slope: Tensor | None = None  # PReLU: learned negative slope per unit
    widths: Tensor | None = None  # RBF: σ per unit
    names: dict[str, str] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return self.spec.units

    def parameters(self) -> list[Tensor]:
        extra = [t for t in (self.slope, self.widths) if t is not None]
        return [self.weights, self.bias, *extra]

    def pre_activation(self, h: Tensor) -> Tensor:
        if self.spec.activation == "rbf":
            # RBF units compare h with a template: a = b − ‖h − w‖² / σ², h' = exp(a),
            # so the bias is a learned log-amplitude
            diff = h.reshape(h.shape + (1,)) - self.weights.reshape((1,) + self.weights.shape)
            squared = (diff * diff).sum(axis=1)
            return self.bias - squared / (self.widths * self.widths)
        return P.affine(h, self.weights, self.bias)

    def activate(self, a: Tensor) -> Tensor:
        kind = self.spec.activation
        if kind == "rbf":
            return P.exp(a)
        if kind == "maxout":
            return F.maxout(a, self.spec.pieces)
        if kind == "prelu":
            return F.prelu(a, self.slope)
        if kind == "leaky_relu":
            return F.leaky_relu(a, self.spec.slope)
        return F.HIDDEN_UNITS[kind](a)


class MLP:
    """Hidden layers from ``spec.layers``, then a linear output layer whose
    pre-activations feed the output unit and loss of ``spec.output``.

    ``inputs``: the training inputs (n, input_dim), when known; RBF units then start
    with their templates on training examples (``example_templates``)."""

    def __init__(self, spec: ModelSpec, input_dim: int = 2, classes: int = 2,
                 inputs: np.ndarray | None = None):
        check_model_spec(spec, input_dim)
        self.spec = spec
        self.input_dim = input_dim
        self.classes = classes
        self.rng = np.random.default_rng(spec.seed)
        self.layers: list[Layer] = []
        fan_in = len(spec.features)
        for layer_spec in spec.layers:
            self.layers.append(self._new_layer(layer_spec, fan_in))
            fan_in = layer_spec.units
        self.output = self._new_output(fan_in)
        self._name_parameters()
        if inputs is not None:
            example_templates(self, inputs)

    # ----- construction ------------------------------------------------------------
    def _new_layer(self, layer_spec: LayerSpec, fan_in: int) -> Layer:
        width = layer_spec.units * (layer_spec.pieces if layer_spec.activation == "maxout" else 1)
        init = self.spec.init
        if layer_spec.activation in ("relu", "leaky_relu", "prelu", "maxout") and init == "xavier":
            init = "he"
        weights = initial_weights(self.rng, fan_in, width, init, self.spec.init_scale)
        bias = np.zeros(width)
        if layer_spec.activation in ("relu", "prelu", "maxout"):
            bias += 0.1  # the chapter's advice: a small positive bias keeps rectifiers active
        layer = Layer(layer_spec, Tensor(weights, True), Tensor(bias, True))
        if layer_spec.activation == "prelu":
            layer.slope = Tensor(np.full(width, float(layer_spec.slope)), True)
        if layer_spec.activation == "rbf":
            # random templates and unit widths; example_templates moves the templates onto
            # training examples when the network is built for a dataset
            layer.weights = Tensor(self.rng.normal(0.0, 1.0, size=(fan_in, width)), True)
            layer.bias = Tensor(np.zeros(width), True)
            layer.widths = Tensor(np.ones(width), True)
        return layer

    def _new_output(self, fan_in: int) -> Layer:
        units = output_units(self.spec.output, self.classes)
        weights = initial_weights(self.rng, fan_in, units, self.spec.init, self.spec.init_scale)
        return Layer(
            LayerSpec(units, "linear"), Tensor(weights, True), Tensor(np.zeros(units), True)
        )

    def _name_parameters(self) -> None:
        for index, layer in enumerate(self.layers + [self.output], start=1):
            tag = "out" if layer is self.output else str(index)
            layer.weights.name = f"W{tag}"
            layer.bias.name = f"b{tag}"
            if layer.slope is not None:
                layer.slope.name = f"α{tag}"
            if layer.widths is not None:
                layer.widths.name = f"σ{tag}"

    # ----- parameters ------------------------------------------------------------
    @property
    def all_layers(self) -> list[Layer]:
        return self.layers + [self.output]

    def parameters(self) -> list[Tensor]:
        return [p for layer in self.all_layers for p in layer.parameters()]

    def weight_tensors(self) -> list[Tensor]:
        """The weights W only: the chapter's penalties leave biases unregularised."""
        return [layer.weights for layer in self.all_layers if layer.spec.activation != "rbf"]

    def state_dict(self) -> dict[str, list]:
        return {p.name: p.value.tolist() for p in self.parameters()}

    def load_state_dict(self, state: dict[str, list]) -> None:
        params = {p.name: p for p in self.parameters()}
        missing = sorted(set(params) - set(state))
        if missing:
            raise ValueError(f"weights: missing {', '.join(missing)}")
        for name, tensor in params.items():
            value = np.asarray(state[name], dtype=np.float64)
            if value.shape != tensor.shape:
                raise ValueError(
                    f"weights: {name} has shape {value.shape}, the network needs {tensor.shape}"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(f"weights: {name} contains NaN or infinity")
        for name, tensor in params.items():
            tensor.value = np.array(state[name], dtype=np.float64)

    # ----- forward -----------------------------------------------------------------
    def features(self, x: np.ndarray) -> np.ndarray:
        """Map raw inputs (n, input_dim) to the chosen input features (n, features)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"inputs must have shape (n, {self.input_dim}), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("inputs contain NaN or infinity")
        if self._raw_features:
            return x  # the features are the raw inputs in order: nothing to compute
        return np.stack([FEATURE_FUNCTIONS[name](x) for name in self.spec.features], axis=1)

    @property
    def _raw_features(self) -> bool:
        return self.spec.features == ["x1", "x2"][: self.input_dim]

    def forward_layers(self, x: np.ndarray) -> list[tuple[Tensor, Tensor]]:
        """(pre_activation a, activation h) for every hidden layer, then (z, z) for the
        output layer's pre-activations."""
        h = as_tensor(self.features(x))
        result = []
        for layer in self.layers:
            a = layer.pre_activation(h)
            h = layer.activate(a)
            result.append((a, h))
        z = self.output.pre_activation(h)
        result.append((z, z))
        return result

    def forward(self, x: np.ndarray) -> Tensor:
        """Output pre-activations z (logits, means, ... depending on the loss)."""
        return self.forward_layers(x)[-1][1]

    def loss(self, z: Tensor, y: np.ndarray) -> Tensor:
        return output_loss(self.spec.output, z, y)

    def penalty(self, l2: float, l1: float) -> Tensor | None:
        """Ω(θ) on weights only: λ₂/2 ‖W‖² + λ₁ ‖W‖₁."""
        total: Tensor | None = None
        for weights in self.weight_tensors():
            terms = []
            if l2:
                terms.append((0.5 * l2) * (weights * weights).sum())
            if l1:
                terms.append(l1 * P.absolute(weights).sum())
            for term in terms:
                total = term if total is None else total + term
        return total

    def cost(self, x: np.ndarray, y: np.ndarray, l2: float = 0.0, l1: float = 0.0) -> Tensor:
        """J(θ) = loss + Ω(θ)."""
        loss = self.loss(self.forward(x), y)
        penalty = self.penalty(l2, l1)
        return loss if penalty is None else loss + penalty

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The prediction the UI draws: P(y=1|x) for Bernoulli, class probabilities
        for softmax, the conditional mean for regression losses."""
        return predict_from_outputs(self.spec.output, self.forward(x).value)


def output_loss(output: OutputSpec, z: Tensor, y: np.ndarray) -> Tensor:
    y = np.asarray(y, dtype=np.float64)
    if output.loss == "softmax":
        return F.softmax_nll(z, y)
    target = y.reshape(-1, 1)
    if output.loss == "bernoulli":
        return F.bernoulli_nll(z, target)
    if output.loss == "squared":
        return F.squared_error(z, target)
    if output.loss == "absolute":
        return F.absolute_error(z, target)
    if output.loss == "gaussian":
        return F.fixed_gaussian_nll(z, target, output.precision)
    if output.loss == "gaussian_learned":
        return F.gaussian_nll(z[:, 0:1], z[:, 1:2], target)
    if output.loss == "mixture":
        k = output.components
        return F.mixture_nll(z[:, 0:k], z[:, k : 2 * k], z[:, 2 * k : 3 * k], target)
    raise ValueError(f"unknown loss {output.loss!r}")


def predict_from_outputs(output: OutputSpec, z: np.ndarray) -> np.ndarray:
    if output.loss == "bernoulli":
        return 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
    if output.loss == "softmax":
        shifted = np.exp(z - z.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if output.loss == "mixture":
        k = output.components
        weights = np.exp(z[:, :k] - z[:, :k].max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        return (weights * z[:, k : 2 * k]).sum(axis=1)
    return z[:, 0]


def example_templates(
    model: MLP, inputs: np.ndarray, fresh: dict[int, list[int]] | None = None
) -> None:
    """Put RBF units' templates on training examples, as the chapter suggests for RBF
    units (w_i = x⁽ᵗ⁾ for a random subset of the examples), instead of random points.

    For an RBF layer above other hidden layers the template is that layer's input for a
    training example (the example seen through the layers below). ``fresh`` limits the
    change to some units ({hidden layer index from 0: unit indices}); by default every
    RBF unit. No example serves twice before every example has served once.
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 2 or inputs.shape[0] == 0:
        return
    h = model.features(inputs)
    for index, layer in enumerate(model.layers):
        if layer.spec.activation == "rbf":
            units = list(range(layer.units)) if fresh is None else fresh.get(index, [])
            if units:
                rounds = -(-len(units) // len(h))  # every example once before any twice
                rows = np.concatenate([model.rng.permutation(len(h)) for _ in range(rounds)])
                rows = rows[: len(units)]
                layer.weights.value[:, units] = h[rows].T
        if index + 1 < len(model.layers):
            with no_grad():
                h = layer.activate(layer.pre_activation(as_tensor(h))).value


# ----- live architecture changes --------------------------------------------------
# A unit is identified by (layer, index) where layer 0 holds the input features,
# 1..L the hidden layers and L+1 the output. A link keeps its weight when both of its
# ends survive and are still adjacent; a unit keeps its bias (and PReLU slope / RBF
# width) when it survives. Everything else is initialised fresh.
UnitSource = tuple[int, int] | None


def _pieces(spec: LayerSpec) -> int:
    return spec.pieces if spec.activation == "maxout" else 1


def transfer(
    old: MLP, new_spec: ModelSpec, sources: list[list[UnitSource]], classes: int | None = None,
    inputs: np.ndarray | None = None,
) -> MLP:
    """Build a network for ``new_spec`` and copy every surviving weight from ``old``.

    ``sources[k]`` lists, for each unit of new hidden layer k, the (old layer, old
    unit) it continues, or None for a new unit. Input features are matched by name
    and output units by position. With the training ``inputs``, new RBF units start
    with their templates on training examples, seen through the surviving layers.
    """
    classes = old.classes if classes is None else classes
    new = MLP(new_spec, old.input_dim, classes)
    new.rng = old.rng  # fresh units draw new random numbers, not a replay of the seed
    old_feature = {name: i for i, name in enumerate(old.spec.features)}
    layer_sources: list[list[UnitSource]] = [
        [(0, old_feature[name]) if name in old_feature else None for name in new_spec.features]
    ]
    layer_sources += [list(s) for s in sources]
    old_out_layer = len(old.layers) + 1
    same_outputs = old.output.units == new.output.units
    layer_sources.append(
        [(old_out_layer, j) if same_outputs else None for j in range(new.output.units)]
    )
    if len(layer_sources) != len(new.layers) + 2:
        raise ValueError("transfer: one source list is needed per hidden layer")
    old_all = old.all_layers
    fresh_templates: dict[int, list[int]] = {}  # new RBF units: hidden layer -> units
    for k, layer in enumerate(new.all_layers, start=1):
        ins, outs = layer_sources[k - 1], layer_sources[k]
        if layer.spec.activation == "rbf":
            fresh_templates[k - 1] = [j for j, source in enumerate(outs) if source is None or (
                old_all[source[0] - 1].spec.activation != "rbf")]
        if len(outs) != layer.units:
            raise ValueError(f"transfer: layer {k} has {layer.units} units, {len(outs)} sources")
        new_pieces = _pieces(layer.spec)
        for j, out_source in enumerate(outs):
            if out_source is None:
                continue
            old_layer = old_all[out_source[0] - 1]
            if _pieces(old_layer.spec) != new_pieces or (
                (old_layer.spec.activation == "rbf") != (layer.spec.activation == "rbf")
            ):
                continue  # the unit's kind changed shape: it starts afresh
            new_cols = slice(j * new_pieces, (j + 1) * new_pieces)
            old_cols = slice(out_source[1] * new_pieces, (out_source[1] + 1) * new_pieces)
            layer.bias.value[new_cols] = old_layer.bias.value[old_cols]
            for extra in ("slope", "widths"):
                new_extra, old_extra = getattr(layer, extra), getattr(old_layer, extra)
                if new_extra is not None and old_extra is not None:
                    new_extra.value[new_cols] = old_extra.value[old_cols]
            for i, in_source in enumerate(ins):
                if in_source is not None and in_source[0] == out_source[0] - 1:
                    layer.weights.value[i, new_cols] = old_layer.weights.value[
                        in_source[1], old_cols
                    ]
    if inputs is not None and any(fresh_templates.values()):
        example_templates(new, inputs, fresh_templates)
    return new


def identity_sources(model: MLP) -> list[list[UnitSource]]:
    """Every hidden unit continues itself."""
    return [[(k, j) for j in range(layer.units)] for k, layer in enumerate(model.layers, start=1)]
