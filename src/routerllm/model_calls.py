"""One model's answer to a request, as the routed system asks it: the model loaded
if needed, the answer generated, both measured (or estimated from the config's
per-token figures where the backend cannot be metered) and priced."""

from __future__ import annotations

import dataclasses

from routerllm.backends.base import Completion, GenerationRequest
from routerllm.carbon.meter import (
    FROM_TEXT,
    NO_FIGURES,
    NO_FIGURES_FROM_TEXT,
    PER_TOKEN,
    CarbonMeter,
    Measurement,
    NullMeter,
    per_token_estimate,
)
from routerllm.carbon.predictor import CarbonPredictor
from routerllm.config import AppConfig, ModelConfig
from routerllm.count_reads import current_reads, note_load
from routerllm.data.humaneval import HumanEvalProblem
from routerllm.eval.codegen import CHAT_STYLE, CodegenStyle, style_for
from routerllm.exceptions import (
    EndpointRefusedError,
    EndpointUnreachableError,
    PromptError,
    RouterLLMError,
)
from routerllm.manager import LLMManager
from routerllm.served_gate import ServedGate
from routerllm.stubs import styled


class ModelCalls:
    """Asks the configured models, loading, measuring and pricing each answer."""

    def __init__(
        self,
        config: AppConfig,
        manager: LLMManager,
        meter: CarbonMeter,
        gate: ServedGate | None,
        predictor: CarbonPredictor,
    ) -> None:
        self.config, self.manager, self.meter, self.gate = config, manager, meter, gate
        self.predictor = predictor  # reads an uncounted answer's tokens (``counted``)

    def routing_cost(self, routing: Measurement) -> float:
        """What routing's energy costs at the electricity price."""
        return routing.energy_kwh * self.config.carbon.electricity_price_usd_per_kwh

    def attempt(
        self, name: str, req: GenerationRequest, stub: HumanEvalProblem | None = None
    ) -> tuple[Completion, Measurement, Measurement, float]:
        """One model's answer: loaded if needed, generated, measured (or estimated), priced.
        A function ``stub`` is asked in the model's code style; the escalation gate's
        first model also reads its state of the prompt."""
        if stub is not None:
            req = styled(req, stub, self.style(name))
        if self.gate is not None and self.gate.reads_state(name) and not req.prompt_state:
            req = dataclasses.replace(req, prompt_state=True)
        # other threads wait for this model (their wait is not measured as theirs); a
        # meter whose blocks run one at a time is taken first (a loading one, which
        # holds it, may wait for this model's lock to unload it), and before the model
        # is loaded: a load in another thread meanwhile could evict it again, and its
        # reload be measured as no part of this request. A remote model's answer is
        # estimated from its figures, only timed here: it takes no turn at the meters,
        # which its server, when it runs in this process, waits for.
        asked = self.manager.backend(name)
        meter = self.meter if asked.measured_locally else NullMeter()
        loading: Measurement | None = None
        slot = None
        try:
            # a prompt its context cannot hold, counted without its weights (its GGUF's
            # vocabulary, a split model's first part's; a transformers model's tokenizer):
            # refused (or stepped up from) as the loaded model would, without loading it
            # (until 2026-12-07 it was loaded, evicting the models it needed room from, to
            # refuse it)
            # What the counts read of its files for this request (its vocabulary, its
            # tokenizer: ``count_reads``), for its prediction or here, is its loading's.
            if (too_long := self.manager.refusal_before_load(name, req)) is not None:
                loading = _with_read(self.meter.zero("model_loading"), name)  # no load
                raise too_long
            with meter.turn():
                loading = _with_read(self._loading(name), name)
                with (
                    self.manager.generating(name) as backend,
                    meter.measure("llm_inference") as slot,
                ):
                    completion = backend.generate(req)
        except RouterLLMError as e:  # explained once the model's lock is released: style()
            # takes the manager's lock, which a load evicting this model holds meanwhile
            # every request would fail alike: the next go elsewhere
            if isinstance(e, EndpointUnreachableError | EndpointRefusedError):
                self.manager.set_unavailable(name, str(e))
                if e.endpoint_wide:  # the other models of its server (and key) with it
                    same_key = isinstance(e, EndpointRefusedError)
                    self.manager.set_endpoint_unavailable(name, str(e), same_key)
            if not e.load_failed:  # a failed load's own, set by _loading, is kept
                e.loading = loading  # paid for, though the model did not answer
            elif e.loading is not None:  # with what this request's counts read of its files
                e.loading = _with_read(e.loading, name)
            if slot is not None:  # the generation it had done when it failed
                # a remote's, as its answers are: from its per-token figures, for the
                # tokens its endpoint billed (where it said: 0 for an HTTP error)
                remote = not asked.measured_locally
                e.inference = (
                    self._estimated(
                        asked.config, e.billed_tokens[1], e.billed_tokens[0], slot.result
                    )
                    if remote
                    else slot.result
                )
            styled_prompt = isinstance(e, PromptError) and e.param == "prompt"
            if stub is not None and styled_prompt:  # about the prompt as styled
                e.args = (
                    f"{e} (a function stub, asked in {name}'s {self.style(name).mode} code "
                    f"style, which may repeat it; route --as-written or generation."
                    f"complete_stubs: false sends it as written)",
                )
            raise
        inference = slot.result
        model_cfg = backend.config
        # with the tokens its endpoint billed for the attempts that failed before it (their
        # energy too, as a request whose attempts all failed counts it)
        before = completion.billed_before
        if not backend.measured_locally:
            if not completion.usage_known:  # its 0 tokens are no count: the endpoint bills it
                completion = self.counted(name, req, completion)
            generated = completion.completion_tokens + before[1]
            inference = self._estimated(model_cfg, generated, completion.prompt_tokens + before[0], inference)  # fmt: skip
            # figures and cost of tokens estimated, not counted; a model without figures:
            # its energy not known, its tokens and cost estimated all the same (both said)
            if not completion.usage_known and inference.method in (PER_TOKEN, NO_FIGURES):
                estimated = FROM_TEXT if inference.method == PER_TOKEN else NO_FIGURES_FROM_TEXT
                inference = dataclasses.replace(inference, method=estimated)
        if self.priced_by_energy(name):
            energy = loading.energy_kwh + inference.energy_kwh
            cost = energy * self.config.carbon.electricity_price_usd_per_kwh
        else:
            cost = model_cfg.cost_usd(completion.prompt_tokens + before[0], completion.completion_tokens + before[1])  # fmt: skip
        return completion, loading, inference, cost

    def measured_load(self, name: str) -> Measurement:
        """Load ``name`` as a request to it does, with nothing generated: its load measured
        by the same meter, as ``model_loading`` (HumanEval's ``--remeasure-contended``
        measures a model's load again so); zero where it was loaded already. A load that
        fails raises its ``RouterLLMError``, with what it spent as its ``loading``."""
        meter = self.meter if self.manager.backend(name).measured_locally else NullMeter()
        with meter.turn():
            return self._loading(name)

    def _loading(self, name: str) -> Measurement:
        """Make ``name`` ready, its load (if it loads) measured: taken within the meter's
        turn. A load that fails (a corrupt file) spent it all the same: the error's
        ``loading``, with ``load_failed``."""
        # a model whose file was replaced is loaded again (acquire): measured
        if self.manager.backend(name).ready:
            self.manager.acquire(name)  # marks it most recently used
            return self.meter.zero("model_loading")
        load = None
        try:
            with self.meter.measure("model_loading") as load:
                _, event = self.manager.acquire(name)
        except RouterLLMError as e:
            if load is not None:  # not a meter that could not start
                e.loading, e.load_failed = load.result, True
            raise
        # another request loaded it meanwhile (no meter's turn held: carbon tracking off,
        # a remote model): that load is its, this one waited
        if not event.loaded_now:
            return self.meter.zero("model_loading")
        note_load(name)  # its row says the model loaded: a count's read alone is no load
        return load.result

    def counted(self, name: str, req: GenerationRequest, completion: Completion) -> Completion:
        """``completion`` of a remote endpoint that did not count its tokens (no usage: a
        stream cancelled before its last chunk, llama.cpp's server, a proxy that strips
        it), its tokens estimated from the prompt's and text's characters
        (``CarbonPredictor.text_tokens``): a hosted API bills them, and a budget that
        counted $0 for each could be overrun without bound. A streamed text's tokens are
        the more of that and its pieces: servers send about one token a piece (SmolLM2's
        code answers through llama.cpp: 1,830 pieces for 1,829 tokens, where 4 characters
        a token counted 0.85x), a proxy may join them (fewer pieces than tokens), and a
        budget's guard should err high. A count the endpoint did give (a usage with its
        prompt's count alone) is kept: a 0 is no count."""
        prompt, generated = self.predictor.text_tokens(name, len(req.prompt), completion.text)
        generated = max(generated, completion.pieces or 0)
        return dataclasses.replace(
            completion,
            prompt_tokens=completion.prompt_tokens or prompt,
            completion_tokens=completion.completion_tokens or generated,
        )

    def _estimated(
        self, model_cfg: ModelConfig, tokens: int, prompt_tokens: int, timed: Measurement
    ) -> Measurement:
        """A remote model's generation of ``tokens`` after reading ``prompt_tokens`` (those
        its endpoint billed), ``timed`` here: estimated from its per-token figures."""
        return per_token_estimate(
            "llm_inference",
            model_cfg,
            tokens,
            timed.duration_s,
            self.config.carbon.country_iso_code,
            prompt_tokens,
        )

    def style(self, name: str) -> CodegenStyle:
        """How ``name`` is asked for a function stub (as the gate's run asked it, for
        the escalation gate's first model); the chat style where its backend cannot
        start the answer with the stub (an OpenAI-compatible server), whatever style
        its name has."""
        prefills = self.manager.backend(name).prefills
        if self.gate is None:
            return style_for(name, prefills=prefills)
        style = self.gate.style(name)
        return CHAT_STYLE if style.response_prefix and not prefills else style

    def billed_cost(self, name: str, error: RouterLLMError) -> float:
        """What the tokens ``name``'s endpoint billed for its generation that failed with
        ``error`` cost at its token prices (0 where its energy is its price)."""
        if self.priced_by_energy(name) or failed_generation(error) is None:
            return 0.0
        return self.config.model(name).cost_usd(*error.billed_tokens)

    def priced_by_energy(self, name: str) -> bool:
        """A model without token prices costs its energy at the electricity price."""
        return not self.config.model(name).priced_by_tokens


def _with_read(loading: Measurement, name: str) -> Measurement:
    """``loading`` with what this request's counts read of ``name``'s files
    (``count_reads``) and not yet charged."""
    reads = current_reads()
    read = reads.take(name) if reads is not None else None
    return loading if read is None else read.plus(loading)


def failed_generation(error: RouterLLMError) -> Measurement | None:
    """What a model's generation spent before it failed with ``error`` (``attempt``
    attaches it); None where the model refused the request before generating (a
    ``PromptError``: its chat template, a prompt over its context)."""
    return None if isinstance(error, PromptError) else error.inference
