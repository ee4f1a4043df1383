"""Datasets (code only, no data): labelled prompts for classifiers, routing outcomes for routers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from routerllm.exceptions import DataError
from routerllm.files import refuse_special_input


def as_path(path: Any, what: str = "a data file") -> Path:
    """``path`` (a str or path-like) as a Path; a clear error for anything else."""
    if not isinstance(path, str | os.PathLike):
        raise DataError(f"the path of {what} must be a str or a Path, got {path!r}"[:300])
    return Path(path)


class _RepeatedKey(ValueError):
    """A JSON object names a key twice (json keeps the last value silently)."""


def refuse_special_data_file(path: Path) -> None:
    """Refuse a data file that is a named pipe or a device before it is opened (a pipe
    another command writes is read: ``refuse_special_input``)."""
    refuse_special_input(path, "give the file itself (another command's output as <(command))", DataError)  # fmt: skip


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        key = next(k for i, (k, _) in enumerate(pairs) if k in (p[0] for p in pairs[:i]))
        shown = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
        shown = shown if len(shown) <= 100 else shown[:100] + " ..."
        raise _RepeatedKey(f"the key {key!r} is given twice in one object, {shown}")
    return obj


def read_json(path: str | Path, kind: str = "dataset") -> Any:
    """Parse a JSON data file; a missing or malformed file is one clear DataError, as is
    an object that names a key twice (a model scored twice: JSON would keep the last).
    A byte-order mark (Excel's "UTF-8 with BOM") is skipped."""
    path = as_path(path, f"the {kind} file")
    refuse_special_data_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_unique_keys)
    except _RepeatedKey as e:
        raise DataError(f"{path}: {e}; JSON would keep the last one: keep the one you mean") from e
    except FileNotFoundError as e:
        raise DataError(f"{kind} file not found: {path}") from e
    except IsADirectoryError as e:
        raise DataError(f"{path} is a directory; give the {kind} file (.json) inside it") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    except ValueError as e:  # UnicodeDecodeError too
        raise DataError(f"{path}: not valid JSON ({e})") from e
    except RecursionError as e:  # [[[[...]]]]: json's parser recurses
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from e
