"""A llama.cpp model's prompt as the model reads it, in tokens: its chat template
rendered, the template's markers as special tokens. One ``LlamaPrompt`` serves a loaded
model (``LlamaCppBackend``), and ``VocabCounters`` one opened from the GGUF's vocabulary
alone (tokenizer and metadata, no weights: 70-230 ms and 15-32 MB for the local ladder's
files), so that a prediction counts a request for a model not loaded, or busy
generating, exactly as the model will read it."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from routerllm.backends.base import (
    GenerationRequest,
    chat_messages,
    plain_text,
    refused_by_template,
    template_tokens,
    too_long,
)
from routerllm.backends.llama_control_cache import VocabKey, vocab_key
from routerllm.backends.thread_stack import with_stack
from routerllm.config import ModelConfig
from routerllm.count_reads import metered_read
from routerllm.exceptions import ContextLengthError, PromptError, RouterLLMError
from routerllm.gguf_files import header_problem
from routerllm.model_files import files_stamp, vocab_file

log = logging.getLogger(__name__)

#: At most this many vocabularies stay open (the least recently counted closed first).
MAX_VOCABS = 4

#: Held while llama.cpp opens a model (loaded, or its vocabulary alone): llama-cpp-python
#: points the process's stdout and stderr (file descriptors 1 and 2, ``sys.stdout`` and
#: ``sys.stderr``) at /dev/null meanwhile and then puts back what it found there, as we
#: do ``sys.unraisablehook``. Two opens at once in two threads (a load beside a prediction
#: counting a prompt) left the process writing to /dev/null for good. Nothing else is
#: taken under it.
OPENING = threading.Lock()

#: The stack llama.cpp's tokenizer is given a character of a text, in bytes: its
#: pre-tokenizer for Qwen2.5's vocabulary (std::regex) recurses once a character of a run
#: of one kind, and needed at most 324 bytes a character (the least stack that tokenized
#: 10,000 and 40,000 letters, spaces, new lines, punctuation, CJK or emoji, to 2%; digits
#: and words of a few letters hardly any: ``benchmarks/tokenizer_stack.py``): about twice.
STACK_PER_CHAR = 640
#: ... and for the rest of what runs on that thread.
STACK_BASE = 1 << 20
#: A text of at most this many characters is tokenized on the caller's thread (at most
#: 0.7 MB of its stack, of 8 MB); a longer one on a thread with a stack sized for it.
ON_CALLERS_STACK = 2_048
#: The largest stack a text is tokenized on (virtual memory; a run of one kind of
#: character commits about half of it).
MAX_TOKENIZER_STACK = 512 << 20
#: The most characters tokenized at once, over 4 times ``limits.max_prompt_chars``'s
#: default (200,000): a longer text is refused (``PromptError``).
MAX_TOKENIZED_CHARS = (MAX_TOKENIZER_STACK - STACK_BASE) // STACK_PER_CHAR

#: The prompts counted in this thread's request (``one_count_per_request``), or none.
_request = threading.local()

#: A token's attributes (llama.cpp's ``llama_token_attr``) that it reads as that token
#: only where it is asked to read special tokens: CONTROL and UNKNOWN. A USER_DEFINED
#: token's text is read as the token either way.
_READ_AS_SPECIAL = (1 << 3) | (1 << 0)


@contextmanager
def one_count_per_request() -> Iterator[None]:
    """Within the block (one request's answer, in this thread), a prompt that a model's
    vocabulary has turned into tokens is not tokenized again by it: the prediction's
    count and the generation's context check read one count (of the same rendering of
    the same messages by the same loaded model or opened vocabulary). Held for the block
    only, so it neither grows nor outlives a model's reload. Nested blocks share the
    outer one's."""
    if getattr(_request, "counted", None) is not None:
        yield
        return
    _request.counted = {}
    try:
        yield
    finally:
        _request.counted = None


class ControlText:
    """Whether a text may hold one of a vocabulary's control tokens' texts: llama.cpp
    reads such text as the token only where it is asked to read special tokens, and any
    other text alike either way. One regex search (the texts as a trie: 0.1 ms for
    200,000 new lines, at most 3 ms for 200,000 characters crafted against it, "<<<...")
    instead of tokenizing the text twice to compare (twice 0.2 s of CPU for SmolLM2's
    200,000 new lines). ``texts``: the control tokens' texts; None where they could not
    be read: every text may then hold one."""

    def __init__(self, texts: Iterable[str] | None) -> None:
        self._search: Any = None
        self.always = texts is None
        if texts is not None and (texts := set(texts)):
            try:
                self._search = re.compile(_any_of(texts)).search
            except (RecursionError, re.error):  # no vocabulary's: read as "may hold" then
                self.always = True

    def __call__(self, text: str) -> bool:
        return self.always or (self._search is not None and self._search(text) is not None)


