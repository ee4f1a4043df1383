"""A request's body, read within its size and time limits, or the response that refuses
it; a refusal sent once the body is read and dropped (``Bodies``, which ``app._Service``
is); the client's leaving, seen as it leaves once the body is read (``Departure``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from routerllm.server.middleware import sends_body, waits_to_send
from routerllm.server.refusals import CLOSE, Refusals

log = logging.getLogger("routerllm.server.app")  # the server's log lines, as before this module

DRAINED_BYTES = 64 << 20
"""How far past the limit a body is still read (and dropped) before the refusal."""

BODY_TIMEOUT_S = 30.0
"""How long a client may take to send its request's body."""

POLL_S = 1.0
"""How often a request still arriving or waiting its turn looks whether the server
is stopping, and one generating whether its client has gone once the event loop's
close has cancelled its wait on that (``Departure``)."""


class Bodies(Refusals):
    """Reads a request's body; the refusals that the body's reading decides."""

    stopping: Callable[[], bool]

    async def read_body(self, request: Any, keep: bool = True) -> Any:
        """The body's bytes, or the response that refuses it: too large (a body a little
        over is read to its end and dropped, so that the client, still sending, reads
        the refusal), too slow, the server stopping, or the client gone. Without
        ``keep`` it is read and dropped (b""): a request refused anyway holds no memory."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.body_limit:
            waiting = waits_to_send(request)
            if waiting or int(declared) > self.body_limit + DRAINED_BYTES:
                return self.too_large(close=True)  # nothing read: the connection is spent
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BODY_TIMEOUT_S
        data, seen, more = bytearray(), 0, True
        while more:
            if self.stopping():
                return self.unavailable(close=True)
            wait = min(POLL_S, max(deadline - loop.time(), 0.0))
            try:  # receive() (not stream()) can be waited on again after a timeout
                message = await asyncio.wait_for(request.receive(), wait)
            except asyncio.TimeoutError:
                if loop.time() < deadline:
                    continue
                return self.refusal(
                    408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s",
                    "invalid_request_error", "request_timeout", close=True,
                )  # fmt: skip
            if message["type"] == "http.disconnect":
                log.info("client left while sending its request")
                return gone()
            chunk, more = message.get("body", b""), message.get("more_body", False)
            seen += len(chunk)
            if seen > self.body_limit + DRAINED_BYTES:
                return self.too_large(close=True)
            if keep and seen <= self.body_limit:
                data += chunk
        return self.too_large() if seen > self.body_limit else bytes(data)

    async def authorised_body(self, request: Any) -> Any:
        """The body's bytes, or the response that refuses the request (a wrong key too).
        The body is read first (see ``drained``): a refusal sent while the client still
        sends it is lost to a client that asked to close the connection (urllib does), as
        uvicorn then closes it on the bytes still coming."""
        if (refused := self.unauthorised(request)) is not None:
            return await self.drained(request, refused)
        if (refused := self.unreadable(request)) is not None:
            return await self.drained(request, refused)
        return await self.read_body(request)

    async def drained(self, request: Any, refusal: Any) -> Any:
        """``refusal`` (a wrong key's, an unknown path's), sent once the body is read and
        dropped: a client without the key makes the server keep none of it. A body too
        large is refused so too, the connection closed where it was not all read: a 413
        told a client without the key the server's limits, and to shrink a body refused
        anyway. A client that waits for ``100 Continue`` before it sends the body gets
        the refusal at once instead, and the connection is closed: it sends no body."""
        if waits_to_send(request):
            refusal.headers.update(CLOSE)
            return refusal
        drained = await self.read_body(request, keep=False)
        if isinstance(drained, bytes):
            return refusal
        if drained.status_code != 413:
            return drained  # too slow, the server stopping, the client gone
        if "connection" in drained.headers:  # the body was not all read
            refusal.headers.update(CLOSE)
        return refusal

    async def bodiless(self, request: Any, answer: Any) -> Any:
        """``answer`` to a request that takes no body (a GET): at once where it has none,
        else sent as ``drained`` sends a refusal, once the body is read and dropped (one
        over the 413 limit too: it is no prompt). Answered at once, it was lost to a
        client still sending the body and asking to close the connection (a reset)."""
        return await self.drained(request, answer) if sends_body(request) else answer


class Departure:
    """A request's client leaving, seen as it leaves: from the first ``waiter()`` to
    ``close()``, one task waits on the request's ``receive()`` for ``http.disconnect``,
    as Starlette's ``StreamingResponse`` listened beside its body. Nothing else may call
    ``receive()`` meanwhile (``is_disconnected()`` does). Once the event loop's close (a
    second Ctrl-C) has cancelled that task, ``gone()`` looks instead."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.listening: asyncio.Task[None] | None = None

    def waiter(self) -> asyncio.Future[None] | None:
        """Done once the client has gone, or the task is cancelled (see ``gone()``);
        None once it is."""
        if self.listening is None:
            self.listening = asyncio.ensure_future(_disconnect(self.request.receive))
        return None if self.listening.cancelled() else self.listening

    async def gone(self) -> bool:
        """Whether the client has gone: told by the task, else looked at."""
        if self.listening is None or self.listening.cancelled():
            return bool(await self.request.is_disconnected())
        return self.listening.done()

    def close(self) -> None:
        """The task ended (the answer sent, or not to be): none is left per request."""
        if self.listening is not None:
            self.listening.cancel()


async def _disconnect(receive: Callable[[], Awaitable[Any]]) -> None:
    """Until ``http.disconnect`` (the request's body was read: nothing else comes)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception as e:  # a server whose connection broke: gone too, as for Starlette
        log.debug("the client's connection failed: %s", e)


def gone() -> Any:
    from starlette.responses import Response

    return Response(status_code=499)  # nobody reads it: the client has gone
