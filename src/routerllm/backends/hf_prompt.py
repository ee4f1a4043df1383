"""A transformers model's prompt as it reads it, in tokens, and the context it runs with:
counted by its loaded tokenizer (``HFBackend``), or, before the model loads, by its
tokenizer and config read alone, without its weights (``TokenizerAlone``), so that a
prompt its context cannot hold is refused without loading the model."""

from __future__ import annotations

import logging
import threading
from typing import Any

from routerllm.backends.base import (
    GenerationRequest,
    chat_messages,
    plain_text,
    refused_by_template,
    template_tokens,
    too_long,
)
from routerllm.backends.hf_source import _local_or_hub
from routerllm.config import ModelConfig
from routerllm.count_reads import metered_read
from routerllm.exceptions import ContextLengthError, RouterLLMError

log = logging.getLogger(__name__)


def prompt_ids(name: str, tokenizer: Any, request: GenerationRequest) -> list[int]:
    """The tokens model ``name`` reads for ``request`` with ``tokenizer``: its chat
    template's rendering (the template holds the special tokens, BOS included; the
    messages' text is plain text, its "</s>" no end of turn: ``template_tokens``), or
    the plain text of a raw request or of a tokenizer without a template, tokenized as
    the tokenizer reads a text."""
    if getattr(tokenizer, "chat_template", None) and not request.raw:

        def render(messages: list[dict[str, str]]) -> str:
            from jinja2 import TemplateError

            try:
                text: str = tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            except TemplateError as e:  # transformers' raise_exception
                raise refused_by_template(name, e) from e
            return text

        return template_tokens(
            name,
            chat_messages(request),
            request.response_prefix,
            render,
            lambda text, special: piece_tokens(tokenizer, text, special),
        )
    return list(tokenizer(plain_text(request))["input_ids"])


def piece_tokens(tokenizer: Any, text: str, special: bool) -> list[int]:
    """``text`` as tokens, its special-token text read as special tokens or, not
    ``special``, as plain text (``template_tokens``'s)."""
    ids: list[int] = tokenizer(text, add_special_tokens=False, split_special_tokens=not special)[
        "input_ids"
    ]
    return ids


def own_context(model_config: Any, configured: int) -> int:
    """The context a model of transformers' ``model_config`` runs with: the configured
    ``context_length``, at most the model's own (its ``max_position_embeddings``): a
    model with learned positions (GPT-2's, OPT's, StarCoder's) failed past it with a
    bare IndexError (on CUDA a device-side assert), where the default context_length,
    4096, is longer than its table."""
    own = getattr(model_config.get_text_config(), "max_position_embeddings", None)
    return min(configured, own) if isinstance(own, int) and own > 0 else configured


def read_tokenizer(model_id: str, gguf: dict[str, str]) -> Any:
    """The tokenizer of the model at ``model_id`` (``_local_or_hub``'s, a GGUF's with
    ``gguf``), from local files only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_id, local_files_only=True, **gguf)


class TokenizerAlone:
    """One transformers model's tokenizer and the context it runs with (``own_context``
    of its config), read from its files without its weights on its first count, and
    kept while those files stay (their ``files_stamp``); the model's load takes the
    tokenizer over (read once for both). Thread-safe: a count waits only for another
    count, or the load's taking over, of the same model; a read, measured in a request
    (``count_reads``), for the meter's turn too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # held by the one read under way
        # the files' stamp, and the tokenizer and context read from them (None: they
        # did not read, not tried again while they stay)
        self._read: tuple[str, tuple[Any, int] | None] | None = None

    def refusal(
        self, model: ModelConfig, stamp: str | None, request: GenerationRequest
    ) -> ContextLengthError | None:
        """``model``'s refusal of ``request`` as too long for its context, as its loaded
        model gives it (``too_long``: the same count, context and words), its files
        stamped ``stamp``; None where the prompt fits, or there is no count: its files
        not found (``stamp`` None) or not read, transformers not installed, its chat
        template refusing the request (the loaded model's error to give), or the load
        took the tokenizer over meanwhile (it checks the prompt then)."""
        if stamp is None:
            return None
        with self._lock:
            known = self._read
        if known is None or known[0] != stamp:
            # read outside the lock, measured as the request's read (``metered_read``,
            # which takes the meter's turn: a load holding it takes the tokenizer over,
            # under this lock); one read at a time, a count that came meanwhile counting
            # with it (the read made once, the request's that made it)
            with self._reading:
                with self._lock:
                    known = self._read
                if known is None or known[0] != stamp:
                    try:
                        with metered_read(model.name):
                            read = _read_alone(model)
                    except ImportError:  # transformers not installed: no count, tried again
                        return None
                    with self._lock:
                        self._read = known = (stamp, read)
        with self._lock:
            if self._read is not known or known[1] is None:  # taken by the load, or unread
                return None
            tokenizer, context = known[1]
            try:
                tokens = len(prompt_ids(model.name, tokenizer, request))
            except RouterLLMError:
                return None
        return too_long(model.name, tokens, context, model.context_length, templated=False)

    def take(self, stamp: str | None) -> Any | None:
        """The tokenizer read from the files stamped ``stamp``, given up to the caller
        (the model's load: one tokenizer, never used by two threads at once); None
        where none was read from them."""
        with self._lock:
            read, self._read = self._read, None
        if stamp is None or read is None or read[0] != stamp or read[1] is None:
            return None
        return read[1][0]


def _read_alone(model: ModelConfig) -> tuple[Any, int] | None:
    """``model``'s tokenizer and the context it runs with, read from its files without
    its weights; None where they did not read (not tried again while they stay). Raises
    ImportError without transformers."""
    assert model.model_id is not None
    model_id, gguf = _local_or_hub(model.model_id)
    from transformers import AutoConfig

    try:
        tokenizer = read_tokenizer(model_id, gguf)
        config = AutoConfig.from_pretrained(model_id, local_files_only=True, **gguf)
        return tokenizer, own_context(config, model.context_length)
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001 (as varied as the load's: its error to give)
        log.info("model %r: its tokenizer and config did not read (%s)", model.name, e)
        return None
