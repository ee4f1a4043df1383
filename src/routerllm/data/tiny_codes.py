"""nampdn-ai/tiny-codes as a router dataset, read from a local file (nothing is downloaded).

tiny-codes prompts ask for code aimed at a ``target_audience``; the seeds map it
to a router class (MISSION M5): beginners -> 3 lightweight (light model),
experts -> 2 general purpose (medium), professionals -> 0 code generation
(heavy). Rows with any other audience are dropped and counted. Classes are
balanced by seeded downsampling to the smallest one, then split 80/10/10
(stratified, near-duplicates kept in one split). Repeated prompts are kept
once, so no prompt is both trained and tested on.

Accepted files: ``.jsonl`` (optionally ``.gz``), ``.json`` (a list of rows or
a mapping of columns), ``.csv`` and ``.parquet`` (needs pyarrow or pandas),
with the dataset's own columns (``prompt``, ``target_audience``, ...).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import logging
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import not_utf8, repeated
from routerllm.data import (
    RepeatedKey,
    json_lines_error,
    read_json,
    refuse_special_data_file,
    undecodable_file,
    unique_keys,
)
from routerllm.data.labeled import CLASS_NAMES, LabeledPrompt
from routerllm.data.synthetic import split
from routerllm.exceptions import DataError, MissingDependencyError

logger = logging.getLogger(__name__)

SOURCE = "tiny-codes"
REQUIRED_COLUMNS = ("prompt", "target_audience")
#: Substring of the (lowercased) audience -> router class.
AUDIENCE_CLASSES: dict[str, int] = {"beginner": 3, "expert": 2, "professional": 0}


def audience_class(audience: str) -> int | None:
    """Router class of a target audience, or None when it names none (or several) of them."""
    text = audience.lower()
    found = {label for key, label in AUDIENCE_CLASSES.items() if key in text}
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class TinyCodesDataset:
    """The balanced dataset, its splits, and what was left out on the way."""

    full: list[LabeledPrompt]
    train: list[LabeledPrompt]
    val: list[LabeledPrompt]
    test: list[LabeledPrompt]
    rows_read: int
    dropped_audiences: dict[str, int] = field(default_factory=dict)  # audience -> rows dropped
    duplicates: int = 0  # rows whose prompt repeated an earlier one
    class_counts_before: dict[int, int] = field(default_factory=dict)  # before balancing
    without_prompt: int = 0  # rows whose prompt was empty or not text

    @property
    def dropped(self) -> int:
        return sum(self.dropped_audiences.values())


def load_tiny_codes(
    path: str | Path,
    seed: int = 0,
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    max_per_class: int | None = None,
) -> TinyCodesDataset:
    """Read a local tiny-codes file, map audiences to classes, balance and split it.

    ``max_per_class`` caps each class after balancing (for quick experiments).
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[LabeledPrompt]] = {label: [] for label in AUDIENCE_CLASSES.values()}
    dropped: Counter[str] = Counter()
    repeats: Counter[int] = Counter()  # label -> rows whose prompt an earlier row had
    seen: set[str] = set()
    rows_read = no_text = 0
    for prompt, audience in _read_rows(path):
        rows_read += 1
        if not prompt:
            no_text += 1
            continue
        label = audience_class(audience)
        if label is None:
            dropped[audience] += 1
            continue
        if prompt in seen:
            repeats[label] += 1
            continue
        seen.add(prompt)
        by_label[label].append(LabeledPrompt(prompt, label, CLASS_NAMES[label], SOURCE))
    duplicates = sum(repeats.values())
    counts = {label: len(items) for label, items in by_label.items()}
    if empty := [label for label, count in counts.items() if count == 0]:
        wanted = {v: k for k, v in AUDIENCE_CLASSES.items()}
        repeated = ", ".join(f"{a} {repeats[k]}" for a, k in AUDIENCE_CLASSES.items() if repeats[k])
        others = ", ".join(f"{a!r} {n}" for a, n in dropped.most_common(5)) or "none"
        raise DataError(
            f"{path}: no rows for audience(s) {', '.join(wanted[e] for e in empty)} "
            f"({rows_read} rows read; {no_text} without a text prompt; {duplicates} dropped as repeats of an earlier row's prompt"
            f"{f': {repeated}' if repeated else ''}; other audiences dropped: {others}); "
            "balancing needs all three"
        )
    keep = min(counts.values())
    if max_per_class is not None:
        keep = min(keep, max_per_class)
    full: list[LabeledPrompt] = []
    for label in sorted(by_label):
        items = by_label[label]
        chosen = np.sort(rng.choice(len(items), size=keep, replace=False))
        full.extend(items[i] for i in chosen)
    train, val, test = split(full, fractions, rng)
    logger.info(
        "tiny-codes %s: %d rows, %d dropped, %d duplicates, %d per class",
        path,
        rows_read,
        sum(dropped.values()),
        duplicates,
        keep,
    )
    return TinyCodesDataset(
        full, train, val, test, rows_read, dict(dropped), duplicates, counts, no_text
    )


