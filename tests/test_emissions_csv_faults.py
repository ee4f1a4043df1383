"""A request whose row the request log took but whose emissions-CSV rows it could not
write (the CSV's disk full; here a folder where the CSV was, real OS errors) is in the
log, the budgets and the reports: what the server and the library say of it says so,
and not that the request could not be recorded, which stays the words for a row the log
itself refused (here a trigger failing the insert, real SQLite)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from routerllm.carbon.log_rows import FAILED, REFUSED
from routerllm.carbon.request_log import RequestLog
from routerllm.config import AppConfig, load_config
from routerllm.demo import DEMO_PROMPTS
from routerllm.exceptions import BudgetExceededError, ContextLengthError
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_budget_refused_rows import log_refusing_rows, spent_config
from .test_unfinished_requests import LONG, client_of, short_contexts

CSV_ONLY = "the emissions CSV could not record this answer (it is in the request log): "
NO_ROW = "the request log could not record this answer: "


@contextmanager
def csv_refusing_rows(config: AppConfig) -> Iterator[Path]:
    """The emissions CSV of ``config`` unwritable while the block runs: a folder where the
    file was (opening it fails as a full disk's write does), the request log untouched."""
    path = Path(config.carbon.output_dir) / "emissions.csv"
    path.unlink(missing_ok=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        path.rmdir()


@contextmanager
def csv_link_to_nowhere(config: AppConfig) -> Iterator[Path]:
    """The emissions CSV of ``config`` unwritable for the processes that open the log in
    the block (a folder is refused as they open it): a link to where no file can be made,
    read as "no CSV yet", not appendable (a real OS error as each row is added)."""
    path = Path(config.carbon.output_dir) / "emissions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to(path.parent / "gone" / "emissions.csv")
    try:
        yield path
    finally:
        path.unlink()


def said(caplog: pytest.LogCaptureFixture, logger: str) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger]


def quiet(tmp_path: Path) -> AppConfig:
    return load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip


def test_a_served_answer_only_the_csv_missed_is_said_to_be_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server said "the request log could not record this answer" (and, in its log,
    "answered, but the request log could not record it") of an answer whose row the log
    had taken: its request id found it in the log and the report. The answer's warning
    and the server's log line now say the CSV missed it, once per streak, at WARNING (no
    row lost), and that it is over once an answer is written to both; a row the log
    itself refused is said as before."""
    config = quiet(tmp_path)
    caplog.set_level(logging.INFO, logger="routerllm.server.app")
    with RouterLLM(config) as system, client_of(system) as client:

        def ask() -> dict[str, Any]:
            answer = client.post("/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
            assert answer.status_code == 200, answer.text
            return dict(answer.json()["routerllm"])

        with csv_refusing_rows(config):
            in_log = [ask(), ask()]
        whole = ask()
        with log_refusing_rows(Path(config.log.path)):
            lost = ask()
        rows = {r.id for r in system.log.records()}
    for facts in in_log:
        assert facts["warning"].startswith(CSV_ONLY), facts
        assert "could not be added to" in facts["warning"] and facts["request_id"] in rows
    assert "warning" not in whole and whole["request_id"] in rows
    assert lost["warning"].startswith(NO_ROW) and "database or disk is full" in lost["warning"]
    assert lost["request_id"] not in rows
    lines = said(caplog, "routerllm.server.app")
    csv_lines = [line for line in lines if "emissions CSV" in line[1]]
    assert [level for level, _ in csv_lines] == ["WARNING"] * 3, lines
    assert csv_lines[0][1].startswith("answered and in the request log, but not in its emissions CSV: the answer was produced and logged to ")  # fmt: skip
    assert csv_lines[1][1].startswith("1 more answers are in the request log but not in its emissions CSV: the answer was produced and logged to ")  # fmt: skip
    assert csv_lines[2][1].startswith("the emissions CSV takes answers again (2 answers could not be added to it meanwhile")  # fmt: skip
    unrecorded = [line for line in lines if "could not record it" in line[1]]
    assert len(unrecorded) == 1 and unrecorded[0][0] == "ERROR", lines  # the lost row's only
    assert "database or disk is full" in unrecorded[0][1]


def test_a_served_refusal_only_the_csv_missed_names_its_row_and_says_so(tmp_path: Path) -> None:
    """A request refused by the budgets once routed, its row in the log but not in the
    CSV: its 429 said "the request log could not record this refused request" beside an
    id that finds its row. It says the CSV missed it now; one the log refused, as before."""
    _, config = spent_config(tmp_path)
    ask = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    with RouterLLM(config) as system, client_of(system) as client:
        with csv_refusing_rows(config):
            in_log = client.post("/v1/chat/completions", json=ask)
        with log_refusing_rows(Path(config.log.path)):
            lost = client.post("/v1/chat/completions", json=ask)
        refused = {r.id for r in system.log.records() if r.finish_reason == REFUSED}
    assert in_log.status_code == lost.status_code == 429
    facts = in_log.json()["routerllm"]
    assert facts["request_id"] in refused
    assert facts["warning"].startswith("the emissions CSV could not record this refused request (it is in the request log): the refused request's routing was spent and logged to "), facts  # fmt: skip
    facts = lost.json()["routerllm"]
    assert facts["request_id"] not in refused
    assert facts["warning"].startswith("the request log could not record this refused request: the refused request's routing was spent but could not be logged"), facts  # fmt: skip


def test_failed_and_refused_rows_only_the_csv_missed_are_not_said_unlogged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The library warned "a failed request's spending could not be logged" (or a refused
    one's) of a row the log had taken, the error naming that very row. It says the row
    is in the log but not in its CSV now, once per streak, and that the streak is over
    once the CSV takes a row again; a row the log refused is said as before."""
    _, config = short_contexts(tmp_path, carbon={"enabled": False})
    caplog.set_level(logging.INFO, logger="routerllm.answer_logging")
    with RouterLLM(config) as system:
        with csv_refusing_rows(config):
            for model in ("tiny-light", "tiny-medium"):  # each loaded for it, then refusing
                with pytest.raises(ContextLengthError) as failed:
                    system.generate(LONG, model=model)
                assert failed.value.request_id  # its row, in the log
        system.generate("hi")  # written to both: the streak is over
        with log_refusing_rows(Path(config.log.path)), pytest.raises(ContextLengthError) as lost:
            system.generate(LONG, model="tiny-heavy")
        rows = {r.id: r for r in system.log.records()}
    assert rows[failed.value.request_id].finish_reason == FAILED and not lost.value.request_id
    lines = said(caplog, "routerllm.answer_logging")
    assert [level for level, _ in lines] == ["WARNING"] * 4, lines
    in_log = "the failed request's spending was measured and logged to "
    assert lines[0][1].startswith(f"a request is in the request log but not in its emissions CSV: {in_log}"), lines  # fmt: skip
    assert lines[1][1].startswith(f"1 more requests are in the request log but not in its emissions CSV: {in_log}"), lines  # fmt: skip
    assert all("emissions.csv" in line and "Is a directory" in line for _, line in lines[:2])
    assert lines[2][1] == "the emissions CSV takes requests' rows again (2 requests' rows could not be added to it meanwhile: they are in the request log, and the next process that opens it for writing adds them)"  # fmt: skip
    assert lines[3][1].startswith("a failed request's spending could not be logged: the failed request's spending was measured but could not be logged to "), lines  # fmt: skip
    assert "database or disk is full" in lines[3][1]


