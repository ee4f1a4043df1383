"""HTTP for the OpenAI-compatible backend, through the standard library: one exchange
read whole within its time limit, or as it comes (a stream, each line within the limit
of the one before), and what went wrong said plainly on one line.

Redirects are not followed (a POST would become a GET, and the API key go to another
host); its connection is watched (http_watch.py). A body is read at most to a cap,
decoded as it comes (``ContentDecoder``)."""

from __future__ import annotations

import codecs
import contextlib
import email.utils
import http.client
import json
import math
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import NamedTuple

from routerllm.backends.content_encoding import ContentDecoder, Undecodable
from routerllm.backends.http_watch import _opener, _Watch
from routerllm.backends.quoted_text import CONTROL_CHARACTERS as CONTROL_CHARACTERS
from routerllm.backends.quoted_text import one_line as one_line

MAX_BACKOFF_S = 30.0  # the longest wait between two attempts, Retry-After included
#: The longest Retry-After taken as said (a day: a daily quota's); a longer or endless one
#: is read as this, so that the wait passed on to a client stays a number it can use.
MAX_RETRY_AFTER_S = 86_400.0
MAX_RESPONSE_BYTES = 32 * 2**20
MAX_ERROR_BYTES = 2**20  # of an error answer, quoted in 300 characters at most
#: A line's end in a server-sent event stream: CRLF, LF or CR.
_LINE_END = re.compile("\r\n|\r|\n")


class Malformed(Exception):
    """The server answered, but not with what the API defines: not asked again."""


class CutShort(http.client.IncompleteRead):
    """The connection closed before the announced length: ``came`` bytes of it came (its
    ``partial`` is left empty: decoded, those bytes are others, and not needed)."""

    def __init__(self, came: int, expected: int) -> None:
        super().__init__(b"", expected)
        self.came = came


class NoAnswer(OSError):
    """No answer began over the connection made: nothing within the time limit (a wedged
    server), or the connection closed or reset before a whole status line came, or what
    came is no HTTP (a crashed server, a proxy whose upstream is gone, a TLS port). The
    endpoint is as unreachable as one refusing the connection; its cause says why."""


class Unfinished(http.client.HTTPException):
    """A stream that ended (the connection closed) before the end its format marks."""


class Cancelled(Exception):
    """An exchange closed because its caller cancelled it (``exchange``'s and
    ``streamed_exchange``'s ``cancel``): no fault of the server's, and not to be asked
    again."""


def exchange(
    req: urllib.request.Request, timeout: float, cancel: Callable[[], bool] | None = None
) -> tuple[bytes, http.client.HTTPMessage]:
    """The body of the answer to ``req`` (decoded) and its headers, read whole within
    ``timeout``; an HTTP error status raised as urllib's ``HTTPError``. The proxies
    the environment names (``http_proxy``, ``https_proxy``, ``no_proxy``) are read
    at each exchange, as curl reads them. Once ``cancel`` (where given) says so, the
    connection is shut at once, whatever it waits on, and ``Cancelled`` raised."""
    with _Watch(timeout, cancel) as watch:
        with _opened(_opener(watch), req, timeout, watch) as resp:
            try:
                body = _body(resp, time.monotonic() + timeout, timeout)
            # a compressed body that ends at the connection's close, cut: its data unfinished
            except (OSError, http.client.HTTPException, Undecodable) as e:
                if watch.cancelled:
                    raise Cancelled from e
                if watch.fired:  # what came ended where it was cut: no whole answer
                    raise TimeoutError(f"no whole answer within {timeout:g} s") from e
                raise
        if watch.cancelled:  # what came ended where it was cut (its end the close's)
            raise Cancelled
        if watch.fired:  # headers cut there, and the body with them
            raise TimeoutError(f"no whole answer within {timeout:g} s")
        return body, resp.headers


