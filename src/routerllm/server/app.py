"""RouterLLM as an OpenAI-compatible HTTP server (``routerllm serve``).

``create_app(system)`` builds the ASGI app around one ``RouterLLM``: model ``auto``
is routed, a configured model's name is sent to that model, and every answer is
measured and logged like any other request (tag ``server``). Requests are answered
one at a time, so that each one's CodeCarbon figures are its own (the tracker
measures the whole machine) and llama.cpp has the cores to itself; the others wait
their turn, and one whose client has gone by then is dropped unanswered; one whose
client goes while its answer is generated stops between two tokens (finish reason
``cancelled``, logged for what it spent), and the turn passes on. Once the
server is stopping, the request in progress is finished, answered and logged;
requests still waiting or still arriving are refused (503).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations
# (``Request``, imported inside create_app) at run time.
import asyncio
import contextlib
import dataclasses
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from routerllm import __version__
from routerllm.backends.interrupts import CANCELLED, cancellable
from routerllm.exceptions import (
    ModelUnavailableError,
    PromptError,
    RequestLogError,
    RouterLLMError,
    csv_only_warning,
    missing_dependency,
)
from routerllm.log_repeats import RepeatedFault
from routerllm.server import protocol

# POLL_S is bodies.py's: set here, it changes how often a request waiting its turn or
# generating (through the event loop's close) looks, not one whose body is arriving
# (each call hands generation_watch.py this module's, read as it is made)
from routerllm.server.bodies import POLL_S, Bodies, Departure, gone
from routerllm.server.generation_watch import finished, watched
from routerllm.server.metrics import ServerMetrics, scraped
from routerllm.server.middleware import (
    BEGUN,
    Delivery,
    Expectations,
    Framing,
    LocalHosts,
    TidyPaths,
    taken,
    tidy,
)
from routerllm.server.options import cors_origins, key_bytes, waiting_cap
from routerllm.server.refusals import BUSY_RETRY_MAX_S, CLOSE, NO_RETRY
from routerllm.server.serving import listen, serve, server
from routerllm.server.streaming import Live, event_stream, live_events
from routerllm.strict_json import finite

if TYPE_CHECKING:
    from routerllm.routed_result import RoutedResult
    from routerllm.system import RouterLLM

# The options' checks (options.py), uvicorn's serving (serving.py) and the refusals
# (refusals.py) lived here once: still importable from here.
__all__ = [
    "BUSY_RETRY_MAX_S", "CLOSE", "NO_RETRY", "TAG", "cors_origins", "create_app", "listen",
    "serve", "server", "waiting_cap",
]  # fmt: skip

log = logging.getLogger(__name__)

TAG = "server"
"""The tag of the requests the server answers in the request log (``report --tag``)."""

BODY_SLACK_BYTES = 1 << 20
"""Room in a request body for JSON and options beyond the prompt's own text."""


