"""How varied the synthetic dataset is, and how easy: distinct prompts and requests,
templates used per class, and the test accuracy of two classifiers that learn no
language (a hand-written keyword rule; the majority class of each prompt's first
request word, learned on train).

A near-perfect keyword rule means a classifier's accuracy on this data says little
about real prompts: the classes are told apart by their templates' wording.

    .venv/bin/python benchmarks/synthetic_data.py [--n 10000] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict

from routerllm.checks import MAX_SYNTHETIC_PROMPTS
from routerllm.cli_args import DefaultsHelpFormatter, seed_arg, whole_number_arg, whole_range
from routerllm.data import synthetic
from routerllm.data.labeled import CLASS_NAMES, LabeledPrompt
from routerllm.data.synthetic import MIN_DATASET_SIZE, TEMPLATES, generate, request_key, split

_CODE = r"(?<!\w)(python|javascript|typescript|java|c\+\+|c#|go|rust|ruby|php|kotlin|swift|scala|haskell|julia|dart|sql)(?![\w+#])"  # noqa: E501
_TEXT = r"\b(story|article|essay|poem|haiku|sonnet|limerick|ballad|blog post|speech|description|cover letter|newsletter|creative|lyrics|chapter)\b"  # noqa: E501
_LIGHT = r"\b(translate|convert|calculate|synonym|opposite|spell|capital|plural|sort|round|percent|even or odd|letters|definition|capitalization|say|math)\b"  # noqa: E501


def keyword_rule(text: str) -> int:
    """Code if a language is named, text if a kind of writing is, lightweight if a quick
    task is, else general purpose (50 words in all)."""
    t = text.lower()
    for label, pattern in ((0, _CODE), (1, _TEXT), (3, _LIGHT)):
        if re.search(pattern, t):
            return label
    return 2


def _first_word(text: str) -> str:
    key = request_key(text)
    words = synthetic._words(text)
    return next((w for w in words if key.startswith(w)), words[0])


def measure(n: int, seed: int) -> dict[str, object]:
    calls: list[tuple[int, str, str]] = []
    render = synthetic._render

    def recording(template: synthetic.Template, rng, modifiers):  # type: ignore[no-untyped-def]
        text = render(template, rng, modifiers)
        calls.append((template.label, template.pattern, text))
        return text

    synthetic._render = recording  # which template made each kept prompt
    try:
        full = generate(n, seed)
    finally:
        synthetic._render = render
    kept = {i.text for i in full}
    train, _, test = split(full, seed=seed)
    table: dict[str, Counter[int]] = defaultdict(Counter)
    for item in train:
        table[_first_word(item.text)][item.label] += 1

    def first_word_rule(item: LabeledPrompt) -> int:
        votes = table.get(_first_word(item.text))
        return votes.most_common(1)[0][0] if votes else 2

    per_class = {}
    for label, name in enumerate(CLASS_NAMES):
        texts = [i.text for i in full if i.label == label]
        used = {p for lbl, p, t in calls if lbl == label and t in kept}
        per_class[name] = {
            "prompts": len(texts),
            "distinct_requests": len({request_key(t) for t in texts}),
            "templates": len(TEMPLATES[label]),
            "templates_used": len(used),
        }
    return {
        "prompts": len(full),
        "distinct_prompts": len(kept),
        "distinct_requests": len({request_key(t) for t in kept}),
        "per_class": per_class,
        "test_prompts": len(test),
        "keyword_rule_test_accuracy": sum(keyword_rule(i.text) == i.label for i in test)
        / len(test),
        "first_word_test_accuracy": sum(first_word_rule(i) == i.label for i in test) / len(test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    # at least one prompt of each class in each split (fewer: an empty test split)
    parser.add_argument(
        "--n",
        type=whole_number_arg(MIN_DATASET_SIZE, MAX_SYNTHETIC_PROMPTS),
        default=10_000,
        help=f"prompts to generate, {whole_range(MIN_DATASET_SIZE, MAX_SYNTHETIC_PROMPTS)}",
    )
    parser.add_argument("--seed", type=seed_arg, default=0, help="random seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args.n, args.seed)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"{result['prompts']} prompts, {result['distinct_prompts']} distinct, "
        f"{result['distinct_requests']} distinct requests (modifiers, case, punctuation aside)"
    )
    for name, row in result["per_class"].items():  # type: ignore[attr-defined]
        print(
            f"  {name:<16} {row['distinct_requests']:>5} requests of {row['prompts']}, "
            f"{row['templates_used']}/{row['templates']} templates used"
        )
    print(
        f"test accuracy ({result['test_prompts']} prompts): keyword rule "
        f"{result['keyword_rule_test_accuracy']:.4f}, first request word "
        f"{result['first_word_test_accuracy']:.4f}"
    )


if __name__ == "__main__":
    main()
