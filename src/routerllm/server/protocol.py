"""The OpenAI API's requests and answers, as RouterLLM's server reads and writes them.

Translation only, no web framework: :func:`chat_call` and :func:`completion_call`
turn a request body into a :class:`Call` (the model asked for and a
``GenerationRequest``); :func:`answer` and :func:`events` turn the routed result
into the API's answer or its server-sent events. A mistake in a body is a
``PromptError`` naming the field. A field that would change the answer in a way
RouterLLM cannot honour (tools, logprobs, penalties, several choices, web search,
moderation, vLLM's and llama-server's constrained output and lengths) is refused, not
ignored (:mod:`routerllm.server.refused_fields`); fields that change nothing here
(``user``, ``metadata``...) are accepted and unused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from routerllm.backends.base import ROLES, GenerationRequest
from routerllm.checks import is_integer, is_number, json_kind
from routerllm.config import AUTO
from routerllm.exceptions import (
    BackendError,
    BudgetExceededError,
    ConfigError,
    ContextLengthError,
    EndpointOverloadedError,
    ModelUnavailableError,
    PromptError,
    RateLimitedError,
    RequestLogError,
    RouterLLMError,
    UnknownNameError,
    UnknownRequestError,
)
from routerllm.server.refused_fields import refuse_unsupported
from routerllm.strict_json import json_text

if TYPE_CHECKING:
    from routerllm.routed_result import RoutedResult


@dataclass(frozen=True)
class Call:
    """One API request: which kind, the model asked for (None: routed), the request."""

    kind: Literal["chat", "completion"]
    model: str | None
    request: GenerationRequest
    stream: bool = False
    include_usage: bool = False


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise PromptError(f"the request body must be a JSON object, got {json_kind(body)}")
    refuse_unsupported(body)
    return body


def _model(body: Mapping[str, Any]) -> str | None:
    model = body.get("model", AUTO)
    if not isinstance(model, str) or not model.strip():
        raise PromptError(
            f"model must be a model's name or {AUTO!r} to route, got {model!r:.80}", "model"
        )
    return None if model == AUTO else model


def _number(body: Mapping[str, Any], name: str, whole: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not (is_integer(value) if whole else is_number(value)):
        kind = "a whole number" if whole else "a number"
        raise PromptError(f"{name} must be {kind}, got {json_kind(value)} {value!r:.40}", name)
    return value


def _seed(body: Mapping[str, Any]) -> int | None:
    """The request's seed: any 64-bit integer, as OpenAI's API takes, as its low 32 bits
    (the seed of llama.cpp and of ``GenerationRequest``: 0 to 2**32 - 1; -1 is 2**32 - 1):
    the same seed always gives the same one, and 0 to 2**32 - 1 are themselves."""
    seed = _number(body, "seed", whole=True)
    if seed is not None and not -(2**63) <= seed < 2**63:
        raise PromptError(f"seed must be a whole number from -2**63 to 2**63 - 1, got {seed!r:.40}", "seed")  # fmt: skip
    return None if seed is None else int(seed) % 2**32


def _top_k(body: Mapping[str, Any]) -> int | None:
    """The request's top_k, an extension of vLLM's and llama-server's: 0 is no filter,
    and so is vLLM's -1."""
    top_k = _number(body, "top_k", whole=True)
    if top_k is not None and top_k < -1:
        raise PromptError(f"top_k must be a whole number >= 0 (0 or -1: no filter), got {top_k!r:.40}", "top_k")  # fmt: skip
    return None if top_k is None else max(int(top_k), 0)


MAX_MESSAGES = 2048
"""The most messages a chat request may hold: a conversation longer than the models here
read, 1,024 turns each way. Empty turns pass the character limit, not the model's reading: 104,001 (3.1 MB, under the body cap) held a
worker for 25 s per request, and for minutes to hours through a chat template, whose
markers llama.cpp reads as special tokens in time quadratic in their number."""

