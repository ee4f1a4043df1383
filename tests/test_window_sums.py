"""How the budgets read the log: window sums moved as the windows slide (the same as
summed whole, reading a few rows), and a spent window read only as far as needed."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from routerllm.carbon.request_log import RequestLog
from routerllm.carbon.window_sums import RESUM_EVERY

from .test_budgets import record

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
WINDOWS = (timedelta(hours=1), timedelta(days=1))


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _summed_whole(path: Path, since: str, until: str) -> tuple[float, float]:
    with sqlite3.connect(path) as db:
        co2, cost = db.execute(
            "SELECT COALESCE(SUM(co2_kg), 0), COALESCE(SUM(cost_usd), 0) FROM requests "
            "WHERE timestamp >= ? AND timestamp <= ?",
            (since, until),
        ).fetchone()
    db.close()
    return float(co2), float(cost)


def _copies(log: RequestLog, times: list[str], co2_kg: float) -> None:
    """Rows copied from the log's one row at each of ``times`` (a quick set-up)."""
    db = log._db  # noqa: SLF001 - set-up only
    cols = "prompt_sha256, prompt_chars, model, router, confidence, prompt_tokens, completion_tokens, latency_s, energy_kwh, cost_usd, tag, finish_reason"  # fmt: skip
    with db:
        db.executemany(
            f"INSERT INTO requests (id, timestamp, co2_kg, {cols}) SELECT ?, ?, ?, {cols} FROM requests LIMIT 1",  # fmt: skip
            ((f"copy{i}", t, co2_kg) for i, t in enumerate(times)),
        )


