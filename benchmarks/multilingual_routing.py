"""How often the default routers decide a request in Italian, Spanish, German, French or
Chinese as they decide it in English: per language, the share of 40 hand-translated
requests whose translation gets the English request's decision, for the rules router,
the packaged complexity router and the override rules (math, a keyword pattern, a
min_chars rule).

Forty requests a user would type (``multilingual_prompts.py``: ten each of code
generation, text generation, general purpose and lightweight), each translated by
hand into the five languages. For each decision a default or offline router makes,
printed per language: the share of the 40 (or of the half asked) whose translation
gets the English request's decision. The decisions: the rules router's routed model on
the packaged `local` config's three models (and, apart, its tier and its "about code"
sign), the packaged complexity router's model, the `overrides` math detection
(`math: true`), README's example keyword override (`legal`: contract, liability,
lawsuit) and a long-query rule (`min_chars`, default 300: the English long requests
pass it). The last lines give each language's median length, in characters and in
the words the rules router counts, as a share of the English request's.

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
from routerllm.routers.rules import RuleBasedRouter, word_count

#: README's example keyword override ("Override rules")
LEGAL = r"\b(contract|liabilit\w*|lawsuit)\b"
TIERS = ("light", "medium", "heavy")


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

    def cjk(text: str) -> int:  # for the Chinese rows: characters a word would be
        return len(re.findall(r"[\u4e00-\u9fff]", text))

    lengths = {
        "chars / English chars": {lang: ratio(len, lang) for lang in LANGUAGES[1:]},
        "words / English words": {lang: ratio(word_count, lang) for lang in LANGUAGES[1:]},
    }
    zh_per_word = statistics.median(cjk(t["zh"]) / len(t["en"].split()) for _, t in rows)
    return {
        "half": half,
        "prompts": len(rows),
        "agreement": agreement,
        "english_decisions": english_fires,
        "median_length_ratio": lengths,
        "median_chinese_characters_per_english_word": zh_per_word,
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
    print(f"Chinese characters per English word (median): "
          f"{figures['median_chinese_characters_per_english_word']:.2f}")  # fmt: skip
    print("English decisions:")
    fires = figures["english_decisions"]
    assert isinstance(fires, dict)
    for name, counts in fires.items():
        print(f"  {name:<{width}} {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
