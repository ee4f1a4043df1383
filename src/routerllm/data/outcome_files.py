"""Routing-outcome files: the RouterBench CSV format (``routerbench_csv.py``) and the
``{question, scores}`` format, as one JSON list or as JSON Lines (plus an optional
``models.json`` of sizes and prices beside it), read into
:class:`~routerllm.data.outcomes.OutcomeDataset`; ``load_outcomes`` picks the format by
the file's suffix (:data:`OUTCOME_SUFFIXES`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import is_non_negative_number, is_number, is_positive_number, json_kind
from routerllm.data import as_path, json_lines_error, read_json, read_json_lines
from routerllm.data.outcomes import ModelInfo, OutcomeDataset, normalise
from routerllm.exceptions import DataError

log = logging.getLogger(__name__)

#: The outcome formats ``load_outcomes`` reads, by suffix (any case).
OUTCOME_SUFFIXES = {
    ".csv": "RouterBench",
    ".json": "a list of {question, scores} objects",
    ".jsonl": "one {question, scores} object a line",
}


def _parse_size(value: object, where: str) -> float | None:
    """A size in billions of parameters: 7, 7.5, "7B" or "5e-05B" (as the humaneval
    run writes a tiny model's); None when not given."""
    if value is None:
        return None
    if is_positive_number(value):
        return float(value)  # type: ignore[arg-type]
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*[bB]\s*", str(value))
    # "0B" is no more a size than 0, nor "1e999B" (infinite)
    if not m or not is_positive_number(float(m.group(1))):
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
    (e.g. a HumanEval run's measured kWh): given for every item or for none; a null
    cost (not measured) is read as its model's mean measured cost, with a warning. Where the
    name ends in ``.jsonl``, the same objects one a line (JSON Lines, blank lines
    skipped), checked alike, the errors naming the line instead of the item.

    Metadata comes from ``models_path`` or a ``models.json`` beside the file.
    Only models scored on every question are kept.
    """
    path = as_path(path, "the outcome file")
    raw, at = _read_items(path)
    row = at.row
    if not_objects := [i for i, r in enumerate(raw) if not isinstance(r, dict)]:
        raise DataError(
            f"{path}: {at(not_objects[0])} is {_json_kind(raw[not_objects[0]])}, not an "
            f"object with `question` and a `scores` mapping ({len(not_objects)} {row}(s) in all)"
        )
    if unscored := [i for i, r in enumerate(raw) if not isinstance(r.get("scores"), dict)]:
        if {"text", "label"} <= raw[unscored[0]].keys():
            raise DataError(
                f"{path} holds labelled prompts ({{text, label}}), not outcome data "
                "({question, scores}): the classifier trains on them (routerllm train "
                "--router classifier) and routerllm test scores a router on them"
            )
        raise DataError(
            f"{path}: {at(unscored[0])} has no `scores` mapping of model to score "
            f"({len(unscored)} {row}(s) in all); every {row} needs `question` and `scores`"
        )
    if bad := [i for i, r in enumerate(raw) if not isinstance(r.get("question"), str)]:
        raise DataError(
            f"{path}: {at(bad[0])} has no `question` text ({len(bad)} {row}(s) in all); "
            f"every {row} needs a question string"
        )
    try:
        models = sorted(set.intersection(*(set(r["scores"]) for r in raw)))
        prompts = [r["question"] for r in raw]
        scores = np.array([[_json_number(r, "scores", m, f"{path}, {at(i)}") for m in models]
                           for i, r in enumerate(raw)])  # fmt: skip
    except (KeyError, TypeError) as e:
        raise DataError(f"{path}: every {row} needs `question` and a `scores` mapping ({e})") from e
    dropped = sorted(set().union(*(r["scores"] for r in raw)) - set(models))
    if not models:
        where = (
            f"({_unscored(raw, dropped, at)})" if dropped else f"(every {row}'s `scores` is empty)"
        )
        raise DataError(
            f"{path}: no model is scored on every question {where}; give every {row} a score "
            f"for each model"
        )
    if dropped:
        log.warning("%s: left out %s, not scored on every question (%s)",
                    path, ", ".join(dropped), _unscored(raw, dropped, at))  # fmt: skip
    costs = _call_costs(raw, models, path, at)
    _refuse_bad_rows(prompts, models, scores, costs, path, at)
    data = OutcomeDataset(prompts, models, scores, costs,
                          info=_model_info(path, models_path), source=str(path))  # fmt: skip
    _warn_repeated(data, row, at.numbers)
    return data


@dataclass(frozen=True)
class _Places:
    """Where each item of a ``{question, scores}`` file is, for messages: ``row`` is
    the file's word for them ("item" in a JSON list, "line" in JSON Lines) and
    ``numbers`` each one's number (a JSON Lines file's blank lines are skipped)."""

    row: str
    numbers: list[int]

    def __call__(self, index: int) -> str:
        return f"{self.row} {self.numbers[index]}"


def _read_items(path: Path) -> tuple[list[Any], _Places]:
    """The items of a ``{question, scores}`` file, and where each is: a non-empty JSON
    list, or where the name ends in ``.jsonl`` one JSON value a line (JSON Lines); JSON
    Lines in a ``.json`` file said as such, not as JSON's "Extra data"."""
    if path.suffix.lower() == ".jsonl":
        lines = read_json_lines(path, "outcome")
        if not lines:
            raise DataError(
                f"{path}: no {{question, scores}} object: a JSON Lines file holds one a line"
            )
        return [r for _, r in lines], _Places("line", [n for n, _ in lines])
    try:
        raw = read_json(path, "outcome")
    except DataError as e:
        if json_lines_error(e):
            raise DataError(
                f"{path}: one JSON value a line (JSON Lines) in a .json file: name it "
                ".jsonl to read it so, or make it one JSON list of {question, scores} "
                "objects"
            ) from e
        raise
    if not isinstance(raw, list) or not raw:
        raise DataError(
            f"{path}: expected a non-empty JSON list of {{question, scores}} objects, got "
            f"{_json_kind(raw)}"
        )
    return raw, _Places("item", list(range(1, len(raw) + 1)))


def _refuse_bad_rows(
    prompts: list[str],
    models: list[str],
    scores: np.ndarray,
    costs: np.ndarray | None,
    path: Path,
    at: _Places,
) -> None:
    """Refuse an empty question, a score outside [0, 1] or a negative cost, naming the
    file's item or line: the dataset would name the prompt's position, which is not
    the line in a JSON Lines file with blank lines."""
    row = at.row
    if empty := [i for i, p in enumerate(prompts) if not p.strip()]:
        raise DataError(
            f"{path}: {at(empty[0])} has an empty `question` ({len(empty)} {row}(s) in all); "
            f"every {row} needs text to route by"
        )
    checks = [("scores", scores, (scores >= 0) & (scores <= 1), "a number in [0, 1] (1 = solved; ")]
    if costs is not None:
        checks.append(
            ("costs", costs, np.isfinite(costs) & (costs >= 0), "a finite non-negative number (")
        )
    for key, values, good, what in checks:  # NaN is neither >= 0 nor <= 1: refused too
        if len(bad := np.argwhere(~good)):
            i, j = bad[0]
            raise DataError(
                f"{path}: {at(i)}: `{key}` of {models[j]} is {values[i, j]:g}, not "
                f"{what}{len(bad)} such value(s) in all)"
            )


def _json_kind(value: Any) -> str:
    """What a JSON value is, for messages: ``checks.json_kind``'s words, an object with
    its first keys, a list as such (the file's own word) and a boolean's value."""
    if isinstance(value, dict):
        keys = ", ".join(list(value)[:5]) + (", ..." if len(value) > 5 else "")
        return f"an object (keys: {keys})" if value else "an empty object"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, bool):
        return json.dumps(value)
    return json_kind(value)  # null, a string, a number


