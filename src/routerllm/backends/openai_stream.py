"""An OpenAI-compatible server's streamed answer (``"stream": true``): its server-sent
events read into the pieces of text as they come and, at ``[DONE]``, the completion the
unstreamed answer would have been (its text, finish reason and ``usage``), which the
backend reads as it reads that one (``openai_answer``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from routerllm.backends.http_transport import Malformed
from routerllm.backends.openai_answer import without_lone_surrogates
from routerllm.checks import json_kind

DONE = "[DONE]"


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Each server-sent event's data (its ``data:`` lines joined by new lines), as the
    event stream format says: comments (``: keep-alive``) and other fields passed over,
    an event ended by an empty line, or by the body's end."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data:  # an end without its empty line (a server's last event): a whole line came
        yield "\n".join(data)


class StreamError(Exception):
    """An error the server sent as an event of its stream (OpenAI's and vLLM's error
    objects): ``payload`` is the event, ``message`` what it says."""

    def __init__(self, payload: dict[str, Any], message: str) -> None:
        super().__init__(message)
        self.payload, self.message = payload, message


class StreamedAnswer:
    """A streamed answer read event by event (``take``): the text of its first choice
    (a chat request's ``delta.content``, a raw one's ``text``), its finish reason and
    the last ``usage`` it sent; ``done`` once ``[DONE]`` came. ``pieces``: how many of
    its chunks carried text, which counts its tokens where it sent no ``usage`` (a
    server sends about one token a chunk; a proxy may join them)."""

    def __init__(self, raw: bool) -> None:
        self.raw = raw
        self.text: list[str] = []
        self.pieces = 0
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.error: Any = None  # a failed generation's (finish reason "error"), where said
        self.chosen = False  # whether a chunk of the first choice came
        self.done = False

    def take(self, data: str) -> str:
        """The text the event ``data`` adds to the answer ("" where none); ``StreamError``
        where it is an error, ``Malformed`` where it is no chunk."""
        if data == DONE:
            self.done = True
            return ""
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise Malformed(f"a chunk of its stream is not JSON ({str(e)[:100]})") from None
        if not isinstance(chunk, dict):
            raise Malformed(f"a chunk of its stream is {json_kind(chunk)}, not an object")
        choices = chunk.get("choices")
        if choices is None and (chunk.get("error") is not None or chunk.get("object") == "error"):
            error = chunk.get("error", chunk)  # OpenAI's {"error": {...}}, vLLM's own fields
            said = error.get("message", error) if isinstance(error, dict) else error
            raise StreamError(chunk, str(said))
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        if chunk.get("error") is not None:  # OpenRouter's, with finish reason "error"
            self.error = chunk["error"]
        if not choices:  # the usage chunk's [], another field's chunk
            return ""
        if not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise Malformed(f"a chunk of its stream has 'choices' {json_kind(choices)}")
        choice = choices[0]
        if choice.get("index", 0) != 0:  # another choice's: only the first is the answer
            return ""
        self.chosen = True
        if (finish := choice.get("finish_reason")) is not None:
            if not isinstance(finish, str):
                raise Malformed(f"a chunk of its stream has finish_reason {json_kind(finish)}")
            self.finish_reason = finish
        self.error = choice.get("error", self.error)
        piece = self._piece(choice)
        self.text.append(piece)
        if piece:  # not the role's empty chunk, nor the finish reason's
            self.pieces += 1
        return piece

    def _piece(self, choice: dict[str, Any]) -> str:
        if self.raw:
            piece = choice.get("text")
        else:
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise Malformed(f"a chunk of its stream has 'delta' {json_kind(delta)}")
            # OpenAI's refusal comes as its own text: it is the answer's, as unstreamed
            piece = delta.get("content") or delta.get("refusal")
        if piece is None:
            return ""
        if not isinstance(piece, str):
            raise Malformed(f"a chunk of its stream has text {json_kind(piece)}")
        # each piece's own: a piece given on may not carry half of a surrogate pair
        return without_lone_surrogates(piece)

    def completion(self) -> dict[str, Any]:
        """The answer as the unstreamed completion it stands for: without choices where
        no chunk of one came and it was not cancelled (a [DONE] alone is no answer)."""
        text = "".join(self.text)
        said: dict[str, Any] = {"text": text} if self.raw else {"message": {"content": text}}
        choice = {**said, "finish_reason": self.finish_reason}
        if self.error is not None:
            choice["error"] = self.error
        chosen = self.chosen or self.finish_reason is not None
        out: dict[str, Any] = {"choices": [choice] if chosen else []}
        if self.usage is not None:
            out["usage"] = self.usage
        return out
