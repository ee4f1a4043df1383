"""A request the budgets refuse once its router has run spent its routing: it is logged
(finish reason ``refused:budget``, its routing alone) and counted by the budgets, the
report (apart from the answers), ``/metrics`` and the demo's summary; never learned by
the predictor nor rated. A request refused before anything ran stays unlogged."""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from routerllm.carbon.log_rows import REFUSED
from routerllm.carbon.predictor import HISTORY, CarbonPredictor, unlearned
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import BudgetExceededError, PromptError
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_budgets import record, seeded_log

#: The hourly CO2 budget, spent past its limit by the seeded request 10 minutes ago.
SPENT = {"co2_kg": {"hourly": 0.05}}


def spent_config(tmp_path: Path) -> tuple[Path, AppConfig]:
    path = write_config(tmp_path, tiny_config_dict(tmp_path, budgets=SPENT))
    config = load_config(path)
    recent = datetime.now(timezone.utc) - timedelta(minutes=10)
    # three answers of tiny-light: the predictor's history, which refusals must not join
    seeded = [record("tiny-light", recent, co2_kg=0.02 + i * 0.001) for i in range(3)]
    seeded_log(Path(config.log.path), seeded).close()
    return path, config


def refused_rows(system: RouterLLM) -> list:
    return [r for r in system.log.records() if r.finish_reason == REFUSED]


def test_served_refusals_are_logged_counted_by_the_budgets_the_report_and_metrics(
    tmp_path: Path,
) -> None:
    from .test_server import running

    config_path, config = spent_config(tmp_path)
    with RouterLLM(config) as system, running(system) as url:
        budget = system.budget
        assert budget is not None
        before = {(s.quantity, s.window): s.spent for s in budget.status()}
        body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
        for _ in range(2):
            req = urllib.request.Request(f"{url}/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=30)
            assert e.value.code == 429
        rows = refused_rows(system)
        # each row: the routed model, 0 tokens, its routing alone
        assert len(rows) == 2
        for r in rows:
            assert (r.prompt_tokens, r.completion_tokens, list(r.components)) == (0, 0, ["router_inference"])  # fmt: skip
            assert r.model in {m.name for m in config.models} and r.router == "rules"
            assert r.tag == "server" and r.components["router_inference"].energy_kwh > 0
        spent = sum(r.co2_kg for r in rows)
        # the budgets count what they spent (the window's use grew by it)
        after = {(s.quantity, s.window): s.spent for s in budget.status()}
        assert after["co2_kg", "hourly"] == pytest.approx(before["co2_kg", "hourly"] + spent, rel=1e-12)  # fmt: skip
        with urllib.request.urlopen(f"{url}/metrics", timeout=30) as answer:
            metrics = answer.read().decode()
        counted = [line for line in metrics.splitlines() if line.startswith("routerllm_requests_total{") and 'outcome="refused:budget"' in line]  # fmt: skip
        assert sum(float(line.split()[-1]) for line in counted) == 2.0, metrics
        routing = [line for line in metrics.splitlines() if line.startswith("routerllm_energy_kwh_total{") and 'component="router_inference"' in line]  # fmt: skip
        assert sum(float(line.split()[-1]) for line in routing) == pytest.approx(sum(r.energy_kwh for r in rows))  # fmt: skip
        # no model ran: a routing's milliseconds are no model's latency (they pulled the
        # p95 that README's query reads down toward 0)
        timed = [line for line in metrics.splitlines() if line.startswith("routerllm_request_latency_seconds_count{")]  # fmt: skip
        assert sum(float(line.split()[-1]) for line in timed) == 0.0, timed
        # a refused request's id is no answer to rate
        with pytest.raises(PromptError, match="refused by the budgets before any model ran"):
            system.feedback(rows[0].id, 1.0)
        # the emissions CSV has their rows
        with open(
            Path(config.carbon.output_dir) / "emissions.csv", encoding="utf-8", newline=""
        ) as f:
            ids = {row["request_id"] for row in csv.DictReader(f)}
        assert {r.id for r in rows} <= ids
    report = json.loads(cli_in_process("report", "--json", "--config", str(config_path)).stdout)
    assert report["refused"]["requests"] == 2
    assert report["refused"]["energy_kwh"] == pytest.approx(sum(r.energy_kwh for r in rows))
    # kept apart: the answers' totals are the three seeded requests' alone
    assert report["totals"]["requests"] == 3
    text = cli_in_process("report", "--config", str(config_path)).stdout
    assert "refused by the budgets once routed: 2 requests, their routing spent energy" in text


def test_the_predictor_never_learns_from_a_refused_request(tmp_path: Path) -> None:
    _, config = spent_config(tmp_path)
    with RouterLLM(config) as system:
        with pytest.raises(BudgetExceededError) as e:
            system.generate("hi")
        refused = e.value.result
        assert refused is not None and refused.finish_reason == REFUSED
        assert [r.id for r in refused_rows(system)] == [refused.request_id]
        history = system.log.latest(refused.model, HISTORY, unlearned(config))
        assert refused.request_id not in {r.id for r in history} and len(history) == 3
        profile = CarbonPredictor.from_log(config, system.log).profile("tiny-light")
        assert profile is not None and profile.requests == 3


def test_a_request_refused_before_anything_ran_stays_unlogged(tmp_path: Path) -> None:
    _, config = spent_config(tmp_path)
    with RouterLLM(config) as system:
        with pytest.raises(PromptError):
            system.generate("")
        assert refused_rows(system) == []


def test_demo_interactive_counts_a_refused_prompts_routing_in_its_summary(tmp_path: Path) -> None:
    config_path, _ = spent_config(tmp_path)
    done = cli_in_process("demo", "--interactive", "--json", "--config", str(config_path), stdin="hi\n")  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert "hourly CO2 budget" in lines[0]["error"]
    summary = lines[-1]["summary"]
    assert summary["refused"]["requests"] == 1 and summary["refused"]["energy_kwh"] > 0
    assert summary["totals"]["requests"] == 0
    report = json.loads(cli_in_process("report", "--tag", "interactive", "--json", "--config", str(config_path)).stdout)  # fmt: skip
    assert report["refused"]["requests"] == 1
    assert report["refused"]["energy_kwh"] == pytest.approx(summary["refused"]["energy_kwh"])
    text = cli_in_process("demo", "--interactive", "--config", str(config_path), stdin="hi\n").stdout  # fmt: skip
    summary_text = text[text.index("Summary of the session") :].splitlines()
    assert summary_text[1] == "no prompt answered"
    assert summary_text[2].startswith("refused by the budgets once routed: 1 request, their routing spent energy")  # fmt: skip


def test_a_refused_requests_routing_breaks_no_budget_in_the_reports_count(tmp_path: Path) -> None:
    """Its routing alone is over a per-request limit of 1e-12 kg: in the windows' sums,
    but the budgets refused it, so the report counts no request that broke the limit."""
    from routerllm.carbon.report import logged_report

    budgets = {"co2_kg": {"per_request": 1e-12, "hourly": 0.1}}
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, budgets=budgets)))
    seeded_log(Path(config.log.path), [record("tiny-light", datetime.now(timezone.utc) - timedelta(minutes=10), co2_kg=1e-13)]).close()  # fmt: skip
    with RouterLLM(config) as system:
        with pytest.raises(BudgetExceededError) as e:
            system.generate("hi")
        assert e.value.result is not None and e.value.result.co2_kg > 1e-12
    report = logged_report(config)
    assert report.refused.requests == 1
    assert report.budgets is not None
    assert report.budgets["violations"] == {"co2_kg": {"per_request": 0, "hourly": 0}}


