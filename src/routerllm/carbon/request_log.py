"""The request log: one SQLite row per request (+ one per component), and the
seed's ``emissions.csv``.

Each request is committed in its own transaction before the next starts, so
an interrupted run loses no completed request. WAL mode plus a busy timeout
lets several processes append to one log at once; the CSV is appended under
an exclusive file lock for the same reason, and mirrors the log
(``emissions_csv.CsvMirror``). The tables, and the versions of them older logs
hold, are ``log_schema``'s; reading the log back is ``log_queries``'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from routerllm.carbon import emissions_csv, log_schema
from routerllm.carbon.emissions_csv import CsvMirror
from routerllm.carbon.log_queries import LogQueries
from routerllm.carbon.log_rows import (
    RequestRecord,
    check_csv,
    grid_columns,
    utc_timestamp,
    what_was_spent,
)
from routerllm.carbon.log_schema import TABLES
from routerllm.carbon.pending_feedback import PendingFeedback
from routerllm.carbon.window_sums import WindowSums
from routerllm.checks import not_utf8
from routerllm.exceptions import RequestLogError, RouterLLMError
from routerllm.path_checks import file_in_the_way, refuse_special_database, what_is

log = logging.getLogger(__name__)


# LogQueries first: its _fetch, _read, _has_table and _filters are the ones the other
# parts declare and use
class RequestLog(LogQueries, PendingFeedback, CsvMirror):
    """Append-only SQLite log of requests, plus the CSV of component emissions.

    An existing database must be a RouterLLM request log: any other SQLite file
    is refused untouched. ``read_only`` opens an existing log for reading only
    (``routerllm report``), so a log in a read-only folder can be reported on.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        csv_path: str | os.PathLike[str] | None = None,
        read_only: bool = False,
    ) -> None:
        if (
            not isinstance(db_path, str | os.PathLike)
            or str(db_path) in ("", ":memory:")
            or "\x00" in str(db_path)
        ):
            raise RequestLogError(
                f"request log path {db_path!r} (log.path) must be a file path, e.g. "
                f"logs/requests.sqlite"
            )
        for what, path in (("request log", db_path), ("emissions CSV", csv_path)):
            # SQLite and the CSV's lock take UTF-8 names: a bare UnicodeEncodeError else
            if path is not None and (at := not_utf8(str(path))) is not None:
                raise RequestLogError(
                    f"{what} path {str(path)!r} is not valid UTF-8 text (undecodable at "
                    f"character {at}); give it a UTF-8 name"
                )
        self.db_path = Path(db_path)
        if self.db_path.is_dir():  # SQLite says only "unable to open database file"
            raise RequestLogError(
                f"request log {self.db_path} (log.path) is a folder: give a file, e.g. "
                f"{self.db_path / 'requests.sqlite'}"
            )
        refuse_special_database(self.db_path, "remove it, or point log.path at a new file", RequestLogError)  # fmt: skip
        if not read_only and (above := file_in_the_way(self.db_path.parent)) is not None:
            # said here, not as mkdir's "[Errno 17] File exists" or "[Errno 20]"
            raise RequestLogError(
                f"request log {self.db_path} (log.path) cannot be created: {above} is "
                f"{what_is(above)}, not a folder; point log.path at a file in a folder"
            )
        self.read_only = read_only
        self._closed = False
        # One connection, shared by the threads of a system (the server's generation and
        # feedback threads): its transactions must not interleave.
        self._lock = threading.RLock()
        # The threads whose requests will be logged (``in_use``), which close() waits for.
        self._users: Counter[int] = Counter()
        self._users_done = threading.Condition()
        self._closing = False
        self._window_sums = WindowSums()
        self._gone = ""  # why the log was closed under us (moved or deleted), once it was
        #: requests ``append`` could not write (a full disk, the log moved away): not in the
        #: log, which ``routerllm serve``'s closing line says
        self.unlogged = 0
        #: Called with each row the log has taken (the server's /metrics counts them), in
        #: the thread that logged it; one that raises is said in the log, not to the caller.
        self.observers: list[Callable[[RequestRecord], None]] = []
        if read_only:
            self.csv_path = None
            self._db = log_schema.open_for_reading(self.db_path)
            return
        self.csv_path = Path(csv_path) if csv_path else None
        # Both folders now: a bad path fails before any request is paid for.
        if self.csv_path:
            if (above := file_in_the_way(self.csv_path.parent)) is not None:
                raise RequestLogError(
                    f"the emissions CSV's folder {self.csv_path.parent} (carbon.output_dir) "
                    f"cannot be created: {above} is {what_is(above)}, not a folder; give "
                    f"carbon.output_dir a folder path"
                )
            try:
                self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RequestLogError(
                    f"the emissions CSV's folder {self.csv_path.parent} (carbon.output_dir) "
                    f"cannot be created: {e}"
                ) from e
            check_csv(self.csv_path)
        self._db = log_schema.open_for_writing(self.db_path)
        self._where = self.db_path.absolute()
        self._file = _file_id(self._where)
        self._catch_up_csv()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: a closed log refuses reads and writes."""
        return self._closed

    def close(self) -> None:
        """Close the log, once the requests other threads are producing in ``in_use``
        (another system's, sharing it) are logged; new ones are refused meanwhile."""
        me = threading.get_ident()
        with self._users_done:
            self._closing = True
            self._users_done.wait_for(lambda: not set(self._users) - {me})
        with self._lock:
            self._closed = True
            self._db.close()

    def check_open(self) -> None:
        """Raise ``RequestLogError`` if the log is closed."""
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> RequestLogError:
        if self._gone:
            return RequestLogError(self._gone)
        return RequestLogError(f"request log {self.db_path} is closed; open a new RequestLog on it")

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Around a request that will be logged: refused as ``check_writable`` refuses
        (or once the log is closing), and waited for by ``close()`` from another thread,
        so that a system sharing the log with one that closes it logs what it answers."""
        me = threading.get_ident()
        with self._users_done:
            if self._closing:
                raise self._closed_error()
            self.check_writable()
            self._users[me] += 1
        try:
            yield
        finally:
            with self._users_done:
                self._users[me] -= 1
                if not self._users[me]:
                    del self._users[me]
                self._users_done.notify_all()

    def check_writable(self) -> None:
        """A clear error unless requests can be logged here: open, and not opened
        read-only (checked before a request is paid for)."""
        self.check_open()
        if self.read_only:
            raise RequestLogError(
                f"request log {self.db_path} was opened read-only, and every answer is "
                f"logged; give RouterLLM a RequestLog opened for writing, or its path"
            )
        self._check_in_place()

    def _check_in_place(self) -> None:
        """Close the log, with a clear error, where log.path no longer names the file it
        opened (moved or deleted while open, as a log rotation does): its rows would go on
        into that file, lost with it where it was deleted, and a process starting a new log
        at log.path would share its -wal and -shm files, named after the path ("disk I/O
        error"). What it holds is written to its file first, wherever that is now."""
        if self.read_only or _file_id(self._where) == self._file:
            return
        with self._lock:
            if not self._closed:
                self._gone = (
                    f"request log {self.db_path} (log.path) was moved or deleted while this "
                    f"process had it open, so nothing more is logged to it; restart to start a "
                    f"new log at log.path (stop the processes that share a log before moving it)"
                )
                self._closed = True
                # SQLite, seeing the file moved, neither writes its WAL into it nor removes
                # the WAL at closing: a checkpoint does the one and empties the other
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
        raise self._closed_error()

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, record: RequestRecord) -> None:
        """Commit one request (and its components) atomically, then append it to the CSV.
        Its timestamp is stored in UTC, as the log's windows and reports compare them.
        A request it cannot commit is counted in ``unlogged``."""
        try:
            self._append(record)
        except RequestLogError as e:
            if not e.logged:  # else only its CSV rows are missing
                self.unlogged += 1
            raise

    def _append(self, record: RequestRecord) -> None:
        self.check_open()
        try:
            self._check_in_place()
        except RequestLogError as e:
            raise RequestLogError(f"{what_was_spent(record.finish_reason)} but could not be logged: {e}") from None  # fmt: skip
        try:
            record = dataclasses.replace(record, timestamp=utc_timestamp(record.timestamp, "its timestamp"))  # fmt: skip
        except RouterLLMError as e:
            raise RequestLogError(f"request {record.id} has no usable timestamp: {e}") from None
        record = _utf8_texts(record)
        csv_file: IO[str] | OSError | None = None
        if self.csv_path is not None:
            try:  # locked before the row is committed: see emissions_csv's docstring
                csv_file = self._open_csv()
            except OSError as e:  # the row is logged all the same, then this is said
                csv_file = e
        try:
            try:
                self._insert(record)
            # a full disk, a read-only file, an int > 2^63...
            except (sqlite3.Error, OverflowError) as e:
                failed, later = f"{what_was_spent(record.finish_reason)} but could not be logged", "the next answers are logged once it is free"  # fmt: skip
                raise self._refused(e, failed, "to", later) from e
            self._tell_observers(record)  # in the log now, whatever the CSV's fate
            if csv_file is not None:
                self._mirror(csv_file, record)
        finally:
            if csv_file is not None and not isinstance(csv_file, OSError):
                emissions_csv.release(csv_file)

    def _tell_observers(self, record: RequestRecord) -> None:
        for observe in list(self.observers):
            try:
                observe(record)
            except Exception:  # a watcher's fault: the answer, logged, still goes out
                log.exception("an observer of the request log failed on request %s", record.id)

    def _insert(self, record: RequestRecord) -> None:
        with self._lock, self._db:  # one transaction: all rows of the request, or none
            if self.csv_path is not None:  # dropped once its CSV rows are written
                self._db.execute(
                    "INSERT INTO pending_csv VALUES (?, ?)", (record.id, self._csv_key)
                )
            self._db.execute(
                f"INSERT INTO requests ({', '.join(TABLES['requests'])}) VALUES ({', '.join('?' * len(TABLES['requests']))})",  # fmt: skip
                (
                    record.id,
                    record.timestamp,
                    record.prompt_sha256,
                    record.prompt_chars,
                    record.model,
                    record.router,
                    record.confidence,
                    record.prompt_tokens,
                    record.completion_tokens,
                    record.latency_s,
                    record.energy_kwh,
                    record.co2_kg,
                    record.cost_usd,
                    record.tag,
                    record.finish_reason,
                    *grid_columns(record.grid),
                    record.completion_chars,
                    record.others_cpu_share,
                    record.model_loaded,
                ),
            )
            for table, parts in (("components", record.components), ("escalations", record.escalated)):  # fmt: skip
                self._db.executemany(
                    f"INSERT INTO {table} VALUES (?,?,?,?,?,?)",
                    [
                        (record.id, m.component, m.duration_s, m.energy_kwh, m.co2_kg, m.method)
                        for m in parts.values()
                    ],
                )
            shares = [
                (record.id, m.component, escalated, m.others_cpu_share)
                for escalated, parts in enumerate((record.components, record.escalated))
                for m in parts.values()
                if m.others_cpu_share is not None
            ]
            if shares:  # most parts' is not known (a block too short to tell)
                self._db.executemany("INSERT INTO cpu_shares VALUES (?,?,?,?)", shares)
            if record.load_error:
                self._db.execute(
                    "INSERT INTO load_errors VALUES (?,?,?,?)",
                    (record.id, record.load_error, record.load_error_model, record.load_error_kwh),
                )

    def report_rows(self, since: str | None = None, tag: str | None = None) -> Iterator[tuple[Any, ...]]:  # fmt: skip
        """The requests ``records`` selects, streamed as the rows a report adds up
        (``log_scan.report_rows``), not held."""
        from routerllm.carbon.log_scan import report_rows

        return report_rows(self, since, tag)


def _file_id(path: Path) -> tuple[int, int] | None:
    """The device and inode of the file at ``path``, or None where there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _utf8_texts(record: RequestRecord) -> RequestRecord:
    """``record``, whose texts must be UTF-8 (SQLite and the CSV store them so; a lone
    surrogate, e.g. JSON's "\\ud800", gave a bare UnicodeEncodeError): a clear error
    naming the first that is not, before anything is written; a load's error, a message
    quoting a file name that may not be UTF-8, is kept with such characters escaped."""
    texts = {n: getattr(record, n) for n in ("id", "model", "router", "tag", "finish_reason", "load_error_model")}  # fmt: skip
    if record.grid is not None:
        texts |= {"grid country": record.grid.country, "grid region": record.grid.region}
    for parts in (record.components, record.escalated):
        for m in parts.values():
            texts[f"{m.component} component"] = m.component
            texts[f"{m.component} method"] = m.method
    for name, text in texts.items():
        if isinstance(text, str) and (at := not_utf8(text)) is not None:
            raise RequestLogError(
                f"request {ascii(record.id)[1:-1]:.80}'s {ascii(name)[1:-1]:.80} "
                f"{text[:80]!r} is not valid UTF-8 text (undecodable at character {at}); "
                f"nothing of it was logged"
            )
    if isinstance(record.load_error, str) and not_utf8(record.load_error) is not None:
        escaped = record.load_error.encode("utf-8", "backslashreplace").decode("utf-8")
        record = dataclasses.replace(record, load_error=escaped)
    return record
