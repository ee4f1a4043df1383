"""Routing-outcome datasets: for each prompt, how each model did.

One in-memory form (:class:`OutcomeDataset`: prompts x models scores in
[0, 1], optional per-call costs and responses, per-model metadata); the file
formats it is read from are in ``outcome_files.py``.
``overlap``/``without`` detect and remove prompts shared with another split,
so no figure is reported on questions a router was trained on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from routerllm.checks import (
    TOO_LARGE,
    is_non_negative_number,
    is_positive_number,
    not_utf8,
    repeated,
    too_large,
)
from routerllm.data import COST_KINDS
from routerllm.encoders.base import text_list
from routerllm.exceptions import DataError, PromptError

CostKind = (
    str  # "call" (per-call cost from the data), "size" (params, B), "price" (USD per 1M tokens)
)


@dataclass(frozen=True)
class ModelInfo:
    """What a dataset says about one model."""

    name: str
    size_b: float | None = None
    input_price: float | None = None  # USD per 1M tokens
    output_price: float | None = None


def scores_are_outcomes(scores: np.ndarray) -> bool:
    """Whether every score is an outcome: a number in [0, 1] (1 = solved)."""
    return bool(np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1)


@dataclass(frozen=True)
class OutcomeDataset:
    prompts: list[str]
    models: list[str]
    scores: np.ndarray  # (n_prompts, n_models), 1 = solved
    costs: np.ndarray | None = None  # (n_prompts, n_models), cost of each call
    responses: list[list[str]] | None = None
    info: dict[str, ModelInfo] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", _strings(self.prompts, "prompts", self.where))
        if empty := [i for i, p in enumerate(self.prompts, 1) if not p.strip()]:
            raise DataError(
                f"{self.where}: prompt {empty[0]} is empty ({len(empty)} in all); every prompt "
                f"needs text to route by"
            )
        if undecodable := [
            (i, at) for i, p in enumerate(self.prompts, 1) if (at := not_utf8(p)) is not None
        ]:
            (first, at), n = undecodable[0], len(undecodable)
            raise DataError(
                f"{self.where}: prompt {first} is not valid UTF-8 text (a lone surrogate, "
                f"such as JSON's \\ud800, at character {at}; {n} prompt(s) in "
                f"all); fix the file's text"
            )
        object.__setattr__(self, "models", _model_names(self.models, self.where))
        object.__setattr__(self, "scores", self._numbers(self.scores, "scores"))
        if self.costs is not None:
            object.__setattr__(self, "costs", self._numbers(self.costs, "costs"))
        n, m = len(self.prompts), len(self.models)
        if self.scores.shape != (n, m):
            raise DataError(f"{self.where}: scores shape {self.scores.shape} != ({n}, {m})")
        if self.costs is not None and self.costs.shape != (n, m):
            raise DataError(f"{self.where}: costs shape {self.costs.shape} != ({n}, {m})")
        if n and not scores_are_outcomes(self.scores):
            raise DataError(
                f"{self.where}: scores must be numbers in [0, 1] (1 = solved); "
                + self._first_bad(self.scores, (self.scores >= 0) & (self.scores <= 1))
            )
        if (
            self.costs is not None
            and n
            and not (np.isfinite(self.costs).all() and self.costs.min() >= 0)
        ):
            raise DataError(
                f"{self.where}: costs must be non-negative numbers; "
                + self._first_bad(self.costs, np.isfinite(self.costs) & (self.costs >= 0))
            )
        if self.costs is not None and too_large(self.costs):
            raise DataError(f"{self.where}: {TOO_LARGE}")
        if self.responses is not None and not _is_table(self.responses, n, m):
            raise DataError(
                f"{self.where}: responses must be {n} lists (one per prompt) of {m} texts "
                "(one per model)"
            )
        if not isinstance(self.info, Mapping) or not all(
            isinstance(v, ModelInfo) for v in self.info.values()
        ):
            raise DataError(f"{self.where}: info must map model names to ModelInfo objects")
        for name, meta in self.info.items():
            if bad := [
                f"{what} {value!r}"
                for what, value, ok in (
                    ("size_b", meta.size_b, is_positive_number),
                    ("input_price", meta.input_price, is_non_negative_number),
                    ("output_price", meta.output_price, is_non_negative_number),
                )
                if value is not None and not ok(value)
            ]:
                raise DataError(
                    f"{self.where}: model {name}: {', '.join(bad)} (a size is a number > 0, a "
                    f"price one >= 0; both finite)"
                )

    @property
    def where(self) -> str:
        """What the dataset is, for messages: its file, or that it was made in memory."""
        return self.source or "outcome dataset"

    def _first_bad(self, values: np.ndarray, good: np.ndarray) -> str:
        """Where the first value ``good`` refuses is (NaN counts as refused), for messages:
        in a file of thousands of prompts, "some score is wrong" cannot be fixed."""
        bad = np.argwhere(~good)
        i, j = bad[0]
        return (
            f"prompt {i + 1} has {values[i, j]:g} for {self.models[j]} "
            f"({len(bad)} such value(s) in all)"
        )

    def _numbers(self, values: Any, what: str) -> np.ndarray:
        try:
            return np.asarray(values, dtype=float)
        except (TypeError, ValueError) as e:
            raise DataError(
                f"{self.where}: {what} must be an (n prompts, m models) array of numbers ({e})"
            ) from e

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: Sequence[int] | np.ndarray) -> OutcomeDataset:
        """The prompts at ``index``: integer positions, or a boolean mask with one
        value per prompt (``ds.subset(ds.scores[:, 0] > 0)``)."""
        idx = self._positions(index)
        return replace(
            self,
            prompts=[self.prompts[i] for i in idx],
            scores=self.scores[idx],
            costs=None if self.costs is None else self.costs[idx],
            responses=None if self.responses is None else [self.responses[i] for i in idx],
        )

    def _positions(self, index: Any) -> np.ndarray:
        """``index`` as integer positions; a clear error for anything else."""
        n = len(self)
        try:
            idx = np.asarray(index)
        except ValueError:  # ragged
            idx = np.asarray(None)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise DataError(
                    f"{self.where}: a boolean mask needs one value per prompt ({n}), "
                    f"got shape {idx.shape}"
                )
            return np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise DataError(
                f"{self.where}: index must be a list of integer positions or a boolean mask, "
                f"got {index!r}"[:300]
            )
        if idx.size and not (-n <= idx.min() and idx.max() < n):
            raise DataError(
                f"{self.where}: index {idx.min() if idx.min() < -n else idx.max()} is out of "
                f"range for {n} prompts"
            )
        return idx.astype(int)

    def concat(self, other: OutcomeDataset) -> OutcomeDataset:
        """This dataset's prompts followed by ``other``'s (same models, in this order)."""
        if not isinstance(other, OutcomeDataset):
            raise DataError(f"can only concat an OutcomeDataset, got {type(other).__name__}")
        other = other.restrict_models(self.models) if other.models != self.models else other
        costs = None
        if self.costs is not None and other.costs is not None:
            costs = np.vstack([self.costs, other.costs])
        responses = None
        if self.responses is not None and other.responses is not None:
            responses = self.responses + other.responses
        return replace(
            self,
            prompts=self.prompts + other.prompts,
            scores=np.vstack([self.scores, other.scores]),
            costs=costs,
            responses=responses,
            source=f"{self.source} + {other.source}",
        )

    def sizes(self) -> np.ndarray | None:
        """Model sizes in billions of parameters, or None when any is unknown."""
        sizes = [self.info.get(m, ModelInfo(m)).size_b for m in self.models]
        return None if any(s is None for s in sizes) else np.array(sizes, dtype=float)

    def cost_kind(self, kind: CostKind = "auto") -> CostKind:
        """``kind`` itself, or for ``auto`` the one used: per-call costs when the data
        has them, else model size."""
        if kind == "auto":
            return "call" if self.costs is not None else "size"
        if kind not in COST_KINDS:
            raise DataError(f"unknown cost kind {kind!r}; valid: {', '.join(COST_KINDS)}")
        return kind

    def cost_matrix(self, kind: CostKind = "auto") -> np.ndarray:
        """(n, m) costs: per call from the data, or a per-model size/price broadcast
        (``kind`` as in :meth:`cost_kind`)."""
        kind = self.cost_kind(kind)
        if kind == "call":
            if self.costs is None:
                raise DataError(
                    f"{self.where}: no per-call costs in this dataset; use size or price"
                )
            return self.costs
        if kind == "size":
            sizes = self.sizes()
            if sizes is None:
                unknown = [m for m in self.models if self.info.get(m, ModelInfo(m)).size_b is None]
                raise DataError(
                    f"{self.where}: size unknown for {', '.join(unknown)}; give each a size in "
                    f"a models.json beside the data (or choose another cost)"
                )
            per_model = sizes
        else:  # price
            prices = [self.info.get(m, ModelInfo(m)) for m in self.models]
            if unknown := [p.name for p in prices if None in (p.input_price, p.output_price)]:
                raise DataError(
                    f"{self.where}: price unknown for {', '.join(unknown)}; give each an "
                    f"input_price and an output_price in a models.json beside the data (or "
                    f"choose another cost)"
                )
            per_model = np.array([(p.input_price or 0) + (p.output_price or 0) for p in prices]) / 2
        costs = np.broadcast_to(per_model, self.scores.shape).astype(float)
        if too_large(costs):
            raise DataError(f"{self.where}: the models' {kind}s as {TOO_LARGE}")
        return costs

    def restrict_models(self, models: Sequence[str]) -> OutcomeDataset:
        """The same prompts with only ``models`` (in that order)."""
        models = _model_names(models, self.where)
        missing = [m for m in models if m not in self.models]
        if missing:
            raise DataError(f"{self.where}: models not in the data: {', '.join(missing)}")
        cols = [self.models.index(m) for m in models]
        return replace(
            self,
            models=list(models),
            scores=self.scores[:, cols],
            costs=None if self.costs is None else self.costs[:, cols],
            responses=None
            if self.responses is None
            else [[r[c] for c in cols] for r in self.responses],
        )


def _model_names(models: Any, where: str) -> list[str]:
    """``models`` as a list of at least one distinct name; a clear error otherwise."""
    names = _strings(models, "models", where)
    if not names:
        raise DataError(f"{where}: models must name at least one model")
    if any(not name.strip() for name in names):
        raise DataError(f"{where}: a model's name is empty")
    if twice := repeated(names):
        raise DataError(f"{where}: models are named more than once: {', '.join(twice)}")
    return names


def _strings(items: Any, what: str, where: str) -> list[str]:
    """``items`` as a list of strings (:func:`text_list`); a DataError naming ``where``."""
    try:
        return text_list(items, what)
    except PromptError as e:
        raise DataError(f"{where}: {e}") from e


def _is_table(rows: Any, n: int, m: int) -> bool:
    """Whether ``rows`` is n lists of m items each."""

    def is_list(x: Any, size: int) -> bool:
        return isinstance(x, Sequence) and not isinstance(x, str | bytes) and len(x) == size

    return is_list(rows, n) and all(is_list(r, m) for r in rows)


_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The key two prompts are 'the same question' by: case (as Unicode folds it:
    "Straße" is "STRASSE"), whitespace and Unicode form folded ("é" one character
    (NFC) or "e" and a combining accent (NFD), as a macOS file or some web forms write
    it). Used wherever a copy would leak a test prompt into training: a router's
    encoder reads such copies alike (MiniLM's tokeniser lowercases)."""
    folded = unicodedata.normalize("NFC", text).strip().casefold()
    # casefold can decompose ("ǰ" folds to "j" and a caron): composed again
    return _SPACES.sub(" ", unicodedata.normalize("NFC", folded))


