"""llama-cpp-python's ``Llama`` as the backend generates with it: the tokens it samples
kept and its answer's bytes written once (``SamplingLlama``), the token cap (a logits
processor that ends an answer at its limit, or at a stop with control-token text), and
its sampler freed as it is closed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from routerllm.backends.base import holds_written_stop


def _release_sampler(llm: Any) -> None:
    """Free the sampler ``llm`` keeps from its last generation (closed, or before its next
    generation makes another). Its callback (the token cap, a logits processor) is a
    closure over the ``Llama``, in cycles only a full garbage collection would free:
    with them broken, reference counting frees the ``Llama`` and its arrays (n_batch x
    n_vocab logits: 100 MB for SmolLM2) at once, where a full collection took 0.2 s in a
    process holding torch (400,000 objects); what stays for one is a few small objects."""
    sampler, llm._sampler = getattr(llm, "_sampler", None), None
    if sampler is not None:
        sampler.close()  # takes its callbacks out of llama.cpp's chain, then frees it
        for _, custom in sampler.custom_samplers:  # each in a cycle of its own
            custom.apply_func = None


@functools.cache
def _llama_class() -> Any:
    """llama-cpp-python's ``Llama``, keeping the tokens it samples for an answer
    (``sampled``): the answer it returns leaves out the end-of-generation token it
    ended at, where a stop sequence that ends with one ("```<|im_end|>") is matched.
    Its completion detokenizes the answer at the cost of the new tokens (``detokenize``)."""
    from llama_cpp import Llama

    from routerllm.backends.llama_text import AnswerBytes

    class SamplingLlama(Llama):  # type: ignore[misc]
        sampled: list[int]
        kept: Callable[[list[int]], None] | None = None
        _answer: tuple[bool, list[int], AnswerBytes] | None = None  # special, prev_tokens

        def detokenize(
            self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
        ) -> bytes:
            """Llama's. The completion detokenizes the whole answer so far after each
            token, to look for its stop sequences (the prompt its ``prev_tokens``): a
            1024-token answer, 1.2 to 1.5 s of SmolLM2's detokenizing on 2 cores, 20 s for
            4096 (quadratic). Asked for an answer that extends the one asked for before
            (the same ``prev_tokens`` and ``special``), only its new tokens are written
            (:class:`AnswerBytes`); the same bytes."""
            if prev_tokens is None or not isinstance(tokens, list):
                return bytes(super().detokenize(tokens, prev_tokens, special))
            kept = self._answer
            if kept is None or kept[:2] != (special, prev_tokens) or not kept[2].extended_by(tokens):  # fmt: skip
                kept = self._answer = (special, list(prev_tokens), AnswerBytes(int(self.token_bos())))  # fmt: skip
            kept[2].update(tokens, functools.partial(super().detokenize, special=special))
            return bytes(kept[2].written)

        def answer_bytes(self, prompt: list[int]) -> AnswerBytes:
            """The bytes of the answer that its completion of ``prompt`` writes as it goes
            (:meth:`detokenize`), to be read (``AnswerText``), not written again."""
            self._answer = (False, list(prompt), AnswerBytes(int(self.token_bos())))
            return self._answer[2]

        def sample(self, *args: Any, **kwargs: Any) -> Any:
            token = super().sample(*args, **kwargs)
            self.sampled.append(int(token))
            return token

        def generate(self, *args: Any, **kwargs: Any) -> Any:
            """Llama's tokens; ``kept`` (where set) is called with the answer's tokens
            so far each time the completion asks for the next one, having kept the last
            (neither an end of generation nor past a stop or the token limit): before
            the next token is computed, not after."""
            answer: list[int] = []
            # the last answer's sampler, which Llama's generate replaces, is freed now:
            # its callbacks' cycle held this Llama (and its logits) until a full
            # collection, which the unload then ran (0.2 s once torch is imported)
            _release_sampler(self)
            for token in super().generate(*args, **kwargs):
                yield token
                answer.append(int(token))
                if self.kept is not None:
                    self.kept(answer)

    return SamplingLlama


class _TokenCap:
    """A logits processor: after ``max_tokens`` tokens the answer can only end (the
    ``end`` token). llama-cpp-python samples on past ``max_tokens`` while the last token
    ends inside a UTF-8 character (an emoji or a CJK character split into byte tokens):
    the answer had more tokens than asked and, where the limit was the end of the
    context, the request failed (llama_decode returned 1). ``reached``: it was cut so.
    Once the answer (the tokens after the ``n_prompt`` of the prompt), written with its
    control tokens (``written``), holds one of the ``stops`` (stop sequences with
    control-token text, such as "<|im_start|>" or "```<|im_end|>") it can only end too:
    llama.cpp writes a control token as no text, so such a stop sequence never matched
    and the answer ran on past it. ``forced``: the answer's last token was forced."""

    def __init__(
        self,
        max_tokens: int,
        end: int,
        n_prompt: int,
        stops: tuple[str, ...] = (),
        written: Any = None,
    ) -> None:
        self.left, self.end, self.stops, self.reached = max_tokens, end, stops, False
        self.n_prompt, self.written, self.forced = n_prompt, written, False

    def __call__(self, ids: Any, scores: Any) -> Any:  # once per token sampled
        answer = ids[self.n_prompt :]
        stopped = bool(self.stops) and len(answer) > 0 and holds_written_stop(answer, self.stops, self.written)  # fmt: skip
        if self.left > 0 and not stopped:
            self.left -= 1
            return scores
        import numpy as np

        self.reached, self.forced = not stopped, True
        only_end = np.full_like(scores, -np.inf)
        only_end[self.end] = 0.0
        return only_end
