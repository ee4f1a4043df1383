"""The checks of what ``create_app`` and ``routerllm serve`` are given: the API key,
the cap on requests waiting their turn, the CORS origins, the connections one client may hold. Each gives a clear error
before the server starts (the CLI's before any model loads)."""

import re
from collections.abc import Sequence

from routerllm.exceptions import RouterLLMError


def key_bytes(api_key: object) -> bytes | None:
    """``api_key`` as the bytes a request's ``Authorization: Bearer`` must carry (UTF-8,
    without the spaces around it); None: no key. An empty key is refused: it would let in
    any request that sends ``Authorization: Bearer`` with nothing after it."""
    if api_key is None:
        return None
    if not isinstance(api_key, str):  # its value is not quoted: it may be the key
        raise RouterLLMError(f"api_key must be text (None: no key), got {type(api_key).__name__}")
    if not api_key.strip():
        raise RouterLLMError(
            "api_key is empty: give a key, or None to serve without one (an empty key would "
            "let in any request that sends 'Authorization: Bearer')"
        )
    return api_key.strip().encode()


def waiting_cap(max_waiting: object) -> int | None:
    """``max_waiting`` checked: how many requests may wait for the turn (None: no cap)."""
    if max_waiting is not None and (type(max_waiting) is not int or max_waiting < 0):
        raise RouterLLMError(f"--max-waiting must be a whole number >= 0 (none: no cap), got {max_waiting!r:.40}")  # fmt: skip
    return max_waiting


def per_client_connections(max_connections_per_client: object) -> int | None:
    """``max_connections_per_client`` checked: how many connections one client address may
    hold (None: the default share of the server's cap; 0: no per-client limit)."""
    given = max_connections_per_client
    if given is not None and (type(given) is not int or given < 0):
        raise RouterLLMError(f"--max-connections-per-client must be a whole number >= 0 (0: no per-client limit), got {given!r:.40}")  # fmt: skip
    return given


def cors_origins(origins: Sequence[str] | None) -> list[str]:
    """``origins`` as a browser sends its ``Origin`` header (``scheme://host[:port]``, in
    lower case, without the scheme's default port), or ``*`` for any origin (None: none);
    a clear error for one that no browser would send (a path, a trailing slash), which
    would never match, or for what is not text."""
    if origins is not None and not isinstance(origins, str | Sequence):
        raise RouterLLMError(f"cors must be a list of origins, got {origins!r:.100}")
    allowed = []
    for origin in [origins] if isinstance(origins, str) else origins or ():
        if not isinstance(origin, str):
            raise RouterLLMError(
                f"a CORS origin is text (scheme://host[:port], or *), got {origin!r:.100}"
            )
        text = origin.strip().lower()
        if text == "*":
            allowed.append(text)
            continue
        match = _ORIGIN.fullmatch(text)
        if match is None or int(match["port"] or 0) > 65535:
            raise RouterLLMError(
                f"CORS origin {origin!r:.100} is not an origin: give scheme://host[:port] as "
                f"the browser sends it (http://localhost:3000, no path or trailing slash), or *"
            )
        scheme, host, port = match["scheme"], match["host"], match["port"]
        default = {"http": "80", "https": "443"}.get(scheme)
        allowed.append(f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}"))
    return allowed


_ORIGIN = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[^/?#@:\[\]\s]+)(?::(?P<port>\d{1,5}))?")  # fmt: skip