def test_a_refusal_only_the_csv_missed_is_said_so_by_the_library(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As a failed request's: the refusal's row is in the log (its ``log_error.logged``)."""
    _, config = spent_config(tmp_path)
    caplog.set_level(logging.INFO, logger="routerllm.answer_logging")
    with RouterLLM(config) as system, csv_refusing_rows(config):
        with pytest.raises(BudgetExceededError) as e:
            system.generate("hi")
        rows = [r.id for r in system.log.records() if r.finish_reason == REFUSED]
    assert e.value.result is not None and rows == [e.value.result.request_id]
    assert e.value.log_error is not None and e.value.log_error.logged
    ((level, line),) = said(caplog, "routerllm.answer_logging")
    assert level == "WARNING"
    assert line.startswith("a request is in the request log but not in its emissions CSV: the refused request's routing was spent and logged to "), line  # fmt: skip


def test_route_and_demo_exit_0_with_a_warning_for_an_answer_only_the_csv_missed(
    tmp_path: Path,
) -> None:
    """``routerllm route`` printed the answer, then ``error: ...`` and exited 2, for an
    answer whose row the log took (the budgets and the report have it; the next process
    that opens the log adds its CSV rows), and ``demo`` stopped its run there, status 2:
    "0 done (warnings, on stderr, leave it 0)". Both now warn and exit 0 (the demo goes on);
    a row the log itself refused is still an error, status 2."""
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    config = load_config(cfg)
    prompt = "Translate 'hello' to French."
    with csv_link_to_nowhere(config):
        text = cli_in_process("route", prompt, "--config", str(cfg))
        as_json = cli_in_process("route", prompt, "--config", str(cfg), "--json")
        demo = cli_in_process("demo", "--no-baseline", "--config", str(cfg), "--max-new-tokens", "2")  # fmt: skip
        session = cli_in_process("demo", "--interactive", "--config", str(cfg), "--max-new-tokens", "2", stdin="hi\n")  # fmt: skip
    # the processes after the first say too that the CSV lacks the rows of the ones before
    assert text.stderr.count("\n") == 1, text.stderr
    for proc in (text, as_json):
        assert proc.returncode == 0 and "error:" not in proc.stderr, proc.stderr
        line = proc.stderr.strip().splitlines()[-1]
        assert line.startswith(f"warning: {CSV_ONLY}"), proc.stderr
        assert "could not be added to" in line and "emissions.csv" in line
    assert "tiny-light" in text.stdout and json.loads(as_json.stdout)["model"] == "tiny-light"
    assert demo.returncode == 0, demo.stderr
    answered = len(DEMO_PROMPTS)  # the run went on past its first answer
    assert f"Summary of the routed run\nrequests {answered} " in demo.stdout, demo.stdout
    line = demo.stderr.strip().splitlines()[-1]
    assert "error:" not in demo.stderr and line.startswith(f"warning: the emissions CSV could not record {answered} answers (they are in the request log): "), demo.stderr  # fmt: skip
    assert session.returncode == 0 and "error:" not in session.stdout, session.stdout
    assert f"\nwarning: {CSV_ONLY}" in session.stdout, session.stdout
    with RequestLog(Path(config.log.path)) as log:
        assert log.count() == 2 + answered + 1  # every answer in the log
    with log_refusing_rows(Path(config.log.path)):
        lost = cli_in_process("route", prompt, "--config", str(cfg))
    assert lost.returncode == 2 and "tiny-light" in lost.stdout, lost.stderr
    assert lost.stderr.startswith("error: ") and "warning" not in lost.stderr, lost.stderr


def test_a_demo_refusal_only_the_csv_missed_is_a_warning_not_an_error(tmp_path: Path) -> None:
    """The batch demo ended with ``error: ...`` and status 2 at a request the budgets
    refused once routed whose row the log took, only the emissions CSV missing it (the
    budgets and the report have it): as an answer only the CSV missed does, it now gives
    its summary, one ``warning:`` line and status 0, the row in the log; a refusal the log
    itself could not take still ends with status 2 (test_budget_refused_rows). The
    library's own warning of it (``WARNING routerllm.answer_logging: a request is in the
    request log but not in its emissions CSV: ...``) came above that line, the same
    words in another style: the demo's line is the one now, in both modes."""
    config_path, config = spent_config(tmp_path)
    with csv_link_to_nowhere(config):
        done = cli_in_process("demo", "--no-baseline", "--json", "--config", str(config_path))  # fmt: skip
        session = cli_in_process("demo", "--interactive", "--config", str(config_path), stdin="hi\n")  # fmt: skip
    payload = json.loads(done.stdout)
    assert "hourly CO2 budget" in payload["routed_refused"]
    assert payload["summary"]["refused"]["requests"] == 1
    assert done.returncode == 0 and "error:" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("warning: the emissions CSV could not record this refused request (it is in the request log): the refused request's routing was spent and logged to "), done.stderr  # fmt: skip
    said = [line for line in done.stderr.splitlines() if "emissions CSV" in line]
    assert said == warnings, done.stderr  # once, not also as the library's WARNING line
    assert session.returncode == 0, session.stderr
    said = [line for line in (session.stdout + session.stderr).splitlines() if "emissions CSV" in line]  # fmt: skip
    assert len(said) == 1 and said[0].startswith("warning: the emissions CSV could not record this refused request"), (session.stdout, session.stderr)  # fmt: skip
    with RequestLog(Path(config.log.path)) as log:
        assert [r.finish_reason for r in log.records()][-1] == REFUSED  # nothing lost


