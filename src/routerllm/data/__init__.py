"""Datasets (code only, no data): labelled prompts for classifiers, routing outcomes for routers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from routerllm.exceptions import DataError


def as_path(path: Any, what: str = "a data file") -> Path:
    """``path`` (a str or path-like) as a Path; a clear error for anything else."""
    if not isinstance(path, str | os.PathLike):
        raise DataError(f"the path of {what} must be a str or a Path, got {path!r}"[:300])
    return Path(path)


def read_json(path: str | Path, kind: str = "dataset") -> Any:
    """Parse a JSON data file; a missing or malformed file is one clear DataError.
    A byte-order mark (Excel's "UTF-8 with BOM") is skipped."""
    path = as_path(path, f"the {kind} file")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
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
