"""Live training for one playground session: data, network, optimiser and their changes.

``Trainer`` runs minibatch stochastic gradient descent on a ``Config``. Each step takes
the next minibatch of a shuffled pass over the training set (reshuffled every epoch),
computes the gradient of J = L + Ω (penalties on weights only) with the layer-wise
fast path when the network allows it and with the generic engine otherwise, clips the
gradient's norm if asked, and lets the optimiser update the weights.

The parameters of the network live in one flat array (each parameter tensor's value is
a view into it), so the optimiser, clipping, the divergence check and the roll-back
each touch one array instead of one per parameter. A step whose loss or new weights
are not finite is undone and reported with ``DivergenceError``: the weights stay at
their last finite values.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from engine.autodiff import Tensor, grad, no_grad
from engine.datasets import Dataset, check_compatible, make_dataset
from engine.fastpath import FastPath, unsupported_reason
from engine.nn import MLP
from engine.optim import Optimizer, check_training_spec, clip_by_norm
from engine.spec import Config, DataSpec, TrainingSpec, output_units


class DivergenceError(ValueError):
    """Training produced a non-finite loss or weight; the step was undone."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class Trainer:
    """Everything a live session trains: ``dataset``, ``model``, ``optimizer``.

    Counters: ``steps`` (updates done) and ``epochs`` (passes over the training set,
    fractional within a pass).
    """

    def __init__(self, config: Config):
        config = config.copy()
        check_training_spec(config.training)
        self.config = config
        self.dataset = make_dataset(config.data)
        check_compatible(config.model, self.dataset)
        self.steps = 0
        self.last_loss: float | None = None
        self.diverged: str | None = None
        self._attach_data(self.dataset)
        self._attach_model(MLP(config.model, self.dataset.input_dim, _classes(self.dataset),
                               inputs=self.dataset.x_train))

    # ----- counters ----------------------------------------------------------------
    @property
    def epochs(self) -> float:
        return self._epochs_done + self._position / self._train_size

    def restore_counters(self, steps: int, epochs: float) -> None:
        """Carry a run's counters over to this trainer (a page that reconnects restores its
        weights and how far it had trained). The pass goes on from the first example at or
        past the fraction reached, so that ``epochs`` never goes back."""
        whole = int(epochs)
        position = math.ceil((epochs - whole) * self._train_size - 1e-9)
        if position >= self._train_size:
            whole, position = whole + 1, 0
        self.steps = int(steps)
        self._epochs_done = whole
        self._position = max(0, position)

    @property
    def uses_fast_path(self) -> bool:
        return self.fastpath is not None

    @property
    def fast_path_reason(self) -> str | None:
        """Why the generic engine trains this network, or None when the fast path does."""
        return unsupported_reason(self.model)

    # ----- set-up --------------------------------------------------------------------
    def _attach_data(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._x_train = np.ascontiguousarray(dataset.x_train)
        self._y_train = np.ascontiguousarray(dataset.y_train)
        self._train_size = dataset.x_train.shape[0]
        seed = [self.config.model.seed, self.config.data.seed]
        self._shuffle_rng = np.random.default_rng(seed)
        self._order = self._shuffle_rng.permutation(self._train_size)
        self._position = 0
        self._epochs_done = 0
        self._batches: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _attach_model(self, model: MLP) -> None:
        """Pack the model's parameters into one flat array and build the step's tools."""
        self.model = model
        self.config.model = model.spec
        self._parameters = model.parameters()
        sizes = [p.value.size for p in self._parameters]
        total = int(sum(sizes))
        self._flat = np.empty(total)
        self._flat_grad = np.zeros(total)
        self._backup = np.empty(total)
        self._views: list[np.ndarray] = []
        self._grad_views: list[np.ndarray] = []
        offset = 0
        for parameter, size in zip(self._parameters, sizes):
            shape = parameter.value.shape
            view = self._flat[offset : offset + size].reshape(shape)
            view[...] = parameter.value
            parameter.value = view
            self._views.append(view)
            self._grad_views.append(self._flat_grad[offset : offset + size].reshape(shape))
            offset += size
        self._flat_parameter = Tensor(self._flat)
        self._flat_parameter.value = self._flat
        self.optimizer = Optimizer([self._flat_parameter], self.config.training)
        self.fastpath = FastPath(model) if unsupported_reason(model) is None else None
        self._train_features = np.ascontiguousarray(model.features(self._x_train))
        self._test_features = np.ascontiguousarray(model.features(self.dataset.x_test))
        self._batches = {}
        self.diverged = None

    def _sync(self) -> None:
        """Re-attach parameter values that were replaced (e.g. by ``load_state_dict``)."""
        for parameter, view in zip(self._parameters, self._views):
            if parameter.value is not view:
                view[...] = parameter.value
                parameter.value = view

    def _batch_buffers(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        buffers = self._batches.get(count)
        if buffers is None:
            if len(self._batches) > 4:
                self._batches.clear()
            buffers = (
                np.empty((count, self._train_features.shape[1])),
                np.empty(count),
                np.empty((count, self._x_train.shape[1])),
            )
            self._batches[count] = buffers
        return buffers

    # ----- training --------------------------------------------------------------------
    def step(self) -> float:
        """One minibatch update; returns the minibatch loss L before the update."""
        if self.diverged is not None:
            raise DivergenceError(self.diverged, self.steps)
        self._sync()
        training = self.config.training
        start = self._position
        stop = min(start + training.batch_size, self._train_size)
        index = self._order[start:stop]
        features, y, x = self._batch_buffers(stop - start)
        self._y_train.take(index, out=y)
        if self.fastpath is not None:
            self._train_features.take(index, axis=0, out=features)
            loss = self.fastpath.loss_and_grads(
                features, y, self._grad_views, training.l2, training.l1
            )
        else:
            self._x_train.take(index, axis=0, out=x)
            loss = self._generic_loss_and_grads(x, y, training.l2, training.l1)
        if not math.isfinite(loss):
            self._diverge(f"the loss became {loss}", restore=False)
        if training.clip_norm:
            clip_by_norm([self._flat_grad], training.clip_norm)
        np.copyto(self._backup, self._flat)
        self.optimizer.step([self._flat_grad])
        # a sum is finite unless a weight is infinite or NaN (or the sum overflows,
        # which the exact test below tells apart): one pass instead of two
        if not math.isfinite(np.add.reduce(self._flat)) and not np.isfinite(self._flat).all():
            self._diverge("a weight became infinite or NaN", restore=True)
        self.steps += 1
        self.last_loss = loss
        if stop >= self._train_size:
            self._epochs_done += 1
            self._position = 0
            self._order = self._shuffle_rng.permutation(self._train_size)
        else:
            self._position = stop
        return loss

    def epoch(self) -> float:
        """Steps until the current pass over the training set ends (a whole pass when
        called at an epoch boundary); returns the mean minibatch loss."""
        losses = [self.step()]
        while self._position != 0:
            losses.append(self.step())
        return float(np.mean(losses))

    def _generic_loss_and_grads(self, x: np.ndarray, y: np.ndarray, l2: float, l1: float) -> float:
        model = self.model
        loss = model.loss(model.forward(x), y)
        penalty = model.penalty(l2, l1)
        cost = loss if penalty is None else loss + penalty
        for view, gradient in zip(self._grad_views, grad(cost, self._parameters)):
            view[...] = gradient.value
        return float(loss.value)

    def _diverge(self, what: str, restore: bool) -> None:
        if restore:
            np.copyto(self._flat, self._backup)
        # the optimiser's running averages may hold the bad gradient: start them afresh
        self.optimizer = Optimizer([self._flat_parameter], self.config.training)
        rate = self.config.training.learning_rate
        self.diverged = (
            f"training diverged at step {self.steps + 1}: {what}. The weights are back at "
            "their last finite values, which may already be far off: lower the learning "
            f"rate (now {rate:g}) or turn on gradient clipping, and reset the weights."
        )
        raise DivergenceError(self.diverged, self.steps + 1)

    # ----- measuring -------------------------------------------------------------------
    def evaluate(self) -> dict[str, float | None]:
        """Mean loss L (without penalty) and accuracy on the training and test sets;
        accuracy is None for regression."""
        self._sync()
        result: dict[str, float | None] = {}
        data = self.dataset
        for split, x, features, y in (
            ("train", data.x_train, self._train_features, data.y_train),
            ("test", data.x_test, self._test_features, data.y_test),
        ):
            if self.fastpath is not None:
                loss, outputs = self.fastpath.loss_and_outputs(features, y)
            else:
                with no_grad():
                    z = self.model.forward(x)
                    loss = float(self.model.loss(z, y).value)
                outputs = z.value
            result[f"{split}_loss"] = loss
            result[f"{split}_accuracy"] = self._accuracy(outputs, y)
        return result

    def _accuracy(self, outputs: np.ndarray, y: np.ndarray) -> float | None:
        task, loss = self.dataset.task, self.config.model.output.loss
        if task == "regression":
            return None
        if loss == "softmax":
            predicted = np.argmax(outputs, axis=1)
        elif loss == "bernoulli":
            predicted = outputs[:, 0] > 0.0  # σ(z) > ½
        else:  # squared or absolute error on class labels: the nearest label
            predicted = np.clip(np.rint(outputs[:, 0]), 0, self.dataset.classes - 1)
        return float(np.mean(predicted == y))

    # ----- live changes ------------------------------------------------------------------
    def set_training(self, spec: TrainingSpec) -> None:
        """New learning rate, optimiser, batch size, penalties or clipping; the weights
        stay, and so does the optimiser's state while its kind is unchanged."""
        check_training_spec(spec)
        spec = replace(spec)
        previous = self.config.training
        self.config.training = spec
        if spec.optimizer == previous.optimizer:
            self.optimizer.spec = spec
        else:
            self.optimizer = Optimizer([self._flat_parameter], spec)
        self.diverged = None

    def replace_model(self, model: MLP) -> None:
        """Continue with a new network (e.g. from ``engine.nn.transfer`` after an
        architecture change): its weights are kept, the optimiser starts afresh."""
        if model.input_dim != self.dataset.input_dim:
            raise ValueError(
                f"the network takes {model.input_dim} inputs, the data has {self.dataset.input_dim}"
            )
        check_compatible(model.spec, self.dataset)
        if model.output.units != output_units(model.spec.output, _classes(self.dataset)):
            raise ValueError(
                f"the network has {model.output.units} outputs, which does not fit the "
                f"{self.dataset.classes} classes of dataset {self.dataset.name!r}"
            )
        self._attach_model(model)

    def replace_data(self, data: DataSpec) -> None:
        """Train on new data, keeping the network when it fits the new task.

        The hidden layers always carry over; the output layer is rebuilt only when the
        number of classes changes. A dataset whose task the loss cannot model (or whose
        single input the features cannot use) raises ValueError and changes nothing:
        build a new ``Trainer`` for a different kind of problem.
        """
        dataset = make_dataset(data)
        check_compatible(self.config.model, dataset)
        self._sync()
        old = self.model
        self.config.data = replace(data, points=[list(p) for p in data.points])
        self._attach_data(dataset)
        if dataset.input_dim != old.input_dim or _classes(dataset) != old.classes:
            model = MLP(old.spec, dataset.input_dim, _classes(dataset), inputs=dataset.x_train)
            model.rng = old.rng
            for new, kept in zip(model.parameters(), old.parameters()):
                if new.value.shape == kept.value.shape:
                    new.value[...] = kept.value
            self._attach_model(model)
        else:
            self._attach_model(old)

    def reset(self, seed: int | None = None) -> None:
        """Fresh initial weights (from ``seed``, or the model spec's own seed), a fresh
        optimiser, and the counters back at zero."""
        spec = self.config.model if seed is None else replace(self.config.model, seed=seed)
        model = MLP(spec, self.dataset.input_dim, _classes(self.dataset),
                    inputs=self.dataset.x_train)
        self.steps = 0
        self.last_loss = None
        self.config.model = spec
        self._attach_data(self.dataset)
        self._attach_model(model)


def _classes(dataset: Dataset) -> int:
    return max(dataset.classes, 2)