def _any_of(texts: set[str]) -> str:
    """A regex matching where one of ``texts`` starts: their trie, so that a position is
    tried once per character, not once per text (Gemma's thousands of control tokens).
    A text that starts with another is dropped: where it is, the shorter one is."""
    trie: dict[str, Any] = {}
    for text in sorted(texts, key=len):
        node = trie
        for char in text:
            if "" in node:  # a shorter text ends here
                break
            node = node.setdefault(char, {})
        else:
            node[""] = {}
    return _branches(trie)


def _branches(node: dict[str, Any]) -> str:
    if "" in node:  # a text ends here: a match, whatever follows
        return ""
    branches = [re.escape(char) + _branches(child) for char, child in sorted(node.items())]
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def control_texts(model: Any) -> list[str] | None:
    """The texts of ``model``'s (llama-cpp-python's ``LlamaModel``) control and unknown
    tokens, as llama.cpp's own vocabulary marks them (it makes some CONTROL its GGUF
    did not); None where one's is not UTF-8 text. A call per token: 33-38 ms for
    SmolLM2's 49,152, 80-140 ms for Qwen2.5's 151,936 (2 cores, shared)."""
    get_attr, texts = model.token_get_attr, []
    try:
        for token in range(model.n_vocab()):
            if get_attr(token) & _READ_AS_SPECIAL:
                texts.append(model.token_get_text(token))
    except UnicodeDecodeError:
        return None
    return texts


#: The most vocabularies whose control texts a process keeps (``control_text_of``).
MAX_CONTROL_TEXTS = 16
_control_texts: OrderedDict[str, ControlText] = OrderedDict()
_control_texts_lock = threading.Lock()


def control_text_of(model: Any, vocab: VocabKey | None) -> ControlText:
    """The :class:`ControlText` of ``model``'s vocabulary, known as ``vocab`` (its
    ``vocab_key``; None: read now, not kept). Read once per vocabulary a machine where
    its key is its content's (``llama_control_cache``: a later process, and the model's
    copy requantized or assembled, read it from there), else once per version of its
    file in a process: each load of a model and each opening of its vocabulary to count
    a prompt read it, a call per token (80-140 ms for Qwen2.5's), 11 times in one demo
    of the local ladder, then 6 (2026-12-07)."""
    if vocab is None:
        return ControlText(control_texts(model))
    with _control_texts_lock:
        if (known := _control_texts.get(vocab.key)) is not None:
            _control_texts.move_to_end(vocab.key)
            return known
    # outside the lock: another vocabulary's need not wait
    from routerllm.backends import llama_control_cache

    kept = llama_control_cache.kept(vocab.key) if vocab.shared else None
    if kept is not None:
        read = ControlText(kept.texts)
    else:
        texts = control_texts(model)
        read = ControlText(texts)
        if vocab.shared:
            llama_control_cache.keep(vocab.key, texts)
    with _control_texts_lock:
        _control_texts[vocab.key] = read
        while len(_control_texts) > MAX_CONTROL_TEXTS:
            _control_texts.popitem(last=False)
    return read


