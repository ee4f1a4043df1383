"""Routing-outcome datasets: for each prompt, how each model did.

One in-memory form (:class:`OutcomeDataset`: prompts x models scores in
[0, 1], optional per-call costs and responses, per-model metadata) with
loaders for the RouterBench CSV format and the ``{question, scores}`` JSON
format (plus an optional ``models.json`` of sizes and prices beside it).
``overlap``/``without`` detect and remove prompts shared with another split,
so no figure is reported on questions a router was trained on.
"""

from __future__ import annotations

import ast
import csv
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import (
    is_non_negative_number,
    is_number,
    is_positive_number,
    not_utf8,
    repeated,
)
from routerllm.config import LimitsConfig
from routerllm.data import as_path, read_json
from routerllm.encoders.base import text_list
from routerllm.exceptions import DataError, PromptError

log = logging.getLogger(__name__)

#: The csv module's largest field: room for the longest prompt the config allows by
#: default, written as a list literal (quotes, escapes) or with a long response.
CSV_FIELD_LIMIT = 4 * LimitsConfig().max_prompt_chars

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
            raise DataError(f"{self.where}: scores must be numbers in [0, 1] (1 = solved)")
        if (
            self.costs is not None
            and n
            and not (np.isfinite(self.costs).all() and self.costs.min() >= 0)
        ):
            raise DataError(f"{self.where}: costs must be non-negative numbers")
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
        if kind not in ("call", "size", "price"):
            raise DataError(f"unknown cost kind {kind!r}; valid: auto, call, size, price")
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
        return np.broadcast_to(per_model, self.scores.shape).astype(float)

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
    """The key two prompts are 'the same question' by: case and whitespace folded."""
    return _SPACES.sub(" ", text.strip().lower())


def overlap(a: OutcomeDataset, b: OutcomeDataset) -> list[int]:
    """Indices of ``a``'s prompts that also appear in ``b``."""
    if not (isinstance(a, OutcomeDataset) and isinstance(b, OutcomeDataset)):
        raise DataError(
            f"overlap compares two OutcomeDatasets, got {type(a).__name__} and {type(b).__name__}"
        )
    seen = {normalise(p) for p in b.prompts}
    return [i for i, p in enumerate(a.prompts) if normalise(p) in seen]


def without(a: OutcomeDataset, b: OutcomeDataset) -> tuple[OutcomeDataset, int]:
    """``a`` minus the prompts it shares with ``b``, and how many were removed."""
    shared = set(overlap(a, b))
    keep = [i for i in range(len(a)) if i not in shared]
    return a.subset(keep), len(shared)


# -- loaders -----------------------------------------------------------------
def _parse_size(value: object, where: str) -> float | None:
    """A size in billions of parameters: 7, 7.5 or "7B"; None when not given."""
    if value is None:
        return None
    if is_positive_number(value):
        return float(value)  # type: ignore[arg-type]
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[bB]\s*", str(value))
    if not m or float(m.group(1)) <= 0:  # "0B" is no more a size than 0
        raise DataError(f'{where}: size {value!r} is not a size in billions, e.g. 7 or "7B"')
    return float(m.group(1))


def _price(value: object, where: str) -> float | None:
    if value is None:
        return None
    if is_non_negative_number(value):
        return float(value)  # type: ignore[arg-type]
    raise DataError(
        f"{where}: price {value!r} is not a finite non-negative number (USD per 1M tokens)"
    )


def load_model_info(path: str | Path) -> dict[str, ModelInfo]:
    """A ``models.json`` mapping model name -> {size, input_price, output_price}."""
    raw = read_json(path, "model metadata")
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object mapping model names to metadata")
    if bad := [name for name, meta in raw.items() if not isinstance(meta, dict)]:
        raise DataError(
            f'{path}, {bad[0]}: expected an object such as {{"size": "7B"}}, got {raw[bad[0]]!r}'[
                :300
            ]
        )
    return {
        name: ModelInfo(
            name,
            _parse_size(meta.get("size"), f"{path}, {name}"),
            _price(meta.get("input_price"), f"{path}, {name}"),
            _price(meta.get("output_price"), f"{path}, {name}"),
        )
        for name, meta in raw.items()
    }


def load_scores_json(path: str | Path, models_path: str | Path | None = None) -> OutcomeDataset:
    """A JSON list of ``{"question": str, "scores": {model: score}}`` (LLMRouter format),
    each item with an optional ``"costs": {model: cost}``, the cost of that call
    (e.g. a HumanEval run's measured kWh): given for every item or for none.

    Metadata comes from ``models_path`` or a ``models.json`` beside the file.
    Only models scored on every question are kept.
    """
    path = as_path(path, "the outcome file")
    raw = read_json(path, "outcome")
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{path}: expected a non-empty JSON list of {{question, scores}} objects")
    if not all(isinstance(r, dict) and isinstance(r.get("scores"), dict) for r in raw):
        raise DataError(
            f"{path}: every item needs `question` and a `scores` mapping of model to score"
        )
    if bad := [i for i, r in enumerate(raw, 1) if not isinstance(r.get("question"), str)]:
        raise DataError(
            f"{path}: item {bad[0]} has no `question` text ({len(bad)} item(s) in all); "
            f"every item needs a question string"
        )
    try:
        models = sorted(set.intersection(*(set(r["scores"]) for r in raw)))
        prompts = [r["question"] for r in raw]
        scores = np.array([[_json_number(r, "scores", m, f"{path}, item {i}") for m in models]
                           for i, r in enumerate(raw, 1)])  # fmt: skip
    except (KeyError, TypeError) as e:
        raise DataError(f"{path}: every item needs `question` and a `scores` mapping ({e})") from e
    if not models:
        raise DataError(f"{path}: no model is scored on every question")
    dropped = sorted(set().union(*(r["scores"] for r in raw)) - set(models))
    if dropped:
        log.warning("%s: left out %s, not scored on every question", path, ", ".join(dropped))
    meta_path = (
        as_path(models_path, "the model metadata file")
        if models_path is not None
        else path.with_name("models.json")
    )
    if models_path is not None and not meta_path.exists():
        raise DataError(f"model metadata file not found: {meta_path}")
    info = load_model_info(meta_path) if meta_path.exists() else {}
    return OutcomeDataset(prompts, models, scores, _call_costs(raw, models, path), info=info,
                          source=str(path))  # fmt: skip


