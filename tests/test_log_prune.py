"""``routerllm prune``: a request log that only grew gets its old requests deleted, every
row that names them with them, the report of what is left unchanged."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from routerllm.carbon import log_prune
from routerllm.carbon.log_prune import prune
from routerllm.carbon.log_rows import REFUSED
from routerllm.carbon.meter import Measurement
from routerllm.carbon.request_log import RequestLog

from .conftest import cli_in_process
from .test_report_scaling import config_for, random_records


def logged(tmp_path: Path, n: int = 300) -> tuple[Path, Path, list[str]]:
    """A config and its log of ``n`` requests over five days (2026-11-28 on), some with
    escalations, a failed load, refused by the budgets once routed, feedback and a CSV
    note; and their timestamps in UTC."""
    config = config_for(tmp_path)
    path = tmp_path / "requests.sqlite"
    records = random_records(np.random.default_rng(5), n)
    part = Measurement("model_loading", 0.5, 1e-5, 5e-6, "test")
    with RequestLog(path) as log:
        for i, r in enumerate(records):
            if i % 7 == 0:
                r = dataclasses.replace(r, escalated={"model_loading": part})
            if i % 11 == 0:
                r = dataclasses.replace(r, load_error="corrupt GGUF", load_error_model="tiny-heavy", finish_reason="error")  # fmt: skip
            elif i % 13 == 0:  # refused by the budgets once routed: its routing alone
                routing = {"router_inference": Measurement("router_inference", 0.01, 1e-9, 5e-10, "test")}  # fmt: skip
                r = dataclasses.replace(r, components=routing, escalated={}, prompt_tokens=0, completion_tokens=0, finish_reason=REFUSED)  # fmt: skip
            log.append(r)
            if i % 5 == 0:
                log.add_feedback(r.id, 0.5)
        log._db.execute("INSERT INTO pending_csv VALUES (?, ?)", (records[0].id, "x.csv"))
        log._db.commit()
        stamps = [t for (t,) in log._db.execute("SELECT timestamp FROM requests ORDER BY timestamp")]  # fmt: skip
    return Path(config.source), path, stamps


def report(config: Path, *extra: str) -> dict[str, object]:
    done = cli_in_process("report", "--config", str(config), "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_pruning_keeps_the_report_of_what_is_left_and_no_row_of_what_went(tmp_path: Path) -> None:  # fmt: skip
    config, path, stamps = logged(tmp_path)
    cut = stamps[120]
    kept, whole = report(config, "--since", cut), report(config)
    done = cli_in_process("prune", "--config", str(config), "--before", cut)
    assert done.returncode == 0, done.stderr
    assert f"pruned 120 requests logged before {cut} (UTC); it holds 180 requests, from {cut} to {stamps[-1]}" in done.stdout  # fmt: skip
    after = report(config)
    for part in ("totals", "by_model", "by_router", "by_component", "by_day", "methods", "feedback", "versus_largest", "refused", "contended"):  # fmt: skip
        assert after[part] == kept[part], part
    # the refused requests before the cut went with the others, those after it stay
    assert 0 < after["refused"]["requests"] < whole["refused"]["requests"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT MIN(timestamp), COUNT(*) FROM requests").fetchone() == (cut, 180)  # fmt: skip
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if t != "requests"]  # fmt: skip
        assert len(tables) == 7  # every table but requests names a request
        for table in tables:
            orphans = f"SELECT COUNT(*) FROM {table} WHERE request_id NOT IN (SELECT id FROM requests)"  # fmt: skip
            assert db.execute(orphans).fetchone() == (0,), table
        assert db.execute("SELECT COUNT(*) FROM escalations").fetchone()[0] > 0  # some kept
        assert db.execute("SELECT COUNT(*) FROM cpu_shares").fetchone()[0] > 0


def test_the_last_two_days_are_refused_and_nothing_is_deleted(tmp_path: Path) -> None:
    config, path, stamps = logged(tmp_path, 20)
    recent = (datetime.now(timezone.utc) - timedelta(hours=47)).isoformat()
    done = cli_in_process("prune", "--config", str(config), "--before", recent)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: --before ") and done.stderr.count("\n") == 1, done.stderr
    assert "would prune requests of the last 2 days, which the daily budget window" in done.stderr  # fmt: skip
    done = cli_in_process("prune", "--config", str(config), "--before", "last week")
    assert done.returncode == 2 and "'last week' is not an ISO date or time" in done.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone() == (20,)


def test_a_missing_log_is_said_not_created(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    done = cli_in_process("prune", "--config", str(Path(config.source)), "--before", "2026-01-01")
    assert done.returncode == 2 and "there is no request log at" in done.stderr, done.stderr
    assert not Path(config.log.path).exists()


def test_pruning_in_batches_beside_a_writer_loses_none_of_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A server appending while the log is pruned: every batch its own transaction, each
    append waits its turn, none is lost and every old request goes."""
    monkeypatch.setattr(log_prune, "BATCH", 7)
    monkeypatch.setattr(log_prune, "PAUSE_S", 0.01)
    _, path, stamps = logged(tmp_path, 200)
    new = [dataclasses.replace(r, id=f"new-{i}", timestamp=datetime.now(timezone.utc).isoformat()) for i, r in enumerate(random_records(np.random.default_rng(1), 100))]  # fmt: skip
    with RequestLog(path) as writer, RequestLog(path) as pruner:
        appending = threading.Thread(target=lambda: [writer.append(r) for r in new])
        appending.start()
        done = prune(pruner, stamps[150])
        appending.join()
    assert done.deleted == 150
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM requests WHERE id LIKE 'new-%'").fetchone() == (100,)  # fmt: skip
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone() == (150,)


def test_a_request_pruned_while_a_system_remembers_it_cannot_be_rated(tmp_path: Path) -> None:
    """A running learning system remembers its last 10,000 requests in memory: one that
    ``routerllm prune`` (another process) deleted meanwhile is refused, as the README
    says, not stored as a score of no logged request (which no later prune deletes)."""
    from routerllm.exceptions import UnknownRequestError
    from routerllm.system import RouterLLM

    from .test_feedback_router import ladder, topic_prompts

    config = ladder(tmp_path)
    with RouterLLM(config) as system:
        pruned, kept = system.generate_batch(topic_prompts("parser", 2, 50))
        with RequestLog(config.log.path) as other:  # as `routerllm prune` would, days later
            other._db.execute("UPDATE requests SET timestamp = ? WHERE id = ?", ("2026-01-01T00:00:00.000000+00:00", pruned.request_id))  # fmt: skip
            other._db.commit()
            assert prune(other, "2026-02-01").deleted == 1
        with pytest.raises(UnknownRequestError, match="is not in the request log"):
            system.feedback(pruned.request_id, 1.0)
        system.feedback(kept.request_id, 1.0)  # a request still logged is rated
        assert [r[:2] for r in system.log.feedback()] == [(kept.request_id, 1.0)]
