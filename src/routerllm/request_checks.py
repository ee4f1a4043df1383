"""What a routed system accepts as a request: checked before any model runs, with an
error that says what to change (``PromptError``), never a traceback."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Set

from routerllm.backends.base import GenerationRequest
from routerllm.checks import not_utf8
from routerllm.exceptions import PromptError


def checked_prompt(prompt: object, limit: int) -> str:
    """``prompt`` if it is non-empty UTF-8 text of at most ``limit`` characters."""
    if not isinstance(prompt, str):
        # an OpenAI client's messages, or one of them: how a conversation is asked here
        chat = (
            "; a conversation is GenerationRequest(newest text, system=..., history=((role, "
            "text), ...)), several prompts generate_batch"
            if isinstance(prompt, list | tuple | Mapping)
            else ""
        )
        raise PromptError(f"prompt must be text, got {type(prompt).__name__}{chat}", "prompt")
    if not prompt.strip():
        raise PromptError("prompt is empty", "prompt")
    if (at := not_utf8(prompt)) is not None:  # e.g. bytes that were not UTF-8, from a file
        raise PromptError(
            f"prompt is not valid UTF-8 text (undecodable bytes at character {at}); "
            f"convert it to UTF-8 first",
            "prompt",
        )
    if len(prompt) > limit:
        raise PromptError(
            f"prompt is {len(prompt):,} characters, over the limit of {limit:,} "
            f"(limits.max_prompt_chars)",
            "prompt",
        )
    if (nul := prompt.find("\x00")) >= 0:  # no text holds one: the model answered noise
        raise PromptError(
            f"prompt holds a NUL character (\\0) at character {nul + 1}, which no text "
            f"holds: binary data, or a UTF-16 file read as UTF-8? convert it to UTF-8 text",
            "prompt",
        )
    if not any(_visible(c) for c in prompt):  # stops at the first: only such prompts are read
        raise PromptError(
            "prompt is empty: it holds no visible character (only spaces, zero-width "
            "characters, byte-order marks or control characters)",
            "prompt",
        )
    return prompt


def _visible(char: str) -> bool:
    """Whether ``char`` shows: not a space, a format character (a zero-width space, a
    byte-order mark) or a control character."""
    return not char.isspace() and unicodedata.category(char) not in ("Cf", "Cc")


def check_length(request: GenerationRequest, limit: int) -> None:
    """The system text, a conversation's earlier turns and the answer's prefix, which the
    model reads as well, count toward the prompt's length limit (the prompt alone is
    checked by ``checked_prompt``)."""
    if not (request.history or request.system or request.response_prefix):
        return
    texts = (request.prompt, request.system or "", request.response_prefix, *(t for _, t in request.history))  # fmt: skip
    total = sum(len(t) for t in texts)
    if total > limit:
        raise PromptError(
            f"the request is {total:,} characters (its prompt, system text, response prefix "
            f"and {len(request.history)} earlier turns), over the limit of {limit:,} "
            f"(limits.max_prompt_chars); shorten the system text or the response prefix, "
            f"or drop the oldest turns",
            "prompt",
        )


def checked_request(request: object, limit: int) -> GenerationRequest:
    """A request (or a prompt's text, made a request) whose prompt and whole length
    are within ``limit`` characters."""
    req = request if isinstance(request, GenerationRequest) else GenerationRequest(prompt=request)  # type: ignore[arg-type]
    checked_prompt(req.prompt, limit)
    check_length(req, limit)
    return req


def checked_batch(requests: object, limit: int) -> list[GenerationRequest]:
    """A batch's requests, each checked (a single request is refused: a batch is a list)."""
    if isinstance(requests, str | GenerationRequest):
        raise PromptError("generate_batch takes a list of requests, not one request")
    # bytes too: they iterate as numbers, each then refused as "not text, got int"
    if not isinstance(requests, Iterable) or isinstance(
        requests, Mapping | Set | bytes | bytearray
    ):
        raise PromptError(f"generate_batch takes a list of requests, got {type(requests).__name__}")
    return [checked_request(r, limit) for r in requests]


def checked_tag(tag: object) -> str:
    """A request log tag: text, None meaning none."""
    if tag is None:
        return ""
    if not isinstance(tag, str):
        raise PromptError(f"tag must be text (or None), got {type(tag).__name__}")
    if (at := not_utf8(tag)) is not None:  # the log stores UTF-8: refused after the answer
        raise PromptError(
            f"tag is not valid UTF-8 text (undecodable at character {at}); convert it to "
            f"UTF-8 first"
        )
    return tag
