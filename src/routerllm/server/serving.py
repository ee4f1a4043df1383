"""Serving the app with uvicorn: ``listen`` opens the socket, ``server`` builds the
uvicorn server, ``serve`` runs it until Ctrl-C, SIGTERM or SIGHUP, each stop waiting for the
request in progress to be answered and logged (``routerllm serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from routerllm.checks import MAX_PORT, is_integer
from routerllm.exceptions import RouterLLMError, missing_dependency
from routerllm.server.listener import CappedListener, client_cap, connection_cap, raise_fd_limit
from routerllm.server.options import per_client_connections

if TYPE_CHECKING:
    from routerllm.system import RouterLLM

log = logging.getLogger(__name__)

WAITING = "waiting for the request in progress to be answered and logged"

HEADERS_TIMEOUT_S = 30.0
"""How long a connection may take to send a request's headers, from its opening or its
last answer (a body has ``bodies.BODY_TIMEOUT_S`` more)."""

WRITE_TIMEOUT_S = 30.0
"""How long a connection's client may take none of its answer's bytes waiting to be sent
before the connection is closed (as long as the 408s give a request to come). What it
takes is seen only as its kernel reopens its receive window, about half its buffer at a
time (README, "A client that stops reading")."""


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: any free port); one clear error
    when the address cannot be used. Every IPv6 address (``::``) takes IPv4 clients
    too where the system can, as uvicorn's own ``--host ::`` does on Linux."""
    if not is_integer(port) or not 0 <= port <= MAX_PORT:  # text: a bare TypeError
        raise RouterLLMError(f"port must be a whole number from 0 to {MAX_PORT}, got {port!r:.40}")
    try:
        family, *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        every = family == socket.AF_INET6 and address[0] == "::"
        dualstack = every and socket.has_dualstack_ipv6()
        return socket.create_server((host, port), family=family, dualstack_ipv6=dualstack)
    except socket.gaierror as e:
        raise RouterLLMError(f"cannot listen on {host}: unknown host ({e.strerror})") from None
    except OSError as e:
        raise RouterLLMError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def server(
    system: RouterLLM,
    api_key: str | None = None,
    cors: Sequence[str] | None = (),
    max_waiting: int | None = None,
    loopback: bool = True,
) -> Any:
    """A uvicorn server for ``create_app(system, api_key, cors, max_waiting, loopback)``;
    ``.run(sockets=[listen(...)])`` serves until it is stopped."""
    try:
        import uvicorn
        from uvicorn.config import LOGGING_CONFIG
    except ImportError as e:
        raise missing_dependency("uvicorn", "server", e) from e
    from routerllm.server.app import create_app

    logging_config = copy.deepcopy(LOGGING_CONFIG)  # access lines to stderr, as all logs
    logging_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    # coloured where stderr, which they go to, is a terminal: uvicorn asks stdout, so
    # `serve 2>server.log` wrote escape codes in the file, and a closed stdout failed
    colours = sys.stderr is not None and sys.stderr.isatty()
    app = create_app(system, api_key, cors, max_waiting, loopback)
    config = uvicorn.Config(
        app, http=_json_400s(), log_level="info", log_config=logging_config, lifespan="off",
        use_colors=colours, loop="asyncio",  # its accept calls CappedListener.accept; uvloop's not
    )  # fmt: skip
    service = app.state.service

    class Server(uvicorn.Server):  # type: ignore[misc]
        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            try:
                await super().serve(sockets)
            finally:
                service.close()  # serve() waits for the generation, off the event loop

    srv = Server(config)
    service.stopping = lambda: srv.should_exit
    return srv


