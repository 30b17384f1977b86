"""A learner's own points from a CSV file (issue 12), read and checked before they reach
the session, every problem named with its line.

The file holds one point a line: two feature columns and a class label (``x1, x2, label``),
two feature columns and a regression target (``x1, x2, y``), or, for regression over one
input, one feature column and the target (``x1, y``). A first line whose fields are not
numbers is a header. Commas, semicolons, tabs or spaces separate the fields; blank lines
and lines starting with ``#`` are skipped. Nothing here trains: the rows become
``data.points`` of a ``data.name = "user"`` configuration, which the engine checks again.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

from engine.datasets import MAX_CLASSES

# larger values are almost surely a unit problem, and would saturate every tanh unit
MAX_MAGNITUDE = 1e6
DELIMITERS = (",", ";", "\t")


class CsvError(ValueError):
    """A file that cannot become points: ``line`` is the 1-based line at fault (None when
    the fault is the file as a whole), ``limit`` the bound it broke, if any."""

    def __init__(self, message: str, line: int | None = None, limit: object = None):
        super().__init__(message)
        self.message, self.line, self.limit = message, line, limit


@dataclass(frozen=True)
class CsvPoints:
    rows: list[list[float]]  # [x1, x2, label], [x1, x2, y] or [x1, y]
    inputs: int  # feature columns: 1 or 2
    target: str  # "class" or "value", as engine.spec.DataSpec.target
    classes: int  # K for class labels 0..K-1; 0 for regression targets
    header: list[str] | None


def _splitter(line: str):
    """How this file separates its fields, judged on its first line."""
    counts = {delimiter: line.count(delimiter) for delimiter in DELIMITERS}
    delimiter = max(counts, key=counts.get)
    if counts[delimiter] == 0:
        return lambda text: text.split()  # whitespace, as numpy.savetxt writes by default
    return lambda text: next(csv.reader([text], delimiter=delimiter))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _column_names(inputs: int, target: str) -> str:
    return ", ".join([*("x1", "x2")[:inputs], "label" if target == "class" else "y"])


def parse_csv(text: str, task: str, max_points: int) -> CsvPoints:
    """The points of ``text`` for ``task`` ("classification" or "regression"), or a
    ``CsvError`` naming the first problem and its line."""
    if task not in ("classification", "regression"):
        raise CsvError(f"task must be 'classification' or 'regression', got {task!r}")
    target = "class" if task == "classification" else "value"
    lines = [(number, line.strip()) for number, line in
             enumerate(text.lstrip("\ufeff").splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line and not line.startswith("#")]
    if not lines:
        raise CsvError("the file holds no points (it is empty)")
    split = _splitter(lines[0][1])
    header: list[str] | None = None
    first_number, first_line = lines[0]
    first_fields = [field.strip() for field in split(first_line)]
    if all(_number(field) is None for field in first_fields):
        header = first_fields
        lines = lines[1:]
    columns = len(header) if header is not None else len(first_fields)
    allowed = (3,) if target == "class" else (2, 3)
    if columns not in allowed:
        if target == "class":
            wanted = ("3 columns: x1, x2, label (one-input data can be read as regression "
                      "data: x1, y)")
        else:
            wanted = "2 columns (x1, y) or 3 (x1, x2, y)"
        raise CsvError(f"line {first_number}: {columns} column{'s' * (columns != 1)}; "
                       f"{task} data need {wanted}", line=first_number, limit=list(allowed))
    inputs = columns - 1
    rows: list[list[float]] = []
    for number, line in lines:
        fields = [field.strip() for field in split(line)]
        if len(fields) != columns:
            raise CsvError(f"line {number}: {len(fields)} column{'s' * (len(fields) != 1)}, "
                           f"expected {columns} ({_column_names(inputs, target)})",
                           line=number, limit=columns)
        row = []
        for column, field in enumerate(fields, start=1):
            name = header[column - 1] if header and header[column - 1] else f"column {column}"
            value = _number(field)
            if value is None:
                shown = field if len(field) <= 30 else field[:27] + "..."
                raise CsvError(f"line {number}: {name} is {shown!r}, not a number"
                               if field else f"line {number}: {name} is empty",
                               line=number)
            if not math.isfinite(value):
                raise CsvError(f"line {number}: {name} is {field!r}; values must be finite",
                               line=number)
            if abs(value) > MAX_MAGNITUDE:
                raise CsvError(f"line {number}: {name} is {value:g}, beyond ±{MAX_MAGNITUDE:g}; "
                               "rescale the column", line=number, limit=MAX_MAGNITUDE)
            row.append(value)
        if target == "class":
            label = row[-1]
            if label != round(label) or not 0 <= label < MAX_CLASSES:
                raise CsvError(
                    f"line {number}: label {label:g} is not a class; class labels are "
                    f"integers from 0 to {MAX_CLASSES - 1} (or read the file as regression "
                    "data)", line=number, limit=MAX_CLASSES - 1)
            row[-1] = float(int(label))
        rows.append(row)
        if len(rows) > max_points:
            raise CsvError(
                f"line {number}: the file holds {len(lines)} points and this server takes "
                f"at most {max_points} (BACKPROP_LAB_MAX_POINTS); line {number} is point "
                f"{max_points + 1}", line=number, limit=max_points)
    if len(rows) < 2:
        raise CsvError(f"the file holds {len(rows)} point{'s' * (len(rows) != 1)}; a data set "
                       "needs at least 2", limit=2)
    classes = 0
    if target == "class":
        present = {int(row[-1]) for row in rows}
        classes = max(present) + 1
        if classes < 2:
            raise CsvError("every label is 0: a classifier needs two classes at least "
                           "(labels 0 and 1)", limit=2)
        missing = sorted(set(range(classes)) - present)
        if missing:
            raise CsvError(
                f"no point has label {', '.join(map(str, missing))}: number the {len(present)} "
                f"classes 0 to {len(present) - 1}, without gaps", limit=classes - 1)
    return CsvPoints(rows=rows, inputs=inputs, target=target, classes=classes, header=header)
