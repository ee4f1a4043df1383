"""Reading the request log for a report: the selected requests streamed oldest first,
one row each with its components beside it, in the form ``LogFigures.add`` takes,
never all held at once (``RequestLog.report_rows``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from routerllm.carbon import log_schema
from routerllm.carbon.log_rows import grid_from_columns
from routerllm.carbon.log_schema import OLDER_LOAD_ERRORS, REQUEST_NUMBERS, REQUEST_TEXTS
from routerllm.carbon.meter import COMPONENTS, GRID_NOT_RECORDED

if TYPE_CHECKING:
    from routerllm.carbon.request_log import RequestLog

#: Rows fetched at a time: few enough to hold, many enough that fetching costs little.
CHUNK = 2000
_NOT_NUMBER = "typeof({}) NOT IN ('integer', 'real')"
_NOT_TEXT = "typeof({}) != 'text'"
_KNOWN = ", ".join(f"'{c}'" for c in COMPONENTS)
# Before a column the checks order by: the rows are scanned in the table's order and the
# few that fail sorted, not read in the index's order, each a seek into the table (a
# page read per row where the log's order is not its time's: 0.26 s of 100,000 requests')
_UNINDEXED = "+"


def report_rows(log: RequestLog, since: str | None, tag: str | None) -> Iterator[tuple[Any, ...]]:
    """The requests ``records`` selects, in its order, each as (timestamp, prompt hash,
    model, router, prompt tokens, completion tokens, latency, cost, tag, finish reason,
    components, escalated, load error, its model, its energy, grid: ``Grid.label`` or
    ``GRID_NOT_RECORDED``, the share of the CPU other processes used while it was
    measured or None, its id, whether its model loaded for it: 1 or 0, None where not
    recorded (``RequestRecord.model_loaded``)), its components as
    ``records`` orders them: the known ones (``COMPONENTS``) first, then others by name;
    ``escalated``: the part of them the models a cascade escalated from spent; ``load
    error``: a failed load's, or "" (its model and energy: ``RequestRecord``'s). A
    number that is not one, or a text that is not text (a row changed by another
    program), is the clear error ``records`` gives, before any row."""
    where, args = log._filters(since, tag, "r.")
    # the parts of the window's requests, found by the requests' time index (their own,
    # scanned, are the whole log's: 2.4 s of a 2.5 s report of a day of 1,000,000 requests)
    window = (where, args) if since else ("", [])
    extra = _check_numbers(log, where, args, window)
    columns = _columns(log)
    has_reason = "finish_reason" in columns
    # an older log, read as it is, recorded no grid
    grid = "r.grid_country, r.grid_region, r.grid_g_per_kwh" if "grid_country" in columns else "NULL, NULL, NULL"  # fmt: skip
    # and none the share of the CPU other processes used; a column changed to no share
    # (text, a number outside 0..1) is none, as ``records`` reads it (``logged_share``)
    share = "NULL"
    if "others_cpu_share" in columns:
        share = "CASE WHEN typeof(r.others_cpu_share) IN ('integer', 'real') AND r.others_cpu_share BETWEEN 0 AND 1 THEN r.others_cpu_share END"  # fmt: skip
    # and none whether its model loaded (a column changed to no flag: none, as ``records``
    # reads it, ``logged_flag``)
    loaded = "NULL"
    if "model_loaded" in columns:
        loaded = "CASE WHEN typeof(r.model_loaded) = 'integer' AND r.model_loaded IN (0, 1) THEN r.model_loaded END"  # fmt: skip
    joins = "".join(
        f" LEFT JOIN components c{i} ON c{i}.request_id = r.id AND c{i}.component = '{c}'"
        for i, c in enumerate(COMPONENTS)
    )
    # the part of them the models a cascade escalated from spent: joined only for the
    # components some escalation has (a log older than the escalations table has none)
    escalated = _escalated_components(log, window)
    joins += "".join(
        f" LEFT JOIN escalations e{i} ON e{i}.request_id = r.id AND e{i}.component = '{c}'"
        for i, c in enumerate(escalated)
    )
    # the error of a load that failed (a log older than the table has none), and the model
    # and energy of a cascade's step up whose load failed (an older table has only errors)
    load_error = "NULL, NULL, NULL"
    if log._has_table("load_errors"):
        joins += " LEFT JOIN load_errors l ON l.request_id = r.id"
        older = log._load_error_columns() == OLDER_LOAD_ERRORS
        load_error = "l.error, NULL, NULL" if older else "l.error, l.model, l.energy_kwh"
    # each part's name selected beside its figures (NULL: none logged): a part is then a
    # slice of the row, cut in C, not a tuple built by Python bytecode per part
    parts = "".join(f", c{i}.component, c{i}.duration_s, c{i}.energy_kwh, c{i}.co2_kg, c{i}.method" for i in range(len(COMPONENTS)))  # fmt: skip
    parts += "".join(f", e{i}.component, e{i}.duration_s, e{i}.energy_kwh, e{i}.co2_kg, e{i}.method" for i in range(len(escalated)))  # fmt: skip
    sql = (
        f"SELECT r.id, r.timestamp, r.prompt_sha256, r.model, r.router, "
        f"r.prompt_tokens, r.completion_tokens, r.latency_s, r.cost_usd, r.tag, "
        f"{'r.finish_reason' if has_reason else chr(39) * 2}, {load_error}, {grid}, {share}, {loaded}{parts} FROM requests r{joins}"
        f"{where} ORDER BY r.timestamp, r.rowid"
    )
    first = 19  # the components' first column, after the load error's three, the grid's, the share, the load
    after = first + 5 * len(COMPONENTS)
    known = _parts_of(first, len(COMPONENTS))
    earlier_parts = _parts_of(after, len(escalated))
    labels: dict[tuple[Any, ...], str] = {}  # by the grid's columns: a log holds a few grids
    for row in _stream(log, sql, args):
        found = list(filter(_NAMED, known(row)))  # in COMPONENTS' order
        earlier = list(filter(_NAMED, earlier_parts(row))) if escalated else []
        if extra and row[0] in extra:
            others = "SELECT component, duration_s, energy_kwh, co2_kg, method FROM components WHERE request_id = ? AND component NOT IN ({}) ORDER BY component"  # fmt: skip
            found += log._fetch(others.format(_KNOWN), [row[0]])
        recorded = row[14:17]  # the grid's columns
        yield (*row[1:11], found, earlier, row[11] or "", row[12] or "", row[13], labels.get(recorded) or _grid_label(labels, recorded), row[17], row[0], row[18])  # fmt: skip


#: Whether a part of a row was selected (its name: never NULL in the log) or its left join
#: found none.
_NAMED = itemgetter(0)
#: Distinct grids whose labels a report keeps at most (a log changed outside RouterLLM may
#: hold any number).
GRID_LABELS_HELD = 1000


def _parts_of(start: int, count: int) -> Callable[[tuple[Any, ...]], tuple[tuple[Any, ...], ...]]:
    """The ``count`` parts of a row from column ``start`` on, five columns each (name,
    duration, energy, CO2, method; the name None where none was logged), as slices of
    the row: one C call a request (``itemgetter``), not a tuple built per part."""
    if count < 2:  # itemgetter of one item gives the item, not a tuple of it
        return lambda row: (row[start : start + 5],)[:count]
    return itemgetter(*(slice(k, k + 5) for k in range(start, start + 5 * count, 5)))


def _grid_label(labels: dict[tuple[Any, ...], str], columns: tuple[Any, ...]) -> str:
    """The report's key of a row's grid ``columns`` (``Grid.label``, or
    ``GRID_NOT_RECORDED``), kept in ``labels``: made and formatted per request, it was a
    tenth of a report's time."""
    recorded = grid_from_columns(*columns)
    label = GRID_NOT_RECORDED if recorded is None else recorded.label
    intensity = columns[2]
    # a 0 and a -0.0 are one key, two labels; a NaN is a key nothing finds
    if len(labels) < GRID_LABELS_HELD and intensity != 0 and intensity == intensity:
        labels[columns] = label
    return label


