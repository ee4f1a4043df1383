"""Local GGUF models through llama-cpp-python."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import secrets
import sys
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routerllm.backends.base import (
    Backend,
    Completion,
    GenerationRequest,
    LiveText,
    control_stops,
    cut_at_stop,
    empty_prompt,
    resolve_sampling,
    too_long,
    written_stop,
)
from routerllm.backends.heap import give_back_freed_memory
from routerllm.backends.interrupts import (
    CANCELLED,
    Cancellation,
    between_tokens,
    deferred_interrupts,
)
from routerllm.backends.llama_control_cache import vocab_key
from routerllm.backends.llama_prompt import OPENING, LlamaPrompt
from routerllm.backends.llama_sampling import _llama_class, _release_sampler, _TokenCap
from routerllm.checks import MAX_SEED
from routerllm.exceptions import (
    BackendError,
    ContextLengthError,
    ModelUnavailableError,
    missing_dependency,
)
from routerllm.gguf_files import split_files
from routerllm.gguf_header import kv_cache_bytes_estimate, trained_context
from routerllm.model_files import availability as gguf_availability
from routerllm.model_files import (
    files_stamp,
    header_file,
    resolve_gguf,
    source_files,
)
from routerllm.model_header import effective_context

if TYPE_CHECKING:
    from pathlib import Path

    from routerllm.backends.llama_state import PromptState

log = logging.getLogger(__name__)


_log_callback: Any = None


def _silence_llama_cpp() -> None:
    """Route llama.cpp's own C logging to nowhere (it writes to stderr even with verbose=False)."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[misc]
    def _drop(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    _log_callback = _drop  # keep a reference: llama.cpp holds a raw pointer to it
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def next_token_scores(llm: Any, tokens: list[int], batched: bool = True) -> tuple[Any, Any]:
    """For a ``Llama`` made with ``logits_all=True``: each next token's negative
    log-likelihood under the model, and the model's most likely token there, as
    numpy arrays of ``len(tokens) - 1``. ``batched=False`` feeds the tokens one
    at a time (llama.cpp's generation path) instead of as one prompt batch."""
    import numpy as np

    llm.reset()
    for chunk in [tokens[:-1]] if batched else [[t] for t in tokens[:-1]]:
        llm.eval(chunk)
    logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    nll = log_z - logits[np.arange(len(tokens) - 1), np.asarray(tokens[1:])]
    return nll, logits.argmax(axis=1)


class LlamaCppBackend(Backend):
    """A GGUF file run by llama.cpp on the CPU (or GPU when llama.cpp was built for it)."""

    _llm: Any = None
    _context: int | None = None  # the context it runs with, known once loaded
    _files: list[Path] | None = None  # its weights' files (source_files), found once

    def availability(self) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed (pip install 'routerllm[local]')"
        assert self.config.gguf is not None
        return gguf_availability(self.config.gguf)

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def weights_files(self) -> list[Path] | None:
        """Its weights' files (``source_files``: a stat each to stamp, 2 us). Found once, but
        the split files llama.cpp reads with a GGUF (``gguf.path``'s, a package's found
        once): found again each time, its header's cached read telling which they are now
        (a stat more): found once as its first split was being copied or installed, the
        others would never be watched."""
        gguf = self.config.gguf
        assert gguf is not None
        if self._files is not None:  # a package's (found by asking importlib) or the parts
            return split_files(self._files[0]) if gguf.package is not None else self._files
        try:
            files = source_files(gguf)
        except ModelUnavailableError:
            return None
        if gguf.path is None:
            self._files = files
        return files

    def _mapped(self) -> tuple[str, ...]:
        """None of a split model's parts nor of a converted model's source: it maps the
        file assembled or converted from them in the model cache (made anew, renamed
        over), whose weights stay whole as a part or the source is written in place."""
        assert self.config.gguf is not None
        return () if self.config.gguf.parts or self.config.gguf.requantize else ("",)

    def _load_problem(self) -> str | None:
        """Where it maps its GGUF (not a split model's parts nor a converted source): why
        llama.cpp cannot read that file's architecture, hyperparameters or vocabulary
        (``vocab_only``, no weights read: 16 ms for the tiny GGUF, 75 ms for SmolLM2-135M)."""
        from routerllm.backends.llama_prompt import vocab_only

        assert self.config.gguf is not None
        path = header_file(self.config.gguf, self.name)
        if not self._mapped() or path is None:
            return None
        try:
            vocab_only(path).close()
        except (ValueError, RuntimeError, OSError, MemoryError) as e:
            return (
                f"llama.cpp could not read {path} ({e}): the file is corrupt or not a "
                f"supported GGUF; put one that loads there"
            )
        return None

    def load(self) -> None:
        if self._llm is not None:
            return
        try:
            # llama.cpp logs through a Python callback, where ctypes would drop Ctrl-C
            with deferred_interrupts():
                self._load()
        except KeyboardInterrupt:
            self.unload()
            raise

    def _load(self) -> None:
        try:
            import llama_cpp  # noqa: F401
        # its libllama.so that will not load: a RuntimeError; not there: FileNotFoundError
        except (ImportError, RuntimeError, OSError) as e:
            raise missing_dependency("llama-cpp-python", "local", e) from e
        _silence_llama_cpp()
        assert self.config.gguf is not None
        # before it is read: a file replaced as it loads is found changed, loaded again
        self._stamp_loaded()
        path = resolve_gguf(self.config.gguf, self.name)
        stamp = files_stamp([path])  # before it is read: its vocabulary's key (vocab_key)
        self._context = self._context_length(path)
        error, no_room = None, False
        # A failed load leaves a half-built LlamaModel whose __del__ raises;
        # free it here, under a quiet hook, so users see one clear error line.
        with OPENING:  # one model opens at a time: see OPENING
            hook = sys.unraisablehook
            sys.unraisablehook = lambda u: log.debug("ignored after failed load: %s", u.exc_value)
            try:
                try:
                    llm = _llama_class()(
                        model_path=str(path),
                        n_ctx=self._context,
                        # a layer attending to a sliding window keeps cells for the window and a
                        # batch, not the whole context (5 of Gemma 3's 6 layers): the default of
                        # llama.cpp's tools, not of its library's (nor llama-cpp-python's); every
                        # prompt is read anew from an empty cache (generate), so no cached prefix
                        # is lost (kv_cache_bytes_estimate)
                        swa_full=False,
                        n_threads=self.n_threads,
                        # the prompt's batches too: llama-cpp-python's default is a thread a
                        # core, whatever n_threads says (manager.n_threads was not honoured)
                        n_threads_batch=self.n_threads,
                        seed=self.generation.seed if self.generation.seed is not None else -1,
                        verbose=False,
                    )
                except (ValueError, RuntimeError, OSError, MemoryError) as e:
                    error = str(e) or type(e).__name__
                    no_room = isinstance(e, MemoryError) or "llama_context" in error
                if error is not None:
                    gc.collect()
            finally:
                sys.unraisablehook = hook
        if error is not None and no_room:
            # the model read, its context not made: llama.cpp could not allocate it
            raise BackendError(
                f"llama.cpp read {path} for model {self.name!r} but could not make its "
                f"context of {self._context} tokens ({error}): its KV cache and buffers do "
                f"not fit in memory; lower the model's context_length in the config, or free memory"
            )
        if error is not None:
            raise BackendError(
                f"llama.cpp could not load {path} for model {self.name!r} ({error}); "
                f"the file is corrupt or not a supported GGUF"
            )
        self._state: PromptState | None = None  # attached on the first request that asks
        template = llm.metadata.get("tokenizer.chat_template") or None
        self._counter = LlamaPrompt(self.name, llm._model, template, vocab_key(path, stamp))
        # last: ``loaded`` is true once everything a loaded model reads is in place (a
        # prediction counting a prompt may look while another caller loads it)
        self._llm = llm

    @property
    def kv_cache_gb_estimate(self) -> float:
        """The KV cache llama.cpp allocates for the model's context (f16, the context at
        most the trained one), as its GGUF's header gives it; 0 where the file is not
        here yet or its header does not say."""
        assert self.config.gguf is not None
        path = header_file(self.config.gguf, self.name)
        if path is None:
            return 0.0
        kv = kv_cache_bytes_estimate(path, self._context or effective_context(self.config))
        return kv / 1e9 if kv is not None else 0.0

    def _context_length(self, path: Path) -> int:
        """The configured ``context_length``, at most the model's own (the context its
        GGUF says it was trained for): llama.cpp allocated a KV cache for all that was
        asked, 13 GB for 10^8 tokens of a 1M-parameter model (or was killed for
        memory), and read positions past the model's own as garbage."""
        configured, own = self.config.context_length, trained_context(path)
        if own is None or own >= configured:
            return configured
        if self._context != own:  # once, not on each reload
            log.warning(
                "model %r: context_length %d is over the model's own context (%d tokens, "
                "as its GGUF says); running with %d",
                self.name, configured, own, own,
            )  # fmt: skip
        return own

    def _templated(self, request: GenerationRequest) -> tuple[str, list[str]]:
        """The chat template applied to the request, with the response prefix appended,
        as plain text; and the template's own stop strings."""
        return self._counter.templated(request)

    def _written(self, tokens: list[int], special: bool) -> str:
        """``tokens`` as text, their control tokens written or, not ``special``, left out
        (as llama-cpp-python writes an answer)."""
        return str(self._llm.detokenize(tokens, special=special).decode("utf-8", errors="ignore"))

    def _piece_tokens(self, text: str, special: bool) -> list[int]:
        """A piece of a chat template's rendering as tokens (``template_tokens``'s)."""
        return self._counter.piece_tokens(text, special)

    def _completion(
        self, request: GenerationRequest, prompt: list[int], kwargs: dict[str, Any], criteria: Any
    ) -> tuple[Any, str]:
        """llama-cpp-python's output for ``request``, read as the ``prompt`` tokens that
        were counted for the context check (:meth:`_prompt`), and its text. A chat request
        went to llama-cpp-python's chat completion, which rendered and tokenized the prompt
        again (and raw text went as text, tokenized again): twice the work on a long
        prompt. ``criteria``: stopping criteria. The text is cut at the earliest stop
        sequence: llama-cpp-python cuts at the first one in the list that the text holds,
        so where one token completed two (".\n\n" for stops "\n" and "."), the text kept
        the other."""
        try:
            out = self._llm.create_completion(prompt=prompt, stopping_criteria=criteria, **kwargs)
            return out, cut_at_stop(out["choices"][0]["text"], kwargs["stop"] or [])
        except ValueError as e:
            if "context" in str(e).lower():
                raise ContextLengthError(f"prompt too long for model {self.name!r}: {e}") from e
            raise BackendError(f"llama.cpp generation failed for {self.name!r}: {e}") from e
        except RuntimeError as e:  # llama_decode's failures (a context filled up)
            raise BackendError(f"llama.cpp generation failed for {self.name!r}: {e}") from e

    def _streamed(
        self, request: GenerationRequest, prompt: list[int], stops: list[str] | None
    ) -> Callable[[list[int]], None] | None:
        """What gives the request's ``on_text`` its answer's text as it is generated
        (``SamplingLlama.kept``), or None where it has none. The text is read from the
        bytes that the completion of ``prompt`` writes for its answer anyway."""
        if request.on_text is None:
            return None
        from routerllm.backends.llama_text import AnswerText

        live = LiveText(request.on_text, stops or [])
        text = AnswerText(self._llm.detokenize, self._llm.answer_bytes(prompt))
        return lambda answer: live(text.update(answer))

    def unload(self) -> None:
        if self._llm is not None:
            # Ctrl-C in a finalizer it runs (Llama.__del__) would be dropped, not raised
            with deferred_interrupts():
                llm, state, self._llm, self._state = self._llm, self._state, None, None
                llm.close()
                _release_sampler(llm)
                if state is not None:
                    state.detach()
                freed = weakref.ref(llm)
                del llm
                if freed() is not None:  # another cycle (a llama-cpp-python version's)
                    gc.collect()
                give_back_freed_memory()  # what it allocated on the heap as it loaded

    def count_tokens(self, text: str) -> int:
        self.load()
        # through tokenized(): a long text on a thread with the stack it needs
        return len(self._tokens(text, templated=False, special=False))

    def prompt_tokens(self, request: GenerationRequest) -> int:
        """The tokens the model reads for ``request``: its chat template rendered, the
        history and any response prefix included, tokenized as llama.cpp will (the
        template's markers as the special tokens they are). Counting the bare prompt
        and guessing the template's share undercounted a conversation by half, and the
        answer was cut short, its finish reason "length", where llama.cpp capped it."""
        self.load()
        return len(self._prompt(request))

    def _prompt(self, request: GenerationRequest) -> list[int]:
        """The tokens the model reads for ``request`` (:meth:`prompt_tokens`)."""
        return self._counter.prompt(request)

    def _templates(self, request: GenerationRequest) -> bool:
        """Whether the model's chat template frames ``request`` (not a raw one)."""
        return self._counter.templates(request)

    def _tokens(self, text: str, templated: bool, special: bool = True) -> list[int]:
        """``text`` tokenized as llama.cpp reads it (:meth:`LlamaPrompt.tokens`)."""
        return self._counter.tokens(text, templated, special)

    def generate(self, request: GenerationRequest) -> Completion:
        self.load()
        sampling = resolve_sampling(request, self.generation)
        # llama.cpp pads the context it was asked for (48 tokens: 64), while
        # llama-cpp-python's buffers hold only that: a prompt between the two failed
        n_ctx = min(int(self._llm.n_ctx()), self._context or self.config.context_length)
        prompt = self._prompt(request)
        n_prompt = len(prompt)
        if n_prompt == 0:
            raise empty_prompt(self.name)
        # the authority: a count by the GGUF's vocabulary before the load
        # (``LLMManager.refusal_before_load``) refused, in the same words, a prompt this
        # refuses, but the file may have been replaced since, or not read then
        configured, templated = self.config.context_length, self._templates(request)
        if (refused := too_long(self.name, n_prompt, n_ctx, configured, templated)) is not None:
            raise refused
        max_tokens = min(sampling.max_new_tokens, n_ctx - n_prompt)
        kwargs: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "repeat_penalty": sampling.repetition_penalty,
            "stop": request.stop or None,
        }
        # unset, llama-cpp-python's own (top_k 40, min_p 0.05), as before they could be set
        kwargs.update({k: v for k, v in (("top_k", sampling.top_k), ("min_p", sampling.min_p)) if v is not None})  # fmt: skip
        # Unseeded, a seed of its own: llama-cpp-python drew the next one from the last
        # (random.Random(seed)), so an unseeded answer was the same in every process and
        # followed from the seeded request before it.
        # Seeded, never llama.cpp's LLAMA_DEFAULT_SEED (2**32 - 1, MAX_SEED), which it reads as
        # "draw one at random": that seed is 0 here (each answer differed, though seeded).
        kwargs["seed"] = secrets.randbelow(MAX_SEED) if sampling.seed is None else sampling.seed % MAX_SEED  # fmt: skip
        template_stops = self._templated(request)[1] if self._templates(request) else []
        kwargs["stop"] = [*(request.stop or []), *template_stops] or None
        controls = control_stops(
            request.stop, self._piece_tokens, self._counter.may_hold_control_text
        )
        cap = _TokenCap(max_tokens, int(self._llm.token_eos()), n_prompt, controls, self._written)
        if cap.end >= 0:
            from llama_cpp import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([cap])
            if cap.stops:  # one step more, the end forced there: the cap sees the last token
                # (llama-cpp-python stops at max_tokens before it can: a control stop
                # written last was finish reason "length", as if the answer were cut)
                kwargs["max_tokens"] = max_tokens + 1
        if request.prompt_state and self._state is None:
            from routerllm.backends.llama_state import PromptState

            with deferred_interrupts():
                self._state = PromptState(self._llm)
        cancel = Cancellation()
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            criteria = None
            if self._state is not None:  # its callback is attached to every later request
                criteria = stack.enter_context(self._state.guarded())
            elif "logits_processor" in kwargs:  # the cap runs in llama.cpp's sampler callback
                criteria = between_tokens(stack.enter_context(deferred_interrupts()))
            if cancel.active:  # the server's: its client may leave before the answer ends
                from llama_cpp import StoppingCriteriaList

                criteria = StoppingCriteriaList([*(criteria or []), lambda _ids, _logits: cancel()])  # fmt: skip
            self._llm.sampled = []
            # a stop with control-token text cuts the answer where its written text, not
            # its text, holds it: the whole text comes at the end then
            self._llm.kept = None if controls else self._streamed(request, prompt, kwargs["stop"])
            stack.callback(setattr, self._llm, "kept", None)
            # The whole prompt is read anew, the cache emptied: llama-cpp-python reused the
            # previous request's longest common prefix and read the rest alone, the last
            # token alone where the prompt was the same, and a batch of one token gives
            # other logits than the whole prompt's batch (0.25 apart on the 0.5B Qwen): a
            # greedy or seeded answer depended on the request before it.
            self._llm.reset()
            out, text = self._completion(request, prompt, kwargs, criteria)
        latency = time.perf_counter() - start
        finish = "length" if cap.reached else out["choices"][0].get("finish_reason")
        # the answer ends before the earliest stop with control-token text in it written
        # with its control tokens (its last token too, the end-of-generation token
        # llama-cpp-python leaves out, unless the cap forced it)
        answer = self._llm.sampled[:-1] if cap.forced else self._llm.sampled
        if controls and (at := written_stop(answer, controls, self._written)) is not None:
            text = self._written(answer[: at[0]], False)
            text, finish = cut_at_stop(text[: len(text) - at[1]], kwargs["stop"] or []), "stop"
        if cancel.stopped:
            finish = CANCELLED
        usage = out.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        state = None
        if request.prompt_state:
            assert self._state is not None
            state = self._state.state(prompt_tokens)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=prompt_tokens,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
            finish_reason=finish,
            prompt_state=state,
        )