class _Service(Bodies):
    """What the endpoints do, apart from the web framework: check the key, read the
    body, wait for the turn, generate, and turn every outcome into the API's answer."""

    def __init__(self, system: "RouterLLM", api_key: str | None, max_waiting: int | None) -> None:
        self.system = system
        self.api_key = key_bytes(api_key)
        self.max_waiting = waiting_cap(max_waiting)
        self.waiting = 0  # requests waiting for the turn (one event loop: no lock needed)
        self.in_line = 0  # those and the one holding it: what --max-waiting counts
        self.generated_s = 0.0  # how long the last generation took (a busy 503's Retry-After)
        self.stopping: Callable[[], bool] = lambda: False  # set by server()
        self.working = threading.Lock()  # held while a request generates (serve() waits)
        self.unsent = 0  # answers begun and not yet sent (Delivery): serve() holds a stop
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="routerllm-generate")
        self.turn = asyncio.Lock()
        # a character outside the BMP is 4 bytes of UTF-8, or 12 as JSON's \uXXXX\uXXXX
        self.body_limit = 12 * system.config.limits.max_prompt_chars + BODY_SLACK_BYTES
        self.metrics = ServerMetrics(system, self)  # GET /metrics: each row logged counts
        system.log.observers.append(self.metrics.logged)  # until the server stops: close()
        # a log that refuses every row (a full disk): said once, its repeats counted, its
        # end said at the next row it takes
        self.unlogged = RepeatedFault(log, "answered, but the request log could not record it: %s", "answers could not be logged", "the request log records answers again (%d answers could not be logged meanwhile: the closing line counts them all)")  # fmt: skip
        system.log.observers.append(self.unlogged.worked)
        # an answer in the log but not in its emissions CSV (the CSV's disk full): no row
        # lost (the next process that opens the log adds its CSV rows), said as such; over
        # at the next answer written to both (until 2026-12-07 said as one not logged)
        self.unmirrored = RepeatedFault(log, "answered and in the request log, but not in its emissions CSV: %s", "answers are in the request log but not in its emissions CSV", "the emissions CSV takes answers again (%d answers could not be added to it meanwhile: they are in the request log, and the next process that opens it for writing adds them)", logging.WARNING)  # fmt: skip

    def close(self) -> None:
        """Once the server has stopped: its generating thread ends, after the generation
        in progress (not waited on here; it was left waiting for work until the app was
        collected), and its metrics no longer count the log's rows (a system served
        again and again had each stopped server's counting every row it logged)."""
        self.executor.shutdown(wait=False)
        with contextlib.suppress(ValueError):  # closed already (both were added together)
            self.system.log.observers.remove(self.metrics.logged)
            self.system.log.observers.remove(self.unlogged.worked)

    # -- a request ------------------------------------------------------------
    async def take_turn(self, request: Any) -> Any:
        """None once this request holds the turn, else the response that ends it (the
        server stopping, the client gone while it waited, or too many waiting)."""
        # counted from arrival to the turn's end, not from turn.locked() and waiting: as the
        # turn passes on, those miss the one taking it, then count it twice, for a step or two
        if self.max_waiting is not None and self.in_line > self.max_waiting:
            return self.busy(self.in_line - 1)
        self.in_line += 1
        self.waiting += 1
        # one acquire for the whole wait: a wait_for per look went to the back of the line
        # each time it timed out, and answered requests in no order. The client's leaving
        # is waited on beside it (its place of --max-waiting free at once), the server's
        # stopping looked at every POLL_S
        acquiring = asyncio.ensure_future(self.turn.acquire())
        departure = Departure(request)
        try:
            while not acquiring.done():
                if self.stopping():
                    return self.leave_line(acquiring, self.unavailable())
                waiter = departure.waiter()
                also = () if waiter is None else (waiter,)
                await asyncio.wait({acquiring, *also}, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if not acquiring.done() and await departure.gone():
                    log.info("client left while waiting its turn; request dropped unanswered")
                    return self.leave_line(acquiring, gone())
            acquiring.result()  # raises if the loop's shutdown cancelled it
        except BaseException:  # cancelled (a second Ctrl-C): its place goes
            self.leave_line(acquiring, None)
            raise
        finally:
            self.waiting -= 1
            departure.close()  # the generation waits on its own (``watched``)
        try:
            if self.stopping():
                ended = self.unavailable()
            elif await request.is_disconnected():
                log.info("client left before its turn; request dropped unanswered")
                ended = gone()
            else:
                return None
        except BaseException:  # cancelled (a second Ctrl-C): the turn is not kept
            self.end_turn()
            raise
        self.end_turn()
        return ended

    def end_turn(self) -> None:
        """The turn passed on to the next in line."""
        self.in_line -= 1
        self.turn.release()

    def leave_line(self, acquiring: "asyncio.Future[Any]", ended: Any) -> Any:
        """``ended``, once ``acquiring`` no longer waits for the turn: cancelled (Lock.acquire
        then passes on a turn it was given meanwhile), or the turn released if it came."""
        if not acquiring.cancel() and not acquiring.cancelled():
            self.turn.release()
        self.in_line -= 1
        return ended

    def generate(self, call: protocol.Call, stop: threading.Event) -> "tuple[RoutedResult, str]":
        """The answer to ``call`` and a warning for it; a generation still running once
        ``stop`` is set (the client has gone) stops between two tokens."""
        start = time.monotonic()
        try:
            with self.working, cancellable(stop):
                result = self.system.generate(call.request, model=call.model, tag=TAG)
            self.unmirrored.worked()  # its row in the log and the CSV
            return result, ""
        except RequestLogError as e:
            if e.result is None:
                raise
            if e.logged:  # its row in the log: the CSV alone missed it
                self.unmirrored.failed(str(e))
                return e.result, csv_only_warning(e)
            self.unlogged.failed(str(e))
            return e.result, f"the request log could not record this answer: {e}"
        finally:
            self.generated_s = time.monotonic() - start

    async def answer(self, request: Any, parse: Callable[[object], protocol.Call]) -> Any:
        """A chat or completion request, from its body to the API's answer."""
        call, arrived = None, time.monotonic()
        try:
            body = await self.authorised_body(request)
            if not isinstance(body, bytes):
                return body
            call = parse(protocol.parse_json(body))
            self.check_model(call.model)
            if (ended := await self.take_turn(request)) is not None:
                return ended
            request.scope[BEGUN] = True  # counted until sent, by Delivery
            self.unsent += 1
            stop = threading.Event()  # set once the client has gone
            if call.stream:
                return await self.streamed(call, request, stop, arrived)
            try:
                result, warning = await finished(self.executor, self.generate, call, request, stop, POLL_S)  # fmt: skip
            finally:
                self.end_turn()
            if stop.is_set():
                how = "stopped" if result.finish_reason == CANCELLED else "finished"
                log.info("client left while its answer was generated: %s after %d token(s)", how, result.completion_tokens)  # fmt: skip
                return gone()
            return _answer(call, result, warning)  # here: a fault writing it is an API error too
        except RouterLLMError as e:
            return self.failure(e, call)
        except asyncio.CancelledError:  # a second Ctrl-C: stopping at once
            return self.unavailable(close=True)
        except Exception as e:
            return self.internal_error(e)

    async def streamed(self, call: protocol.Call, request: Any, stop: threading.Event, arrived: float) -> Any:  # fmt: skip
        """A streamed answer, its text sent as it is generated, once the turn is held.
        Until its first piece of text, it is answered as without streaming: an error is
        the API's error (its status), an answer that comes whole (from the cache, or
        checked by the cascade) its events at once. The turn passes on as the generation
        ends, whether or not the answer has been sent. Its first text's time since it
        ``arrived`` (``time.monotonic()``) is counted (``ServerMetrics.first_token``)."""
        loop = asyncio.get_running_loop()
        live = Live(loop)
        answering: list[str] = []  # the model whose text comes, until its first piece came

        def on_answer(model: str, request_id: str) -> None:  # before its first text
            answering[:] = [model]
            live.put(("head", model, request_id))

        def on_text(piece: str) -> None:
            if answering:
                self.metrics.first_token(answering.pop(), time.monotonic() - arrived)
            live.put(("text", piece))

        asked = dataclasses.replace(call.request, on_text=on_text, on_answer=on_answer)
        future = loop.run_in_executor(self.executor, self.generate, dataclasses.replace(call, request=asked), stop)  # fmt: skip
        future.add_done_callback(lambda _: self.end_turn())
        departure, streaming = Departure(request), False
        try:
            await watched(future, departure, stop, POLL_S, live)
            if stop.is_set():  # the client left before its first event
                await watched(future, departure, stop, POLL_S)
                result, _ = future.result()
                log.info("client left while its answer was generated: stopped after %d token(s)", result.completion_tokens)  # fmt: skip
                return gone()
            if not live.items:  # the answer ended before its first piece of text
                return _answer(call, *future.result())
            streaming = True
        finally:
            if not streaming:  # else the stream ends its wait on the client, once sent
                departure.close()

        async def waiting() -> None:
            # between two pieces, as within watched: pieces that came meanwhile are
            # taken at once, without a wait
            if await departure.gone():
                stop.set()
            else:
                await watched(future, departure, stop, POLL_S, live)

        events = live_events(self, call, future, live, stop, int(time.time()), waiting)
        return event_stream(events, departure.close)

    def check_model(self, name: str | None) -> None:
        names = [m.name for m in self.system.config.models]
        if name is not None and name not in names:
            raise protocol.unknown_model(name, names)

    def model(self, name: str) -> dict[str, Any]:
        """``GET /v1/models/{name}``; a trailing "/" goes, as from every path (TidyPaths),
        where the name is no configured model's with it."""
        names = [protocol.AUTO, *(m.name for m in self.system.config.models)]
        name = name if name in names else name.rstrip("/") or name
        self.check_model(None if name == protocol.AUTO else name)
        if name != protocol.AUTO and name not in self.system.available_models():
            reason = self.system.manager.availability(name)
            raise ModelUnavailableError(f"model {name!r} is not available here: {reason}")
        return protocol.model_entry(name)

    async def feedback(self, request: Any) -> Any:
        """``POST /routerllm/feedback``: a score for a routed answer, from any thread at
        any time (it does not wait for the turn: it runs no model)."""
        import anyio.to_thread

        try:
            body = await self.authorised_body(request)
            if not isinstance(body, bytes):
                return body
            request_id, score = protocol.feedback_call(protocol.parse_json(body))
            await anyio.to_thread.run_sync(lambda: self.system.feedback(request_id, score))
        except RouterLLMError as e:
            return self.failure(e)
        except Exception as e:
            return self.internal_error(e)
        return {"ok": True}

    def report(self, since: str | None, tag: str | None) -> dict[str, Any]:
        """Totals read back from the request log, as ``routerllm report --json`` gives them."""
        from routerllm.carbon.log_rows import utc_timestamp
        from routerllm.carbon.report import logged_report

        config = self.system.config
        for name, value in (("since", since), ("tag", tag)):
            if value is not None and not value.strip():
                raise PromptError(f"{name} is empty: give a value, or leave it out", name)
        if since:
            # A URL's unencoded "+" of an offset (...T08:30+05:00) arrives as a space.
            since = _OFFSET_AS_SPACE.sub(r"\1+\2", since.strip())
            try:
                utc_timestamp(since)
            except RouterLLMError as e:  # the caller's mistake: a 400, not a server error
                raise PromptError(f"since: {e}", "since") from None
        path = self.system.log.db_path  # the log this server writes, not always log.path
        rep = logged_report(config, since, tag, path)
        return {"log": str(path), **rep.as_dict()}


#: A date and time, then a space and an offset (HH, HH:MM or HHMM): the offset's "+".
_OFFSET_AS_SPACE = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?) (\d{2}(?::?\d{2})?)$")  # fmt: skip