def question_copies(prompts: Sequence[str]) -> list[list[int]]:
    """The positions of each question's copies (as :func:`normalise` compares them), the
    questions in the order they first appear: what a hold-out split and a
    cross-validation fold keep on one side, so that a question sampled several times is
    not both trained on and tested on. Without repeats, ``[[0], [1], ...]``."""
    copies: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        copies.setdefault(normalise(prompt), []).append(i)
    return list(copies.values())


def overlap(a: OutcomeDataset, b: OutcomeDataset) -> list[int]:
    """Indices of ``a``'s prompts that also appear in ``b``."""
    if not (isinstance(a, OutcomeDataset) and isinstance(b, OutcomeDataset)):
        raise DataError(
            f"overlap compares two OutcomeDatasets, got {type(a).__name__} and {type(b).__name__}"
        )
    seen = {normalise(p) for p in b.prompts}
    return [i for i, p in enumerate(a.prompts) if normalise(p) in seen]


def not_in(a: OutcomeDataset, b: OutcomeDataset) -> list[int]:
    """Indices of ``a``'s prompts that do not appear in ``b``."""
    shared = set(overlap(a, b))
    return [i for i in range(len(a)) if i not in shared]


def without(a: OutcomeDataset, b: OutcomeDataset) -> tuple[OutcomeDataset, int]:
    """``a`` minus the prompts it shares with ``b``, and how many were removed."""
    keep = not_in(a, b)
    return a.subset(keep), len(a) - len(keep)
