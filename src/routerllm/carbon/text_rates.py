"""Each model's completion tokens a character, learned from its logged answers whose
tokens were counted: how ``CarbonPredictor.text_tokens`` counts an answer whose remote
endpoint did not (``estimate:from-text``).

An answer reads more tokens a character than its prompt (code, indentation, short
identifiers): at the prompt line's rate, 20 HumanEval answers of each local model were
undercounted (SmolLM2's at 0.78x, the Qwen2.5-Coders' at 0.97x and 0.98x), and a money
budget with them; at the rate of the model's other answers, 1.00-1.01x
(``benchmarks/answer_tokens_per_char.py``, README "Backends").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from routerllm.backends.interrupts import CANCELLED
from routerllm.carbon.log_rows import FAILED, RequestRecord
from routerllm.carbon.meter import CACHED, FROM_TEXT, NO_FIGURES_FROM_TEXT, NO_USAGE

#: Completion tokens a character guessed for a model with too few logged answers: high,
#: as a budget's guard should err (a guard that overcounts refuses early, one that
#: undercounts lets a money budget be overrun). Above each measured local model's
#: (HumanEval answers: SmolLM2 0.31, Qwen2.5-Coder 0.5B and 1.5B 0.23): it counted
#: theirs at 1.6x to 2.2x.
COMPLETION_TOKENS_PER_CHAR_GUESS = 0.5
#: Logged answers a model needs before its own rate replaces the guess.
MIN_ANSWERS = 3
ANSWERS = 200  # latest answers kept per model
#: Generation methods whose tokens were not counted from the answer (estimated from its
#: text, logged at 0, or a cached answer's, whose text no model generated here).
UNCOUNTED = (FROM_TEXT, NO_FIGURES_FROM_TEXT, NO_USAGE, CACHED)


def counted_answer(record: RequestRecord) -> bool:
    """Whether ``record`` teaches its model's tokens a character: an answer whose length
    was logged and whose tokens its model (or endpoint) counted."""
    m = record.own("llm_inference")
    return (
        m is not None
        and m.method not in UNCOUNTED
        and record.finish_reason not in (FAILED, CANCELLED)
        and bool(record.completion_chars)
        and record.completion_tokens > 0
    )


class TextRates:
    """The completion tokens a character of each model's ``ANSWERS`` latest counted
    answers (``counted_answer``), summed over them: a long answer weighs as its tokens do."""

    def __init__(self, models: Iterable[str]) -> None:
        self._seen: dict[str, deque[tuple[int, int]]] = {m: deque(maxlen=ANSWERS) for m in models}  # fmt: skip

    def observe(self, record: RequestRecord) -> None:
        """Learn from one logged request (of a configured model), where it teaches."""
        if (seen := self._seen.get(record.model)) is not None and counted_answer(record):
            assert record.completion_chars is not None
            seen.append((record.completion_chars, record.completion_tokens))

    def per_char(self, model: str, prompts: float = 0.0) -> float:
        """``model``'s completion tokens a character; below ``MIN_ANSWERS`` counted
        answers, guessed high for a budget's guard: ``COMPLETION_TOKENS_PER_CHAR_GUESS``,
        or ``prompts``, its prompts' tokens a character, where more (no measured model's
        answers read fewer tokens a character than its prompts)."""
        seen = self._seen.get(model)
        if not seen or len(seen) < MIN_ANSWERS:
            return max(COMPLETION_TOKENS_PER_CHAR_GUESS, prompts)
        return sum(t for _, t in seen) / sum(c for c, _ in seen)
