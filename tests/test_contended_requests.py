"""The share of the machine's CPU other processes used while a request was measured
(``carbon/cpu_share.py``) kept in the request log, each request's and each of its
parts', an older log read as it is and given the column and the parts' table (a process
of the older version still writing it going on), ``routerllm report`` counting
and naming the requests measured under contention, and the server's answers saying it.
Real SQLite logs; a real busy machine where its share is measured, a meter of one's own
where a test needs a share it can name."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.log_schema import TABLES
from routerllm.carbon.meter import Measurement, NullMeter
from routerllm.carbon.report import logged_report
from routerllm.carbon.report_text import report_lines
from routerllm.carbon.request_log import RequestLog
from routerllm.config import AppConfig, load_config

from .conftest import cli_in_process, schema_before_cpu_share, tiny_config_dict, write_config


def request(rid: str, when: str, *shares: float | None, model: str = "tiny-light") -> RequestRecord:  # fmt: skip
    """A request whose routing (1 s), loading (1 s) and generation (3 s) were measured
    while others used ``shares`` of the CPU (None: not known)."""
    parts = (("router_inference", 1.0, 1e-7), ("model_loading", 1.0, 1e-5), ("llm_inference", 3.0, 1e-4))  # fmt: skip
    components = {
        name: Measurement(name, seconds, kwh, kwh * 0.05, "codecarbon:load-estimate", share)
        for (name, seconds, kwh), share in zip(parts, shares, strict=True)
    }
    return RequestRecord(
        id=rid, timestamp=when, prompt_sha256="0" * 64, prompt_chars=20, model=model,
        router="rules", confidence=1.0, prompt_tokens=10, completion_tokens=5,
        latency_s=5.0, cost_usd=0.0, components=components, finish_reason="stop",
    )  # fmt: skip


def config_in(tmp_path: Path) -> AppConfig:
    return load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))


def test_each_request_and_each_of_its_parts_logs_its_cpu_share(tmp_path: Path) -> None:
    """Each part keeps its block's share, the request its parts' weighted by their
    durations (what one reading across them gives): the generation's 3 s at 80 %, the
    routing's 1 s at 0 %, the loading's not known, 60 %. A cascade's first models' part
    keeps its own. Read back, each part's is the one logged."""
    path = tmp_path / "requests.sqlite"
    busy = request("busy", "2026-12-07T10:00:00", 0.0, None, 0.8)
    first = Measurement("llm_inference", 1.0, 2e-5, 1e-6, "codecarbon:load-estimate", 0.5)
    busy = dataclasses.replace(busy, escalated={"llm_inference": first})
    with RequestLog(path) as log:
        log.append(busy)
        log.append(request("quiet", "2026-12-07T10:01:00", None, None, None))
        (read, quiet) = log.records()
    assert busy.others_cpu_share == pytest.approx(0.6) and busy.contended
    assert {n: m.others_cpu_share for n, m in read.components.items()} == {
        "router_inference": 0.0, "model_loading": None, "llm_inference": 0.8,
    }  # fmt: skip
    assert read.escalated["llm_inference"].others_cpu_share == 0.5
    assert read.others_cpu_share == pytest.approx(0.6) and read.contended
    assert quiet.others_cpu_share is None and not quiet.contended
    with sqlite3.connect(path) as db:  # as other programs read the log
        rows = db.execute("SELECT id, others_cpu_share FROM requests ORDER BY id").fetchall()
        assert rows == [("busy", pytest.approx(0.6)), ("quiet", None)]
        # the parts' whose share is known: of components (0) and escalations (1)
        sql = "SELECT request_id, component, escalated, others_cpu_share FROM cpu_shares ORDER BY escalated, component"  # fmt: skip
        assert db.execute(sql).fetchall() == [
            ("busy", "llm_inference", 0, 0.8), ("busy", "router_inference", 0, 0.0),
            ("busy", "llm_inference", 1, 0.5),
        ]  # fmt: skip