def test_a_refused_requests_cost_not_measured_is_said_so_not_a_cost_of_0(tmp_path: Path) -> None:
    """With carbon tracking off, a local model's cost is its energy at the electricity
    price: not known, as the totals say (null, "cost not measured"). The refused
    requests' routing said "cost $0" in text and 0.0 in JSON beside the totals' null."""
    import dataclasses

    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import refused_lines
    from routerllm.carbon.request_log import RequestLog

    from .test_recommendations import rec

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip
    answered = rec("tiny-light", 0, llm_kwh=0.0, method="none")
    refused = rec("tiny-light", 1, method="none", llm_kwh=0.0, finish_reason=REFUSED)
    refused = dataclasses.replace(refused, components={"router_inference": refused.components["router_inference"]})  # fmt: skip
    with RequestLog(config.log.path) as log:
        log.append(answered)
        log.append(refused)
    rep = logged_report(config)
    out = rep.as_dict()
    assert out["totals"]["cost_usd"] is None
    assert out["refused"]["requests"] == 1 and out["refused"]["cost_usd"] is None
    assert "cost not measured" in refused_lines(rep.refused)[0]


def test_refusals_the_log_cannot_take_are_said_as_refusals_and_counted_from_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused request's row the request log could not take (its disk full) was said as
    "a failed request's spending could not be logged": no request had failed. It is said
    as a refusal now, once per streak as a failed request's is; the budgets count what it
    spent from memory, and once the log takes a row again, that the streak is over."""
    import logging

    from routerllm.exceptions import RequestLogError

    _, config = spent_config(tmp_path)
    with RouterLLM(config) as system:
        budget = system.budget
        assert budget is not None

        def hourly() -> float:
            return next(s.spent for s in budget.status() if (s.quantity, s.window) == ("co2_kg", "hourly"))  # fmt: skip

        def full_disk(record: object) -> None:
            raise RequestLogError("database or disk is full")

        caplog.set_level(logging.INFO, logger="routerllm.answer_logging")
        before, spent = hourly(), 0.0
        with monkeypatch.context() as full:
            full.setattr(system.log, "append", full_disk)
            for _ in range(3):
                with pytest.raises(BudgetExceededError) as e:
                    system.generate("hi")
                assert e.value.result is not None and e.value.result.co2_kg > 0
                spent += e.value.result.co2_kg
        assert refused_rows(system) == []
        # not in the log, counted from memory all the same
        assert hourly() == pytest.approx(before + spent, rel=1e-12)
        with pytest.raises(BudgetExceededError):
            system.generate("hi")  # logged: the streak is over
        assert len(refused_rows(system)) == 1
        said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "routerllm.answer_logging"]  # fmt: skip
        assert said == [
            ("WARNING", "a refused request's spending could not be logged: database or disk is full"),  # fmt: skip
            ("WARNING", "2 more refused requests' spending could not be logged: database or disk is full"),  # fmt: skip
            ("WARNING", "the request log records requests again (3 refused requests' spending "
                        "could not be logged meanwhile)"),
        ]  # fmt: skip


def test_a_served_refusal_says_its_request_id_as_an_answer_does(tmp_path: Path) -> None:
    """The 429 of a request refused once routed named no request id, where an answer's
    ``routerllm`` field does: a client could not find its row in the log or the report.
    Its error object now comes with the same ``routerllm`` field, plain or streamed."""
    from .test_server import running

    _, config = spent_config(tmp_path)
    with RouterLLM(config) as system, running(system) as url:
        bodies = []
        for path, body in [
            (
                "chat/completions",
                {"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            ),  # fmt: skip
            (
                "chat/completions",
                {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            ),  # fmt: skip
            ("completions", {"model": "auto", "prompt": "hi"}),
        ]:
            req = urllib.request.Request(f"{url}/v1/{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=30)
            assert e.value.code == 429
            bodies.append(json.loads(e.value.read()))
        rows = {r.id: r for r in refused_rows(system)}
        assert len(rows) == 3
        for got in bodies:
            assert got["error"]["code"] == "budget_exceeded"  # the API's error object, as before
            facts = got["routerllm"]
            row = rows.pop(facts["request_id"])
            assert facts["finish_reason"] == REFUSED and facts["model"] == row.model
            assert facts["co2_kg"] == pytest.approx(row.co2_kg) and "response" not in facts
        assert rows == {}


@contextmanager
def log_refusing_rows(path: Path) -> Iterator[None]:
    """The request log at ``path`` refusing every new row while the block runs: real
    SQLite failing the insert (a trigger another connection put in), as a full disk does."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TRIGGER full BEFORE INSERT ON requests BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")  # fmt: skip
    try:
        yield
    finally:
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("DROP TRIGGER full")