def _stream(log: RequestLog, sql: str, args: list[object]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql``, fetched ``CHUNK`` at a time."""
    try:
        with log._lock:
            log.check_open()
            cursor = log._db.execute(sql, args)
        while True:
            with log._lock:
                log.check_open()
                rows = cursor.fetchmany(CHUNK)
            if not rows:
                return
            yield from rows
    except sqlite3.Error as e:
        raise log_schema.unusable(log.db_path, "cannot be read", e) from e


def _escalated_components(log: RequestLog, window: tuple[str, list[object]]) -> tuple[str, ...]:
    """The known components (``COMPONENTS``, in order) that an escalation has a part of
    (of a request in ``window``, where it is one)."""
    if not log._has_table("escalations"):
        return ()
    found = {r[0] for r in log._fetch(f"SELECT DISTINCT c.component FROM {_parts('escalations', window)}", window[1])}  # fmt: skip
    return tuple(c for c in COMPONENTS if c in found)


def _parts(table: str, window: tuple[str, list[object]], condition: str = "") -> str:
    """The rows ``c`` of ``table`` (components or escalations) that meet ``condition``:
    those of the requests ``r`` the WHERE clause of ``window`` selects, found by the
    requests' indexes (SQLite, left to choose, scanned the parts), or all of them where
    there is no clause."""
    where = window[0]
    if not where:
        return f"{table} c" + (f" WHERE {condition}" if condition else "")
    return f"requests r CROSS JOIN {table} c ON c.request_id = r.id{where}" + (f" AND ({condition})" if condition else "")  # fmt: skip


def _columns(log: RequestLog) -> list[str]:
    return [r[1] for r in log._fetch("PRAGMA table_info(requests)")]


def _check_numbers(
    log: RequestLog, where: str, args: list[object], window: tuple[str, list[object]]
) -> set[str]:
    """``records``' error for the first selected request whose logged number is not a
    number, or whose logged text is not text (bytes): its components' first, as
    ``records`` checks them first. SQLite hands Python an int or a float exactly where
    ``typeof`` says integer or real, and a str where it says text. Returns the requests
    with components other than ``COMPONENTS`` (found in the same scan: of the parts of
    the requests in ``window``, where it is one, else of every part)."""
    numbers = ("duration_s", "energy_kwh", "co2_kg")
    not_text = " OR ".join(_NOT_TEXT.format(f"c.{t}") for t in ("component", "method"))
    bad = " OR ".join([*(_NOT_NUMBER.format(f"c.{n}") for n in numbers), not_text])
    read = f"c.request_id, c.component, c.method, {', '.join(f'c.{n}' for n in numbers)}"
    # One pass over the components (every one scanned without the join, which SQLite does
    # fast, or those of the window's requests); the damaged ones of selected requests are
    # kept (in the order records meets them in a request).
    odd = log._fetch(f"SELECT {read}, {bad} FROM {_parts('components', window, f'c.component NOT IN ({_KNOWN}) OR {bad}')} ORDER BY {_UNINDEXED}c.request_id, {_UNINDEXED}c.component", window[1])  # fmt: skip
    selected = f"SELECT 1 FROM requests r{where}{' AND' if where else ' WHERE'} r.id = ?"
    if log._has_table("escalations"):  # the part of them a cascade's first models spent
        odd += [(*row, 1) for row in log._fetch(f"SELECT {read} FROM {_parts('escalations', window, bad)} ORDER BY {_UNINDEXED}c.request_id, {_UNINDEXED}c.component", window[1])]  # fmt: skip
    for rid, comp, method, *values, damaged in odd:
        if damaged and log._fetch(selected, [*args, rid]):
            log._check_texts(rid, {"component": comp})
            log._check_numbers(
                rid, {f"{comp} {k}": v for k, v in zip(numbers, values, strict=True)}
            )
            log._check_texts(rid, {f"{comp} method": method})
    columns = list(REQUEST_NUMBERS)
    texts = [c for c in REQUEST_TEXTS if c in _columns(log)]  # an older log: no finish_reason
    bad = " OR ".join([*(_NOT_NUMBER.format(f"r.{c}") for c in columns), *(_NOT_TEXT.format(f"r.{c}") for c in texts)])  # fmt: skip
    sql = f"SELECT r.id, {', '.join(f'r.{c}' for c in columns + texts)} FROM requests r{where}{' AND' if where else ' WHERE'} ({bad}) ORDER BY {_UNINDEXED}r.timestamp, r.rowid LIMIT 1"  # fmt: skip
    for rid, *values in log._fetch(sql, args):
        log._check_numbers(rid, dict(zip(columns, values[: len(columns)], strict=True)))
        log._check_texts(rid, dict(zip(texts, values[len(columns) :], strict=True)))
    return {rid for rid, comp, *_ in odd if comp not in COMPONENTS}
