"""One step of the cascade as ``RouterLLM`` answers a request (``answering.py``): the
answer in hand checked on the request's examples (sandboxed, killed once its caller
goes), weighed by the gate where one decides, and whether it goes up to the next larger
model whose context holds the prompt, in the words the request's reason adds. The
budgets' say and the step up itself are ``RequestAnswering._answer``'s, which inherits
these methods."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from routerllm.backends.interrupts import cancelled, stop_event
from routerllm.exceptions import RouterLLMError
from routerllm.model_header import (
    context_and_source,
    context_in_words,
    contexts_in_words,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from routerllm.backends.base import Backend, Completion, GenerationRequest
    from routerllm.carbon.meter import CarbonMeter, Measurement
    from routerllm.config import AppConfig
    from routerllm.data.humaneval import HumanEvalProblem
    from routerllm.manager import LLMManager
    from routerllm.model_calls import ModelCalls
    from routerllm.served_gate import ServedGate

log = logging.getLogger(__name__)


def no_room(
    config: AppConfig,
    read_by: str,
    tokens: int,
    names: list[str],
    backend_of: Callable[[str], Backend] | None = None,
) -> str:
    """Why ``names`` are not asked: the prompt, ``tokens`` as ``read_by`` read it, leaves
    no room for an answer in their contexts (in words, ``context_in_words``'s; an
    endpoint's, where ``backend_of`` gives a model's backend)."""
    prompt = f"the prompt, {tokens} tokens as {read_by} read it, leaves no room for an answer"
    if len(names) == 1:
        backend = backend_of(names[0]) if backend_of else None
        return f"{prompt} in its context of {context_in_words(config.model(names[0]), backend)}"
    return f"{prompt} in their contexts ({contexts_in_words(config, names, backend_of)})"


@dataclass(frozen=True)
class Step:
    """What one step of the cascade made of the answer in hand."""

    # the model it goes up to: the next larger whose context holds the prompt, where one does
    bigger: str
    past: str  # the smaller ones passed over on the way, and why, in words ("" for none)
    said: str  # what it adds to the request's reason
    up: bool  # whether it goes up to ``bigger`` (where the budgets allow it)
    why: str = ""  # the gate's reason to go up ("" without a gate)
    # the answer in hand is kept for a reason of this request's (its caller gone, a check
    # that could not run): not the answer the cascade gives, so not cached
    kept: bool = False
    check: Measurement | None = None  # what its check spent (router_inference); None: none ran


class CascadeStep:
    """The cascade's step of ``RequestAnswering``; ``RouterLLM`` sets the attributes below."""

    config: AppConfig
    manager: LLMManager
    meter: CarbonMeter
    gate: ServedGate | None
    calls: ModelCalls

    def _step(
        self,
        req: GenerationRequest,
        stub: HumanEvalProblem | None,
        name: str,
        completion: Completion,
        larger: list[str],
    ) -> Step:
        """``name``'s answer ``completion`` checked, and whether it goes up to one of
        ``larger`` (the models the cache key holds, the smallest first). An answer whose
        caller has gone is not checked further nor escalated: a check under way is killed
        at once (its energy until then counted as a whole check's is)."""
        cascade = self.config.cascade
        # a model whose context (a GGUF's or an endpoint's, where shorter) cannot hold the
        # prompt, as the model in hand read it, would only refuse it: not loaded nor asked
        # for that, the step goes on to the next larger model that can
        tokens = completion.prompt_tokens
        short, fits = self._split_by_context(larger, tokens)
        bigger = fits[0] if fits else larger[0]  # the next larger one where none fits
        backend_of = self.manager.backend
        past = f" (past {' and '.join(short)}: {no_room(self.config, name, tokens, short, backend_of)})" if short and fits else ""  # fmt: skip
        if cancelled():  # the caller left as it finished: no check run for nobody
            said = f"; not checked, nor escalated to {bigger}: the caller has gone"
            return Step(bigger, past, said, up=False, kept=True)
        # imported only where used: it brings the sandbox and the parsers
        from routerllm.cascade import verify_answer, verify_stub

        unchecked: RouterLLMError | None = None
        # the caller's leaving kills the sandbox's run at once, in whatever thread it is
        stop = stop_event()
        with self.meter.measure("router_inference") as slot:
            try:
                check = (
                    verify_stub(
                        stub, completion.text, self.calls.style(name), cascade.timeout_s, stop=stop
                    )  # fmt: skip
                    if stub is not None
                    else verify_answer(req.prompt, completion.text, cascade.timeout_s, stop=stop)
                )
            except RouterLLMError as e:  # the sandbox cannot start: keep the answer paid for
                unchecked = e
            else:
                failed = check.verdict == "failed"
                gate = self.gate if self.gate is not None and self.gate.decides(name, bigger) else None  # fmt: skip
                # A gate also weighs an answer to a function stub without examples to check.
                weighed = not check.stopped and (failed or (stub is not None and check.unverified and gate is not None))  # fmt: skip
                go, why = (failed, "") if gate is None or not weighed else gate.decide(name, bigger, completion, failed, self._weights_stamp)  # fmt: skip
        spent = slot.result
        if unchecked is not None:
            log.warning("cascade: %s's answer could not be checked: %s", name, unchecked)
            said = f"; {name}'s answer could not be checked (the sandbox could not run it: {unchecked}), not escalated to {bigger}"  # fmt: skip
            return Step(bigger, past, said, up=False, kept=True, check=spent)
        if check.stopped:  # the caller left during the check: its energy so far is routing's
            said = f"; {name}'s answer's check was stopped, not escalated to {bigger}{past}: the caller has gone"  # fmt: skip
            return Step(bigger, past, said, up=False, kept=True, check=spent)
        if not weighed:
            return Step(bigger, past, "", up=False, check=spent)
        said = (
            f"; {name}'s answer failed {check.total - check.passed} of the request's {check.total} examples"
            if failed
            else f"; {name}'s answer could not be checked ({check.detail if check.total else 'the function states no examples'})"
        )  # fmt: skip
        if not go:
            return Step(bigger, past, f"{said}, not escalated to {bigger}{past}: {why}", up=False, check=spent)  # fmt: skip
        if cancelled():  # the caller has gone: a larger model would answer nobody
            said += f", not escalated to {bigger}{past}: the caller has gone"
            return Step(bigger, past, said, up=False, kept=True, check=spent)
        if not fits:  # no larger model's context holds the prompt
            said += f", not escalated to {' nor '.join(short)}: {no_room(self.config, name, tokens, short, backend_of)}"  # fmt: skip
            return Step(bigger, past, said, up=False, check=spent)
        return Step(bigger, past, said, up=True, why=why, check=spent)

    def _weights_stamp(self, name: str) -> str | None:
        """The identity of the weights ``name`` answers with now (a stat of its files)."""
        return self.manager.backend(name).weights_stamp()

    def _split_by_context(self, larger: list[str], tokens: int) -> tuple[list[str], list[str]]:
        """``larger`` (smallest first) split before the first model whose context can hold
        a prompt of ``tokens``, or is not known: the models before it, whose context
        cannot, and the rest."""
        for i, m in enumerate(larger):
            if (context := self._known_context(m)) is None or context > tokens:
                return larger[:i], larger[i:]
        return larger, []

    def _known_context(self, name: str) -> int | None:
        """The context ``name`` runs with, where it is known without asking it: a local
        model's (its GGUF's, where shorter), or a remote one's its endpoint gave (its
        /models' or TGI's /info's, where shorter than configured) or its configured
        ``context_length``; None for a remote model with neither (a hosted API, its
        context_length left at the default, which says nothing of it): it is asked, and
        says so itself where the prompt is too long."""
        model, backend = self.config.model(name), self.manager.backend(name)
        context, source = context_and_source(model, backend)
        if backend.measured_locally or "context_length" in model.model_fields_set or source == "endpoint":  # fmt: skip
            return context
        return None
