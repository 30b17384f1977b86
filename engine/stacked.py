"""Many sessions' training as one computation: the fast path with a leading session axis.

A class mostly trains the same network. One step of the [4, 2] default is some thirty
numpy calls on arrays of a few dozen numbers, so its cost is the calls, not the
arithmetic. Stacking S sessions that share a model shape (each layer's weights become an
(S, fan_in, units) array) makes each of those calls serve every session at once: one
step of fifty sessions costs about what two solo steps did.

Each session keeps everything that is its own: its data and its shuffled minibatch order
(drawn from its own generator, in the order a solo run draws them), its learning rate,
momentum, Adam moments and step count, its penalties and clipping. ``train_stacked``
reads the trainers' state, runs the steps, and writes the state back, so between runs a
``Trainer`` is exactly what its own ``step`` calls would have made it (tests hold each
session's result to its solo fast path within 1e-10). The arithmetic is Algorithm 6.2 as
in ``engine.fastpath``; the hidden units' forward and backward functions are those of the
fast path, which are element-wise and so indifferent to the extra axis.

Sessions that ask for different numbers of steps share the run: their rows are sorted by
steps asked, largest first, so that the sessions still training at step j are always the
first m_j rows and every array op works on a leading slice (a view, no copy).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.fastpath import UNITS, _Buffers, _sigmoid
from engine.training import Trainer

# hidden units whose fast-path functions are purely element-wise (PReLU's slope gradient
# and maxout's pieces are reduced per session, which these functions do not know about)
STACKED_UNITS = ("tanh", "sigmoid", "softplus", "relu", "leaky_relu", "hard_tanh", "abs",
                 "linear")
STACKED_LOSSES = ("bernoulli", "softmax", "squared", "absolute", "gaussian")
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def group_key(trainer: Trainer) -> tuple | None:
    """Trainers with equal keys can train as one stacked computation; None: this one
    trains alone (no fast path, a unit or loss not stacked here, a pass over the data
    that does not split into whole minibatches, or a diverged run)."""
    if trainer.fastpath is None or trainer.diverged is not None:
        return None
    model = trainer.model
    layers = []
    for layer in model.layers:
        if layer.spec.activation not in STACKED_UNITS:
            return None
        layers.append((layer.units, layer.spec.activation, float(layer.spec.slope)))
    output = model.spec.output
    if output.loss not in STACKED_LOSSES:
        return None
    training = trainer.config.training
    batch = training.batch_size
    size = trainer._train_size
    if size % batch or (size - trainer._position) % batch:
        return None
    return (
        trainer._train_features.shape[1], tuple(layers), output.loss, float(output.precision),
        model.output.units, batch, training.optimizer,
    )


@dataclass
class StackedResult:
    """Per trainer (in the order given): the steps done; ``interrupted`` holds the
    trainers whose next step must run alone (its loss or weights were not finite in the
    stacked step, which was undone: the solo step reports the divergence exactly)."""

    done: list[int]
    interrupted: list[int]


def train_stacked(
    trainers: Sequence[Trainer],
    counts: Sequence[int],
    deadline: float | None = None,
    on_epoch: Callable[[int, int, float, dict], None] | None = None,
) -> StackedResult:
    """Up to ``counts[i]`` steps of ``trainers[i]``, all of which share one
    ``group_key``, as one stacked computation, stopping early (every session at the
    same step, so all slow down alike) when ``time.perf_counter()`` passes ``deadline``.

    ``on_epoch(i, steps, epochs, evaluation)`` reports, after the run and in step order,
    each pass over its data that trainer i finished: its counters right after that step
    and ``Trainer.evaluate()`` of its weights then (the session's learning curve). The
    evaluations of all those moments are computed together, stacked like the steps.
    """
    if not trainers:
        return StackedResult([], [])
    keys = {group_key(t) for t in trainers}
    if len(keys) != 1 or None in keys:
        raise ValueError("train_stacked: the trainers do not share one stacked group key")
    order = sorted(range(len(trainers)), key=lambda i: -counts[i])
    rows = [trainers[i] for i in order]
    row_counts = [max(0, int(counts[i])) for i in order]
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is caught, not warned
        done_rows, interrupted_rows = _Run(rows, row_counts, deadline, on_epoch, order).run()
    done = [0] * len(trainers)
    for row, index in enumerate(order):
        done[index] = done_rows[row]
    return StackedResult(done, [order[row] for row in interrupted_rows])


class _Run:
    def __init__(self, trainers, counts, deadline, on_epoch, order):
        self.trainers = trainers
        self.counts = counts
        self.deadline = deadline
        self.on_epoch = on_epoch
        self.order = order
        first = trainers[0]
        self.model = first.model
        self.S = S = len(trainers)
        self.n = n = first.config.training.batch_size
        self.spec = first.config.training
        for trainer in trainers:
            trainer._sync()
        # where each trainer stood before the run (the write-back counts from here)
        self.bases = [(t.steps, t.optimizer.steps, t._position, t._epochs_done, t._order)
                      for t in trainers]
        # ----- parameters and optimiser state, (S, P) -----
        self.flat = np.stack([t._flat for t in trainers])
        self.grad = np.zeros_like(self.flat)
        self.backup = np.empty_like(self.flat)
        kind = self.spec.optimizer
        self.kind = kind
        self.velocity = np.stack([t.optimizer._velocity[0] for t in trainers])
        self.second = (np.stack([t.optimizer._second[0] for t in trainers])
                       if kind == "adam" else None)
        self.velocity_backup = np.empty_like(self.velocity)
        self.second_backup = np.empty_like(self.second) if self.second is not None else None
        specs = [t.config.training for t in trainers]

        def column(values: list[float]) -> np.ndarray:
            return np.array(values, dtype=np.float64).reshape(S, 1)

        self.rate = column([s.learning_rate for s in specs])
        self.momentum = column([s.momentum for s in specs])
        self.beta1 = column([s.beta1 for s in specs])
        self.beta2 = column([s.beta2 for s in specs])
        self.one_minus_beta1 = 1.0 - self.beta1
        self.one_minus_beta2 = 1.0 - self.beta2
        self.epsilon = column([s.epsilon for s in specs])
        self.opt_steps = np.array([t.optimizer.steps for t in trainers], dtype=np.float64)
        self.l2 = np.array([s.l2 for s in specs]).reshape(S, 1, 1)
        self.l1 = np.array([s.l1 for s in specs]).reshape(S, 1, 1)
        self.penalty = bool(self.l2.any() or self.l1.any())
        self.clip = np.array([s.clip_norm for s in specs])
        self.clipping = bool(self.clip.any())
        # ----- each parameter as a view of the flat rows -----
        self.layers = self.model.all_layers
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        offset = 0
        for parameter in self.model.parameters():
            shape = parameter.value.shape
            size = parameter.value.size
            for flat, out in ((self.flat, self.params), (self.grad, self.grads)):
                view = flat[:, offset : offset + size].reshape((S, *shape))
                out.append(view if view.ndim == 3 else view[:, None, :])
            offset += size
        # ----- data: every session's training features and targets, padded -----
        sizes = [t._train_size for t in trainers]
        width = first._train_features.shape[1]
        self.stride = max(sizes)
        self.features = np.zeros((S * self.stride, width))
        self.targets = np.zeros(S * self.stride)
        for row, trainer in enumerate(trainers):
            start = row * self.stride
            self.features[start : start + sizes[row]] = trainer._train_features
            self.targets[start : start + sizes[row]] = trainer._y_train
        self.batch = np.empty((S, n, width))
        self.y = np.empty((S, n))
        self._plan_batches(sizes)
        self.losses = np.full(S, np.nan)
        self.snapshots: list[tuple[int, list[int], np.ndarray]] = []
        self._buffers: dict[int, tuple] = {}
        self._build_workspace()

    # ----- the minibatch stream --------------------------------------------------------
    def _plan_batches(self, sizes: list[int]) -> None:
        """Every session's example indices for all its steps, drawing new shuffles from
        its own generator exactly when a solo run would (after each finished pass)."""
        n, longest = self.n, max(self.counts, default=0)
        self.index = np.zeros((self.S, max(longest, 1) * n), dtype=np.intp)
        self.epoch_ends: dict[int, list[int]] = {}
        self.shuffles: list[list[tuple[np.ndarray, dict]]] = []
        self.final_states: list[dict] = []
        for row, trainer in enumerate(self.trainers):
            count, size = self.counts[row], sizes[row]
            pieces, shuffles = [], []
            position, order, step, need = trainer._position, trainer._order, 0, count * n
            taken = 0
            while taken < need:
                piece = order[position:]
                pieces.append(piece[: need - taken])
                steps_in_pass = (size - position) // n
                step += steps_in_pass
                taken += len(piece)
                if step <= count:  # this pass ends within the run: a solo run reshuffles
                    self.epoch_ends.setdefault(step - 1, []).append(row)
                    state = trainer._shuffle_rng.bit_generator.state
                    order = trainer._shuffle_rng.permutation(size)
                    shuffles.append((order, state))
                position = 0
            if pieces:
                stream = np.concatenate(pieces) + row * self.stride
                self.index[row, : len(stream)] = stream
            self.shuffles.append(shuffles)
            self.final_states.append(trainer._shuffle_rng.bit_generator.state)

    # ----- buffers ---------------------------------------------------------------------
    def _build_workspace(self) -> None:
        S, n = self.S, self.n
        self.hidden = []
        for layer in self.model.layers:
            width = layer.units
            pre = np.empty((S, n, width))
            linear = layer.spec.activation == "linear"
            act = pre if linear else np.empty((S, n, width))
            grad_act = np.empty((S, n, width))
            self.hidden.append((pre, act, grad_act, np.empty((S, n, width)),
                                np.empty((S, n, width), dtype=bool)))
        outputs = self.model.output.units
        self.z = np.empty((S, n, outputs))
        self.gz = np.empty((S, n, outputs))
        self.zscratch = np.empty((S, n, outputs))
        self.ones = np.ones((1, n))

    def _views(self, m: int) -> tuple:
        """The first m rows of every buffer, made once per m."""
        found = self._buffers.get(m)
        if found is None:
            hidden = [
                _Buffers(pre_activation=pre[:m], activation=act[:m], grad_activation=g[:m],
                         grad_pre_activation=g[:m], scratch=s[:m], mask=k[:m])
                for pre, act, g, s, k in self.hidden
            ]
            found = (hidden, [p[:m] for p in self.params], [g[:m] for g in self.grads])
            self._buffers[m] = found
        return found

    # ----- the run ---------------------------------------------------------------------
    def run(self) -> tuple[list[int], list[int]]:
        counts = self.counts
        longest = counts[0] if counts else 0
        done = 0
        interrupted: list[int] = []
        m = self.S
        for step in range(longest):
            while m and counts[m - 1] <= step:
                m -= 1
            if not self._step(step, m):
                interrupted = list(range(m))
                break
            done = step + 1
            ends = self.epoch_ends.get(step)
            if ends and self.on_epoch is not None:
                self.snapshots.append((step + 1, ends, self.flat[ends]))  # a copy
            if self.deadline is not None and time.perf_counter() >= self.deadline:
                break
        result = [min(c, done) for c in counts]
        for row in range(self.S):
            self._write_back(row, result[row])
        if self.snapshots:
            self._report_epochs()
        return result, interrupted

    # ----- the learning curve's points ---------------------------------------------------
    def _report_epochs(self) -> None:
        """``Trainer.evaluate()`` at every pass's end, for all of them in stacked calls."""
        rows = np.array([row for _, ends, _ in self.snapshots for row in ends])
        steps = [step for step, ends, _ in self.snapshots for _ in ends]
        flats = np.concatenate([flat for _, _, flat in self.snapshots])
        results: dict[str, list] = {}
        for split in ("train", "test"):
            features, targets, sizes = self._split(split)
            losses = np.empty(len(rows))
            accuracies: list[float | None] = [None] * len(rows)
            for size in np.unique(sizes[rows]):
                picked = np.flatnonzero(sizes[rows] == size)
                x, y = features[rows[picked], :size], targets[rows[picked], :size]
                z = self._forward(flats[picked], x)
                losses[picked] = self._loss(z, y, np.empty_like(z), len(picked), int(size),
                                            np.empty_like(z))
                for k, accuracy in zip(picked, self._accuracies(z, y, rows[picked])):
                    accuracies[k] = accuracy
            results[f"{split}_loss"] = losses.tolist()
            results[f"{split}_accuracy"] = accuracies
        keys = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
        for k, row in enumerate(rows.tolist()):
            epochs = self._counters(row, steps[k])[2]
            self.on_epoch(self.order[row], self.bases[row][0] + steps[k], float(epochs),
                          {key: results[key][k] for key in keys})

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row's features (S, N, F) and targets (S, N), padded, and their sizes."""
        if split == "train":
            sizes = np.array([t._train_size for t in self.trainers])
            return (self.features.reshape(self.S, self.stride, -1),
                    self.targets.reshape(self.S, self.stride), sizes)
        sources = [(t._test_features, t.dataset.y_test) for t in self.trainers]
        sizes = np.array([len(y) for _, y in sources])
        features = np.zeros((self.S, max(sizes), sources[0][0].shape[1]))
        targets = np.zeros((self.S, max(sizes)))
        for row, (x, y) in enumerate(sources):
            features[row, : len(y)], targets[row, : len(y)] = x, y
        return features, targets, sizes

    def _accuracies(self, z: np.ndarray, y: np.ndarray, rows: np.ndarray) -> list:
        """``Trainer._accuracy`` of each row's outputs z (K, n, O) on targets y (K, n)."""
        first = self.trainers[0]
        if first.dataset.task == "regression":
            return [None] * len(z)
        loss = self.model.spec.output.loss
        if loss == "softmax":
            predicted = np.argmax(z, axis=2)
        elif loss == "bernoulli":
            predicted = z[:, :, 0] > 0.0  # σ(z) > ½
        else:  # squared or absolute error on class labels: the nearest label
            top = np.array([self.trainers[r].dataset.classes - 1 for r in rows])[:, None]
            predicted = np.clip(np.rint(z[:, :, 0]), 0, top)
        return np.mean(predicted == y, axis=1).tolist()

    def _forward(self, flats: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Output pre-activations z of K weight vectors (K, P) on (K, n, F) features."""
        K, n = len(flats), features.shape[1]
        h = features
        layers = self.layers
        params = []
        offset = 0
        for parameter in self.model.parameters():
            shape, size = parameter.value.shape, parameter.value.size
            view = flats[:, offset : offset + size].reshape((K, *shape))
            params.append(view if view.ndim == 3 else view[:, None, :])
            offset += size
        for k, layer in enumerate(layers[:-1]):
            a = np.matmul(h, params[2 * k])
            a += params[2 * k + 1]
            width = a.shape[2]
            buffers = _Buffers(pre_activation=a,
                               activation=a if layer.spec.activation == "linear"
                               else np.empty_like(a),
                               grad_activation=a, grad_pre_activation=a,
                               scratch=np.empty((K, n, width)),
                               mask=np.empty((K, n, width), dtype=bool))
            UNITS[layer.spec.activation][0](layer, buffers)
            h = buffers.activation
        z = np.matmul(h, params[-2])
        z += params[-1]
        return z

    def _step(self, step: int, m: int) -> bool:
        """One update of the first m sessions; False (and nothing changed) when a loss or
        a weight was not finite."""
        n = self.n
        hidden, params, grads = self._views(m)
        index = self.index[:m, step * n : (step + 1) * n]
        batch, y = self.batch[:m], self.y[:m]
        self.features.take(index, axis=0, out=batch)
        self.targets.take(index, out=y)
        # Algorithm 6.1, forward
        h = batch
        layers = self.layers
        for k, buffers in enumerate(hidden):
            a = buffers.pre_activation
            np.matmul(h, params[2 * k], out=a)
            a += params[2 * k + 1]
            UNITS[layers[k].spec.activation][0](layers[k], buffers)
            h = buffers.activation
        z, gz = self.z[:m], self.gz[:m]
        np.matmul(h, params[-2], out=z)
        z += params[-1]
        losses = self._loss(z, y, gz, m, n, self.zscratch[:m])
        if not np.isfinite(losses).all():
            return False
        # Algorithm 6.2, backward
        g = gz
        for k in range(len(layers) - 1, -1, -1):
            below = hidden[k - 1].activation if k > 0 else batch
            np.matmul(below.transpose(0, 2, 1), g, out=grads[2 * k])
            if self.penalty:
                self._add_penalty(grads[2 * k], params[2 * k], m)
            np.matmul(self.ones, g, out=grads[2 * k + 1])
            if k == 0:
                break
            buffers = hidden[k - 1]
            np.matmul(g, params[2 * k].transpose(0, 2, 1), out=buffers.grad_activation)
            UNITS[layers[k - 1].spec.activation][1](layers[k - 1], buffers, None)
            g = buffers.grad_pre_activation
        grad = self.grad[:m]
        if self.clipping:
            clip = self.clip[:m]
            norms = np.sqrt(np.einsum("ij,ij->i", grad, grad))
            scale = np.where((clip > 0) & (norms > clip), clip / (norms + 1e-12), 1.0)
            grad *= scale[:, None]
        flat = self.flat[:m]
        np.copyto(self.backup[:m], flat)
        np.copyto(self.velocity_backup[:m], self.velocity[:m])
        if self.second is not None:
            np.copyto(self.second_backup[:m], self.second[:m])
        self._update(flat, grad, m)
        if not np.isfinite(np.add.reduce(flat, axis=1)).all():
            np.copyto(flat, self.backup[:m])
            np.copyto(self.velocity[:m], self.velocity_backup[:m])
            if self.second is not None:
                np.copyto(self.second[:m], self.second_backup[:m])
            self.opt_steps[:m] -= 1
            return False
        self.losses[:m] = losses
        return True

    def _loss(self, z: np.ndarray, y: np.ndarray, grad: np.ndarray, m: int, n: int,
              scratch: np.ndarray) -> np.ndarray:
        """Each session's mean loss L over its n rows, and ∇_z L into ``grad`` (as the
        fast path)."""
        loss_kind = self.model.spec.output.loss
        if loss_kind == "bernoulli":
            np.logaddexp(0.0, z, out=scratch)
            losses = scratch[:, :, 0].sum(axis=1) - np.einsum("ij,ij->i", y, z[:, :, 0])
            _sigmoid(z, grad)
            grad[:, :, 0] -= y
            grad *= 1.0 / n
            return losses / n
        if loss_kind == "softmax":
            labels = y.astype(np.intp)[:, :, None]
            np.subtract(z, z.max(axis=2, keepdims=True), out=scratch)
            picked = np.take_along_axis(scratch, labels, axis=2)[:, :, 0].sum(axis=1)
            np.exp(scratch, out=scratch)
            total = scratch.sum(axis=2, keepdims=True)
            losses = np.log(total)[:, :, 0].sum(axis=1) - picked
            np.divide(scratch, total, out=grad)
            np.put_along_axis(grad, labels, np.take_along_axis(grad, labels, axis=2) - 1.0,
                              axis=2)
            grad *= 1.0 / n
            return losses / n
        precision = 1.0
        constant = 0.0
        if loss_kind == "gaussian":
            precision = float(self.model.spec.output.precision)
            constant = _HALF_LOG_TWO_PI - 0.5 * math.log(precision)
        difference = np.subtract(z, y[:, :, None], out=scratch)
        if loss_kind == "absolute":
            np.sign(difference, out=grad)
            grad *= 1.0 / n
            return np.abs(difference).sum(axis=(1, 2)) / n
        losses = 0.5 * precision * np.einsum("ijk,ijk->i", difference, difference)
        np.multiply(difference, precision / n, out=grad)
        return losses / n + constant

    def _add_penalty(self, grad: np.ndarray, weights: np.ndarray, m: int) -> None:
        # Ω = λ₂/2 ‖W‖² + λ₁ ‖W‖₁ on weights only: ∇Ω = λ₂ W + λ₁ sign(W), per session
        grad += self.l2[:m] * weights
        grad += self.l1[:m] * np.sign(weights)

    def _update(self, flat: np.ndarray, grad: np.ndarray, m: int) -> None:
        """``engine.optim.Optimizer.step`` with one row per session (same operations in
        the same order, so each row matches its solo update)."""
        rate = self.rate[:m]
        self.opt_steps[:m] += 1
        if self.kind == "sgd":
            flat -= rate * grad
            return
        velocity = self.velocity[:m]
        if self.kind in ("momentum", "nesterov"):
            velocity *= self.momentum[:m]
            velocity += grad
            if self.kind == "momentum":
                flat -= rate * velocity
            else:
                flat -= rate * (grad + self.momentum[:m] * velocity)
            return
        second = self.second[:m]
        beta1, beta2 = self.beta1[:m], self.beta2[:m]
        steps = self.opt_steps[:m, None]
        correction1 = 1.0 - beta1**steps
        root_correction2 = np.sqrt(1.0 - beta2**steps)
        step_size = rate / correction1
        velocity *= beta1
        velocity += self.one_minus_beta1[:m] * grad
        second *= beta2
        second += self.one_minus_beta2[:m] * grad * grad
        denominator = np.sqrt(second)
        denominator /= root_correction2
        denominator += self.epsilon[:m]
        flat -= step_size * velocity / denominator

    # ----- back to the trainers ----------------------------------------------------------
    def _counters(self, row: int, done: int) -> tuple[int, int, float]:
        """After ``done`` steps of row's trainer: passes finished in this run, position
        in the current pass, and ``Trainer.epochs``."""
        _, _, position0, epochs0, _ = self.bases[row]
        n, size = self.n, self.trainers[row]._train_size
        first_pass = (size - position0) // n
        if done < first_pass:
            passes, position = 0, position0 + done * n
        else:
            passes = 1 + (done - first_pass) // (size // n)
            position = ((done - first_pass) % (size // n)) * n
        return passes, position, epochs0 + passes + position / size

    def _write_back(self, row: int, done: int) -> None:
        """Trainer ``row`` as a solo run would have left it after ``done`` of its steps."""
        trainer = self.trainers[row]
        np.copyto(trainer._flat, self.flat[row])
        optimizer = trainer.optimizer
        np.copyto(optimizer._velocity[0], self.velocity[row])
        if self.second is not None:
            np.copyto(optimizer._second[0], self.second[row])
        steps0, opt0, _, _, order0 = self.bases[row]
        trainer.steps = steps0 + done
        optimizer.steps = opt0 + done
        if done:
            trainer.last_loss = float(self.losses[row])
        passes, position, _ = self._counters(row, done)
        trainer._epochs_done = self.bases[row][3] + passes
        trainer._position = position
        shuffles = self.shuffles[row]
        trainer._order = shuffles[passes - 1][0] if passes else order0
        # the generator as it was after this many shuffles (undraws any drawn ahead)
        state = shuffles[passes][1] if passes < len(shuffles) else self.final_states[row]
        trainer._shuffle_rng.bit_generator.state = state
