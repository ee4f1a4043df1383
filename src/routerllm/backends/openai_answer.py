"""What an OpenAI-compatible server's completion says: its text, finish reason and
token usage, each checked, and what is wrong with one that is not a completion; what
its ``/models`` lists, and the context it gives a model (or TGI's ``/info``, where
``/models`` gives none)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from routerllm.checks import is_finite_number, json_kind

#: More tokens than any model's context: a usage count above it is not a count.
MAX_USAGE_TOKENS = 10**7
#: Half of a UTF-16 surrogate pair, as JSON's "\ud83d" escape gives one on its own.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class NotACompletion(ValueError):
    """What is wrong with an answer that is JSON but not a completion."""


def answer_parts(out: Any, raw: bool) -> tuple[dict[str, Any], str, str | None]:
    """A completion's first choice, its text and finish reason; ``NotACompletion`` saying what
    is wrong where ``out`` is not a completion."""
    if not isinstance(out, dict):
        raise NotACompletion(f"{json_kind(out)}, not an object")
    choices = out.get("choices")
    if choices is None:
        raise NotACompletion("no 'choices'")
    if not isinstance(choices, list):
        raise NotACompletion(f"'choices' is {json_kind(choices)}, not an array")
    if not choices:
        raise NotACompletion("'choices' is empty")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise NotACompletion("choices[0] is not an object")
    if raw:
        if "text" not in choice:
            raise NotACompletion("choices[0] has no 'text'")
        text = choice["text"]
    else:
        message = choice.get("message")
        if not isinstance(message, dict):
            raise NotACompletion("choices[0] has no 'message'")
        if "content" not in message:
            raise NotACompletion("choices[0].message has no 'content'")
        text = message["content"]
        if text is None:  # OpenAI's refusal: its text is the answer
            text = message.get("refusal")
    text = "" if text is None else text
    if not isinstance(text, str):
        raise NotACompletion(f"the answer's text is {json_kind(text)}")
    finish_reason = choice.get("finish_reason")
    if not isinstance(finish_reason, str | None):
        raise NotACompletion(f"finish_reason is {json_kind(finish_reason)}")
    return choice, text, finish_reason


def usage_tokens(out: dict[str, Any], text: str) -> tuple[list[int], str | None]:
    """The prompt and completion tokens an answer's ``usage`` counts (0 where it gives no
    count), and how it fails to count them (none, a count missing, null or no count, 0
    generated tokens for a text), None where it counts them. Such an answer is kept:
    its usage is the provider's bookkeeping, not the answer."""
    usage = out.get("usage")
    if not isinstance(usage, dict) or not usage:
        return [0, 0], "gives no token usage" if not usage else "gives a usage that is not an object"  # fmt: skip
    tokens, wrong = [], []
    for key in ("prompt_tokens", "completion_tokens"):
        count = _count(usage, key)
        tokens.append(count or 0)
        if count is None:
            value = usage.get(key)
            wrong.append(f"no usage.{key}" if value is None else f"usage.{key} {value!r:.40}, no token count")  # fmt: skip
    if wrong:
        return tokens, f"gives {' and '.join(wrong)}"
    if tokens[1] == 0 and text:
        return tokens, f"says 0 completion tokens for {len(text):,} characters of text"
    return tokens, None


def _count(usage: dict[str, Any], key: str) -> int | None:
    """A token count of ``usage``: a whole number in [0, MAX_USAGE_TOKENS] (more than any
    model's context), None where it gives none (absent, null, not such a number)."""
    value: Any = usage.get(key)
    if not is_finite_number(value) or not float(value).is_integer():
        return None
    return int(value) if 0 <= value <= MAX_USAGE_TOKENS else None


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (a JSON ``"\\ud83d"`` escape without its pair:
    an emoji cut in half at the token limit) made U+FFFD, as a local model's broken bytes
    are; no log, terminal or JSON answer could take it."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def listed_model_ids(out: Any) -> tuple[str, ...] | None:
    """The model ids a ``/models`` answer lists (``{"data": [{"id": ...}, ...]}``); None
    where it lists none or is of another shape (a server may not implement it)."""
    data = out.get("data") if isinstance(out, dict) else None
    if not isinstance(data, list):
        return None
    ids = tuple(m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str))
    return ids or None


def lists_model(ids: tuple[str, ...], model_id: str) -> bool:
    """Whether ``ids`` name ``model_id`` (:func:`_listed_as`)."""
    return _listed_as(ids, model_id) is not None


def _listed_as(ids: Collection[str], model_id: str) -> str | None:
    """The id of ``ids`` that names ``model_id``: itself, or as Ollama lists a name given
    without a tag (``llama3`` as ``llama3:latest``); None where none does."""
    if model_id in ids:
        return model_id
    tagged = f"{model_id}:latest"
    return tagged if ":" not in model_id and tagged in ids else None


@dataclass(frozen=True)
class ListedContext:
    """The context, in tokens, an endpoint gives a model, the field that gave it
    (``max_model_len``, ``meta.n_ctx_train``, ``max_total_tokens``) and the path whose
    answer it is in (``/models``, TGI's ``/info``)."""

    tokens: int
    field: str
    source: str = "/models"


def _token_count(value: Any) -> int | None:
    """``value`` where it is a whole number of tokens over 0 (not a bool, not text)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def info_context(out: Any) -> ListedContext | None:
    """The context TGI's ``GET /info`` gives the one model it serves (whatever name it is
    asked by): ``max_total_tokens`` (prompt and answer), or the longest prompt it takes,
    ``max_input_tokens`` (``max_input_length`` in older TGI), where that is shorter by
    more than a token: a longer prompt is refused (422) however short its answer. TGI's
    default takes a prompt of all but one token, so its context is ``max_total_tokens``.
    None where it gives neither as a whole number over 0 (another server's page)."""
    if not isinstance(out, dict):
        return None
    total = _token_count(out.get("max_total_tokens"))
    prompt: tuple[str, int] | None = None
    for name in ("max_input_tokens", "max_input_length"):
        if (n := _token_count(out.get(name))) is not None:
            prompt = (name, n)
            break
    if total is not None and (prompt is None or prompt[1] + 1 >= total):
        return ListedContext(total, "max_total_tokens", "/info")
    return None if prompt is None else ListedContext(prompt[1], prompt[0], "/info")


def listed_contexts(out: Any) -> dict[str, ListedContext]:
    """The contexts a ``/models`` answer gives its models, by id: vLLM's ``max_model_len``
    (the context it serves, prompt and answer), else llama.cpp server's
    ``meta.n_ctx_train`` (its model's trained context, which the server runs at most;
    its own ``n_ctx`` is not listed). Only a whole number over 0; TGI's, Ollama's and
    OpenAI's listings give none (TGI's is at its ``/info``: :func:`info_context`)."""
    data = out.get("data") if isinstance(out, dict) else None
    found: dict[str, ListedContext] = {}
    for m in data if isinstance(data, list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("id"), str):
            continue
        meta = m.get("meta")
        for name, value in (
            ("max_model_len", m.get("max_model_len")),
            ("meta.n_ctx_train", meta.get("n_ctx_train") if isinstance(meta, dict) else None),
        ):
            if (tokens := _token_count(value)) is not None:
                found[m["id"]] = ListedContext(tokens, name)
                break
    return found


def listed_context(contexts: dict[str, ListedContext], model_id: str) -> ListedContext | None:
    """The context ``contexts`` give ``model_id``, listed as :func:`lists_model` finds it."""
    listed = _listed_as(contexts, model_id)
    return None if listed is None else contexts[listed]
