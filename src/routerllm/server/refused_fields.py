"""The OpenAI API's request fields that RouterLLM's server refuses, not ignores: those
that would change the answer in a way it cannot honour (tools, logprobs, penalties,
several choices, web search, moderation, vLLM's and llama-server's constrained output and
lengths), each with the values that change nothing and are accepted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from routerllm.exceptions import PromptError


def _unset(value: object) -> bool:
    return value is None or value is False or value == 0 or value == [] or value == {}


_CONSTRAINED = ("guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs", "grammar", "json_schema")  # fmt: skip
"""vLLM's and llama-server's fields that constrain the answer's text."""

# Fields that would change the answer, and the values that change nothing.
_REFUSED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n": (lambda v: v is None or (v == 1 and v is not True), "several choices (n must be 1)"),
    "tools": (_unset, "tool calls"),
    "functions": (_unset, "function calls"),
    "tool_choice": (lambda v: v in (None, "none", "auto"), "tool calls"),
    "function_call": (lambda v: v in (None, "none", "auto"), "function calls"),
    # a completion's logprobs 0 asks for the chosen tokens' own: only null or false is unset
    "logprobs": (lambda v: v is None or v is False, "log probabilities"),
    "top_logprobs": (_unset, "log probabilities"),
    "logit_bias": (_unset, "logit_bias"),
    "presence_penalty": (_unset, "presence_penalty (repetition_penalty is)"),
    "frequency_penalty": (_unset, "frequency_penalty (repetition_penalty is)"),
    "response_format": (
        lambda v: v is None or (isinstance(v, Mapping) and v.get("type") == "text"),
        "response formats other than text",
    ),
    "audio": (_unset, "audio"),
    "modalities": (lambda v: v is None or v == ["text"], "modalities other than text"),
    "prediction": (_unset, "predicted outputs"),
    # any object asks for them, an empty one too (the search's default settings)
    "web_search_options": (lambda v: v is None, "web search"),
    "moderation": (lambda v: v is None, "moderation"),
    "echo": (_unset, "echo"),
    "suffix": (lambda v: v is None or v == "", "suffix (fill in the middle)"),
    "best_of": (lambda v: v is None or (v == 1 and v is not True), "best_of"),
    # vLLM's and llama-server's own fields, which clients written for them send: an unknown
    # field is accepted and unused, but with these the answer would not be the one asked for
    **dict.fromkeys(
        _CONSTRAINED, (_unset, "constrained output (a schema, grammar, regex or choice)")
    ),
    "n_predict": (lambda v: v is None, "n_predict (llama-server's name): send max_tokens"),
    "repeat_penalty": (
        lambda v: v is None,
        "repeat_penalty (llama-server's name): send repetition_penalty",
    ),
    "min_tokens": (_unset, "min_tokens"),
    "ignore_eos": (_unset, "ignore_eos"),
    "stop_token_ids": (_unset, "stop_token_ids (stop is)"),
    "bad_words": (_unset, "bad_words"),
    "allowed_token_ids": (_unset, "allowed_token_ids"),
    "use_beam_search": (_unset, "beam search"),
    "include_stop_str_in_output": (_unset, "include_stop_str_in_output"),
    "prompt_logprobs": (lambda v: v is None, "log probabilities"),
    "n_probs": (_unset, "log probabilities"),
}


def refuse_unsupported(body: Mapping[str, Any]) -> None:
    """A ``PromptError`` naming the first field of ``body`` that would change the answer."""
    for name, (harmless, what) in _REFUSED.items():
        if name in body and not harmless(body[name]):
            raise PromptError(f"{name}: RouterLLM's server does not support {what}", name)