@contextlib.contextmanager
def streamed_exchange(
    req: urllib.request.Request, timeout: float, cancel: Callable[[], bool] | None = None
) -> Iterator[Stream]:
    """The answer to ``req`` as it comes (``Stream``): its status line and headers within
    ``timeout``, then each line of its body within ``timeout`` of the one before; an
    HTTP error status raised as urllib's ``HTTPError``. Proxies as ``exchange``'s. Once
    ``cancel`` (where given) says so, the connection is shut at once, whatever it waits
    on (a connection still being made among them), and ``Cancelled`` raised."""
    with _Watch(timeout, cancel) as watch, _opened(_opener(watch), req, timeout, watch) as resp:
        if watch.fired:
            raise TimeoutError(f"no whole answer within {timeout:g} s")
        watch.extend(timeout)
        yield Stream(resp, watch, timeout)


def _opened(
    opener: urllib.request.OpenerDirector,
    req: urllib.request.Request,
    timeout: float,
    watch: _Watch,
) -> http.client.HTTPResponse:
    """The answer to ``req``, its status line and headers read within ``watch``'s limit;
    ``Cancelled`` where the watch's ``cancel`` ended it first."""
    try:
        opened: http.client.HTTPResponse = opener.open(req, timeout=timeout)
    except (OSError, http.client.HTTPException) as e:
        if isinstance(e, urllib.error.HTTPError) and watch.ended:
            e.close()  # its status came, its headers cut: not read
        if watch.cancelled:
            raise Cancelled from e
        if isinstance(e, urllib.error.HTTPError):
            if watch.fired:  # what came ended where it was cut: no whole answer
                raise TimeoutError(f"no whole answer within {timeout:g} s") from e
            raise
        # no connection made or no status line but 1xx by the limit: as from a server
        # that sends nothing
        if watch.fired:
            raise NoAnswer("timed out") from TimeoutError("timed out")
        # urllib's URLError (an OSError) goes to the caller as it is: no connection made
        # (its reason says why); any other was raised reading the status line, over a
        # connection made: no answer began
        if isinstance(e, urllib.error.URLError):
            raise
        raise NoAnswer(str(e)) from e
    if watch.cancelled:  # its headers cut there
        opened.close()
        raise Cancelled
    return opened


def _too_big(decoder: ContentDecoder) -> Malformed:
    decoded = f" decoded ({decoder.coding})" if decoder.over and decoder.coding else ""
    return Malformed(f"its answer is over {MAX_RESPONSE_BYTES // 2**20} MiB{decoded}")


def _body(resp: http.client.HTTPResponse, deadline: float, timeout: float) -> bytes:
    """``resp``'s body, decoded, read whole by ``deadline``."""
    decoder = ContentDecoder(resp.headers["Content-Encoding"], MAX_RESPONSE_BYTES)
    chunks, came = [], 0
    while chunk := resp.read1(65536):
        came += len(chunk)
        chunks.append(decoder.feed(chunk))
        # the sent bytes capped too: empty gzip members one after another decode to nothing
        if decoder.over or came > MAX_RESPONSE_BYTES:
            raise _too_big(decoder)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no whole answer within {timeout:g} s")
    if resp.length:  # the connection closed before the announced length
        raise CutShort(came, resp.length)
    decoder.end()
    return b"".join(chunks)


