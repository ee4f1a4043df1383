"""What the request log's requests spent in a window of time, kept as the window slides.

The budgets ask, twice a request, what the hourly and the daily window spent. Summed
over the window's rows each time, that grew with the traffic: 0.17 s a sum for a day of
500,000 requests (6 a second), four sums a request under the log's lock, so a busy
server spent more time summing than it had. Each window's last sum is kept instead, and
moved: the rows logged since are added and the rows the window has left are taken off,
each found by an index over a few rows.

A sum counts the rows up to a rowid (the newest when it was made; SQLite gives a new
row a larger rowid than every row before it), so rows another process logs meanwhile
are counted once, by the next sum. Every ``RESUM_EVERY`` moves, and wherever a window
cannot be moved (a first sum, a window that moved past its last one entirely, a clock
set back, the newest row it counted removed by hand: SQLite gives its rowid to the next
row, which a move would not count), the window is summed again whole.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

#: The moves of a window's sum before it is summed again whole: it bounds what rounding
#: and rows removed by another program can leave in it.
RESUM_EVERY = 1000

_SUM = "SELECT COALESCE(SUM(co2_kg), 0), COALESCE(SUM(cost_usd), 0) FROM requests"


@dataclass(frozen=True)
class _Sum:
    """What the rows up to ``rowid`` (the row ``newest_id``'s) whose timestamps lie in
    [since, until] spent."""

    since: str
    until: str
    rowid: int
    newest_id: str | None
    co2: float
    cost: float
    moves: int


class WindowSums:
    """The spending of the windows asked for, one sum kept per window width."""

    def __init__(self) -> None:
        self._sums: dict[float, _Sum] = {}

    def spent(self, db: sqlite3.Connection, since: str, until: str) -> tuple[float, float]:
        """The CO2 and cost of the requests with timestamps in [since, until] (the log's
        own ISO form, which orders as text); the caller holds the connection's lock."""
        try:
            width: float | None = (datetime.fromisoformat(until) - datetime.fromisoformat(since)).total_seconds()  # fmt: skip
        except ValueError:  # not the log's form: summed, not kept
            width = None
        last = self._sums.get(width) if width is not None else None
        # the newest row, and the row the last sum counted as its newest (still there?)
        row = db.execute("SELECT rowid, id, (SELECT id FROM requests WHERE rowid = ?) FROM requests ORDER BY rowid DESC LIMIT 1", (last.rowid if last else 0,)).fetchone()  # fmt: skip
        newest, newest_id, counted = (int(row[0]), str(row[1]), row[2]) if row else (0, None, None)
        if last is None or not _movable(last, since, until, newest, counted):
            co2, cost = db.execute(f"{_SUM} WHERE timestamp >= ? AND timestamp <= ? AND rowid <= ?", (since, until, newest)).fetchone()  # fmt: skip
            moves = 0
        else:
            left = db.execute(f"{_SUM} WHERE timestamp >= ? AND timestamp < ? AND rowid <= ?", (last.since, since, last.rowid)).fetchone()  # fmt: skip
            # rows logged before the last sum with a timestamp after it (a clock ahead)
            later = db.execute(f"{_SUM} WHERE timestamp > ? AND timestamp <= ? AND rowid <= ?", (last.until, until, last.rowid)).fetchone()  # fmt: skip
            # the rows logged since, found by their rowids, not by the window's index
            new = db.execute(f"{_SUM} NOT INDEXED WHERE rowid > ? AND rowid <= ? AND timestamp >= ? AND timestamp <= ?", (last.rowid, newest, since, until)).fetchone()  # fmt: skip
            co2 = max(0.0, last.co2 - left[0] + later[0] + new[0])
            cost = max(0.0, last.cost - left[1] + later[1] + new[1])
            moves = last.moves + 1
        if width is not None:
            self._sums[width] = _Sum(since, until, newest, newest_id, float(co2), float(cost), moves)  # fmt: skip
        return float(co2), float(cost)


def _movable(last: _Sum, since: str, until: str, newest: int, counted: object) -> bool:
    """Whether ``last`` can be moved to [since, until]: the window moved forward without
    leaving it, no row it counted is gone (the newest rowid is not smaller, and the row at
    its newest rowid, ``counted`` its id now, is the one it counted), and it has not been
    moved ``RESUM_EVERY`` times."""
    return (
        last.since <= since <= last.until <= until
        and newest >= last.rowid
        and last.moves < RESUM_EVERY
        and (None if counted is None else str(counted)) == last.newest_id
    )
