"""The server's ``GET /metrics`` (``server/metrics.py``): a real uvicorn server around a
real ``RouterLLM`` on the tiny GGUF, scraped over real HTTP and read back with
prometheus_client's own parser; its counters compared with the request log's rows."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from routerllm.carbon.meter import CACHED, COMPONENTS, NullMeter
from routerllm.carbon.request_log import RequestLog
from routerllm.config import load_config
from routerllm.exceptions import MissingDependencyError
from routerllm.server import app as server_app
from routerllm.server.metrics import CONTENT_TYPE, LATENCY_BUCKETS_S
from routerllm.system import RouterLLM

from .conftest import hide_package, tiny_config_dict, tiny_model, write_config
from .test_budgets import record, seeded_log
from .test_server import CHAT, asking, call, chat, held_generation, running, started

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base: str, headers: dict[str, str] | None = None) -> tuple[Samples, str]:
    """The samples of ``GET /metrics``, parsed by prometheus_client's own parser (which
    refuses a malformed line), and the text itself."""
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(base + "/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"] == CONTENT_TYPE
        text = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples, text


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= set(got))


def test_the_counters_are_the_request_logs_sums(tmp_path: Path) -> None:
    """Two routed requests (the second answered from the cache) and two streamed ones (the
    second from the cache): each counter is the sum of the log's rows, model by model and
    component by component."""
    data = tiny_config_dict(tmp_path, cache={"enabled": True})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:  # fmt: skip
        first = chat(base, "Name a sorting algorithm.", temperature=0)
        again = chat(base, "Name a sorting algorithm.", temperature=0)
        assert again["routerllm"]["cached_from"] == first["routerllm"]["request_id"]
        began = time.monotonic()
        status, text = call(base, CHAT, asking(("user", "What is a tuple?"), stream=True))
        streamed_s = time.monotonic() - began
        assert status == 200 and text.endswith("data: [DONE]\n\n")
        # asked again: answered whole from the cache, its first text its whole answer
        status, text = call(base, CHAT, asking(("user", "What is a tuple?"), stream=True))
        assert status == 200 and '"cached_from": "' in text.replace(
            '"cached_from":"', '"cached_from": "'
        )
        samples, _ = scrape(base)
        rows = list(system.log.records())
    assert len(rows) == 4 and sum(r.components["llm_inference"].method == CACHED for r in rows) == 2  # fmt: skip
    assert sum(r.components["llm_inference"].energy_kwh for r in rows) > 0  # CodeCarbon's
    for model in {r.model for r in rows}:
        mine = [r for r in rows if r.model == model]
        assert total(samples, "routerllm_requests_total", model=model) == len(mine)
        for r in mine:
            assert total(samples, "routerllm_requests_total", model=model, router=r.router, outcome=r.finish_reason) >= 1  # fmt: skip
        for name, figure in (
            ("routerllm_prompt_tokens_total", sum(r.prompt_tokens for r in mine)),
            ("routerllm_completion_tokens_total", sum(r.completion_tokens for r in mine)),
            ("routerllm_cost_usd_total", sum(r.cost_usd for r in mine)),
            (
                "routerllm_cache_hits_total",
                sum(r.components["llm_inference"].method == CACHED for r in mine),
            ),  # fmt: skip
            ("routerllm_request_latency_seconds_count", len(mine)),
            ("routerllm_request_latency_seconds_sum", sum(r.latency_s for r in mine)),
        ):
            assert total(samples, name, model=model) == pytest.approx(figure, rel=1e-12, abs=0), name  # fmt: skip
        for component in COMPONENTS:
            for name, of in (("routerllm_energy_kwh_total", "energy_kwh"), ("routerllm_co2_kg_total", "co2_kg")):  # fmt: skip
                figure = sum(getattr(r.components[component], of) for r in mine if component in r.components)  # fmt: skip
                got = total(samples, name, model=model, component=component)
                assert got == pytest.approx(figure, rel=1e-12, abs=0), (name, component)
        # every latency is in the +Inf bucket; those within 120 s in the 120 s one
        inf = total(samples, "routerllm_request_latency_seconds_bucket", model=model, le="+Inf")
        assert inf == len(mine)
    # each stream's first text: the generated one's after it arrived, before its stream
    # ended; the cached one's (all its text at once) within milliseconds
    assert total(samples, "routerllm_time_to_first_token_seconds_count") == 2
    assert 0 < total(samples, "routerllm_time_to_first_token_seconds_sum") < streamed_s + 0.5
    # a model that answered nothing is there, at 0: rate() has a start
    idle = {m.name for m in system.config.models} - {r.model for r in rows}
    assert idle and all(("routerllm_prompt_tokens_total", (("model", m),)) in samples for m in idle)  # fmt: skip
    assert samples["routerllm_requests_waiting", ()] == 0
    assert samples["routerllm_requests_running", ()] == 0
    assert "process_start_time_seconds" in {name for name, _ in samples}  # counting's start
    # the report counts the cache hits and the answers cut at their token limit as /metrics
    # does, in total and by model (until 2026-12-07 it counted neither)
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    report = logged_report(system.config)
    hits, cut = "routerllm_cache_hits_total", "routerllm_requests_total"
    assert report.totals.cached == total(samples, hits) == 2
    assert report.totals.cut == total(samples, cut, outcome="length") == sum(r.finish_reason == "length" for r in rows) > 0  # fmt: skip
    for model, figures in report.by_model.items():
        assert figures.cached == total(samples, hits, model=model)
        assert figures.cut == total(samples, cut, model=model, outcome="length")
    assert report.as_dict()["totals"]["cached"] == 2
    said = f"requests 4 ({report.totals.cut} cut at the token limit, 2 from the cache)  tokens "
    assert said in "\n".join(report_lines(report))
    # and those measured under contention (this machine's load now: any number), every
    # model's counter there from 0
    contended = "routerllm_requests_contended_total"
    assert all((contended, (("model", m.name),)) in samples for m in system.config.models)
    assert report.contended.requests == total(samples, contended) == sum(r.contended for r in rows)  # fmt: skip


def test_failed_and_cancelled_requests_are_not_in_the_answers_latency(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    """Requests that ended without an answer were observed in the answers' latency
    histogram: a model that could not load (a corrupt GGUF: a 502 at once), a remote
    endpoint's error, a stream its client left half-way; the p95 that README's query
    reads mixed a load's failure and a client's leaving with answers. They are apart now,
    in a histogram by outcome, whose counts are the log's and whose sums, with the
    answers', are the report's time of the same requests."""
    from routerllm.backends.interrupts import CANCELLED
    from routerllm.carbon.report import logged_report

    from .conftest import corrupt_gguf
    from .test_openai_http import Reply, error_reply, http_model_dict, serving_stub
    from .test_openai_stream import DONE, delta, usage
    from .test_server import _leave, half_sent

    pieces = [delta("", role=True), *(delta(f"w{i} ") for i in range(100))]
    events = (*pieces, delta(finish="stop"), usage(5, 100), DONE)
    with serving_stub() as stub:
        # the endpoint's error, then a stream of 5 s its client leaves after its first text
        stub.script.extend([error_reply(500, "the endpoint broke"), Reply(200, b"", events=events, gap_s=0.05)])  # fmt: skip
        models = [
            tiny_model("tiny-light", "light", 0.1),
            tiny_model("broken", "heavy", 3.0, gguf=corrupt_gguf(tmp_path, tiny_gguf)),
            http_model_dict("remote", stub.base_url, energy_per_token_kwh=1e-6, max_retries=0),
        ]
        data = tiny_config_dict(tmp_path, models=models, router={"name": "smallest"}, carbon={"enabled": False})  # fmt: skip
        config = load_config(write_config(tmp_path, data))
        with RouterLLM(config) as system, running(system) as base:
            assert call(base, CHAT, asking(model="tiny-light"))[0] == 200
            named = {}  # each 502 names the row its failed request's spending is in
            for model in ("broken", "remote"):
                status, text = call(base, CHAT, asking(model=model))
                assert status == 502 and json.loads(text)["error"]["code"] == "backend_error", text  # fmt: skip
                named[json.loads(text)["routerllm"]["request_id"]] = model
            body = json.dumps(asking(model="remote", stream=True)).encode()
            sock, seen = half_sent(base, body, len(body)), b""
            while b"data: " not in seen:
                seen += sock.recv(65536)
            _leave(sock, reset=False)
            deadline = time.monotonic() + 30
            while system.log.count() < 4:
                assert time.monotonic() < deadline, list(system.log.records())
                time.sleep(0.02)
            samples, _ = scrape(base)
            rows = list(system.log.records())
    outcomes = sorted((r.model, r.finish_reason) for r in rows)
    assert outcomes == [("broken", "error"), ("remote", CANCELLED), ("remote", "error"), ("tiny-light", "length")]  # fmt: skip
    assert {r.id: r.model for r in rows if r.finish_reason == "error"} == named
    answers = [r for r in rows if r.model == "tiny-light"]
    latency = "routerllm_request_latency_seconds"
    assert total(samples, f"{latency}_count") == 1
    assert total(samples, f"{latency}_sum") == pytest.approx(answers[0].latency_s, rel=1e-12)
    unfinished = "routerllm_unfinished_request_latency_seconds"
    for r in rows:
        if r in answers:
            continue
        labels = {"model": r.model, "outcome": r.finish_reason}
        assert total(samples, f"{unfinished}_count", **labels) == 1, labels
        assert total(samples, f"{unfinished}_sum", **labels) == pytest.approx(r.latency_s, rel=1e-12)  # fmt: skip
        assert total(samples, f"{unfinished}_bucket", le="+Inf", **labels) == 1
        assert total(samples, "routerllm_requests_total", **labels) == 1
    # the report's time of the same requests: both histograms' sums; its failed ones: theirs
    report = logged_report(config)
    timed = total(samples, f"{latency}_sum") + total(samples, f"{unfinished}_sum")
    assert report.totals.latency_s == pytest.approx(timed, rel=1e-12)
    assert report.totals.requests == total(samples, f"{latency}_count") + total(samples, f"{unfinished}_count")  # fmt: skip
    assert report.totals.failed == total(samples, f"{unfinished}_count", outcome="error") == 2
    # and its cancelled ones (until 2026-12-07 it had no count of them): each outcome
    # /metrics counts, the report counts too
    assert report.totals.cancelled == total(samples, f"{unfinished}_count", outcome=CANCELLED) == 1  # fmt: skip
    assert report.by_model["remote"].cancelled == total(samples, "routerllm_requests_total", model="remote", outcome=CANCELLED) == 1  # fmt: skip
    assert report.totals.requests == total(samples, "routerllm_requests_total")


def test_refused_requests_and_the_budgets_use_are_counted(tmp_path: Path) -> None:
    """A request over the per-request budget is a 429 counted by its reason, and its
    routing (logged, outcome refused:budget) in the energy; the hourly window's use is
    its spending's share of the limit (0.06 kg of 0.1 kg, and the refusals' micrograms)."""
    budgets = {"co2_kg": {"per_request": 1e-12, "hourly": 0.1}}
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, budgets=budgets)))
    spent = datetime.now(timezone.utc) - timedelta(minutes=10)
    seeded_log(Path(config.log.path), [record("tiny-light", spent, co2_kg=0.06)]).close()
    with RouterLLM(config) as system, running(system) as base:
        samples, _ = scrape(base)
        assert total(samples, "routerllm_requests_refused_total") == 0
        for _ in range(2):
            status, text = call(base, CHAT, asking(model="auto"))
            assert status == 429 and json.loads(text)["error"]["code"] == "budget_exceeded"
        samples, _ = scrape(base)
        # the seeded answer's and the refusals' (their routing, the first's vocabulary read)
        logged_co2 = sum(r.co2_kg for r in system.log.records())
    refused = total(samples, "routerllm_requests_refused_total", status="429", reason="budget_exceeded")  # fmt: skip
    assert refused == 2
    # no model ran; each was routed first: logged for its routing, its energy counted
    assert total(samples, "routerllm_requests_total") == 2
    assert total(samples, "routerllm_requests_total", outcome="refused:budget") == 2
    assert total(samples, "routerllm_energy_kwh_total", component="router_inference") > 0
    assert total(samples, "routerllm_energy_kwh_total", component="llm_inference") == 0
    assert samples["routerllm_budget_used_ratio", (("quantity", "co2_kg"), ("window", "hourly"))] == pytest.approx(logged_co2 / 0.1, rel=1e-9) == pytest.approx(0.6, rel=1e-4)  # fmt: skip
    # the report counts them as /metrics does, apart from the answers (the seeded answer
    # was logged before the server started: not in /metrics), their routing's energy too
    from routerllm.carbon.report import logged_report

    report = logged_report(config)
    assert report.refused.requests == total(samples, "routerllm_requests_total", outcome="refused:budget")  # fmt: skip
    assert report.refused.energy_kwh == pytest.approx(total(samples, "routerllm_energy_kwh_total"), rel=1e-12)  # fmt: skip
    assert (report.totals.requests, report.totals.failed, report.totals.cancelled) == (1, 0, 0)


def test_a_scrape_needs_the_key_and_does_not_wait_for_the_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind the key as every endpoint but /health (HEAD too); answered while a request
    generates and another waits its turn, which it shows, with the model loaded."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    key = {"Authorization": "Bearer s3cret"}
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        generating, go = held_generation(system, monkeypatch)
        base, srv, serving = started(system, api_key="s3cret")
        try:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                with pytest.raises(urllib.error.HTTPError) as refused:
                    scrape(base, headers)
                assert refused.value.code == 401
                assert json.loads(refused.value.read())["error"]["code"] == "invalid_api_key"
            assert call(base, "/metrics", method="HEAD", headers=key) == (200, "")
            answers: list[tuple[int, str]] = []
            asks = [threading.Thread(target=lambda: answers.append(call(base, CHAT, asking(), headers=key))) for _ in range(2)]  # fmt: skip
            asks[0].start()
            assert generating.wait(30)
            asks[1].start()
            service, deadline = srv.config.app.state.service, time.monotonic() + 30
            while service.waiting < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            began = time.monotonic()
            samples, _ = scrape(base, key)  # the generation is held: no turn to wait for
            assert time.monotonic() - began < 5
            assert samples["routerllm_requests_running", ()] == 1
            assert samples["routerllm_requests_waiting", ()] == 1
            go.set()
            for t in asks:
                t.join(60)
            assert [status for status, _ in answers] == [200, 200]
            samples, _ = scrape(base, key)
        finally:
            go.set()
            srv.should_exit = True
            serving.join(30)
    assert samples["routerllm_requests_running", ()] == 0
    assert total(samples, "routerllm_requests_total", model="tiny-light", outcome="length") == 2
    assert samples["routerllm_model_loaded", (("model", "tiny-light"),)] == 1
    assert samples["routerllm_model_loaded", (("model", "tiny-heavy"),)] == 0


def test_a_model_name_with_quotes_and_backslashes_is_escaped(tmp_path: Path) -> None:
    name = 'tiny "q" \\ back'
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["models"] = [tiny_model(name, "light", 0.1)]
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:  # fmt: skip
        status, text = call(base, CHAT, asking(model=name))
        assert status == 200, text
        samples, text = scrape(base)
    assert 'routerllm_prompt_tokens_total{model="tiny \\"q\\" \\\\ back"}' in text
    assert total(samples, "routerllm_requests_total", model=name) == 1


def test_the_latency_buckets_are_cumulative() -> None:
    """Each bucket counts the latencies at or below its bound, as Prometheus reads them."""
    from routerllm.server.metrics import _Histogram

    histogram = _Histogram()
    for seconds in (0.01, 0.05, 0.3, 7.0, 500.0):
        histogram.observe(seconds)
    buckets = dict(histogram.buckets())
    assert [buckets[b] for b in ("0.05", "0.1", "0.5", "10.0", "120.0", "+Inf")] == [2, 2, 3, 4, 4, 5]  # fmt: skip
    assert len(buckets) == len(LATENCY_BUCKETS_S) + 1 and histogram.total == pytest.approx(507.36)  # fmt: skip


def test_an_observer_that_fails_loses_no_row(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "requests.sqlite")
    seen: list[str] = []

    def broken(row: Any) -> None:
        raise ValueError("a bug")

    log.observers += [broken, lambda row: seen.append(row.id)]
    row = record("m", datetime.now(timezone.utc), co2_kg=0.001)
    log.append(row)
    assert log.count() == 1 and seen == [row.id]
    log.close()


def test_without_prometheus_client_the_server_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        hide_package(monkeypatch, "prometheus_client")
        with pytest.raises(MissingDependencyError, match=r"routerllm\[server\]"):
            server_app.create_app(system)


def test_a_stopped_server_no_longer_counts_the_logs_rows(tmp_path: Path) -> None:
    """Each app registered its counting on its system's log for good: a system served
    again and again (a test's, a Python caller's) had every stopped app's metrics still
    counting each row it logged. Now a server, run by uvicorn or by an ASGI server
    that runs the app's lifespan, takes its counting off as it stops."""
    from fastapi.testclient import TestClient

    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        with running(system):
            assert (
                len(system.log.observers) == 2
            )  # its metrics, and its full-log line (RepeatedFault)
        assert system.log.observers == []
        with TestClient(server_app.create_app(system)):  # runs the lifespan
            assert len(system.log.observers) == 2
        assert system.log.observers == []