class Stream:
    """An answer read as it comes (``streamed_exchange``'s): its body's lines, each
    within the time limit of the one before (a server-sent event stream's), or its
    whole body (an answer that is no stream)."""

    def __init__(self, resp: http.client.HTTPResponse, watch: _Watch, timeout: float) -> None:
        self.headers = resp.headers
        self._resp, self._watch, self._timeout = resp, watch, timeout

    @property
    def events(self) -> bool:
        """Whether the answer is a server-sent event stream."""
        kind = self.headers.get_content_type()
        return kind == "text/event-stream"

    def whole(self) -> bytes:
        """The body, decoded, read whole within the time limit from now."""
        self._watch.extend(self._timeout)
        try:
            body = _body(self._resp, time.monotonic() + self._timeout, self._timeout)
        except (OSError, http.client.HTTPException, Undecodable) as e:
            if self._watch.cancelled:
                raise Cancelled from e
            if self._watch.fired:
                raise TimeoutError(f"no whole answer within {self._timeout:g} s") from e
            raise
        if self._watch.cancelled:  # what came ended where it was cut
            raise Cancelled
        return body

    def lines(self) -> Iterator[str]:
        """The body's lines (UTF-8, a byte order mark opening it passed over; without their
        ending: ``\r\n``, ``\n`` or ``\r``, as the event stream format allows), each
        within the time limit of the one before (``Stalled`` past it), MAX_RESPONSE_BYTES
        in all at most; the end of a body not ended by a line ending is not a line."""
        decoder = ContentDecoder(self.headers["Content-Encoding"], MAX_RESPONSE_BYTES)
        # utf-8-sig: one byte order mark opening the stream is passed over, as the event
        # stream format says (read as text, it would make the first event's field no "data")
        text = codecs.getincrementaldecoder("utf-8-sig")()
        came, pending = 0, []
        try:
            while chunk := self._resp.read1(65536):
                came += len(chunk)
                data = decoder.feed(chunk)
                if decoder.over or came > MAX_RESPONSE_BYTES:
                    raise _too_big(decoder)
                try:
                    new = text.decode(data)
                except UnicodeDecodeError as e:
                    raise Malformed(f"its stream is not UTF-8 ({e.reason})") from None
                pending.append(new)
                if "\n" not in new and "\r" not in new:  # joined once a line ends: no O(n²)
                    continue
                text_so_far = "".join(pending)
                # a last CR may be a CRLF's first half, the LF in the next read: kept
                held = 1 if text_so_far.endswith("\r") else 0
                *lines, rest = _LINE_END.split(text_so_far[: len(text_so_far) - held])
                pending = [rest + "\r" * held]
                self._watch.extend(self._timeout)
                yield from lines
            if self._resp.length:  # the connection closed before the announced length
                raise CutShort(came, self._resp.length)
            decoder.end()
            yield from _LINE_END.split("".join(pending))[:-1]  # a line a CR kept ended
        except (OSError, http.client.HTTPException, Undecodable) as e:
            if self._watch.cancelled:
                raise Cancelled from e
            # the socket's own timeout, as long as the watch's: first where the watch's
            # thread was late (a busy machine), the same stall
            if self._watch.fired or isinstance(e, TimeoutError):
                raise Stalled(self._timeout) from e
            raise
        if self._watch.cancelled:  # the socket shut reads as the body's end
            raise Cancelled
        if self._watch.fired:  # the socket shut at the limit reads as the body's end
            raise Stalled(self._timeout)


