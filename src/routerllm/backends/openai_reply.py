"""An OpenAI-compatible server's reply read over its exchange (http_transport.py): whole,
as its JSON (``parsed_reply``), or as its stream of server-sent events (``streamed_reply``:
openai_stream.py), the text given as it comes and a cancelled one's connection closed at
once. An
error the reply carries with an HTTP status is raised as that status's ``HTTPError``, as
the backend handles one the server sent as its status (retried, said plainly)."""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.request
from typing import Any

from routerllm.backends.base import LiveText
from routerllm.backends.content_encoding import Undecodable
from routerllm.backends.http_transport import (
    Cancelled,
    Malformed,
    Unfinished,
    one_line,
    reason,
    streamed_exchange,
)
from routerllm.backends.interrupts import CANCELLED, Cancellation
from routerllm.backends.openai_answer import usage_tokens
from routerllm.backends.openai_stream import StreamedAnswer, StreamError, sse_data
from routerllm.exceptions import BackendError


class BilledHTTPError(urllib.error.HTTPError):
    """An error sent with HTTP 200 (OpenRouter's, once the model began), with the tokens
    its ``usage`` says the failed generation used (billed all the same)."""

    billed: tuple[int, int] = (0, 0)


def parsed_reply(req: urllib.request.Request, raw: bytes, headers: http.client.HTTPMessage) -> Any:
    """The JSON answer ``raw``; an error it carries with its status raised as that
    status's ``HTTPError`` (``_status_error``)."""
    try:
        out = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, nested too deep
        # what it says it sent: a stream or a compression nobody asked for, a page
        sent = ", ".join(
            one_line(value)[:60]
            for value in (headers["Content-Type"], headers["Content-Encoding"])
            if value
        )
        as_sent = f"sent as {sent}: " if sent else ""
        raise Malformed(f"its answer is not JSON ({as_sent}{one_line(str(e))[:100]})") from None
    err = out.get("error") if isinstance(out, dict) and "choices" not in out else None
    _status_error(req, out, err, raw, headers)
    return out


def _status_error(
    req: urllib.request.Request,
    out: Any,
    err: Any,
    raw: bytes,
    headers: http.client.HTTPMessage,
) -> None:
    """Raise the error ``err`` of the answer ``out`` (its body ``raw``) as the HTTP
    status its ``code`` gives, where it gives one."""
    code = err.get("code") if isinstance(err, dict) else None
    # OpenRouter's error once the model began (HTTP 200, its status as the code):
    # handled as that status is (retried, a rate limit's RateLimitedError...)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        del headers["Content-Encoding"]  # the body passed on with them is decoded
        error = BilledHTTPError(
            req.full_url, code, "error sent with HTTP 200", headers, io.BytesIO(raw)
        )
        # the tokens its provider bills for the generation that failed, where it says:
        # without a count, the error is what matters, its tokens logged as 0
        prompt, completion = usage_tokens(out, "")[0]
        error.billed = (prompt, completion)
        raise error


def streamed_reply(
    req: urllib.request.Request, timeout: float, live: LiveText, raw: bool, url: str, model: str
) -> tuple[dict[str, Any], int | None]:
    """The answer asked as a stream, its text given to ``live`` as it comes, as the
    completion it stands for (``StreamedAnswer``), with the pieces of text it came in
    (None where the endpoint answered whole, not streamed). Before any text was given, what
    fails is raised as the unstreamed answer's would be (retried where that is);
    after, a ``BackendError``: asked again, the text given would come twice. Where
    the request is cancelled (``cancellable``: the server's client gone) before its
    finish reason came, its connection is closed at once, even while the endpoint sends
    nothing (``streamed_exchange``'s ``cancel``), which stops the endpoint's generation:
    the answer so far, finish reason ``CANCELLED`` (``cancelled_reply``'s where no text
    came). ``url`` and ``model`` name the request in errors."""
    cancel = Cancellation()
    answer = StreamedAnswer(raw)
    # once the finish reason came the generation is over: its usage is read
    generating = (lambda: answer.finish_reason is None and cancel()) if cancel.active else None
    try:
        with streamed_exchange(req, timeout, generating) as stream:
            if not stream.events:  # an endpoint that does not stream: its answer whole
                parsed: dict[str, Any] = parsed_reply(req, stream.whole(), stream.headers)
                return parsed, None
            events = sse_data(stream.lines())
            while not answer.done:
                if answer.finish_reason is None and cancel():
                    answer.finish_reason = CANCELLED
                    break  # the connection closes as the block ends
                try:
                    data = next(events, None)
                    if data is None:
                        raise Unfinished("the stream ended without [DONE]")
                    piece = answer.take(data)
                except StreamError as e:
                    if not live.sent:  # as the same error unstreamed
                        raw_event = json.dumps(e.payload).encode("utf-8")
                        err = e.payload.get("error", e.payload)
                        _status_error(req, e.payload, err, raw_event, stream.headers)
                        raise BackendError(
                            f"{url} answered model {model!r}'s request "
                            f"with an error in its stream: {one_line(e.message)[:300]}"
                        ) from None
                    raise _broken(url, model, live, f"it sent an error: {one_line(e.message)[:300]}") from None  # fmt: skip
                except (Malformed, Undecodable) as e:
                    if not live.sent:
                        raise
                    raise _broken(url, model, live, str(e)) from None
                except (OSError, http.client.HTTPException) as e:
                    if not live.sent:
                        raise
                    raise _broken(url, model, live, reason(e, timeout)) from e
                if piece:  # the text so far continued: ``live`` holds back a stop's start
                    live(piece)
    except Cancelled:  # the connection shut while it was read
        answer.finish_reason = CANCELLED
    return answer.completion(), answer.pieces


def cancelled_reply(raw: bool) -> dict[str, Any]:
    """The answer to a request cancelled before any of it came: no text, finish reason
    ``CANCELLED``, its usage not known (no answer's ``usage`` came)."""
    answer = StreamedAnswer(raw)
    answer.finish_reason = CANCELLED
    return answer.completion()


def _broken(url: str, model: str, live: LiveText, why: str) -> BackendError:
    """The error of a stream that failed once its text began to be given."""
    return BackendError(
        f"{url} broke off model {model!r}'s streamed answer after "
        f"its answer began ({len(live.sent):,} characters given): {why}; not asked "
        f"again, which would give its text twice"
    )
