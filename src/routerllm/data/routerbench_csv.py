"""The RouterBench CSV outcome format (``load_outcomes`` reads a ``.csv`` so): one row
a prompt, each model's score, cost and answer in its own columns.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from routerllm.checks import repeated
from routerllm.config import LimitsConfig
from routerllm.data import as_path, refuse_special_data_file, undecodable_file
from routerllm.data.outcome_files import _model_info, _warn_repeated
from routerllm.data.outcomes import OutcomeDataset
from routerllm.exceptions import DataError
from routerllm.quiet_compile import literal_eval

log = logging.getLogger("routerllm.data.outcome_files")  # its warnings, as before this module

#: The csv module's largest field: room for the longest prompt the config allows by
#: default, written as a list literal (quotes, escapes) or with a long response.
CSV_FIELD_LIMIT = 4 * LimitsConfig().max_prompt_chars


def load_routerbench_csv(path: str | Path, models_path: str | Path | None = None) -> OutcomeDataset:
    """RouterBench's wide CSV: ``prompt``, then ``<model>``, ``<model>|model_response``,
    ``<model>|total_cost`` per model. Prompts stored as a Python list literal are joined.
    Metadata (sizes, prices) comes from ``models_path`` or a ``models.json`` beside the file."""
    path = as_path(path, "the outcome file")
    refuse_special_data_file(path)
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    line = 1  # where the row being read begins, for csv's errors
    try:  # utf-8-sig: a byte-order mark, as Excel writes, is not part of `prompt`
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            # `prompt, a, a|total_cost` (spaces after the commas) names model `a`, not ` a`
            columns = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = columns
            rows = []
            while True:
                line = reader.line_num + 1
                if (row := next(reader, None)) is None:
                    break
                rows.append(row)
    except FileNotFoundError as e:
        raise DataError(f"outcome file not found: {path}") from e
    except UnicodeDecodeError as e:
        raise undecodable_file(path) from e
    except OSError as e:
        raise DataError(f"{path}: cannot read CSV ({e})") from e
    except csv.Error as e:  # a quote left open makes one cell of the rest of the file
        raise DataError(f"{path}: cannot read CSV at line {line} ({e}); a quote left open?") from e
    if twice := repeated(columns):
        # csv.DictReader would keep only the last column of each name
        raise DataError(f"{path}: columns named more than once: {', '.join(twice)}")
    models = [c.split("|")[0] for c in columns if c.endswith("|total_cost")]
    if "prompt" in columns and models and not rows:
        raise DataError(f"{path}: no data rows under the header")
    if "prompt" not in columns and (separator := _other_separator(columns)):
        raise DataError(
            f"{path}: its columns are separated by {separator}; a RouterBench CSV's are "
            "separated by commas: save it so"
        )
    if "prompt" not in columns or not models:
        raise DataError(
            f"{path}: not a RouterBench CSV (needs `prompt`, `<model>` and `<model>|total_cost` "
            f"columns; found {', '.join(columns[:8])}...)"
        )
    _warn_unread(path, columns, models)
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
    if short := [i for i, r in enumerate(rows, 1) if None in r.values()]:  # DictReader's fill
        raise DataError(
            f"{path}, data row {short[0]}: fewer cells than the header has columns "
            f"({len(short)} row(s) in all); a row cut short?"
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
    # Every model's answers or none: a model without the column would have an empty
    # answer on every prompt, which the policy router's labels read as "I don't know".
    unanswered = [m for m in models if f"{m}|model_response" not in columns]
    if unanswered and len(unanswered) < len(models):
        log.warning(
            "%s: no answers (a <model>|model_response column) for %s: no model's answers "
            "are read, so the policy router's labels find no 'I don't know' answers",
            path, ", ".join(unanswered),
        )  # fmt: skip
    responses = (
        None if unanswered else [[r.get(f"{m}|model_response", "") for m in models] for r in rows]
    )
    info = _model_info(path, models_path)
    data = OutcomeDataset(prompts, models, scores, costs, responses, info, str(path))
    _warn_repeated(data, "data row")
    return data


#: RouterBench's columns that say nothing of a model's outcome ("" : pandas' index).
ROUTERBENCH_OTHER_COLUMNS = frozenset({"", "sample_id", "eval_name", "oracle_model_to_route_to"})


def _warn_unread(path: Path, columns: list[str], models: list[str]) -> None:
    """A warning naming the columns left out: a model's scores without its
    ``|total_cost`` column (or its answers without either) are not read, and a router
    would otherwise choose among fewer models without a word."""
    read = {"prompt", *ROUTERBENCH_OTHER_COLUMNS}
    read.update(f"{m}{part}" for m in models for part in ("", "|total_cost", "|model_response"))
    if unread := [c for c in columns if c not in read and not c.startswith("Unnamed: ")]:
        log.warning(
            "%s: left out %d column(s), %s: only `prompt` and each model's `<model>`, "
            "`<model>|total_cost` and `<model>|model_response` are read",
            path, len(unread), ", ".join(unread[:10]) + (", ..." if len(unread) > 10 else ""),
        )  # fmt: skip


def _other_separator(columns: list[str]) -> str | None:
    """ "semicolons" or "tabs" where the header, read with commas, is one of ``prompt``
    and other columns separated so (a spreadsheet's CSV where the decimal mark is a
    comma uses semicolons); else None."""
    header = ",".join(columns)  # as the line was, commas inside it put back
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if "prompt" in (c.strip() for c in header.split(separator)):
            return name
    return None


def _number(row: dict[str, str | None], column: str, where: str) -> float:
    """A cell's number; Python's digits grouped by underscores ("0_1", which ``float``
    reads as 1.0) are no number a CSV holds."""
    try:
        if "_" in (row[column] or ""):
            raise ValueError
        return float(row[column])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{where}: `{column}` is {row[column]!r}, not a number") from None


def _prompt_text(value: str) -> str:
    """The prompt of a ``prompt`` cell: RouterBench's list literal of strings joined by
    newlines; any other cell as written, a prompt that is itself a list of numbers
    ("[3, 1, 2]", to sort) included, which a router would otherwise learn as "3\n1\n2"
    and then be asked as written."""
    if value.startswith("["):
        try:
            parsed = literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
        # `[]` is RouterBench's empty prompt, which the dataset refuses as such
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return "\n".join(parsed)
    return value