def _older_log(path: Path) -> None:
    """A log as RouterLLM wrote it before the CPU share was logged: one request, with a
    cascade's first model's part."""
    with sqlite3.connect(path) as db:
        db.executescript(schema_before_cpu_share())
        db.execute(
            f"INSERT INTO requests VALUES ({','.join('?' * 19)})",
            ("old", "2026-12-06T10:00:00.000000+00:00", "0" * 64, 10, "tiny-light", "rules",
             1.0, 5, 3, 1.0, 3e-6, 1.5e-7, 0.0, "", "stop", "FRA", "", 56.0, 12),
        )  # fmt: skip
        for table, kwh in (("components", 3e-6), ("escalations", 1e-6)):
            db.execute(
                f"INSERT INTO {table} VALUES (?,?,?,?,?,?)",
                ("old", "llm_inference", 1.0, kwh, kwh * 0.05, "codecarbon:load-estimate"),
            )


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}


def test_a_log_from_before_the_cpu_share_is_read_as_it_is_then_given_the_columns(
    tmp_path: Path,
) -> None:
    """Read (a report, ``records``) as it is, untouched, its request's share not
    recorded; opened for writing, its requests given the column and the log the parts'
    table, every value kept, its row's share NULL (not recorded), a new row's logged."""
    config = config_in(tmp_path)
    path = Path(config.log.path)
    _older_log(path)
    before, held = path.read_bytes(), _dump(path)
    with RequestLog(path, read_only=True) as log:
        (old,) = log.records()
    assert old.id == "old" and old.completion_chars == 12 and old.others_cpu_share is None
    assert old.escalated["llm_inference"].energy_kwh == 1e-6
    rep = logged_report(config)
    assert (rep.totals.requests, rep.contended.requests, rep.contended.not_recorded) == (1, 0, 1)
    assert not any("contention" in line for line in report_lines(rep))
    assert path.read_bytes() == before  # read only
    with RequestLog(path) as log:  # opened for writing: given the columns
        log.append(request("new", "2026-12-07T10:00:00", None, None, 0.9))
    with sqlite3.connect(path) as db:
        for table in ("requests", "cpu_shares"):
            assert [c[1] for c in db.execute(f"PRAGMA table_info({table})")] == TABLES[table]
    after = _dump(path)
    assert set(after) == set(held) | {"cpu_shares"}
    for table, rows in held.items():  # the old rows as they were, NULL in the new column
        old_rows = [r for r in after[table] if r[0] == "old"]
        if table == "requests":
            assert old_rows == [(*rows[0], None, None)]
        else:
            assert old_rows == rows, table
    assert after["cpu_shares"] == [("new", "llm_inference", 0, 0.9)]
    rep = logged_report(config)
    assert (rep.totals.requests, rep.contended.requests, rep.contended.not_recorded) == (2, 1, 1)
    # opened again for writing: nothing more to add
    with RequestLog(path) as log:
        assert [r.others_cpu_share for r in log.records()] == [None, 0.9]


def test_a_process_of_an_older_version_writing_the_log_goes_on_once_it_has_the_columns(
    tmp_path: Path,
) -> None:
    """A process of the version before (one connection, open before the log was given the
    share) goes on logging with its own statements, which name the requests' columns but
    not their parts' (six), and reads its parts six columns wide: its rows read as not
    recorded. (A seventh column of the parts would have failed each of its inserts.)"""
    path = tmp_path / "requests.sqlite"
    _older_log(path)
    older = sqlite3.connect(path)
    try:
        with RequestLog(path) as log:  # a newer process opens it for writing
            log.append(request("new", "2026-12-07T10:00:00", None, None, 0.9))
        columns = ", ".join(TABLES["requests"][:19])  # the older version's list
        with older:
            older.execute(
                f"INSERT INTO requests ({columns}) VALUES ({','.join('?' * 19)})",
                ("later", "2026-12-07T11:00:00.000000+00:00", "0" * 64, 10, "tiny-light",
                 "rules", 1.0, 5, 3, 1.0, 3e-6, 1.5e-7, 0.0, "", "stop", "FRA", "", 56.0, 12),
            )  # fmt: skip
            older.execute(
                "INSERT INTO components VALUES (?,?,?,?,?,?)",
                ("later", "llm_inference", 1.0, 3e-6, 1.5e-7, "codecarbon:load-estimate"),
            )
        assert all(len(row) == 6 for row in older.execute("SELECT * FROM components"))
    finally:
        older.close()
    with RequestLog(path, read_only=True) as log:
        shares = {r.id: r.others_cpu_share for r in log.records()}
    assert shares == {"old": None, "new": 0.9, "later": None}


