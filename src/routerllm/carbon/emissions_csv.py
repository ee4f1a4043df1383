"""The emissions CSV's file: the seed's ``emissions.csv``, three rows a request (one per
component), appended by every process sharing it under an exclusive file lock
(``request_log.RequestLog`` writes it, and says when it is read)."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from routerllm.carbon.log_rows import CSV_COLUMNS, RequestRecord


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


def append_rows(f: IO[str], records: Sequence[RequestRecord]) -> None:
    """The rows of ``records`` appended to ``f`` (``locked``'s), after the header where
    it is empty."""
    writer = csv.writer(f)
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        writer.writerow(CSV_COLUMNS)
    elif os.pread(f.fileno(), 1, size - 1) not in (b"\n", b"\r"):
        # saved by an editor without its last line's end: the row goes on a line
        # of its own, not onto the end of that one (nor of the header)
        f.write("\r\n")
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
    f.flush()


def ids_in(f: IO[str], ids: set[str]) -> set[str]:
    """Which of ``ids`` have rows in ``f`` (``locked``'s; its request_id column)."""
    column = CSV_COLUMNS.index("request_id")
    f.seek(0)
    return {row[column] for row in csv.reader(f) if len(row) > column and row[column] in ids}