def _json_400s() -> type:
    """uvicorn's HTTP protocol (httptools where installed, else h11), answering a request
    it cannot read as HTTP (a malformed request line or header, a Content-Length that is
    not a number, headers too large) with the API's JSON error, not a plain-text body an
    OpenAI client cannot parse. The app never sees such a request. A connection whose
    request's headers have not all come ``HEADERS_TIMEOUT_S`` after it opened, or after
    its last answer, is closed (a 408 where part of them came): uvicorn held it open for
    ever, and a client sending nothing, or a byte of a header now and then (a slowloris),
    held a file descriptor each, until none was left for anyone else.
    A connection whose client takes none of its answer's bytes waiting to be sent for
    ``WRITE_TIMEOUT_S`` (it keeps the connection open and stops reading) is closed at once,
    the bytes dropped: a streamed answer's generation still running then stops between two
    tokens, as for a client that left. uvicorn waited on it for ever: a stalled streamed
    answer held its events in memory, its generation ran to its end, and the server's stop
    (SIGTERM) waited for the connection to close, as it did for an unstreamed answer
    larger than the kernel's buffers."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from routerllm.server.listener import http_error
    from routerllm.server.protocol import error_body

    class JSON400Protocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        headers_due: asyncio.TimerHandle | None = None
        heard = False  # a byte of the next request has come
        write_due: asyncio.TimerHandle | None = None
        unsent = 0  # bytes waiting to be sent when the client was last seen taking some

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # pause_writing as soon as the kernel takes no more of an answer, not past
            # asyncio's 64 KiB: a client that stops reading is seen however little is left
            transport.set_write_buffer_limits(high=0)
            self.await_headers()

        def pause_writing(self) -> None:
            super().pause_writing()
            self.unsent = self.transport.get_write_buffer_size()
            self.write_due = self.loop.call_later(WRITE_TIMEOUT_S, self.write_late)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self.write_due is not None:
                self.write_due.cancel()
                self.write_due = None

        def write_late(self) -> None:
            unsent = self.transport.get_write_buffer_size()
            # a client reading slowly: it took some meanwhile. Seen only as its kernel
            # reopens its window, once about half its receive buffer is free, not at each
            # byte it reads: one taking 4 kB a second with Linux's default buffers is cut
            if unsent < self.unsent:
                self.unsent = unsent
                self.write_due = self.loop.call_later(WRITE_TIMEOUT_S, self.write_late)
                return
            self.write_due = None
            log.warning("a client took none of its answer for %g s (%d bytes waiting): its connection is closed", WRITE_TIMEOUT_S, unsent)  # fmt: skip
            self.transport.abort()  # close() would wait, as before, for the bytes to go

        def data_received(self, data: bytes) -> None:
            self.heard = True
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.await_headers()  # the next request's, on a connection kept alive

        def connection_lost(self, exc: Exception | None) -> None:
            for due in (self.headers_due, self.write_due):
                if due is not None:
                    due.cancel()
            super().connection_lost(exc)

        def await_headers(self) -> None:
            if self.headers_due is not None:
                self.headers_due.cancel()
            self.heard = False
            if not self.transport.is_closing():
                self.headers_due = self.loop.call_later(HEADERS_TIMEOUT_S, self.headers_late)

        def headers_late(self) -> None:
            self.headers_due = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):  # fmt: skip
                return  # a request's headers came: its body and answer have their own times
            if not self.heard:  # idle, as uvicorn's keep-alive timeout closes it
                self.transport.close()
                return
            message = f"the request's headers did not arrive within {HEADERS_TIMEOUT_S:g} s"
            self.refuse(b"408 Request Timeout", message, "request_timeout")

        def send_400_response(self, msg: str) -> None:
            said = msg.rstrip(".")
            message = "malformed HTTP request: its request line, a header or its Content-Length is not valid HTTP/1.1"  # fmt: skip
            message += "" if said == "Invalid HTTP request received" else f" ({said})"
            self.refuse(b"400 Bad Request", message, "malformed_request")

        def refuse(self, status: bytes, message: str, code: str) -> None:
            """The API's JSON error, written as the connection's last bytes."""
            body = error_body(message, "invalid_request_error", code)
            headers = [name + b": " + value for name, value in self.server_state.default_headers]
            self.transport.write(http_error(status, body, *headers))
            self.transport.close()

    return JSON400Protocol


def serve(
    system: RouterLLM,
    sock: socket.socket,
    api_key: str | None = None,
    on_ready: Callable[[], None] | None = None,
    cors: Sequence[str] | None = (),
    max_waiting: int | None = None,
    max_connections_per_client: int | None = None,
) -> None:
    """Serve until Ctrl-C (``KeyboardInterrupt``) or SIGTERM or SIGHUP (returns), each after the
    request in progress is answered and logged. A second Ctrl-C stops at once, yet
    the request in progress is still finished and logged first: a model cannot be
    stopped half-way, and the caller closes the system next. ``on_ready`` is called
    once the server answers requests (and handles signals as above); an error it raises
    stops the server as SIGTERM does, then is raised here; ``cors`` and
    ``max_waiting`` as for :func:`create_app`. At most ``max_connections_per_client``
    connections are held from one client address, those beyond refused with a 429
    (None: half of what the file descriptors allow, at least 128 and at most 1,024;
    0: no such limit)."""
    from routerllm.system import open_system

    open_system(system, "serve")  # before a signal handler is set or the socket used
    per_client = per_client_connections(max_connections_per_client)

    srv = None
    held: list[int] = []  # stop signals held while an answer was generated or sent

    def holding(signum: int) -> bool:
        # Serving, uvicorn takes Ctrl-C and SIGTERM (the first Ctrl-C stops, the second
        # forces); once it has stopped, the event loop closes and waits for the answer in
        # progress: a signal raised then would cut that wait, and the answer, generated
        # and logged, would never be sent. It is held until the answer's last byte is
        # sent (``service.unsent`` counts it until then, not only while it is generated).
        if srv is None or not srv.config.app.state.service.unsent:
            return False
        held.append(signum)
        log.warning(WAITING)
        return True

    def stopped(signum: int, frame: object) -> None:
        if not holding(signum):
            raise _Stopped

    def interrupted(signum: int, frame: object) -> None:
        if not holding(signum):
            raise KeyboardInterrupt

    def hung_up(signum: int, frame: object) -> None:
        # SIGHUP (the terminal closed, `kill -HUP`) stops as SIGTERM does: by default it
        # ended the process at once, the request in progress cut and never logged
        if srv is None:
            raise _Stopped
        srv.handle_exit(signal.SIGTERM, frame)  # uvicorn's graceful stop, then SIGTERM's

    previous = signal.signal(signal.SIGTERM, stopped)  # uvicorn raises it again after its shutdown
    previous_interrupt = signal.signal(signal.SIGINT, interrupted)  # likewise
    hangup = getattr(signal, "SIGHUP", None)  # none on Windows
    if hangup is not None and signal.getsignal(hangup) == signal.SIG_IGN:
        hangup = None  # `nohup routerllm serve`: asked to outlive its terminal, it does
    previous_hangup = signal.signal(hangup, hung_up) if hangup is not None else None
    failed: list[Exception] = []
    raise_fd_limit()
    cap = connection_cap()
    listener = CappedListener.of(sock, cap, client_cap(cap, per_client))
    try:  # a SIGTERM while the server starts stops it here too
        srv = server(system, api_key, cors, max_waiting, _loopback(sock))
        listener.on_refusal = srv.config.app.state.service.metrics.refused
        threading.Thread(target=_announce, args=(srv, on_ready, failed), name="routerllm-ready", daemon=True).start()  # fmt: skip
        srv.run(sockets=[listener])
    except _Stopped:
        pass
    finally:
        listener.close()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_interrupt)
        if hangup is not None:
            signal.signal(hangup, previous_hangup)
        if srv is not None:
            _wait_for(srv.config.app.state.service.working)
    if failed:
        raise failed[0]
    if signal.SIGINT in held:  # the request answered: Ctrl-C's stop, as the caller expects it
        raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGTERM and SIGHUP held (said, not acted on) for the block: once serving has
    stopped, the caller's close of the system (a learning router saved, the log closed)
    is not cut short by another stop signal, a service manager's second SIGTERM, say,
    which would end the process part-way through the close.
    Ctrl-C still interrupts it: a way out where a close hangs."""

    def held(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):  # after a hangup, stderr may be gone
            print(
                f"stopping already: closing the system first ({signal.Signals(signum).name} held)",
                file=sys.stderr,
                flush=True,
            )

    kinds = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {kind: signal.signal(kind, held) for kind in kinds}
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)