def test_a_report_counts_and_names_the_requests_measured_under_contention(
    tmp_path: Path,
) -> None:
    """`routerllm report` (text and --json) counts the requests measured while others
    used over 25 % of the CPU, names the latest, and gives the totals without them: their
    energy may be overstated. Refused requests are apart, as in the totals; a share another
    program wrote that is no share (text, 2.0) is not recorded."""
    config = config_in(tmp_path)
    path = Path(config.log.path)
    busy = request("busy-1", "2026-12-07T10:00:00", 0.1, 0.9, 0.7, model="tiny-medium")
    quiet = request("quiet-1", "2026-12-07T10:01:00", 0.0, None, 0.2)
    unknown = request("unknown-1", "2026-12-07T10:02:00", None, None, None)
    refused = dataclasses.replace(request("refused-1", "2026-12-07T10:03:00", 0.9, 0.9, 0.9), finish_reason="refused:budget")  # fmt: skip
    odd = [request(f"odd-{k}", f"2026-12-07T10:0{4 + k}:00", 0.5, 0.5, 0.5) for k in range(2)]
    with RequestLog(path) as log:
        for r in (busy, quiet, unknown, refused, *odd):
            log.append(r)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE requests SET others_cpu_share = 'busy' WHERE id = 'odd-0'")
        db.execute("UPDATE requests SET others_cpu_share = 2.0 WHERE id = 'odd-1'")
    out = cli_in_process("report", "--config", str(config.source), "--json")
    assert out.returncode == 0, out.stderr
    contended = json.loads(out.stdout)["contended"]
    share = (0.1 * 1 + 0.9 * 1 + 0.7 * 3) / 5
    assert contended == {
        "above_share": 0.25, "requests": 1, "energy_kwh": pytest.approx(busy.energy_kwh),
        "co2_kg": pytest.approx(busy.co2_kg), "not_recorded": 3,
        "latest": [{"request_id": "busy-1", "timestamp": "2026-12-07T10:00:00.000000+00:00",
                    "model": "tiny-medium", "others_cpu_share": pytest.approx(share)}],
    }  # fmt: skip
    text = cli_in_process("report", "--config", str(config.source))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("measured under contention"))
    rest = quiet.energy_kwh + unknown.energy_kwh + 2 * odd[0].energy_kwh
    assert lines[at] == (
        "measured under contention: 1 request, while other processes used over 25% of the "
        "machine's CPU: their energy and CO2 may be overstated (a load-based estimate bills "
        f"the others' work) and their time too; without them: energy {_energy(rest)}  "
        f"CO2 {_co2(rest * 0.05)}"
    )
    assert lines[at + 1] == "  busy-1 (tiny-medium, 62%)"


def _energy(kwh: float) -> str:
    from routerllm.carbon.units import energy

    return energy(kwh)


def _co2(kg: float) -> str:
    from routerllm.carbon.units import co2

    return co2(kg)