# -- readers: each yields (prompt, target_audience) ----------------------------
def _read_rows(path: Path) -> Iterator[tuple[str, str]]:
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the tiny-codes file inside it")
    refuse_special_data_file(path)
    if not path.is_file():
        raise DataError(
            f"tiny-codes file not found: {path}; pass a local copy of nampdn-ai/tiny-codes "
            "(.parquet, .jsonl, .json or .csv): nothing is downloaded"
        )
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return _pairs(path, _jsonl_rows(path))
    if name.endswith(".json"):
        return _pairs(path, _json_rows(path))
    if name.endswith(".csv"):
        return _pairs(path, _csv_rows(path))
    if name.endswith(".parquet"):
        return _pairs(path, _parquet_rows(path))
    raise DataError(f"{path}: unsupported format; use .parquet, .jsonl(.gz), .json or .csv")


def _check_columns(path: Path, names: Sequence[Any]) -> None:
    """A clear error unless the file's column ``names`` hold every required one."""
    if missing := [c for c in REQUIRED_COLUMNS if c not in names]:
        raise DataError(
            f"{path}: missing tiny-codes column(s) {', '.join(missing)}; "
            f"columns found: {', '.join(map(str, names)) or '(none)'}"
        )


def _pairs(path: Path, rows: Iterator[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """Check the columns on the first row, then yield (prompt, audience) per row."""
    for i, row in enumerate(rows):
        if i == 0:
            _check_columns(path, list(row))
        try:
            prompt, audience = row["prompt"], row["target_audience"]
        except KeyError as e:
            raise DataError(f"{path}: row {i} has no {e} value") from e
        # An empty or non-text prompt cannot be routed: yielded as "" to be counted.
        text = prompt if isinstance(prompt, str) and prompt.strip() else ""
        if (at := not_utf8(text)) is not None:  # no encoder or split file could take it
            raise DataError(
                f"{path}: row {i}: prompt is not valid UTF-8 text (a lone surrogate, such as "
                f"JSON's \\ud800, at character {at}); fix or delete that row"
            )
        yield text, "" if audience is None else str(audience)


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:  # utf-8-sig here and below: a byte-order mark, as Excel writes, is not data
        with opener(path, "rt", encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        row = json.loads(line, object_pairs_hook=unique_keys)
                    except json.JSONDecodeError as e:  # its position is within the line
                        raise DataError(
                            f"{path}: cannot read JSON lines: line {n} is not valid JSON "
                            f"({e.msg} at column {e.colno}); fix or delete that line"
                        ) from e
                    except RepeatedKey as e:  # json would keep the last, silently
                        raise DataError(
                            f"{path}: line {n}: {e}; JSON would keep the last one: keep the "
                            f"one you mean"
                        ) from e
                    if not isinstance(row, dict):
                        raise DataError(f"{path}: line {n} is not a JSON object")
                    yield row
    except UnicodeDecodeError as e:
        if opener is gzip.open:  # its compressed bytes cannot be read again to say where
            raise DataError(f"{path}: cannot read JSON lines: not UTF-8 text ({e})") from e
        raise undecodable_file(path) from e
    except (OSError, ValueError) as e:  # JSONDecodeError and bad gzip are ValueErrors
        raise DataError(f"{path}: cannot read JSON lines ({e})") from e
    except RecursionError as e:  # json's parser recurses: [[[[...]]]]
        raise DataError(f"{path}: cannot read JSON lines (a line nested too deeply)") from e
    except (EOFError, zlib.error) as e:  # a .gz cut short (an interrupted copy) or damaged
        raise DataError(
            f"{path}: cannot read JSON lines: the gzip file is truncated or damaged ({e}); "
            f"copy it again"
        ) from e


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        raw = read_json(path, "tiny-codes")
    except DataError as e:
        if json_lines_error(e):  # datasets' to_json("tiny-codes.json") writes it so
            raise DataError(
                f"{path}: one JSON object a line (JSON Lines, as datasets' to_json writes "
                "it) in a .json file: name it .jsonl to read it so"
            ) from e
        raise
    if isinstance(raw, dict):  # column-oriented: {"prompt": [...], "target_audience": [...]}
        columns = {k: v for k, v in raw.items() if isinstance(v, list)}
        if not columns and any(isinstance(v, dict) for v in raw.values()):
            raise DataError(  # pandas' to_json: {"prompt": {"0": ..., "1": ...}, ...}
                f"{path}: columns of {{row: value}} objects (pandas' to_json by default); "
                "save it with to_json(..., orient='records') or as .jsonl"
            )
        if not columns:
            raise DataError(f"{path}: expected a list of rows or a mapping of column lists")
        if len({len(v) for v in columns.values()}) > 1:
            raise DataError(f"{path}: the column lists have different lengths")
        _check_columns(path, list(columns))  # here too when the columns hold no rows
        for values in zip(*columns.values(), strict=True):
            yield dict(zip(columns, values, strict=True))
    elif isinstance(raw, list):
        for i, row in enumerate(raw, 1):
            if not isinstance(row, dict):
                raise DataError(f"{path}: item {i} is not a JSON object")
            yield row
    else:
        raise DataError(f"{path}: expected a list of rows or a mapping of column lists")


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    # Responses are long code listings: lift csv's 128 KiB field limit while reading.
    old_limit = csv.field_size_limit(2**31 - 1)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise DataError(f"{path}: empty CSV (no header row)")
            _check_columns(path, header)  # here too when no row follows
            # a dict of the row would keep only the last column of each name
            if twice := [c for c in repeated(header) if c in REQUIRED_COLUMNS]:
                raise DataError(
                    f"{path}: columns named more than once: {', '.join(twice)}; keep one "
                    f"column of each name"
                )
            start = reader.line_num + 1  # a record's first line: a quoted cell may span more
            for cells in reader:
                if cells and len(cells) != len(header):
                    _refuse_row_width(path, start, len(cells), len(header))
                if cells:  # a blank line is no row
                    yield dict(zip(header, cells, strict=True))
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise undecodable_file(path) from e
    except (OSError, csv.Error) as e:
        raise DataError(f"{path}: cannot read CSV ({e})") from e
    finally:
        csv.field_size_limit(old_limit)


def _refuse_row_width(path: Path, line: int, cells: int, columns: int) -> None:
    """A row of another width than the header: its cells cannot be told apart (an
    unquoted comma shifts every later one, and the audience with them)."""
    more, why = ("more", "an unquoted comma?") if cells > columns else ("fewer", "cut short?")
    raise DataError(
        f"{path}, line {line}: {more} cells than the header has columns ({cells}, not "
        f"{columns}); {why} quote cells that hold commas, quotes or line breaks"
    )


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    if importlib.util.find_spec("pyarrow") is not None:
        yield from _pyarrow_rows(path)
    elif importlib.util.find_spec("fastparquet") is not None:
        from fastparquet import ParquetFile

        try:
            frame = ParquetFile(str(path)).to_pandas()
        except Exception as e:  # fastparquet's errors have no common base class
            raise DataError(f"{path}: cannot read parquet ({e})") from e
        yield from frame.to_dict("records")
    else:
        raise MissingDependencyError(
            "reading .parquet needs pyarrow (or fastparquet): pip install pyarrow, "
            "or convert the file to .jsonl"
        )


def _pyarrow_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid for non-parquet files
        raise DataError(f"{path}: cannot read parquet ({e})") from e
    _check_columns(path, parquet.schema_arrow.names)
    # Only the two columns we use: the responses would take gigabytes.
    batches = parquet.iter_batches(columns=list(REQUIRED_COLUMNS))
    while True:
        try:  # damage past the footer shows only as the rows are read
            batch = next(batches, None)
            rows = [] if batch is None else batch.to_pylist()
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path}: cannot read parquet: a text column holds bytes that are not UTF-8 "
                f"({e.reason}); the file is damaged: copy it again"
            ) from e
        except Exception as e:  # OSError, ArrowInvalid...: pyarrow's have no common base
            why = " ".join(str(e).split())  # pyarrow's messages may span lines
            raise DataError(
                f"{path}: cannot read parquet: the file is damaged ({why}); copy it again"
            ) from e
        if batch is None:
            return
        yield from rows
