"""Requests that ended without a whole answer, as the request log, ``routerllm report``
and the server say them: one cancelled half-way (its client gone, Ctrl-C) counted by the
report as ``/metrics`` counts it, and a prompt too long for a model already loaded logged
for the routing it spent, its row named by the error and the server's 400, as a cold
model's refusal is. Real llama.cpp on the tiny GGUF, a real request log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.interrupts import CANCELLED, cancellable
from routerllm.carbon.log_rows import CUT, FAILED
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import BatchError, ContextLengthError
from routerllm.system import RouterLLM

from .conftest import StopAfter, cli_in_process, tiny_config_dict, write_config

LONG = "word " * 60  # over 48 tokens, well under the character limit


def short_contexts(tmp_path: Path, **overrides: Any) -> tuple[Path, AppConfig]:
    """The tiny ladder, each model's llama.cpp context (n_ctx) 48 tokens: ``LONG`` fits
    none; the smallest router sends every prompt to tiny-light."""
    data = tiny_config_dict(tmp_path, router={"name": "smallest"}, **overrides)
    for model in data["models"]:
        model["context_length"] = 48
    path = write_config(tmp_path, data)
    return path, load_config(path)


# -- cancelled requests in the report -----------------------------------------------
def test_the_report_counts_cancelled_requests_beside_the_failed_ones(tmp_path: Path) -> None:
    """Two answers stopped half-way (the caller gone, as a server's client leaving), one
    whole and one that failed: ``/metrics`` counts the cancelled ones by their outcome,
    and ``routerllm report`` counted them as answers, nothing saying any had been cut.
    It counts them now, in total and per model, beside the failed ones (text and --json)."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import totals_lines

    config_path, config = short_contexts(tmp_path, carbon={"enabled": False})
    with RouterLLM(config) as system:
        with pytest.raises(ContextLengthError):  # tiny-medium loaded for it: its load logged
            system.generate(LONG, model="tiny-medium")
        for model in ("tiny-light", "tiny-medium"):
            with cancellable(StopAfter(2)):
                cut = system.generate("Name a sorting algorithm.", model=model)
            assert cut.finish_reason == CANCELLED and cut.completion_tokens == 2
        whole = system.generate("hi", model="tiny-light")
        rows = list(system.log.records())
    assert whole.finish_reason == CUT  # 8 tokens of the tiny model: cut at its limit
    assert sorted(r.finish_reason for r in rows if r.id != whole.request_id) == [CANCELLED, CANCELLED, FAILED]  # fmt: skip
    rep = logged_report(config)
    assert (rep.totals.requests, rep.totals.failed, rep.totals.cancelled) == (4, 1, 2)
    assert (rep.by_model["tiny-light"].cancelled, rep.by_model["tiny-light"].failed) == (1, 0)
    assert (rep.by_model["tiny-medium"].cancelled, rep.by_model["tiny-medium"].failed) == (1, 1)
    assert rep.by_router["fixed"].cancelled == 2
    lines = totals_lines(rep)
    assert lines[0].startswith("requests 4 (1 failed, 2 cancelled, 1 cut at the token limit)  tokens"), lines[0]  # fmt: skip
    per_model = {line.split()[0]: line for line in lines if line.startswith("tiny-")}
    assert per_model["tiny-light"].endswith("  (1 cancelled, 1 cut at the token limit)"), per_model
    assert per_model["tiny-medium"].endswith("  (1 failed, 1 cancelled)"), per_model
    done = cli_in_process("report", "--json", "--config", str(config_path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["totals"]["cancelled"], out["totals"]["failed"]) == (2, 1)
    assert out["by_model"]["tiny-medium"]["cancelled"] == 1
    text = cli_in_process("report", "--config", str(config_path)).stdout
    assert "requests 4 (1 failed, 2 cancelled, 1 cut at the token limit)" in text, text


def test_a_report_without_unfinished_requests_says_nothing_of_them(tmp_path: Path) -> None:
    """Whole answers only: no "(0 cancelled)" in the text; 0 in --json (the tiny model's
    answer is cut at its token limit: that alone is said)."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import totals_lines

    _, config = short_contexts(tmp_path, carbon={"enabled": False})
    with RouterLLM(config) as system:
        system.generate("hi")
    rep = logged_report(config)
    totals = rep.as_dict()["totals"]
    assert (totals["cancelled"], totals["failed"], totals["cached"], totals["cut"]) == (0, 0, 0, 1)
    assert totals_lines(rep)[0].startswith("requests 1 (1 cut at the token limit)  tokens")


def test_the_report_counts_answers_cut_at_their_limit_and_answers_from_the_cache(
    tmp_path: Path,
) -> None:
    """``/metrics`` counts the answers cut at their token limit (outcome "length") and
    those from the answer cache (``routerllm_cache_hits_total``); ``routerllm report``
    counted both as answers, nothing saying how many. It counts them now, in total and in
    each group, beside the failed and cancelled ones (text and --json)."""
    from routerllm.backends.base import GenerationRequest

    config_path, config = short_contexts(tmp_path, carbon={"enabled": False}, cache={"enabled": True})  # fmt: skip
    with RouterLLM(config) as system:
        first = system.generate(GenerationRequest("Name a sorting algorithm.", max_new_tokens=3))
        again = system.generate(GenerationRequest("Name a sorting algorithm.", max_new_tokens=3))
        other = system.generate(GenerationRequest("What is a tuple?", max_new_tokens=3), model="tiny-medium")  # fmt: skip
    assert again.cached_from == first.request_id and not other.cached_from
    assert [r.finish_reason for r in (first, again, other)] == [CUT] * 3
    done = cli_in_process("report", "--json", "--config", str(config_path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["totals"]["requests"], out["totals"]["cut"], out["totals"]["cached"]) == (3, 3, 1)
    assert (out["by_model"]["tiny-light"]["cut"], out["by_model"]["tiny-light"]["cached"]) == (2, 1)
    assert (out["by_model"]["tiny-medium"]["cut"], out["by_model"]["tiny-medium"]["cached"]) == (1, 0)  # fmt: skip
    assert out["by_router"]["smallest"]["cached"] == 1 and out["by_router"]["fixed"]["cached"] == 0
    (day,) = out["by_day"].values()
    assert (day["cut"], day["cached"], day["failed"], day["cancelled"]) == (3, 1, 0, 0)
    text = cli_in_process("report", "--config", str(config_path)).stdout
    assert "requests 3 (3 cut at the token limit, 1 from the cache)  tokens" in text, text
    lines: dict[str, str] = {}
    for line in text.splitlines():  # each model's first line: its row of the totals
        if line.startswith("tiny-"):
            lines.setdefault(line.split()[0], line)
    assert lines["tiny-light"].endswith("  (2 cut at the token limit, 1 from the cache)"), lines
    assert lines["tiny-medium"].endswith("  (1 cut at the token limit)"), lines


# -- a prompt too long for a model already loaded -------------------------------------
def test_a_prompt_too_long_for_a_loaded_model_is_logged_for_its_routing(tmp_path: Path) -> None:
    """The router ran (its energy spent), then tiny-light, already loaded, refused the
    prompt: nothing was logged, though the same prompt to a cold tiny-light was (its load
    and routing): the log, the budgets and the report missed what it spent, and the error
    named no row. It is logged now as the cold refusal is (finish reason ``error``), for
    its routing, and the error names its row, routed or named."""
    from routerllm.carbon.report import logged_report

    _, config = short_contexts(tmp_path, budgets={"co2_kg": {"hourly": 1.0}})
    with RouterLLM(config) as system:
        system.generate("hi", model="tiny-light")  # loaded, and warm from now on
        budget = system.budget
        assert budget is not None
        before = budget.status()[0].spent
        with pytest.raises(ContextLengthError, match="too long for model 'tiny-light'") as routed:  # fmt: skip
            system.generate(LONG, tag="t")
        assert "no larger model's context is longer" in str(routed.value)
        with pytest.raises(ContextLengthError, match="too long for model 'tiny-light'") as named:
            system.generate(LONG, model="tiny-light", tag="t")
        assert system.manager.loaded_models == ["tiny-light"]  # no load: warm all along
        rows = list(system.log.records(tag="t"))
        assert [r.id for r in rows] == [routed.value.request_id, named.value.request_id]
        assert [r.router for r in rows] == ["smallest", "fixed"]
        for row in rows:
            assert (row.model, row.finish_reason) == ("tiny-light", FAILED)
            assert row.prompt_tokens == row.completion_tokens == 0
            assert row.load_error == "" and row.escalated == {}
            routing = row.components["router_inference"]
            assert routing.duration_s > 0 and routing.energy_kwh > 0  # CodeCarbon's
            loading = row.components["model_loading"]
            assert loading.duration_s == loading.energy_kwh == 0  # warm: no load
            assert row.latency_s == pytest.approx(routing.duration_s)
            # priced by its energy (no token prices): its routing is its cost
            price = config.carbon.electricity_price_usd_per_kwh
            assert row.cost_usd == pytest.approx(row.energy_kwh * price, rel=1e-9)
        # the budgets count what they spent, from the log
        assert budget.status()[0].spent == pytest.approx(before + sum(r.co2_kg for r in rows), rel=1e-9)  # fmt: skip
    rep = logged_report(config, tag="t")
    assert (rep.totals.requests, rep.totals.failed) == (2, 2)


def test_a_batch_stopped_by_a_loaded_models_refusal_logs_the_routing_of_those_never_run(
    tmp_path: Path,
) -> None:
    """The batch's routing was measured whole: a refusal by a warm model (request 2 of 3)
    logged nothing, so the log's routing of the batch lacked its share and that of the
    request after it. Its row holds both now, as a cold refusal's does."""
    _, config = short_contexts(tmp_path, carbon={"enabled": False})
    with RouterLLM(config) as system:
        system.generate("hi")  # tiny-light loaded
        with pytest.raises(BatchError, match="request 2 of 3 failed: .*too long for model") as err:
            system.generate_batch(["hello", LONG, "hey"], tag="b")
        (first,) = err.value.results
        answered, failed = system.log.records(tag="b")
    assert answered.id == first.request_id and failed.finish_reason == FAILED
    assert failed.id == err.value.__cause__.request_id  # type: ignore[union-attr]
    share = answered.components["router_inference"].duration_s
    assert failed.components["router_inference"].duration_s == pytest.approx(2 * share, rel=1e-9)  # fmt: skip


@contextmanager
def client_of(system: RouterLLM) -> Iterator[Any]:
    """The server's app for ``system``, through Starlette's test client."""
    from starlette.testclient import TestClient

    from routerllm.server.app import create_app

    with TestClient(create_app(system), base_url="http://127.0.0.1:8000") as client:
        yield client


def test_the_servers_400_for_a_prompt_too_long_for_a_models_context_names_its_row(
    tmp_path: Path,
) -> None:
    """The server's 400 ``context_length_exceeded`` named the row of a cold model's
    refusal (its load logged) but not always: where no larger model's context was longer,
    the error said so in a new error that lost the row's id; and a warm model's refusal
    had no row to name. Each 400 names its row now, routed or named, plain or streamed,
    chat or completion; a mistake refused before routing (an empty prompt) still has none.
    (The model is never loaded for it since 2026-12-07: the refusal is its vocabulary's
    count's, said as its loaded model's.)"""
    _, config = short_contexts(tmp_path, carbon={"enabled": False})
    with RouterLLM(config) as system, client_of(system) as client:
        cold = client.post("/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": LONG}]})  # fmt: skip
        assert cold.status_code == 400, cold.text
        warm_bodies = [
            (
                "/v1/chat/completions",
                {"model": "auto", "messages": [{"role": "user", "content": LONG}]},
            ),  # fmt: skip
            (
                "/v1/chat/completions",
                {"model": "auto", "stream": True, "messages": [{"role": "user", "content": LONG}]},
            ),  # fmt: skip
            ("/v1/completions", {"model": "tiny-light", "prompt": LONG}),
        ]
        answers = [client.post(path, json=body) for path, body in warm_bodies]
        empty = client.post("/v1/completions", json={"model": "auto", "prompt": ""})
        rows = {r.id: r for r in system.log.records()}
    named = []
    for answer in [cold, *answers]:
        body = answer.json()
        assert answer.status_code == 400 and body["error"]["code"] == "context_length_exceeded", body  # fmt: skip
        named.append(body["routerllm"]["request_id"])
    assert sorted(named) == sorted(rows) and len(rows) == 4
    assert all((r.model, r.finish_reason) == ("tiny-light", FAILED) for r in rows.values())
    # refused by its vocabulary's count before it loaded (since 2026-12-07): no row has a
    # load; the first request's (cold) has its vocabulary's read, the others' nothing
    assert rows[named[0]].components["model_loading"].duration_s > 0
    assert all(rows[i].components["model_loading"].duration_s == 0 for i in named[1:])
    assert system.manager.loaded_models == []
    assert empty.status_code == 400 and "routerllm" not in empty.json(), empty.text