def _steps(log: RequestLog, work: Callable[[], object]) -> int:
    """The hundreds of SQLite steps ``work`` takes on the log's connection."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    log._db.set_progress_handler(count, 100)  # noqa: SLF001 - the log's own connection
    try:
        work()
    finally:
        log._db.set_progress_handler(None, 100)  # noqa: SLF001
    return steps[0]


def test_a_windows_sum_moved_is_the_sum_of_the_window(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite"
    log, other = RequestLog(path), RequestLog(path)  # another process logging to it
    rng = random.Random(0)
    now = T0
    for step in range(600):
        action = rng.random()
        if action < 0.55:  # a request logged now, a little late, or by a clock ahead
            offset = rng.choice([0.0, -rng.uniform(0, 7200), rng.uniform(0, 5400), -rng.uniform(0, 2 * 86400)])  # fmt: skip
            writer = log if rng.random() < 0.7 else other
            co2, cost = rng.uniform(0, 1e-3), rng.uniform(0, 1e-2)
            writer.append(record("m", now + timedelta(seconds=offset), co2_kg=co2, cost_usd=cost))
        elif action < 0.6 and step % 7 == 0:  # the newest row removed by hand
            with sqlite3.connect(path) as db:
                db.execute("DELETE FROM requests WHERE rowid = (SELECT MAX(rowid) FROM requests)")  # fmt: skip
            db.close()
        else:
            for width in WINDOWS:
                since, until = _when(now - width), _when(now)
                spent = log.spent(since, until)
                co2, cost = _summed_whole(path, since, until)
                assert (spent.co2_kg, spent.cost_usd) == (pytest.approx(co2, rel=1e-9, abs=1e-15), pytest.approx(cost, rel=1e-9, abs=1e-15))  # fmt: skip
        now += timedelta(seconds=rng.choice([0.0, 1.0, 60.0, 600.0, 3 * 3600.0, 2 * 86400.0]))
    log.close()
    other.close()


def test_a_moved_window_reads_the_rows_logged_since_not_the_whole_window(tmp_path: Path) -> None:
    """The budgets sum the hourly and daily windows twice a request: summed whole, a day
    of 500,000 requests took 0.17 s a sum. Counted in SQLite's steps (set-up copies a
    logged row 3,000 times into the last hour)."""
    path = tmp_path / "requests.sqlite"
    log = RequestLog(path)
    log.append(record("m", T0, co2_kg=1e-4, cost_usd=1e-3))
    _copies(log, [_when(T0 - timedelta(seconds=i)) for i in range(3000)], 1e-4)

    def steps_of_a_sum(now: datetime) -> int:
        return _steps(log, lambda: log.spent(_when(now - WINDOWS[1]), _when(now)))

    whole = steps_of_a_sum(T0)
    log.append(record("m", T0 + timedelta(seconds=2), co2_kg=1e-4, cost_usd=1e-3))
    moved = steps_of_a_sum(T0 + timedelta(seconds=2))
    assert whole > 200 and moved < whole / 20, (whole, moved)
    assert log.spent(_when(T0 + timedelta(seconds=2) - WINDOWS[1]), _when(T0 + timedelta(seconds=2))).co2_kg == pytest.approx(3002 * 1e-4)  # fmt: skip
    log.close()


def test_a_window_is_summed_whole_again_after_its_moves(tmp_path: Path) -> None:
    """Rows removed by another program (not the newest) stay counted until then."""
    path = tmp_path / "requests.sqlite"
    log = RequestLog(path)
    for i in range(3):
        log.append(record("m", T0 - timedelta(minutes=i), co2_kg=1.0))
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM requests WHERE rowid = (SELECT MIN(rowid) FROM requests)")
    db.close()
    assert log.spent(_when(T0 - WINDOWS[0]), _when(T0)).co2_kg == pytest.approx(2.0)
    log.append(record("m", T0, co2_kg=1.0))  # another row, so that the old sum is moved
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM requests WHERE rowid = (SELECT MIN(rowid) FROM requests)")
    db.close()
    now = T0
    for moves in range(RESUM_EVERY + 1):
        now += timedelta(microseconds=1)
        spent = log.spent(_when(now - WINDOWS[0]), _when(now)).co2_kg
        if moves < RESUM_EVERY - 1:
            assert spent == pytest.approx(3.0)  # the removed row still counted
    assert spent == pytest.approx(2.0)
    log.close()


def test_spending_read_in_chunks_is_every_row_in_order(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "requests.sqlite")
    log.append(record("m", T0 - timedelta(days=3), co2_kg=1.0))
    # groups of 7 rows at one time, across the chunks' ends; and in no order of rowid
    times = [_when(T0 - timedelta(seconds=(i // 7) * 13 % 401)) for i in range(1203)]
    _copies(log, times, 0.5)
    since = _when(T0 - timedelta(days=1))
    with sqlite3.connect(tmp_path / "requests.sqlite") as db:
        whole = db.execute("SELECT timestamp, co2_kg FROM requests WHERE timestamp >= ? ORDER BY timestamp, rowid", (since,)).fetchall()  # fmt: skip
    db.close()
    assert len(whole) == 1203
    for chunk in (1, 50, 7, 1203, 5000):
        assert [(s.timestamp, s.co2_kg) for s in log.spending(since, chunk)] == whole

    # each chunk sought where the last ended, not read from the window's start again
    def steps_in_chunks_of(chunk: int) -> int:
        return _steps(log, lambda: list(log.spending(since, chunk)))

    assert steps_in_chunks_of(50) < 2 * steps_in_chunks_of(5000)
    log.close()


def test_a_refusals_retry_time_reads_the_windows_first_rows_only(tmp_path: Path) -> None:
    """A spent window's retry time is found in its oldest rows: it read all the window's
    (a day of 500,000 requests: 2.8 s at each request refused, under the log's lock)."""
    from routerllm.carbon.budget import CarbonBudget
    from routerllm.config import BudgetConfig
    from routerllm.exceptions import BudgetExceededError

    log = RequestLog(tmp_path / "requests.sqlite")
    log.append(record("m", T0 - timedelta(days=3)))
    _copies(log, [_when(T0 - timedelta(seconds=3000 - i)) for i in range(3000)], 1e-3)
    config = BudgetConfig.model_validate({"co2_kg": {"hourly": 2.9895}})
    budget = CarbonBudget(config, log, lambda: T0)
    read: list[str] = []
    log._db.set_trace_callback(read.append)  # noqa: SLF001
    with pytest.raises(BudgetExceededError) as e:
        budget.choose("m", [], False, lambda m: None, {}, budget.status())
    log._db.set_trace_callback(None)  # noqa: SLF001
    # 3 kg spent of 2.9895: free once the oldest 11 g have left (the 11th row, at -2990 s)
    assert e.value.retry_at == _when(
        T0 - timedelta(seconds=3000 - 10) + timedelta(hours=1, microseconds=1)
    )
    assert sum("ORDER BY timestamp, rowid" in sql for sql in read) == 1  # one chunk
    log.close()


def test_rows_at_a_windows_first_and_last_instants_are_in_it_summed_whole_or_moved(
    tmp_path: Path,
) -> None:
    """[since, until] holds both ends, however the sum is made. Rows of 1, 2, 4 kg at
    T0 - 1 h, T0 and T0 - 1 s: the hour to T0 - 1 s holds 1 + 4. Then 8 and 16 kg at
    T0 - 1 h and T0, and the window moved 1 s on, to [T0 - 1 h, T0]: nothing left it (the
    1 kg is at its first instant), the 2 kg logged before the last sum joins it, the 4 kg
    at the last sum's end is not counted twice, the new rows at both ends join: 31 kg, as
    summed whole by a second log. The newest row removed by hand: 15 kg."""
    path = tmp_path / "requests.sqlite"
    log = RequestLog(path)
    for when, co2 in [(T0 - WINDOWS[0], 1.0), (T0, 2.0), (T0 - timedelta(seconds=1), 4.0)]:
        log.append(record("m", when, co2_kg=co2))

    def hour_to(log: RequestLog, end: datetime) -> float:
        return log.spent(_when(end - WINDOWS[0]), _when(end)).co2_kg

    assert hour_to(log, T0 - timedelta(seconds=1)) == 5.0
    log.append(record("m", T0 - WINDOWS[0], co2_kg=8.0))
    log.append(record("m", T0, co2_kg=16.0))
    assert hour_to(log, T0) == 31.0  # moved
    whole = RequestLog(path)
    assert hour_to(whole, T0) == 31.0  # summed whole
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM requests WHERE rowid = (SELECT MAX(rowid) FROM requests)")
    db.close()
    assert hour_to(log, T0) == 15.0
    log.close()
    whole.close()


def test_a_window_whose_rows_all_left_it_spent_nothing_not_a_rounding_below_zero(
    tmp_path: Path,
) -> None:
    """0.13 + 0.85 + 0.76 kg taken away row by row, as the window slides past them, is
    -1.1e-16 in floating point: a window spent 0 kg, never less."""
    log = RequestLog(tmp_path / "requests.sqlite")
    for i, co2 in enumerate([0.13, 0.85, 0.76], 1):
        log.append(record("m", T0 - WINDOWS[0] + timedelta(seconds=i), co2_kg=co2))
    spent = []
    for s in range(5):  # each second on, one row leaves, the sum moved
        end = T0 + timedelta(seconds=s)
        spent.append(log.spent(_when(end - WINDOWS[0]), _when(end)).co2_kg)
    assert spent == [1.74, 1.74, pytest.approx(0.85 + 0.76), pytest.approx(0.76), 0.0]
    log.close()


def test_a_row_logged_after_the_newest_was_removed_by_hand_is_counted(tmp_path: Path) -> None:
    """SQLite gives the next row the rowid of a newest row removed: that row, logged by
    another process after the window's last sum, is no row the sum counted. 1 + 2 kg in
    the hour; the 2 kg removed by hand, then 4 kg logged by another process: 5 kg, not the
    3 kg of the last sum (where the 4 kg went uncounted for 1,000 moves)."""
    path = tmp_path / "requests.sqlite"
    log, other = RequestLog(path), RequestLog(path)
    for co2 in (1.0, 2.0):
        log.append(record("m", T0 - timedelta(minutes=1), co2_kg=co2))

    def hour_to(end: datetime) -> float:
        return log.spent(_when(end - WINDOWS[0]), _when(end)).co2_kg

    assert hour_to(T0) == 3.0
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM requests WHERE rowid = (SELECT MAX(rowid) FROM requests)")
    db.close()
    other.append(record("m", T0, co2_kg=4.0))
    assert hour_to(T0 + timedelta(seconds=1)) == 5.0
    log.close()
    other.close()
