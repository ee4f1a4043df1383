"""How often the default routers decide a request in Italian, Spanish, German, French,
Chinese, Portuguese, Japanese or Korean as they decide it in English: per language, the
share of 40 hand-translated
requests whose translation gets the English request's decision, for the rules router,
the packaged complexity router and the override rules (math, a keyword pattern, a
min_chars rule).

Forty requests a user would type (``multilingual_prompts.py``: ten each of code
generation, text generation, general purpose and lightweight), each translated by
hand into the eight languages. For each decision a default or offline router makes,
printed per language: the share of the 40 (or of the half asked) whose translation
gets the English request's decision. The decisions: the rules router's routed model on
the packaged `local` config's three models (and, apart, its tier and its "about code"
sign), the packaged complexity router's model, the `overrides` math detection
(`math: true`), README's example keyword override (`legal`: contract, liability,
lawsuit) and a long-query rule (`min_chars`, default 300: the English long requests
pass it). The last lines give each language's median length, in characters and in
the words the rules router counts, as a share of the English request's, and what the
rules router's word count is fitted to: Chinese characters, Japanese kana and Korean
words per English word.

    .venv/bin/python benchmarks/multilingual_routing.py [--half all|dev|held-out]
        [--min-chars 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections.abc import Callable

from multilingual_prompts import LANGUAGES, prompts

from routerllm.cli_args import DefaultsHelpFormatter
from routerllm.config import load_config
from routerllm.overrides import asks_for_math, composed, rule_pattern
from routerllm.routers.base import create_router
from routerllm.routers.rules import (
    _HAN,
    _HANGUL,
    _KANA,
    _SPACED_RUN,
    CJK_CHARS_PER_WORD,
    RuleBasedRouter,
    word_count,
)

#: README's example keyword override ("Override rules")
LEGAL = r"\b(contract|liabilit\w*|lawsuit)\b"
TIERS = ("light", "medium", "heavy")


def written_per_word(text: str, english: str) -> dict[str, float]:
    """What ``text`` writes each word of its English version (``english``) in, where it
    does not write it as English does: Chinese characters, Japanese kana (beside its
    Chinese characters counted as Chinese ones) and Korean words, each 0 where it has
    none. The rules router's word count is fitted to their medians."""
    words = len(english.split())
    runs = _SPACED_RUN.findall(text)
    korean = sum(1 for run in runs if re.search(f"[{_HANGUL}]", run))
    han = len(re.findall(f"[{_HAN}]", text))
    kana = len(re.findall(f"[{_KANA}]", text))
    unspaced = words - (len(runs) - korean)  # the English words it writes otherwise
    in_kana = unspaced - han / CJK_CHARS_PER_WORD  # those left to its kana
    return {
        "chinese_characters": han / words if not kana else 0.0,
        "kana": kana / in_kana if kana and in_kana > 0 else 0.0,
        "korean_words": korean / unspaced if korean and unspaced > 0 else 0.0,
    }


def deciders(min_chars: int) -> dict[str, Callable[[list[str]], list[object]]]:
    """Each decision measured: a function from prompts to their decisions."""
    models = load_config("local").models
    rules = create_router("rules", models)
    assert isinstance(rules, RuleBasedRouter)
    complexity = create_router("complexity", models)
    legal = rule_pattern(LEGAL)

    def rules_tier(texts: list[str]) -> list[object]:
        return [TIERS[rules.tier_of(rules.analyse(t)[0])[0]] for t in texts]

    return {
        "rules: model": lambda texts: [d.model for d in rules.route_batch(texts)],
        "rules: tier": rules_tier,
        "rules: about code": lambda texts: [rules.analyse(t)[2] for t in texts],
        "complexity: model": lambda texts: [d.model for d in complexity.route_batch(texts)],
        "override: math": lambda texts: [asks_for_math(t) for t in texts],
        "override: legal pattern": lambda texts: [
            legal.search(composed(t)) is not None for t in texts
        ],
        f"override: min_chars {min_chars}": lambda texts: [len(t) >= min_chars for t in texts],
    }


def measure(half: str, min_chars: int) -> dict[str, object]:
    rows = prompts(half)
    by_language = {lang: [texts[lang] for _, texts in rows] for lang in LANGUAGES}
    agreement: dict[str, dict[str, float]] = {}
    english_fires: dict[str, str] = {}
    for name, decide in deciders(min_chars).items():
        decided = {lang: decide(by_language[lang]) for lang in LANGUAGES}
        english = decided["en"]
        agreement[name] = {
            lang: sum(a == b for a, b in zip(english, decided[lang], strict=True)) / len(rows)
            for lang in LANGUAGES[1:]
        }
        counts: dict[str, int] = {}
        for value in english:
            counts[str(value)] = counts.get(str(value), 0) + 1
        english_fires[name] = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

    def ratio(length: Callable[[str], int], lang: str) -> float:
        return statistics.median(length(texts[lang]) / length(texts["en"]) for _, texts in rows)

    lengths = {
        "chars / English chars": {lang: ratio(len, lang) for lang in LANGUAGES[1:]},
        "words / English words": {lang: ratio(word_count, lang) for lang in LANGUAGES[1:]},
    }
    per_word = {
        name: statistics.median(
            ratio for _, t in rows if (ratio := written_per_word(t[lang], t["en"])[name]) > 0
        )
        for lang, name in (("zh", "chinese_characters"), ("ja", "kana"), ("ko", "korean_words"))
    }
    return {
        "half": half,
        "prompts": len(rows),
        "agreement": agreement,
        "english_decisions": english_fires,
        "median_length_ratio": lengths,
        "median_per_english_word": per_word,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--half", choices=("dev", "held-out", "all"), default="all",
                    help="the requests measured: dev (looked at while fixing), held-out, all")  # fmt: skip
    ap.add_argument("--min-chars", type=int, default=300,
                    help="the long-query rule's min_chars")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    figures = measure(args.half, args.min_chars)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['prompts']} requests ({args.half}): share whose translation gets the "
          "English request's decision")  # fmt: skip
    width = 26
    print(f"{'decision':<{width}}" + "".join(f"{lang:>7}" for lang in LANGUAGES[1:]))
    agreement = figures["agreement"]
    assert isinstance(agreement, dict)
    for name, shares in agreement.items():
        print(f"{name:<{width}}" + "".join(f"{shares[lang]:>7.2f}" for lang in LANGUAGES[1:]))
    lengths = figures["median_length_ratio"]
    assert isinstance(lengths, dict)
    for name, shares in lengths.items():
        print(f"{name:<{width}}" + "".join(f"{shares[lang]:>7.2f}" for lang in LANGUAGES[1:]))
    per_word = figures["median_per_english_word"]
    assert isinstance(per_word, dict)
    print("per English word (median): " + ", ".join(f"{k} {v:.2f}" for k, v in per_word.items()))
    print("English decisions:")
    fires = figures["english_decisions"]
    assert isinstance(fires, dict)
    for name, counts in fires.items():
        print(f"  {name:<{width}} {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