class LlamaPrompt:
    """Renders and tokenizes requests with one llama.cpp vocabulary. ``model``:
    llama-cpp-python's ``LlamaModel`` (a loaded ``Llama``'s ``_model``, or one opened
    ``vocab_only``); ``chat_template``: its GGUF's, or None; ``vocab``: what its
    vocabulary is known by (``vocab_key`` of the file it was read from; None: not known)."""

    def __init__(
        self, name: str, model: Any, chat_template: str | None, vocab: VocabKey | None = None
    ) -> None:
        self.name = name
        self.model = model
        self.chat_template = chat_template
        self.vocab = vocab
        self._formatter: Any = None
        self._controls: ControlText | None = None

    def templates(self, request: GenerationRequest) -> bool:
        """Whether the model's chat template frames ``request`` (not a raw one)."""
        return bool(self.chat_template) and not request.raw

    def templated(self, request: GenerationRequest) -> tuple[str, list[str]]:
        """The chat template applied to the request, with the response prefix appended,
        as plain text; and the template's own stop strings."""
        rendered = self.render(chat_messages(request))
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or ""]
        return rendered.prompt + request.response_prefix, [s for s in stop if s]

    def render(self, messages: list[dict[str, str]]) -> Any:
        """The chat template applied to ``messages`` (llama-cpp-python's formatter response)."""
        if self._formatter is None:  # compiled once per vocabulary
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def token_text(token: int) -> str:
                return str(self.model.token_get_text(token)) if token != -1 else ""

            assert self.chat_template is not None
            self._formatter = Jinja2ChatFormatter(
                self.chat_template,
                eos_token=token_text(self.model.token_eos()),
                bos_token=token_text(self.model.token_bos()),
            )
        from jinja2 import TemplateError

        try:
            return self._formatter(messages=messages)
        except (ValueError, TemplateError) as e:  # llama-cpp's raise_exception: ValueError
            raise refused_by_template(self.name, e) from e

    def prompt(self, request: GenerationRequest) -> list[int]:
        """The tokens the model reads for ``request``: the chat template's framing (the
        template's markers special, the messages' and the prefix's text plain:
        :func:`template_tokens`), or the plain text of a raw request or a model without
        a template. Counted once within :func:`one_count_per_request`."""
        if not self.templates(request):
            text = plain_text(request)
            return self._counted(("raw", text), lambda: self.tokens(text, templated=False))
        messages = chat_messages(request)
        rendered = str(self.render(messages).prompt)

        def render(asked: list[dict[str, str]]) -> str:
            return rendered if asked is messages else str(self.render(asked).prompt)

        # the messages too: which of the rendering's text is theirs, read as plain text
        parts = ("chat", rendered, request.response_prefix, *(m[k] for m in messages for k in ("role", "content")))  # fmt: skip
        return self._counted(
            parts,
            lambda: template_tokens(
                self.name,
                messages,
                request.response_prefix,
                render,
                self.piece_tokens,
                self.may_hold_control_text,
            ),
        )

    def _counted(self, parts: tuple[str, ...], count: Callable[[], list[int]]) -> list[int]:
        """``count()``, or the tokens it gave in this request (``one_count_per_request``)
        for ``parts`` (a raw text; a rendering, its prefix and its messages) by this
        vocabulary."""
        counted: dict[tuple[Any, ...], list[int]] | None = getattr(_request, "counted", None)
        if counted is None:
            return count()
        key = (self, *parts)
        if key not in counted:
            counted[key] = count()
        return list(counted[key])  # a copy: the caller's to change

    def piece_tokens(self, text: str, special: bool) -> list[int]:
        """A piece of a chat template's rendering as tokens (``template_tokens``'s)."""
        return self.tokens(text, templated=True, special=special)

    def may_hold_control_text(self, text: str) -> bool:
        """Whether ``text`` may hold one of the vocabulary's control tokens' texts
        (:class:`ControlText`, read once per vocabulary): where it holds none, it reads
        the same with and without special tokens, and is not tokenized twice to find so."""
        if self._controls is None:
            self._controls = control_text_of(self.model, self.vocab)
        return self._controls(text)

    def tokens(self, text: str, templated: bool, special: bool = True) -> list[int]:
        """``text`` tokenized as llama.cpp reads it: markers as special tokens, a BOS
        first where the model wants one. A chat template's text gets only the BOS it
        writes itself (Gemma's, Llama 3's), as llama-cpp-python's chat request reads it:
        a prefilled prompt sent as text read a second one (a warning of a duplicate BOS
        and a degraded answer), and one of a template without a BOS (Zephyr's) read one
        the chat request did not. ``special=False``: control-token text read as plain
        text."""
        return tokenized(self.model, text.encode("utf-8"), not templated, special)