def test_the_demo_says_answers_and_a_refusal_only_the_csv_missed_in_one_warning() -> None:
    """Answers and the refused request together: one line that counts each."""
    from routerllm.demo_cli import _unmirrored_text
    from routerllm.exceptions import RequestLogError

    answers = [RequestLogError("the answer was produced and logged") for _ in range(2)]
    refusal = RequestLogError("the refused request's routing was spent and logged")
    assert _unmirrored_text(answers, refusal) == (
        "the emissions CSV could not record 2 answers and the refused request (they are in the "
        "request log): the refused request's routing was spent and logged"
    )
    assert _unmirrored_text(answers[:1]) == CSV_ONLY + "the answer was produced and logged"


def test_a_humaneval_answer_only_the_csv_missed_is_kept_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """``routerllm humaneval`` stopped at the first answer whose row the log took but the
    emissions CSV could not ("error: ...; run the same command again, once the log can be
    written"), status 2, though nothing was missing from the log: it now warns once,
    stores every answer, writes its results and exits 0; each answer is in the log."""
    from routerllm.eval.result_store import ResultStore

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))  # it measures: real CodeCarbon
    out = tmp_path / "he"
    csv_file = out / "carbon" / "emissions.csv"  # the run's CSV (config.carbon.output_dir)
    csv_file.parent.mkdir(parents=True)
    csv_file.symlink_to(csv_file.parent / "gone" / "emissions.csv")  # no file can be made
    argv = ["humaneval", "--config", str(cfg), "--out", str(out), "--limit", "2",
            "--systems", "direct-light", "--max-new-tokens", "8", "--json"]  # fmt: skip
    done = cli_in_process(*argv)
    assert done.returncode == 0, done.stderr
    from routerllm.eval.humaneval_run import CSV_SAID_ONCE

    said = [line for line in done.stderr.splitlines() if "emissions CSV" in line]
    assert len(said) == 1 and "error" not in done.stderr.lower(), done.stderr
    assert CSV_ONLY in said[0] and said[0].endswith(f"({CSV_SAID_ONCE})"), said
    assert json.loads((out / "results.json").read_text())["systems"][0]["total"] == 2
    store = ResultStore(out / "results.sqlite", read_only=True)
    try:
        assert len(store.done("tiny-light")) == 2
    finally:
        store.close()
    with RequestLog(out / "requests.sqlite") as log:
        assert log.count() == 2  # every answer in the log
    assert not csv_file.resolve().exists()


