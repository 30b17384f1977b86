"""One browser tab's training run: the commands it accepts and the frames it produces.

A ``Session`` owns a ``Trainer`` (network, data, optimiser) and a ``FrameBuilder``. Its
methods are synchronous; ``app.connection`` calls them from worker threads, one at a time
per session. Numerical work stays in ``engine``: the session translates commands into
engine calls (which surviving unit continues which old one, which setting changed) and
keeps the counters the protocol reports. A command either applies completely or raises
``CommandError`` and leaves the session, and its trained weights, as they were.
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.csvdata import CsvError, parse_csv
from app.presets import default_config
from app.protocol import SCHEMA_VERSION, describe, protocol_for
from app.settings import Settings
from engine.datasets import DATASETS, LOSS_TASKS
from engine.nn import UnitSource, transfer
from engine.spec import Config, LayerSpec
from engine.stacked import group_key, train_stacked
from engine.training import DivergenceError, Trainer
from engine.views import FrameBuilder, ViewSpec, quantise

# a model that fits each task when a dataset change leaves the current one unable to fit it
_LOSS_FOR_TASK = {"binary": "bernoulli", "multiclass": "softmax", "regression": "squared"}
_NEEDS_X2 = ("x2", "x2_squared", "x1_x2", "sin_x2")
_ENGINE_FIELD = re.compile(r"^((?:model|training|data)(?:\.[a-z_0-9]+|\[\d+\])*)")
_HISTORY_KEYS = ("step", "epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy")
_MIN_STEPS_BETWEEN_RECORDS = 10


class CommandError(Exception):
    """A command the session refuses; nothing was changed. ``line``: the line of a file
    (``load_csv``) at fault."""

    def __init__(
        self, message: str, field: str | None = None, limit: Any = None, code: str = "rejected",
        line: int | None = None,
    ):
        super().__init__(message)
        self.message, self.field, self.limit, self.code = message, field, limit, code
        self.line = line


def engine_error(error: ValueError, prefix: str = "") -> CommandError:
    """An engine ValueError (its message starts with the field) as a CommandError."""
    message = str(error)
    match = _ENGINE_FIELD.match(message)
    field = None
    if match:
        field = prefix + re.sub(r"\[(\d+)\]", r".\1", match.group(1))
    return CommandError(message, field=field)


class Session:
    def __init__(self, session_id: str, settings: Settings, config: Config | None = None):
        self.id = session_id
        self.settings = settings
        self.protocol = protocol_for(settings)
        self.trainer = _trainer(config or _default_within(settings))
        self.view: dict[str, Any] = self.protocol.View().model_dump()
        self.speed = min(float(settings.default_speed), settings.max_speed)
        self.achieved_speed: float | None = None  # steps/s the training loop managed lately
        self.show_warps = True  # the client's last `ready` asked for the warps
        self.playing = False
        self.builder = FrameBuilder()
        self.version = 1  # grows with every change a frame would show
        self.data_version = 1
        self._frame_data_version = 0  # the data version the last frame carried
        self.seq = 0
        self._history: deque[tuple] = deque(maxlen=settings.history_length)
        self._last_record_step: int | None = None
        self._evaluation: dict[str, float | None] | None = None
        self.step_through: Any = None  # the open step-through graph (app.stepping)

    # ----- what the client sees ----------------------------------------------------------
    @property
    def config(self) -> Config:
        return self.trainer.config

    def document(self) -> dict[str, Any]:
        """The patchable settings: config, view and speed."""
        doc = self.config.to_dict()
        doc["view"] = dict(self.view)
        doc["speed"] = self.speed
        return doc

    def network(self) -> dict[str, Any]:
        model, dataset = self.trainer.model, self.trainer.dataset
        return {
            "features": list(model.spec.features),
            "input_dim": model.input_dim,
            "layers": [
                {"units": layer.units, "activation": layer.spec.activation,
                 "width": int(layer.weights.shape[1])}
                for layer in model.layers
            ],
            "outputs": model.output.units,
            "loss": model.spec.output.loss,
            "task": dataset.task,
            "classes": dataset.classes,
        }

    def state(self, command: str, message_id: Any = None, notes: list[str] | None = None) -> dict:
        return {
            "type": "state", "id": message_id, "command": command,
            "config": self.config.to_dict(), "view": dict(self.view), "speed": self.speed,
            "playing": self.playing, "step": self.trainer.steps,
            "epoch": float(self.trainer.epochs), "network": self.network(),
            "notes": notes or [],
        }

    def hello(self) -> dict:
        limits = {name: getattr(self.settings, name) for name in (
            "max_layers", "max_units", "max_points", "max_grid", "max_warp_lines",
            "max_warp_samples", "max_speed", "max_steps_per_command",
            "max_epochs_per_command", "max_message_bytes",
        )}
        return {
            "type": "hello", "session": self.id, "schema_version": SCHEMA_VERSION, "limits": limits,
            "config": self.config.to_dict(), "view": dict(self.view), "speed": self.speed,
            "playing": self.playing,
        }

    def export(self, message_id: Any = None) -> dict:
        return {
            "type": "export", "id": message_id, "schema_version": SCHEMA_VERSION,
            "config": self.config.to_dict(), "view": dict(self.view), "speed": self.speed,
            "weights": self.trainer.model.state_dict(), "step": self.trainer.steps,
            "epoch": float(self.trainer.epochs),
        }

    # ----- commands --------------------------------------------------------------------
    def configure(self, command: Any) -> list[str]:
        config = Config.from_dict(command.config.model_dump())
        try:
            trainer = _trainer(config)
        except ValueError as error:
            raise engine_error(error, "config.") from None
        if command.weights is not None:
            try:
                trainer.model.load_state_dict(command.weights)
            except (ValueError, TypeError) as error:
                raise CommandError(f"weights: {error}".replace("weights: weights:", "weights:"),
                                   field="weights") from None
        if command.step is not None:  # a reconnecting page restores how far it had trained
            trainer.restore_counters(command.step, command.epoch or 0.0)
        self.trainer = trainer
        if command.view is not None:
            self.view = command.view.model_dump()
        if command.speed is not None:
            self.speed = float(command.speed)
        if command.play is not None:
            self.playing = command.play
        self._changed(data=True, layout=True, restart=True)
        return []

    def patch_set(self, path: str, value: Any) -> list[str]:
        doc = self.document()
        parts = path.split(".")
        parent: Any = doc
        for depth, part in enumerate(parts):
            where = ".".join(parts[: depth + 1])
            if isinstance(parent, dict):
                if part not in parent:
                    raise CommandError(f"{where}: no such setting", field=where,
                                       limit=sorted(parent), code="invalid")
                key: Any = part
            elif isinstance(parent, list):
                if not part.isdigit() or int(part) >= len(parent):
                    raise CommandError(f"{where}: no such position (there are {len(parent)})",
                                       field=where, limit=len(parent) - 1, code="invalid")
                key = int(part)
            else:
                raise CommandError(f"{where}: no such setting", field=where, code="invalid")
            if depth == len(parts) - 1:
                parent[key] = copy.deepcopy(value)
            else:
                parent = parent[key]
        try:
            checked = self.protocol.Document.model_validate(doc).model_dump()
        except ValidationError as error:
            raise CommandError(code="invalid", **describe(error)) from None
        notes: list[str] = []
        view, speed = checked.pop("view"), checked.pop("speed")
        config = Config.from_dict(checked)
        if config.data.name != self.config.data.name:
            self._fit_model_to_data(config, notes)
        # layers and units continue the old ones at the same positions
        old_layers = self.config.model.layers
        sources: list[list[UnitSource]] = [
            [(k + 1, j) if k < len(old_layers) and j < old_layers[k].units else None
             for j in range(layer.units)]
            for k, layer in enumerate(config.model.layers)
        ]
        self._apply(config, sources)
        self.view, self.speed = view, float(speed)
        return notes

    def add_layer(self, index: int | None, units: int, activation: str | None) -> list[str]:
        layers = self.config.model.layers
        if len(layers) >= self.settings.max_layers:
            raise CommandError(
                f"model.layers: at most {self.settings.max_layers} hidden layers",
                field="model.layers", limit=self.settings.max_layers,
            )
        index = len(layers) if index is None else index
        if index > len(layers):
            raise CommandError(f"index: a new layer can go at 0 to {len(layers)}",
                               field="index", limit=len(layers))
        config = self.config.copy()
        neighbour = layers[min(index, len(layers) - 1)] if layers else None
        new_layer = replace(neighbour) if neighbour else LayerSpec()
        new_layer.units = units
        if activation is not None:
            new_layer.activation = activation
        config.model.layers.insert(index, new_layer)
        sources: list[list[UnitSource]] = []
        for position, layer in enumerate(config.model.layers):
            if position == index:
                sources.append([None] * layer.units)
            else:
                old = position if position < index else position - 1
                sources.append([(old + 1, j) for j in range(layer.units)])
        self._apply(config, sources)
        return []

    def remove_layer(self, index: int | None) -> list[str]:
        layers = self.config.model.layers
        if not layers:
            raise CommandError("model.layers: there is no hidden layer to remove",
                               field="model.layers", limit=0)
        index = len(layers) - 1 if index is None else index
        if index >= len(layers):
            raise CommandError(f"index: choose a layer from 0 to {len(layers) - 1}",
                               field="index", limit=len(layers) - 1)
        config = self.config.copy()
        del config.model.layers[index]
        sources = []
        for position, layer in enumerate(config.model.layers):
            old = position if position < index else position + 1
            sources.append([(old + 1, j) for j in range(layer.units)])
        self._apply(config, sources)
        return []

    def add_unit(self, layer_index: int) -> list[str]:
        layers = self._layer(layer_index)
        if layers[layer_index].units >= self.settings.max_units:
            raise CommandError(
                f"model.layers.{layer_index}.units: at most {self.settings.max_units} units",
                field=f"model.layers.{layer_index}.units", limit=self.settings.max_units,
            )
        config = self.config.copy()
        config.model.layers[layer_index].units += 1
        sources = [[(k + 1, j) for j in range(layer.units)] for k, layer in enumerate(layers)]
        sources[layer_index].append(None)
        self._apply(config, sources)
        return []

    def remove_unit(self, layer_index: int, unit: int | None) -> list[str]:
        layers = self._layer(layer_index)
        units = layers[layer_index].units
        if units <= 1:
            raise CommandError(
                f"model.layers.{layer_index}.units: a layer needs at least one unit; "
                "remove the layer instead", field=f"model.layers.{layer_index}.units", limit=1,
            )
        unit = units - 1 if unit is None else unit
        if unit >= units:
            raise CommandError(f"unit: layer {layer_index} has units 0 to {units - 1}",
                               field="unit", limit=units - 1)
        config = self.config.copy()
        config.model.layers[layer_index].units -= 1
        sources = [[(k + 1, j) for j in range(layer.units)] for k, layer in enumerate(layers)]
        del sources[layer_index][unit]
        self._apply(config, sources)
        return []

    def reset(self, seed: int | None) -> list[str]:
        self.trainer.reset(seed)
        self._changed(data=False, layout=True, restart=True)
        return []

    def set_weight(self, name: str, index: list[int], value: float) -> list[str]:
        parameters = {p.name: p for p in self.trainer.model.parameters()}
        parameter = parameters.get(name)
        if parameter is None:
            raise CommandError(f"name: no parameter {name!r}; this network has "
                               + ", ".join(parameters), field="name", limit=list(parameters))
        shape = parameter.value.shape
        if len(index) != len(shape):
            raise CommandError(f"index: {name} needs {len(shape)} indices (shape {list(shape)})",
                               field="index", limit=list(shape))
        for axis, (i, size) in enumerate(zip(index, shape)):
            if i >= size:
                raise CommandError(f"index.{axis}: {name} has {size} entries along axis {axis}",
                                   field=f"index.{axis}", limit=size - 1)
        parameter.value[tuple(index)] = value
        self._changed(data=False, layout=False)
        return []

    def add_point(self, x: list[float], label: int) -> list[str]:
        points = self._user_points()
        if len(points) >= self.settings.max_points:
            raise CommandError(f"data.points: at most {self.settings.max_points} points",
                               field="data.points", limit=self.settings.max_points)
        points.append([float(x[0]), float(x[1]), float(label), 1.0])  # a training point
        return self._set_points(points)

    def remove_point(self, x: list[float]) -> list[str]:
        points = self._user_points()
        if len(points) <= 2:
            raise CommandError("data.points: a dataset needs at least 2 points",
                               field="data.points", limit=2)
        array = np.asarray(points)[:, :2]
        nearest = int(np.argmin(((array - np.asarray(x)) ** 2).sum(axis=1)))
        del points[nearest]
        return self._set_points(points)

    def load_csv(self, text: str, task: str, name: str | None = None) -> list[str]:
        """A learner's file (issue 12) becomes the data: parsed and checked by
        ``app.csvdata``; a bad file raises with its line and leaves the session as it was."""
        where = f"{name}: " if name else ""
        try:
            parsed = parse_csv(text, task, self.settings.max_points)
        except CsvError as error:
            raise CommandError(where + error.message, field="text", limit=error.limit,
                               line=error.line) from None
        config = self.config.copy()
        classes = parsed.classes or config.data.classes
        config.data = replace(config.data, name="user", points=parsed.rows,
                              inputs=parsed.inputs, target=parsed.target, classes=classes)
        notes: list[str] = []
        self._fit_model_to_data(config, notes)
        self._apply(config, None)
        dataset = self.trainer.dataset
        kind = (f"{parsed.classes} classes" if parsed.classes else
                f"regression over {parsed.inputs} input{'s' * (parsed.inputs > 1)}")
        columns = f" (columns {', '.join(parsed.header)})" if parsed.header else ""
        notes.insert(0, f"data: {len(parsed.rows)} points from {name or 'the file'}{columns}, "
                     f"{kind}: {len(dataset.x_train)} for training, {len(dataset.x_test)} "
                     "for test.")
        return notes

    # ----- training ---------------------------------------------------------------------
    def train(
        self,
        steps: int,
        budget_s: float,
        until_epoch: float | None = None,
        while_playing: bool = False,
    ) -> tuple[int, str | None]:
        """Up to ``steps`` updates (or until ``epochs`` reaches ``until_epoch``) within
        about ``budget_s`` seconds; with ``while_playing``, none once paused. Returns the
        steps done and, if training diverged, the explanation (the session is then
        paused; the weights stay finite)."""
        if while_playing and not self.playing:
            return 0, None
        trainer = self.trainer
        deadline = time.perf_counter() + budget_s
        done = 0
        failure = None
        while done < steps and (until_epoch is None or trainer.epochs < until_epoch - 1e-9):
            epoch_before = math.floor(trainer.epochs)
            try:
                trainer.step()
            except DivergenceError as error:
                self.playing = False
                failure = str(error)
                break
            done += 1
            if math.floor(trainer.epochs) > epoch_before:
                self.epoch_finished()
            if time.perf_counter() >= deadline:
                break
        if done or failure:
            self.version += 1
        return done, failure

    def epoch_finished(
        self, steps: int | None = None, epochs: float | None = None,
        evaluation: dict[str, float | None] | None = None,
    ) -> None:
        """A pass over the training data just ended (after ``steps`` updates, with
        ``evaluation`` from a stacked run; now, by default): a point of the learning curve,
        not closer than a few steps to the last one, so tiny datasets do not flood it."""
        steps = self.trainer.steps if steps is None else steps
        if (self._last_record_step is None
                or steps - self._last_record_step >= _MIN_STEPS_BETWEEN_RECORDS):
            self._record(steps, epochs, evaluation)

    def next_epoch_boundary(self) -> float:
        return math.floor(self.trainer.epochs + 1e-9) + 1.0

    # ----- frames -----------------------------------------------------------------------
    def frame(self) -> dict[str, Any]:
        """Everything the UI draws now, as numpy arrays (``app.encoding`` packs them)."""
        started = time.perf_counter()
        trainer = self.trainer
        if self._last_record_step != trainer.steps or self._evaluation is None:
            self._record()
        evaluation = self._evaluation or {}
        view = self.view
        spec = ViewSpec(grid=view["grid"], unit_grid=view["unit_grid"],
                        warp_lines=view["warp_lines"], warp_samples=view["warp_samples"])
        training = self.config.training
        views = self.builder.build(
            trainer.model, trainer.dataset, spec, training.l2, training.l1,
            gradients=bool(view["gradients"]), fastpath=trainer.fastpath,
            warps=self.show_warps,
        )
        self.seq += 1
        frame: dict[str, Any] = {
            "type": "frame", "session": self.id, "seq": self.seq, "version": self.version,
            "playing": self.playing, "step": trainer.steps, "epoch": float(trainer.epochs),
            "speed": self.speed,
            "achieved_speed": self.achieved_speed if self.playing else None,
            **{key: _finite_or_none(evaluation.get(key)) for key in (
                "train_loss", "test_loss", "train_accuracy", "test_accuracy")},
            "history": self._drain_history(),
            "network": self.network(),
            "data_version": self.data_version,
            "data": None,
            **views,
        }
        if "gradients" not in frame:
            frame["gradients"] = None
        if self._frame_data_version != self.data_version:
            frame["data"] = self._data_block()
            self._frame_data_version = self.data_version
        frame["build_ms"] = (time.perf_counter() - started) * 1e3
        return frame

    # ----- internals --------------------------------------------------------------------
    def _apply(self, config: Config, sources: list[list[UnitSource]] | None) -> None:
        """Move the session to ``config``, keeping every weight that still has a place."""
        old = self.trainer
        data_changed = config.data != old.config.data
        model_changed = config.model != old.config.model
        if data_changed:
            try:
                trainer = _trainer(config)
                self._carry_weights(old, trainer, config, sources)
            except ValueError as error:
                raise engine_error(error) from None
            trainer.steps = old.steps
            self.trainer = trainer
        elif model_changed:
            try:
                model = transfer(old.model, config.model, sources or _fresh(config),
                                 inputs=old.dataset.x_train)
                old.replace_model(model)
            except ValueError as error:
                raise engine_error(error) from None
            if config.training != old.config.training:
                old.set_training(config.training)
        elif config.training != old.config.training:
            try:
                old.set_training(config.training)
            except ValueError as error:
                raise engine_error(error) from None
        self._changed(data=data_changed, layout=model_changed or data_changed)

    @staticmethod
    def _carry_weights(old: Trainer, new: Trainer, config: Config, sources) -> None:
        if old.model.input_dim == new.model.input_dim:
            model = transfer(old.model, config.model, sources or _fresh(config),
                             classes=new.model.classes, inputs=new.dataset.x_train)
            new.replace_model(model)
            return
        kept = {p.name: p.value for p in old.model.parameters()}
        for parameter in new.model.parameters():
            value = kept.get(parameter.name)
            if value is not None and value.shape == parameter.value.shape:
                parameter.value[...] = value

    def _fit_model_to_data(self, config: Config, notes: list[str]) -> None:
        """A new dataset of another kind: pick an output and inputs that can model it."""
        info = DATASETS[config.data.name]
        task, input_dim = info.task, info.input_dim
        if config.data.name == "user":
            input_dim = config.data.inputs  # a file's points may have one input
            labels = [p[input_dim] for p in config.data.points]
            task = "multiclass" if labels and max(labels) > 1 else "binary"
            if config.data.target == "value":
                task = "regression"
        loss = config.model.output.loss
        old_task = self.trainer.dataset.task
        # a loss that cannot model the new task, or the old task's natural loss, follows
        # the task; a deliberate other choice (absolute error, say) stays
        if task not in LOSS_TASKS.get(loss, ()) or (
            task != old_task and loss == _LOSS_FOR_TASK[old_task]
        ):
            config.model.output.loss = _LOSS_FOR_TASK[task]
            notes.append(f"model.output.loss: {task} data; switched from {loss!r} to "
                         f"{config.model.output.loss!r}")
        features = config.model.features
        if input_dim == 1:
            kept = [f for f in features if f not in _NEEDS_X2] or ["x1"]
            if kept != features:
                notes.append("model.features: this dataset has one input; using "
                             + ", ".join(kept))
                config.model.features = kept
        elif self.trainer.dataset.input_dim == 1 and "x2" not in features:
            config.model.features = [*features, "x2"]
            notes.append("model.features: this dataset has two inputs; added x2")

    def _user_points(self) -> list[list[float]]:
        data = self.config.data
        if data.name == "user" and (data.inputs != 2 or data.target != "class"):
            raise CommandError(
                "data.points: points can be placed on 2-D classification data, and these "
                f"points are {data.inputs}-D regression data (from a file)", field="data.target",
                limit="class",
            )
        if data.name == "user":
            return [list(map(float, p)) for p in data.points]
        dataset = self.trainer.dataset
        if dataset.input_dim != 2 or dataset.task == "regression":
            raise CommandError(
                f"data.name: points can be placed on 2-D classification data, and "
                f"{dataset.name!r} is {dataset.input_dim}-D {dataset.task}",
                field="data.name", limit=[n for n, i in DATASETS.items()
                                          if i.input_dim == 2 and i.task != "regression"],
            )
        # each point keeps its side of the train/test split
        return [
            [float(a), float(b), float(c), side]
            for x, y, side in ((dataset.x_train, dataset.y_train, 1.0),
                               (dataset.x_test, dataset.y_test, 0.0))
            for (a, b), c in zip(x, y)
        ]

    def _set_points(self, points: list[list[float]]) -> list[str]:
        config = self.config.copy()
        labels = max(int(p[2]) for p in points) + 1
        config.data = replace(config.data, name="user", points=points, inputs=2,
                              target="class",
                              classes=max(2, labels, self.trainer.dataset.classes))
        notes: list[str] = []
        self._fit_model_to_data(config, notes)
        self._apply(config, None)
        return notes

    def _layer(self, index: int):
        layers = self.config.model.layers
        if index >= len(layers):
            raise CommandError(
                f"layer: the network has hidden layers 0 to {len(layers) - 1}" if layers
                else "layer: the network has no hidden layer", field="layer",
                limit=len(layers) - 1,
            )
        return layers

    def _changed(self, data: bool, layout: bool, restart: bool = False) -> None:
        """Something a frame shows changed; ``restart``: the run starts over (the loss
        history so far belongs to the previous run)."""
        self.version += 1
        self._evaluation = None
        if data:
            self.data_version += 1
        if layout or data:
            self.builder.forget_layout()
        if restart:
            self._history.clear()
            self._last_record_step = None

    def _record(self, steps: int | None = None, epochs: float | None = None,
                evaluation: dict[str, float | None] | None = None) -> None:
        if evaluation is None:
            evaluation = self.trainer.evaluate()
            steps, epochs = self.trainer.steps, float(self.trainer.epochs)
        self._evaluation = evaluation
        self._last_record_step = steps
        self._history.append((
            steps, epochs, evaluation["train_loss"],
            evaluation["test_loss"], evaluation["train_accuracy"], evaluation["test_accuracy"],
        ))

    def _drain_history(self) -> dict[str, Any]:
        rows = list(self._history)
        self._history.clear()
        columns: dict[str, Any] = {}
        for index, key in enumerate(_HISTORY_KEYS):
            values = [row[index] for row in rows]
            if key.endswith("accuracy") and any(v is None for v in values):
                columns[key] = None
                continue
            columns[key] = np.asarray(values, dtype=np.float32)
        return columns

    def _data_block(self) -> dict[str, Any]:
        dataset = self.trainer.dataset
        x = np.concatenate([dataset.x_train, dataset.x_test])
        y = np.concatenate([dataset.y_train, dataset.y_test])
        return {
            "version": self.data_version,
            "x": quantise(x.T, 16, per_row=True),
            # class labels exactly: value = 0 + q · (255 − 0) / 255 = q
            "y": (y.astype(np.float32) if dataset.task == "regression"
                  else quantise(y, 8, 0.0, 255.0)),
            "train": int(len(dataset.x_train)),
            "extent": [list(map(float, e)) for e in dataset.extent],
            "target_extent": (list(map(float, dataset.target_extent))
                              if dataset.target_extent is not None else None),
        }


def train_sessions(
    entries: list[tuple[Session, int]], budget_s: float, rotation: int = 0
) -> list[tuple[int, str | None]]:
    """Train many playing sessions, ``entries[i] = (session, steps)``, within about
    ``budget_s``: sessions whose networks share a ``engine.stacked.group_key`` as one
    stacked computation per group, the others one by one (``Session.train``). Returns
    (steps done, divergence explanation or None) per entry.

    When the budget runs out, a group stops with every member at the same step and the
    groups not reached keep their steps for the next call (the first always makes some
    progress); ``rotation`` turns the order of the groups so that none is always last.
    Each session's state stays its own: the stacked run writes every trainer back as its
    solo steps would have left it.
    """
    deadline = time.perf_counter() + budget_s
    results: list[tuple[int, str | None]] = [(0, None)] * len(entries)
    groups: dict[tuple, list[int]] = {}
    alone: list[list[int]] = []
    for index, (session, _) in enumerate(entries):
        key = group_key(session.trainer) if session.playing else None
        if key is None:
            alone.append([index])
        else:
            groups.setdefault(key, []).append(index)
    parts = list(groups.values()) + alone
    if parts:
        shift = rotation % len(parts)
        parts = parts[shift:] + parts[:shift]
    for number, part in enumerate(parts):
        if number and time.perf_counter() >= deadline:  # the first part always goes ahead
            break
        if len(part) == 1:
            session, count = entries[part[0]]
            results[part[0]] = session.train(count, max(deadline - time.perf_counter(), 1e-4),
                                             None, True)
            continue
        sessions = [entries[i][0] for i in part]
        counts = [entries[i][1] for i in part]
        outcome = train_stacked([s.trainer for s in sessions], counts, deadline,
                                on_epoch=lambda i, *point, group=sessions:
                                group[i].epoch_finished(*point))
        for position, index in enumerate(part):
            done = outcome.done[position]
            if done:
                sessions[position].version += 1
            results[index] = (done, None)
        for position in outcome.interrupted:
            # the stacked step was undone: the session's own step reports a divergence
            session, index = sessions[position], part[position]
            more, failure = session.train(counts[position] - outcome.done[position],
                                          max(deadline - time.perf_counter(), 1e-4), None, True)
            results[index] = (outcome.done[position] + more, failure)
    return results


def _default_within(settings: Settings) -> Config:
    """The default preset cut down to a deployment's tighter limits (fewer points, layers or
    units than it has), so that a new session's first state is one the server would accept."""
    doc = default_config().to_dict()
    layers = doc["model"]["layers"][: settings.max_layers]
    for layer in layers:
        layer["units"] = min(layer["units"], settings.max_units)
    doc["model"]["layers"] = layers
    doc["data"]["size"] = min(doc["data"]["size"], settings.max_points)
    doc["training"]["batch_size"] = min(doc["training"]["batch_size"], doc["data"]["size"])
    return Config.from_dict(doc)


def _trainer(config: Config) -> Trainer:
    return Trainer(config)


def _fresh(config: Config) -> list[list[UnitSource]]:
    return [[None] * layer.units for layer in config.model.layers]


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
