"""An HTTP answer's body decoded from its ``Content-Encoding`` as it comes: gzip and
deflate, never inflated beyond a limit (a gzip bomb is refused, not held in memory)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any


class Undecodable(Exception):
    """The answer came, but in a coding not decoded here, or not valid in its own."""


class ContentDecoder:
    """An answer's body decoded from its ``Content-Encoding`` as it comes, chunk by chunk:
    gzip and deflate (zlib's, or raw as some servers send it), at most ``limit`` bytes
    of it decoded, so that a gzip bomb is never inflated beyond that. A proxy may
    compress what was asked as ``identity``; another coding (br, zstd) is ``Undecodable``."""

    def __init__(self, coding: str | None, limit: int) -> None:
        codings = [c.strip().lower() for c in (coding or "").split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        if coding and (len(codings) > 1 or (codings and codings[0] not in DECODED)):
            raise Undecodable(  # ascii(): a server's text, its control characters escaped
                f"its answer is compressed as {ascii(coding[:60])} (Content-"
                f"Encoding), which is not decoded here (only gzip and deflate are): have "
                f"the server or proxy send it as gzip or uncompressed"
            )
        self.coding = codings[0] if codings else None
        self.limit = limit
        self.size = 0  # decoded bytes so far
        self.over = False  # more than ``limit`` decoded: what is over is not returned
        self._inflate: Any = None  # made on the first two bytes, which tell deflate's kind
        self._head = b""  # the first byte, where it came alone (a chunk of one byte)

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of ``data``, the next bytes of the body."""
        out = data if self.coding is None else self._decoded(data)
        out = out[: self.limit - self.size + 1]  # one byte over says it is over
        self.size += len(out)
        if self.size > self.limit:
            self.over = True
            return out[:-1]
        return out

    def _decoded(self, data: bytes) -> bytes:
        room = self.limit - self.size + 1  # max_length: never inflated beyond the limit
        if self._inflate is None:
            data, self._head = self._head + data, b""
            if len(data) < 2:  # a zlib header's two bytes not both there yet
                self._head = data
                return b""
        try:
            if self._inflate is None:
                self._inflate = zlib.decompressobj(DECODED[str(self.coding)](data))
            out = self._inflate.decompress(data, room)
            # gzip may be several members one after the other (RFC 1952)
            while self._inflate.eof and self._inflate.unused_data and len(out) < room:
                rest = self._inflate.unused_data
                self._inflate = zlib.decompressobj(DECODED[str(self.coding)](rest))
                out += self._inflate.decompress(rest, room - len(out))
        except zlib.error as e:
            raise Undecodable(f"its answer is not valid {self.coding} ({e})") from None
        return bytes(out)

    def end(self) -> None:
        """``Undecodable`` where the compressed data stopped before its end."""
        if self._inflate is not None and not self._inflate.eof and not self.over:
            raise Undecodable(f"its answer's {self.coding} data ends before its end")
        if self._head:  # one byte: no gzip or deflate data is so short
            raise Undecodable(f"its answer's {self.coding} data ends before its end")
        if self.coding is not None and self._inflate is None:
            raise Undecodable(f"its answer is empty, though sent as {self.coding}")


def _deflate_bits(first: bytes) -> int:
    """zlib's ``wbits`` for HTTP's deflate: zlib's format as RFC 9110 says, or raw deflate
    as some servers send it (its first two bytes are no zlib header)."""
    zlib_header = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0  # fmt: skip
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


#: The codings decoded, and zlib's ``wbits`` for each given the body's first bytes.
DECODED: dict[str, Callable[[bytes], int]] = {
    "gzip": lambda first: 16 + zlib.MAX_WBITS,
    "x-gzip": lambda first: 16 + zlib.MAX_WBITS,  # RFC 9110: to be taken as gzip
    "deflate": _deflate_bits,
}
