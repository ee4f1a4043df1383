"""The streamed report (``logged_report`` through ``LogFigures``) adds up every record of
random logs: cache hits, several models, routers, tags and days, failed and unmeasured
meters, estimates, answers cut short, a component of an unknown name, scores, parts
measured while other processes loaded the CPU."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.carbon.log_rows import RequestRecord, utc_timestamp
from routerllm.carbon.meter import CACHED, Measurement
from routerllm.carbon.report import logged_report, summarize
from routerllm.carbon.report_text import report_lines
from routerllm.carbon.request_log import RequestLog
from routerllm.config import AppConfig, load_config

from .conftest import tiny_config_dict, write_config

MODELS = ("tiny-light", "tiny-medium", "tiny-heavy", "retired")  # one no longer configured
ROUTERS = ("rules", "fixed", "largest", "classifier", "ensemble")
TAGS = ("", "", "server", "demo", "demo-baseline")
METHODS = (
    "codecarbon:measured",
    "codecarbon:measured",
    "codecarbon:load-estimate",
    "estimate:per-token",
    "codecarbon:failed",
    "none",
)
START = datetime(2026, 11, 28, 23, 0, tzinfo=timezone.utc)


def random_records(rng: np.random.Generator, n: int) -> list[RequestRecord]:
    """``n`` requests over five days, oldest first, some repeating an earlier prompt."""
    prompts = [uuid.UUID(int=int(rng.integers(2**62))).hex * 2 for _ in range(max(5, n // 20))]
    out = []
    when = START
    for i in range(n):
        when += timedelta(seconds=float(rng.exponential(1200)))
        model = str(rng.choice(MODELS))
        cached = rng.random() < 0.15
        method = str(rng.choice(METHODS))

        def part(name: str, scale: float, m: str = method, k: int = i) -> Measurement:
            kwh = float(rng.random() * scale) if rng.random() > 0.1 else 0.0
            # the share of the CPU others used: of every other part, from 0 to 1 (none
            # drawn from rng: the records' other figures are those drawn before it was)
            busy = (k + len(name)) % 7 / 6 if (k + len(name)) % 2 else None
            return Measurement(name, float(rng.random() * 2), kwh, kwh * float(rng.uniform(0.02, 0.6)), m, busy)  # fmt: skip

        components = {"router_inference": part("router_inference", 1e-6)}
        if cached:
            components["model_loading"] = Measurement("model_loading", 0.0, 0.0, 0.0, CACHED)
            components["llm_inference"] = Measurement("llm_inference", 0.0, 0.0, 0.0, CACHED)
        else:
            if rng.random() < 0.8:
                components["model_loading"] = part("model_loading", 3e-4)
            if rng.random() < 0.9:
                components["llm_inference"] = part("llm_inference", 1e-4)
            if rng.random() < 0.05:
                components["judge"] = part("judge", 1e-5)  # a component of another name
        if rng.random() < 0.02:
            components = {}  # logged without any measurement
        stamp = when if rng.random() > 0.1 else when.astimezone(timezone(timedelta(hours=5)))
        out.append(
            RequestRecord(
                id=f"req-{i:05d}",
                timestamp=stamp.isoformat(),
                prompt_sha256=str(rng.choice(prompts)),
                prompt_chars=int(rng.integers(1, 900)),
                model=model,
                router=str(rng.choice(ROUTERS)),
                confidence=float(rng.random()),
                prompt_tokens=int(rng.integers(1, 400)),
                completion_tokens=int(rng.integers(0, 300)),
                latency_s=float(rng.exponential(2.0)),
                cost_usd=float(rng.random() * 1e-3) if rng.random() < 0.3 else 0.0,
                components=components,
                tag=str(rng.choice(TAGS)),
                finish_reason=str(rng.choice(["", "stop", "length", "length", "error"])),
            )
        )
    return out


def config_for(tmp_path: Path, **overrides: Any) -> AppConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return load_config(write_config(tmp_path, tiny_config_dict(tmp_path, **overrides)))


def as_text(rep: Any) -> str:
    return json.dumps(rep.as_dict(), indent=1) + "\n" + "\n".join(report_lines(rep))


def _sums(records: list[RequestRecord]) -> dict[str, float]:
    """The report's figures of ``records``, added up here without the report's code."""
    return {
        "requests": len(records),
        "failed": sum(r.finish_reason == "error" for r in records),
        "cancelled": sum(r.finish_reason == "cancelled" for r in records),
        "cut": sum(r.finish_reason == "length" for r in records),
        # /metrics' cache hits: the answers whose generation is the cache's
        "cached": sum(
            r.components["llm_inference"].method == CACHED
            for r in records
            if "llm_inference" in r.components
        ),  # fmt: skip
        "prompt_tokens": sum(r.prompt_tokens for r in records),
        "completion_tokens": sum(r.completion_tokens for r in records),
        "energy_kwh": sum(m.energy_kwh for r in records for m in r.components.values()),
        "co2_kg": sum(m.co2_kg for r in records for m in r.components.values()),
        "cost_usd": sum(r.cost_usd for r in records),
        "latency_s": sum(r.latency_s for r in records),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_streamed_report_adds_up_every_record(tmp_path: Path, seed: int) -> None:
    """The report, streamed from the log, against sums over the records it was written
    from: in total, per model, router and component, for every tag. (When streaming
    replaced holding every record, its JSON and text were checked byte-identical to the
    old report's on these logs, for three configs and five selections.)"""
    rng = np.random.default_rng(seed)
    records = random_records(rng, 400)
    log_path = tmp_path / "requests.sqlite"
    with RequestLog(log_path) as log:
        for r in records:
            log.append(r)
        for r in records[::7]:
            log.add_feedback(r.id, float(rng.random()))
    configs = [
        config_for(
            tmp_path / "cache-off", cache={"enabled": False, "max_entries": 40, "ttl_s": 86400}
        ),  # fmt: skip
        config_for(
            tmp_path / "budgets",
            budgets={"co2_kg": {"per_request": 2e-5, "daily": 1e-4}, "cost_usd": {"hourly": 1e-3}},
            manager={"memory_budget_gb": 0.15},
        ),
    ]
    for config in configs:
        for tag in (None, "", "demo", "server"):
            chosen = [r for r in records if tag is None or r.tag == tag]
            rep = logged_report(config, None, tag, log_path).as_dict()
            assert rep["totals"] == pytest.approx(_sums(chosen), rel=1e-12), (config.source, tag)
            for key, field in (("by_model", "model"), ("by_router", "router")):
                names = {getattr(r, field) for r in chosen}
                assert set(rep[key]) == names
                for name in names:
                    group = [r for r in chosen if getattr(r, field) == name]
                    assert rep[key][name] == pytest.approx(_sums(group), rel=1e-12)
            parts = {n for r in chosen for n in r.components}
            assert set(rep["by_component"]) == parts
            for name in parts:
                kwh = sum(r.components[name].energy_kwh for r in chosen if name in r.components)
                assert rep["by_component"][name]["energy_kwh"] == pytest.approx(kwh, rel=1e-12)
            assert sum(d["requests"] for d in rep["by_day"].values()) == len(chosen)
            # those measured while other processes used over 25% of the CPU, named
            busy = [r for r in chosen if r.contended]
            assert 0 < len(busy) < len(chosen) - rep["contended"]["not_recorded"]
            assert (
                rep["contended"]
                == {
                    "above_share": 0.25,
                    "requests": len(busy),
                    "energy_kwh": pytest.approx(_sums(busy)["energy_kwh"], rel=1e-12),
                    "co2_kg": pytest.approx(_sums(busy)["co2_kg"], rel=1e-12),
                    "not_recorded": sum(r.others_cpu_share is None for r in chosen),
                    "latest": [
                        {
                            "request_id": r.id,
                            "timestamp": utc_timestamp(r.timestamp),
                            "model": r.model,
                            "others_cpu_share": pytest.approx(r.others_cpu_share, rel=1e-12),
                        }  # fmt: skip
                        for r in sorted(busy, key=lambda r: utc_timestamp(r.timestamp))[-10:]
                    ],
                }
            )
            rated = [r for r in records[::7] if tag is None or r.tag == tag]
            assert {m: f["count"] for m, f in rep["feedback"].items()} == {
                m: sum(r.model == m for r in rated) for m in {r.model for r in rated}
            }
    # the rules fire on these logs; their repeats come after their model was loaded again
    # (4 requests in 5 load theirs, as new processes would): no cache would answer them
    recs = logged_report(configs[0], None, None, log_path).recommendations
    assert {"model_loading", "cut_answers", "estimated_energy"} <= {r.kind for r in recs}
    assert "repeated_prompts" not in {r.kind for r in recs}


def test_summarize_of_live_results_adds_them_up(tmp_path: Path) -> None:
    records = random_records(np.random.default_rng(7), 300)
    config = config_for(tmp_path)
    for models in (None, config.models):
        # the records' failed requests (finish reason "error") too, as the logged report
        rep = summarize(records, models, "FRA").as_dict()
        assert rep["totals"] == pytest.approx(_sums(records), rel=1e-12)
        busy = [r for r in records if r.contended]
        assert rep["contended"]["requests"] == len(busy) > 0
        assert [r["request_id"] for r in rep["contended"]["latest"]] == [r.id for r in busy[-10:]]


def logged_records(tmp_path: Path, seed: int, n: int) -> tuple[list[RequestRecord], Path, AppConfig]:  # fmt: skip
    """``n`` random records (``seed``) written to a request log, and a config to report it."""
    records = random_records(np.random.default_rng(seed), n)
    log_path = tmp_path / "requests.sqlite"
    with RequestLog(log_path) as log:
        for r in records:
            log.append(r)
    return records, log_path, config_for(tmp_path / "cfg")


def test_a_damaged_row_is_named(tmp_path: Path) -> None:
    import sqlite3

    from routerllm.exceptions import RequestLogError

    records, log_path, config = logged_records(tmp_path, 3, 50)
    with sqlite3.connect(log_path) as db:
        db.execute("UPDATE requests SET latency_s = 'slow' WHERE id = 'req-00030'")
        db.execute("UPDATE components SET co2_kg = x'00' WHERE request_id = 'req-00040'")
    with pytest.raises(RequestLogError) as err:
        logged_report(config, None, None, log_path)
    message = str(err.value)  # the first damaged row, as the report of every record named it
    assert "req-00030" in message or "req-00040" in message
    assert "not a number" in message and "\n" not in message
    # a request the selection leaves out is not read
    later = sorted(r.timestamp for r in records)[45]
    with sqlite3.connect(log_path) as db:
        db.execute("UPDATE components SET co2_kg = 0.0 WHERE request_id = 'req-00040'")
    assert "req-00030" in str(pytest.raises(RequestLogError, logged_report, config, None, None, log_path).value)  # fmt: skip
    logged_report(config, later, None, log_path)


def test_a_failed_request_is_no_answer_to_the_cut_answers_figures() -> None:
    """A request no model answered (finish reason "error") counts as failed, with its
    load's energy, and not as an answer whose finish reason is known."""
    from routerllm.carbon.log_figures import LogFigures

    fig = LogFigures()
    load = ("model_loading", 0.5, 2e-6, 1e-7, "codecarbon:load-estimate")
    fig.add("2026-12-03T10:00:00", "h", "m", "rules", 0, 0, 0.5, 0.0, "", "error", [load])
    fig.add("2026-12-03T10:01:00", "h", "m", "rules", 5, 8, 0.2, 0.0, "", "length", [])
    assert (fig.totals.requests, fig.totals.failed, fig.by_model["m"].failed) == (2, 1, 1)
    assert fig.totals.energy_kwh == 2e-6
    assert (fig.cut["m"].known, fig.cut["m"].cut) == (1, 1)


def test_an_answer_cancelled_half_way_is_no_answer_to_the_cut_answers_the_rate_or_the_cache() -> None:  # fmt: skip
    """An answer stopped because its client left (finish reason "cancelled"): counted as
    an answer whose finish reason is known (diluting the share cut at max_new_tokens),
    its 2 tokens carrying the prompt's energy in the rate per output token, and left in
    the replayed cache, though it is never cached; its energy is spent all the same."""
    from routerllm.carbon.log_figures import LogFigures
    from routerllm.carbon.log_tallies import CacheReplay

    fig = LogFigures(replay=CacheReplay(max_entries=10, ttl_s=3600))
    stopped = ("llm_inference", 0.5, 5e-6, 2e-7, "codecarbon:load-estimate")
    fig.add("2026-12-03T10:00:00", "h", "m", "rules", 9, 2, 0.5, 0.0, "", "cancelled", [stopped])
    answer = ("llm_inference", 0.2, 1e-6, 4e-8, "codecarbon:load-estimate")
    fig.add("2026-12-03T10:01:00", "h", "m", "rules", 9, 10, 0.2, 0.0, "", "length", [answer])
    assert (fig.cut["m"].known, fig.cut["m"].cut) == (1, 1)
    assert fig.kwh_per_output_token() == {"m": pytest.approx(1e-7)}
    assert fig.replay is not None and fig.replay.hits == 0  # nothing cached to repeat
    assert (fig.totals.requests, fig.totals.failed) == (2, 0)
    assert fig.totals.energy_kwh == pytest.approx(6e-6)


def test_a_generation_that_failed_midway_teaches_no_rate_per_output_token() -> None:
    """Its energy, with no token written, is no part of the model's rate per token."""
    from routerllm.carbon.log_figures import LogFigures

    fig = LogFigures()
    spent = ("llm_inference", 0.5, 5e-6, 2e-7, "codecarbon:load-estimate")
    fig.add("2026-12-03T10:00:00", "h", "m", "rules", 9, 0, 0.5, 0.0, "", "error", [spent])
    answer = ("llm_inference", 0.2, 1e-6, 4e-8, "codecarbon:load-estimate")
    fig.add("2026-12-03T10:01:00", "h", "m", "rules", 5, 10, 0.2, 0.0, "", "stop", [answer])
    assert fig.kwh_per_output_token() == {"m": pytest.approx(1e-7)}
    assert fig.totals.energy_kwh == pytest.approx(6e-6)


@pytest.mark.parametrize(
    ("table", "column", "name"),
    [
        ("requests", "model", "model"),
        ("requests", "router", "router"),
        ("requests", "tag", "tag"),
        ("requests", "finish_reason", "finish_reason"),
        ("components", "component", "component"),
        ("components", "method", "router_inference method"),
    ],
)
def test_a_logged_text_that_is_not_text_is_a_clear_error(
    tmp_path: Path, table: str, column: str, name: str
) -> None:
    """A row another program stored bytes in (a BLOB where the log keeps text): until
    2026-12-04 the report's table raised a bare TypeError (bytes.__format__), a traceback
    from ``routerllm report``, as a number that is not one no longer does."""
    import sqlite3

    from routerllm.exceptions import RequestLogError

    _, log_path, config = logged_records(tmp_path, 4, 5)
    where = "id = 'req-00002'" if table == "requests" else "request_id = 'req-00002' AND component = 'router_inference'"  # fmt: skip
    with sqlite3.connect(log_path) as db:
        assert db.execute(f"UPDATE {table} SET {column} = x'ff00' WHERE {where}").rowcount == 1
    with pytest.raises(RequestLogError) as err:
        report_lines(logged_report(config, None, None, log_path))
    message = str(err.value)
    assert f"request req-00002's {name} is b'\\xff\\x00', not text" in message, message
    assert "changed outside RouterLLM" in message and "\n" not in message
    # the Python API's records too
    with RequestLog(log_path, read_only=True) as log, pytest.raises(RequestLogError, match="req-00002's .* not text"):  # fmt: skip
        list(log.records())


def test_the_replayed_cache_keeps_max_entries_prompts_each_for_ttl_s_as_the_cache_does() -> None:
    """As ``ResponseCache``: an answer 60 s old is still fresh for a TTL of 60 s (1 us
    more and it is not), and 2 entries hold 2 prompts: a and b asked again are both hits, 1.5e-6
    kWh saved each (their energy less the routing's 5e-7)."""
    from routerllm.carbon.log_tallies import CacheReplay

    parts = [("router_inference", 0.1, 5e-7, 0.0, "test"), ("llm_inference", 0.5, 1.5e-6, 0.0, "test")]  # fmt: skip
    replay = CacheReplay(max_entries=2, ttl_s=60)
    for t, sha in [("10:00:00", "a"), ("10:00:30", "b"), ("10:01:00", "a"), ("10:01:30", "b")]:
        replay.add(f"2026-12-03T{t}+00:00", sha, "m", 2e-6, parts)
    assert replay.hits == 2 and replay.saved_kwh.total() == pytest.approx(3e-6)
    replay.add("2026-12-03T10:01:30.000001+00:00", "b", "m", 2e-6, parts)  # 1 us too late
    assert replay.hits == 2


def test_a_cached_answer_counts_as_it_is_on_the_largest_model() -> None:
    """Answered from the cache on a small model, it would have been on the largest too:
    its 0 kWh counts as it is, not its 10 tokens at the largest's rate."""
    from routerllm.carbon.log_figures import LogFigures

    fig = LogFigures(largest="big")
    cached = ("llm_inference", 0.0, 0.0, 0.0, CACHED)
    fig.add("2026-12-03T10:00:00", "h", "small", "rules", 5, 10, 0.1, 0.0, "", "stop", [cached])
    assert fig.estimate_largest(1e-6, 5e-7) == (0.0, 0.0)


def test_a_remote_answer_of_no_tokens_is_known_to_have_spent_nothing() -> None:
    """A remote model without per-token figures logs 0 kWh: unknown for an answer of 10
    tokens (left out of the comparison with the largest model), but 0 for one of none."""
    from routerllm.carbon.log_figures import LogFigures
    from routerllm.carbon.meter import PER_TOKEN

    fig = LogFigures(largest="big")
    remote = ("llm_inference", 0.3, 0.0, 0.0, PER_TOKEN)
    fig.add("2026-12-03T10:00:00", "h", "remote", "rules", 5, 10, 0.3, 0.0, "", "stop", [remote])
    fig.add("2026-12-03T10:01:00", "h", "remote", "rules", 5, 0, 0.3, 0.0, "", "stop", [remote])
    assert (fig.left_out, len(fig.measured_tokens)) == (1, 1)


def _report_steps(monkeypatch: pytest.MonkeyPatch, *args: Any) -> tuple[int, dict[str, Any]]:
    """``logged_report(*args)`` and the work SQLite did for it: thousands of steps of its
    virtual machine, counted on the connection the report reads the log through."""
    import sqlite3

    from routerllm.carbon import log_schema

    steps = [0]

    def counted(path: Path, impatient: bool = False) -> sqlite3.Connection:
        conn = real(path, impatient)
        conn.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 1000)
        return conn

    real = log_schema.open_read_only
    monkeypatch.setattr(log_schema, "open_read_only", counted)
    rep = logged_report(*args).as_dict()
    monkeypatch.setattr(log_schema, "open_read_only", real)
    return steps[0], rep


