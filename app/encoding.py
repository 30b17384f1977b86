"""Packing frames for the wire: msgpack maps whose arrays travel as raw bytes.

An array becomes ``{"dtype": "f4" | "u1" | "u2", "shape": [...], "data": <bytes>}``
(little-endian, C order); a quantised one adds ``lo`` and ``hi``. Everything else is
plain msgpack (maps, arrays, strings, numbers, booleans, nil). docs/protocol.md lists
every field.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

from engine.views import Quantised

_DTYPES = {np.dtype(np.uint8): ("u1", "<u1"), np.dtype(np.uint16): ("u2", "<u2")}


_AS_IS = frozenset({str, int, bool, type(None), bytes})


def plain(value: Any) -> Any:
    """Numpy arrays and ``Quantised`` arrays as byte-array maps, NaN/inf floats as nil."""
    kind = type(value)
    if kind in _AS_IS:  # most of a frame's leaves: no isinstance chain for them
        return value
    if kind is dict:
        return {key: item if type(item) in _AS_IS else plain(item)
                for key, item in value.items()}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Quantised):
        name, wire = _DTYPES[value.data.dtype]
        return {
            "dtype": name,
            "shape": list(value.data.shape),
            "data": np.ascontiguousarray(value.data, dtype=wire).tobytes(),
            "lo": _bound(value.lo),
            "hi": _bound(value.hi),
        }
    if isinstance(value, np.ndarray):
        return {
            "dtype": "f4",
            "shape": list(value.shape),
            "data": np.ascontiguousarray(value, dtype="<f4").tobytes(),
        }
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _bound(value: Any) -> float | list[float]:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return float(array)
    return array.tolist()


def pack(frame: dict[str, Any]) -> bytes:
    return msgpack.packb(plain(frame), use_bin_type=True)


def unpack(data: bytes) -> dict[str, Any]:
    """The inverse of ``pack`` (arrays stay byte-array maps; see ``decode_array``)."""
    return msgpack.unpackb(data, raw=False)


def decode_array(encoded: dict[str, Any]) -> np.ndarray:
    """An array map back to float32 values, de-quantised: what a client computes."""
    wire = {"f4": "<f4", "u1": "<u1", "u2": "<u2"}[encoded["dtype"]]
    values = np.frombuffer(encoded["data"], dtype=wire).reshape(encoded["shape"])
    if encoded["dtype"] == "f4":
        return values.astype(np.float32)
    top = 255.0 if encoded["dtype"] == "u1" else 65535.0
    lo, hi = np.asarray(encoded["lo"], np.float64), np.asarray(encoded["hi"], np.float64)
    if lo.ndim:
        shape = (-1,) + (1,) * (values.ndim - 1)
        lo, hi = lo.reshape(shape), hi.reshape(shape)
    return (lo + values * ((hi - lo) / top)).astype(np.float32)
