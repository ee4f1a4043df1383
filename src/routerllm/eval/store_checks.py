"""What the HumanEval store's values must be (``result_store.ResultStore``): a row
before it is stored, and every stored value a reader relies on when a store is
opened (a row edited by hand or by another program may hold anything its column's
type allows): a clear error, not a traceback after the models have run."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, get_args

import numpy as np

from routerllm.checks import is_integer, is_non_negative_number
from routerllm.eval.sandbox import Status
from routerllm.exceptions import RouterLLMError

_TEXT = ("text", lambda v: isinstance(v, str))
_NAME = ("a non-empty text", lambda v: isinstance(v, str) and bool(v.strip()))
_STATUS = (f"one of {', '.join(get_args(Status))}", lambda v: v in get_args(Status))
_COUNT = ("an integer >= 0", lambda v: is_integer(v) and v >= 0)
_AMOUNT = ("a finite number >= 0", is_non_negative_number)
_FLAG = (
    "True, False, 1 or 0",
    lambda v: isinstance(v, bool | np.bool_) or (is_integer(v) and v in (0, 1)),
)
#: A generation row's fields (``ResultStore.add``), in the table's order, each with
#: what its value must be and the check of that.
ROW_FIELDS: dict[str, tuple[str, Any]] = {
    "model": _NAME, "task_id": _NAME, "raw": _TEXT, "completion": _TEXT,
    "prompt_tokens": _COUNT, "completion_tokens": _COUNT,
    "gen_s": _AMOUNT, "gen_kwh": _AMOUNT, "gen_co2": _AMOUNT,
    "method": _TEXT, "status": _STATUS, "detail": _TEXT, "passed": _FLAG,
}  # fmt: skip
#: A row's optional field: the share of the machine's CPU others used as it was
#: generated (``Measurement.others_cpu_share``; None or left out: not known).
OTHERS_CPU_SHARE = "others_cpu_share"


def need_text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise RouterLLMError(f"{what} must be a non-empty string, got {value!r}")


def is_share(value: object) -> bool:
    """Whether ``value`` is a share of the machine's CPU as the store keeps one
    (``Measurement.others_cpu_share``): None (not known) or a number from 0 to 1."""
    return value is None or (is_non_negative_number(value) and value <= 1)  # type: ignore[operator]


def checked_row(row: Any) -> dict[str, Any]:
    """A generation row with every field of :data:`ROW_FIELDS`, each value of its kind
    (numbers as Python's own, ``passed`` as 0 or 1); a clear error otherwise."""
    if not isinstance(row, dict):
        raise RouterLLMError(f"a generation row is a dict, got {type(row).__name__}")
    missing = [k for k in ROW_FIELDS if k not in row]
    bad = [
        f"{k} {row[k]!r} (needs {kind})"
        for k, (kind, ok) in ROW_FIELDS.items()
        if k in row and not ok(row[k])
    ]
    share = row.get(OTHERS_CPU_SHARE)
    if not is_share(share):
        bad.append(f"{OTHERS_CPU_SHARE} {share!r} (needs None or a number from 0 to 1)")
    if missing or bad:
        problems = [*([f"missing {', '.join(missing)}"] if missing else []), *bad]
        raise RouterLLMError(f"bad generation row, nothing stored: {'; '.join(problems)}"[:500])
    checked = dict(row)
    for k in ("prompt_tokens", "completion_tokens", "passed"):
        checked[k] = int(row[k])
    for k in ("gen_s", "gen_kwh", "gen_co2"):
        checked[k] = float(row[k])
    checked[OTHERS_CPU_SHARE] = None if share is None else float(share)
    return checked


_NUMBER = "typeof({c}) IN ('integer', 'real') AND {c} >= 0"
_COUNT_SQL = "typeof({c}) = 'integer' AND {c} >= 0"
_SHARE_SQL = "typeof({c}) IN ('integer', 'real') AND {c} BETWEEN 0 AND 1"
#: What each stored value must be, as SQL, where a reader relies on it (a row edited
#: by hand or by another program may hold anything its column's type allows).
_VALUE_CHECKS: dict[str, tuple[str, dict[str, str]]] = {
    "generations": ("model || ' ' || task_id", {
        "prompt_tokens": f"{{c}} IS NULL OR ({_COUNT_SQL})", "completion_tokens": _COUNT_SQL,
        "gen_s": _NUMBER, "gen_kwh": _NUMBER, "gen_co2": _NUMBER, "passed": "{c} IN (0, 1)",
    }),
    "loads": ("model", {"load_s": _NUMBER, "load_kwh": _NUMBER, "load_co2": _NUMBER}),
    "cpu_contention": ("model || ' ' || task_id", {"others_cpu_share": _SHARE_SQL}),
    "load_contention": ("model", {"others_cpu_share": _SHARE_SQL}),
    "prompt_states": ("model || ' ' || task_id", {
        "state": "typeof({c}) = 'blob' AND length({c}) > 0 AND length({c}) % 4 = 0",
    }),
}  # fmt: skip


def bad_value(conn: sqlite3.Connection, tables: dict[str, list[str]]) -> str | None:
    """The first stored value a reader of the store could not use, in words; None
    where there is none."""
    for table, (key, checks) in _VALUE_CHECKS.items():
        if table not in tables:
            continue
        for column, check in checks.items():
            row = conn.execute(
                f"SELECT {key}, {column} FROM {table} WHERE NOT ({check.format(c=column)}) LIMIT 1"
            ).fetchone()
            if row is not None:  # a blob by its length: its bytes say nothing to a reader
                shown = (
                    f"a blob of {len(row[1])} bytes" if isinstance(row[1], bytes) else repr(row[1])
                )
                return f"{table} of {row[0]}: {column} is {shown}"[:300]
    if "prompt_states" in tables and (bad := _bad_state(conn)) is not None:
        return bad
    if "styles" in tables:
        for model, style in conn.execute("SELECT model, style FROM styles"):
            try:
                ok = isinstance(json.loads(style), dict)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                return f"styles of {model}: style is {style!r}, not a JSON object"[:300]
    return None


def _bad_state(conn: sqlite3.Connection) -> str | None:
    """A model's stored prompt states that do not stack into one table of finite numbers
    (all of one width, as a model gives them), in words; None where they do."""
    query = (
        "SELECT model, group_concat(DISTINCT length(state) / 4) FROM prompt_states "
        "GROUP BY model HAVING COUNT(DISTINCT length(state)) > 1 LIMIT 1"
    )
    if (row := conn.execute(query).fetchone()) is not None:
        widths = sorted(int(w) for w in str(row[1]).split(","))
        return (
            f"prompt_states of {row[0]}: states of {len(widths)} widths "
            f"({', '.join(map(str, widths))} values), where a model's are all one width"
        )[:300]
    for model, task_id, state in conn.execute("SELECT model, task_id, state FROM prompt_states"):
        if not np.isfinite(np.frombuffer(state, dtype=np.float32)).all():
            return f"prompt_states of {model} {task_id}: state holds a value that is not a finite number"[:300]  # fmt: skip
    return None