def tokenized(model: Any, data: bytes, add_bos: bool, special: bool) -> list[int]:
    """llama.cpp's tokens of ``data`` by ``model``'s vocabulary (llama-cpp-python's
    ``LlamaModel``), in one call: room for a token a byte (a token holds one at least,
    but for a BOS, an EOS, SentencePiece's leading space, and a normalization that
    lengthens text: then tokenized again with room for all). ``LlamaModel.tokenize``
    made room for the model's trained context (none for a vocabulary opened alone) and
    tokenized a text of more tokens twice (SmolLM2's 200,000 new lines: 0.2 s of CPU
    each).

    A text of over ``ON_CALLERS_STACK`` characters is tokenized on a thread of its own
    whose stack is sized for it (``STACK_BASE`` and ``STACK_PER_CHAR`` a character;
    :func:`with_stack`), one of over ``MAX_TOKENIZED_CHARS`` refused (``PromptError``):
    llama.cpp's pre-tokenizer for Qwen2.5's vocabulary recurses once a character of a
    run of one kind (letters, spaces, new lines, punctuation, CJK, emoji), and 30,000
    "a" overflowed a thread's 8 MB and killed the process."""
    chars = _characters(data) if len(data) > ON_CALLERS_STACK else len(data)
    if chars <= ON_CALLERS_STACK:
        return _tokenized(model, data, add_bos, special)
    if chars > MAX_TOKENIZED_CHARS:
        raise PromptError(
            f"a text of {chars:,} characters is over the {MAX_TOKENIZED_CHARS:,} that "
            f"llama.cpp's tokenizer is given at once (a stack of {STACK_PER_CHAR} bytes a "
            f"character, at most {MAX_TOKENIZER_STACK >> 20} MiB); shorten the prompt",
            "prompt",
        )
    size = STACK_BASE + STACK_PER_CHAR * chars
    return with_stack(lambda: _tokenized(model, data, add_bos, special), size)


def _characters(data: bytes) -> int:
    """The characters llama.cpp reads in ``data``: its UTF-8 text's, at most a byte each
    (where it is not UTF-8, its bytes: as many at most)."""
    try:
        return len(data.decode("utf-8"))
    except UnicodeDecodeError:
        return len(data)


def _tokenized(model: Any, data: bytes, add_bos: bool, special: bool) -> list[int]:
    """:func:`tokenized`, on this thread's stack."""
    import llama_cpp.llama_cpp as llama

    room = len(data) + 8
    for _ in range(2):
        tokens = (llama.llama_token * room)()
        n = llama.llama_tokenize(model.vocab, data, len(data), tokens, room, add_bos, special)
        if n >= 0:
            return tokens[:n]
        room = -n
    raise RuntimeError(f"llama.cpp could not tokenize {len(data)} bytes ({n})")


class _Vocab:
    """One GGUF's vocabulary, opened without its weights, and the lock its counts take.
    ``stamp``: the file's ``files_stamp`` before it was opened."""

    def __init__(self, path: Path, stamp: str, prompt: LlamaPrompt | None) -> None:
        self.path = path
        self.stamp = stamp
        self.prompt = prompt  # None: the file did not open (not tried again while it stays)
        self.lock = threading.Lock()

    def close(self) -> None:
        if self.prompt is not None:
            self.prompt.model.close()
            self.prompt = None


