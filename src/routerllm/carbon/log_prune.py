"""Pruning the request log: the requests logged before a time, with every row that
belongs to them (``routerllm prune``).

A server logs every request, about 0.75 kB each, for as long as it runs: without a way
to drop old ones the log only grows. Pruning deletes a request's rows in every table
together (its components, escalations, failed load, feedback, pending embedding and
CSV note), so what is left reports as the same requests did before (``report --since``
of the cut-off gives the same totals before and after). It runs beside the processes
that write the log, in transactions of ``BATCH`` requests with a pause between, so that none of
them waits long for its turn, and keeps the last ``KEPT_S`` seconds: the daily budget window, and
the day before it, which a running process's last window sum may still count
(``window_sums``: a sum older than a day is made whole again, not moved).
The emissions CSV is left as it is.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from routerllm.carbon.log_rows import instant
from routerllm.carbon.request_log import RequestLog
from routerllm.exceptions import RouterLLMError

#: The requests deleted in one transaction, and the pause after each, out of the log's
#: write lock: a writer kept waiting by a batch retries every 100 ms at most (SQLite's busy
#: handler), so it gets its turn in the pause. 5,000 with no pause held the lock about
#: 1.3 s a batch beside a writer appending every 50 ms, which waited 0.93 s at the median
#: (2 shared cores under load, 2026-12-06).
BATCH = 1_000
PAUSE_S = 0.15
#: The newest requests pruning never deletes: two days, the daily budget window and the
#: day a running process's last sum of it may reach back.
KEPT_S = 2 * 24 * 3600
#: The tables whose rows name a request, deleted with it (those an older log lacks skipped).
REQUEST_TABLES = ("components", "escalations", "load_errors", "feedback", "pending_feedback", "pending_csv", "cpu_shares")  # fmt: skip


@dataclass(frozen=True)
class Pruned:
    """What a prune deleted and what the log holds after it."""

    before: str
    deleted: int
    kept: int
    first: str
    last: str
    free_bytes: int  # pages the deleted rows left free in the file, which new rows take


def prune(log: RequestLog, before: str, now: datetime | None = None) -> Pruned:
    """Delete the requests ``log`` holds that were logged before ``before`` (an ISO date or
    time, UTC unless it has an offset), with their rows in every table. A ``before`` within
    ``KEPT_S`` of ``now`` is refused, nothing deleted. The batches committed before a
    failure (another process's lock past its wait, a full disk) stay deleted."""
    cut = instant(before, "--before")
    now = now or datetime.now(timezone.utc)
    if cut > now - timedelta(seconds=KEPT_S):
        latest = (now - timedelta(seconds=KEPT_S)).strftime("%Y-%m-%d %H:%M:%S")
        raise RouterLLMError(
            f"--before {before.strip()!r:.80} would prune requests of the last 2 days, which "
            f"the daily budget window (and a running server's sum of it) still counts; give "
            f"a time at or before {latest} UTC"
        )
    stamp = cut.isoformat(timespec="microseconds")
    log.check_writable()
    deleted = 0
    try:
        tables = [t for t in REQUEST_TABLES if log._has_table(t)]
        while True:
            with log._lock, log._db:  # one batch: a request and all its rows, or none
                log._db.execute("BEGIN IMMEDIATE")
                ids = log._db.execute(
                    "SELECT id FROM requests WHERE timestamp < ? ORDER BY timestamp LIMIT ?",
                    (stamp, BATCH),
                ).fetchall()
                for table in tables:
                    log._db.executemany(f"DELETE FROM {table} WHERE request_id = ?", ids)
                log._db.executemany("DELETE FROM requests WHERE id = ?", ids)
            deleted += len(ids)
            if len(ids) < BATCH:
                break
            time.sleep(PAUSE_S)
        pages, size = (log._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("freelist_count", "page_size"))  # fmt: skip
    except sqlite3.Error as e:
        done = f"{deleted:,} requests were pruned, the others were not" if deleted else "nothing was pruned"  # fmt: skip
        raise log._refused(e, f"the requests could not all be pruned ({done})", "from", "prune again once it is free") from e  # fmt: skip
    kept, first, last = log.span()
    return Pruned(stamp, deleted, kept, first, last, int(pages) * int(size))
