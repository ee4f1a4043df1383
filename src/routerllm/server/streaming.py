"""A streamed answer whose text comes as it is generated (``app._Service.streamed``):
what the generation's thread hands the event loop (``Live``), the server-sent
events made of it (``live_events``), and the response that sends them (``event_stream``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from routerllm.exceptions import RouterLLMError
from routerllm.server import protocol

if TYPE_CHECKING:
    from routerllm.routed_result import RoutedResult
    from routerllm.server.refusals import Refusals

log = logging.getLogger("routerllm.server.app")  # the server's log lines, as the app's


class Live:
    """What a streamed answer's generation (in the executor's thread) hands the event
    loop, in order: ``("head", model, request_id)``, then ``("text", piece)`` items."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: list[tuple[str, ...]] = []
        self.wake: asyncio.Future[None] | None = None

    def put(self, item: tuple[str, ...]) -> None:
        """From the generation's thread."""
        # a loop closed meanwhile (a second Ctrl-C) has nobody to send the text to
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._add, item)

    def _add(self, item: tuple[str, ...]) -> None:
        self.items.append(item)
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    def take(self) -> list[tuple[str, ...]]:
        items, self.items = self.items, []
        return items

    async def next(
        self, future: asyncio.Future[Any], timeout: float | None = None, *also: asyncio.Future[Any]
    ) -> None:
        """Until an item comes, ``future`` (or one of ``also``) is done, or ``timeout`` has
        passed."""
        if self.items:
            return
        self.wake = self.loop.create_future()  # a future, not a task: see generation_watch.watched
        try:
            await asyncio.wait({future, self.wake, *also}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            self.wake = None


async def live_events(
    service: Refusals,
    call: protocol.Call,
    future: asyncio.Future[tuple[RoutedResult, str]],
    live: Live,
    stop: threading.Event,
    created: int,
    waiting: Callable[[], Awaitable[None]],
) -> AsyncIterator[str]:
    """The events of an answer whose text comes as it is generated: each piece, then
    the finish reason with RouterLLM's facts, the usage when asked and ``[DONE]``; an
    error after the first piece ends the stream with an error event. ``waiting()`` lasts
    until more text comes or the generation ends, through the event loop's close (a
    second Ctrl-C: the answer is still sent whole), and sets ``stop`` where the client
    has gone: the stream ends there, and the generation stops between two tokens."""
    head: dict[str, Any] = {}
    first = True
    try:
        while True:
            done = future.done()  # its pieces were all handed over before it was done
            for item in live.take():
                if item[0] == "head":
                    head = protocol.chunk_head(call, item[2], item[1], created)
                else:
                    yield protocol.text_event(call, head, item[1], first)
                    first = False
            if done:
                break
            await waiting()
            if stop.is_set():
                return
        try:
            result, warning = future.result()
        except RouterLLMError as e:
            yield protocol.error_event(service.failure_body(e, call))
            return
        except Exception as e:  # a bug: still the API's error object
            log.exception("unexpected error")
            yield protocol.error_event(protocol.error_body(f"internal error ({type(e).__name__}: {e}); see the server's log", "server_error"))  # fmt: skip
            return
        for event in protocol.closing_events(call, head, result, warning):
            yield event
    finally:
        if not future.done():
            log.info("client left while its answer was streamed: its generation stops")
            stop.set()


def event_stream(
    events: Iterable[str] | AsyncIterable[str], ended: Callable[[], None] | None = None
) -> Any:
    """A response sending ``events`` (server-sent events) in the request's own task;
    ``ended()`` is called once it has sent them, or stopped sending."""
    if not isinstance(events, AsyncIterable):
        events = _each(events)
    response = _event_stream_type()(events, media_type="text/event-stream")
    response.ended = ended
    return response


async def _each(events: Iterable[str]) -> AsyncIterator[str]:
    for event in events:  # made already: no thread needed to take the next
        yield event


@functools.cache
def _event_stream_type() -> type:
    """Starlette's ``StreamingResponse`` sending its body as ASGI 2.4 servers have it sent:
    with no task group beside it listening for the client's disconnect. Under uvicorn
    (ASGI 2.3) it sent in such a group, which the event loop's close cancels as a whole (a
    second Ctrl-C): a stream generating was cut half-way, its client left with a
    truncated answer and its generation logged as cancelled. ``live_events`` waits on
    a client gone (``bodies.Departure``) as on the next piece instead."""
    from starlette.requests import ClientDisconnect
    from starlette.responses import StreamingResponse

    class EventStream(StreamingResponse):  # type: ignore[misc]
        ended: Callable[[], None] | None = None

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            try:
                await self.stream_response(send)
            except OSError:  # a server whose send raises on a closed connection
                raise ClientDisconnect() from None
            finally:
                if self.ended is not None:
                    self.ended()

    return EventStream
