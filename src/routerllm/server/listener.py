"""The server's file descriptors: the soft ``RLIMIT_NOFILE`` raised to the hard one, and
a listening socket that holds at most as many connections as the descriptors allow,
answering those beyond with a 503 as it accepts them, so that the server keeps
``RESERVED_FDS`` for its own files (a model's weights, the request log, the emissions CSV);
and at most ``per_client`` of them from one client address, those beyond answered 429,
so that one client cannot take them all."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RESERVED_FDS = 64
"""File descriptors kept, beyond those open when serving starts, for the server's own
files: a model's weights as it loads, the request log's journal, the emissions CSV, a
module imported on first use, a remote model's connections."""

REFUSALS_SAID_EVERY_S = 60.0
"""How often the log says connections are being refused, while they are."""

LINGER_S = 1.0
"""How long a connection refused a 429 stays open, its client's request read and dropped,
after its answer (and its end, a FIN) are sent."""

LINGERING_MOST = 16
"""How many refused connections may linger at once (counted in the cap, as they hold a
descriptor each), and how many places under the cap they leave the others: one beyond,
or refused with as few places left, is closed at once. A client opening connections in
a loop would otherwise fill the cap with its refusals, and shut the others out (503)
for a second; a small cap, most of it one client's, with far fewer of them."""

CLIENT_SHARE_LEAST = 128
"""The fewest connections one client address may hold by default (where the file
descriptors allow as many): an ``httpx`` client's whole pool (100 connections) fits."""

CLIENT_SHARE_MOST = 1024
"""The most connections one client address may hold by default, however many the file
descriptors allow: an ``openai`` client's whole pool (1,000 connections in 3.57) fits."""


def raise_fd_limit() -> None:
    """The process's soft ``RLIMIT_NOFILE`` raised to its hard limit, as servers do: many
    systems give 1,024 (soft) of a far larger hard limit, meant to be raised by a program
    that needs more, and each connection holds one. Left as it is where that fails."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard one beyond the kernel's nr_open
            log.debug("the soft RLIMIT_NOFILE (%s) could not be raised to %s", soft, hard)


def connection_cap() -> int:
    """How many connections the server may hold: the file descriptors its soft
    ``RLIMIT_NOFILE`` leaves once those open now and ``RESERVED_FDS`` are set aside (at
    least 1; an unlimited or unknown limit read as 1,048,576)."""
    limit = 1 << 20
    with contextlib.suppress(ImportError):  # Windows
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        limit = limit if soft == resource.RLIM_INFINITY else soft
    try:
        open_now = len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))
    except OSError:
        open_now = 16
    return max(1, limit - open_now - RESERVED_FDS)


def client_cap(cap: int, per_client: int | None) -> int | None:
    """How many connections one client address may hold, given the server's ``cap`` and the
    ``--max-connections-per-client`` asked (None: the default, half of ``cap``, so that one
    client leaves the other half to the rest, yet at least ``CLIENT_SHARE_LEAST``, where
    ``cap`` allows as many, and at most ``CLIENT_SHARE_MOST``; 0: no per-client limit,
    returned as None)."""
    if per_client is None:
        return min(cap, max(cap // 2, CLIENT_SHARE_LEAST), CLIENT_SHARE_MOST)
    return per_client or None


def client_of(address: Any) -> str:
    """The client an accepted connection's peer ``address`` stands for: its IP address,
    an IPv4 one as IPv4 where a dual-stack socket gives it as ``::ffff:a.b.c.d``. An IPv6
    client is its whole address, not its /64: a /64 is one LAN segment, many machines of
    an office each, and those are the clients to keep apart; a client that spreads its
    connections over the addresses of its /64 on purpose needs a proxy's limits anyway."""
    host = str(address[0]) if isinstance(address, tuple) and address else str(address)
    return host[7:] if host.startswith("::ffff:") and "." in host else host


