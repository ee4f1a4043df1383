"""Any OpenAI-compatible chat completions server (vLLM, TGI, Ollama, llama.cpp server, hosted APIs).

Uses only the standard library (http_transport.py; the endpoint, its key and its
``/models`` probe in openai_endpoint.py; the reply read, whole or streamed, in
openai_reply.py, what it says in openai_answer.py): a time limit on each attempt (the whole answer),
retries with capped exponential backoff (or the server's Retry-After) on transport
faults, 408, 429 and 5xx (none once the request is cancelled: its caller gone; its
call's connection is then closed at once, streamed or not), and one
clear one-line error for every other failure. An
answer the server did give, but malformed, is not asked again; redirects are not
followed (a POST would become a GET, and the API key go to another host).
"""

from __future__ import annotations

import http.client
import logging
import re
import time
import urllib.error
from typing import Any, ClassVar

from routerllm.backends.base import (
    Completion,
    GenerationRequest,
    LiveText,
    chat_messages,
    plain_text,
    refuse_prompt_state,
    resolve_sampling,
)
from routerllm.backends.content_encoding import Undecodable
from routerllm.backends.http_transport import (
    MAX_BACKOFF_S,
    Cancelled,
    Malformed,
    NoAnswer,
    error_detail,
    lasting_fault,
    one_line,
    reason,
    retry_after_s,
)
from routerllm.backends.interrupts import CANCELLED, Cancellation, cancelled
from routerllm.backends.openai_answer import (
    NotACompletion,
    answer_parts,
    usage_tokens,
    without_lone_surrogates,
)
from routerllm.backends.openai_endpoint import OpenAIEndpoint
from routerllm.backends.openai_reply import BilledHTTPError, cancelled_reply, streamed_reply
from routerllm.exceptions import (
    BackendError,
    ContextLengthError,
    EndpointOverloadedError,
    EndpointRefusedError,
    EndpointUnreachableError,
    PromptError,
    RateLimitedError,
    RouterLLMError,
)

log = logging.getLogger(__name__)

#: Asked again: a timeout, a rate limit and each 5xx but those that asking again only
#: repeats (501 not implemented, 505 HTTP version, 511 a network's login page): among
#: them Cloudflare's 520-524 in front of hosted APIs and Anthropic's 529 (overloaded).
RETRY_STATUS = {408, 429} | set(range(500, 600)) - {501, 505, 511}
#: The request refused as invalid (TGI says 422): a ``PromptError``, as a local model's
#: refusal of the same request is, not a failing backend.
REFUSED_STATUS = {400, 422}
#: TGI's refusal (422) of a prompt too long for it, whose words do not say "context": over
#: its max_input_tokens, or its answer's max_tokens with it over max_total_tokens (the
#: backticks and "inputs" as TGI 1.x and later write them, "input tokens" as older ones);
#: the limit it states is the context that refused it (a prompt of as many is taken)
_TGI_TOO_LONG = re.compile(r"`?inputs?`? (?:must have less than (\d+) tokens|tokens \+ `?max_new_tokens`? must be <= (\d+))")  # fmt: skip
#: OpenAI's wording of it, which llama-cpp-python's server (its n_ctx) and older vLLM
#: send too: "This model's maximum context length is 512 tokens. However, you requested ..."
_OPENAI_TOO_LONG = re.compile(r"maximum context length is (\d+) tokens")
#: Still answered once the retries are spent, the errors that say "ask again later".
_BUSY: dict[int, type[RateLimitedError]] = {
    429: RateLimitedError,
    503: EndpointOverloadedError,
    529: EndpointOverloadedError,  # Anthropic's "overloaded_error"
}
#: A 429's error ``code`` that says the account is out of credit (OpenAI's, for a plan's
#: quota or billing), not that it asks too fast: waiting does not mend it.
_QUOTA_SPENT = {"insufficient_quota"}