def _warn_repeated(data: OutcomeDataset, row: str, numbers: list[int] | None = None) -> None:
    """A warning where a question (case and whitespace folded, as ``overlap`` compares
    them) is given more than once: kept, since repeated samples of one question are
    outcome data, but said, with how many differ in scores and an example (``row``
    names the file's rows: item, data row, line; ``numbers`` each row's number, where
    it is not its position from 1), as it weighs that question more."""
    first: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []  # (first row, repeating row), 0-based
    for i, prompt in enumerate(data.prompts):
        if (at := first.setdefault(normalise(prompt), i)) != i:
            repeats.append((at, i))
    if not repeats:
        return
    differ = [(a, b) for a, b in repeats if not np.array_equal(data.scores[a], data.scores[b])]
    a, b = (differ or repeats)[0]
    number = (lambda i: i + 1) if numbers is None else numbers.__getitem__
    log.warning(
        "%s: %d question(s) given more than once (%d repeated %s(s), %d with scores that "
        "differ from the first's), e.g. %ss %d and %d: %.60r; all are kept as samples, so a "
        "repeated question weighs more in training (eval-routing removes a test copy of a "
        "question that is also in the training data)",
        data.where, len({a for a, _ in repeats}), len(repeats), row, len(differ),
        row, number(a), number(b), data.prompts[a],
    )  # fmt: skip


