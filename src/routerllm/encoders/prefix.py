"""Tokenize only the part of a long text that a transformer encoder keeps.

The transformer encoders keep a text's first few hundred tokens, but a tokenizer reads
all of the text first (about 1 µs a character: a 1 MB prompt took a second and tens of
MB to keep 256 tokens). :class:`PrefixCutter` finds a prefix of the text whose
tokenization, truncated the same way, gives the same token ids as the whole text's:
it tokenizes a prefix, doubling it until it holds enough tokens of *settled* words.

A word is settled when more text cannot change its tokens: every word of the prefix
but its last (which may be a word cut in two; WordPiece makes a word over 100
characters one [UNK], so a cut one would differ), as the tokenizer's own
pre-tokenizer splits words, and none near the cut, where a special token such as
``[MASK]`` may have been cut in two. The cut itself may fall anywhere: the tokenizer
says where words end.

A word with no end (a text with no space for megabytes) would have the whole text
read. For the WordPiece tokenizers of BERT (MiniLM's included) such a word is one
[UNK] however long it is: the middle of a long run of letters or digits, or of
spaces, is dropped before it is tokenized (the tokens are the same), so any text
costs a bounded prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

#: Characters of text per token a first prefix holds (English is ~4.5 with WordPiece).
CHARS_PER_TOKEN = 8
#: Characters no BERT tokenizer splits a word at nor removes: letters and digits but
#: the underscore (punctuation to BERT) and CJK ideographs (each a word to BERT).
_WORD_CHARS = "[^\\W_\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]"
_WORD_RUN = re.compile(f"{_WORD_CHARS}+")
#: Whitespace BERT takes as one space, however many.
_SPACE_RUN = re.compile("[ \t\n\r]+")


class PrefixCutter:
    """Cuts texts to prefixes whose tokens, truncated to ``max_tokens``, are the whole
    texts' own (see the module docstring).

    ``tokenizer`` is a ``tokenizers.Tokenizer`` (a fast transformers tokenizer's
    ``backend_tokenizer``); a copy of it without truncation or padding is used, so the
    caller's own settings are left as they are."""

    def __init__(self, tokenizer: Any, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_tokens = max_tokens
        #: A text of at most this many characters is tokenized whole.
        self.first_chars = CHARS_PER_TOKEN * max_tokens
        added = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
        #: Tokens this close to the cut may be a special token cut in two.
        self._margin = max(map(len, added), default=0)
        self._word_limit = _bert_word_limit(self._tokenizer, added)

    def cut(self, texts: Sequence[str]) -> list[str]:
        """Each text, or a prefix of it (a long run in it shortened, for BERT) that the
        tokenizer, truncating at ``max_tokens``, turns into the same token ids."""
        out = list(texts)
        todo = [i for i, text in enumerate(out) if len(text) > self.first_chars]
        size = self.first_chars
        while todo:
            prefixes: dict[int, str] = {}
            for i in todo:
                if self._word_limit is not None:
                    out[i] = _shorten_run_at(out[i], size, self._word_limit)
                if len(out[i]) > size:
                    prefixes[i] = out[i][:size]
            encodings = self._tokenizer.encode_batch(
                list(prefixes.values()), add_special_tokens=False
            )
            todo = []
            for (i, prefix), encoding in zip(prefixes.items(), encodings, strict=True):
                if self._settled_tokens(encoding, size) >= self.max_tokens:
                    out[i] = prefix
                else:
                    todo.append(i)
            size *= 2
        return out

    def settled_tokens(self, prefix: str) -> int:
        """How many of the first tokens of ``prefix`` (special tokens not added) every
        text that starts with ``prefix`` has too."""
        return self._settled_tokens(
            self._tokenizer.encode(prefix, add_special_tokens=False), len(prefix)
        )

    def _settled_tokens(self, encoding: Any, size: int) -> int:
        """Tokens of the prefix that more text cannot change (a count from the start):
        those of its words before its last, and before any special token cut in two
        (whose word before, ending a part of the text, may also differ)."""
        words = encoding.word_ids
        if not words:
            return 0
        zone = size - self._margin  # where a special token cut in two may start
        ends: dict[int, int] = {}
        for word, (_, stop) in zip(words, encoding.offsets, strict=True):
            if word is not None:
                ends[word] = max(ends.get(word, 0), stop)
        for n, word in enumerate(words):
            if word is None or word == words[-1] or ends[word] >= zone:
                return n
        return len(words)


def _bert_word_limit(tokenizer: Any, added: list[str]) -> int | None:
    """The characters past which a word is one [UNK], for a BERT WordPiece tokenizer
    (its normalizer, if any, and pre-tokenizer BERT's); None for any other, and for one
    with an added token a shortened run could make or unmake (one that starts or ends
    with a letter or digit, or holds a space: ``[MASK]`` cannot)."""
    from tokenizers import models, normalizers, pre_tokenizers

    model, normalizer = tokenizer.model, tokenizer.normalizer
    if not isinstance(model, models.WordPiece):
        return None
    if not isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer):
        return None
    if not (normalizer is None or isinstance(normalizer, normalizers.BertNormalizer)):
        return None
    limit = int(model.max_input_chars_per_word)
    for content in added:
        if not content or len(content) > limit or _SPACE_RUN.search(content):
            return None
        if _WORD_RUN.match(content[0]) or _WORD_RUN.match(content[-1]):
            return None
    return limit


def _shorten_run_at(text: str, at: int, word_limit: int) -> str:
    """``text`` with the rest of the run of word characters (or of whitespace) that
    ``at`` falls in dropped, where what is left before ``at`` keeps it a word over
    ``word_limit`` characters (an [UNK] all the same) or a space: to BERT's WordPiece
    the same tokens."""
    if not 0 < at < len(text):
        return text
    spaces = _SPACE_RUN.match(text, at)
    if spaces is not None:
        return text[:at] + text[spaces.end() :] if _SPACE_RUN.match(text, at - 1) else text
    run = _WORD_RUN.match(text, at)
    if run is None or at <= word_limit:
        return text
    before = _WORD_RUN.match(text, at - word_limit - 1)
    if before is None or before.end() <= at:  # a shorter word: its tokens are its own
        return text
    return text[:at] + text[run.end() :]
