"""RouterLLM as an OpenAI-compatible HTTP server (``routerllm serve``).

``create_app(system)`` builds the ASGI app around one ``RouterLLM``: model ``auto``
is routed, a configured model's name is sent to that model, and every answer is
measured and logged like any other request (tag ``server``). Requests are answered
one at a time, so that each one's CodeCarbon figures are its own (the tracker
measures the whole machine) and llama.cpp has the cores to itself; the others wait
their turn, and one whose client has gone by then is dropped unanswered. Once the
server is stopping, the request in progress is finished and logged; requests still
waiting or still arriving are refused (503).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations
# (``Request``, imported inside create_app) at run time.
import asyncio
import hmac
import logging
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from routerllm import __version__
from routerllm.exceptions import (
    ModelUnavailableError,
    PromptError,
    RequestLogError,
    RouterLLMError,
    missing_dependency,
)
from routerllm.server import protocol

if TYPE_CHECKING:
    from routerllm.system import RoutedResult, RouterLLM

log = logging.getLogger(__name__)

TAG = "server"
"""The tag of the requests the server answers in the request log (``report --tag``)."""

BODY_SLACK_BYTES = 1 << 20
"""Room in a request body for JSON and options beyond the prompt's own text."""

DRAINED_BYTES = 64 << 20
"""How far past the limit a body is still read (and dropped) before the refusal."""

BODY_TIMEOUT_S = 30.0
"""How long a client may take to send its request's body."""

POLL_S = 1.0
"""How often a body still arriving is checked against the server stopping."""


