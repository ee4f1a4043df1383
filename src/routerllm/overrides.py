"""Override rules: what an operator decides whatever the router says (``overrides`` in
the config, MISSION M3.8's flexible mapping).

A router predicts; some requests are a policy matter: legal questions always go to
the largest model, very long prompts one model up, greetings to the smallest. Each
rule has conditions on the prompt (a regular expression, a length, whether it asks
for a calculation) and one action (a model, a tier, or a step up or down the
ladder). Rules are tried in order and the first whose conditions all hold decides;
they apply to routed requests only (a model the caller names is kept), before the
budgets, which may still step a request down. The decision's reason names the rule.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from routerllm.config import AppConfig, OverrideRule
from routerllm.routers.base import RoutingDecision

log = logging.getLogger(__name__)

#: A calculation asked in words, or written out: the seed's "math detection". A
#: heuristic: "compute the sum of a list" in a code request counts too; combine it
#: with a pattern where that matters. Whole words, each in its inflections: a bare
#: prefix found "solvent" and "solvency", and missed "probabilities" and "solving".
#: English, then Italian, Spanish, German, French and Portuguese (the words a user asks
#: with, in the forms a request takes), then Chinese and Japanese, which have no spaces
#: to find a word by, then Korean, found by a word's start as its endings follow
#: (확률은) (README "Override rules"; ``benchmarks/multilingual_routing.py``).
MATH_WORDS = re.compile(
    r"\b(calculat(e|es|ed|ing)|solv(e|es|ed|ing)|equations?|integrals?|"
    r"integrat(e|es|ed|ing)|derivatives?|differentiat(e|es|ed|ing)|probabilit(y|ies)|"
    r"square\s+roots?|factorials?|modulo|prime\s+factori[sz]ations?|"
    r"calcol(a|are|ate)|risolv(i|ere|ete)|equazion[ei]|integral[ei]|derivat[ae]|"
    r"probabilità|radice\s+quadrata|fattoriale|"
    r"calcul(a|ar|e|en)|resuelv(e|a|an)|resolver|ecuaci(ón|ones)|integral(es)?|"
    r"derivadas?|probabilidad(es)?|raíz\s+cuadrada|"
    r"berechne(n|t)?|löse|lösen|gleichung(en)?|integrale?|ableitung(en)?|"
    r"wahrscheinlichkeit(en)?|quadratwurzel|"
    r"calcul(e|er|ez)|résou(s|dre)|résolvez|équations?|intégrales?|dérivées?|"
    r"probabilités?|racine\s+carrée|factorielle|"
    r"resolva|equaç(ão|ões)|probabilidades?|raiz\s+quadrada|fatorial)\b"
    r"|计算(?!机)|方程|积分|导数|求导|概率|平方根|阶乘"  # 计算机 is a computer
    r"|計算(?![機量])|積分|微分|導関数|確率|階乗"  # 計算機 a computer, 計算量 complexity
    r"|(?<![\uac00-\ud7af])(계산|방정식|적분|미분|도함수|확률|제곱근|팩토리얼)",
    re.IGNORECASE,
)
MATH_EXPRESSION = re.compile(
    r"\d\s*[+*÷^]\s*\(?-?\d"  # 12 * 7, 3^2, 4+5
    r"|\d\s+[-/×]\s+\(?-?\d"  # 9 - 4, 10 / 2, 3 × 4 (spaced: not 2024-12, 12/25, 1920×1080)
    # 12 plus 7, and 12plus 7 or 12plus7 as 12*7 is unspaced; a number of its own, not
    # the end of a name (a1plus 2, S10plus 2). Then Italian, Spanish, German, French.
    r"|\b\d+\s*(plus|minus|times|multiplied\s+by|divided\s+by|to\s+the\s+power\s+of"
    r"|più|meno|per|diviso(\s+per)?|más|menos|por|entre|dividido\s+(por|entre)"
    r"|mal|geteilt\s+durch|durch|moins|fois|divisé\s+par|vezes|mais)\s*-?\d"
    # Chinese: 12乘以7, 12 加 7; Japanese 12かける7; Korean 12 곱하기 7. A number from its
    # first digit: from each digit of a run, each ran to the run's end then backtracked
    # (200,000 digits took minutes).
    r"|(?<!\d)\d+\s*(加上?|减去?|乘以?|除以|かける|掛ける|足す|引く|割る"
    r"|더하기|빼기|곱하기|나누기)\s*\d"
    r"|\b\d+(\.\d+)?\s*%\s*(of|di|de|von)\b"  # 15 % of (di, de, von)
    r"|[的の의]\s*\d+(\.\d+)?\s*%"  # Chinese 240的15%, Japanese 240の15%, Korean 240의 15%
    r"|\bsqrt\s*\(|\\frac\b|\b[a-z]\s*\^\s*\d",  # sqrt(, \frac, x^2
    re.IGNORECASE,
)
#: Seconds a rule's pattern may take on one prompt: a pattern that backtracks
#: catastrophically (``(a|aa)+$``) gives up instead of holding the server.
PATTERN_TIMEOUT_S = 0.1
#: Seconds all the rules' patterns may take together on one prompt: ten rules that each
#: run out of time would otherwise hold a request for a second each.
PATTERNS_TIMEOUT_S = 0.5


#: The most copies of its parts a rule's pattern may compile to: ``regex`` writes
#: ``x{n}`` out as n copies of x, so ``a{1000000000}`` took every byte of memory as
#: the config loaded (``a{100000}`` takes some 30 MB).
MAX_PATTERN_COPIES = 100_000


#: The ``regex`` whose parser ``pattern_copies`` reads (a private module: constraints.txt)
TESTED_REGEX = "2026.11.19"


def pattern_copies(pattern: str) -> int:
    """How many copies of its parts ``regex`` compiles ``pattern`` to: each character,
    class or group counted once times the smallest count of every repeat around it
    (``(ab){3}c`` is 7). A ``regex.error`` where ``pattern`` is no regular expression.

    ``regex``'s own parser reads the pattern (cheaply: it writes nothing out), so the
    count holds for all of its syntax; a scan of the text was fooled by verbose mode,
    where ``(?x)a{1 0 0 0 0 0}`` is ``a{100000}``."""
    import regex
    from regex import _regex_core as core

    try:
        flags = core.IGNORECASE | core.FULLCASE  # as rule_pattern compiles it
        while True:  # an inline flag mid-pattern (``b(?x)...``) holds for all of it: again
            source = core.Source(pattern)
            info = core.Info(flags, source.char_type)
            source.ignore_space = bool(info.flags & core.VERBOSE)
            try:
                return _copies(core._parse_pattern(source, info))
            except core._UnscopedFlagSet:
                flags = info.global_flags
    except (AttributeError, TypeError) as e:  # a regex whose parser's internals changed
        raise ValueError(
            f"cannot count the copies of pattern {pattern!r} with regex "
            f"{getattr(regex, '__version__', '?')} ({e}); install the version in "
            f"RouterLLM's constraints.txt (pip install 'regex=={TESTED_REGEX}')"
        ) from None


def _copies(node: Any) -> int:
    """The copies of one node of ``regex``'s parse tree: its parts' times its repeat's
    smallest count (a class or a named list is one part)."""
    from regex import _regex_core as core

    if isinstance(node, core.SetBase | core.StringSet):
        return 1
    if isinstance(node, core.String):
        return len(node.characters)
    parts = [
        part
        for value in vars(node).values()
        for part in (value if isinstance(value, list | tuple) else [value])
        if isinstance(part, core.RegexBase)
    ]
    copies = sum(map(_copies, parts)) if parts else 1
    return copies * max(node.min_count, 1) if isinstance(node, core.GreedyRepeat) else copies


def rule_pattern(pattern: str) -> Any:
    """A rule's pattern, compiled (any case) by the ``regex`` module, whose matching
    takes a time limit; ``re``'s cannot be stopped. Cases are folded fully, as Unicode
    folds them: ``straße`` finds ``STRASSE``, ``file`` finds ``ﬁle``. The pattern is
    composed (NFC), as ``Overrides.matching`` composes the prompt it searches."""
    import regex

    return regex.compile(composed(pattern), regex.IGNORECASE | regex.FULLCASE)


def composed(text: str) -> str:
    """``text`` in Unicode's composed form (NFC): "é" one character, not "e" and a
    combining accent, as a macOS file name or some web forms write it (NFD); a pattern
    and a prompt written in two forms did not match."""
    return unicodedata.normalize("NFC", text)


def check_pattern(pattern: str) -> None:
    """A ``ValueError`` (the config's validation error) where ``pattern`` is no regular
    expression, one compiled into over ``MAX_PATTERN_COPIES`` copies of its parts, or
    one nested too deep to compile."""
    import regex

    try:
        if (copies := pattern_copies(pattern)) > MAX_PATTERN_COPIES:
            raise ValueError(
                f"pattern {pattern!r} repeats its parts {copies:,} times, over "
                f"{MAX_PATTERN_COPIES:,} (each repeat is compiled into that many copies); "
                f"use smaller counts, or min_chars for a length"
            )
        rule_pattern(pattern)
    except regex.error as e:
        raise ValueError(f"pattern {pattern!r} is not a regular expression: {e}") from None
    except RecursionError:  # regex parses a group inside a group by recursion
        raise ValueError(
            f"pattern {pattern!r} nests its groups too deep for regex to compile; nest fewer"
        ) from None


def asks_for_math(prompt: str) -> bool:
    """Whether ``prompt`` asks for a calculation (``MATH_WORDS`` or ``MATH_EXPRESSION``)."""
    return bool(MATH_WORDS.search(prompt) or MATH_EXPRESSION.search(prompt))


@dataclass(frozen=True)
class Overrides:
    """The config's override rules, ready to apply to routing decisions."""

    rules: tuple[OverrideRule, ...]
    patterns: tuple[Any, ...]  # regex.Pattern or None, one per rule
    ladder: tuple[str, ...]  # every configured model, smallest first
    tiers: dict[str, str]
    sizes: dict[str, tuple[int, float]]  # each model's place on the ladder (ModelConfig.size)

    @classmethod
    def from_config(cls, config: AppConfig) -> Overrides | None:
        """The config's rules (None where it has none)."""
        if not config.overrides:
            return None
        ladder = config.models_by_size()
        return cls(
            tuple(config.overrides),
            tuple(rule_pattern(r.pattern) if r.pattern else None for r in config.overrides),
            tuple(m.name for m in ladder),
            {m.name: m.tier for m in ladder},
            {m.name: m.size for m in ladder},
        )

    def matching(self, prompt: str) -> tuple[OverrideRule | None, list[str]]:
        """The first rule whose conditions all hold for ``prompt``, and what kept an
        earlier rule from being tried (its pattern ran out of time, or the patterns'
        time together, ``PATTERNS_TIMEOUT_S``: the rules with a pattern after it are not
        tried, those without one still are)."""
        notes: list[str] = []
        untried: list[str] = []  # the rules with a pattern, once the patterns' time ran out
        math: bool | None = None  # asked once, by the first rule with a math condition
        searched = composed(prompt)  # as the patterns are; the lengths are the prompt's own
        deadline = time.monotonic() + PATTERNS_TIMEOUT_S
        for rule, pattern in zip(self.rules, self.patterns, strict=True):
            if rule.math is not None and math is None:
                math = asks_for_math(prompt)
            if not (
                (rule.min_chars is None or len(prompt) >= rule.min_chars)
                and (rule.max_chars is None or len(prompt) <= rule.max_chars)
                and (rule.math is None or math == rule.math)
            ):
                continue
            if pattern is not None:
                limit = min(PATTERN_TIMEOUT_S, deadline - time.monotonic())
                try:
                    if untried or limit <= 0:
                        raise TimeoutError
                    found = pattern.search(searched, timeout=limit)
                except TimeoutError:
                    if untried or limit < PATTERN_TIMEOUT_S:  # the patterns' time ran out
                        untried.append(repr(rule.name))
                        continue
                    log.warning("override %r: its pattern took over %g s on a prompt; skipped", rule.name, PATTERN_TIMEOUT_S)  # fmt: skip
                    notes.append(
                        f"override {rule.name!r} skipped: its pattern took over "
                        f"{PATTERN_TIMEOUT_S:g} s on this prompt (simplify it)"
                    )
                    continue
                if found is None:
                    continue
            return rule, notes + self._untried(untried)
        return None, notes + self._untried(untried)

    @staticmethod
    def _untried(names: list[str]) -> list[str]:
        """The note (and the warning) that the rules ``names`` were not tried: the
        patterns before them took ``PATTERNS_TIMEOUT_S`` together."""
        if not names:
            return []
        log.warning("override rules' patterns took over %g s together on a prompt; %s not tried", PATTERNS_TIMEOUT_S, ", ".join(names))  # fmt: skip
        return [
            f"override {', '.join(names)} not tried: the rules' patterns took over "
            f"{PATTERNS_TIMEOUT_S:g} s together on this prompt (simplify them)"
        ]

    def apply(
        self, prompt: str, decision: RoutingDecision, available: Sequence[str]
    ) -> RoutingDecision:
        """``decision`` as the first matching rule changes it (unchanged where none
        matches); the reason says which rule matched and what it did."""
        rule, notes = self.matching(prompt)
        if notes:
            decision = dataclasses.replace(decision, reason="; ".join([decision.reason, *notes]))
        if rule is None:
            return decision
        target, why = self._target(rule, decision.model, available)
        said = f"{decision.reason}; override {rule.name!r}"
        if target is None:
            return dataclasses.replace(decision, reason=f"{said} not applied: {why}")
        if target == decision.model:
            return dataclasses.replace(decision, reason=f"{said}: {why}")
        return dataclasses.replace(
            decision, model=target, confidence=1.0, reason=f"{said}: {why}, not {decision.model}"
        )

    def _target(
        self, rule: OverrideRule, routed: str, available: Sequence[str]
    ) -> tuple[str | None, str]:
        """The model ``rule`` sends a request routed to ``routed`` to, and why (None, and
        why not, where that model is not available here)."""
        up = [n for n in self.ladder if n in set(available)]
        if rule.model is not None:
            if rule.model not in up:
                return None, f"{rule.model} is not available to routing here"
            return rule.model, f"to {rule.model}"
        if rule.tier is not None:
            of_tier = [n for n in up if self.tiers[n] == rule.tier]
            if not of_tier:
                return None, f"no {rule.tier} model is available to routing here"
            return of_tier[0], f"to {of_tier[0]} (the smallest {rule.tier} model)"
        assert rule.step is not None  # the config checked one action is given
        if routed not in up:
            return None, f"{routed} is not on the ladder of available models"
        # A step is to the next size: a model of the routed one's size is no larger
        sizes = sorted({self.sizes[n] for n in up})
        here = sizes.index(self.sizes[routed])
        i = min(max(here + rule.step, 0), len(sizes) - 1)
        direction = "larger" if rule.step > 0 else "smaller"
        if i == here:
            return (
                routed,
                f"{routed} is already the {'largest' if rule.step > 0 else 'smallest'} model available",
            )
        target = next(n for n in up if self.sizes[n] == sizes[i])  # the first listed of a size
        steps = abs(i - here)  # fewer than the rule's where the ladder ends
        clamped = f" (the {'largest' if rule.step > 0 else 'smallest'} available)" if steps < abs(rule.step) else ""  # fmt: skip
        return target, f"to {target}, {steps} model{'s' if steps > 1 else ''} {direction}{clamped}"
