"""Datasets (code only, no data): labelled prompts for classifiers, routing outcomes for routers."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from routerllm.exceptions import DataError
from routerllm.path_checks import refuse_special_input

#: How an outcome dataset's model costs are read (``OutcomeDataset.cost_kind``): ``call``
#: per answer from the data, ``size`` in parameters (B), ``price`` in USD per 1M tokens;
#: ``auto`` is ``call`` where the data has it, else ``size``.
COST_KINDS = ("auto", "call", "size", "price")


def as_path(path: Any, what: str = "a data file") -> Path:
    """``path`` (a str or path-like) as a Path; a clear error for anything else."""
    if not isinstance(path, str | os.PathLike):
        raise DataError(f"the path of {what} must be a str or a Path, got {path!r}"[:300])
    return Path(path)


#: The first two bytes of every gzip file.
GZIP_MAGIC = b"\x1f\x8b"


def undecodable_file(path: Path) -> DataError:
    """The error of a data file that is not UTF-8 text, read again to say where (the
    decoder's position is within the block it was given): UTF-16, as Windows
    PowerShell's ``>`` writes it, and gzip are said as such; else the line of the first byte that
    is not UTF-8."""
    try:
        with path.open("rb") as f:
            head = f.read(2)
            if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                return DataError(
                    f"{path}: UTF-16 text (as Windows PowerShell's > writes it), not UTF-8; "
                    "convert it to UTF-8 first"
                )
            if head == GZIP_MAGIC:  # "convert it to UTF-8" would not help
                return DataError(f"{path}: gzip-compressed, not text; decompress it first (gunzip)")
            f.seek(0)
            decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
            for block in iter(lambda: f.read(1 << 20), b""):
                data = decoder.getstate()[0] + block
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as e:
                    line += data.count(b"\n", 0, e.start)
                    return DataError(
                        f"{path}: not UTF-8 text (line {line}: byte 0x{data[e.start]:02x}); "
                        "convert it to UTF-8 first"
                    )
                line += block.count(b"\n")
    except OSError:  # gone since: said without the place
        pass
    return DataError(f"{path}: not UTF-8 text; convert it to UTF-8 first")


class RepeatedKey(ValueError):
    """A JSON object names a key twice (json keeps the last value silently)."""


def refuse_special_data_file(path: Path) -> None:
    """Refuse a data file that is a named pipe or a device before it is opened (a pipe
    another command writes is read: ``refuse_special_input``)."""
    refuse_special_input(path, "give the file itself (another command's output as <(command))", DataError)  # fmt: skip


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        key = next(k for i, (k, _) in enumerate(pairs) if k in (p[0] for p in pairs[:i]))
        shown = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
        shown = shown if len(shown) <= 100 else shown[:100] + " ..."
        raise RepeatedKey(f"the key {key!r} is given twice in one object, {shown}")
    return obj


def read_json(path: str | Path, kind: str = "dataset") -> Any:
    """Parse a JSON data file; a missing or malformed file is one clear DataError, as is
    an object that names a key twice (a model scored twice: JSON would keep the last).
    A byte-order mark (Excel's "UTF-8 with BOM") is skipped."""
    path = as_path(path, f"the {kind} file")
    text = _read_text(path, kind)
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except RepeatedKey as e:
        raise DataError(f"{path}: {e}; JSON would keep the last one: keep the one you mean") from e
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    except RecursionError as e:  # [[[[...]]]]: json's parser recurses
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from e


def json_lines_error(error: DataError) -> bool:
    """Whether :func:`read_json`'s ``error`` is that of JSON Lines (one object a line, as
    ``datasets``' ``to_json`` writes by default) in a file read as one JSON value: JSON
    says "Extra data" after the first line's object."""
    cause = error.__cause__
    if isinstance(cause, json.JSONDecodeError) and cause.msg == "Extra data":
        with contextlib.suppress(ValueError):
            return isinstance(json.loads(cause.doc.lstrip().split("\n", 1)[0]), dict)
    return False


def read_json_lines(path: str | Path, kind: str = "dataset") -> list[tuple[int, Any]]:
    """The values of a JSON Lines file, one a line, each with its line number (blank
    lines skipped); errors as :func:`read_json`'s, naming the line."""
    path = as_path(path, f"the {kind} file")
    rows = []
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other line breaks
    for n, line in enumerate(_read_text(path, kind).split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line, object_pairs_hook=unique_keys)))
        except RepeatedKey as e:
            raise DataError(
                f"{path}: line {n}: {e}; JSON would keep the last one: keep the one you mean"
            ) from e
        except ValueError as e:  # its own "line 1" would mislead
            raise DataError(
                f"{path}: line {n} is not valid JSON ({getattr(e, 'msg', e)}); a JSON Lines "
                "file holds one JSON object a line"
            ) from e
        except RecursionError as e:
            raise DataError(f"{path}: line {n} is not valid JSON (nested too deeply)") from e
    return rows


def _read_text(path: Path, kind: str) -> str:
    """A data file's text (a byte-order mark skipped); one clear DataError if it cannot be read."""
    refuse_special_data_file(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise DataError(f"{kind} file not found: {path}") from e
    except IsADirectoryError as e:
        raise DataError(f"{path} is a directory; give the {kind} file (.json) inside it") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise undecodable_file(path) from e