class VocabCounters:
    """Counts requests for llama.cpp models from their GGUFs' vocabularies alone, each
    opened on its first count (never the weights), at most ``MAX_VOCABS`` kept open, and
    again once the file is replaced (a stat per count). Thread-safe; a count waits only
    for another count (or opening) of the same model, never for a generation nor a load;
    an opening in a request, measured (``count_reads``), for the meter's turn, as a
    load does."""

    def __init__(self, max_open: int = MAX_VOCABS) -> None:
        self.max_open = max_open
        self._vocabs: OrderedDict[str, _Vocab] = OrderedDict()
        self._lock = threading.Lock()
        self._openings: dict[str, threading.Lock] = {}  # by model: one opening at a time

    def prompt_tokens(self, model: ModelConfig, request: GenerationRequest) -> int | None:
        """The tokens ``model`` will read for ``request``; None where there is no GGUF here
        holding its vocabulary (``vocab_file``: a split model's, not yet assembled, from
        its first part's key-values), it does not open, or its chat template refuses the
        request (the answer's error to give)."""
        counted = self._counted(model, request)
        return None if counted is None else counted[0]

    def refusal(
        self, model: ModelConfig, request: GenerationRequest, context: int
    ) -> ContextLengthError | None:
        """``model``'s refusal of ``request`` as too long for its ``context`` (the one it
        will run with), as its loaded model gives it (:func:`too_long`: the same count,
        the same words), found without its weights; None where the prompt fits, or where
        :meth:`prompt_tokens` gives no count (the loaded model checks it then)."""
        counted = self._counted(model, request)
        if counted is None:
            return None
        return too_long(model.name, counted[0], context, model.context_length, counted[1])

    def _counted(self, model: ModelConfig, request: GenerationRequest) -> tuple[int, bool] | None:
        """The tokens ``model`` will read for ``request`` (:meth:`prompt_tokens`), and
        whether its chat template frames them."""
        vocab = self._vocab(model)
        if vocab is None:
            return None
        with vocab.lock:
            if vocab.prompt is None:  # did not open, or closed meanwhile
                return None
            try:
                return len(vocab.prompt.prompt(request)), vocab.prompt.templates(request)
            except RouterLLMError:
                return None

    def _vocab(self, model: ModelConfig) -> _Vocab | None:
        if model.gguf is None or (path := vocab_file(model.gguf, model.name)) is None:
            return None
        # a file replaced at the path (renamed over, written in place) is another
        # vocabulary: the old one's counted with its template and tokens until the end
        stamp = files_stamp([path])
        if (vocab := self._kept(model.name, path, stamp)) is not None:
            return vocab
        # opened outside the lock: another model's count does not wait for it; one opening
        # at a time for a model, a count that came meanwhile counting with it: the read
        # made once, measured as the request's that made it (``metered_read``; a count of
        # an open one is not)
        with self._opening(model.name):
            if (vocab := self._kept(model.name, path, stamp)) is not None:
                return vocab
            with metered_read(model.name):
                opened = _Vocab(path, stamp, _open(model.name, path, stamp))
            return self._keep(model.name, path, stamp, opened)

    def _kept(self, name: str, path: Path, stamp: str) -> _Vocab | None:
        """``name``'s vocabulary open from ``path`` as stamped ``stamp``; None where none is."""
        with self._lock:
            vocab = self._vocabs.get(name)
            if vocab is not None and (vocab.path, vocab.stamp) == (path, stamp):
                self._vocabs.move_to_end(name)
                return vocab
        return None

    def _opening(self, name: str) -> threading.Lock:
        with self._lock:
            return self._openings.setdefault(name, threading.Lock())

    def _keep(self, name: str, path: Path, stamp: str, opened: _Vocab) -> _Vocab:
        """``opened`` kept as ``name``'s vocabulary (the least recently counted closed past
        ``max_open``), or the one kept meanwhile from the same file."""
        with self._lock:
            vocab = self._vocabs.get(name)
            if vocab is not None and (vocab.path, vocab.stamp) == (path, stamp):
                stale = [opened]
            else:
                stale = [] if vocab is None else [vocab]
                self._vocabs[name] = vocab = opened
            self._vocabs.move_to_end(name)
            while len(self._vocabs) > self.max_open:
                stale.append(self._vocabs.popitem(last=False)[1])
        for old in stale:
            with old.lock:
                old.close()
        return vocab

    def close(self) -> None:
        """Close every open vocabulary."""
        with self._lock:
            vocabs, self._vocabs = list(self._vocabs.values()), OrderedDict()
        for vocab in vocabs:
            with vocab.lock:
                vocab.close()


def _open(name: str, path: Path, stamp: str) -> LlamaPrompt | None:
    """``path``'s vocabulary and chat template, without its weights (the file stamped
    ``stamp``); None where it is not a whole GGUF or llama.cpp cannot read it."""
    if header_problem(path) is not None:
        return None
    try:
        model = vocab_only(path)
    except ImportError:
        return None
    except (ValueError, RuntimeError, OSError, MemoryError) as e:
        log.info("model %r: its vocabulary did not open from %s (%s)", name, path, e)
        return None
    template = model.metadata().get("tokenizer.chat_template") or None
    return LlamaPrompt(name, model, template, vocab_key(path, stamp))


def vocab_only(path: Path) -> Any:
    """llama.cpp's model of the GGUF at ``path`` read without its weights (``vocab_only``:
    its architecture, hyperparameters and vocabulary, 16-80 ms for 32,000-49,000 tokens on
    2 cores); raises as llama.cpp does (ValueError) where it cannot read them."""
    import llama_cpp
    from llama_cpp import _internals

    from routerllm.backends.llama_cpp import _silence_llama_cpp

    _silence_llama_cpp()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    # a failed open leaves a half-built LlamaModel whose __del__ raises: freed here, kept
    # quiet (the error's frames hold it: the caller's handler freed it, and Python wrote
    # "Exception ignored in: <function LlamaModel.__del__ ...>" and a traceback to stderr)
    with OPENING:
        hook = sys.unraisablehook
        sys.unraisablehook = lambda u: log.debug("ignored after failed open: %s", u.exc_value)
        try:
            try:
                return _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
            except (ValueError, RuntimeError, OSError, MemoryError) as e:
                error = e.with_traceback(None)
        finally:
            sys.unraisablehook = hook
    raise error