MAX_STOP_SEQUENCES = 16
"""The most stop sequences a request may give (OpenAI's API takes 4)."""
MAX_STOP_CHARS = 1_000
"""The longest stop sequence a request may give."""


def _stop(body: Mapping[str, Any]) -> list[str]:
    """The stop sequences, within limits: llama.cpp looks for each one after every token,
    so that a body full of them (100,000 take 0.3 s a token) would hold the turn of every
    other request for minutes."""
    stop = body.get("stop")
    if stop is None:
        return []
    stop = [stop] if isinstance(stop, str) else stop
    if not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise PromptError(f"stop must be a string or an array of strings, got {stop!r:.80}", "stop")  # fmt: skip
    if len(stop) > MAX_STOP_SEQUENCES:
        raise PromptError(f"stop holds {len(stop):,} sequences: give at most {MAX_STOP_SEQUENCES}", "stop")  # fmt: skip
    if longest := max((len(s) for s in stop if len(s) > MAX_STOP_CHARS), default=0):
        raise PromptError(f"a stop sequence is {longest:,} characters long: the limit is {MAX_STOP_CHARS:,}", "stop")  # fmt: skip
    return list(stop)


def _stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise PromptError(f"stream must be true or false, got {stream!r:.40}", "stream")
    if body.get("stream_options") is not None and not stream:  # as OpenAI's API refuses it
        raise PromptError("stream_options is only allowed when stream is true", "stream_options")
    # null is unset, as every null in a body is; another falsy value ([], "") is no object
    options = {} if body.get("stream_options") is None else body["stream_options"]
    usage = options.get("include_usage") if isinstance(options, Mapping) else 0
    usage = False if usage is None else usage
    if not isinstance(usage, bool):
        raise PromptError(f'stream_options must be an object like {{"include_usage": true}}, got {options!r:.80}', "stream_options")  # fmt: skip
    return stream, usage


def _request(body: Mapping[str, Any], prompt: str, **fields: Any) -> GenerationRequest:
    """The request's sampling options; the API's names in every message."""
    # max_completion_tokens replaces max_tokens where both are given; each is checked
    limits = {name: _number(body, name, whole=True) for name in ("max_tokens", "max_completion_tokens")}  # fmt: skip
    for name, value in limits.items():
        if value is not None and value < 1:
            raise PromptError(f"{name} must be at least 1, got {value}", name)
    limit = "max_completion_tokens" if limits["max_completion_tokens"] is not None else "max_tokens"  # fmt: skip
    new_tokens = limits[limit]
    options = {
        "temperature": _number(body, "temperature"),
        "top_p": _number(body, "top_p"),
        "top_k": _top_k(body),
        "min_p": _number(body, "min_p"),
        "repetition_penalty": _number(body, "repetition_penalty"),
        "seed": _seed(body),
    }
    try:
        return GenerationRequest(
            prompt, max_new_tokens=new_tokens, stop=_stop(body), **options, **fields
        )
    except PromptError as e:  # a chat's prompt (system text, earlier turns) is its messages
        names = {"max_new_tokens": limit, "prompt": "prompt" if fields.get("raw") else "messages"}
        param = names.get(e.param or "", e.param)
        raise PromptError(str(e).replace("max_new_tokens", limit), param) from None


def chat_call(body: object) -> Call:
    """A ``POST /v1/chat/completions`` body: the last message is the user's prompt
    (the one the router reads), system and developer messages become the system
    text, and the user's and assistant's earlier messages the conversation's history."""
    body = _object(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise PromptError(
            "messages must be a non-empty array of {role, content} objects", "messages"
        )
    if len(messages) > MAX_MESSAGES:
        raise PromptError(f"messages holds {len(messages):,} messages: give at most {MAX_MESSAGES:,}", "messages")  # fmt: skip
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise PromptError(f"{where} must be an object with role and content", "messages")
        role = message.get("role")
        if role in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):  # fmt: skip
            raise PromptError(
                f"{where}: RouterLLM's server does not support tool calls", "messages"
            )
        text = _content(message.get("content"), f"{where}.content")
        if role in ("system", "developer"):
            system.append(text)
        elif role in ROLES:
            turns.append((role, text))
        else:
            raise PromptError(f"{where}.role must be system, developer, user or assistant, got {role!r:.40}", "messages")  # fmt: skip
    if not turns or turns[-1][0] != "user":
        raise PromptError(
            "the last message (after any system messages) must be the user's", "messages"
        )
    prompt = turns.pop()[1]
    stream, usage = _stream(body)
    request = _request(body, prompt, system="\n\n".join(system) or None, history=tuple(turns))
    return Call("chat", _model(body), request, stream, usage)


