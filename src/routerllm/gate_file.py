"""What a saved escalation gate's files (:meth:`routerllm.gate.EscalationGate.save`) must
hold: each setting of its config.json and array of its weights.npz, read and checked, a
clear error naming what is missing or wrong; its logistic regressions packed into arrays
and read back; and the format a folder's config.json names (another tool's is not
overwritten)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import is_finite_number, wrong_shape
from routerllm.exceptions import RouterLLMError
from routerllm.gate_models import Logistic


def _corrupt(folder: Path, problem: str) -> RouterLLMError:
    return RouterLLMError(
        f"the gate in {folder} is incomplete or corrupt: {problem}; make it again with "
        f"routerllm train-gate --run RUN --out {folder}"
    )


class _Incomplete(ValueError):
    """A setting or array of a saved gate is missing or has the wrong type or shape."""


def _setting(meta: dict[str, Any], key: str, kind: type[str] | type[float]) -> Any:
    """``meta[key]`` as a ``kind`` (a string, or a finite number that is not a bool)."""
    if key not in meta:
        raise _Incomplete(f"config.json has no {key!r}")
    value = meta[key]
    if kind is str and isinstance(value, str):
        return value
    if kind is float and is_finite_number(value):
        return float(value)
    wanted = "a string" if kind is str else "a finite number"
    raise _Incomplete(f"config.json's {key!r} must be {wanted}, got {value!r}"[:200])


def _positive(meta: dict[str, Any], key: str) -> float:
    if (value := _setting(meta, key, float)) <= 0:
        raise _Incomplete(f"config.json's {key!r} must be > 0, got {value!r}")
    return float(value)


def _array(w: dict[str, np.ndarray], key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """The array ``key`` of weights.npz as floats, checked to have ``shape`` (None: any size)."""
    if key not in w:
        raise _Incomplete(f"weights.npz has no array {key!r}")
    array = w[key]
    if wrong := wrong_shape(array.shape, shape):
        raise _Incomplete(f"weights.npz's {key!r} {wrong}")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise _Incomplete(f"weights.npz's {key!r} holds {array.dtype} values, not numbers")
    values = array.astype(float)
    if np.isnan(values).any():  # an intercept may be infinite: a sure outcome
        raise _Incomplete(f"weights.npz's {key!r} holds values that are not numbers (NaN)")
    return values


def _finite(w: dict[str, np.ndarray], key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """:func:`_array`, whose values must also be finite."""
    if not np.isfinite(array := _array(w, key, shape)).all():
        raise _Incomplete(f"weights.npz's {key!r} holds values that are not finite")
    return array


def _calibration(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The training problems' arrays, all of one length n: score and unverified (n,), solved
    and kwh (n, 2)."""
    n = len(_array(w, "calibration_unverified", (None,)))
    if n == 0:
        raise _Incomplete("weights.npz holds no training problems to set the threshold on")
    shapes = {"score": (n,), "unverified": (n,), "solved": (n, 2), "kwh": (n, 2)}
    calibration = {k: _array(w, f"calibration_{k}", shape) for k, shape in shapes.items()}
    calibration["unverified"] = calibration["unverified"].astype(bool)
    return calibration


def _pack(model: Logistic) -> dict[str, np.ndarray]:
    return {"mean": model.mean, "scale": model.scale, "coef": model.coef,
            "intercept": np.array([model.intercept])}  # fmt: skip


def _unpack(w: dict[str, np.ndarray], name: str, width: int | None = None) -> Logistic:
    """The logistic regression ``name`` of weights.npz: mean, scale and coef of one
    ``width`` (None: any, as long as they agree), and one intercept."""
    mean = _finite(w, f"{name}_mean", (width,))
    scale = _finite(w, f"{name}_scale", mean.shape)
    if not (scale > 0).all():
        raise _Incomplete(f"weights.npz's '{name}_scale' holds values that are not > 0")
    coef = _finite(w, f"{name}_coef", mean.shape)
    return Logistic(mean, scale, coef, float(_array(w, f"{name}_intercept", (1,))[0]))


def _format_of(config_file: Path) -> object:
    try:
        meta = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    return meta.get("format") if isinstance(meta, dict) else None
