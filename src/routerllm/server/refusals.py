"""The server's refusals: the API's error answer to each request it does not answer, and
the checks of a request's key and body type (``Refusals``, which ``app._Service`` is)."""

from __future__ import annotations

import hmac
import json
import logging
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from routerllm.exceptions import (
    BudgetExceededError,
    RateLimitedError,
    RouterLLMError,
    csv_only_warning,
)
from routerllm.server import protocol
from routerllm.strict_json import finite

if TYPE_CHECKING:
    from routerllm.routed_result import RoutedResult
    from routerllm.server.metrics import ServerMetrics
    from routerllm.system import RouterLLM

log = logging.getLogger("routerllm.server.app")  # the server's log lines, as before this module

BUSY_RETRY_MAX_S = protocol.RETRY_AFTER_HONOURED_S
"""The longest ``Retry-After`` of a 503 ``server_busy``, one that every openai client waits
out: a place in line frees as a generation ends, seconds, not minutes."""

CLOSE = {"Connection": "close"}
"""For a refusal that leaves unread body bytes on the connection."""

NO_RETRY = {"x-should-retry": "false"}
"""For a refusal that the openai client's own retries would not mend (``protocol.retry_mends``):
it obeys this header (the official SDKs' own, not HTTP's)."""


class Refusals:
    """The responses that refuse a request (JSON error objects, as OpenAI's API sends them),
    and the checks that choose some: the API key, the body's type."""

    system: RouterLLM
    api_key: bytes | None
    max_waiting: int | None
    generated_s: float  # how long the last generation took (a busy 503's Retry-After)
    body_limit: int
    metrics: ServerMetrics  # counts the 429s and 503s (GET /metrics)

    def refusal(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None = None,
        close: bool = False,
        headers: dict[str, str] | None = None,
        param: str | None = None,
        result: RoutedResult | None = None,
        warning: str = "",
        logged_as: str = "",
    ) -> Any:
        """The API's error object; with ``result`` (what a refused request spent, logged
        under its id), RouterLLM's facts of it beside, as an answer has them, with its
        ``warning`` where the log could not take its row, as an answer's; with
        ``logged_as``, the id of a failed request's row (``routerllm.request_id``)."""
        from starlette.responses import JSONResponse

        self.metrics.refused(status, code)
        body = protocol.error_body(message, kind, code, param)
        if result is not None:  # its request_id finds its row in the log and the report
            body["routerllm"] = protocol.facts(result, warning)
        elif logged_as:  # a failed request's row: what it spent, finish reason "error"
            body["routerllm"] = {"request_id": logged_as}
        headers = {**(CLOSE if close else {}), **(headers or {})}
        # a figure that is not finite as null (Starlette refuses NaN), as an answer's
        return JSONResponse(finite(body), status_code=status, headers=headers or None)

    def failure(self, error: RouterLLMError, call: protocol.Call | None = None) -> Any:
        """The API's answer to ``error``; its ``param`` names the request field at fault
        where the error knows it (the prompt's field is the call's: chat ``messages``)."""
        status, kind, code = protocol.error_status(error)
        if status in (500, 502) or isinstance(error, RateLimitedError):  # the operator's to see
            log.warning("request failed: %s", error)
        wait = protocol.retry_after(error, datetime.now(timezone.utc))
        param = getattr(error, "param", None)
        if param == "prompt" and call is not None and call.kind == "chat":
            param = "messages"
        headers = {"Retry-After": str(wait)} if wait else {}
        if not protocol.retry_mends(error, status, wait):
            headers.update(NO_RETRY)
        # a request refused once routed was logged for its routing, under its own id; where
        # the log could not take that row, so said: the id then finds none (where only the
        # emissions CSV missed it, that: the id finds its row)
        spent, warning = None, ""
        if isinstance(error, BudgetExceededError):
            spent = error.result
            if error.log_error is not None and error.log_error.logged:
                warning = csv_only_warning(error.log_error, "refused request")
            elif error.log_error is not None:
                warning = f"the request log could not record this refused request: {error.log_error}"  # fmt: skip
        return self.refusal(status, str(error), kind, code, headers=headers, param=param, result=spent, warning=warning, logged_as=error.request_id)  # fmt: skip

    def failure_body(self, error: RouterLLMError, call: protocol.Call | None = None) -> dict[str, Any]:  # fmt: skip
        """The API's error object for ``error`` (``failure``'s body)."""
        return json.loads(bytes(self.failure(error, call).body))  # type: ignore[no-any-return]

    def internal_error(self, error: Exception) -> Any:
        """A 500 for what no check foresaw, logged with its traceback."""
        log.exception("unexpected error")
        return self.refusal(500, f"internal error ({type(error).__name__}: {error}); see the server's log", "server_error", headers=NO_RETRY)  # fmt: skip

    def unavailable(self, close: bool = False) -> Any:
        return self.refusal(
            503, "the server is stopping; send the request again when it is back",
            "server_error", "server_stopping", close,
        )  # fmt: skip

    def busy(self, waiting: int) -> Any:
        """The 503 for a request beyond ``--max-waiting``; its ``Retry-After`` is the last
        generation's time (a place in line frees as one ends), 1 to BUSY_RETRY_MAX_S s."""
        wait = min(BUSY_RETRY_MAX_S, max(1, math.ceil(self.generated_s)))
        return self.refusal(
            503, f"the server is busy: {waiting} request(s) already wait their turn "
            f"(--max-waiting {self.max_waiting}); send the request again later",
            "server_error", "server_busy", headers={"Retry-After": str(wait)},
        )  # fmt: skip

    def too_large(self, close: bool = False) -> Any:
        limit = self.system.config.limits.max_prompt_chars
        return self.refusal(
            413, f"the request body is over {self.body_limit:,} bytes (limits.max_prompt_chars: {limit:,})",
            "invalid_request_error", "request_too_large", close,
        )  # fmt: skip

    def unauthorised(self, request: Any) -> Any:
        """None when the request may go on, else the 401."""
        if self.api_key is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # the header's own bytes (Starlette decodes latin-1); only HTTP's spaces around
        # them go: str.strip() also took a UTF-8 key's last byte A0 or 85 ("à", "Å")
        sent = token.strip(" \t").encode("latin-1")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent, self.api_key):
            return None
        return self.refusal(  # RFC 9110 (15.5.2): a 401 names the scheme it takes
            401, "missing or wrong API key: send Authorization: Bearer <key>",
            "invalid_request_error", "invalid_api_key", headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip

    def unreadable(self, request: Any) -> Any:
        """None when the body is declared JSON (``application/json`` or ``application/*+json``) and
        not compressed, else the 415. A body of any other type, or of none, is refused
        even where it is JSON (as FastAPI's ``strict_content_type`` does): a browser page
        on any origin sends text, a form or an untyped body without a CORS preflight,
        and could make a server on this machine run its models."""
        declared = request.headers.get("content-type", "")
        media = declared.partition(";")[0].strip().lower()
        kind, _, subtype = media.partition("/")
        if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
            got = f"got {declared!r:.80}" if declared.strip() else "the request has no Content-Type"
            return self.refusal(
                415, f"Content-Type must be application/json, {got}: send the body as JSON "
                "with Content-Type: application/json",
                "invalid_request_error", "unsupported_media_type",
            )  # fmt: skip
        coding = request.headers.get("content-encoding", "").strip().lower()
        if coding not in ("", "identity"):
            return self.refusal(
                415, f"Content-Encoding {coding!r:.40} is not supported: send the body uncompressed",
                "invalid_request_error", "unsupported_media_type",
            )  # fmt: skip
        return None
