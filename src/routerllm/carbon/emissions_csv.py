"""The emissions CSV's file: the seed's ``emissions.csv``, three rows a request (one per
component), appended by every process sharing it under an exclusive file lock
(``request_log.RequestLog`` writes it, as ``CsvMirror`` says).

The CSV mirrors the log: a request's transaction also notes that the CSV may lack
its rows (``pending_csv``), a note dropped once they are written. A process killed
in between (or a CSV that could not be written then) leaves the note, and the next
writer to open the log adds the rows the CSV lacks. The CSV's lock is held from
before the transaction until the note is dropped, so an opening writer, which takes
it too, never reads another's request in progress as one that was lost.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from routerllm.carbon.log_rows import CSV_COLUMNS, RequestRecord, what_was_spent
from routerllm.exceptions import RequestLogError

log = logging.getLogger(__name__)

#: UTF-8's byte order mark, which Excel ("CSV UTF-8") and Notepad put before the header.
BOM = "\ufeff".encode()


def locked(path: Path) -> IO[str]:
    """``path``, opened to append and locked against the other writers (which wait
    until ``release``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("a+", newline="", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX)
    except BaseException:
        f.close()
        raise
    return f


def release(f: IO[str]) -> None:
    """Unlock and close ``f`` (``locked``'s)."""
    try:
        fcntl.flock(f, fcntl.LOCK_UN)
    finally:
        # what it still held failed to be written (a full disk): that error was raised
        with contextlib.suppress(OSError):
            f.close()


#: Where a file was known to end between rows: its device, inode and size then.
End = tuple[int, int, int]


def append_rows(f: IO[str], records: Sequence[RequestRecord], clean: End | None = None) -> End:
    """The rows of ``records`` appended to ``f`` (``locked``'s), after the header where
    it is empty; returns where the file now ends between rows. ``clean``: where it did
    after this process's last rows; only what was written after that is read again.
    Where the write fails (a full disk), what it wrote is taken back: a row cut short
    holds the request's id, and the next open would add none of its rows."""
    text = io.StringIO()
    writer = csv.writer(text)
    st = os.fstat(f.fileno())
    size = st.st_size
    # empty, or emptied in an editor that saved only its byte order mark
    if size == 0 or (size == len(BOM) and os.pread(f.fileno(), size, 0) == BOM):
        writer.writerow(CSV_COLUMNS)
    else:
        same = clean is not None and clean[:2] == (st.st_dev, st.st_ino) and clean[2] <= size
        start = clean[2] if same and clean is not None else 0
        if start < size and _ends_quoted(f.fileno(), start, size):
            # another writer's row cut inside a quoted field (or garbage opening one):
            # every row after it would be read as part of that field, for csv and pandas
            log.warning("%s ends inside a quoted field (a row cut short, or garbage appended): closed, the new rows start after it", f.name)  # fmt: skip
            text.write('"\r\n')
        elif os.pread(f.fileno(), 1, size - 1) not in (b"\n", b"\r"):
            # saved by an editor without its last line's end: the row goes on a line
            # of its own, not onto the end of that one (nor of the header)
            text.write("\r\n")
    for record in records:
        for m in record.components.values():
            writer.writerow(
                [
                    record.timestamp,
                    m.component,
                    f"{m.duration_s:.6f}",
                    f"{m.co2_kg:.9e}",
                    f"{m.energy_kwh:.9e}",
                    record.id,
                    record.model,
                    record.router,
                    m.method,
                ]
            )
    _write_all(f.fileno(), text.getvalue().encode("utf-8"), size)
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino, st.st_size


def _write_all(fd: int, data: bytes, size: int) -> None:
    """``data`` appended to ``fd`` (opened to append), which ended at ``size``; where the
    write fails partway, the file is cut back to ``size`` and the error raised."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


_FIELD_START = b",\r\n"  # a quote after one of these (or at a row's start) opens a field


def _ends_quoted(fd: int, start: int, size: int) -> bool:
    """Whether the CSV text of ``fd`` from ``start`` (a row's start) to ``size`` ends
    inside a quoted field, as csv and pandas read it: a quote at a field's start opens
    one, two within it are a quote, one closes it; a quote elsewhere is a character of
    its field. Read a MiB at a time by its quotes alone (csv's reader refused a field
    over its size limit, and on Python 3.10 a NUL; a count of the quotes took a
    literal one for an opening one, and the quote written to close it buried every row
    after it); without any, at once (10 MiB in 2 ms)."""
    quoted = after_quote = False  # in a quoted field; its last byte read a quote in it
    before = b"\n"  # the byte before the chunk: ``start`` is a row's start
    for at in range(start, size, 1 << 20):
        data = os.pread(fd, min(1 << 20, size - at), at)
        i = 0
        if after_quote:  # the quote that ended the chunk before: doubled, or closing
            after_quote, i = False, int(data[:1] == b'"')
            quoted = bool(i)
        while (j := data.find(b'"', i)) >= 0:
            if not quoted:
                quoted = (data[j - 1 : j] if j else before) in _FIELD_START
            elif j + 1 == len(data):
                after_quote = True
            elif data[j + 1 : j + 2] == b'"':
                j += 1  # a quote within the field
            else:
                quoted = False
            i = j + 1
        before = data[-1:]
    return quoted and not after_quote


def ids_in(f: IO[str], ids: set[str]) -> set[str]:
    """Which of ``ids`` have rows in ``f`` (``locked``'s; its request_id column)."""
    column = CSV_COLUMNS.index("request_id")
    f.seek(0)
    return {row[column] for row in csv.reader(f) if len(row) > column and row[column] in ids}


class CsvMirror:
    """``RequestLog``'s emissions CSV: a logged request's rows added to it (``_mirror``),
    and, as the log is opened, the rows a stopped run left out (``_catch_up_csv``)."""

    db_path: Path
    csv_path: Path | None
    _db: sqlite3.Connection
    _lock: contextlib.AbstractContextManager[Any]
    #: Where the CSV ended after this log's last rows (``append_rows``' ``clean``).
    _csv_end: End | None = None

    def _fetch(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _read(self, sql: str, args: Sequence[object]) -> Iterator[RequestRecord]:
        raise NotImplementedError

    def _mirror(self, csv_file: IO[str] | OSError, record: RequestRecord) -> None:
        """``record``'s rows added to the CSV (``csv_file``, or the error that opening it
        raised), and its note dropped; else a ``RequestLogError`` that says the request
        is logged, its note kept for the next open to add them."""
        try:
            if isinstance(csv_file, OSError):
                raise csv_file
            self._append_csv(csv_file, [record])
        except OSError as e:
            error = RequestLogError(
                f"{what_was_spent(record.finish_reason)} and logged to {self.db_path}, but could not be "
                f"added to {self.csv_path}: {e}"
            )
            error.logged = True  # its row is in the log: the budgets count it from there
            raise error from e
        self._mirrored([record.id])

    @property
    def _csv_key(self) -> str:
        """The CSV as ``pending_csv`` names it: the processes sharing the log may each
        write their own (another ``carbon.output_dir``)."""
        assert self.csv_path is not None
        return os.path.realpath(self.csv_path)

    def _open_csv(self) -> IO[str]:
        assert self.csv_path is not None
        return locked(self.csv_path)

    def _append_csv(self, f: IO[str], records: Sequence[RequestRecord]) -> None:
        self._csv_end = append_rows(f, records, self._csv_end)

    def _mirrored(self, ids: Sequence[str]) -> None:
        """Drop the notes of ``ids``, whose rows the CSV now holds. Where that fails,
        the next open finds the rows in the CSV and adds none again."""
        try:
            with self._lock, self._db:
                self._db.executemany(
                    "DELETE FROM pending_csv WHERE request_id = ?", [(i,) for i in ids]
                )
        except sqlite3.Error as e:
            log.debug("request log %s: pending_csv not updated: %s", self.db_path, e)

    def _catch_up_csv(self) -> None:
        """Add to the CSV the rows it lacks of the requests logged for it: a process
        killed between a request's row in the log and its rows in the CSV (or a CSV
        that could not be written then) left them out. Where the CSV cannot be read
        or written now, a warning; the log is whole, and the next open tries again."""
        if self.csv_path is None:
            return
        pending = "SELECT request_id FROM pending_csv WHERE csv_path = ?"
        if not self._fetch(pending, [self._csv_key]):
            return
        try:
            f = self._open_csv()
        except OSError as e:
            log.warning("%s lacks the rows of requests in %s, not added: %s", self.csv_path, self.db_path, e)  # fmt: skip
            return
        try:
            # again, under the lock: a writer that held it has written its rows meanwhile
            ids = [i for (i,) in self._fetch(pending, [self._csv_key])]
            # written, then killed before the note was dropped: not added again
            held = ids_in(f, set(ids))
            missing = [i for i in ids if i not in held]
            records: list[RequestRecord] = []
            for start in range(0, len(missing), 500):  # SQLite's limit on bound parameters
                chunk = missing[start : start + 500]
                sql = f"SELECT * FROM requests WHERE id IN ({','.join('?' * len(chunk))})"
                records += self._read(sql, chunk)
            if records:
                self._append_csv(f, sorted(records, key=lambda r: r.timestamp))
            self._mirrored(ids)
            if records:
                log.warning("%s lacked the rows of %d request(s) of %s (a run stopped between the two): added", self.csv_path, len(records), self.db_path)  # fmt: skip
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            log.warning("%s lacks the rows of requests in %s, not added: %s", self.csv_path, self.db_path, e)  # fmt: skip
        finally:
            release(f)
