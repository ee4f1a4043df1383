"""ASGI middleware in front of the server's endpoints (``create_app`` adds it), and
what it shares with them: a path with stray slashes served as the path without them
(``TidyPaths``), an ``Expect`` header other than ``100-continue`` refused (``Expectations``),
a body framed two ways refused (``Framing``), a host name refused where no key
is set (``LocalHosts``), those three refusals sent alike (``Refusing``), an answer
counted until it is sent (``Delivery``), and what a request's headers say of its body
(``sends_body``, ``waits_to_send``)."""

import re
from collections.abc import Sequence
from typing import Any, Protocol


class Refuser(Protocol):
    """What ``Refusing`` needs of the app's service (``app._Service``)."""

    def refusal(self, status: int, message: str, kind: str, code: str, close: bool = False) -> Any:  # fmt: skip
        """An OpenAI-style JSON error response (with ``close``: the connection closed after it)."""

    async def drained(self, request: Any, refusal: Any) -> Any:
        """``refusal``, sent once the request's body is read and dropped (at once to a
        client waiting for ``100 Continue``)."""


def taken(routes: Sequence[Any], method: str, path: str, any_method: bool = False) -> bool:
    """Whether one of ``routes`` answers ``method`` ``path`` (with ``any_method``: takes
    ``path`` by some method, as a 405 tells); an empty path parameter (``GET
    /v1/models/``: a model's name) is no match."""
    from starlette.routing import Match

    scope = {"type": "http", "method": method, "path": path}
    wanted = (Match.FULL, Match.PARTIAL) if any_method else (Match.FULL,)
    for route in routes:
        match, child = route.matches(scope)
        if match in wanted and all(child.get("path_params", {}).values()):
            return True
    return False


def tidy(path: str) -> str:
    """``path`` without repeated or trailing slashes."""
    return _SLASHES.sub("/", path).rstrip("/") or "/"


_SLASHES = re.compile("/{2,}")


class TidyPaths:
    """ASGI middleware: a path that no endpoint takes as written, but one does without
    its repeated or trailing slashes (``POST /v1/chat/completions/``, or
    ``/v1//chat/completions`` from a base_url ending in "/"), is served as that path.
    Starlette's ``redirect_slashes`` answered a 307 with no body instead: a client that
    follows no redirect of a POST (curl, urllib) saw no OpenAI error, and one that does
    (the openai client) sent its body twice, to a URL built from the Host header
    (``http://`` behind a TLS proxy)."""

    def __init__(self, app: Any, router: Any) -> None:
        self.app, self.router = app, router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (path := scope["path"]) != (tidied := tidy(path)):
            routes, method = self.router.routes, scope["method"]
            if not taken(routes, method, path, True) and taken(routes, method, tidied, True):
                raw = tidy(scope.get("raw_path", b"").decode("latin-1") or path)  # any bytes
                scope = {**scope, "path": tidied, "raw_path": raw.encode("latin-1")}
        await self.app(scope, receive, send)


class Refusing:
    """ASGI middleware that refuses some HTTP requests before the app sees them: where
    ``refusal_of(scope)`` gives one (``Refuser.refusal``'s), it is sent as a 401 is
    (``Refuser.drained``) and the app is not called; else the request goes on. One
    place for how a refusal is sent, so the refusing middlewares cannot drift apart."""

    def __init__(self, app: Any, service: Refuser) -> None:
        self.app, self.service = app, service

    def refusal_of(self, scope: Any) -> Any | None:
        """The refusal of the HTTP request ``scope``, or None to let it in."""
        raise NotImplementedError

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (refusal := self.refusal_of(scope)) is not None:
            from starlette.requests import Request

            answer = await self.service.drained(Request(scope, receive), refusal)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Expectations(Refusing):
    """ASGI middleware: a request whose ``Expect`` asks for anything but ``100-continue``
    (the one expectation HTTP defines) is a 417, as RFC 9110 allows, before the key or
    the path is looked at; uvicorn ignored such an expectation and answered as if the
    client had asked nothing. Sent as a 401 is (``Refuser.drained``): at once to a client
    that waits for ``100 Continue``, else once the body is read and dropped."""

    def refusal_of(self, scope: Any) -> Any | None:
        sent = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"expect"]
        if all(member == "100-continue" for member in _members(sent)):
            return None
        return self.service.refusal(
            417, f"Expect: {', '.join(sent)!r:.80} cannot be met: this server meets "
            "100-continue alone; send the request without it",
            "invalid_request_error", "expectation_failed",
        )  # fmt: skip


