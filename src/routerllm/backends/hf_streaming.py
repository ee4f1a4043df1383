"""A transformers model's answer streamed as it is generated: the answer so far decoded as
its final text is, less what a later token may still change, after each token while the
answer is short and less often as it grows, so that the decoding costs each token about
the same whatever the answer's length."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routerllm.backends.stops import LiveText

# The answer so far is decoded again after one new token per DECODE_SPAN tokens it holds
# (each token up to 2 * DECODE_SPAN - 1, every 8th at 2,048): decoding n tokens costs about
# n times one token's, so the decodings cost each token about what decoding DECODE_SPAN
# tokens does, however long the answer (measured in the README's Streaming bullet).
DECODE_SPAN = 256


def cleans_spaces(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` decodes with its spaces cleaned up ("a ' s" read "a's", " ."
    "."): transformers' ``clean_up_tokenization_spaces``, or its decoder's own clean-up
    (WordPiece's). A later token may then take back a space already decoded."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    return bool(getattr(tokenizer, "clean_up_tokenization_spaces", False)) or (
        "cleanup=True" in repr(decoder)
    )


def lasting_text(text: str, cleans: bool) -> str:
    """The start of ``text``, the answer so far decoded, that the whole answer's decoding
    keeps: less the replacement characters at its end (the first bytes of a character
    whose last ones are to come), and where decoding ``cleans`` up spaces, less its last
    two words and the spaces before each: the clean-up takes back the space before a
    " 's", " .", " n't" that later tokens write, and "do n ' t" reads "don't" (" ' " made
    "'", then " n't" "n't")."""
    text = text.rstrip("\ufffd")
    return _less_last_words(text, 2) if cleans else text


def _less_last_words(text: str, n: int) -> str:
    """``text`` less its trailing whitespace and its last ``n`` words with the whitespace
    before each (those with whitespace before them): read from the end, so that it costs
    the length of what it leaves out."""
    cut = len(text)
    while cut > 0 and text[cut - 1].isspace():
        cut -= 1
    for _ in range(n):
        i = cut
        while i > 0 and not text[i - 1].isspace():
            i -= 1
        if i == 0:  # no whitespace before the word: no space there to take back
            break
        while i > 0 and text[i - 1].isspace():
            i -= 1
        cut = i
    return text[:cut]


class LiveDecoding:
    """A check run after each new token (a stopping criterion that never stops): the
    answer so far, ``text(input_ids)`` as its final text is decoded (its tokens those
    after the prompt's ``n_prompt``), to ``live``, which holds back what may begin a stop
    sequence; decoded as often as :data:`DECODE_SPAN` says. The rest of the answer is the
    caller's to give (``GenerationRequest.on_text``)."""

    def __init__(
        self, live: LiveText, text: Callable[[Any], str], cleans: bool, n_prompt: int
    ) -> None:
        self.live, self.text, self.cleans = live, text, cleans
        self.decoded = self.n_prompt = n_prompt  # the tokens there at the last decoding

    def __call__(self, input_ids: Any) -> bool:
        n = int(input_ids.shape[-1])
        if n - self.decoded >= max(1, (n - self.n_prompt) // DECODE_SPAN):
            self.live.show(lasting_text(self.text(input_ids), self.cleans))
            self.decoded = n
        return False