def test_a_report_names_the_latest_contended_requests_of_many(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    with RequestLog(Path(config.log.path)) as log:
        for k in range(12):
            log.append(request(f"busy-{k:02d}", f"2026-12-07T10:{k:02d}:00", None, None, 0.5))
    rep = logged_report(config)
    assert rep.contended.requests == 12
    assert [r["request_id"] for r in rep.contended.latest] == [f"busy-{k:02d}" for k in range(2, 12)]  # fmt: skip
    lines = report_lines(rep)
    at = next(i for i, line in enumerate(lines) if line.startswith("measured under contention"))
    assert lines[at + 1].startswith("  the latest 10: busy-02 (tiny-light, 50%), busy-03 ")
    # every request contended: no figure without them, not "0 Wh"
    assert lines[at].endswith("and their time too; no request was measured without it"), lines[at]


def test_with_carbon_tracking_off_a_contended_requests_time_is_said_overstated(
    tmp_path: Path,
) -> None:
    config = config_in(tmp_path)
    off = request("off", "2026-12-07T10:00:00", None, None, 0.5)
    off = dataclasses.replace(off, components={n: dataclasses.replace(m, energy_kwh=0.0, co2_kg=0.0, method="none") for n, m in off.components.items()})  # fmt: skip
    with RequestLog(Path(config.log.path)) as log:
        log.append(off)
    rep = logged_report(config)
    assert rep.as_dict()["contended"]["energy_kwh"] is None
    line = next(line for line in report_lines(rep) if line.startswith("measured under contention"))
    assert line.endswith("of the machine's CPU: their time may be overstated"), line


@contextmanager
def _busy_loops(n: int) -> Iterator[None]:
    from .test_cpu_share import _busy_loops as loops

    with loops(n):
        yield


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="reads /proc/stat")
def test_a_block_measured_among_busy_processes_is_logged_and_reported_contended(
    tmp_path: Path,
) -> None:
    """A real meter's block among as many busy loops as cores: its share, over 25 %, is
    in the log, and the report names its request."""
    from .test_cpu_share import _spin_here

    config = config_in(tmp_path)
    meter = NullMeter()
    with _busy_loops(os.cpu_count() or 1), meter.measure("llm_inference") as slot:
        _spin_here(0.6)
    record = dataclasses.replace(
        request("spun", "2026-12-07T10:00:00", None, None, None),
        components={"llm_inference": slot.result},
    )
    with RequestLog(Path(config.log.path)) as log:
        log.append(record)
        (read,) = log.records()
    assert read.components["llm_inference"].others_cpu_share == slot.result.others_cpu_share
    assert (
        read.contended and read.others_cpu_share == slot.result.others_cpu_share
    )  # its one part's
    assert [r["request_id"] for r in logged_report(config).contended.latest] == ["spun"]


class _BusyMachine(NullMeter):
    """A meter of one's own (``RouterLLM(meter=...)``) on a machine whose other
    processes used 70 % of the CPU during every block: a share the test can name,
    whatever this machine's load is now (the one above measures a real one)."""

    @contextmanager
    def measure(self, component: str) -> Iterator[object]:  # type: ignore[override]
        with super().measure(component) as slot:
            yield slot
        slot.result = dataclasses.replace(slot.result, others_cpu_share=0.7)


def test_the_servers_answer_says_its_cpu_share_as_its_logged_row_and_the_report(
    tmp_path: Path,
) -> None:
    """The ``routerllm`` field of a served answer (as ``route --json``) gives the request's
    share and whether it was contended: the logged row's, which the report names; route's
    text says it on a line of its own."""
    from routerllm.route_cli import _result_lines
    from routerllm.system import RouterLLM

    from .test_server import chat, running

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip
    with RouterLLM(config, meter=_BusyMachine()) as system, running(system) as base:
        facts = chat(base, "Name a sorting algorithm.")["routerllm"]
        (row,) = system.log.records()
        routed = system.generate("What is 2+2?")
    assert facts["others_cpu_share"] == pytest.approx(0.7) and facts["contended"] is True
    assert facts["request_id"] == row.id and row.others_cpu_share == pytest.approx(0.7)
    assert [r["request_id"] for r in logged_report(config).contended.latest] == [row.id, routed.request_id]  # fmt: skip
    assert routed.to_dict()["others_cpu_share"] == pytest.approx(0.7)
    assert "     measured under contention: other processes used 70% of the machine's CPU; its energy and time may be overstated" in _result_lines(1, routed, "light")  # fmt: skip