class Framing(Refusing):
    """ASGI middleware: a request with both ``Content-Length`` and ``Transfer-Encoding`` is
    a 400 (``malformed_request``, as a request uvicorn cannot read), sent as a 401 is
    (``Refuser.drained``), and its connection closed, before anything else is looked at.
    RFC 9112 (6.3) asks it: a proxy in front may read the body by the one where this
    server reads it by the other, and the bytes after it be a request smuggled past the
    proxy. h11 (uvicorn's HTTP where httptools is not installed) read it by
    ``Transfer-Encoding``, answered it, and read on."""

    def refusal_of(self, scope: Any) -> Any | None:
        names = {name.lower() for name, _ in scope["headers"]}
        if not {b"content-length", b"transfer-encoding"} <= names:
            return None
        return self.service.refusal(
            400, "malformed HTTP request: it has both Content-Length and Transfer-Encoding, "
            "which HTTP/1.1 forbids (RFC 9112 6.3); send one of them",
            "invalid_request_error", "malformed_request", close=True,
        )  # fmt: skip


class LocalHosts(Refusing):
    """ASGI middleware for a server without an API key: a request whose ``Host`` is a name
    other than ``localhost`` (or ``*.localhost``, which browsers resolve to this machine
    themselves) is a 403 (``host_not_allowed``), sent as a 401 is; an IP address, or no
    or empty ``Host``, is let in. DNS rebinding: a page on evil.example whose name then resolves
    to 127.0.0.1 is the server's own origin to the browser, so no CORS stops it; it ran
    the models and read the answers and the report. It sends its own name as ``Host``.
    ``/health`` answers any name, as it answers without the key."""

    def refusal_of(self, scope: Any) -> Any | None:
        if tidy(scope["path"]) == "/health":
            return None
        sent = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"host"]
        if not sent or local_host(sent[0]):
            return None
        return self.service.refusal(
            403, f"Host {sent[0]!r:.80} is not answered by a server without an API "
            "key (a web page could reach it under that name by DNS rebinding): send the "
            "request to its IP address or localhost, or set ROUTERLLM_API_KEY",
            "invalid_request_error", "host_not_allowed",
        )  # fmt: skip


def local_host(host: str) -> bool:
    """Whether a ``Host`` header's value (``name[:port]``) is an IP address, ``localhost``,
    a name under ``.localhost`` or empty: none that another site's DNS can point here."""
    import ipaddress

    name = host.strip().lower()
    if name.startswith("["):  # an IPv6 address, [::1]:8000
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


BEGUN = "routerllm.answer_begun"
"""In a request's ASGI scope once its answer begins to generate (``Delivery``)."""


class Sender(Protocol):
    """What ``Delivery`` needs of the app's service (``app._Service``)."""

    unsent: int  # answers begun (``BEGUN``) and not yet sent


class Delivery:
    """ASGI middleware: a request whose answer has begun to generate (``BEGUN`` in its
    scope) counts in ``service.unsent`` until its response is sent, or its sending ends
    otherwise (the client gone). While one does, ``serve()`` holds a stop signal: the
    answer, generated and logged, reaches its client before the server stops."""

    def __init__(self, app: Any, service: Sender) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope.pop(BEGUN, False):
                self.service.unsent -= 1


def _members(values: Sequence[str]) -> list[str]:
    """The members of the comma-separated lists ``values`` (a header sent once or more),
    in lower case, without empty ones."""
    members = (m.strip().lower() for value in values for m in value.split(","))
    return [m for m in members if m]


def sends_body(request: Any) -> bool:
    """Whether the request has a body (HTTP/1.1: a ``Content-Length`` other than 0, or a
    ``Transfer-Encoding``), which a GET may carry, though it means nothing there."""
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") not in ("", "0")


def waits_to_send(request: Any) -> bool:
    """Whether the client waits for ``100 Continue`` before it sends the body (uvicorn
    sends it when the body is first read); any other expectation is refused before
    (``Expectations``)."""
    return "100-continue" in _members(request.headers.getlist("expect"))