def test_feedback_on_an_answer_only_the_csv_missed_is_stored_and_learned(
    tmp_path: Path,
) -> None:
    """An answer whose row the log took but the emissions CSV did not can be rated as any
    other, by the process that routed it (``RouterLLM.feedback`` and ``POST
    /routerllm/feedback``) and by a later one (its request kept in the log for a learning
    router), while the CSV still cannot be written: the score stored and learned."""
    from routerllm.exceptions import RequestLogError

    from .test_feedback_router import ladder, topic_prompts

    config = ladder(tmp_path)
    prompts = topic_prompts("parser", 3, 50)
    with csv_link_to_nowhere(config):
        ids = []
        with RouterLLM(config) as system, client_of(system) as client:
            for prompt in prompts:
                with pytest.raises(RequestLogError) as e:
                    system.generate(prompt)
                assert e.value.logged and e.value.result is not None
                ids.append(e.value.result.request_id)
            learned = system.router.counts.sum()  # type: ignore[attr-defined]
            system.feedback(ids[0], 1.0)
            rated = client.post("/routerllm/feedback", json={"request_id": ids[1], "score": 0.5})
            assert rated.status_code == 200, rated.text
            assert system.router.counts.sum() == learned + 2  # type: ignore[attr-defined]
        with RouterLLM(config) as later:  # another process, the CSV still unwritable
            later.feedback(ids[2], 0.0)
            scores = {rid: score for rid, score, _ in later.log.feedback()}
    assert scores == {ids[0]: 1.0, ids[1]: 0.5, ids[2]: 0.0}