def _unscored(raw: list[dict[str, Any]], models: list[str], at: _Places) -> str:
    """Where each of ``models`` (the first few) lacks a score: in a file of thousands of
    items, "not scored on every question" cannot be fixed."""
    where = []
    for m in models[:5]:
        lacking = [i for i, r in enumerate(raw) if m not in r["scores"]]
        where.append(f"{m} missing from {at(lacking[0])} and {len(lacking) - 1} other(s)")
    return "; ".join(where) + ("; ..." if len(models) > 5 else "")


def _model_info(path: Path, models_path: str | Path | None) -> dict[str, ModelInfo]:
    """The metadata of ``models_path``, else of a ``models.json`` beside ``path`` if any."""
    meta_path = (
        as_path(models_path, "the model metadata file")
        if models_path is not None
        else path.with_name("models.json")
    )
    if models_path is not None and not meta_path.exists():
        raise DataError(f"model metadata file not found: {meta_path}")
    return load_model_info(meta_path) if meta_path.exists() else {}


def _call_costs(
    raw: list[dict[str, Any]], models: list[str], path: Path, at: _Places
) -> np.ndarray | None:
    """The items' optional ``costs`` as an (n, m) array; None when no item has them."""
    have, row = sum("costs" in r for r in raw), at.row
    if not have:
        return None
    if have < len(raw):
        first = next(i for i, r in enumerate(raw) if "costs" not in r)
        raise DataError(
            f"{path}: {have} of {len(raw)} {row}s have `costs` ({at(first)} has none): give "
            f"every {row} a cost for each model, or none"
        )
    if lacking := [i for i, r in enumerate(raw)
                   if not (isinstance(r["costs"], dict) and set(models) <= set(r["costs"]))]:  # fmt: skip
        raise DataError(
            f"{path}, {at(lacking[0])}: `costs` needs a number for each of {', '.join(models)}, "
            f"got {raw[lacking[0]]['costs']!r:.100} ({len(lacking)} such {row}(s) in all)"
        )
    _refuse_unscored_costs(raw, path, at)
    # null, not NaN: a NaN in the file is a bad value, which the dataset refuses
    unknown = np.array([[r["costs"][m] is None for m in models] for r in raw])
    costs = np.array([[0.0 if r["costs"][m] is None else _json_number(r, "costs", m, f"{path}, {at(i)}")
                       for m in models] for i, r in enumerate(raw)])  # fmt: skip
    return _unmeasured_as_mean(costs, unknown, models, path)


def _refuse_unscored_costs(raw: list[dict[str, Any]], path: Path, at: _Places) -> None:
    """Refuse costs of a model that no item scores, as the CSV loader refuses a
    ``<model>|total_cost`` column without the model's scores: ignored, a typo in a model's
    name or scores left out by mistake went unsaid. (A model scored on some items only is
    left out with a warning, its costs with it.)"""
    scored = set().union(*(r["scores"] for r in raw))
    costed = dict.fromkeys(m for r in raw for m in r["costs"])
    if unscored := [m for m in costed if m not in scored]:
        rows = [i for i, r in enumerate(raw) if unscored[0] in r["costs"]]
        raise DataError(
            f"{path}: `costs` of {', '.join(unscored)} but no scores ({at(rows[0])} and "
            f"{len(rows) - 1} other(s)): a model needs scores to be routed to; give its scores, "
            f"or leave its costs out"
        )