def http_error(status: bytes, body: dict[str, Any], *headers: bytes) -> bytes:
    """An HTTP/1.1 answer of ``body`` as JSON that closes its connection."""
    text = json.dumps(body).encode()
    head = [b"HTTP/1.1 " + status, *headers, b"content-type: application/json"]
    head += [b"content-length: " + str(len(text)).encode(), b"connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + text


class CappedListener(socket.socket):
    """A listening socket (a duplicate of one) whose ``accept`` hands the event loop at
    most ``cap`` open connections: one beyond is sent a 503 (``too_many_connections``,
    ``Retry-After: 1``) and closed as it is accepted; and at most ``per_client`` (None: no
    limit) from one client address (``client_of``): one beyond is sent a 429
    (``too_many_client_connections``, ``Retry-After: 1``) and closed once its request is
    read (``_linger``), or at once where few places are left. Refused in the event loop's handler
    instead, a burst of connections (asyncio accepts up to 2,048 in one go) had taken every
    descriptor before the first was refused. A connection leaves the count as it is closed,
    or as it is freed: asyncio drops one whose protocol or transport fails to start without
    closing it (its descriptor closed then, as any socket's freed unclosed), and held in
    the count it was never freed, the cap one less for good."""

    def __init__(self, *args: Any, cap: int = 1, per_client: int | None = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.cap, self.per_client = cap, per_client
        self.open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        # each client's open connections, counted as the total is (a weak set: one that
        # asyncio drops unclosed leaves it as it is freed); kept only while limited
        self.clients: dict[str, weakref.WeakSet[_Connection]] = {}
        # each refused connection lingering, and what closes it (its timer and its reader
        # with it): held here, not weakly, so that the listener's close closes it (below)
        self.lingering: dict[_Connection, Callable[[], None]] = {}
        self.refused, self.refusals_said = 0, -REFUSALS_SAID_EVERY_S
        self.client_refused, self.client_refusals_said = 0, -REFUSALS_SAID_EVERY_S
        # told of each refusal, its status and code (the server's /metrics counts them)
        self.on_refusal: Callable[[int, str], None] = lambda status, code: None

    @classmethod
    def of(cls, sock: socket.socket, cap: int, per_client: int | None = None) -> CappedListener:
        """A duplicate of the listening ``sock``, holding at most ``cap`` connections and
        at most ``per_client`` from one client address (None: no such limit)."""
        # socket.dup, not os.dup: a socket is no C file descriptor on Windows
        return cls(sock.family, sock.type, sock.proto, fileno=socket.dup(sock.fileno()), cap=cap, per_client=per_client)  # fmt: skip

    def accept(self) -> tuple[socket.socket, Any]:
        while True:  # BlockingIOError once none is waiting, as socket.accept's
            accepted, address = super().accept()
            if len(self.open) >= self.cap:
                self.refuse(accepted)
                continue
            client = None
            if self.per_client is not None:
                client = client_of(address)
                if len(self.clients.get(client, ())) >= self.per_client:
                    self.refuse_client(accepted, client)
                    continue
                if len(self.clients) > 2 * len(self.open) + 64:  # sets emptied as freed
                    self.clients = {key: held for key, held in self.clients.items() if held}
            conn = _Connection(self, client, fileno=accepted.detach())
            conn.settimeout(accepted.gettimeout())
            return conn, address

    def refuse(self, conn: socket.socket) -> None:
        self.refused += 1
        self.on_refusal(503, "too_many_connections")
        if time.monotonic() - self.refusals_said >= REFUSALS_SAID_EVERY_S:
            log.warning("%d connection(s) refused (503): %d are open, as many as the file descriptors allow (RLIMIT_NOFILE)", self.refused, self.cap)  # fmt: skip
            self.refused, self.refusals_said = 0, time.monotonic()
        message = f"the server holds as many connections as its file descriptors allow ({self.cap}); send the request again later"  # fmt: skip
        _refuse(conn, _refusal(b"503 Service Unavailable", message, "server_error", "too_many_connections"))  # fmt: skip

    def refuse_client(self, conn: socket.socket, client: str) -> None:
        self.client_refused += 1
        self.on_refusal(429, "too_many_client_connections")
        if time.monotonic() - self.client_refusals_said >= REFUSALS_SAID_EVERY_S:
            # behind a reverse proxy every client is the proxy's address: said here, where
            # the one who can change the limit looks, not left to the clients' 429s
            log.warning("%d connection(s) refused (429): one client address held %d, the most --max-connections-per-client allows; the last from %s (behind a reverse proxy every client has the proxy's address: raise the limit, or 0 for none)", self.client_refused, self.per_client, client)  # fmt: skip
            self.client_refused, self.client_refusals_said = 0, time.monotonic()
        message = f"this client's address holds as many connections as one client may ({self.per_client}); close some, or send the request again later"  # fmt: skip
        answer = _refusal(b"429 Too Many Requests", message, "requests", "too_many_client_connections")  # fmt: skip
        loop = _running_loop()
        crowded = self.cap - len(self.open) <= LINGERING_MOST  # the others' last places
        if loop is None or crowded or len(self.lingering) >= LINGERING_MOST:
            _refuse(conn, answer)
            return
        # counted as open while it lingers: it holds a descriptor, which the cap is for
        lingering = _Connection(self, None, fileno=conn.detach())
        if (close := _linger(loop, lingering, answer)) is not None:
            self.lingering[lingering] = close

    def close(self) -> None:
        # the refusals still lingering closed too: asyncio closes the listener as the
        # server stops, and their timers would die with the event loop, each connection
        # left open until the garbage collector found it (a ResourceWarning each)
        for close in list(self.lingering.values()):
            close()
        super().close()

    def leave(self, conn: _Connection) -> None:
        """``conn`` out of the counts, as it is closed."""
        self.open.discard(conn)
        self.lingering.pop(conn, None)
        held = self.clients.get(conn.client) if conn.client is not None else None
        if held is not None:
            held.discard(conn)
            if not held:
                del self.clients[conn.client]  # type: ignore[arg-type]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop accepting, None where ``accept`` is called outside one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _refusal(status: bytes, message: str, kind: str, code: str) -> bytes:
    """The API's error ``code`` as an answer that asks its client to try again in 1 s."""
    from routerllm.server.protocol import error_body

    return http_error(status, error_body(message, kind, code), b"retry-after: 1")


def _refuse(conn: socket.socket, answer: bytes) -> None:
    """``answer`` sent on ``conn``, just accepted, and ``conn`` closed."""
    with contextlib.suppress(OSError):  # gone already: nothing to tell
        conn.setblocking(False)
        conn.send(answer)
    conn.close()


def _linger(
    loop: asyncio.AbstractEventLoop, conn: socket.socket, answer: bytes
) -> Callable[[], None] | None:
    """``answer`` sent on ``conn`` and its end after it, then what the client sends read
    and dropped until it closes, or ``LINGER_S`` has passed, before ``conn`` is closed.
    Closed at once, as the 503's connection is, a request that came after the close was
    answered with a reset, and a client still sending its request (an ``openai`` client
    sends its body after its headers) lost the 429 waiting unread: it saw a connection
    error (httpx's ``ReadError``) instead. Returns what closes it sooner (None: closed
    already, its client gone)."""
    fd = conn.fileno()

    def close() -> None:
        if conn.fileno() != -1:
            loop.remove_reader(fd)
            due.cancel()
            conn.close()

    def drop() -> None:
        try:
            if conn.recv(65536):
                return  # more may come
        except BlockingIOError:
            return
        except OSError:  # reset: gone
            pass
        close()

    try:
        conn.setblocking(False)
        conn.send(answer)
        conn.shutdown(socket.SHUT_WR)
    except OSError:  # gone already: nothing to tell
        conn.close()
        return None
    due = loop.call_later(LINGER_S, close)
    loop.add_reader(fd, drop)
    return close


class _Connection(socket.socket):
    """An accepted connection, counted by its listener (as ``client``'s too, where one is
    given) until it is closed."""

    def __init__(self, listener: CappedListener, client: str | None, fileno: int) -> None:
        super().__init__(listener.family, listener.type, listener.proto, fileno=fileno)
        self.listener, self.client = listener, client
        listener.open.add(self)
        if client is not None:
            listener.clients.setdefault(client, weakref.WeakSet()).add(self)

    def close(self) -> None:
        self.listener.leave(self)
        super().close()