def _announce(srv: Any, on_ready: Callable[[], None] | None, failed: list[Exception]) -> None:
    """``on_ready()`` once ``srv`` answers requests (never if it stops first). Where it
    fails (the ready line's reader gone: a BrokenPipeError), the server stops as on
    SIGTERM and ``serve`` raises the error, not a traceback from this thread while it
    went on serving."""
    while not (srv.started or srv.should_exit):
        time.sleep(0.01)
    if srv.started and on_ready is not None:
        try:
            on_ready()
        except Exception as e:
            failed.append(e)  # before the stop: serve() finds it once run() returns
            srv.should_exit = True


def _wait_for(lock: threading.Lock) -> None:
    """Until no request is generating; Ctrl-C cannot cut this short."""
    while True:
        try:
            with lock:
                return
        except KeyboardInterrupt:
            log.warning(WAITING)


class _Stopped(BaseException):
    """SIGTERM, raised again by uvicorn once it has shut down."""


def _loopback(sock: socket.socket) -> bool:
    """Whether ``sock`` listens on a loopback address alone (not 0.0.0.0, ::, a LAN's)."""
    import ipaddress

    try:
        return ipaddress.ip_address(str(sock.getsockname()[0]).partition("%")[0]).is_loopback
    except (OSError, ValueError):
        return True  # not known: the safer reading
