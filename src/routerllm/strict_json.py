"""JSON every parser reads: a number that is not finite is null.

Python's ``json`` writes NaN and infinity as ``NaN`` and ``Infinity``, tokens no JSON
parser accepts, and Starlette's ``JSONResponse`` refuses them (a 500). A figure can be
NaN (a metric of degenerate data, a meter's bad reading); the CLI's ``--json``, the
server's answers and its streamed events all go through :func:`finite` instead.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every float that is not finite, however deeply nested in dicts,
    lists and tuples, replaced by None (a tuple becomes a list, as JSON has it); a
    NumPy number or array is its Python number or list (a float32 NaN is no ``float``)."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return finite(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def json_text(payload: Any, indent: int | None = None) -> str:
    """``payload`` as strict JSON: a number that is not finite is null, never the
    ``NaN`` or ``Infinity`` that JSON parsers refuse; what JSON has no type for is its
    ``str``."""
    return json.dumps(finite(payload), indent=indent, default=str, allow_nan=False)