def test_a_report_since_a_recent_time_reads_that_window_not_the_whole_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`report --since` of a day reads that day's requests, their components and scores,
    not every older one's: the check for damaged components scanned all of them, 2.4 s of
    CPU of the 2.5 s a report of one day took on a log of 1,000,000 requests over a year."""
    import sqlite3

    records, log_path, config = logged_records(tmp_path, 5, 80)
    with RequestLog(log_path) as log:
        for r in records[::3]:
            log.add_feedback(r.id, 0.5)
    since = sorted(utc_timestamp(r.timestamp) for r in records)[60]
    steps, rep = _report_steps(monkeypatch, config, since, None, log_path)
    # a year earlier, 40 times as many requests, of a model no longer configured (the
    # predictor, which reads each configured model's latest requests, reads none of them)
    with sqlite3.connect(log_path) as db:
        for k in range(40):
            old = f"-old{k}"
            db.execute("INSERT INTO requests SELECT id || ?, '2025' || substr(timestamp, 5), prompt_sha256, prompt_chars, 'retired', router, confidence, prompt_tokens, completion_tokens, latency_s, energy_kwh, co2_kg, cost_usd, tag, finish_reason, grid_country, grid_region, grid_g_per_kwh, completion_chars, others_cpu_share, model_loaded FROM requests WHERE id NOT LIKE '%-old%'", (old,))  # fmt: skip
            db.execute("INSERT INTO components SELECT request_id || ?, component, duration_s, energy_kwh, co2_kg, method FROM components WHERE request_id NOT LIKE '%-old%'", (old,))  # fmt: skip
            db.execute("INSERT INTO feedback SELECT request_id || ?, score, timestamp FROM feedback WHERE request_id NOT LIKE '%-old%'", (old,))  # fmt: skip
    grown, rep_grown = _report_steps(monkeypatch, config, since, None, log_path)
    assert rep_grown == rep
    # before: 11 -> 332 (the components of every request), then 6 -> 19 (every request,
    # for the scores'); now 6 -> 6
    assert grown <= 1.2 * steps + 2, (steps, grown)


def test_the_scaling_benchmark_grows_its_log_to_each_size(tmp_path: Path) -> None:
    """benchmarks/report_scaling.py copied its seed rows with the log's 15 columns of
    before 2026-12-06 (a request's grid since): any size above its 500 seed rows, its
    defaults too, failed with "table requests has 18 columns but 15 values were
    supplied" before a report was timed."""
    from .conftest import benchmark_in_process

    out = benchmark_in_process("report_scaling", "--sizes", "1200", "--repeat", "1", "--json", tmpdir=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    assert [r["rows"] for r in json.loads(out.stdout)["results"]] == [1200]


def test_the_scaling_benchmarks_grown_log_copies_each_request_with_its_components(tmp_path: Path) -> None:  # fmt: skip
    """Its log grown to a size by copies of the seed requests: each copy a new id, the
    seed's figures and its components with it, so the report adds up the copies."""
    import sqlite3

    grow = _grow()
    records, log_path, config = logged_records(tmp_path, 11, 40)
    grow(log_path, 130)
    with sqlite3.connect(log_path) as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM requests").fetchone() == (130, 130)  # fmt: skip
        orphans = "SELECT COUNT(*) FROM components WHERE request_id NOT IN (SELECT id FROM requests)"  # fmt: skip
        assert db.execute(orphans).fetchone() == (0,)
        per_request = db.execute("SELECT r.id, COUNT(c.component) FROM requests r LEFT JOIN components c ON c.request_id = r.id GROUP BY r.id").fetchall()  # fmt: skip
    parts = {r.id: len(r.components) for r in records}
    assert all(n == parts[rid.split("-")[0] + "-" + rid.split("-")[1]] for rid, n in per_request)
    totals = logged_report(config, None, None, log_path).as_dict()["totals"]
    assert totals["requests"] == 130


def _python_calls(config: AppConfig, log_path: Path) -> int:
    """The Python functions called (a generator resumed counts) while the report of the
    log at ``log_path`` is made: what each request costs it beyond SQLite's reading."""
    import sys

    calls = [0]

    def count(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            calls[0] += 1

    sys.setprofile(count)
    try:
        logged_report(config, None, None, log_path)
    finally:
        sys.setprofile(None)
    return calls[0]


def test_a_report_calls_few_python_functions_a_request(tmp_path: Path) -> None:
    """A report reads each request through few Python calls: SQLite's row cut into its
    parts by slices, each grid labelled once, not once per request, its figures added in
    one ``LogFigures.add`` without a generator per sum or a function per part's check.
    Until 2026-12-07 a request cost 31.9 calls here (a ``Grid`` made and formatted, ...),
    12.8 since; each is CPU time a report of 1,000,000 requests pays a million times."""
    grow = _grow()
    _, log_path, _ = logged_records(tmp_path, 8, 300)
    # each request copied: the same figures, more rows; enough that the predictor's reading
    # of each model's latest requests is as long with 2,000 more
    grow(log_path, 2000)
    config = config_for(tmp_path / "cfg", cache={"enabled": False, "max_entries": 40, "ttl_s": 86400})  # fmt: skip
    _python_calls(config, log_path)  # what a process's first report imports, once
    counts = [_python_calls(config, log_path)]
    grow(log_path, 4000)
    counts.append(_python_calls(config, log_path))
    per_request = (counts[1] - counts[0]) / 2000
    assert per_request <= 16, (per_request, counts)  # 12.8 now


def test_the_scaling_benchmark_times_a_report_process(tmp_path: Path) -> None:
    """``--process``: `routerllm report --json` run on each size's log in a process of its
    own, its CPU and wall seconds and peak RSS said (a report that failed is said, not
    timed). The peak is the report's own, not that of the process it was started from: a
    child's ``ru_maxrss`` counted its parent's memory (a test process that had loaded
    models read 3,562 MB), which the 800 MB held here would show."""
    from .conftest import benchmark_in_process

    held = b"x" * (800 * 2**20)  # resident: written, not a mapping of zeros
    out = benchmark_in_process("report_scaling", "--sizes", "600", "--repeat", "1", "--process", "--json", tmpdir=tmp_path)  # fmt: skip
    assert out.returncode == 0 and len(held) == 800 * 2**20, out.stderr[-800:]
    (result,) = json.loads(out.stdout)["results"]
    assert result["rows"] == 600
    # a Python process that imported the config and the report: tens of MB, some CPU
    assert result["cpu_s"] > 0 and result["wall_s"] >= result["cpu_s"] / 4
    assert 10 < result["peak_rss_mb"] < 600


def test_the_scaling_benchmark_times_a_reports_phases_on_its_log_in_time_order(tmp_path: Path) -> None:  # fmt: skip
    """``--phases``: the CPU seconds of SQLite's reading, the checks, the rows and the whole
    report, each with its system share; ``--time-order``: on the log copied in time order."""
    from .conftest import benchmark_in_process

    out = benchmark_in_process("report_scaling", "--sizes", "600", "1300", "--repeat", "1", "--phases", "--time-order", "--json", tmpdir=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    data = json.loads(out.stdout)
    assert data["phases"] and data["time_order"]
    assert [r["rows"] for r in data["results"]] == [600, 1300]
    for result in data["results"]:
        for phase in ("sql", "checks", "read", "report"):
            assert 0 <= result[phase]["system_s"] <= result[phase]["cpu_s"], (phase, result)
    refused = benchmark_in_process("report_scaling", "--sizes", "600", "--process", "--phases", tmpdir=tmp_path)  # fmt: skip
    assert refused.returncode == 2 and "give one" in refused.stderr


def test_the_log_copied_in_time_order_is_the_same_log(tmp_path: Path) -> None:
    """The benchmark's copy in time order: the same requests and components, the same
    report, its rows in the order a server appends them; the log it copied unchanged."""
    import sqlite3
    import sys

    records, log_path, config = logged_records(tmp_path, 12, 60)
    _grow()(log_path, 200)
    before = logged_report(config, None, None, log_path).as_dict()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from report_scaling import in_time_order
    finally:
        sys.path.pop(0)
    ordered = in_time_order(log_path)
    assert ordered != log_path
    assert logged_report(config, None, None, ordered).as_dict() == before
    assert logged_report(config, None, None, log_path).as_dict() == before  # left as it was
    with sqlite3.connect(ordered) as db:
        rows = db.execute("SELECT timestamp FROM requests ORDER BY rowid").fetchall()
        assert len(rows) == 200 and rows == db.execute("SELECT timestamp FROM requests ORDER BY timestamp, rowid").fetchall()  # fmt: skip
        assert db.execute("SELECT COUNT(*) FROM components WHERE request_id NOT IN (SELECT id FROM requests)").fetchone() == (0,)  # fmt: skip


def _grow() -> Any:
    """``benchmarks/report_scaling.py``'s ``grow``: each request of a log copied."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from report_scaling import grow
    finally:
        sys.path.pop(0)
    return grow
