"""The server's ``GET /metrics``: what it answered, spent and refused, in Prometheus's text
format, for an operator's Prometheus (and Grafana) to scrape, as vLLM's, TGI's and
llama.cpp's servers offer.

``ServerMetrics`` counts each request the request log takes (``RequestLog.observers``):
the same figures the log's row holds, per model: requests by outcome, tokens, energy and
CO2 per component, cost, cache hits, those measured under contention, and the latency
logged (an answer's apart from that of a request that ended without one: failed or
cancelled); it counts the requests
refused with a 429 or a 503 (by their error code), the time to a stream's first text,
and reads at each scrape what changes by itself: the requests waiting for the turn or
holding it, the loaded models, the budgets' use of each window. Counters count since
the process started (``process_start_time_seconds`` says when): Prometheus's
``rate()`` and ``increase()`` take a restart's reset in their stride.

prometheus_client (a dependency of CodeCarbon, and of the ``server`` extra) writes
the text format (its escaping of label values, its histogram lines); the figures are
kept here, in one registry per app, not its global default one, so that two servers
in one process (as in the tests) neither share nor collide. Label values come from the
config and from RouterLLM's own fixed sets, never from a client: a model the config no
longer names (an answer cached under an old config) counts as ``OTHER``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from routerllm.backends.interrupts import CANCELLED
from routerllm.carbon.cpu_share import CONTENDED_SHARE
from routerllm.carbon.log_rows import CUT, FAILED, REFUSED
from routerllm.carbon.meter import CACHED, COMPONENTS
from routerllm.exceptions import RouterLLMError, missing_dependency

if TYPE_CHECKING:
    from routerllm.carbon.log_rows import RequestRecord
    from routerllm.system import RouterLLM

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Histogram buckets (seconds) for a local model on CPUs: a cached answer's tens of
milliseconds to a large model's two minutes; +Inf above."""

OUTCOMES = ("stop", CUT, CANCELLED, FAILED, REFUSED)
"""The outcomes counted by name (the log's finish reasons; ``error``: no model answered;
``refused:budget``: the budgets refused it once routed, its routing's energy counted);
any other finish reason counts as ``OTHER``."""

UNFINISHED = (FAILED, CANCELLED)
"""The outcomes of the requests that ended without a whole answer, a model reached: their
latency is apart from the answers' (``routerllm_unfinished_request_latency_seconds``).
Mixed in, a backend's 30 s timeout or a load that failed at once read as an answer's
latency; a refused request's (``REFUSED``: its routing alone, no model) is in neither."""

OTHER = "other"

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The text format's media type that Prometheus 2 and 3 both read."""


