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
    #: ``pattern`` less its Chinese, Japanese and Korean words, for a prompt with none of
    #: those scripts: the same matches there, without trying those words at each character
    spaced: re.Pattern[str]
    weight: float
    code: bool  # a sign the request is about code (picks code models within a tier)


def _rule(
    name: str, regex: str, weight: float, code: bool = False, flags: int = 0, east_asian: str = ""
) -> Rule:
    """A rule finding ``regex``, and the ``east_asian`` words (``_east_asian``) too."""
    spaced = re.compile(regex, re.IGNORECASE | flags)
    full = re.compile(f"{regex}|{east_asian}", re.IGNORECASE | flags) if east_asian else spaced
    return Rule(name, full, spaced, weight, code)


#: Chinese characters (in Chinese and in Japanese) and Japanese kana: written without
#: spaces, so a rule's word ends where one of them starts, and a text's words are
#: counted from them apart.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff"
_CJK = _KANA + _HAN
#: Korean's Hangul, spaced into words as English is, but a particle is written on the
#: word before it (Java로, 함수를): an English word ends where Hangul starts, and a
#: Korean word is found by its start.
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
#: A letter, digit or underscore of a script spaced as English is (``\w`` less the
#: CJK characters and Hangul), matched case aside by itself (``(?-i:...)``: the same
#: characters, which have no case the class leaves out): compiled ignoring case, the
#: class was folded character by character, 122 times over 30,000 of them, and the
#: rules took 0.24 s of CPU to compile in every process that routes, now 0.10 s
_SPACED_WORD = f"(?-i:[^\\W{_CJK}{_HANGUL}])"


def _words(spaced: str, whole: bool = True, factored: bool = True) -> str:
    """A rule's words in scripts spaced as English is: the ``spaced`` alternatives as
    whole words (``\\b`` found no boundary between 个 and P in 写一个Python函数, both word
    characters, nor between Java and 로 in Java로), or as a word's start where not
    ``whole``. ``factored``: the alternatives factored (:func:`_factored`), behind a look
    at the character a match would start with, which finds the same matches faster."""
    end = f"(?!{_SPACED_WORD})" if whole else ""
    if not factored:
        return f"(?<!{_SPACED_WORD})({spaced}){end}"
    alternatives = _alternatives(spaced)
    words = f"(?<!{_SPACED_WORD})({_factored(alternatives)}){end}"
    if not all(map(_leads_with_letter, alternatives)):
        return words  # no one character every match starts with
    starts = "".join(sorted({a[0] for a in alternatives}))
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


def _east_asian(cjk: str, korean: str, factored: bool = True) -> str:
    """A rule's words in Chinese and Japanese, found anywhere (those languages have no
    boundaries to find), then in Korean, found at a Korean word's start (its particles and
    endings follow: 함수를, 설명해); ``factored`` as :func:`_words`'s."""
    if factored:
        cjk, korean = _factored(_alternatives(cjk)), _factored(_alternatives(korean))
    return f"{cjk}|(?<!(?-i:[{_HANGUL}]))({korean})"  # case aside: _SPACED_WORD


#: The analysis verbs, English's and their Italian, Spanish, French and Portuguese forms,
#: but after a relative pronoun: "escribe una función que analiza fechas" is a function
#: that parses dates (English "that analyzes" is no ``analy[sz]e``), "analiza este
#: texto" asks for an analysis. Japanese 分析する and Korean 분석하는, 분석한 before a noun
#: say what it does as well, and are left out below. Written to start with its letter, as
#: ``_factored`` wants: the look behind is after the "a".
_ANALYSE_ASKED = r"a(?<!\bche a)(?<!\bque a)(?<!\bqui a)(?:naly[sz]e|nalizza|naliza|nalisa|nalise)"