def _call_costs(raw: list[dict[str, Any]], models: list[str], path: Path) -> np.ndarray | None:
    """The items' optional ``costs`` as an (n, m) array; None when no item has them."""
    have = sum("costs" in r for r in raw)
    if not have:
        return None
    if have < len(raw):
        raise DataError(
            f"{path}: {have} of {len(raw)} items have `costs`: give every item a cost for "
            f"each model, or none"
        )
    try:
        return np.array([[_json_number(r, "costs", m, f"{path}, item {i}") for m in models]
                         for i, r in enumerate(raw, 1)])  # fmt: skip
    except (KeyError, TypeError) as e:
        raise DataError(
            f"{path}: every item's `costs` needs a number for each of {', '.join(models)} ({e!r})"
        ) from e


def _json_number(item: dict[str, Any], key: str, model: str, where: str) -> float:
    """``item[key][model]`` as a float: a JSON number, not a bool or a number in text."""
    value = item[key][model]
    if not is_number(value):
        raise DataError(f"{where}: `{key}` of {model} is {value!r}, not a number")
    return float(value)


def load_routerbench_csv(path: str | Path) -> OutcomeDataset:
    """RouterBench's wide CSV: ``prompt``, then ``<model>``, ``<model>|model_response``,
    ``<model>|total_cost`` per model. Prompts stored as a Python list literal are joined."""
    path = as_path(path, "the outcome file")
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    try:  # utf-8-sig: a byte-order mark, as Excel writes, is not part of `prompt`
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = reader.fieldnames or []
    except FileNotFoundError as e:
        raise DataError(f"outcome file not found: {path}") from e
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read CSV ({e})") from e
    if twice := repeated(columns):
        # csv.DictReader would keep only the last column of each name
        raise DataError(f"{path}: columns named more than once: {', '.join(twice)}")
    models = [c.split("|")[0] for c in columns if c.endswith("|total_cost")]
    if "prompt" in columns and models and not rows:
        raise DataError(f"{path}: no data rows under the header")
    if "prompt" not in columns or not models:
        raise DataError(
            f"{path}: not a RouterBench CSV (needs `prompt`, `<model>` and `<model>|total_cost` "
            f"columns; found {', '.join(columns[:8])}...)"
        )
    no_score = [m for m in models if m not in columns]
    if no_score:
        raise DataError(
            f"{path}: no score column for {', '.join(no_score)} (only `<model>|total_cost`)"
        )
    if long := [i for i, r in enumerate(rows, 1) if None in r]:  # DictReader's extra cells
        raise DataError(
            f"{path}, data row {long[0]}: more cells than the header has columns "
            f"({len(long)} row(s) in all); a cell with an unquoted comma?"
        )
    prompts = [_prompt_text(r["prompt"] or "") for r in rows]
    where = [f"{path}, data row {i + 1}" for i in range(len(rows))]
    scores = np.array(
        [[_number(r, m, w) for m in models] for r, w in zip(rows, where, strict=True)]
    )
    costs = np.array(
        [
            [_number(r, f"{m}|total_cost", w) for m in models]
            for r, w in zip(rows, where, strict=True)
        ]
    )
    responses = (
        [[r.get(f"{m}|model_response", "") for m in models] for r in rows]
        if f"{models[0]}|model_response" in columns
        else None
    )
    return OutcomeDataset(prompts, models, scores, costs, responses, source=str(path))


def _number(row: dict[str, str | None], column: str, where: str) -> float:
    try:
        return float(row[column])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{where}: `{column}` is {row[column]!r}, not a number") from None


def _prompt_text(value: str) -> str:
    if value.startswith("["):
        try:
            parsed = ast.literal_eval(value)
            if isinstance(parsed, list):
                return "\n".join(str(p) for p in parsed)
        except (ValueError, SyntaxError):
            pass
    return value


def load_outcomes(path: str | Path, models_path: str | Path | None = None) -> OutcomeDataset:
    """Load an outcome dataset, format chosen by extension (.csv RouterBench, .json scores)."""
    path = as_path(path, "the outcome file")
    suffix = path.suffix.lower()
    if path.is_dir():
        files = sorted(f.name for f in path.iterdir() if f.suffix.lower() in (".csv", ".json"))
        raise DataError(
            f"{path} is a directory: pass one outcome file"
            + (f" (here: {', '.join(files)})" if files else " (.csv RouterBench or .json scores)")
        )
    if suffix == ".csv":
        return load_routerbench_csv(path)
    if suffix == ".json":
        return load_scores_json(path, models_path)
    raise DataError(f"{path}: unknown outcome format (expected .csv RouterBench or .json scores)")