@dataclass
class _Histogram:
    """One label set's observations: counts per bucket (not cumulative), sum, count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        place = next((i for i, le in enumerate(LATENCY_BUCKETS_S) if value <= le), len(LATENCY_BUCKETS_S))  # fmt: skip
        self.counts[place] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        bounds = [*(_number(le) for le in LATENCY_BUCKETS_S), "+Inf"]
        running, out = 0, []
        for bound, count in zip(bounds, self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class ServerMetrics:
    """The figures behind one app's ``GET /metrics``; ``service`` is the app's ``_Service``
    (its ``waiting`` and ``in_line`` are read at each scrape). Its counting is thread-safe:
    the log's rows come from the generating thread, the refusals from the event loop."""

    def __init__(self, system: RouterLLM, service: Any) -> None:
        try:
            from prometheus_client import CollectorRegistry, ProcessCollector
        except ImportError as e:
            raise missing_dependency("prometheus-client", "server", e) from e
        self.system, self.service = system, service
        self.models = [m.name for m in system.config.models]
        self._known = frozenset(self.models)
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], float] = {}
        # per model: its counters, every configured model's from 0 (rate() needs a start)
        self.tokens = {kind: dict.fromkeys(self.models, 0.0) for kind in ("prompt", "completion")}
        self.energy = {(m, c): 0.0 for m in self.models for c in COMPONENTS}
        self.co2 = {(m, c): 0.0 for m in self.models for c in COMPONENTS}
        self.cost = dict.fromkeys(self.models, 0.0)
        self.cache_hits = dict.fromkeys(self.models, 0.0)
        # measured under contention (RequestRecord.contended), as the report counts them
        self.contended = dict.fromkeys(self.models, 0.0)
        self.refusals: dict[tuple[str, str], float] = {}
        self.latency: dict[str, _Histogram] = {}  # the answers' (cached ones too), by model
        self.unfinished: dict[tuple[str, str], _Histogram] = {}  # by model and outcome
        self.first_text: dict[str, _Histogram] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)  # process_start_time_seconds: when counting began

    def model(self, name: str) -> str:
        """``name`` as a label value: a configured model's, else ``OTHER``."""
        return name if name in self._known else OTHER

    # -- counting ---------------------------------------------------------------
    def logged(self, record: RequestRecord) -> None:
        """Count ``record``, a row the request log has just taken."""
        model = self.model(record.model)
        outcome = record.finish_reason if record.finish_reason in OUTCOMES else OTHER
        inference = record.components.get("llm_inference")
        with self._lock:
            key = (model, record.router or OTHER, outcome)
            self.requests[key] = self.requests.get(key, 0.0) + 1
            for kind, tokens in (("prompt", record.prompt_tokens), ("completion", record.completion_tokens)):  # fmt: skip
                self.tokens[kind][model] = self.tokens[kind].get(model, 0.0) + tokens
            for name, part in record.components.items():
                if name in COMPONENTS:
                    self.energy[model, name] = self.energy.get((model, name), 0.0) + part.energy_kwh  # fmt: skip
                    self.co2[model, name] = self.co2.get((model, name), 0.0) + part.co2_kg
            self.cost[model] = self.cost.get(model, 0.0) + record.cost_usd
            if inference is not None and inference.method == CACHED:
                self.cache_hits[model] = self.cache_hits.get(model, 0.0) + 1
            if outcome != REFUSED and record.contended:  # the refused are apart, as in the report
                self.contended[model] = self.contended.get(model, 0.0) + 1
            if outcome in UNFINISHED:  # no whole answer: not an answer's latency
                self.unfinished.setdefault((model, outcome), _Histogram()).observe(record.latency_s)  # fmt: skip
            elif outcome != REFUSED:  # no model ran: its routing is no model's latency
                self.latency.setdefault(model, _Histogram()).observe(record.latency_s)

    def refused(self, status: int, code: str | None) -> None:
        """Count a request refused with ``status`` (429 and 503 are counted) and ``code``."""
        if status not in (429, 503):
            return
        key = (str(status), code or OTHER)
        with self._lock:
            self.refusals[key] = self.refusals.get(key, 0.0) + 1

    def first_token(self, model: str, seconds: float) -> None:
        """A stream's first text, ``seconds`` after its request arrived."""
        with self._lock:
            self.first_text.setdefault(self.model(model), _Histogram()).observe(seconds)

    def scrape(self) -> bytes:
        """The metrics in Prometheus's text format (``CONTENT_TYPE``)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Collector:
    """What the registry collects: the counts, copied under the lock, and the gauges read now."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self.metrics
        with m._lock:  # copies: the exposition is written outside the lock
            requests, refusals = dict(m.requests), dict(m.refusals)
            tokens = {kind: dict(counts) for kind, counts in m.tokens.items()}
            energy, co2, cost, hits = dict(m.energy), dict(m.co2), dict(m.cost), dict(m.cache_hits)
            contended = dict(m.contended)
            latency = {(k,): (list(h.buckets()), h.total) for k, h in m.latency.items()}
            unfinished = {k: (list(h.buckets()), h.total) for k, h in m.unfinished.items()}
            first = {(k,): (list(h.buckets()), h.total) for k, h in m.first_text.items()}

        def counter(name: str, doc: str, labels: Sequence[str], values: dict[Any, float]) -> Any:
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(key if isinstance(key, tuple) else (key,), value)
            return family

        def histogram(name: str, doc: str, labels: Sequence[str], values: dict[Any, tuple[list[tuple[str, float]], float]]) -> Any:  # fmt: skip
            family = HistogramMetricFamily(name, doc, labels=labels)
            for key, (buckets, total) in sorted(values.items()):
                family.add_metric(list(key), buckets, total)
            return family

        yield counter("routerllm_requests", "Requests the request log took since the server started (answered, cancelled, failed once a model ran, or refused by the budgets once routed), by model, router and outcome (finish reason: stop, length, cancelled, error, refused:budget, other)", ["model", "router", "outcome"], requests)  # fmt: skip
        yield counter("routerllm_prompt_tokens", "Prompt tokens of the logged requests, by model", ["model"], tokens["prompt"])  # fmt: skip
        yield counter("routerllm_completion_tokens", "Completion tokens of the logged requests, by model", ["model"], tokens["completion"])  # fmt: skip
        yield counter("routerllm_energy_kwh", "Energy (kWh) of the logged requests, by model and component (router_inference, model_loading, llm_inference); 0 where carbon tracking is off", ["model", "component"], energy)  # fmt: skip
        yield counter("routerllm_co2_kg", "CO2 (kg) of the logged requests, by model and component", ["model", "component"], co2)  # fmt: skip
        yield counter("routerllm_cost_usd", "Cost (USD) of the logged requests, by model", ["model"], cost)  # fmt: skip
        yield counter("routerllm_cache_hits", "Logged requests answered from the answer cache, by model", ["model"], hits)  # fmt: skip
        yield counter("routerllm_requests_contended", f"Logged requests measured while other processes used over {CONTENDED_SHARE:.0%} of the machine's CPU (their energy and time may be overstated), answered or failed, not those the budgets refused, by model; routerllm report counts them as contended", ["model"], contended)  # fmt: skip
        yield counter("routerllm_requests_refused", "Requests refused with a 429 or a 503, by status and reason (the error's code)", ["status", "reason"], refusals)  # fmt: skip
        yield histogram("routerllm_request_latency_seconds", "Logged latency of each answer, cached ones too (routing, loading and generation; not its wait for the turn; not a request that failed or was cancelled, nor one refused by the budgets), by model", ["model"], latency)  # fmt: skip
        yield histogram("routerllm_unfinished_request_latency_seconds", "Logged latency of each request that ended without a whole answer once a model was reached, by model and outcome (error: failed; cancelled: stopped half-way)", ["model", "outcome"], unfinished)  # fmt: skip
        yield histogram("routerllm_time_to_first_token_seconds", "Time from a streamed request's arrival (its wait for the turn included) to its first text, by model", ["model"], first)  # fmt: skip
        service = m.service
        yield GaugeMetricFamily("routerllm_requests_waiting", "Requests waiting for the model's turn", value=service.waiting)  # fmt: skip
        yield GaugeMetricFamily("routerllm_requests_running", "Requests holding the turn (generating): 0 or 1", value=max(service.in_line - service.waiting, 0))  # fmt: skip
        loaded = GaugeMetricFamily("routerllm_model_loaded", "1 for each model loaded now, 0 for the others", labels=["model"])  # fmt: skip
        now = set(_loaded(m.system))
        for name in m.models:
            loaded.add_metric([name], 1.0 if name in now else 0.0)
        yield loaded
        if (budgets := _budget_use(m.system)) is not None:
            used = GaugeMetricFamily("routerllm_budget_used_ratio", "Each configured budget window's use (spent, and held by the request running) as a fraction of its limit", labels=["quantity", "window"])  # fmt: skip
            for quantity, window, share in budgets:
                used.add_metric([quantity, window], share)
            yield used


