"""The server's file descriptors: the soft ``RLIMIT_NOFILE`` raised to the hard one, and
a listening socket that holds at most as many connections as the descriptors allow,
answering those beyond with a 503 as it accepts them, so that the server keeps
``RESERVED_FDS`` for its own files (a model's weights, the request log, the emissions CSV)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import weakref
from typing import Any

log = logging.getLogger(__name__)

RESERVED_FDS = 64
"""File descriptors kept, beyond those open when serving starts, for the server's own
files: a model's weights as it loads, the request log's journal, the emissions CSV, a
module imported on first use, a remote model's connections."""

REFUSALS_SAID_EVERY_S = 60.0
"""How often the log says connections are being refused, while they are."""


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


def http_error(status: bytes, body: dict[str, Any], *headers: bytes) -> bytes:
    """An HTTP/1.1 answer of ``body`` as JSON that closes its connection."""
    text = json.dumps(body).encode()
    head = [b"HTTP/1.1 " + status, *headers, b"content-type: application/json"]
    head += [b"content-length: " + str(len(text)).encode(), b"connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + text


class CappedListener(socket.socket):
    """A listening socket (a duplicate of one) whose ``accept`` hands the event loop at
    most ``cap`` open connections: one beyond is sent a 503 (``too_many_connections``,
    ``Retry-After: 1``) and closed as it is accepted. Refused in the event loop's handler
    instead, a burst of connections (asyncio accepts up to 2,048 in one go) had taken every
    descriptor before the first was refused. A connection leaves the count as it is closed,
    or as it is freed: asyncio drops one whose protocol or transport fails to start without
    closing it (its descriptor closed then, as any socket's freed unclosed), and held in
    the count it was never freed, the cap one less for good."""

    def __init__(self, *args: Any, cap: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cap = cap
        self.open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self.refused, self.refusals_said = 0, -REFUSALS_SAID_EVERY_S

    @classmethod
    def of(cls, sock: socket.socket, cap: int) -> CappedListener:
        """A duplicate of the listening ``sock``, holding at most ``cap`` connections."""
        # socket.dup, not os.dup: a socket is no C file descriptor on Windows
        return cls(sock.family, sock.type, sock.proto, fileno=socket.dup(sock.fileno()), cap=cap)

    def accept(self) -> tuple[socket.socket, Any]:
        while True:  # BlockingIOError once none is waiting, as socket.accept's
            accepted, address = super().accept()
            if len(self.open) >= self.cap:
                self.refuse(accepted)
                continue
            conn = _Connection(self, fileno=accepted.detach())
            conn.settimeout(accepted.gettimeout())
            return conn, address

    def refuse(self, conn: socket.socket) -> None:
        self.refused += 1
        if time.monotonic() - self.refusals_said >= REFUSALS_SAID_EVERY_S:
            log.warning("%d connection(s) refused (503): %d are open, as many as the file descriptors allow (RLIMIT_NOFILE)", self.refused, self.cap)  # fmt: skip
            self.refused, self.refusals_said = 0, time.monotonic()
        message = f"the server holds as many connections as its file descriptors allow ({self.cap}); send the request again later"  # fmt: skip
        from routerllm.server.protocol import error_body

        body = error_body(message, "server_error", "too_many_connections")
        with contextlib.suppress(OSError):  # gone already: nothing to tell
            conn.setblocking(False)
            conn.send(http_error(b"503 Service Unavailable", body, b"retry-after: 1"))
        conn.close()


class _Connection(socket.socket):
    """An accepted connection, counted by its listener until it is closed."""

    def __init__(self, listener: CappedListener, fileno: int) -> None:
        super().__init__(listener.family, listener.type, listener.proto, fileno=fileno)
        self.listener = listener
        listener.open.add(self)

    def close(self) -> None:
        self.listener.open.discard(self)
        super().close()