class OpenAIHTTPBackend(OpenAIEndpoint):
    """POSTs to ``{base_url}/chat/completions`` (``/completions`` for raw requests);
    energy is estimated per token, not metered. A response prefix cannot be
    sent through the OpenAI API, so prefilled requests are refused."""

    measured_locally: ClassVar[bool] = False
    prefills: ClassVar[bool] = False
    backoff_base_s: float = 0.5
    _streams = True  # False once the endpoint refused a streamed request (stream_options)

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
        # vLLM's and llama-server's fields, sent only where set: OpenAI's API refuses them
        body.update({k: v for k, v in (("top_k", sampling.top_k), ("min_p", sampling.min_p)) if v is not None})  # fmt: skip
        if request.repetition_penalty not in (None, 1.0):
            # the request's only, and not 1.0, which every endpoint does when it is left out
            # (the code styles ask it): OpenAI's API refuses the field, so the config's (1.1
            # in the shipped ones) would fail every request, and a client asking one gets a 400
            body["repetition_penalty"] = sampling.repetition_penalty
        if request.stop:
            body["stop"] = request.stop
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        live = None
        if request.on_text is not None and self._streams:  # its text given as it is generated
            live = LiveText(request.on_text, request.stop)
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        start = time.perf_counter()
        try:
            out, pieces, billed = self._post_with_retries(path, body, live, request.raw)
        except PromptError as e:
            if live is None or live.sent or "stream" not in str(e).lower() or isinstance(e, ContextLengthError):  # fmt: skip
                raise
            # an endpoint refusing the streamed request's own fields (an older server's
            # "stream_options: extra inputs are not permitted"): asked unstreamed, as
            # before streaming, its text given whole at the end
            log.warning("%s: the endpoint refused a streamed request (%s); its requests are asked unstreamed from now on", self.name, self._hide_key(str(e)))  # fmt: skip
            self._streams = False
            if cancelled():  # nobody waits for the answer: not asked again
                out, pieces, billed = cancelled_reply(request.raw), None, e.billed_tokens
            else:
                unstreamed = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}  # fmt: skip
                out, pieces, billed = self._post_with_retries(path, unstreamed, None, request.raw)
        latency = time.perf_counter() - start
        try:
            choice, text, finish_reason = answer_parts(out, request.raw)
        except NotACompletion as e:
            quoted = one_line(self._hide_key(str(out)))[:200]  # not the key cut in two
            shape = BackendError(
                f"{self.base_url}{path} answered model {self.name!r}'s request with an "
                f"unexpected response shape ({e}): {quoted}"
            )
            shape.billed_tokens = billed  # the failed attempts' before it
            raise shape from None
        tokens, unknown = usage_tokens(out, text)
        if unknown is not None and finish_reason == CANCELLED and "usage" not in out:
            # its stream closed before the usage chunk: expected, not the endpoint's fault
            log.info("%s: the answer was cancelled before its token usage came; its tokens are estimated from its prompt's and text's characters (its stream's pieces where more)", self.name)  # fmt: skip
        elif unknown is not None:  # a failed answer's tokens are billed too: said of it as well
            log.warning(
                "%s: the answer %s; its tokens are estimated from its prompt's and text's characters (its stream's pieces where more)",
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
                + (f": {one_line(str(said))[:200]}" if said else "")
                + "); the partial answer is not used"
            )
            # paid for all the same, as are the failed attempts' before it
            failed.billed_tokens = (tokens[0] + billed[0], tokens[1] + billed[1])
            raise failed
        return Completion(
            text=without_lone_surrogates(text),
            model=self.name,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            latency_s=latency,
            finish_reason=None if finish_reason is None else without_lone_surrogates(finish_reason),
            billed_before=billed,
            usage_known=unknown is None,
            pieces=pieces,
        )

    def _post_with_retries(
        self, path: str, body: dict[str, Any], live: LiveText | None = None, raw: bool = False
    ) -> tuple[Any, int | None, tuple[int, int]]:
        """The answer, asked again as the module says, with the pieces of text it was
        streamed in (None where it was not) and the tokens the failed attempts' error
        bodies said were billed; where every attempt failed, the error carries those
        tokens."""
        billed = [0, 0]
        try:
            out, pieces = self._attempts(path, body, billed, live, raw)
            return out, pieces, (billed[0], billed[1])
        except RouterLLMError as e:
            if any(billed):
                e.billed_tokens = (billed[0], billed[1])
            raise

    def _attempts(
        self, path: str, body: dict[str, Any], billed: list[int], live: LiveText | None, raw: bool
    ) -> tuple[Any, int | None]:
        attempts = self.config.max_retries + 1
        cancel = Cancellation()  # once the caller has gone, not asked again
        for attempt in range(attempts):
            last = attempt == attempts - 1
            deadline = time.monotonic() + self.config.timeout_s
            try:
                if live is not None:
                    req = self._http_request("POST", path, body, accept="text/event-stream")
                    timeout = self.config.timeout_s
                    return streamed_reply(req, timeout, live, raw, self.base_url + path, self.name)
                watched = cancel if cancel.active else None
                return self._request("POST", path, body, self.config.timeout_s, watched), None
            except Cancelled:  # its connection shut as its caller left: a cancelled answer
                return cancelled_reply(raw), None
            except urllib.error.HTTPError as e:
                if isinstance(e, BilledHTTPError):
                    billed[0] += e.billed[0]
                    billed[1] += e.billed[1]
                wait = retry_after_s(e.headers.get("Retry-After"))
                # a wait longer than a retry waits: asked again sooner, it is refused again
                too_long = wait is not None and wait > MAX_BACKOFF_S
                # a 429 read first: a quota spent (OpenAI's, which gives no Retry-After) is
                # no rate limit, and asked again it is refused again
                said = error_detail(e, deadline, self._hide_key) if e.code == 429 else None
                spent = said is not None and said.code in _QUOTA_SPENT
                if e.code in RETRY_STATUS and not last and not too_long and not spent:
                    if not self._backoff(attempt, cancel, f"HTTP {e.code}", wait):
                        return cancelled_reply(raw), None
                    continue
                param = None
                if 300 <= e.code < 400:  # its body is not read: it is not the answer
                    detail = (
                        f"a redirect to {one_line(str(e.headers.get('Location')))}, not followed"
                    )
                    if (moved := self._moved_to(e, path)) is not None:
                        detail += f"; set base_url to {moved}"
                else:
                    detail, param, _ = said or error_detail(e, deadline, self._hide_key)
                tgi = _TGI_TOO_LONG.search(detail) if e.code in REFUSED_STATUS else None
                if e.code in REFUSED_STATUS and ("context" in detail.lower() or tgi):
                    stated = tgi or _OPENAI_TOO_LONG.search(detail)
                    raise ContextLengthError(
                        f"model {self.name!r} rejected the prompt: {detail}",
                        context=self._stated_context(stated),
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
                    f"{self.name!r}: {detail}{self._advice(e.code, detail)}"
                )
                if too_long and e.code in RETRY_STATUS:
                    message += (
                        f"; it asks to wait {wait:.0f} s (Retry-After), longer than a retry "
                        f"waits ({MAX_BACKOFF_S:.0f} s): not retried"
                    )
                if spent:  # the account's to mend: no client's retry helps (the server's 502)
                    refused = EndpointRefusedError(
                        f"{message} ({said.code if said else ''}: the account's quota or "
                        f"billing, which no retry mends; not retried)"
                    )
                    refused.endpoint_wide = True  # the key's account: its other models too
                    raise refused from e
                # the caller may ask again later: not a failing backend
                if (busy := _BUSY.get(e.code)) is not None:
                    raise busy(message, wait) from e
                if e.code in (401, 403):  # the key's: every request is refused alike
                    refused = EndpointRefusedError(message)
                    refused.endpoint_wide = e.code == 401  # a 403 may be this model's access
                    raise refused from e
                raise BackendError(message) from e
            except (Malformed, Undecodable) as e:
                raise BackendError(
                    f"{self.base_url}{path} answered model {self.name!r}'s request, but {e}"
                ) from None
            # refused, reset, timeout, bad JSON, truncated or malformed HTTP response
            except (OSError, ValueError, http.client.HTTPException) as e:
                why = reason(e, self.config.timeout_s)
                last = last or lasting_fault(e) is not None  # asked again, it fails again
                if not last:
                    if not self._backoff(attempt, cancel, why):
                        return cancelled_reply(raw), None
                    continue
                # urllib's URLError: no connection made; NoAnswer: no answer began over
                # the one made (an answer cut short, or trickling, is not unreachable)
                unreachable = isinstance(e, urllib.error.URLError | NoAnswer)
                tries = attempt + 1
                message = f"cannot reach {self.base_url} for model {self.name!r} after {tries} attempt{'s' if tries > 1 else ''} ({why})"  # fmt: skip
                if not unreachable:
                    raise BackendError(message) from e
                down = EndpointUnreachableError(message)
                # no connection made: the server, so each of its models, is down
                down.endpoint_wide = isinstance(e, urllib.error.URLError)
                raise down from e
        raise AssertionError("unreachable")

    def _backoff(
        self, attempt: int, cancel: Cancellation, why: str, retry_after: float | None = None
    ) -> bool:
        """Wait before the next attempt: the server's Retry-After (its seconds, read by
        ``retry_after_s``) where it gives one, else exponential backoff; never more than
        MAX_BACKOFF_S (a longer Retry-After is not retried at all). False, at once,
        where the request is cancelled (``cancellable``) before or during the wait: nobody
        waits for its answer any more, so it is not asked again."""
        if cancel():
            log.info("%s: %s; not retried: the request was cancelled", self.name, self._hide_key(why))  # fmt: skip
            return False
        if retry_after is None:
            delay = min(self.backoff_base_s * (2 ** min(attempt, 16)), MAX_BACKOFF_S)
        else:
            delay = min(retry_after, MAX_BACKOFF_S)
        log.warning("%s: %s; retrying in %.1fs", self.name, self._hide_key(why), delay)
        if cancel.wait(delay):
            log.info("%s: the request was cancelled while it waited to be asked again; not retried", self.name)  # fmt: skip
            return False
        return True

    def _stated_context(self, stated: re.Match[str] | None) -> int | None:
        """The context a refusal states (TGI's ``_TGI_TOO_LONG``, OpenAI's
        ``_OPENAI_TOO_LONG``), where the endpoint's ``/models`` or ``/info`` gave none at
        the last availability check (llama-cpp-python's server lists none; a TGI behind a
        gateway that forwards only ``/v1``): else the model is held to its configured
        context, longer than the one that refused it, and no larger model is asked. Where
        the endpoint gave one, that one is said."""
        if stated is None or self.endpoint_context() is not None:
            return None
        return int(next(g for g in stated.groups() if g))
