"""Text from elsewhere (a server's, a model's) quoted safely: on one line, each control
character shown as its escape. Apart from ``http_transport`` (which quotes a server's
errors with it) so that a command printing an answer (``routerllm route``) reads it
without importing HTTP, TLS and e-mail parsing it does not use."""

from __future__ import annotations

import re

#: What a quoted text must not carry as is: C0 and C1 control characters (a terminal's
#: escape sequences among them) and the bidirectional overrides, which reorder a line.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """``text`` on one line, each control character shown as its escape (``\\x1b``): a
    server's text is quoted in errors and logs, where a terminal's escape sequence would
    act (clear the screen, retitle the window) and a NUL cut the line."""
    return CONTROL_CHARACTERS.sub(lambda m: ascii(m.group())[1:-1], " ".join(text.split()))
