"""The connection of an HTTP exchange, watched (``_Watch``): shut at its time limit or as
soon as its caller cancels it, whatever it waits on (a connect still in progress, a
status line or headers trickling in, a silent stream); and the opener that makes such
connections (``_opener``), redirects not followed."""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

CANCEL_POLL_S = 0.05  # how often a stream's watch looks whether its caller has gone


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


class _Watch:
    """Ends an exchange at its time limit whatever it waits on, by shutting its socket
    down: a socket's timeout limits each wait alone, so a server that trickles its
    status line or headers (or "100 Continue" after "100 Continue") a byte within each
    wait would hold the request as long as it went on. Where given ``cancel``, it also
    ends it as soon as that says so (``cancelled``), looked at every CANCEL_POLL_S: a
    read waiting on a silent server ends then, not at the server's next event, and a
    connect still in progress too (Linux resets it; elsewhere its own timeout ends it)."""

    def __init__(self, timeout: float, cancel: Callable[[], bool] | None = None) -> None:
        self.fired = False
        self.cancelled = False
        self._cancel = cancel
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + timeout
        self._done = threading.Event()
        self._timer = threading.Thread(target=self._wait, daemon=True)

    def _wait(self) -> None:
        while True:
            left = max(self._deadline - time.monotonic(), 0.0)
            if self._done.wait(left if self._cancel is None else min(left, CANCEL_POLL_S)):
                return
            if self._cancel is not None and self._cancel():
                self._fire(cancelled=True)
                return
            if time.monotonic() >= self._deadline:  # not put off meanwhile (``extend``)
                self._fire()
                return

    def extend(self, timeout: float) -> None:
        """The limit put off to ``timeout`` from now: a stream's next piece came."""
        self._deadline = time.monotonic() + timeout

    @property
    def ended(self) -> bool:
        """Whether the exchange was ended: at its time limit, or cancelled."""
        return self.fired or self.cancelled

    def attach(self, sock: socket.socket) -> None:
        """Watch ``sock``, the connection about to be made (to the server or its proxy)."""
        with self._lock:
            if self._sock is not None:  # an address tried before, which failed
                self._sock.close()
            # a copy of its descriptor: TLS wraps the socket in another object, and the
            # shutdown of either ends the connection both stand for
            self._sock = sock.dup()

    def _fire(self, cancelled: bool = False) -> None:
        with self._lock:
            if cancelled:
                self.cancelled = True
            else:
                self.fired = True
            self._shut()

    def _shut(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):  # already closed by its end
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watch:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class _WatchedConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` whose socket a ``_Watch`` is given before it connects."""

    def __init__(self, *args: Any, watch: _Watch, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch = watch
        self._create_connection = self._connect_watched

    def _connect_watched(
        self,
        address: tuple[str, int],
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        """``socket.create_connection``'s, each socket watched while it connects: the
        watch's shutdown ends a connect the endpoint does not answer (a full accept
        queue, a host that drops the SYN) as it ends a read, not at ``timeout``."""
        error = OSError(f"no address found for {address[0]}")
        for family, kind, proto, _, addr in socket.getaddrinfo(*address, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                self._watch.attach(sock)
                # a socket shut before it connects would connect all the same: looked at
                # before, and after (ended between the look and the connect's start)
                if not self._watch.ended:
                    sock.connect(addr)
                    if not self._watch.ended:
                        return sock
                error = ConnectionAbortedError("the exchange ended as it connected")
            except OSError as e:
                error = e
            sock.close()
            if self._watch.ended:  # no other address tried: the exchange is over
                break
        raise error


class _WatchedTLSConnection(_WatchedConnection, http.client.HTTPSConnection):
    pass


class _Watching(urllib.request.AbstractHTTPHandler):
    """A handler whose connections give their socket to ``watch``."""

    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def do_open(self, http_class: Any, req: urllib.request.Request, **kw: Any) -> Any:
        tls = issubclass(http_class, http.client.HTTPSConnection)
        watched = _WatchedTLSConnection if tls else _WatchedConnection
        return super().do_open(functools.partial(watched, watch=self.watch), req, **kw)


class _WatchedHandler(_Watching, urllib.request.HTTPHandler):
    pass


class _WatchedTLSHandler(_Watching, urllib.request.HTTPSHandler):
    pass


def _opener(watch: _Watch) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        _NoRedirects, _WatchedHandler(watch), _WatchedTLSHandler(watch)
    )