class Stalled(TimeoutError):
    """Nothing more of a stream came within the time limit after its last line."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"nothing more of the stream within {timeout:g} s")
        self.timeout = timeout


def retry_after_s(retry_after: str | None) -> float | None:
    """A Retry-After header's seconds (or its HTTP date's, from now), within [0,
    MAX_RETRY_AFTER_S]; None where it gives neither. Not capped at MAX_BACKOFF_S: a
    longer wait is not waited out by a retry, and is passed on to the caller as said."""
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
    return min(max(delay, 0.0), MAX_RETRY_AFTER_S) if math.isfinite(delay) else MAX_RETRY_AFTER_S


#: OpenSSL's verify codes for a certificate chain that ends at no trusted authority:
#: self-signed (18), a self-signed one in its chain (19), its issuer not found (20, 2).
_UNTRUSTED = {2, 18, 19, 20}
_OTHER_HOST = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH: not base_url's host
#: OpenSSL's reasons for a TLS handshake answered by a server that speaks plain HTTP.
_PLAIN_HTTP_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}


def lasting_fault(e: BaseException) -> str | None:
    """What to change in the config for a connection error that asking again would only
    repeat (a host name that does not exist, ``https://`` to a plain HTTP server); None
    for any other error."""
    cause = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(cause, ssl.SSLError) and cause.reason in _PLAIN_HTTP_TLS:
        return "is the server plain HTTP? then base_url starts with http://"
    # a self-signed or private authority's certificate (a team's own vLLM box); OpenSSL
    # reads SSL_CERT_FILE as each connection's context is made
    if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_code in _UNTRUSTED:
        return (
            "the server's TLS certificate is not trusted here: put the certificate of the "
            "authority that signed it (or its own, self-signed) in a file that SSL_CERT_FILE names"
        )
    if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_code in _OTHER_HOST:
        return "the server's TLS certificate is for another host: give base_url the host name it is for"  # fmt: skip
    if isinstance(cause, ssl.SSLCertVerificationError):  # expired, revoked, ...: the server's
        return "the server's TLS certificate must be replaced"
    # EAI_AGAIN (a DNS server not answering) passes: that one can be asked again
    if isinstance(cause, socket.gaierror) and cause.errno in (socket.EAI_NONAME, socket.EAI_NODATA):  # fmt: skip
        return "host name not found: check base_url's host"
    return None


def reason(e: BaseException, timeout: float, setting: str | None = "timeout_s") -> str:
    """What went wrong with an attempt, said plainly (``timeout``: its time limit, the
    config ``setting`` that gave it where one did), with what to change in the config
    where asking again would not help (``lasting_fault``)."""
    why = _reason(e, timeout, setting)
    advice = lasting_fault(e)
    return f"{why}; {advice}" if advice else why


def _reason(e: BaseException, timeout: float, setting: str | None) -> str:
    if isinstance(e, NoAnswer) and e.__cause__ is not None:
        e = e.__cause__
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        if not isinstance(e.reason, BaseException):
            return one_line(str(e.reason))
        e = e.reason  # a connection's error (refused, a timeout, a name not found)
    if isinstance(e, Stalled):
        return f"nothing more of the stream within {f'{setting}, ' if setting else ''}{e.timeout:g} s"  # fmt: skip
    if isinstance(e, TimeoutError) and not str(e).startswith("no whole answer"):
        return f"no answer within {f'{setting}, ' if setting else ''}{timeout:g} s"
    if isinstance(e, http.client.IncompleteRead):
        came = e.came if isinstance(e, CutShort) else len(e.partial)
        whole = f" of {came + e.expected}" if e.expected is not None else ""
        return f"the connection closed mid-answer: {came}{whole} bytes came"
    if type(e) is http.client.BadStatusLine:  # RemoteDisconnected says what it is
        line = e.args[0] if e.args else ""
        return f"not an HTTP answer (it began {one_line(repr(line)[:60])})"
    return one_line(str(e)) or type(e).__name__


class ErrorDetail(NamedTuple):
    """What an error answer says: its message on one line, the request field it names
    (the OpenAI error object's ``param``) and its ``code`` (``insufficient_quota``), each
    None where it gives none."""

    message: str
    param: str | None = None
    code: str | None = None


def error_detail(
    e: urllib.error.HTTPError, deadline: float, hide_key: Callable[[str], str]
) -> ErrorDetail:
    """The error answer's message, its ``param`` and ``code`` (``ErrorDetail``). Its body is read until
    ``deadline`` (the attempt's time limit), at most MAX_ERROR_BYTES of it: an error
    page trickling in does not hold the request beyond it; what came is quoted, the API
    key it may echo hidden by ``hide_key``."""
    chunks, came = [], 0
    try:
        decoder = ContentDecoder(e.headers.get("Content-Encoding"), MAX_ERROR_BYTES)
    except Undecodable:
        e.close()
        coding = one_line(str(e.headers.get("Content-Encoding")))[:60]
        return ErrorDetail(f"an error page compressed as {coding!r}, not decoded")
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
        named = one_line(param)[:100] if isinstance(param, str) else ""
        code = err.get("code") if isinstance(err, dict) else None
        code = one_line(code)[:100] if isinstance(code, str) else None
        return ErrorDetail(one_line(str(msg or err))[:300], named or None, code)
    except (ValueError, RecursionError):
        return ErrorDetail(one_line(raw)[:300] or one_line(str(e.reason)))