# Each rule's words in English, then Italian, Spanish, German, French and Portuguese,
# then Chinese and Japanese, then Korean: the rules decide a request in those languages
# as in English (``benchmarks/multilingual_routing.py``; README "The rules router").
# Words a language shares with another written before are not written twice.
def default_rules(factored: bool = True) -> tuple[Rule, ...]:
    """The rules router's rules; ``factored``: their words' alternatives factored, as
    :data:`DEFAULT_RULES` are (``False``: as written, the same matches found slower)."""

    def words(spaced: str, whole: bool = True) -> str:
        return _words(spaced, whole, factored)

    def east_asian_words(cjk: str, korean: str) -> str:
        return _east_asian(cjk, korean, factored)

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
                r"définis|définition d\w*|synonyme|bonjour|salut|merci|convertis \d+|"
                r"traduza|traduzir|o que é|qual é|quanto é|quem é|defina|definição d\w*|"
                # oi (hi), not OI as an abbreviation writes it (the [OI] line of a star's spectrum)
                r"capital d[aeo]s?|sinônimo|olá|o(?-i:i)|obrigad[oa]|converta \d+",
            ),
            -0.3,
            east_asian=east_asian_words(
                r"翻译|什么是|是什么|是谁|是多少|等于多少|定义|首都|同义词|你好|您好|谢谢|换算|"
                r"翻訳|訳して|何ですか|誰ですか|はいくつ|定義|類義語|同義語|こんにちは|ありがとう|換算",
                r"번역|무엇(인가요|입니까|이에요|이야)|뭐(야|예요|에요|죠)|얼마(야|예요|에요|인가요|입니까)|"
                r"누구(야|예요|에요|인가요|입니까)|정의해|수도(는|가)|동의어|유의어|안녕|고마워|고맙습니다|"
                r"감사합니다|감사해요|환산",
            ),
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
                r"expression régulière|tests unitaires|"
                r"implemente|função|funções|expressão regular|testes unitários|testes de unidade|"
                r"depure|depurar",
            ),
            0.25,
            code=True,
            east_asian=east_asian_words(
                r"函数|代码|脚本|程序|算法|正则表达式|单元测试|调试|"
                r"関数|コ(?<![レー]コ)ード|スクリプト|プログラム|アルゴリズム|正規表現|ユニットテスト|"
                r"単体テスト|デバッグ|実装|クラス|メソッド",
                r"함수|코드|스크립트|프로그램|알고리즘|정규 ?표현식|정규식|단위 ?테스트|유닛 ?테스트|"
                r"디버그|디버깅|구현|클래스|메서드|메소드|파이썬|자바스크립트",
            ),
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
                r"threadsicher|caché|ottimizza|optimizar|optimiere|otimiz",
                whole=False,  # a word's start: deadlocks, caches, parsers count
            ),
            0.2,
            code=True,
            east_asian=east_asian_words(
                "线程安全|并发|死锁|缓存|分布式|编译器|解析器|动态规划|复杂度|优化|"
                "スレッドセーフ|並行|デッドロック|キャッシュ|分散(型|システム|処理)|コンパイラ|パーサ|"
                "動的計画法|計算量|最適化",
                "스레드 ?안전|동시성|교착 ?상태|데드락|캐시(?!백)|분산 ?(시스템|처리|환경)|컴파일러|"
                "파서|동적 ?프로그래밍|복잡도|최적화",
            ),
        ),
        _rule(
            "explanation or analysis",
            words(
                r"explain|compare|why|how does|difference|"
                # perché is also "because": the cost of finding its questions
                r"spiega(mi)?|spiegare|confronta|perch[eé]|come funziona|differenz[ae]|"
                r"explica(r)?|explícame|compara|por qué|cómo funciona|diferencias?|"
                r"erkläre?|erklären|vergleiche|warum|wieso|weshalb|wie funktioniert|"
                r"unterschied(e)?|analysiere|"
                r"explique[rz]?|comparez|pourquoi|comment fonctionne|différences?|"
                r"explicar|por que|por quê|como funciona|diferenças?|" + _ANALYSE_ASKED,
            ),
            0.2,
            east_asian=east_asian_words(
                r"解释|比较|为什么|区别|差异|分析(?!する)|如何工作|"
                r"説明[しすせ]|比較|なぜ|どうして|違(?<!間違)い|仕組み|解説",
                r"설명(해|하|을 해)|비교|왜(?![\uac00-\ud7af])|왜요|차이(?!나)|분석(?!하는|한)|어떻게 작동|"
                r"어떻게 동작",
            ),
        ),
        _rule(
            "multi-part request",
            "("
            + words(
                r"and then|step by step|also|with tests|"
                r"e poi|passo (dopo|per) passo|anche|con (i |dei )?test|"
                r"y luego|paso a paso|también|con pruebas|"
                r"und dann|schritt für schritt|auch|mit tests|"
                r"et ensuite|étape par étape|aussi|avec (des )?tests|"
                r"e depois|passo a passo|também|com testes",
            )
            + r"|^\s*\d+[.)]\s)",
            0.1,
            east_asian=east_asian_words(
                r"一步一步|逐步|然后|ステップバイステップ|段階的に|順を追って|一歩ずつ|それから",
                r"단계별로|단계적으로|차근차근|그다음|그 다음|그런 다음|그리고 나서|또한|"
                r"테스트와 함께|테스트도",
            ),
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
#: Japanese kana an English word is written in, beside its Chinese characters counted as
#: in Chinese: 3.8, the median over the same 20 requests (a Japanese request writes an
#: English word in 2.6 characters, kana and Chinese characters together).
KANA_PER_WORD = 3.8
#: Korean words (as spaces separate them) an English word is written in: 0.75, the
#: median over the same 20 requests (a Korean word carries its particles: 함수를 is
#: "the function").
KOREAN_WORDS_PER_WORD = 0.75

_EAST_ASIAN = re.compile(f"[{_CJK}{_HANGUL}]")
#: runs of a spaced script's letters, digits and signs (CJK punctuation is no word)
_SPACED_RUN = re.compile(f"[^\\s{_CJK}\u3000-\u303f\uff00-\uffef]+")


def word_count(text: str) -> int:
    """Words as spaces separate them, where a Chinese character counts as
    1 / ``CJK_CHARS_PER_WORD`` of a word, a Japanese kana as 1 / ``KANA_PER_WORD`` and a
    Korean word as 1 / ``KOREAN_WORDS_PER_WORD`` of one: Chinese and Japanese write no
    space (a Chinese request of 138 characters was one word, never long), and a Korean
    request has three words for every four of its English one."""
    if not _EAST_ASIAN.search(text):
        return len(text.split())
    runs = _SPACED_RUN.findall(text)
    korean = sum(1 for run in runs if re.search(f"[{_HANGUL}]", run))
    han = len(re.findall(f"[{_HAN}]", text))
    kana = len(re.findall(f"[{_KANA}]", text))
    east_asian = korean / KOREAN_WORDS_PER_WORD + han / CJK_CHARS_PER_WORD + kana / KANA_PER_WORD
    return len(runs) - korean + round(east_asian)


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
        east_asian = _EAST_ASIAN.search(prompt) is not None
        for rule in self.rules:
            pattern = rule.pattern if east_asian else rule.spaced
            # the matches past those that count are not looked for
            cap = MAX_HITS.get(rule.name, 1)
            hits = sum(1 for _ in itertools.islice(pattern.finditer(prompt), cap))
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