def create_app(system: "RouterLLM", api_key: str | None = None) -> Any:
    """The FastAPI app serving ``system``; with ``api_key``, every ``/v1`` and report
    request needs ``Authorization: Bearer <api_key>``."""
    try:
        import anyio.to_thread
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, Response, StreamingResponse
        from starlette.exceptions import HTTPException
    except ImportError as e:
        raise missing_dependency("fastapi", "server") from e

    app = FastAPI(
        title="RouterLLM", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.stopping = lambda: False  # set by server(): whether uvicorn is shutting down
    app.state.working = threading.Lock()  # held while a request generates (see serve())
    turn = asyncio.Lock()
    # a character outside the BMP is 4 bytes of UTF-8, or 12 as JSON's \uXXXX\uXXXX
    body_limit = 12 * system.config.limits.max_prompt_chars + BODY_SLACK_BYTES

    def refusal(status: int, message: str, kind: str, code: str | None = None) -> Any:
        return JSONResponse(protocol.error_body(message, kind, code), status_code=status)

    def failure(error: RouterLLMError) -> Any:
        status, kind, code = protocol.error_status(error)
        if status >= 500:
            log.warning("request failed: %s", error)
        return refusal(status, str(error), kind, code)

    def unauthorised(request: Request) -> Any:
        if api_key is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        sent = token.strip().encode("latin-1")  # the header's own bytes (Starlette decodes latin-1)
        if scheme.lower() == "bearer" and hmac.compare_digest(sent, api_key.encode()):
            return None
        return refusal(
            401, "missing or wrong API key: send Authorization: Bearer <key>",
            "invalid_request_error", "invalid_api_key",
        )  # fmt: skip

    def too_large() -> Any:
        return refusal(
            413, f"the request body is over {body_limit:,} bytes "
            f"(limits.max_prompt_chars: {system.config.limits.max_prompt_chars:,})",
            "invalid_request_error", "request_too_large",
        )  # fmt: skip

    def stopping() -> Any:
        return refusal(
            503, "the server is stopping; send the request again when it is back",
            "server_error", "server_stopping",
        )  # fmt: skip

    async def read_body(request: Request) -> Any:
        """The body's bytes, or the response that refuses it: too large (a body a little
        over is read to its end and dropped, so that the client, still sending, reads
        the refusal), too slow, the server stopping, or the client gone."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit + DRAINED_BYTES:
            return too_large()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BODY_TIMEOUT_S
        data, seen, more = bytearray(), 0, True
        while more:
            if app.state.stopping():
                return stopping()
            wait = min(POLL_S, max(deadline - loop.time(), 0.0))
            try:  # receive() (not stream()) can be waited on again after a timeout
                message = await asyncio.wait_for(request.receive(), wait)
            except asyncio.TimeoutError:
                if loop.time() < deadline:
                    continue
                return refusal(
                    408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s",
                    "invalid_request_error", "request_timeout",
                )  # fmt: skip
            if message["type"] == "http.disconnect":
                log.info("client left while sending its request")
                return Response(status_code=499)
            chunk, more = message.get("body", b""), message.get("more_body", False)
            seen += len(chunk)
            if seen > body_limit + DRAINED_BYTES:
                return too_large()
            if seen <= body_limit:
                data += chunk
        return too_large() if seen > body_limit else bytes(data)

    def check_model(name: str | None) -> None:
        names = [m.name for m in system.config.models]
        if name is not None and name not in names:
            raise protocol.unknown_model(name, names)

    def generate(call: protocol.Call) -> "tuple[RoutedResult, str]":
        try:
            with app.state.working:
                return system.generate(call.request, model=call.model, tag=TAG), ""
        except RequestLogError as e:
            if e.result is None:
                raise
            log.error("answered, but the request log could not record it: %s", e)
            return e.result, f"the request log could not record this answer: {e}"

    async def serve(request: Request, parse: Any) -> Any:
        if (refused := unauthorised(request)) is not None:
            return refused
        try:
            body = await read_body(request)
            if not isinstance(body, bytes):
                return body
            call = parse(protocol.parse_json(body))
            check_model(call.model)
            async with turn:
                if app.state.stopping():
                    return stopping()
                if await request.is_disconnected():
                    log.info("client left before its turn; request dropped unanswered")
                    return Response(status_code=499)
                result, warning = await anyio.to_thread.run_sync(generate, call)
        except RouterLLMError as e:
            return failure(e)
        except Exception as e:
            log.exception("unexpected error")
            return refusal(500, f"internal error ({type(e).__name__}: {e}); see the server's log", "server_error")  # fmt: skip
        created = int(time.time())
        if call.stream:
            return StreamingResponse(
                iter(protocol.events(call, result, created, warning)),
                media_type="text/event-stream",
            )
        return JSONResponse(protocol.answer(call, result, created, warning))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await serve(request, protocol.chat_call)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await serve(request, protocol.completion_call)

    async def available() -> list[str]:
        return list(await anyio.to_thread.run_sync(system.available_models))

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        if (refused := unauthorised(request)) is not None:
            return refused
        try:
            return protocol.model_list(await available())
        except RouterLLMError as e:
            return failure(e)

    @app.get("/v1/models/{name}")
    async def model(name: str, request: Request) -> Any:
        if (refused := unauthorised(request)) is not None:
            return refused
        try:
            check_model(None if name == protocol.AUTO else name)
            if name != protocol.AUTO and name not in await available():
                reason = system.manager.availability(name)
                raise ModelUnavailableError(f"model {name!r} cannot run here: {reason}")
        except RouterLLMError as e:
            return failure(e)
        return protocol.model_entry(name)

    @app.get("/routerllm/report")
    async def report(request: Request, since: str | None = None, tag: str | None = None) -> Any:
        """Totals read back from the request log, as ``routerllm report --json`` gives them."""
        if (refused := unauthorised(request)) is not None:
            return refused
        try:
            return await anyio.to_thread.run_sync(_report, system, since, tag)
        except RouterLLMError as e:
            return failure(e)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Any:  # unknown path or method
        return refusal(e.status_code, f"{request.method} {request.url.path}: {e.detail}", "invalid_request_error")  # fmt: skip

    return app


def _report(system: "RouterLLM", since: str | None, tag: str | None) -> dict[str, Any]:
    from routerllm.carbon.report import summarize
    from routerllm.carbon.request_log import RequestLog, utc_timestamp

    config = system.config
    for name, value in (("since", since), ("tag", tag)):
        if value is not None and not value.strip():
            raise PromptError(f"{name} is empty: give a value, or leave it out")
    if since:
        try:
            utc_timestamp(since)
        except RouterLLMError as e:  # the caller's mistake: a 400, not a server error
            raise PromptError(f"since: {e}") from None
    with RequestLog(config.log.path, read_only=True) as request_log:
        records = list(request_log.records(since=since, tag=tag))
    rep = summarize(records, config.models, config.carbon.country_iso_code)
    return {"log": config.log.path, **rep.as_dict()}


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: any free port); one clear error
    when the address cannot be used."""
    if not 0 <= port <= 65535:
        raise RouterLLMError(f"--port must be between 0 and 65535, got {port}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except socket.gaierror as e:
        raise RouterLLMError(f"cannot listen on {host}: unknown host ({e.strerror})") from None
    except OSError as e:
        raise RouterLLMError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def server(system: "RouterLLM", api_key: str | None = None) -> Any:
    """A uvicorn server for ``create_app(system, api_key)``; ``.run(sockets=[listen(...)])``
    serves until it is stopped."""
    try:
        import uvicorn
    except ImportError as e:
        raise missing_dependency("uvicorn", "server") from e
    import copy

    from uvicorn.config import LOGGING_CONFIG

    logging_config = copy.deepcopy(LOGGING_CONFIG)  # access lines to stderr, as all logs
    logging_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    app = create_app(system, api_key)
    srv = uvicorn.Server(uvicorn.Config(app, log_level="info", log_config=logging_config))
    app.state.stopping = lambda: srv.should_exit
    return srv


def serve(system: "RouterLLM", sock: socket.socket, api_key: str | None = None) -> None:
    """Serve until Ctrl-C (``KeyboardInterrupt``) or SIGTERM (returns), each after the
    request in progress is answered and logged. A second Ctrl-C stops at once, but
    still waits for the request in progress to be logged before returning (a third
    one gives that up)."""

    def stopped(signum: int, frame: object) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stopped)  # uvicorn raises it again after its shutdown
    srv = server(system, api_key)
    try:
        srv.run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        with srv.config.app.state.working:  # the caller closes the system next
            pass


class _Stopped(BaseException):
    """SIGTERM, raised again by uvicorn once it has shut down."""