def _content(content: object, where: str) -> str:
    """A message's text: a string, or an array of text parts (joined by new lines)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise PromptError(
                    f"{where}: only text parts are supported, got {_part_kind(part)}", "messages"
                )
            if not isinstance(part.get("text"), str):
                raise PromptError(f"{where}: a text part needs its text as a string", "messages")
            texts.append(part["text"])
        return "\n".join(texts)
    kind = "an empty array" if content == [] else json_kind(content)
    raise PromptError(f"{where} must be a string or an array of text parts, got {kind}", "messages")  # fmt: skip


def _part_kind(part: object) -> str:
    """What a content part other than a text part is: its type, quoted, or what it is
    where it has none (a string part was "got 'a string'", as if typed so)."""
    if not isinstance(part, Mapping):
        return json_kind(part)
    if part.get("type") is None:
        return "a part without a type"
    return f"{part['type']!r:.40}"


def completion_call(body: object) -> Call:
    """A ``POST /v1/completions`` body: the prompt is continued as plain text (a raw
    request, without the model's chat template)."""
    body = _object(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise PromptError(f"prompt must be a string, got {_prompt_kind(prompt)}", "prompt")
    stream, usage = _stream(body)
    return Call("completion", _model(body), _request(body, prompt, raw=True), stream, usage)


def _prompt_kind(prompt: object) -> str:
    """What a completion's prompt that is not one string is, and what to send instead:
    the API's other forms are several prompts and token ids (one array, or arrays)."""
    if not isinstance(prompt, list):
        return json_kind(prompt)
    if not prompt:
        return "an empty array"
    if all(is_integer(t) or (isinstance(t, list) and all(is_integer(i) for i in t)) for t in prompt):  # fmt: skip
        return "token ids (not supported here: send the prompt's text)"
    return "an array; send one prompt per request"


def _finish(reason: str | None) -> str:
    return reason if reason in ("stop", "length", "content_filter") else "stop"


def _usage(result: RoutedResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def facts(result: RoutedResult, warning: str = "") -> dict[str, Any]:
    """What RouterLLM adds to an answer (its ``routerllm`` field): the model chosen and
    why, the request's energy, CO2 and cost, and each component's energy, CO2 and
    duration."""
    about = {k: v for k, v in result.to_dict().items() if k != "response"}
    return {**about, "warning": warning} if warning else about


def _head(call: Call, request_id: str, model: str, created: int, chunk: bool = False) -> dict[str, Any]:  # fmt: skip
    prefix, kind = ("chatcmpl", "chat.completion") if call.kind == "chat" else ("cmpl", "text_completion")  # fmt: skip
    if chunk and call.kind == "chat":
        kind += ".chunk"
    return {"id": f"{prefix}-{request_id}", "object": kind, "created": created, "model": model}  # fmt: skip


def answer(call: Call, result: RoutedResult, created: int, warning: str = "") -> dict[str, Any]:
    """The API's answer to ``call``, with RouterLLM's facts under ``routerllm``."""
    finish = _finish(result.finish_reason)
    choice: dict[str, Any] = (
        {"index": 0, "message": {"role": "assistant", "content": result.text}}
        if call.kind == "chat"
        else {"index": 0, "text": result.text}
    )
    choice.update(logprobs=None, finish_reason=finish)
    return {
        **_head(call, result.request_id, result.model, created),
        "choices": [choice],
        "usage": _usage(result),
        "routerllm": facts(result, warning),
    }


def chunk_head(call: Call, request_id: str, model: str, created: int) -> dict[str, Any]:
    """What every event of a streamed answer carries: its id, kind, time and model."""
    head = _head(call, request_id, model, created, chunk=True)
    if call.include_usage:  # as the API does: null in every chunk but the last
        head["usage"] = None
    return head


def _event(chunk: Any) -> str:
    # As the plain answer (``app._answer``): a figure that is not finite is null.
    return f"data: {json_text(chunk)}\n\n"


def _choice(call: Call, text: str | None, finish: str | None, first: bool) -> dict[str, Any]:
    if call.kind == "chat":
        delta: dict[str, Any] = {} if text is None else {"content": text}
        if first:  # the first chunk says whose the message is
            delta = {"role": "assistant", **delta}
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}


def text_event(call: Call, head: dict[str, Any], text: str, first: bool = False) -> str:
    """A piece of a streamed answer's text, as an event (``first``: the answer's first)."""
    return _event({**head, "choices": [_choice(call, text, None, first)]})


def closing_events(call: Call, head: dict[str, Any], result: RoutedResult, warning: str = "") -> list[str]:  # fmt: skip
    """The events that end a streamed answer once its text is sent: the finish reason
    (with RouterLLM's facts, known only now), the usage when asked, and ``[DONE]``."""
    chunks = [
        {
            **head,
            "choices": [_choice(call, None, _finish(result.finish_reason), False)],
            "routerllm": facts(result, warning),
        },  # fmt: skip
    ]
    if call.include_usage:
        chunks.append({**head, "choices": [], "usage": _usage(result)})
    return [_event(c) for c in chunks] + ["data: [DONE]\n\n"]


def error_event(body: dict[str, Any]) -> str:
    """The event that ends a stream where the answer failed after its first text: the
    API's error object (an openai client raises it as ``APIError``), and no ``[DONE]``."""
    return _event(body)


def events(call: Call, result: RoutedResult, created: int, warning: str = "") -> list[str]:
    """A whole answer as server-sent events, as a streaming client reads them: its text
    in one chunk, then :func:`closing_events`."""
    head = chunk_head(call, result.request_id, result.model, created)
    return [text_event(call, head, result.text, first=True), *closing_events(call, head, result, warning)]  # fmt: skip


def feedback_call(body: object) -> tuple[str, float]:
    """``POST /routerllm/feedback``'s body ``{"request_id": ..., "score": 0..1}``: the
    ``request_id`` of a routed answer (its ``routerllm`` field's, or the answer's ``id``)
    and its score."""
    if not isinstance(body, Mapping):
        raise PromptError(f"the request body must be a JSON object, got {json_kind(body)}")
    if unknown := sorted(set(body) - {"request_id", "score"}):
        raise PromptError(
            f"unknown field(s) {', '.join(f'{k!r:.40}' for k in unknown[:5])}: a feedback body is "
            f'{{"request_id": "...", "score": 0..1}}'
        )
    request_id, score = body.get("request_id"), body.get("score")
    # the answer's own id ("chatcmpl-<request_id>", _head) names it as well
    if isinstance(request_id, str):
        for prefix in ("chatcmpl-", "cmpl-"):
            request_id = request_id.removeprefix(prefix)
    if not isinstance(request_id, str) or not request_id.strip():
        raise PromptError(
            "request_id must be the request_id in an answer's routerllm field (a string)",
            "request_id",
        )
    if not (is_number(score) and 0 <= score <= 1):  # type: ignore[operator]  # NaN fails both
        raise PromptError(f"score must be a number from 0 (failed) to 1 (solved), got {json.dumps(score)[:40]}", "score")  # fmt: skip
    return request_id, float(score)  # type: ignore[arg-type]


def parse_json(data: bytes) -> Any:
    """A request body's JSON; one ``PromptError`` saying what is wrong with it."""
    try:
        return json.loads(data)
    except RecursionError:
        raise PromptError("the request body's JSON is nested too deeply") from None
    except ValueError as e:  # not JSON, not UTF-8, or a number of over 4,300 digits
        raise PromptError(f"the request body is not valid JSON ({e})") from None


def unknown_model(name: str, names: list[str]) -> UnknownNameError:
    """The error for a model name that is neither ``auto`` nor one of ``names``."""
    shown = name if len(name) <= 100 else f"{name[:100]}..."
    return UnknownNameError("model", shown, [AUTO, *names])


def model_list(names: list[str]) -> dict[str, Any]:
    """``GET /v1/models``: ``auto`` (routed) and each model that can run here."""
    return {"object": "list", "data": [model_entry(n) for n in [AUTO, *names]]}


def model_entry(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "routerllm"}


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The API's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


RETRY_AFTER_HONOURED_S = 60
"""The longest ``Retry-After`` that every openai client waits out before its retry: 60 s
in older releases, 120 s in 3.57. Beyond, an older one ignores it and retries at once (its
own backoff: 0.5 s, then 1 s), refused again; 3.57 does not retry."""


def retry_after(error: RouterLLMError, now: datetime) -> int | None:
    """Seconds until a spent hourly or daily budget allows requests again, or that a
    remote model's endpoint asked to wait (the ``Retry-After`` of a 429 or 503), or None
    where waiting does not help or the wait is not known."""
    if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
        return max(1, math.ceil(error.retry_after_s))
    if not (isinstance(error, BudgetExceededError) and error.retry_at):
        return None
    return max(1, math.ceil((datetime.fromisoformat(error.retry_at) - now).total_seconds()))


def retry_mends(error: RouterLLMError | None, status: int, wait: int | None) -> bool:
    """Whether a client's own retry of a refused request may succeed: the openai client
    retries a 408, 429 or 5xx (twice by default) unless told ``x-should-retry: false``.
    Not a 500 (a bug repeats, and the model may have run already: three answers generated
    and logged for one), a 502 (this server retried a remote endpoint itself; a local model
    that failed to load fails again, its load paid for each time), a model that cannot run
    here, a budget no wait restores (``wait`` None: a per-request limit), or a wait longer
    than a client waits out (``RETRY_AFTER_HONOURED_S``: an hourly budget spent), nor a
    request log that cannot be written (moved away: until a restart; another process's
    lock: held for the 30 s already waited)."""
    if status == 500 or status == 502 or isinstance(error, RequestLogError):
        return False
    if wait is not None and wait > RETRY_AFTER_HONOURED_S:
        return False
    if isinstance(error, ModelUnavailableError):
        return False
    return not (isinstance(error, BudgetExceededError) and wait is None)


def error_status(error: RouterLLMError) -> tuple[int, str, str | None]:
    """HTTP status, error type and code for a RouterLLM error."""
    if isinstance(error, UnknownNameError):
        return 404, "invalid_request_error", "model_not_found"
    if isinstance(error, UnknownRequestError):
        return 404, "invalid_request_error", "request_not_found"
    if isinstance(error, ContextLengthError):  # OpenAI's code, which clients act on
        return 400, "invalid_request_error", "context_length_exceeded"
    if isinstance(error, PromptError | ConfigError):
        return 400, "invalid_request_error", None
    if isinstance(error, BudgetExceededError):
        return 429, "insufficient_quota", "budget_exceeded"
    if isinstance(error, ModelUnavailableError):
        return 503, "server_error", "model_unavailable"
    if isinstance(error, EndpointOverloadedError):  # as the endpoint said: later
        return 503, "server_error", "backend_overloaded"
    if isinstance(error, RateLimitedError):  # the client backs off, as from OpenAI's own
        return 429, "requests", "rate_limit_exceeded"
    if isinstance(error, BackendError):
        return 502, "server_error", "backend_error"
    if isinstance(error, RequestLogError):  # the server is sound, its log is not: no 500 (a bug)
        return 503, "server_error", "request_log_unavailable"
    return 500, "server_error", None
