"""Datasets (code only, no data): labelled prompts for classifiers, routing outcomes for routers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from routerllm.exceptions import DataError


def read_json(path: str | Path, kind: str = "dataset") -> Any:
    """Parse a JSON data file; a missing or malformed file is one clear DataError."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"{kind} file not found: {path}") from e
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
