"""A transparent rule-based router: a complexity score from named rules -> tier.

Every rule is a regular expression with a weight; the score is a base value
plus the weights of the rules that fire, clipped to [0, 1]. Thresholds cut
the score into light / medium / heavy. The reason of each decision lists the
rules that fired, so a user can see (and change, via options) why a prompt
went where it went. It is a baseline, not a learned router.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routerllm.checks import is_number
from routerllm.config import TIER_ORDER
from routerllm.exceptions import RouterLLMError
from routerllm.routers.base import CandidateModel, Router, RoutingDecision


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    weight: float
    code: bool = False  # a sign the request is about code (picks code models within a tier)


def _rule(name: str, regex: str, weight: float, code: bool = False, flags: int = 0) -> Rule:
    return Rule(name, re.compile(regex, re.IGNORECASE | flags), weight, code)


#: Chinese and Japanese characters (and kana): written without spaces, so a rule's word
#: ends where one of them starts, and a text's words are counted from them apart.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: A letter, digit or underscore of a spaced script (``\w`` less the CJK characters)
_SPACED_WORD = f"[^\\W{_CJK}]"


def _words(spaced: str, cjk: str = "", whole: bool = True, factored: bool = True) -> str:
    """A rule's words: the ``spaced`` alternatives as whole words (``\\b`` found no
    boundary between 个 and P in 写一个Python函数, both word characters), or as a word's
    start where not ``whole``; then the ``cjk`` ones anywhere (Chinese has no boundaries
    to find). ``factored``: the alternatives factored (:func:`_factored`), behind a look
    at the character a match would start with, which finds the same matches faster."""
    end = f"(?!{_SPACED_WORD})" if whole else ""
    if not factored:
        words = f"(?<!{_SPACED_WORD})({spaced}){end}"
        return f"{words}|{cjk}" if cjk else words
    spaced_alternatives, cjk_alternatives = _alternatives(spaced), _alternatives(cjk)
    words = f"(?<!{_SPACED_WORD})({_factored(spaced_alternatives)}){end}"
    if cjk:
        words += f"|{_factored(cjk_alternatives)}"
    if not all(map(_leads_with_letter, spaced_alternatives + cjk_alternatives)):
        return words  # no one character every match starts with
    starts = "".join(sorted({a[0] for a in spaced_alternatives + cjk_alternatives}))
    return f"(?=[{re.escape(starts)}])(?:{words})"


def _alternatives(regex: str) -> list[str]:
    """The ``|``-separated alternatives of ``regex`` (not those within its groups or
    character classes), in order."""
    found, depth, start, i = [], 0, 0, 0
    while i < len(regex):
        if regex[i] == "\\":
            i += 1
        elif regex[i] == "[":
            i = regex.index("]", i + 2)  # a class's first character may be "]"
        elif regex[i] in "()":
            depth += 1 if regex[i] == "(" else -1
        elif regex[i] == "|" and depth == 0:
            found.append(regex[start:i])
            start = i + 1
        i += 1
    return [*found, regex[start:]] if regex else []


def _leads_with_letter(alternative: str) -> bool:
    """Whether ``alternative`` starts with a letter, digit or space matched as itself
    (not quantified: ``e?``)."""
    letter = alternative[:1].isalnum() or (alternative[:1] != "" and alternative[:1] in " '’-")
    return letter and alternative[1:2] not in ("?", "*", "+", "{")


def _factored(alternatives: list[str]) -> str:
    """``alternatives`` (regular expressions tried in order, case aside) as one that
    matches what their alternation matches, where it does: those that start with the same
    letter share it (``t(?:ranslate|hanks)``), their rest factored in turn, as long as each
    starts with a letter matched as itself. No text matches two different letters (not
    even case aside), so which alternative matches first is unchanged; but the regular
    expression engine tried every alternative at every place where a word starts (or
    every place at all: 0.2 s per rule on 200,000 characters), and now reads a letter or
    two there."""
    if len(alternatives) < 2 or not all(_leads_with_letter(a) for a in alternatives):
        return "|".join(alternatives)
    by_letter: dict[str, list[str]] = {}
    for alternative in alternatives:
        letter = alternative[0].lower() if len(alternative[0].lower()) == 1 else alternative[0]
        by_letter.setdefault(letter, []).append(alternative)
    return "|".join(
        f"{group[0][0]}(?:{_factored([a[1:] for a in group])})" if len(group) > 1 else group[0]
        for group in by_letter.values()
    )


# Each rule's words in English, then Italian, Spanish, German, French and Chinese: the
# rules decide a request in those languages as in English (``benchmarks/
# multilingual_routing.py``; README "The rules router"). Words a language shares with
# English are not written twice.
def default_rules(factored: bool = True) -> tuple[Rule, ...]:
    """The rules router's rules; ``factored``: their words' alternatives factored, as
    :data:`DEFAULT_RULES` are (``False``: as written, the same matches found slower)."""

    def words(spaced: str, cjk: str = "", whole: bool = True) -> str:
        return _words(spaced, cjk, whole, factored)

    return (
        _rule(
            "trivial request",
            words(
                r"translate|what is|what's|who is|define|definition of|capital of|synonym|spell|"
                r"hello|hi|thanks|convert \d+|"
                r"traduci|tradurre|cos['’]è|che cos['’]è|qual è|quanto fa|chi è|definisci|"
                r"definizione d\w*|capitale d\w*|sinonimo|ciao|salve|grazie|converti \d+|"
                r"traduce|traducir|qué es|cuál es|cuánto es|quién es|definición de|sinónimo|"
                r"hola|gracias|convierte \d+|"
                r"übersetze|übersetzen|was ist|wie viel (ist|sind)|wer ist|definiere|"
                r"hauptstadt|hallo|danke|rechne \d+|"
                r"traduis|traduire|qu['’]est-ce que|quel(le)? est|combien (font|fait)|qui est|"
                r"définis|définition d\w*|synonyme|bonjour|salut|merci|convertis \d+",
                r"翻译|什么是|是什么|是谁|是多少|等于多少|定义|首都|同义词|你好|您好|谢谢|换算",
            ),
            -0.3,
        ),
        _rule(
            "code task",
            words(
                r"implement|function|class|method|code|script|program|algorithm|debug|refactor|"
                r"python|javascript|typescript|java|c\+\+|rust|golang|sql|regex|api|unit[ -]tests?|"
                r"bug|"
                r"implementa|implementare|funzion[ei]|classe|metodo|codice|programma|algoritmo|"
                r"espressione regolare|test unitari|"
                r"implementar|funci[oó]n|funciones|clase|método|código|programa|"
                r"expresión regular|pruebas unitarias|"
                r"implementiere|implementieren|funktion(en)?|klasse|methode|skript|programm|"
                r"algorithmus|regulär\w* ausdr\w*|"
                r"implémente|implémenter|fonctions?|méthode|algorithme|"
                r"expression régulière|tests unitaires",
                r"函数|代码|脚本|程序|算法|正则表达式|单元测试|调试",
            ),
            0.25,
            code=True,
        ),
        # A definition in the request (a function stub to complete, code to fix or explain),
        # or a fenced block, is code whatever its words say, in any language: HumanEval's
        # stubs rarely name a "code task".
        _rule(
            "code in the request",
            r"^[ \t]*(?:(?:async[ \t]+)?(?:def|class)[ \t]+\w+[ \t]*[(:]|```)",
            0.25,
            code=True,
            flags=re.MULTILINE,
        ),
        _rule(
            "hard engineering terms",
            words(
                r"thread[- ]safe|concurren\w*|lock(s|ing)?|mutex|async\w*|distributed|lru|cache|"
                r"optimi[sz]e|complexity|dynamic programming|graph|parser|compiler|interpreter|"
                r"scalab\w*|transaction\w*|race condition|deadlock|memory leak|architecture|"
                r"trie|heap|red[- ]black|b-tree|consensus|sharding|o\(n|"
                r"threadsicher|caché|ottimizza|optimizar|optimiere",
                "线程安全|并发|死锁|缓存|分布式|编译器|解析器|动态规划|复杂度|优化",
                whole=False,  # a word's start: deadlocks, caches, parsers count
            ),
            0.2,
            code=True,
        ),
        _rule(
            "explanation or analysis",
            words(
                r"explain|compare|why|how does|difference|analy[sz]e|"
                # perché is also "because": the cost of finding its questions
                r"spiega(mi)?|spiegare|confronta|perch[eé]|come funziona|differenz[ae]|analizza|"
                r"explica(r)?|explícame|compara|por qué|cómo funciona|diferencias?|analiza|"
                r"erkläre?|erklären|vergleiche|warum|wieso|weshalb|wie funktioniert|"
                r"unterschied(e)?|analysiere|"
                r"explique[rz]?|comparez|pourquoi|comment fonctionne|différences?",
                r"解释|比较|为什么|区别|差异|分析|如何工作",
            ),
            0.2,
        ),
        _rule(
            "multi-part request",
            "("
            + words(
                r"and then|step by step|also|with tests|"
                r"e poi|passo (dopo|per) passo|anche|con (i |dei )?test|"
                r"y luego|paso a paso|también|con pruebas|"
                r"und dann|schritt für schritt|auch|mit tests|"
                r"et ensuite|étape par étape|aussi|avec (des )?tests",
                r"一步一步|逐步|然后",
            )
            + r"|^\s*\d+[.)]\s)",
            0.1,
        ),
    )


DEFAULT_RULES: tuple[Rule, ...] = default_rules()

# How many times one rule may count (hard terms stack: "thread-safe LRU cache").
MAX_HITS = {"hard engineering terms": 3}

#: Decimals a score and a confidence are stated to. Both are built from sums of two-decimal
#: weights, so float arithmetic leaves noise in their last digits (0.1 + 0.2 ->
#: 0.30000000000000004): a stated confidence of 0.7 read 0.6999999999999998, and a score of
#: 0.1 + 0.25 + 0.1 + 0.1 came to 0.5499999999999999, under heavy's 0.55 (HumanEval/87 and
#: /105 went to the medium model so until 2026-12-06). Rounding to 12 decimals drops that
#: noise and nothing else (it moves a value by < 5e-13, far under the ensemble's tie
#: tolerance, and no two-decimal sum by any of it).
DECIMALS = 12


#: Chinese characters an English word is written in: 1.42, the median over the 20
#: requests of ``benchmarks/multilingual_prompts.py``'s dev half.
CJK_CHARS_PER_WORD = 1.4


def word_count(text: str) -> int:
    """Words as spaces separate them, where a Chinese or Japanese character counts as
    1 / ``CJK_CHARS_PER_WORD`` of a word: those scripts write no space, so a Chinese
    request of 138 characters was one word, never long."""
    cjk = len(re.findall(f"[{_CJK}]", text))
    if not cjk:
        return len(text.split())
    # runs of another script's letters, digits and signs (CJK punctuation is no word)
    spaced = len(re.findall(f"[^\\s{_CJK}\u3000-\u303f\uff00-\uffef]+", text))
    return spaced + round(cjk / CJK_CHARS_PER_WORD)


class RuleBasedRouter(Router):
    """Complexity score from keyword rules and length; light < t1 <= medium < t2 <= heavy."""

    name = "rules"

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        base: float = 0.1,
        thresholds: tuple[float, float] | list[float] = (0.25, 0.55),
        long_prompt_words: int = 60,
    ) -> None:
        super().__init__(models, seed)
        if not (isinstance(thresholds, list | tuple) and len(thresholds) == 2 and all(is_number(t) for t in thresholds)):  # fmt: skip
            raise RouterLLMError(
                f"rules router: thresholds are two complexities in [0, 1], medium's then "
                f"heavy's (e.g. [0.25, 0.55]), got {thresholds!r:.80}"
            )
        self.options = {
            "base": base,
            "thresholds": list(thresholds),
            "long_prompt_words": long_prompt_words,
        }
        self.base = float(base)
        self.t_medium, self.t_heavy = (float(t) for t in thresholds)
        self.long_prompt_words = int(long_prompt_words)
        if not 0.0 <= self.t_medium <= self.t_heavy <= 1.0 or not 0.0 <= self.base <= 1.0:
            raise RouterLLMError(
                "rules router: base and thresholds are complexities in [0, 1], thresholds "
                f"ascending (got base {base!r}, thresholds {list(thresholds)!r})"
            )
        if self.long_prompt_words < 1:
            raise RouterLLMError("rules router: long_prompt_words must be >= 1")
        self.rules = DEFAULT_RULES
        # the last prompt analysed and its analysis: a decision's reason reads it again
        self._last: tuple[str, tuple[float, list[str], bool]] | None = None

    def analyse(self, prompt: str) -> tuple[float, list[str], bool]:
        """(complexity score, fired rule names, is_code) for one prompt."""
        last = self._last
        if last is not None and last[0] is prompt:  # scored, now explained: read once
            score, fired, is_code = last[1]
            return score, list(fired), is_code
        analysis = self._analysed(prompt)
        self._last = (prompt, analysis)
        return analysis[0], list(analysis[1]), analysis[2]

    def _analysed(self, prompt: str) -> tuple[float, list[str], bool]:
        total, fired, is_code = self.base, [], False
        for rule in self.rules:
            # the matches past those that count are not looked for
            cap = MAX_HITS.get(rule.name, 1)
            hits = sum(1 for _ in itertools.islice(rule.pattern.finditer(prompt), cap))
            if not hits:
                continue
            total += rule.weight * hits
            fired.append(f"{rule.name} x{hits}" if hits > 1 else rule.name)
            is_code = is_code or rule.code
        words = word_count(prompt)
        if words > self.long_prompt_words:
            total += 0.1 if words <= 3 * self.long_prompt_words else 0.2
            fired.append(f"long prompt ({words} words)")
        return round(float(np.clip(total, 0.0, 1.0)), DECIMALS), fired, is_code

    def tier_of(self, score: float) -> tuple[int, float]:
        """(tier index, confidence in [0.5, 1]) from the distance to the nearest threshold."""
        tier = 0 if score < self.t_medium else 1 if score < self.t_heavy else 2
        distance = min(abs(score - self.t_medium), abs(score - self.t_heavy))
        return tier, round(0.5 + 0.5 * min(1.0, distance / 0.25), DECIMALS)

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        tiers = np.array([TIER_ORDER.get(m.tier, 1) for m in self.models])
        out = np.zeros((len(prompts), len(self.models)))
        for i, prompt in enumerate(prompts):
            complexity, _, is_code = self.analyse(prompt)
            target, conf = self.tier_of(complexity)
            # Same category preferred within a tier; a bigger model is a safer
            # fallback than a smaller one when the target tier is unavailable.
            fit = np.array([1.5 if (m.category == "code") == is_code else 1.0 for m in self.models])
            on_tier = tiers == target
            distance = np.abs(tiers - target)
            fallback = np.where(tiers > target, 1.0, 0.5) / (1.0 + distance)
            row = np.where(on_tier, conf * fit / fit[on_tier].sum() if on_tier.any() else 0, 0.0)
            off = ~on_tier
            if off.any():
                weights = fallback[off] * fit[off]
                # A floor keeps the fallback order even when conf is 1.0.
                share = max(1.0 - conf, 0.05) if on_tier.any() else 1.0
                row[off] = share * weights / weights.sum()
            out[i] = row / row.sum()
        return out

    def _decide(self, prompt: str, row: np.ndarray, mask: np.ndarray) -> RoutingDecision:
        # The row was normalised (a stated 0.7 came back 0.6999999999999998): the
        # decision states its confidence as tier_of does. Which model it is stays as is.
        decision = super()._decide(prompt, row, mask)
        return dataclasses.replace(decision, confidence=round(decision.confidence, DECIMALS))

    def explain(self, prompt: str, row: np.ndarray) -> str:
        complexity, fired, _ = self.analyse(prompt)
        tier = ("light", "medium", "heavy")[self.tier_of(complexity)[0]]
        rules = ", ".join(fired) or "no rule fired"
        return f"complexity {complexity:.2f} ({rules}) -> {tier}"
