"""The seeds' synthetic routing dataset: templated prompts in the four router classes.

Each class (``CLASS_NAMES``: code generation, text generation, general purpose,
lightweight) has many templates whose ``{slots}`` are filled from shared
vocabularies (languages, tasks, topics, units...), then wrapped in natural
modifiers (context, politeness, urgency, casual typing) so prompts do not all
look alike. :func:`generate` is balanced, deduplicated and seeded;
:func:`split` is stratified and keeps near-duplicates in one split, so
:func:`check_leakage` finds nothing across train/val/test.
"""

from __future__ import annotations

import itertools
import math
import re
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import (
    MAX_SEED,
    is_integer,
    is_non_negative_number,
    is_seed,
    list_of,
)
from routerllm.data import as_path
from routerllm.data.labeled import (
    CLASS_NAMES,
    NUM_CLASSES,
    SPLIT_FILES,
    LabeledPrompt,
    refuse_replacing_splits,
    save_splits,
)
from routerllm.data.synthetic_vocab import (
    CONTEXT_PREFIXES,
    IMPERATIVE_VERBS,
    POLITE_PREFIXES,
    SUFFIXES,
    TEMPLATE_TEXTS,
    VOCAB,
)
from routerllm.exceptions import DataError

SOURCE = "synthetic"
#: How often a rendering takes a polite prefix (imperative templates only), a context
#: prefix, a suffix.
POLITE_SHARE, CONTEXT_SHARE, SUFFIX_SHARE = 0.3, 0.25, 0.35
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Template:
    """A prompt pattern with ``{slot}`` fields filled from :data:`VOCAB`."""

    pattern: str
    label: int
    slots: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        slots = tuple(f for _, f, _, _ in string.Formatter().parse(self.pattern) if f)
        if missing := [s for s in slots if s not in VOCAB]:
            raise DataError(f"template {self.pattern!r}: unknown slots {missing}")
        object.__setattr__(self, "slots", slots)

    @property
    def imperative(self) -> bool:
        return self.pattern.split(maxsplit=1)[0].lower() in IMPERATIVE_VERBS

    @property
    def capacity(self) -> int:
        """Distinct fillings (before modifiers)."""
        return math.prod(len(VOCAB[s]) for s in self.slots)


TEMPLATES: dict[int, tuple[Template, ...]] = {
    label: tuple(Template(line.strip(), label) for line in block.splitlines() if line.strip())
    for label, block in TEMPLATE_TEXTS.items()
}


def near_duplicate_key(text: str) -> str:
    """Text compared for near-duplicates: in one Unicode form (NFKC: a composed "é" or
    "e" and a combining accent, full-width letters alike), case-folded, punctuation and
    whitespace removed (but not the ``+`` or ``#`` that ends a word: "C++" and "C#" are
    two languages)."""
    return "".join(_words(text))


def _words(text: str) -> tuple[str, ...]:
    # casefold after NFKC, then NFKC again: casefolding may undo the normal form
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return tuple(re.findall(r"[^\W_]+(?:\++|#)?", folded))


# The modifiers _render wraps a request in, as words, longest first (so "could you
# please" is taken whole, not as "could you"), in the order they are taken off.
_MODIFIER_WORDS = tuple(
    sorted({_words(m) for m in modifiers}, key=len, reverse=True)
    for modifiers in (CONTEXT_PREFIXES, [p for p, _ in POLITE_PREFIXES], SUFFIXES)
)


def request_key(text: str) -> str:
    """:func:`near_duplicate_key` of the request without the generator's modifiers
    (a context, politeness, a suffix): "Hi! Could you explain entropy? Thanks!" and
    "Explain entropy." are one request, which :func:`split` keeps in one split."""
    words = _words(text)
    for at_start, options in zip((True, True, False), _MODIFIER_WORDS, strict=True):
        for option in options:
            if len(option) < len(words) and (
                words[: len(option)] == option if at_start else words[-len(option) :] == option
            ):
                words = words[len(option) :] if at_start else words[: -len(option)]
                break
    return "".join(words)