def _answer(call: protocol.Call, result: "RoutedResult", warning: str) -> Any:
    created = int(time.time())
    if call.stream:  # its events are strict JSON too (``protocol.events``)
        return event_stream(protocol.events(call, result, created, warning))
    return _json(protocol.answer(call, result, created, warning))


def _json(body: Any) -> Any:
    """``body`` as a JSON response, a figure that is not finite as null: Starlette's
    ``JSONResponse`` refuses NaN (a 500 for an answer already generated)."""
    from starlette.responses import JSONResponse

    return JSONResponse(finite(body))


def create_app(
    system: "RouterLLM",
    api_key: str | None = None,
    cors: Sequence[str] | None = (),
    max_waiting: int | None = None,
    loopback: bool = True,
) -> Any:
    """The FastAPI app serving ``system``; with ``api_key``, every ``/v1``, report,
    feedback and metrics request needs ``Authorization: Bearer <api_key>``. A browser
    page from one of the ``cors`` origins (``*``: any) may call it (CORS); by default none may. With
    ``max_waiting``, a request arriving while that many others already wait their turn is
    refused at once (503, ``server_busy``); by default none is. ``loopback``: it listens
    on this machine's loopback address alone (127.0.0.1, ::1), where, without a key, a
    ``Host`` that is a name other than localhost is refused (``LocalHosts``); a server
    listening on the network without a key is open to it as its owner chose."""
    from routerllm.system import open_system

    open_system(system, "create_app")  # a config, a closed system: before any import
    try:
        import anyio.to_thread
        from fastapi import FastAPI, Request
        from starlette.exceptions import HTTPException
        from starlette.middleware.cors import CORSMiddleware
        from starlette.responses import JSONResponse
    except ImportError as e:
        raise missing_dependency("fastapi", "server", e) from e

    origins = cors_origins(cors)
    service = _Service(system, api_key, max_waiting)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        service.close()  # under an ASGI server that runs the lifespan (server()'s Server runs none)

    app = FastAPI(
        title="RouterLLM", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
        redirect_slashes=False,  # TidyPaths serves those paths instead
        lifespan=lifespan,
    )  # fmt: skip
    app.state.service = service
    app.add_middleware(Delivery, service=service)  # the innermost: the endpoint's own scope
    app.add_middleware(TidyPaths, router=app.router)
    app.add_middleware(Expectations, service=service)
    if origins:  # the key travels in Authorization, not in cookies: no credentials
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["*"],  # the openai SDK's own x-stainless-* headers too
            expose_headers=["Retry-After"],
            max_age=600,
        )
    if service.api_key is None and loopback:  # a page on another site has no key: it needs none
        app.add_middleware(LocalHosts, service=service)
    app.add_middleware(Framing, service=service)  # the outermost: before any other looks

    async def in_thread(request: Request, work: Callable[[], Any]) -> Any:
        if (answer := service.unauthorised(request)) is None:
            try:
                answer = _json(await anyio.to_thread.run_sync(work))
            except RouterLLMError as e:
                answer = service.failure(e)
            except Exception as e:  # a bug: still an OpenAI error object, not a plain-text 500
                answer = service.internal_error(e)
        return await service.bodiless(request, answer)

    def get(path: str) -> Any:
        """A GET endpoint, which answers HEAD as it answers GET (RFC 9110 wants it of a
        general-purpose server): the same status and headers, and no body (uvicorn sends
        none). FastAPI, unlike Starlette, adds no HEAD to a GET route by itself."""
        return app.api_route(path, methods=["GET", "HEAD"])

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await service.answer(request, protocol.chat_call)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await service.answer(request, protocol.completion_call)

    @get("/v1/models")
    async def models(request: Request) -> Any:
        return await in_thread(request, lambda: protocol.model_list(system.available_models()))

    @get("/v1/models/{name:path}")  # a hosted model's name may hold "/" (org/model)
    async def model(name: str, request: Request) -> Any:
        return await in_thread(request, lambda: service.model(name))

    @app.post("/routerllm/feedback")
    async def feedback(request: Request) -> Any:
        return await service.feedback(request)

    @get("/routerllm/report")
    async def report(request: Request, since: str | None = None, tag: str | None = None) -> Any:
        return await in_thread(request, lambda: service.report(since, tag))

    @get("/metrics")  # Prometheus's text format, behind the key as the rest (bearer_token)
    async def metrics(request: Request) -> Any:
        return await scraped(service, request)

    @get("/health")
    async def health(request: Request) -> Any:
        return await service.bodiless(request, JSONResponse({"status": "ok"}))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Any:  # unknown path or method
        method, path = request.method, request.url.path
        message = f"{method} {path}: {e.detail}"
        v1 = f"/v1{tidy(path)}"
        if e.status_code == 404 and taken(app.routes, method, v1):  # a base_url without /v1
            message += f"; the API is under /v1: {method} {v1} (an OpenAI client's base_url ends in /v1)"  # fmt: skip
        headers = dict(e.headers or {})  # a 405's Allow: HTTP requires it
        if allowed := headers.get("Allow"):  # Starlette's, from a set: in no fixed order
            headers["Allow"] = ", ".join(sorted(m.strip() for m in allowed.split(",")))
            message += f"; {path} takes {headers['Allow']}"
        refusal = service.refusal(e.status_code, message, "invalid_request_error", headers=headers)
        return await service.drained(request, refusal)  # as a 401 is

    return app