def _loaded(system: RouterLLM) -> list[str]:
    """The models loaded now: read without the manager's lock, which a load holds for
    seconds (a scrape does not wait for it); a load changing the list as it is read is
    read again."""
    for _ in range(5):
        try:
            return system.manager.loaded_models
        except RuntimeError:  # changed while it was copied
            continue
    return []


def _budget_use(system: RouterLLM) -> list[tuple[str, str, float]] | None:
    """(quantity, window, share) of each budget window; None without budgets, or where
    the log cannot be read now (said in the server's log; the other metrics still go)."""
    budget = system.budget
    if budget is None:
        return None
    try:
        status = budget.status()
    except RouterLLMError as e:
        log.warning("the budgets' use could not be read for /metrics: %s", e)
        return None
    return [
        (s.quantity, s.window, s.share) for s in status if s.limit > 0 and math.isfinite(s.share)
    ]


def _number(value: float) -> str:
    """A bucket's bound as Prometheus writes it: 1.0, 0.05, 120.0."""
    return repr(float(value))


async def scraped(service: Any, request: Any) -> Any:
    """``GET /metrics``'s answer (``service``: the app's ``_Service``): Prometheus's text,
    written in a thread (the budgets' use is read from the log), without waiting for
    the turn (it runs no model); a 401 without the key, as every endpoint but /health."""
    import anyio.to_thread
    from starlette.responses import Response

    if (answer := service.unauthorised(request)) is None:
        try:
            text = await anyio.to_thread.run_sync(service.metrics.scrape)
            answer = Response(text, media_type=CONTENT_TYPE)
        except Exception as e:  # a bug: an OpenAI error object, as elsewhere
            answer = service.internal_error(e)
    return await service.bodiless(request, answer)
