"""Models out of service for a while: each until its own time, and why.

One record for both ways a model goes out: its load failed (a local model, back at once
where its files are replaced), or a request's failure took it out (an endpoint found
down, a key or an account refused), with the other models of its server
(:func:`endpoint`). Until 2026-12-07 these were two mechanisms, and a model taken out
twice at once (two requests refused) restarted its minute while the manager's next look
stayed where the first had set it: out up to two minutes. Times are the manager's clock
(``manager._clock``), given by the caller: one clock for all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

#: The names of one loopback server. ``::1`` is not one of them: a server listening on
#: IPv4 only (vLLM's and llama.cpp's defaults) does not answer there while ``localhost``
#: (tried on both) and ``127.0.0.1`` do, so a model written ``[::1]`` failing would take
#: out the working ones.
_LOOPBACK = {"localhost", "127.0.0.1"}


def endpoint(base_url: str | None) -> tuple[str, str, int | None, str] | None:
    """What makes two base_urls one server's endpoint: scheme, host (case aside;
    ``localhost`` and ``127.0.0.1`` one loopback), port (the scheme's default
    where none is given) and path (a trailing / aside); None for a model with none (a
    local one). No name is looked up: ``example.com`` and its address are two."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, _host(parts.hostname or ""), port, parts.path.rstrip("/")


def _host(name: str) -> str:
    """``name`` as one server is named however it is written (``[0:0::1]`` as ``::1``,
    ``LocalHost.`` as ``localhost``), ``localhost`` and ``127.0.0.1`` as one."""
    host = name.lower().rstrip(".")
    # an address written in full or in short is one address; a name is compared as
    # written, never resolved
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    return "loopback" if host in _LOOPBACK else host


@dataclass(frozen=True)
class Outage:
    """A model out of service until ``until``, because ``why`` (what a request naming
    it is told); a failed load's also ends once its files are no longer those it failed
    on (``stamp``: their ``weights_stamp`` as the load began, None where it had none)."""

    until: float
    why: str
    load_failed: bool = False
    stamp: str | None = None


class Outages:
    """The models out of service now, each with its ``Outage``. Not thread-safe by
    itself: the manager calls it under its lock."""

    def __init__(self) -> None:
        self._out: dict[str, Outage] = {}

    def take_out(self, name: str, outage: Outage, now: float) -> None:
        """``name`` out of service as ``outage`` says. One out already for the same
        files (two requests refused at once, the second's begun before the first was
        taken out) stays out until its first time, for the later reason: the second
        request brings no newer news."""
        old = self._out.get(name)
        if old is not None and now < old.until and old.stamp == outage.stamp:
            outage = dataclasses.replace(outage, until=old.until)
        self._out[name] = outage

    def current(self, name: str, now: float) -> Outage | None:
        """``name``'s outage while it lasts (its files aside: the caller looks at them)."""
        out = self._out.get(name)
        return out if out is not None and now < out.until else None

    def loaded(self, name: str) -> None:
        """``name``'s load worked: a failed load's outage is over (one a request's failure
        set is not: a remote model "loads" with nothing to load)."""
        if (out := self._out.get(name)) is not None and out.load_failed:
            del self._out[name]

    def to_check(self, now: float, available: list[str]) -> list[str]:
        """The models out (and not in ``available``) to look at now: those whose time is
        up, and those whose load failed (a stat: their files may have been replaced)."""
        return [
            n
            for n, out in self._out.items()
            if n not in available and (now >= out.until or out.load_failed)
        ]

    def forget_ended(self, now: float) -> None:
        """Drop the outages whose time is up: each was looked at once (``to_check``);
        one still unavailable is looked at again with the others a minute on, not at
        every call."""
        self._out = {n: out for n, out in self._out.items() if now < out.until}