class _Busy(NullMeter):
    """A meter of one's own whose blocks ran while other processes used ``share`` of the
    machine's CPU: a share the test sets, whatever this machine's load is."""

    share: float | None = None

    @contextmanager
    def measure(self, component: str) -> Iterator[object]:  # type: ignore[override]
        with super().measure(component) as slot:
            yield slot
        slot.result = dataclasses.replace(slot.result, others_cpu_share=self.share)


def test_the_requests_measured_under_contention_are_counted_as_the_report_counts_them(
    tmp_path: Path,
) -> None:
    """``/metrics`` had no count of the requests measured under contention (their energy
    and time may be overstated), which ``routerllm report`` counts: an operator's alert
    could not see a busy machine. It counts them by model, answered or failed, not those
    the budgets refused (apart, as in the report): the report's count is its sum."""
    from routerllm.carbon.log_rows import FAILED, REFUSED
    from routerllm.carbon.report import logged_report

    from .test_contended_requests import request

    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip
    meter = _Busy()
    with RouterLLM(config, meter=meter) as system, running(system) as base:
        samples, _ = scrape(base)
        assert total(samples, "routerllm_requests_contended_total") == 0
        asked = ((0.7, "auto"), (0.1, "auto"), (None, "auto"), (0.9, "tiny-medium"))
        for k, (share, model) in enumerate(asked):
            meter.share = share
            status, text = call(base, CHAT, asking(("user", f"Name {k + 2} sorting algorithms."), model=model))  # fmt: skip
            assert status == 200, text
        # rows the log takes as the server runs: a failed one contended, a refused one not
        # counted (the report counts it apart)
        failed = dataclasses.replace(request("failed", "2026-12-07T10:00:00", 0.5, 0.5, 0.5), finish_reason=FAILED)  # fmt: skip
        refused = dataclasses.replace(request("refused", "2026-12-07T10:01:00", 0.9, 0.9, 0.9), finish_reason=REFUSED)  # fmt: skip
        system.log.append(failed)
        system.log.append(refused)
        samples, text = scrape(base)
        rows = list(system.log.records())
    contended = "routerllm_requests_contended_total"
    # the 70 % and the 90 % answers, the failed row
    assert total(samples, contended) == 3 == sum(r.contended and r.finish_reason != REFUSED for r in rows)  # fmt: skip
    assert total(samples, contended, model="tiny-medium") >= 1  # asked by name, at 90 %
    for m in system.config.models:
        mine = [r for r in rows if r.model == m.name and r.finish_reason != REFUSED]
        assert total(samples, contended, model=m.name) == sum(r.contended for r in mine), m.name
    report = logged_report(config)
    assert report.contended.requests == total(samples, contended)
    assert "# TYPE routerllm_requests_contended_total counter" in text
