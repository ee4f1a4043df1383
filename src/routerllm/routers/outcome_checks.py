"""What the outcome routers (``outcome.py``) take, checked: the dataset ``fit_dataset``
learns from, prompt embeddings, outcome columns named by model, and the arrays of a
saved router's learned state. Each gives a clear error naming what does not fit."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from routerllm.checks import repeated, wrong_shape
from routerllm.data.outcomes import OutcomeDataset, scores_are_outcomes
from routerllm.exceptions import RouterLLMError, one_line

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_dataset(data: object) -> None:
    """``fit_dataset``'s argument: loaded outcome data, not the path of its file."""
    if isinstance(data, OutcomeDataset):
        return
    load = (
        f"; load the file first: load_outcomes({os.fspath(data)!r})"
        if isinstance(data, str | os.PathLike)
        else " (routerllm.data.outcome_files.load_outcomes(path) reads one from a file)"
    )
    raise RouterLLMError(f"fit_dataset takes an OutcomeDataset, got {type(data).__name__}{load}")


def check_embeddings(X: Any, what: str, dim: int | None, router: str) -> np.ndarray:
    """``X`` as a 2-D float array of finite numbers, ``dim`` wide where given (the width
    of the embeddings router ``router`` was trained on); a clear error otherwise."""
    if X is None or isinstance(X, str | bytes):
        raise RouterLLMError(f"{what} must be a 2-D array of numbers, got {X!r:.60}")
    try:
        A = np.asarray(X)
        if A.dtype.kind == "c":
            raise TypeError(f"complex values ({A.dtype})")
        checked = A.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise RouterLLMError(f"{what} must be a 2-D array of numbers: {one_line(e)}") from e
    if checked.ndim != 2 or checked.shape[1] == 0:
        raise RouterLLMError(f"{what} must be a 2-D array (rows x width >= 1), got shape {A.shape}")
    if not np.isfinite(checked).all():
        raise RouterLLMError(f"{what} contain NaN or infinite values")
    if np.abs(checked).max(initial=0.0) > _FLOAT32_MAX:
        raise RouterLLMError(f"{what} hold values too large for float32 (over 3.4e38)")
    if dim is not None and checked.shape[1] != dim:
        raise RouterLLMError(
            f"{what} have width {checked.shape[1]}, but router {router!r} was trained "
            f"on embeddings of width {dim}"
        )
    return A if A.dtype.kind == "f" else checked


def outcome_columns(
    values: Any, names: Sequence[str] | None, model_names: Sequence[str], what: str
) -> np.ndarray:
    """``values`` (n, columns named ``names``; default ``model_names``) as a float array
    whose columns are ``model_names``, in that order; a clear error otherwise."""
    try:
        Y = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as e:
        raise RouterLLMError(f"{what} must be a 2-D array of numbers: {one_line(e)}") from e
    if isinstance(names, str) or (
        names is not None
        and (not isinstance(names, Iterable) or not all(isinstance(n, str) for n in names))
    ):
        raise RouterLLMError(f"model_names must be a list of model names, got {names!r}")
    names = list(names) if names is not None else list(model_names)
    if twice := repeated(names):  # which column is the model's would be a guess
        raise RouterLLMError(f"model_names names a model more than once: {', '.join(twice)}")
    if Y.ndim != 2 or Y.shape[1] != len(names):
        raise RouterLLMError(f"{what} have shape {Y.shape}, expected (n, {len(names)})")
    missing = [n for n in model_names if n not in names]
    if missing:
        raise RouterLLMError(f"outcomes lack columns for: {', '.join(missing)}")
    return Y[:, [names.index(n) for n in model_names]]


def check_outcome_rows(X: np.ndarray, Y: np.ndarray) -> None:
    """One embedding row per outcome row (at least one), outcomes in [0, 1]."""
    if X.ndim != 2 or len(X) != len(Y) or len(X) == 0:
        raise RouterLLMError(
            f"need one embedding row per outcome row, got shapes {X.shape} and {Y.shape}"
        )
    if not scores_are_outcomes(Y):
        raise RouterLLMError("outcome scores must be numbers in [0, 1] (1 = solved)")


def check_state_arrays(arrays: dict[str, np.ndarray], m: int) -> None:
    """A ValueError naming what does not fit in the learned state of a router of ``m``
    models: a shape for other models or another width, values that are not finite,
    outcomes outside [0, 1]."""
    for key, array in arrays.items():
        if array.dtype.kind not in "biuf" or not np.isfinite(array).all():
            raise ValueError(f"array {key!r} holds values that are not finite numbers")
    wanted = {"Y": (None, m), "W": (None, m), "b": (m,), "X": (None, None)}
    for key, shape in wanted.items():
        value = arrays.get(key)
        if value is not None and (wrong := wrong_shape(value.shape, shape)):
            raise ValueError(f"array {key!r} {wrong}")
    X, Y, W = arrays.get("X"), arrays.get("Y"), arrays.get("W")
    if X is not None and Y is not None and len(X) != len(Y):
        raise ValueError(f"{len(X)} embedding rows (X) for {len(Y)} outcome rows (Y)")
    if X is not None and W is not None and X.shape[1] != W.shape[0]:
        raise ValueError(f"embeddings of width {X.shape[1]} (X), weights for {W.shape[0]} (W)")
    if Y is not None and not scores_are_outcomes(Y):
        raise ValueError("outcomes (Y) must lie in [0, 1]")
