"""Any OpenAI-compatible chat completions server (vLLM, TGI, Ollama, llama.cpp server, hosted APIs).

Uses only the standard library: a time limit on each attempt (the whole answer),
retries with capped exponential backoff (or the server's Retry-After) on transport
faults, 408, 429 and 5xx, and one clear one-line error for every other failure. An
answer the server did give, but malformed, is not asked again; redirects are not
followed (a POST would become a GET, and the API key go to another host).
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import logging
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, ClassVar

from routerllm.backends.base import (
    Backend,
    Completion,
    GenerationRequest,
    chat_messages,
    plain_text,
    refuse_prompt_state,
    resolve_sampling,
)
from routerllm.backends.content_encoding import ContentDecoder, Undecodable
from routerllm.checks import is_finite_number, json_kind
from routerllm.exceptions import (
    BackendError,
    ContextLengthError,
    EndpointOverloadedError,
    EndpointUnreachableError,
    PromptError,
    RateLimitedError,
    RouterLLMError,
)

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
#: The request refused as invalid (TGI says 422): a ``PromptError``, as a local model's
#: refusal of the same request is, not a failing backend.
REFUSED_STATUS = {400, 422}
#: Still answered once the retries are spent, the errors that say "ask again later".
_BUSY: dict[int, type[RateLimitedError]] = {429: RateLimitedError, 503: EndpointOverloadedError}
MAX_BACKOFF_S = 30.0  # the longest wait between two attempts, Retry-After included
MAX_RESPONSE_BYTES = 32 * 2**20
MAX_ERROR_BYTES = 2**20  # of an error answer, quoted in 300 characters at most
#: More tokens than any model's context: a usage count above it is not a count.
MAX_USAGE_TOKENS = 10**7
#: Half of a UTF-16 surrogate pair, as JSON's "\ud83d" escape gives one on its own.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: What a quoted text must not carry as is: C0 and C1 control characters (a terminal's
#: escape sequences among them) and the bidirectional overrides, which reorder a line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class _Malformed(Exception):
    """The server answered, but not with what the API defines: not asked again."""


class _CutShort(http.client.IncompleteRead):
    """The connection closed before the announced length: ``came`` bytes of it came (its
    ``partial`` is left empty: decoded, those bytes are others, and not needed)."""

    def __init__(self, came: int, expected: int) -> None:
        super().__init__(b"", expected)
        self.came = came


class _NoAnswer(OSError):
    """No answer began over the connection made: nothing within the time limit (a wedged
    server), or the connection closed or reset before a whole status line came, or what
    came is no HTTP (a crashed server, a proxy whose upstream is gone, a TLS port). The
    endpoint is as unreachable as one refusing the connection; its cause says why."""


class _BilledHTTPError(urllib.error.HTTPError):
    """An error sent with HTTP 200 (OpenRouter's, once the model began), with the tokens
    its ``usage`` says the failed generation used (billed all the same)."""

    billed: tuple[int, int] = (0, 0)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirects)


class OpenAIHTTPBackend(Backend):
    """POSTs to ``{base_url}/chat/completions`` (``/completions`` for raw requests);
    energy is estimated per token, not metered. A response prefix cannot be
    sent through the OpenAI API, so prefilled requests are refused."""

    measured_locally: ClassVar[bool] = False
    prefills: ClassVar[bool] = False
    backoff_base_s: float = 0.5
    probe_timeout_s: float = 2.0

    _connected = False

    @property
    def base_url(self) -> str:
        assert self.config.base_url is not None
        return self.config.base_url.rstrip("/")

    def _key(self) -> str:
        """The API key in ``api_key_env`` ("" where none), without the spaces around it:
        a key read from a file ends in a new line, which no HTTP header may carry (and
        http.client's error for it quotes the key)."""
        if not self.config.api_key_env:
            return ""
        key = os.environ.get(self.config.api_key_env, "").strip()
        if any(c < " " or c == "\x7f" for c in key):
            raise BackendError(
                f"environment variable {self.config.api_key_env} (API key) holds a control "
                f"character, such as a new line, within the key; set it to the key alone"
            )
        return key

    def _headers(self) -> dict[str, str]:
        # No compression asked for (http.client's default, said here as meant): an answer
        # is a few KiB of JSON that takes seconds to generate, which gzip would not speed
        # up. One compressed all the same (a proxy's doing) is decoded: ContentDecoder.
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if key := self._key():
            # its UTF-8 bytes, as curl sends a key and RouterLLM's server compares one:
            # http.client sends a header's text as latin-1, and fails on what is beyond
            headers["Authorization"] = f"Bearer {key}".encode().decode("latin-1")
        return headers

    def _request(self, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        """The server's JSON answer, read whole within ``timeout`` (each socket wait is
        limited to it too, so a stalled answer ends within two ``timeout``)."""
        deadline = time.monotonic() + timeout
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=self._headers()
        )
        try:
            opened = _OPENER.open(req, timeout=timeout)
        except urllib.error.URLError:  # no connection made (its reason says why), or an HTTP error
            raise
        except (OSError, http.client.HTTPException) as e:  # raised reading the status line
            raise _NoAnswer(str(e)) from e
        with opened as resp:
            decoder = ContentDecoder(resp.headers["Content-Encoding"], MAX_RESPONSE_BYTES)
            chunks, came = [], 0
            while chunk := resp.read1(65536):
                came += len(chunk)
                chunks.append(decoder.feed(chunk))
                # the sent bytes capped too: empty gzip members one after another decode to nothing
                if decoder.over or came > MAX_RESPONSE_BYTES:
                    decoded = f" decoded ({decoder.coding})" if decoder.over and decoder.coding else ""  # fmt: skip
                    raise _Malformed(f"its answer is over {MAX_RESPONSE_BYTES // 2**20} MiB{decoded}")  # fmt: skip
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no whole answer within {timeout:g} s")
            if resp.length:  # the connection closed before the announced length
                raise _CutShort(came, resp.length)
            decoder.end()
        raw = b"".join(chunks)
        try:
            out = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, nested too deep
            # what it says it sent: a stream or a compression nobody asked for, a page
            sent = ", ".join(
                _one_line(value)[:60]
                for value in (resp.headers["Content-Type"], resp.headers["Content-Encoding"])
                if value
            )
            as_sent = f"sent as {sent}: " if sent else ""
            raise _Malformed(
                f"its answer is not JSON ({as_sent}{_one_line(str(e))[:100]})"
            ) from None
        err = out.get("error") if isinstance(out, dict) and "choices" not in out else None
        code = err.get("code") if isinstance(err, dict) else None
        # OpenRouter's error once the model began (HTTP 200, its status as the code):
        # handled as that status is (retried, a rate limit's RateLimitedError...)
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
            del resp.headers["Content-Encoding"]  # the body passed on with them is decoded
            error = _BilledHTTPError(
                req.full_url, code, "error sent with HTTP 200", resp.headers, io.BytesIO(raw)
            )
            # the tokens its provider bills for the generation that failed, where it says:
            # without a count, the error is what matters, its tokens logged as 0
            prompt, completion = _usage(out, "")[0]
            error.billed = (prompt, completion)
            raise error
        return out

    def _no_key(self) -> str | None:
        """Why the API key ``api_key_env`` names cannot be sent, where it cannot: unset,
        empty, a control character within it."""
        try:
            key = self._key()
        except BackendError as e:
            return str(e)
        if self.config.api_key_env and not key:
            var = self.config.api_key_env
            return f"environment variable {var} (API key) is {'empty' if var in os.environ else 'not set'}"  # fmt: skip
        return None

    def availability(self) -> str | None:
        if (why := self._no_key()) is not None:
            return why
        try:
            self._request("GET", "/models", None, self.probe_timeout_s)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                return f"endpoint {self.base_url} refused the API key (HTTP {e.code})"
            return None  # the server answers; some do not implement /models
        except (_Malformed, Undecodable) as e:
            return f"endpoint {self.base_url} answered, but {e}"
        except (OSError, ValueError, http.client.HTTPException) as e:
            why = _reason(e, self.probe_timeout_s)  # a non-HTTP answer's first bytes
            return f"endpoint {self.base_url} unreachable ({self._hide_key(why)})"
        return None

    @property
    def loaded(self) -> bool:
        return self._connected

    def load(self) -> None:
        self._connected = True  # nothing to load: the server holds the weights

    def unload(self) -> None:
        self._connected = False

    def _hide_key(self, text: str) -> str:
        """``text`` with the API key shown as ``<API key>``: a server's text quoted in an
        error or a log may echo the key it was sent (a proxy's "invalid token sk-...")."""
        try:
            key = self._key()
        except BackendError:  # not sent
            return text
        return text.replace(key, "<API key>") if key else text

    def generate(self, request: GenerationRequest) -> Completion:
        try:
            return self._generate(request)
        except RouterLLMError as e:  # a server's text quoted in it, the key hidden
            e.args = tuple(self._hide_key(a) if isinstance(a, str) else a for a in e.args)
            if isinstance(e, PromptError) and e.param is not None:
                e.param = self._hide_key(e.param)
            raise

    def _generate(self, request: GenerationRequest) -> Completion:
        refuse_prompt_state(request, self.name, "an OpenAI-compatible server")
        if request.response_prefix:
            raise BackendError(
                f"model {self.name!r} is served over the OpenAI API, which cannot start the "
                f"answer with a given prefix; use a chat or raw (complete) request"
            )
        if (why := self._no_key()) is not None:  # not sent without it, for a 401
            raise BackendError(f"model {self.name!r}: {why}")
        self.load()
        sampling = resolve_sampling(request, self.generation)
        path = "/completions" if request.raw else "/chat/completions"
        prompt: dict[str, Any] = (
            {"prompt": plain_text(request)} if request.raw else {"messages": chat_messages(request)}
        )
        body: dict[str, Any] = {
            "model": self.config.model_id,
            **prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if request.stop:
            body["stop"] = request.stop
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        start = time.perf_counter()
        out, billed = self._post_with_retries(path, body)
        latency = time.perf_counter() - start
        try:
            choice, text, finish_reason = _answer(out, request.raw)
        except _Shape as e:
            quoted = _one_line(self._hide_key(str(out)))[:200]  # not the key cut in two
            shape = BackendError(
                f"{self.base_url}{path} answered model {self.name!r}'s request with an "
                f"unexpected response shape ({e}): {quoted}"
            )
            shape.billed_tokens = billed  # the failed attempts' before it
            raise shape from None
        tokens, unknown = _usage(out, text)
        if unknown is not None:  # a failed answer's tokens are billed too: said of it as well
            log.warning(
                "%s: the answer %s; its tokens are logged as 0, its energy and cost as not known",
                self.name,
                self._hide_key(unknown),
            )
        if finish_reason == "error":  # OpenRouter's and some proxies' failed generation
            said = choice.get("error") or out.get("error")
            said = said.get("message", said) if isinstance(said, dict) else said
            failed = BackendError(
                f"{self.base_url}{path} ended model {self.name!r}'s answer with finish_reason "
                f"'error' (its generation failed"
                + (f" after {tokens[1]} tokens" if unknown is None else "")
                + (f": {_one_line(str(said))[:200]}" if said else "")
                + "); the partial answer is not used"
            )
            # paid for all the same, as are the failed attempts' before it
            failed.billed_tokens = (tokens[0] + billed[0], tokens[1] + billed[1])
            raise failed
        return Completion(
            text=_text(text),
            model=self.name,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            latency_s=latency,
            finish_reason=None if finish_reason is None else _text(finish_reason),
            billed_before=billed,
            usage_known=unknown is None,
        )

    def _post_with_retries(self, path: str, body: dict[str, Any]) -> tuple[Any, tuple[int, int]]:
        """The answer, asked again as the module says, with the tokens the failed
        attempts' error bodies said were billed; where every attempt failed, the error
        carries those tokens."""
        billed = [0, 0]
        try:
            return self._attempts(path, body, billed), (billed[0], billed[1])
        except RouterLLMError as e:
            if any(billed):
                e.billed_tokens = (billed[0], billed[1])
            raise

    def _attempts(self, path: str, body: dict[str, Any], billed: list[int]) -> Any:
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            deadline = time.monotonic() + self.config.timeout_s
            try:
                return self._request("POST", path, body, self.config.timeout_s)
            except urllib.error.HTTPError as e:
                if isinstance(e, _BilledHTTPError):
                    billed[0] += e.billed[0]
                    billed[1] += e.billed[1]
                if e.code in RETRY_STATUS and not last:
                    self._sleep(attempt, f"HTTP {e.code}", e.headers.get("Retry-After"))
                    continue
                param = None
                if 300 <= e.code < 400:  # its body is not read: it is not the answer
                    detail = (
                        f"a redirect to {_one_line(str(e.headers.get('Location')))}, not followed"
                    )
                else:
                    detail, param = _error_detail(e, deadline, self._hide_key)
                if e.code in REFUSED_STATUS and "context" in detail.lower():
                    raise ContextLengthError(
                        f"model {self.name!r} rejected the prompt: {detail}"
                    ) from e
                if e.code in REFUSED_STATUS:  # an option's value, say: the endpoint is up
                    message = (
                        f"model {self.name!r} rejected the request (HTTP {e.code} from "
                        f"{self.base_url}{path}): {detail}"
                    )
                    # The client is told; the operator too, as a config setting may be
                    # what the endpoint refuses (a seed, a wrong base_url's proxy page).
                    log.warning("%s", self._hide_key(message))
                    raise PromptError(message, param) from e
                message = (
                    f"{self.base_url}{path} answered HTTP {e.code} for model "
                    f"{self.name!r}: {detail}"
                )
                # the caller may ask again later: not a failing backend
                if (busy := _BUSY.get(e.code)) is not None:
                    raise busy(message, _seconds(e.headers.get("Retry-After"))) from e
                raise BackendError(message) from e
            except (_Malformed, Undecodable) as e:
                raise BackendError(
                    f"{self.base_url}{path} answered model {self.name!r}'s request, but {e}"
                ) from None
            # refused, reset, timeout, bad JSON, truncated or malformed HTTP response
            except (OSError, ValueError, http.client.HTTPException) as e:
                why = _reason(e, self.config.timeout_s)
                if not last:
                    self._sleep(attempt, why)
                    continue
                # urllib's URLError: no connection made; _NoAnswer: no answer began over
                # the one made (an answer cut short, or trickling, is not unreachable)
                unreachable = isinstance(e, urllib.error.URLError | _NoAnswer)
                raise (EndpointUnreachableError if unreachable else BackendError)(
                    f"cannot reach {self.base_url} for model {self.name!r} after {attempts} "
                    f"attempt{'s' if attempts > 1 else ''} ({why})"
                ) from e
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, why: str, retry_after: str | None = None) -> None:
        """Wait before the next attempt: the server's Retry-After (seconds or a date) where it
        gives one, else exponential backoff; never more than MAX_BACKOFF_S."""
        delay = _seconds(retry_after)
        if delay is None:
            delay = min(self.backoff_base_s * (2 ** min(attempt, 16)), MAX_BACKOFF_S)
        log.warning("%s: %s; retrying in %.1fs", self.name, self._hide_key(why), delay)
        time.sleep(delay)


def _seconds(retry_after: str | None) -> float | None:
    """A Retry-After header's seconds (or its HTTP date's, from now), within [0,
    MAX_BACKOFF_S]; None where it gives neither."""
    if retry_after is None:
        return None
    try:
        delay = float(retry_after)
    except ValueError:
        try:  # RFC 9110 allows a date: "Wed, 21 Oct 2015 07:28:00 GMT"
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, as HTTP dates are
            when = when.replace(tzinfo=timezone.utc)
        delay = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(delay, 0.0), MAX_BACKOFF_S) if math.isfinite(delay) else MAX_BACKOFF_S


class _Shape(ValueError):
    """What is wrong with an answer that is JSON but not a completion."""


def _answer(out: Any, raw: bool) -> tuple[dict[str, Any], str, str | None]:
    """A completion's first choice, its text and finish reason; ``_Shape`` saying what
    is wrong where ``out`` is not a completion."""
    if not isinstance(out, dict):
        raise _Shape(f"{json_kind(out)}, not an object")
    choices = out.get("choices")
    if choices is None:
        raise _Shape("no 'choices'")
    if not isinstance(choices, list):
        raise _Shape(f"'choices' is {json_kind(choices)}, not an array")
    if not choices:
        raise _Shape("'choices' is empty")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise _Shape("choices[0] is not an object")
    if raw:
        if "text" not in choice:
            raise _Shape("choices[0] has no 'text'")
        text = choice["text"]
    else:
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _Shape("choices[0] has no 'message'")
        if "content" not in message:
            raise _Shape("choices[0].message has no 'content'")
        text = message["content"]
        if text is None:  # OpenAI's refusal: its text is the answer
            text = message.get("refusal")
    text = "" if text is None else text
    if not isinstance(text, str):
        raise _Shape(f"the answer's text is {json_kind(text)}")
    finish_reason = choice.get("finish_reason")
    if not isinstance(finish_reason, str | None):
        raise _Shape(f"finish_reason is {json_kind(finish_reason)}")
    return choice, text, finish_reason


def _usage(out: dict[str, Any], text: str) -> tuple[list[int], str | None]:
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


def _text(text: str) -> str:
    """``text`` with each lone surrogate (a JSON ``"\\ud83d"`` escape without its pair:
    an emoji cut in half at the token limit) made U+FFFD, as a local model's broken bytes
    are; no log, terminal or JSON answer could take it."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _one_line(text: str) -> str:
    """``text`` on one line, each control character shown as its escape (``\\x1b``): a
    server's text is quoted in errors and logs, where a terminal's escape sequence would
    act (clear the screen, retitle the window) and a NUL cut the line."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], " ".join(text.split()))


def _reason(e: BaseException, timeout: float) -> str:
    """What went wrong with an attempt, said plainly (``timeout``: its time limit)."""
    if isinstance(e, _NoAnswer) and e.__cause__ is not None:
        e = e.__cause__
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        if not isinstance(e.reason, BaseException):
            return _one_line(str(e.reason))
        e = e.reason  # a connection's error (refused, a timeout, a name not found)
    if isinstance(e, TimeoutError) and not str(e).startswith("no whole answer"):
        return f"no answer within timeout_s, {timeout:g} s"
    if isinstance(e, http.client.IncompleteRead):
        came = e.came if isinstance(e, _CutShort) else len(e.partial)
        whole = f" of {came + e.expected}" if e.expected is not None else ""
        return f"the connection closed mid-answer: {came}{whole} bytes came"
    if type(e) is http.client.BadStatusLine:  # RemoteDisconnected says what it is
        line = e.args[0] if e.args else ""
        return f"not an HTTP answer (it began {_one_line(repr(line)[:60])})"
    return _one_line(str(e)) or type(e).__name__


def _error_detail(
    e: urllib.error.HTTPError, deadline: float, hide_key: Callable[[str], str]
) -> tuple[str, str | None]:
    """The error answer's message, on one line, and the request field it names (the
    OpenAI error object's ``param``) where it names one. Its body is read until
    ``deadline`` (the attempt's time limit), at most MAX_ERROR_BYTES of it: an error
    page trickling in does not hold the request beyond it; what came is quoted, the API
    key it may echo hidden by ``hide_key``."""
    chunks, came = [], 0
    try:
        decoder = ContentDecoder(e.headers.get("Content-Encoding"), MAX_ERROR_BYTES)
    except Undecodable:
        e.close()
        coding = _one_line(str(e.headers.get("Content-Encoding")))[:60]
        return f"an error page compressed as {coding!r}, not decoded", None
    try:
        while not decoder.over and came < MAX_ERROR_BYTES and time.monotonic() < deadline:
            if not (chunk := e.read1(65536)):
                break
            came += len(chunk)
            chunks.append(decoder.feed(chunk))
    # the error page cut short, or its compressed data broken: what came of it
    except (OSError, http.client.HTTPException, Undecodable):
        pass
    finally:
        e.close()
    # the key it echoes hidden before the message is cut, not shown cut in two
    raw = hide_key(b"".join(chunks).decode("utf-8", "replace"))
    try:
        payload = json.loads(raw)
        err = payload.get("error", payload) if isinstance(payload, dict) else payload
        msg = err.get("message") if isinstance(err, dict) else None
        param = err.get("param") if isinstance(err, dict) else None
        named = _one_line(param)[:100] if isinstance(param, str) else ""
        return _one_line(str(msg or err))[:300], named or None
    except (ValueError, RecursionError):
        return _one_line(raw)[:300] or _one_line(str(e.reason)), None
