"""What an answered request, one no model answered once one was loaded, or one the
budgets refused once it was routed, writes to the request log: its ``RequestRecord``, the
budgets told what it spent, the predictor taught (by answers only).
``RequestAnswering`` (``routerllm/answering.py``) inherits these methods."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from routerllm.carbon.budget import spent_so_far
from routerllm.carbon.log_rows import FAILED, REFUSED, RequestRecord, prompt_hash
from routerllm.carbon.meter import NOT_MEASURED
from routerllm.count_reads import loaded_for_request, untaken_reads
from routerllm.exceptions import RequestLogError
from routerllm.log_repeats import RepeatedFault
from routerllm.model_calls import failed_generation
from routerllm.routed_result import RoutedResult

if TYPE_CHECKING:
    from routerllm.backends.base import GenerationRequest
    from routerllm.carbon.budget import Admission, CarbonBudget
    from routerllm.carbon.meter import Grid, Measurement
    from routerllm.carbon.predictor import CarbonPredictor
    from routerllm.carbon.request_log import RequestLog
    from routerllm.exceptions import BudgetExceededError, RouterLLMError
    from routerllm.model_calls import ModelCalls
    from routerllm.routers.base import RoutingDecision

log = logging.getLogger(__name__)

#: Set within :func:`refusal_log_errors_said_by_caller`.
_CALLER_SAYS = ContextVar("refusal_log_errors_said_by_caller", default=False)


@contextlib.contextmanager
def refusal_log_errors_said_by_caller() -> Iterator[None]:
    """Within the block (in this thread), a request refused by the budgets once routed
    whose row the request log could not take, or took while its emissions CSV could
    not, is not said as a warning (``unlogged_refusals``, ``unmirrored_rows``): the
    caller says it itself, in its own words, from ``BudgetExceededError.log_error``
    (``demo``'s ``warning:`` or ``error:`` line), where it was said twice, in two
    styles (until 2026-12-07). The budgets count it as before."""
    token = _CALLER_SAYS.set(True)
    try:
        yield
    finally:
        _CALLER_SAYS.reset(token)


def unlogged_failures() -> RepeatedFault:
    """What says the failed requests whose spending the request log could not take (its
    disk full): the first in full, the next counted, the streak's end once. A warning
    per request (until 2026-12-07) repeated one line for as long as the disk stayed full;
    a warning, not an error: the budgets count them from memory."""
    return RepeatedFault(log, "a failed request's spending could not be logged: %s", "failed requests' spending could not be logged", "the request log records requests again (%d failed requests' spending could not be logged meanwhile)", logging.WARNING)  # fmt: skip


def unlogged_refusals() -> RepeatedFault:
    """What says the requests refused by the budgets once routed whose row the request log
    could not take, as ``unlogged_failures`` says the failed ones: no request failed there
    (until 2026-12-07 they were said as failed requests)."""
    return RepeatedFault(log, "a refused request's spending could not be logged: %s", "refused requests' spending could not be logged", "the request log records requests again (%d refused requests' spending could not be logged meanwhile)", logging.WARNING)  # fmt: skip


def unmirrored_rows() -> RepeatedFault:
    """What says the failed and refused requests whose row the request log took but whose
    emissions-CSV rows it could not write (the CSV's disk full, the file made read-only):
    once per streak, as ``unlogged_failures`` says a row lost. Until 2026-12-07 they were
    said as rows the log could not take ("... could not be logged"), though the log, the
    budgets and the reports have them; the next process that opens the log adds them to
    the CSV."""
    return RepeatedFault(log, "a request is in the request log but not in its emissions CSV: %s", "requests are in the request log but not in its emissions CSV", "the emissions CSV takes requests' rows again (%d requests' rows could not be added to it meanwhile: they are in the request log, and the next process that opens it for writing adds them)", logging.WARNING)  # fmt: skip


class AnswerLogging:
    """The logging half of ``RequestAnswering``; ``RouterLLM`` sets the attributes below."""

    calls: ModelCalls
    budget: CarbonBudget | None
    log: RequestLog
    predictor: CarbonPredictor
    grid: Grid  # the grid every request's CO2 is computed for
    unlogged: RepeatedFault  # unlogged_failures(): the failed requests the log did not take
    unlogged_refused: RepeatedFault  # unlogged_refusals(): the refused ones it did not take
    unmirrored: RepeatedFault  # unmirrored_rows(): those it took, not in its emissions CSV

    def _failed(
        self,
        req: GenerationRequest,
        name: str,
        decision: RoutingDecision,
        admission: Admission,
        routing: Measurement,
        loading: Measurement | None,
        loading_cost: float,
        tag: str,
        error: RouterLLMError,
        earlier: Measurement | None = None,
        unrun: Measurement | None = None,
        request_id: str = "",
    ) -> None:
        """Log a request no model answered once one was reached (``name`` the last tried),
        for what its routing, ``loading`` (of it, ``earlier``: the loads of the models it
        stepped up from, kept apart as an answer's ``escalated`` is) and the generation
        that failed (``error``'s ``inference``) spent (finish reason ``FAILED``), so that
        the reports and the budgets count it. Nothing where no model was reached
        (``loading`` None and no generation); where it cannot be logged, a warning, and
        the budgets count it from memory: the caller gets the model's error all the same.
        A model already loaded that refuses the request before it generates (its chat
        template, a prompt over its context: a ``PromptError``) spent no load, but the
        request's routing was spent: it is logged for that, as a cold model's refusal is
        for its routing and load (until 2026-12-07 nothing was logged: the routing was
        lost to the log, the budgets and the reports, and whether a row was written
        depended on the model being loaded already); one that fails while generating,
        for that generation too. ``unrun``: the routing of the batch's requests after
        it, which will not run, is logged with its own (the log's totals are the batch's
        measured routing). Its row's id is ``request_id``: the id a stream's text came
        under before it failed (until 2026-12-07 a new one, which no row had), else a new
        one; ``error.request_id`` once the log holds the row."""
        generation = failed_generation(error)
        # what the counts read of models that did not run (``count_reads``): another
        # model's, as the loads of those stepped up from are
        if (others := untaken_reads()) is not None:
            loading = others if loading is None else others.plus(loading)
            earlier = others if earlier is None else others.plus(earlier)
            if self.calls.priced_by_energy(name):
                loading_cost += self.calls.routing_cost(others)
        # a generation that failed is logged whatever it metered: a remote model's call, or
        # a local one's with carbon tracking off (0 kWh), is as failed as a measured one
        if loading is None and generation is None:
            return
        if unrun is not None:
            routing = routing.plus(unrun)
        components = {m.component: m for m in (routing, loading, generation) if m is not None}
        cost = loading_cost + self.calls.billed_cost(name, error)  # a remote's tokens billed
        if generation is not None and self.calls.priced_by_energy(name):
            cost += self.calls.routing_cost(generation)
        billed = error.billed_tokens if generation is not None else (0, 0)
        if loading_cost > 0 or self.calls.priced_by_energy(name):
            cost += self.calls.routing_cost(routing)  # where energy is the price
        record = RequestRecord(
            id=request_id or uuid.uuid4().hex,
            timestamp=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            prompt_sha256=prompt_hash(req.prompt),
            prompt_chars=len(req.prompt),
            model=name,
            router=decision.router,
            confidence=decision.confidence,
            prompt_tokens=billed[0],  # what a remote endpoint said its failed generation used
            completion_tokens=billed[1],
            latency_s=sum(m.duration_s for m in components.values()),
            cost_usd=cost,
            components=components,
            tag=tag,
            finish_reason=FAILED,
            escalated={} if earlier is None else {"model_loading": earlier},
            load_error=str(error) if error.load_failed else "",  # no load: not churn
            grid=self.grid,
            # loaded, then refused (a GGUF as a transformers model_id, a split model's part
            # too short to count by) or failed generating; not where its count's read alone
            model_loaded=loaded_for_request(name),
        )  # never shown to the predictor (nor learned from the log): no answer, no rate
        if self.budget is not None:
            self.budget.settle(admission, spent_so_far(cost, *components.values()))
        try:
            with self.budget.recording(admission) if self.budget else contextlib.nullcontext():
                self.log.append(record)
            self._log_took_a_row()
            error.request_id = record.id  # the caller can name the row it finds
        except RequestLogError as e:
            if e.logged:  # in the log, only the emissions CSV missed it
                error.request_id = record.id
                self._log_took_a_row(mirrored=False)
                self.unmirrored.failed(str(e))
            else:
                self.unlogged.failed(str(e))
            if self.budget is not None:  # counted from memory, as an unlogged answer is
                self.budget.release(admission, logged=e.logged)

    def _record(self, req: GenerationRequest, result: RoutedResult, tag: str) -> RequestRecord:
        """``result``'s row in the request log, as of now (its cascade's and load's fields
        left to the caller)."""
        return RequestRecord(
            id=result.request_id,
            timestamp=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            prompt_sha256=prompt_hash(req.prompt),
            prompt_chars=len(req.prompt),
            model=result.model,
            router=result.router,
            confidence=result.confidence,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_s=result.latency_s,
            cost_usd=result.cost_usd,
            components=result.components,
            tag=tag,
            finish_reason=result.finish_reason or "",
            grid=self.grid,
            model_loaded=loaded_for_request(result.model),  # a count's read is no load
        )

    def _refused(
        self,
        req: GenerationRequest,
        decision: RoutingDecision,
        routing: Measurement,
        tag: str,
        error: BudgetExceededError,
        unrun: Measurement | None = None,
    ) -> None:
        """Log a request the budgets refused once its router had run (``error``): its
        routing was spent, though no model ran. Its row (finish reason ``REFUSED``, the
        model the router chose, 0 tokens, its routing alone, with ``unrun``: the routing of
        the batch's requests after it, which do not run) is counted by the budgets, the
        report (apart from the answers) and ``/metrics``, as the message's "this request
        spent already" said; never by the predictor nor the cache (no answer). It goes in
        ``error.result``. Where the log cannot take it, a warning, and the budgets count
        it from memory: the caller gets the refusal all the same, the log's error in
        ``error.log_error`` (its id then finds no row)."""
        if unrun is not None:
            routing = routing.plus(unrun)
        priced = self.calls.priced_by_energy(decision.model)  # routing is paid for then
        # what the predictions' counts read of the models' files (``count_reads``)
        components = {m.component: m for m in (routing, untaken_reads()) if m is not None}
        spent = list(components.values())
        result = RoutedResult(
            text="",
            model=decision.model,
            prompt_tokens=0,
            completion_tokens=0,
            latency_s=sum(m.duration_s for m in spent),
            finish_reason=REFUSED,
            confidence=decision.confidence,
            router=decision.router,
            reason=f"{decision.reason}; refused by the budgets: {error}",
            cost_usd=sum(self.calls.routing_cost(m) for m in spent) if priced else 0.0,
            components=components,
            request_id=uuid.uuid4().hex,
            token_priced=not priced,
            grid=self.grid,
        )
        error.result = result
        record = self._record(req, result, tag)  # never shown to the predictor: no answer
        try:
            self.log.append(record)
            self._log_took_a_row()
        except RequestLogError as e:
            error.log_error = e  # the caller says it: the id it names has no row, or no CSV row
            if e.logged:
                self._log_took_a_row(mirrored=False)
            if not _CALLER_SAYS.get():  # else the caller alone says it
                (self.unmirrored if e.logged else self.unlogged_refused).failed(str(e))
            if self.budget is not None and not e.logged:
                self.budget.count_unlogged(spent_so_far(result.cost_usd, *spent))

    def _logged(
        self,
        req: GenerationRequest,
        result: RoutedResult,
        tag: str,
        failed_load: tuple[str, str, Measurement] | None = None,
        completion_chars: int | None = None,
    ) -> None:
        """Log an answered request (``RequestLogError`` carries the answer if it cannot be),
        with the part of its components the models a cascade escalated from spent,
        ``failed_load``: the model, error and load of its step up whose load failed, and
        ``completion_chars``: the length of the text its model generated (None: a cached
        answer, which generated none)."""
        load_model, load_error, load = failed_load or ("", "", None)
        # carbon tracking off measured nothing: its 0 kWh is not known
        load_kwh = load.energy_kwh if load is not None and (load.method != NOT_MEASURED or load.energy_kwh) else None  # fmt: skip
        record = dataclasses.replace(
            self._record(req, result, tag),
            escalated=result.escalated,
            load_error=load_error,
            load_error_model=load_model,
            load_error_kwh=load_kwh,
            completion_chars=completion_chars,
        )
        try:
            self.log.append(record)
        except RequestLogError as e:
            e.result = result  # the answer was paid for: the caller can still have it
            if e.logged:  # in the log, not in the emissions CSV: a restart would learn it
                self.predictor.observe(record)
                self._log_took_a_row(mirrored=False)  # the caller says the CSV's fault
            raise
        self._log_took_a_row()
        self.predictor.observe(record)

    def _log_took_a_row(self, mirrored: bool = True) -> None:
        """The log takes rows again: a streak of failed or refused ones it did not is
        over; and, where its emissions CSV took the row too (``mirrored``), a streak of
        rows the CSV did not."""
        self.unlogged.worked()
        self.unlogged_refused.worked()
        if mirrored:
            self.unmirrored.worked()