class _BusyWhileLoading(NullMeter):
    """A meter of one's own whose other processes used 80 % of the CPU while a model
    loaded, 10 % while it routed and generated: one part contended, not the others."""

    SHARES = {"router_inference": 0.1, "model_loading": 0.8, "llm_inference": 0.1}

    @contextmanager
    def measure(self, component: str) -> Iterator[object]:  # type: ignore[override]
        with super().measure(component) as slot:
            yield slot
        slot.result = dataclasses.replace(slot.result, others_cpu_share=self.SHARES[component])


def test_route_json_and_the_server_say_which_part_was_measured_under_contention(
    tmp_path: Path,
) -> None:
    """``route --json`` and the server's ``routerllm`` field gave the request's share and
    ``contended`` only, though the log keeps each part's (``cpu_shares``): a user could
    not tell that the loading, not the generation, ran among busy processes. Each
    component now gives its own share and ``contended``, the log's row of that part;
    a part whose share is not known (a model loaded already: no block) gives null."""
    from routerllm.system import RouterLLM

    from .test_server import chat, running

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip
    with RouterLLM(config, meter=_BusyWhileLoading()) as system, running(system) as base:
        served = chat(base, "Name a sorting algorithm.")["routerllm"]
        routed = system.generate("Name a sorting algorithm.").to_dict()  # route --json's
    assert served["model"] == routed["model"]  # loaded by the first: the second loads nothing
    with sqlite3.connect(config.log.path) as db:
        logged = {
            (rid, part): share
            for rid, part, share in db.execute(
                "SELECT request_id, component, others_cpu_share FROM cpu_shares WHERE escalated = 0"
            )  # fmt: skip
        }
    for facts in (served, routed):
        for part, figures in facts["components"].items():
            share = logged.get((facts["request_id"], part))
            assert figures["others_cpu_share"] == share, (part, facts["request_id"])
            assert figures["contended"] is (share is not None and share > 0.25)
    loading = served["components"]["model_loading"]
    # a weighted mean of its vocabulary read's 0.8 and its load's: 0.8 to a rounding
    assert (loading["others_cpu_share"], loading["contended"]) == (pytest.approx(0.8), True)
    assert served["components"]["llm_inference"]["contended"] is False
    assert routed["components"]["model_loading"] | {"duration_s": 0} == {
        "energy_kwh": None, "co2_kg": None, "duration_s": 0, "others_cpu_share": None, "contended": False,
    }  # fmt: skip
    assert routed["components"]["llm_inference"]["others_cpu_share"] == 0.1


def test_blocks_of_one_share_are_that_share_exactly_and_a_mean_stays_within_theirs() -> None:
    """A weighted mean of equal shares differed from them in the last bit (three blocks at
    0.1 gave 0.10000000000000002), so a HumanEval store, a report and a request's JSON said
    so and a check of equality failed; the mean of unequal shares stays within theirs."""
    from routerllm.carbon.meter import weighted_cpu_share

    blocks = [(0.013, 0.1), (1.7, 0.1), (0.29, 0.1), (0.5, None)]
    assert sum(s * share for s, share in blocks[:3]) / sum(s for s, _ in blocks[:3]) != 0.1
    assert weighted_cpu_share(blocks) == 0.1
    assert weighted_cpu_share([(0.3, 0.8), (0.7, 0.8)]) == 0.8
    assert weighted_cpu_share([(1.0, 0.2), (3.0, 0.6)]) == pytest.approx(0.5)
    assert weighted_cpu_share([(0.0, 0.2), (0.0, 0.6)]) == 0.6  # no time: the highest
    assert weighted_cpu_share([(1.0, None)]) is None and weighted_cpu_share([]) is None
