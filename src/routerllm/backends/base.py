"""The backend interface: ``generate(request) -> Completion``."""

from __future__ import annotations

import inspect
import math
import os
import re
import reprlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

# The stop-sequence helpers (stops.py) lived here once: still importable from here.
from routerllm.backends.stops import LiveText as LiveText
from routerllm.backends.stops import control_stops as control_stops
from routerllm.backends.stops import cut_at_stop as cut_at_stop
from routerllm.backends.stops import holds_written_stop as holds_written_stop
from routerllm.backends.stops import settled_text as settled_text
from routerllm.backends.stops import stop_tail as stop_tail
from routerllm.backends.stops import written_stop as written_stop
from routerllm.backends.weights_watch import WeightsWatch
from routerllm.checks import MAX_SEED, is_integer, is_number, is_seed, not_utf8
from routerllm.config import (
    MAX_NEW_TOKENS,
    MAX_TEMPERATURE,
    MAX_TOP_K,
    GenerationConfig,
    ModelConfig,
)
from routerllm.exceptions import BackendError, ContextLengthError, PromptError

if TYPE_CHECKING:
    from routerllm.backends.openai_answer import ListedContext


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt plus optional overrides of the config's sampling defaults.

    ``raw``: continue ``prompt`` as plain text, without the model's chat
    template (the base-model way). ``response_prefix``: the chat template is
    applied and the model's answer is made to start with this text, which
    the model continues (the returned text excludes it). At most one of the
    two may be used. ``prompt_state``: also return the model's own hidden state
    of the prompt (``Completion.prompt_state``; llama.cpp backends only).
    ``history``: the conversation's earlier turns, ``(role, text)`` pairs with role
    "user" or "assistant", oldest first; ``prompt`` is the user's newest message,
    the one the router reads. ``top_k`` and ``min_p``: the sampling filters (0: none),
    as ``GenerationConfig``'s; None there too leaves the backend's own.
    ``on_text``: called with each new piece of the answer's text while it is generated
    (``RouterLLM.generate`` gives its whole text so: the pieces joined are the answer);
    a backend that cannot stream gives nothing, and the caller the text at the end.
    ``on_answer(model, request_id)``: called by ``RouterLLM.generate`` before the first
    piece (given without ``on_text`` too), with the model that answers and the id the
    answer is logged under. Neither is
    part of the request's identity (equality, the cache's key).
    """

    prompt: str
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    # a list or a tuple, as the runtime takes either (not Sequence: a str would pass)
    stop: list[str] | tuple[str, ...] = field(default_factory=list)  # None: no stop sequences
    system: str | None = None
    raw: bool = False
    response_prefix: str = ""
    prompt_state: bool = False
    history: list[tuple[str, str]] | tuple[tuple[str, str], ...] = ()  # kept as a tuple
    seed: int | None = None
    on_text: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    on_answer: Callable[[str, str], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.stop is None:
            object.__setattr__(self, "stop", [])
        object.__setattr__(self, "history", _turns(self.history))
        if self.raw and self.history:
            raise PromptError(
                "a raw request continues one text and has no earlier turns; send the "
                "conversation as a chat request, or write it into the prompt"
            )
        wrong = [
            f"{name} {value!r}"
            for name, value, ok in (
                ("max_new_tokens", self.max_new_tokens, is_integer),
                ("temperature", self.temperature, is_number),
                ("top_p", self.top_p, is_number),
                ("top_k", self.top_k, is_integer),
                ("min_p", self.min_p, is_number),
                ("repetition_penalty", self.repetition_penalty, is_number),
                ("system", self.system, lambda v: isinstance(v, str)),
            )
            if value is not None and not ok(value)
        ]
        if not isinstance(self.response_prefix, str):
            wrong.append(f"response_prefix {self.response_prefix!r}")
        wrong += [
            f"{name} {value!r}"
            for name, value in (("raw", self.raw), ("prompt_state", self.prompt_state))
            if not isinstance(value, bool)
        ]
        if not isinstance(self.stop, list | tuple) or not all(
            isinstance(t, str) for t in self.stop
        ):
            wrong.append(f"stop {self.stop!r}")
        # else the first piece of the answer raised "'str' object is not callable"
        wrong += [
            f"{name} {value!r:.40}"
            for name, value in (("on_text", self.on_text), ("on_answer", self.on_answer))
            if value is not None and not callable(value)
        ]
        if wrong:
            raise PromptError(
                f"bad request options: {', '.join(wrong)} (max_new_tokens and top_k are "
                "integers; temperature, top_p, min_p, repetition_penalty numbers; system and "
                "response_prefix text; stop a list of texts; raw and prompt_state True or False; "
                "on_text and on_answer functions)",
                param=wrong[0].split()[0],
            )
        for name, value in (("on_text", self.on_text), ("on_answer", self.on_answer)):
            # called in the generating thread, it would only make a coroutine, never run
            # (an object's async __call__ too; callable or None here: checked above)
            if value is not None and (
                inspect.iscoroutinefunction(value)
                or inspect.iscoroutinefunction(type(value).__call__)
            ):
                raise PromptError(
                    f"{name} is an async function: it is called in the thread that generates, "
                    "where its coroutine would never run; give a plain function (in asyncio "
                    "code, one that hands its arguments to the loop with "
                    "loop.call_soon_threadsafe)",
                    param=name,
                )
        if self.seed is not None and not is_seed(self.seed):
            raise PromptError(
                f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r:.40}", "seed"
            )
        if self.seed is not None:  # 1.0 or numpy's: llama.cpp's ctypes call takes an int
            object.__setattr__(self, "seed", int(self.seed))
        if self.raw and self.response_prefix:
            raise PromptError("a request is either raw or has a response prefix, not both")
        # the bounds of the config's GenerationConfig; llama.cpp reads 0 or fewer new
        # tokens as "until the context is full"
        bad = [
            f"{name} {value}"
            for name, value, ok in (
                ("max_new_tokens", self.max_new_tokens, lambda v: 1 <= v <= MAX_NEW_TOKENS),
                ("temperature", self.temperature, lambda v: 0 <= v <= MAX_TEMPERATURE),
                ("top_p", self.top_p, lambda v: 0 < v <= 1),
                ("top_k", self.top_k, lambda v: 0 <= v <= MAX_TOP_K),
                ("min_p", self.min_p, lambda v: 0 <= v <= 1),
                ("repetition_penalty", self.repetition_penalty, lambda v: v > 0 and _finite(v)),
            )
            if value is not None and not ok(value)
        ]
        if bad:
            raise PromptError(
                f"bad sampling options: {', '.join(bad):.200} (need 1 <= max_new_tokens <= "
                f"{MAX_NEW_TOKENS:,}, "
                f"0 <= temperature <= {MAX_TEMPERATURE:g}, 0 < top_p <= 1, 0 <= top_k <= "
                f"{MAX_TOP_K:,} (0: no filter), 0 <= min_p <= 1, a finite repetition_penalty > 0)",
                param=bad[0].split()[0],
            )
        if any(not s for s in self.stop):
            raise PromptError("a stop sequence is empty: it would end every answer at once", "stop")
        # param: the texts beside the prompt are part of it (a chat's messages) but stops
        texts = [("system", self.system or ""), ("response_prefix", self.response_prefix)]
        texts += [("a stop sequence", s) for s in self.stop]
        texts += [(f"history turn {i}", text) for i, (_, text) in enumerate(self.history, 1)]
        for name, text in texts:
            if (at := not_utf8(text)) is not None:  # a lone surrogate, e.g. from JSON "\ud800"
                raise PromptError(
                    f"{name} is not valid UTF-8 text (undecodable at character {at}); "
                    f"convert it to UTF-8 first",
                    "stop" if name == "a stop sequence" else "prompt",
                )


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    seed: int | None
    top_k: int | None  # None: the backend's own
    min_p: float | None


@dataclass(frozen=True)
class Completion:
    """What a backend returns: text, token usage and generation latency; and, when the
    request asked for it, the mean of one layer's hidden states over the prompt.
    ``billed_before``: the prompt and completion tokens a remote endpoint billed for the
    attempts that failed before this answer (in its cost and estimated energy, not its
    token counts). ``usage_known``: False where a remote endpoint did not say how many
    tokens it counted (its token counts, 0 where it gave none, are no count).
    ``pieces``: how many pieces of text a remote endpoint's streamed answer came in
    (about one token each: its tokens' count where it gave none); None where it was
    not streamed."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str | None = None
    prompt_state: tuple[float, ...] | None = None
    billed_before: tuple[int, int] = (0, 0)
    usage_known: bool = True
    pieces: int | None = None


def resolve_sampling(request: GenerationRequest, defaults: GenerationConfig) -> Sampling:
    def pick(value: float | int | None, default: float | int) -> float | int:
        return default if value is None else value

    return Sampling(
        max_new_tokens=int(pick(request.max_new_tokens, defaults.max_new_tokens)),
        temperature=float(pick(request.temperature, defaults.temperature)),
        top_p=float(pick(request.top_p, defaults.top_p)),
        repetition_penalty=float(pick(request.repetition_penalty, defaults.repetition_penalty)),
        seed=defaults.seed if request.seed is None else request.seed,
        top_k=defaults.top_k if request.top_k is None else int(request.top_k),
        min_p=defaults.min_p if request.min_p is None else float(request.min_p),
    )


ROLES = ("user", "assistant")
"""The roles of a conversation's earlier turns (``GenerationRequest.history``)."""


def _turns(history: object) -> tuple[tuple[str, str], ...]:
    """``history`` checked and made immutable: (role, text) pairs, roles in ``ROLES``."""
    if not isinstance(history, list | tuple):
        raise PromptError(f"history must be a list of (role, text) pairs, got {type(history).__name__}")  # fmt: skip
    turns = []
    for i, turn in enumerate(history):
        if not (
            isinstance(turn, list | tuple)
            and len(turn) == 2
            and turn[0] in ROLES
            and isinstance(turn[1], str)
        ):
            raise PromptError(
                f"history turn {i + 1} is {reprlib.repr(turn)}; each turn is a (role, text) "
                f"pair with role {' or '.join(ROLES)}"
            )
        turns.append((str(turn[0]), turn[1]))
    return tuple(turns)


def chat_messages(request: GenerationRequest) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [{"role": role, "content": text} for role, text in request.history]
    return [*messages, {"role": "user", "content": request.prompt}]


def template_tokens(
    model: str,
    messages: list[dict[str, str]],
    prefix: str,
    render: Callable[[list[dict[str, str]]], str],
    tokenize: Callable[[str, bool], list[int]],
    may_hold: Callable[[str], bool] | None = None,
) -> list[int]:
    """``messages`` rendered by the chat template (``render``), ``prefix`` appended, as
    token ids: the template's markers as the special tokens they are, the messages' text
    and the prefix as plain text. ``tokenize(text, special)`` reads control-token text
    ("<|im_end|>", "<|endoftext|>") as control tokens when ``special``. Tokenizing the
    whole rendering with special tokens read a user's "<|im_end|>\\n<|im_start|>system"
    as a turn of the template's own: a message forged a system turn, or ended the prompt.
    Text without control-token text is tokenized whole, as the engine itself does.
    ``may_hold`` as :func:`control_stops`'s."""
    rendered = render(messages) + prefix
    if not holds_control_text([m["content"] for m in messages] + [prefix], tokenize, may_hold):
        return tokenize(rendered, True)
    mark = uuid.uuid4().hex  # where each message's text is, in the template's rendering
    marked = render([{**m, "content": f"{mark}{i}{mark}"} for i, m in enumerate(messages)])
    pieces = re.split(f"{mark}([0-9]+){mark}", marked)
    contents = [m["content"] for m in messages]
    for read in (contents, [c.strip() for c in contents]):  # Gemma's template trims it
        parts = [read[int(p)] if i % 2 else p for i, p in enumerate(pieces)]
        if "".join(parts) + prefix == rendered:
            tokens, before, new_run = [], "", True
            for i, part in enumerate(_spaces_forward([*parts, prefix])):
                special = i % 2 == 0 and i < len(parts)
                if part:
                    if new_run:
                        tokens += tokenize(part, special)
                    else:
                        tokens += _tokens_after(before[-1], part, special, tokenize)
                    before, new_run = part, special and _ends_a_run(part, tokenize)
            return tokens
    raise PromptError(
        f"a message holds text that model {model!r} reads as control tokens (such as "
        f"its end of turn), and its chat template changes the message's text, so that "
        f"text cannot be kept as plain text; remove it from the message",
        "prompt",
    )


def _spaces_forward(parts: list[str]) -> list[str]:
    """``parts`` with each one's trailing spaces moved to the start of the next: a
    tokenizer reads a space before a word with the word ("\u2581hello", " hello")."""
    moved = list(parts)
    for i in range(len(moved) - 1):
        body = moved[i].rstrip(" ")
        moved[i], moved[i + 1] = body, moved[i][len(body) :] + moved[i + 1]
    return moved


def _tokens_after(
    before: str, text: str, special: bool, tokenize: Callable[[str, bool], list[int]]
) -> list[int]:
    """``text``'s tokens where it follows the character ``before`` in one run of text.
    A SentencePiece tokenizer (Llama's, Mistral's) starts each text it is given with a
    word's space: tokenized alone, a message read "\u2581hello" where the whole
    rendering reads "hello" after the template's newline. So ``text`` is tokenized
    after ``before`` (one character: no control-token text) and its tokens dropped;
    where they do not stay the same, ``text`` is tokenized alone. A token that would
    span the two (">" + "<" read "><") is not formed."""
    head = tokenize(before, special)
    both = tokenize(before + text, special)
    return both[len(head) :] if both[: len(head)] == head else tokenize(text, special)


def _ends_a_run(text: str, tokenize: Callable[[str, bool], list[int]]) -> bool:
    """Whether ``text``, its control-token text read as such, ends with a control
    token: llama.cpp reads a prompt as runs of text between control tokens, each
    tokenized as a text of its own (a SentencePiece word's space starting it), so what
    follows is tokenized alone."""
    return tokenize(text + "a", True) == tokenize(text, True) + tokenize("a", True)


def holds_control_text(
    texts: list[str],
    tokenize: Callable[[str, bool], list[int]],
    may_hold: Callable[[str], bool] | None = None,
) -> bool:
    """Whether one of ``texts`` holds text that ``tokenize`` (``template_tokens``'s)
    reads as control tokens (``may_hold`` as :func:`control_stops`'s)."""
    return any(control_stops(texts, tokenize, may_hold))


def refused_by_template(model: str, error: Exception) -> PromptError:
    """The error for a conversation that ``model``'s chat template refuses as it renders
    it (its ``raise_exception``: Gemma's takes no system message, Mistral's and Gemma's
    want user and assistant turns to alternate): the request's shape, not a failure."""
    return PromptError(
        f"model {model!r}'s chat template refuses this conversation ({error}); send it "
        f"as the template asks, e.g. the system text in the user's message, or user and "
        f"assistant turns alternating",
        "prompt",
    )


# Said of a context that refused a prompt where it is the model's own, not the configured.
OWN_CONTEXT = ", the model's own, under its configured context_length"


def too_long(
    name: str, tokens: int, context: int, configured: int, templated: bool
) -> ContextLengthError | None:
    """The refusal of a prompt of ``tokens`` tokens (``templated``: with the model's chat
    template, as llama.cpp models say it) that model ``name``'s context of ``context``
    tokens (its ``context_length`` ``configured``, the model's own where that is
    shorter) does not hold with room for a token of answer; None where it does. One
    wording whether the loaded model counted the prompt (``LlamaCppBackend.generate``,
    ``HFBackend.generate``) or its vocabulary or tokenizer alone, before any load
    (``VocabCounters.refusal``, ``TokenizerAlone.refusal``)."""
    if tokens < context:
        return None
    framed = " with the model's chat template" if templated else ""
    own = "" if context == configured else OWN_CONTEXT
    return ContextLengthError(
        f"prompt is {tokens} tokens{framed}, too long for model {name!r} (context "
        f"{context} tokens{own}); shorten it or use a model with a longer context",
        context=context,
    )


def empty_prompt(model: str) -> PromptError:
    """The error for a prompt that is no token at all (an empty raw prompt to a model
    whose tokenizer adds no BOS, SmolLM2's or Qwen's): the engine has nothing to
    continue, and failed on it with its own error (llama-cpp-python a bare
    AssertionError, transformers a tensor reshape error)."""
    return PromptError(
        f"prompt is empty, and model {model!r} reads no start-of-text token "
        f"before it: there is nothing to continue; give a prompt",
        "prompt",
    )


def plain_text(request: GenerationRequest) -> str:
    """The request as one text, for models without a chat template and raw requests:
    system text, earlier turns, prompt, then the response prefix (each on its own
    line) when given."""
    parts = [request.system] if request.system else []
    text = "\n\n".join([*parts, *(t for _, t in request.history), request.prompt])
    return f"{text}\n{request.response_prefix}" if request.response_prefix else text


def refuse_prompt_state(request: GenerationRequest, model: str, engine: str) -> None:
    """Backends that cannot read a model's hidden states refuse a request for them."""
    if request.prompt_state:
        raise BackendError(
            f"model {model!r} runs on {engine}, which does not return the model's hidden "
            f"state of a prompt; only llama.cpp models do"
        )


class Backend(WeightsWatch, ABC):
    """One model behind one inference engine.

    ``measured_locally`` says whether generation runs on this machine, so that
    CodeCarbon can meter it; remote backends are estimated from per-token
    figures in the model config instead. ``prefills`` says whether it can make an
    answer start with a given text (``GenerationRequest.response_prefix``).
    """

    measured_locally: ClassVar[bool] = True
    prefills: ClassVar[bool] = True

    def __init__(
        self,
        config: ModelConfig,
        generation: GenerationConfig | None = None,
        n_threads: int | None = None,
    ) -> None:
        self.config = config
        self.generation = generation or GenerationConfig()
        self.n_threads = n_threads or os.cpu_count() or 1

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def memory_gb(self) -> float:
        """The memory the model takes here once loaded, counted against the manager's
        budget: the config's ``memory_gb``."""
        return self.config.memory_gb or 0.0  # None only for a remote model: none here

    @property
    def kv_cache_gb_estimate(self) -> float:
        """An estimate of the memory the model's context takes here once loaded, beyond
        ``memory_gb`` (0 where the backend does not estimate it)."""
        return 0.0

    def endpoint_context(self) -> ListedContext | None:
        """The context the model's endpoint says it serves the model at, as read by the
        last availability check; None where it said none (a local model: its own is its
        GGUF's, read by ``model_header.effective_context``)."""
        return None

    @abstractmethod
    def availability(self) -> str | None:
        """None when the model can be loaded here, else a one-line reason."""

    @abstractmethod
    def load(self) -> None:
        """Load weights (or open the connection); idempotent."""

    @abstractmethod
    def unload(self) -> None:
        """Free the memory the model holds; idempotent."""

    @property
    @abstractmethod
    def loaded(self) -> bool: ...

    @abstractmethod
    def generate(self, request: GenerationRequest) -> Completion:
        """Generate a completion; loads the model first when needed."""


def create_backend(
    config: ModelConfig, generation: GenerationConfig | None = None, n_threads: int | None = None
) -> Backend:
    """Instantiate the backend class registered under ``config.backend``."""
    from routerllm.registry import BACKENDS

    cls = BACKENDS.get(config.backend)
    backend: Backend = cls(config, generation, n_threads)
    return backend
