"""The request log's queries: its requests read back as records (each row checked, as
another program may have changed it), a model's latest, what the requests of a window
spent (for the budgets), and how many it holds. ``RequestLog`` opens, closes and appends
to the log; this is its part that reads it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from routerllm.backends.interrupts import CANCELLED
from routerllm.carbon import log_schema
from routerllm.carbon.log_rows import (
    FAILED,
    REFUSED,
    RequestRecord,
    Spending,
    grid_from_columns,
    instant,
    logged_flag,
    logged_share,
    utc_timestamp,
)
from routerllm.carbon.log_schema import OLDER_LOAD_ERRORS, REQUEST_NUMBERS, REQUEST_TEXTS
from routerllm.carbon.meter import COMPONENTS, Measurement
from routerllm.carbon.window_sums import WindowSums
from routerllm.checks import is_number, not_utf8
from routerllm.exceptions import RequestLogError, RouterLLMError


class LogQueries:
    """``RequestLog``'s reads: the requests it holds, and what they spent."""

    db_path: Path
    _db: sqlite3.Connection
    _lock: AbstractContextManager[Any]
    _window_sums: WindowSums

    def check_open(self) -> None:
        raise NotImplementedError

    def _has_table(self, name: str) -> bool:
        sql = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(self._fetch(sql, [name])[0][0])

    @staticmethod
    def _filters(since: str | None, tag: str | None, prefix: str = "") -> tuple[str, list[object]]:
        """The WHERE clause (or "") and its arguments selecting requests from ``since``
        with ``tag``."""
        where: list[str] = []
        args: list[object] = []
        if since:
            where.append(f"{prefix}timestamp >= ?")
            args.append(utc_timestamp(since))
        if tag is not None:
            # else no row, or a bare UnicodeEncodeError (a logged tag is UTF-8 text)
            if not isinstance(tag, str):
                raise RouterLLMError(f"tag must be text, got {type(tag).__name__}")
            if (at := not_utf8(tag)) is not None:  # as the CLI says it of an argument
                raise RouterLLMError(
                    f"{tag[:80]!r} is not valid UTF-8 text (undecodable bytes at character "
                    f"{at}); convert it to UTF-8 first"
                )
            where.append(f"{prefix}tag = ?")
            args.append(tag)
        return (" WHERE " + " AND ".join(where) if where else ""), args

    def records(self, since: str | None = None, tag: str | None = None) -> Iterator[RequestRecord]:
        """Every logged request, oldest first (optionally from ``since``, an ISO date or
        time, UTC unless it carries an offset)."""
        where, args = self._filters(since, tag)
        yield from self._read("SELECT * FROM requests" + where + " ORDER BY timestamp, rowid", args)

    def latest(
        self, model: str, limit: int, skip_methods: Sequence[str] = ()
    ) -> list[RequestRecord]:
        """The ``limit`` newest requests ``model`` answered, oldest first; with
        ``skip_methods``, the newest whose generation (``llm_inference``) was measured by
        another method (not answered from the cache, say), and not failed (finish reason
        ``FAILED``: a generation that failed partway wrote no answer) nor cancelled
        (``CANCELLED``: stopped half-way, its client gone), nor refused by the budgets
        once routed (``REFUSED``: its routing alone): an escalated
        request's by the answering model's own method (``RequestRecord.own``), as the
        predictor judges them."""
        where, args = "", list(skip_methods)
        if skip_methods:
            marks = ",".join("?" * len(skip_methods))
            method = "c.method"
            if self._has_table("escalations"):  # ``own_part``: the earlier models' "m+" taken off
                method = (
                    "COALESCE((SELECT substr(c.method, length(e.method) + 2) FROM escalations e "
                    "WHERE e.request_id = c.request_id AND e.component = c.component AND "
                    "substr(c.method, 1, length(e.method) + 1) = e.method || '+'), c.method)"
                )
            where = (
                " AND EXISTS (SELECT 1 FROM components c WHERE c.request_id = requests.id AND "
                f"c.component = 'llm_inference' AND {method} NOT IN ({marks}))"
            )
            columns = [r[1] for r in self._fetch("PRAGMA table_info(requests)")]
            if "finish_reason" in columns:  # an older log, read as it is, has none
                where += " AND finish_reason NOT IN (?, ?, ?)"
                args += [FAILED, CANCELLED, REFUSED]
        sql = f"SELECT * FROM requests WHERE model = ?{where} ORDER BY timestamp DESC, rowid DESC LIMIT ?"  # fmt: skip
        return list(self._read(sql, [model, *args, limit]))[::-1]

    def spending(self, since: str, chunk: int = 500) -> Iterator[Spending]:
        """What every request from ``since`` (the log's own timestamp form) spent, oldest
        first, read ``chunk`` rows at a time: a caller that stops early reads no more (a
        budget's retry time is found in a window's first rows: it read all of a day's
        500,000 in 2.3 s at each request refused). Each chunk is read under the lock from
        where the last ended, so other threads use the log between them."""
        columns = [r[1] for r in self._fetch("PRAGMA table_info(requests)")]
        refused = "finish_reason = ?" if "finish_reason" in columns else "0 AND ?"  # older logs
        sql = f"SELECT timestamp, co2_kg, cost_usd, id, rowid, {refused} FROM requests WHERE {{}} ORDER BY timestamp, rowid LIMIT ?"  # fmt: skip
        after: list[object] = []
        while True:
            # the next chunk sought by its row value alone: with `timestamp >= since` too,
            # SQLite seeks by that and reads every chunk before it again
            where = "(timestamp, rowid) > (?, ?)" if after else "timestamp >= ?"
            rows = self._fetch(sql.format(where), [REFUSED, *(after or [since]), chunk])
            for t, co2, cost, rid, _, was_refused in rows:
                try:
                    instant(t)
                except RouterLLMError:
                    raise RequestLogError(
                        f"request log {self.db_path} holds a request whose timestamp {t!r} is not "
                        f"an ISO time; the budgets cannot place it in their windows"
                    ) from None
                self._check_numbers(rid, {"co2_kg": co2, "cost_usd": cost})  # the budgets add them
                yield Spending(t, float(co2), float(cost), bool(was_refused))
            if len(rows) < chunk:
                return
            after = [rows[-1][0], rows[-1][4]]

    def spent(self, since: str, until: str) -> Spending:
        """What the requests from ``since`` to ``until`` (the log's own timestamp form)
        spent in all: a window's last sum moved (``window_sums``), not summed again."""
        try:
            with self._lock:
                self.check_open()
                co2, cost = self._window_sums.spent(self._db, since, until)
        except sqlite3.Error as e:
            raise log_schema.unusable(self.db_path, "cannot be read", e) from e
        return Spending(since, co2, cost)

    def _fetch(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows ``sql`` selects; a clear error when the log is closed or unreadable."""
        try:
            with self._lock:
                self.check_open()
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise log_schema.unusable(self.db_path, "cannot be read", e) from e

    def _read(self, sql: str, args: Sequence[object]) -> Iterator[RequestRecord]:
        """The requests ``sql`` selects (whole rows of ``requests``), with their components."""
        comps: dict[str, dict[str, Measurement]] = {}
        escalated: dict[str, dict[str, Measurement]] = {}
        rows = self._fetch(sql, args)
        ids = [r[0] for r in rows]
        load_errors: dict[str, tuple[str, str, float | None]] = {}
        tables = [("components", comps), ("escalations", escalated)]
        if not self._has_table("escalations"):  # a log older than the escalations table
            tables.pop()
        # an older log marks no failed load, or only a failed request's own model's
        marked = self._has_table("load_errors")
        stepped = marked and self._load_error_columns() != OLDER_LOAD_ERRORS
        # each part's share of the CPU others used, where known (an older log has none)
        shared = self._has_table("cpu_shares")
        shares: dict[tuple[str, str, int], object] = {}
        for start in range(0, len(ids), 500):  # SQLite's limit on bound parameters
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            if marked:
                columns = "error, model, energy_kwh" if stepped else "error, '', NULL"
                sql = f"SELECT request_id, {columns} FROM load_errors WHERE request_id IN ({marks})"  # fmt: skip
                load_errors.update((rid, tuple(rest)) for rid, *rest in self._fetch(sql, chunk))
            if shared:
                sql = f"SELECT request_id, component, escalated, others_cpu_share FROM cpu_shares WHERE request_id IN ({marks})"  # fmt: skip
                shares.update(((rid, comp, esc), share) for rid, comp, esc, share in self._fetch(sql, chunk))  # fmt: skip
            for part_of, (table, found) in enumerate(tables):  # 0: components, 1: escalations
                sql = f"SELECT * FROM {table} WHERE request_id IN ({marks})"
                for rid, comp, dur, energy, co2, method in self._fetch(sql, chunk):
                    self._check_texts(rid, {"component": comp})
                    numbers = {"duration_s": dur, "energy_kwh": energy, "co2_kg": co2}
                    self._check_numbers(rid, {f"{comp} {k}": v for k, v in numbers.items()})
                    self._check_texts(rid, {f"{comp} method": method})
                    cpu = logged_share(shares.get((rid, comp, part_of))) if shares else None
                    found.setdefault(rid, {})[comp] = Measurement(
                        comp, dur, energy, co2, method, cpu
                    )
        for r in rows:
            self._check_numbers(r[0], {c: r[i] for c, i in REQUEST_NUMBERS.items()})
            self._check_texts(r[0], {c: r[i] for c, i in REQUEST_TEXTS.items() if i < len(r)})
            load_error, load_model, load_kwh = load_errors.get(r[0], ("", "", None))
            by_name = comps.get(r[0], {})
            ordered = {c: by_name[c] for c in COMPONENTS if c in by_name}
            ordered.update({c: m for c, m in by_name.items() if c not in ordered})
            yield RequestRecord(
                id=r[0],
                timestamp=r[1],
                prompt_sha256=r[2],
                prompt_chars=r[3],
                model=r[4],
                router=r[5],
                confidence=r[6],
                prompt_tokens=r[7],
                completion_tokens=r[8],
                latency_s=r[9],
                cost_usd=r[12],
                components=ordered,
                tag=r[13],
                finish_reason=r[14] if len(r) > 14 else "",
                escalated=escalated.get(r[0], {}),
                load_error=load_error,
                load_error_model=load_model,
                load_error_kwh=load_kwh,
                grid=grid_from_columns(*r[15:18]) if len(r) > 15 else None,
                # another program's text or real there is no length: not recorded
                completion_chars=r[18] if len(r) > 18 and type(r[18]) is int else None,
                model_loaded=logged_flag(r[20]) if len(r) > 20 else None,
            )

    def _load_error_columns(self) -> list[str]:
        return [r[1] for r in self._fetch("PRAGMA table_info(load_errors)")]

    def _check_numbers(self, request_id: str, values: dict[str, object]) -> None:
        """A clear error for a logged number that is not one (a row changed by another
        program): the report would otherwise fail adding it up."""
        self._check_row(request_id, values, is_number, "a number", "")

    def _check_texts(self, request_id: str, values: dict[str, object]) -> None:
        """A clear error for a logged text that is not text (bytes another program
        stored): the report's tables would otherwise fail printing it."""
        self._check_row(request_id, values, lambda v: isinstance(v, str), "text", ".60")

    def _check_row(
        self,
        request_id: str,
        values: dict[str, object],
        fits: Callable[[object], bool],
        kind: str,
        width: str,
    ) -> None:
        for column, value in values.items():
            if not fits(value):
                raise RequestLogError(
                    f"request log {self.db_path} (log.path): request {request_id}'s {column} is "
                    f"{value!r:{width}}, not {kind}; the row was changed outside RouterLLM: fix "
                    f"or delete it"
                )

    def count(self) -> int:
        """How many requests the log holds."""
        return int(self._fetch("SELECT COUNT(*) FROM requests")[0][0])

    def span(self) -> tuple[int, str, str]:
        """How many requests the log holds, and the timestamps of its oldest and newest
        ("" when it holds none)."""
        ((n, first, last),) = self._fetch("SELECT COUNT(*), MIN(timestamp), MAX(timestamp) FROM requests")  # fmt: skip
        return int(n), first or "", last or ""