def test_a_refusal_the_log_could_not_take_says_so_beside_its_id(tmp_path: Path) -> None:
    """A request refused once routed whose row the log could not take (its disk full)
    gave its ``result`` under a request id that no row has, and nothing said so: the
    caller could look for it in the log and the report in vain. The log's error now comes
    with it (``log_error``), as an answer the log could not take comes with one; a
    refusal it took has none."""
    from routerllm.exceptions import RequestLogError

    _, config = spent_config(tmp_path)
    with RouterLLM(config) as system:
        with log_refusing_rows(Path(config.log.path)), pytest.raises(BudgetExceededError) as e:
            system.generate("hi")
        unlogged = e.value
        assert unlogged.result is not None and unlogged.result.finish_reason == REFUSED
        assert isinstance(unlogged.log_error, RequestLogError)
        assert "database or disk is full" in str(unlogged.log_error)
        assert refused_rows(system) == []  # its id finds no row
        with pytest.raises(BudgetExceededError) as e:
            system.generate("hi")
        assert e.value.log_error is None and e.value.result is not None
        assert [r.id for r in refused_rows(system)] == [e.value.result.request_id]


def test_a_served_refusal_the_log_could_not_take_warns_beside_its_id(tmp_path: Path) -> None:
    """The 429 named a request id that no row had (the log's disk full): the client found
    nothing under it in the log nor the report. Its ``routerllm`` field now says so in a
    ``warning``, as an answer's does where its row could not be written; a refusal the log
    took has none."""
    from .test_server import CHAT, asking, call, running

    _, config = spent_config(tmp_path)
    with RouterLLM(config) as system, running(system) as url:
        bodies = []
        with log_refusing_rows(Path(config.log.path)):
            for stream in (False, True):
                status, text = call(url, CHAT, asking(model="auto", stream=stream))
                assert status == 429, text
                bodies.append(json.loads(text))
        assert refused_rows(system) == []
        status, text = call(url, CHAT, asking(model="auto"))
        assert status == 429
        logged = json.loads(text)["routerllm"]
        assert [r.id for r in refused_rows(system)] == [logged["request_id"]]
    assert "warning" not in logged
    for body in bodies:
        assert body["error"]["code"] == "budget_exceeded"
        facts = body["routerllm"]
        assert facts["finish_reason"] == REFUSED and facts["request_id"]
        assert facts["warning"].startswith("the request log could not record this refused request: ")  # fmt: skip
        assert "database or disk is full" in facts["warning"]


