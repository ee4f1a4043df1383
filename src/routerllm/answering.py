"""How a ``RouterLLM`` answers one routed request: from the request cache, or admitted
within the budgets, generated, checked and escalated where the cascade says, priced,
logged and cached. ``RouterLLM`` (``routerllm/system.py``) routes, then hands each
request to these methods, which it inherits; what each writes to the request log is in
``answer_logging.py``, the cascade's check of an answer and its say on a step up in
``cascade_step.py``, the caller's ``on_text`` and ``on_answer`` as the text comes in
``answer_callbacks.py``."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from routerllm.answer_callbacks import CallerRaised, Shown, check_not_in_callback, ignore_text
from routerllm.answer_logging import AnswerLogging
from routerllm.backends.interrupts import CANCELLED, also_cancellable
from routerllm.backends.llama_prompt import one_count_per_request
from routerllm.cache import answered_again, cache_key
from routerllm.carbon.budget import Admission, spent_so_far
from routerllm.carbon.log_rows import FAILED, own_part
from routerllm.cascade_step import CascadeStep
from routerllm.count_reads import reads_of_request, untaken_reads
from routerllm.exceptions import (  # fmt: skip
    BudgetExceededError,
    ContextLengthError,
    RequestLogError,
    RouterLLMError,
)
from routerllm.model_calls import failed_generation
from routerllm.model_header import contexts_in_words, effective_context
from routerllm.routed_result import FIXED, RoutedResult
from routerllm.stubs import completed, stub_of, styled

if TYPE_CHECKING:
    from routerllm.backends.base import Completion, GenerationRequest
    from routerllm.cache import RequestCache
    from routerllm.carbon.meter import Measurement
    from routerllm.carbon.predictor import Prediction
    from routerllm.config import AppConfig
    from routerllm.data.humaneval import HumanEvalProblem
    from routerllm.manager import LLMManager
    from routerllm.routers.base import RoutingDecision
    from routerllm.routing_scope import RoutingScope

# CallerRaised and check_not_in_callback live in answer_callbacks.py; importable from here
# as they were before
__all__ = ["CallerRaised", "RequestAnswering", "check_not_in_callback"]

log = logging.getLogger(__name__)


class _Keyed(NamedTuple):
    """A request's cache key, and the weights of each model it holds as they were found
    (``Backend.weights_stamp``) as the request came."""

    key: str
    weights: dict[str, str | None]


class _Fitted(NamedTuple):
    """The answer of the first model whose context the prompt fits (``RequestAnswering._fitted``)."""

    model: str
    answer: tuple[Completion, Measurement, Measurement, float]  # ModelCalls.attempt's
    refused: Measurement | None  # the loads of the models whose context it did not fit
    refused_cost: float  # their price
    reason: str  # what it adds to the routing's reason


def _said_further(refusal: ContextLengthError, why: str) -> ContextLengthError:
    """A model's ``refusal`` of a prompt too long for its context, with ``why`` no larger
    model answered it; the id of the row that logged the request (``_failed``) kept, as
    the server's 400 names it (until 2026-12-07 it was lost here: the row had an id that
    neither the error nor the 400 gave)."""
    said = ContextLengthError(f"{refusal}; {why}", refusal.param, refusal.context)
    said.request_id = refusal.request_id
    return said


class RequestAnswering(AnswerLogging, CascadeStep):
    """The answering half of ``RouterLLM``, which sets the attributes below (and those
    of ``AnswerLogging`` and ``CascadeStep``)."""

    config: AppConfig
    manager: LLMManager
    scope: RoutingScope
    cache: RequestCache | None
    _available_models: Callable[[], list[str]]

    def _run(
        self,
        req: GenerationRequest,
        decision: RoutingDecision,
        routing: Measurement,
        tag: str,
        unrun: Measurement | None = None,
    ) -> RoutedResult:
        """Answer one routed request, ``routing`` its share of its batch's routing;
        ``unrun``: the share of the batch's requests after it, which do not run if it
        fails, and so is logged with its failure (``_failed``)."""
        # the text goes to the caller's on_text as it is generated where nothing can take
        # it back (``_answer``), else whole at the end: ``shown`` gives it what is left.
        # An exception the caller's on_text raises stops the generation between two
        # tokens, as a client gone does: the answer so far is logged (finish reason
        # "cancelled", with ``unrun``: the request stops its batch), then ``CallerRaised``.
        shown = None
        stopping: contextlib.AbstractContextManager[threading.Event | None] = contextlib.nullcontext()  # fmt: skip
        if req.on_text is not None or req.on_answer is not None:  # on_answer alone is told too
            shown = Shown(req.on_text or ignore_text, req.on_answer)
            req = dataclasses.replace(req, on_text=None, on_answer=None)
            stopping = also_cancellable()
        # the prompt counted for a model's prediction is the one its generation checks;
        # what a count reads of a model's files (its vocabulary, its tokenizer) is measured
        # as this request's (``count_reads``)
        with stopping as stop, one_count_per_request(), reads_of_request(self.calls.meter):
            if shown is not None:
                shown.stop = stop
            result = self._shown_run(req, decision, routing, tag, unrun, shown)
        if shown is not None:
            shown.raise_failure(result)
        return result

    def _shown_run(
        self,
        req: GenerationRequest,
        decision: RoutingDecision,
        routing: Measurement,
        tag: str,
        unrun: Measurement | None,
        shown: Shown | None,
    ) -> RoutedResult:
        """``_run``'s answer, its text given to ``shown`` as it is generated where it may."""
        reason = decision.reason
        stub = self._stub(req)
        if stub is not None:
            reason += f"; asked to complete the function {stub.entry_point} in each model's code style"  # fmt: skip
        cache, keyed = self.cache, None
        if cache is not None:  # the generation settings the model's backend really uses
            backend = self.manager.backend(decision.model)
            cascade = self.config.cascade  # its steps, as available now: one back changes them
            named = decision.router == FIXED  # refused where the prompt is too long for it
            # the models a cascade may escalate to, or a routed prompt too long for the
            # model's context go to: an answer made while one was down is not one to serve
            # once it is back
            larger = self.scope.larger(decision.model) if cascade.enabled or not named else []
            weights = self._weights([decision.model, *larger])
            key = cache_key(req, decision.model, backend.generation, cascade, larger, named, weights)  # fmt: skip
            keyed = None if key is None else _Keyed(key, weights)
        # the same request in another thread meanwhile waits for this one's answer, rather
        # than run the model again once it has (each model answers one caller at a time)
        with cache.filling(keyed.key) if cache is not None and keyed is not None else contextlib.nullcontext():  # fmt: skip
            if cache is not None and keyed is not None and (hit := cache.get(keyed.key)):
                return self._from_cache(
                    req, decision, routing, hit, tag, unrun, shown
                )  # spends its routing only
            try:
                admission = self._admit(req, decision, routing, stub)
            except BudgetExceededError as e:  # its routing was spent: logged, counted
                self._refused(req, decision, routing, tag, e, unrun)
                raise
            logged = True
            try:
                return self._answer(req, decision, admission, routing, stub, reason + admission.reason, tag, keyed, unrun, shown)  # fmt: skip
            except RequestLogError as e:
                # answered, not logged: the budgets go on counting it (a row written to the
                # log but not to the emissions CSV is counted from the log, not twice)
                logged = e.result is None or e.logged
                raise
            finally:
                if self.budget is not None:
                    self.budget.release(admission, logged)

    def _weights(self, models: list[str]) -> dict[str, str | None]:
        """The identity of each model's weights now (a model file replaced since is loaded
        again: its answers are another key's)."""
        return {m: self.manager.backend(m).weights_stamp() for m in models}

    def _admit(
        self,
        req: GenerationRequest,
        decision: RoutingDecision,
        routing: Measurement,
        stub: HumanEvalProblem | None,
    ) -> Admission:
        """The model the request goes to within the budgets (the decision's without
        budgets), with its prediction."""
        if self.budget is None:
            return Admission(decision.model, "", self._predicted(req, decision.model, stub))
        smaller = self.scope.smaller(decision.model)
        spent = spent_so_far(self.calls.routing_cost(routing), routing)
        fixed = decision.router == FIXED
        return self.budget.admit(decision.model, smaller, fixed, lambda m: self._predicted(req, m, stub), spent)  # fmt: skip

    def _answer(
        self,
        req: GenerationRequest,
        decision: RoutingDecision,
        admission: Admission,
        routing: Measurement,
        stub: HumanEvalProblem | None,
        reason: str,
        tag: str,
        keyed: _Keyed | None,
        unrun: Measurement | None = None,
        shown: Shown | None = None,
    ) -> RoutedResult:
        """Generate (escalating where the cascade says), measure, price and log; cache the
        answer under ``keyed``'s key unless the budgets changed it, or the weights it holds
        are not those found now (a model's files replaced as the request waited: the
        answer may be the new weights', which a key with the old ones would give once the
        old files are back). The answer's text goes to
        ``shown`` as it is generated unless what follows may change it: a function stub's
        answer is completed in the model's code style, and the cascade may replace it
        with a larger model's (the whole text comes at the end then)."""
        # the budgets changed the answer (or an escalation failed): it is not cached
        budgeted = bool(admission.reason) or admission.model != decision.model
        cascade = self.config.cascade
        final = stub is None and not (cascade.enabled and self.scope.larger(admission.model))
        request_id = uuid.uuid4().hex  # known before the first piece of text (``Shown``)
        asked = req
        if shown is not None and final:
            asked = dataclasses.replace(req, on_text=shown.to(request_id))
        fitted = self._fitted(asked, stub, admission, decision, routing, tag, request_id, unrun)
        name, reason = fitted.model, reason + fitted.reason
        completion, loading, inference, cost = fitted.answer
        # what the models escalated from spent: the loads of those the prompt did not fit
        earlier: dict[str, Measurement] = {}
        if fitted.refused is not None:
            loading, earlier = fitted.refused.plus(loading), {"model_loading": fitted.refused}
            cost += fitted.refused_cost
        by_energy = self.calls.priced_by_energy(name) or fitted.refused_cost > 0
        # a step up whose load failed (a corrupt file): its model, error and load, logged
        # as a failed load of that model (the report's failed_loads), not of the answer's
        failed_load: tuple[str, str, Measurement] | None = None
        # the models the cache key holds (RoutingScope.larger), the smallest first; an answer
        # cancelled half-way (its caller gone) is neither checked nor escalated
        while cascade.enabled and completion.finish_reason != CANCELLED and (larger := self.scope.larger(name)):  # fmt: skip
            step = self._step(req, stub, name, completion, larger)
            if step.check is not None:
                routing = routing.plus(step.check)
            reason += step.said
            budgeted = budgeted or step.kept  # not the answer the cascade gives: not cached
            if not step.up:
                break
            bigger, past, why = step.bigger, step.past, step.why
            spent = spent_so_far(
                cost + self.calls.routing_cost(routing), routing, loading, inference
            )
            if over := self._over_budgets(req, stub, admission, bigger, spent):
                reason += f", not escalated to {bigger}{past}: {over}"
                budgeted = True
                break
            reason += f", escalated to {bigger}{past}" + (f": {why}" if why else "")
            try:
                completion_, more_loading, more_inference, more_cost = self.calls.attempt(bigger, req, stub)  # fmt: skip
            except RouterLLMError as e:  # keep the answer in hand rather than lose the request
                log.warning("cascade: %s failed, keeping %s's answer: %s", bigger, name, e)
                reason += f", which failed ({e}); kept {name}'s answer"
                if e.load_failed and e.loading is not None:
                    failed_load = (bigger, str(e), e.loading)
                budgeted = True  # not the answer a later request should get: not cached
                parts = {"model_loading": loading, "llm_inference": inference}
                for paid in (e.loading, failed_generation(e)):  # not the answer's model's own
                    if paid is None:
                        continue
                    before = earlier.get(paid.component)
                    own = own_part(parts[paid.component], before)
                    assert own is not None  # the answer's own loading and generation
                    earlier[paid.component] = paid if before is None else before.plus(paid)
                    # the earlier models' methods first, as ``own_part`` takes them off
                    parts[paid.component] = earlier[paid.component].plus(own)
                    if self.calls.priced_by_energy(bigger):
                        cost += self.calls.routing_cost(paid)
                        by_energy = True
                cost += self.calls.billed_cost(bigger, e)  # the tokens its endpoint billed
                loading, inference = parts["model_loading"], parts["llm_inference"]
                break
            name, completion = bigger, completion_
            earlier = {m.component: m for m in (loading, inference)}
            loading = loading.plus(more_loading)
            inference = inference.plus(more_inference)
            cost += more_cost
            by_energy = by_energy or self.calls.priced_by_energy(name)
        # what the counts read of models that did not run (a budget's prediction of a
        # smaller one, of a larger one not escalated to): another model's, as escalated
        if (others := untaken_reads()) is not None:
            loading = others.plus(loading)
            before = earlier.get("model_loading")
            earlier["model_loading"] = others if before is None else others.plus(before)
            if by_energy:
                cost += self.calls.routing_cost(others)
        text = completion.text if stub is None else completed(stub, completion.text, self.calls.style(name))  # fmt: skip
        # its text not yet given, given before its row is written, as its spending is
        # settled: a caller whose function raised stops its batch here
        if shown is not None and shown.given(name, request_id, text) and unrun is not None:
            routing = routing.plus(unrun)
        components = {m.component: m for m in (routing, loading, inference)}
        if by_energy:  # where energy is the price, routing energy is paid for too
            cost += self.calls.routing_cost(routing)
        if self.budget is not None and (broken := self.budget.settle(admission, spent_so_far(cost, *components.values()))):  # fmt: skip
            log.warning("request over budget: %s", "; ".join(broken))
            reason += "; over budget: " + "; ".join(broken)
            budgeted = True
        result = RoutedResult(
            text=text,
            model=name,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=sum(m.duration_s for m in components.values()),
            finish_reason=completion.finish_reason,
            prompt_state=completion.prompt_state,
            confidence=decision.confidence,
            router=decision.router,
            reason=reason,
            cost_usd=cost,
            components=components,
            request_id=request_id,
            predicted=admission.prediction,
            escalated=earlier,
            token_priced=not self.calls.priced_by_energy(name),
            grid=self.grid,
        )
        with self.budget.recording(admission) if self.budget else contextlib.nullcontext():
            self._logged(req, result, tag, failed_load, len(completion.text))
        # an answer its endpoint says failed (finish reason "error") is logged as failed:
        # no answer for a later request, as the report's replay of the cache counts it; nor
        # is one cancelled half-way (logged for what it spent)
        if keyed is not None and self.cache is not None and not budgeted and result.finish_reason not in (FAILED, CANCELLED) and self._weights(list(keyed.weights)) == keyed.weights:  # fmt: skip
            # kept with what its making added to the routing's reason (the stub's code
            # style, the cascade's checks and escalations): a later request's says so too
            self.cache.put(
                keyed.key, dataclasses.replace(result, reason=reason[len(decision.reason) :])
            )
        return result

    def _fitted(
        self,
        req: GenerationRequest,
        stub: HumanEvalProblem | None,
        admission: Admission,
        decision: RoutingDecision,
        routing: Measurement,
        tag: str,
        request_id: str,
        unrun: Measurement | None = None,
    ) -> _Fitted:
        """The admitted model's answer; where the prompt is too long for a routed model's
        context, the next larger model's with a longer context (a model the caller named
        answers or refuses it). A step up is within the budgets as a cascade's is. Where
        no model answers once one was loaded, the loads are logged (``_failed``) under
        ``request_id``, the id its ``on_answer`` and a stream's chunks were given."""
        name, refused, refused_cost, said = admission.model, None, 0.0, ""
        while True:
            try:
                if isinstance(req.on_text, Shown.Piece):  # the model whose text it is
                    req.on_text.model = name
                return _Fitted(name, self.calls.attempt(name, req, stub), refused, refused_cost, said)  # fmt: skip
            except RouterLLMError as e:
                earlier = refused  # the loads of the models stepped up from: not name's
                if e.loading is not None:  # the load is paid for, though the model refused
                    refused = e.loading if refused is None else refused.plus(e.loading)
                    if self.calls.priced_by_energy(name):
                        refused_cost += self.calls.routing_cost(e.loading)
                # the context that refused it: a backend's own can be shorter than configured;
                # a larger model is one to load where its GGUF's context is longer too, one
                # to ask where its endpoint's is (as its /models gave them). Looked for only
                # then: the available models may be none by now (an endpoint found
                # unreachable left), which is not this request's error
                longer: list[str] = []
                stepping = isinstance(e, ContextLengthError) and decision.router != FIXED
                if stepping:
                    context = getattr(e, "context", None) or self._context(name)
                    longer = [m for m in self.scope.larger(name) if self._context(m) > context]
                if not longer:
                    self._failed(req, name, decision, admission, routing, refused, refused_cost, tag, e, earlier, unrun, request_id)  # fmt: skip
                    if isinstance(e, ContextLengthError) and stepping and (larger := self.scope.larger(name)):  # fmt: skip
                        # why no larger model was tried: a configured context_length can be longer
                        raise _said_further(e, f"no larger model's context is longer ({contexts_in_words(self.config, larger, self.manager.backend)})") from None  # fmt: skip
                    raise
                bigger = longer[0]
                spent = spent_so_far(
                    refused_cost + self.calls.routing_cost(routing),
                    routing,
                    *([refused] if refused is not None else []),
                )
                if over := self._over_budgets(req, stub, admission, bigger, spent):
                    self._failed(req, name, decision, admission, routing, refused, refused_cost, tag, e, earlier, unrun, request_id)  # fmt: skip
                    # a longer context is looked for only where one refused the prompt
                    assert isinstance(e, ContextLengthError)
                    raise _said_further(e, f"{bigger}, whose context is longer, is not within the budgets: {over}") from None  # fmt: skip
                said += f"; the prompt is too long for {name}'s context of {context} tokens: sent to {bigger}"  # fmt: skip
                name = bigger

    def _context(self, name: str) -> int:
        """The context ``name`` runs with: its GGUF's or its endpoint's, where shorter."""
        return effective_context(self.config.model(name), self.manager.backend(name))

    def _over_budgets(
        self,
        req: GenerationRequest,
        stub: HumanEvalProblem | None,
        admission: Admission,
        bigger: str,
        spent: dict[str, float],
    ) -> str:
        """Why the admitted request, having spent ``spent``, may not step up to ``bigger``
        (a cascade's escalation or a longer context): "" where it may."""
        if self.budget is None:
            return ""
        return self.budget.escalation(
            admission, bigger, lambda m: self._predicted(req, m, stub), spent
        )

    def _from_cache(
        self,
        req: GenerationRequest,
        decision: RoutingDecision,
        routing: Measurement,
        hit: RoutedResult,
        tag: str,
        unrun: Measurement | None = None,
        shown: Shown | None = None,
    ) -> RoutedResult:
        """The cached answer ``hit``, as this request's, logged: only its routing was spent,
        and its reason says so where that broke a budget, as an answer's does; its text
        given to ``shown`` first, as ``_answer`` gives it (``unrun`` as there)."""
        priced = self.calls.priced_by_energy(hit.model)
        result = answered_again(hit, decision, routing, self.calls.routing_cost(routing) if priced else 0.0)  # fmt: skip
        if shown is not None and shown.given(result.model, result.request_id, result.text) and unrun is not None:  # fmt: skip
            routing = routing.plus(unrun)
            again = answered_again(hit, decision, routing, self.calls.routing_cost(routing) if priced else 0.0)  # fmt: skip
            result = dataclasses.replace(
                again, request_id=result.request_id
            )  # as said to on_answer
        cost = result.cost_usd
        if self.budget is not None and (broken := self.budget.settle(Admission(hit.model, "", None), spent_so_far(cost, routing))):  # fmt: skip
            log.warning("request over budget: %s", "; ".join(broken))
            result = dataclasses.replace(result, reason=f"{result.reason}; over budget: {'; '.join(broken)}")  # fmt: skip
        self._logged(req, result, tag)
        return result

    def _stub(self, req: GenerationRequest) -> HumanEvalProblem | None:
        """The function stub ``req`` asks to complete, asked in each model's code style
        (:mod:`routerllm.stubs`); None where it is none or the config sends it as written."""
        return stub_of(req) if self.config.generation.complete_stubs else None

    def _predicted(
        self, req: GenerationRequest, model: str, stub: HumanEvalProblem | None
    ) -> Prediction | None:
        # The prompt's own length, as the log keeps it: what the predictor learned from;
        # the output tokens the model is given: a stub's code style's (the caller's own
        # win), else the generation settings its backend holds, as the cache key does.
        backend = self.manager.backend(model)
        asked = styled(req, stub, self.calls.style(model)) if stub is not None else req
        max_new = asked.max_new_tokens or backend.generation.max_new_tokens
        if backend.measured_locally:  # a local model writes no more than its context holds
            max_new = min(max_new, effective_context(backend.config))
        # a model whose file was replaced is loaded again before it answers: a load to come
        loaded = backend.ready
        return self.predictor.predict(model, len(req.prompt), max_new, loaded, self.manager.prompt_tokens_now(model, asked))  # fmt: skip
