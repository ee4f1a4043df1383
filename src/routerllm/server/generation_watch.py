"""A generation on the server's one thread, awaited to its end while its client is
watched: once the client has gone, the generation is told to stop between two tokens;
a second Ctrl-C (the event loop's close) does not cut it short, so that the answer is
still sent. ``app._Service`` awaits each answer through these, with its ``POLL_S``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from routerllm.server.bodies import Departure

if TYPE_CHECKING:
    from routerllm.server import protocol
    from routerllm.server.streaming import Live


async def finished(
    executor: ThreadPoolExecutor,
    generate: Callable[[protocol.Call, threading.Event], Any],
    call: protocol.Call,
    request: Any,
    stop: threading.Event,
    poll_s: float,
) -> Any:
    """``generate(call, stop)`` on the executor's thread, awaited to its end even when
    this task is cancelled (a second Ctrl-C), so that the answer is still sent; as
    ``watched`` waits."""
    future = asyncio.get_running_loop().run_in_executor(executor, generate, call, stop)
    departure = Departure(request)
    try:
        await watched(future, departure, stop, poll_s)
    finally:
        departure.close()
    return future.result()


async def watched(
    future: asyncio.Future[Any],
    departure: Departure,
    stop: threading.Event,
    poll_s: float,
    live: Live | None = None,
) -> None:
    """Until ``future`` (a generation's) is done, or ``live`` holds something, even when
    this task is cancelled (a second Ctrl-C: the answer in progress is still finished
    and sent). A future, not a task: the event loop's shutdown cancels every task, and
    would cancel it too. Once the client has gone, ``stop`` is set, and the generation
    stops between two tokens (no energy spent on an answer nobody reads): seen as it
    goes (``departure``), or every ``poll_s`` once the loop's close cancelled that wait."""
    while not future.done() and not (live is not None and live.items):
        try:
            waiter = None if stop.is_set() else departure.waiter()
            also = () if waiter is None else (waiter,)
            # asyncio.wait leaves the future running when this task is cancelled
            await (live.next(future, poll_s, *also) if live is not None else asyncio.wait({future, *also}, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED))  # fmt: skip
            if future.done() or (live is not None and live.items):
                return
            if not stop.is_set() and await departure.gone():
                stop.set()
        except asyncio.CancelledError:
            if future.cancelled():
                raise