def _unmeasured_as_mean(
    costs: np.ndarray, unknown: np.ndarray, models: list[str], path: Path
) -> np.ndarray:
    """``costs`` with each ``unknown`` one (null: a cost not measured, as a HumanEval run
    writes one CodeCarbon failed on) read as the mean of its model's measured costs, said
    in a warning; a model with none measured is refused. Not 0: a router would take it
    for a real, free call."""
    if not unknown.any():
        return costs
    if none := [m for j, m in enumerate(models) if unknown[:, j].all()]:
        raise DataError(
            f"{path}: no measured cost for {', '.join(none)} (every one is null); measure "
            f"them, or leave `costs` out of every row to route by size or price"
        )
    means = np.where(unknown, 0.0, costs).sum(axis=0) / (~unknown).sum(axis=0)
    counts = ", ".join(f"{m}'s {int(n)}" for m, n in zip(models, unknown.sum(axis=0), strict=True) if n)  # fmt: skip
    log.warning(
        "%s: %d cost(s) not measured (null): %s, each read as the mean of its model's "
        "measured costs",
        path, int(unknown.sum()), counts,
    )  # fmt: skip
    return np.where(unknown, means, costs)


def _json_number(item: dict[str, Any], key: str, model: str, where: str) -> float:
    """``item[key][model]`` as a float: a JSON number, not a bool or a number in text."""
    value = item[key][model]
    if not is_number(value):
        raise DataError(f"{where}: `{key}` of {model} is {value!r}, not a number")
    try:
        return float(value)
    except OverflowError:  # an integer of 309+ digits: no float holds it
        raise DataError(f"{where}: `{key}` of {model} is {str(value)[:20]}..., too large a number") from None  # fmt: skip


def load_outcomes(path: str | Path, models_path: str | Path | None = None) -> OutcomeDataset:
    """Load an outcome dataset, format chosen by extension (:data:`OUTCOME_SUFFIXES`:
    .csv RouterBench, .json a list of {question, scores}, .jsonl one a line)."""
    path = as_path(path, "the outcome file")
    suffix = path.suffix.lower()
    if path.is_dir():
        files = sorted(f.name for f in path.iterdir() if f.suffix.lower() in OUTCOME_SUFFIXES)
        raise DataError(
            f"{path} is a directory: pass one outcome file"
            + (f" (here: {', '.join(files)})" if files else f" ({_accepted()})")
        )
    if suffix == ".csv":
        # imported here: routerbench_csv uses this module's _model_info and _warn_repeated
        from routerllm.data.routerbench_csv import load_routerbench_csv

        return load_routerbench_csv(path, models_path)
    if suffix in (".json", ".jsonl"):
        return load_scores_json(path, models_path)
    if suffix == ".gz" and path.with_suffix("").suffix.lower() in OUTCOME_SUFFIXES:
        # no outcome dataset we know of ships gzipped (RouterBench: a pickle; LLMRouter:
        # JSON); renamed as told below, the file would be "not UTF-8 text"
        raise DataError(
            f"{path}: gzip-compressed; decompress it first (gunzip -k {path}) and pass "
            f"{path.with_suffix('')}"
        )
    if suffix in (".pkl", ".pickle"):
        csv_path = path.with_suffix(".csv")
        raise DataError(
            f"{path}: a pickle (as RouterBench ships its data) is not read, as loading one "
            'can run code in it; where you trust it, save it as a CSV: python -c "import '
            f"pandas; pandas.read_pickle('{path}').to_csv('{csv_path}', index=False)\""
        )
    raise DataError(f"{path}: unknown outcome format; name the file {_accepted()}")


def _accepted() -> str:
    """The outcome suffixes and their formats, in words: ".csv (RouterBench), ..."."""
    named = [f"{suffix} ({what})" for suffix, what in OUTCOME_SUFFIXES.items()]
    return ", ".join(named[:-1]) + " or " + named[-1]