def test_the_demo_says_a_refusal_the_log_could_not_take(tmp_path: Path) -> None:
    """A refused request whose row the log could not take was counted in the demo's
    summary, which then said it was logged (its routing in the log) and ended well; an
    answer the log could not take ends it with the log's error. So does this refusal now,
    after the summary; the interactive demo says the log's error after the refusal's.
    Each says it once, in the demo's own line."""
    config_path, config = spent_config(tmp_path)
    with log_refusing_rows(Path(config.log.path)):
        done = cli_in_process("demo", "--no-baseline", "--json", "--config", str(config_path))  # fmt: skip
        session = cli_in_process("demo", "--interactive", "--json", "--config", str(config_path), stdin="hi\n")  # fmt: skip
    payload = json.loads(done.stdout)
    assert "hourly CO2 budget" in payload["routed_refused"]
    assert payload["summary"]["refused"]["requests"] == 1  # what it spent, from memory
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "database or disk is full" in errors[0], done.stderr
    # said once: not also above it by the library's warning (`WARNING routerllm.answer_logging:
    # a refused request's spending could not be logged: ...`, until 2026-12-07)
    assert [line for line in done.stderr.splitlines() if "disk is full" in line] == errors
    assert "disk is full" not in session.stderr, session.stderr
    lines = [json.loads(line) for line in session.stdout.splitlines()]
    assert "hourly CO2 budget" in lines[0]["error"]
    assert "database or disk is full" in lines[1]["error"], lines
    assert lines[-1]["summary"]["refused"]["requests"] == 1


def test_route_says_a_refusal_the_log_could_not_take(tmp_path: Path) -> None:
    """``routerllm route`` names no request id for a refusal: it says the refusal, and
    beside it that its routing could not be logged (the log's warning)."""
    config_path, config = spent_config(tmp_path)
    with log_refusing_rows(Path(config.log.path)):
        done = cli_in_process("route", "hi", "--config", str(config_path))
    assert done.returncode == 2 and "error: " in done.stderr and "hourly CO2 budget" in done.stderr
    assert "a refused request's spending could not be logged: " in done.stderr, done.stderr
    assert "database or disk is full" in done.stderr


def test_a_log_that_cannot_take_a_row_says_what_the_row_was(tmp_path: Path) -> None:
    """A row the log could not take was "the answer was produced but could not be
    logged" whatever it was: a refused request's routing, a failed request's spending,
    said so in the refusal's warning and the server's 429 where no answer was produced.
    Each says what it was now; an answer's is as before. So does a row logged whose CSV
    rows could not be added (the CSV made a folder once the log was open)."""
    from routerllm.carbon.log_rows import FAILED
    from routerllm.carbon.request_log import RequestLog
    from routerllm.exceptions import RequestLogError

    from .test_recommendations import rec

    said = {
        REFUSED: "the refused request's routing was spent",
        FAILED: "the failed request's spending was measured",
        "stop": "the answer was produced",
    }
    path = tmp_path / "requests.sqlite"
    with RequestLog(path) as log:
        log.append(rec("m", 0))  # the tables made
        with log_refusing_rows(path):
            for i, (finish, what) in enumerate(said.items()):
                with pytest.raises(RequestLogError) as e:
                    log.append(rec("m", i + 1, finish_reason=finish))
                assert str(e.value).startswith(f"{what} but could not be logged to {path}"), e.value
                assert not e.value.logged
    csv_path = tmp_path / "carbon" / "emissions.csv"
    with RequestLog(tmp_path / "other.sqlite", csv_path) as log:
        csv_path.unlink(missing_ok=True)
        csv_path.mkdir(parents=True)
        for i, (finish, what) in enumerate(said.items()):
            with pytest.raises(RequestLogError) as e:
                log.append(rec("m", i, finish_reason=finish))
            assert str(e.value).startswith(f"{what} and logged to "), e.value
            assert e.value.logged