def _rng(seed: Any) -> np.random.Generator:
    """The generator ``seed`` stands for (an integer seed or a Generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if not is_seed(seed):
        raise DataError(
            f"seed must be an integer in 0..{MAX_SEED} or a numpy Generator, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _check_templates(templates: Any) -> None:
    if not isinstance(templates, Mapping) or not all(
        isinstance(bank, Sequence) and all(isinstance(t, Template) for t in bank)
        for bank in templates.values()
    ):
        raise DataError(
            f"templates must map each class label to a list of Template objects, got {templates!r}"[
                :300
            ]
        )


def _check_fractions(fractions: Any) -> list[float]:
    """The three split fractions; a clear error unless they are three finite numbers
    >= 0 that sum to 1."""
    iterable = isinstance(fractions, Iterable) and not isinstance(fractions, str | bytes)
    values = list(fractions) if iterable else []
    if (
        len(values) != 3
        or not all(is_non_negative_number(f) for f in values)
        or abs(sum(values) - 1) > 1e-6
    ):
        raise DataError(f"fractions must be three non-negative numbers summing to 1: {fractions!r}")
    return [float(f) for f in values]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _lower_first(text: str) -> str:
    if text[:2] in ("I ", "I'") or (len(text) > 1 and text[1].isupper()):
        return text  # "I need..." and acronyms such as "SQL" keep their case
    return text[:1].lower() + text[1:]


def _render(template: Template, rng: np.random.Generator, modifiers: bool) -> str:
    text = template.pattern.format(**{s: _pick(rng, VOCAB[s]) for s in template.slots})
    if not modifiers:
        return text
    if template.imperative and rng.random() < POLITE_SHARE:
        prefix, question = POLITE_PREFIXES[int(rng.integers(len(POLITE_PREFIXES)))]
        text = prefix + _lower_first(text)
        if question and text.endswith("."):
            text = text[:-1] + "?"
    if rng.random() < CONTEXT_SHARE:
        text = f"{_pick(rng, CONTEXT_PREFIXES)} {text}"
    if rng.random() < SUFFIX_SHARE:
        text = f"{text} {_pick(rng, SUFFIXES)}"
    if rng.random() < 0.1:  # casual typing: lower case, no final full stop
        text = text.lower().rstrip(".")
    return text


def _capacity(templates: Sequence[Template], modifiers: bool) -> int:
    """An upper bound on the distinct prompts the templates can produce."""
    base = sum(t.capacity for t in templates)
    if not modifiers:
        return base
    return base * (len(POLITE_PREFIXES) + 1) * (len(CONTEXT_PREFIXES) + 1) * (len(SUFFIXES) + 1)


def _reachable(templates: Sequence[Template], modifiers: bool, tries: int) -> float:
    """The expected number of distinct prompts ``tries`` renderings give, shared
    near-duplicates aside. Far below :func:`_capacity` for large ``tries``: most
    renderings take a common template's plain form, a rare combination of modifiers
    may never come."""
    reachable = 0.0
    for t in templates:
        polite = [(1, 1.0)]
        if modifiers and t.imperative:
            polite = [(1, 1 - POLITE_SHARE), (len(POLITE_PREFIXES), POLITE_SHARE)]
        # (how many variants, the chance of each) for the context and the suffix
        context = [(1, 1 - CONTEXT_SHARE), (len(CONTEXT_PREFIXES), CONTEXT_SHARE)]
        suffix = [(1, 1 - SUFFIX_SHARE), (len(SUFFIXES), SUFFIX_SHARE)]
        extras = [context, suffix] if modifiers else []
        for combination in itertools.product(polite, *extras):
            variants = t.capacity * math.prod(n for n, _ in combination)
            chance = math.prod(share for _, share in combination) / len(templates) / variants
            reachable += variants * -math.expm1(-tries * chance)
    return reachable


def _tries(want: int) -> int:
    """How many renderings :func:`generate` tries for ``want`` unique prompts of a class."""
    return 50 * want + 1000


def generate(
    n: int = 10_000,
    seed: int | np.random.Generator = 0,
    *,
    templates: Mapping[int, Sequence[Template]] | None = None,
    modifiers: bool = True,
) -> list[LabeledPrompt]:
    """``n`` unique prompts, ``n // 4`` per class (the first ``n % 4`` classes get one more).

    No two prompts share a :func:`near_duplicate_key`. Raises :class:`DataError`
    when the templates cannot produce that many unique prompts.
    """
    if not is_integer(n) or n < 0:
        raise DataError(f"n must be an integer >= 0, got {n!r}")
    rng = _rng(seed)
    templates = TEMPLATES if templates is None else templates
    _check_templates(templates)
    wants = [n // NUM_CLASSES + (label < n % NUM_CLASSES) for label in range(NUM_CLASSES)]
    for label, want in enumerate(wants):  # every class before any work: minutes for large n
        bank = list(templates.get(label, ()))
        most = min(_capacity(bank, modifiers), round(_reachable(bank, modifiers, _tries(want))))
        if want and most < want:
            raise DataError(
                f"the templates of class {label} ({CLASS_NAMES[label]}) cannot produce {want} "
                f"unique prompts (about {most:,} in the {_tries(want):,} tries it makes); lower "
                f"n or add templates"
            )
    items: list[LabeledPrompt] = []
    seen: set[str] = set()
    for label, want in enumerate(wants):
        bank = list(templates.get(label, ()))
        got, attempts = 0, 0
        while got < want:
            if attempts >= _tries(want):
                raise DataError(
                    f"the templates of class {label} ({CLASS_NAMES[label]}) produced only {got} "
                    f"unique prompts of the {want} asked for; lower n or add templates"
                )
            attempts += 1
            text = _render(bank[int(rng.integers(len(bank)))], rng, modifiers)
            key = near_duplicate_key(text)
            if key in seen:
                continue
            seen.add(key)
            items.append(LabeledPrompt(text, label, CLASS_NAMES[label], SOURCE))
            got += 1
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def _split_counts(
    size: int, fractions: Sequence[float], behind: Sequence[float] | None = None
) -> list[int]:
    """Counts that sum to ``size``, each ``size * fraction`` rounded down or up: the
    ones rounded up are those furthest below their share of all the items split so
    far, this class's included (``behind``: ``counts given - share``, from the classes
    already split), so that the totals follow ``fractions`` too. Without ``behind``,
    largest-remainder rounding. Ranked by the remainder alone, every class of 2 at
    70/15/15 sent its 0.4 to train, never its 0.3 to val or test: 7 prompts split 7/0/0."""
    raw = [size * f for f in fractions]
    counts = [math.floor(r + 1e-9) for r in raw]
    lag = behind if behind is not None else [0.0] * len(raw)
    remainders = [round(r - c, 9) for r, c in zip(raw, counts, strict=True)]
    # a whole share (remainder 0) is never rounded up, however far behind its split is
    by_deficit = sorted(
        range(len(raw)), key=lambda i: (not remainders[i], -round(remainders[i] - lag[i], 9), i)
    )
    for i in by_deficit[: size - sum(counts)]:
        counts[i] += 1
    return counts


def split(
    items: Sequence[LabeledPrompt],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int | np.random.Generator = 0,
) -> tuple[list[LabeledPrompt], list[LabeledPrompt], list[LabeledPrompt]]:
    """Stratified train/val/test split in which near-duplicates never cross splits.

    Items with the same :func:`request_key` (the same request, up to case,
    punctuation and the generator's modifiers) form one group, placed whole in one
    split (stratified by the label of its first item). With no
    near-duplicates each class is split exactly by largest-remainder rounding
    (10,000 balanced items -> 7,000/1,500/1,500).
    """
    fractions = _check_fractions(fractions)
    items = list_of(items, LabeledPrompt, "items", DataError)
    rng = _rng(seed)
    groups: dict[str, list[LabeledPrompt]] = {}
    for item in items:
        groups.setdefault(request_key(item.text), []).append(item)
    by_label: dict[int, list[list[LabeledPrompt]]] = {}
    for group in groups.values():
        by_label.setdefault(group[0].label, []).append(group)
    parts: tuple[list[LabeledPrompt], ...] = ([], [], [])
    seen = 0
    for label in sorted(by_label):
        label_groups = by_label[label]
        order = rng.permutation(len(label_groups))
        # Big groups first, so the small ones can even out the counts afterwards.
        shuffled = sorted((label_groups[i] for i in order), key=len, reverse=True)
        size = sum(len(g) for g in shuffled)
        behind = [len(parts[j]) - seen * fractions[j] for j in range(3)]
        targets = _split_counts(size, fractions, behind)
        seen += size
        for group in shuffled:
            k = max(range(3), key=lambda j: (targets[j], -j))
            parts[k].extend(group)
            targets[k] -= len(group)
    train, val, test = ([part[i] for i in rng.permutation(len(part))] for part in parts)
    return train, val, test


@dataclass(frozen=True)
class LeakageReport:
    """Texts shared across splits: ``exact`` (split, split, text) and ``near``
    (split, split, text in the first, text in the second)."""

    exact: list[tuple[str, str, str]]
    near: list[tuple[str, str, str, str]]

    @property
    def ok(self) -> bool:
        return not self.exact and not self.near

    def __str__(self) -> str:
        return f"{len(self.exact)} exact and {len(self.near)} near duplicates across splits"


def check_leakage(
    train: Sequence[LabeledPrompt], val: Sequence[LabeledPrompt], test: Sequence[LabeledPrompt]
) -> LeakageReport:
    """Report prompts of one split that reappear, exactly or nearly (the same
    :func:`request_key`), in another."""
    named = {
        name: list_of(part, LabeledPrompt, name, DataError)
        for name, part in zip(SPLIT_NAMES, (train, val, test), strict=True)
    }
    exact: list[tuple[str, str, str]] = []
    near: list[tuple[str, str, str, str]] = []
    for i, a in enumerate(SPLIT_NAMES):
        keys_a: dict[str, set[str]] = {}
        for item in named[a]:
            keys_a.setdefault(request_key(item.text), set()).add(item.text)
        for b in SPLIT_NAMES[i + 1 :]:
            for text_b in sorted({item.text for item in named[b]}):
                for text_a in sorted(keys_a.get(request_key(text_b), ())):
                    if text_a == text_b:
                        exact.append((a, b, text_a))
                    else:
                        near.append((a, b, text_a, text_b))
    return LeakageReport(exact, near)


#: The fewest prompts :func:`write_dataset` (and ``generate-data --n``) writes: 10 per
#: class, so that every split of the default 70/15/15 holds every class.
MIN_DATASET_SIZE = 10 * NUM_CLASSES


@dataclass(frozen=True)
class WrittenDataset:
    """Where :func:`write_dataset` put each file, and how many prompts it holds."""

    paths: dict[str, Path]
    counts: dict[str, int]


def write_dataset(
    out_dir: str | Path,
    n: int = 10_000,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    *,
    overwrite: bool = False,
) -> WrittenDataset:
    """Generate, split and write ``full/train/val/test.json`` (LabeledPrompt JSON).

    Split files already in ``out_dir`` (perhaps the user's own) are replaced only
    with ``overwrite=True``; otherwise :class:`DataError`, before any work."""
    out = as_path(out_dir, "the dataset folder")
    refuse_replacing_splits(out, overwrite)
    if not is_integer(n) or n < MIN_DATASET_SIZE:
        raise DataError(
            f"n must be an integer >= {MIN_DATASET_SIZE} so that every split holds every "
            f"class, got {n!r}"
        )
    full = generate(n, seed)
    train, val, test = split(full, fractions, seed)
    report = check_leakage(train, val, test)
    if not report.ok:  # split() groups near-duplicates, so this is a bug if it happens
        raise DataError(f"split leaked prompts: {report}")
    parts = dict(zip(SPLIT_FILES, (full, train, val, test), strict=True))
    paths = save_splits(parts, out)  # all four or none: never new splits beside old ones
    return WrittenDataset(paths, {name: len(part) for name, part in parts.items()})
