"""``asks_for_math`` (an override rule's ``math: true``) word by word and operator by
operator, where a mutation sweep of MATH_WORDS and MATH_EXPRESSION found no test holding
them: each case fails with one small change to a pattern."""

from __future__ import annotations

import pytest

from routerllm.overrides import asks_for_math


@pytest.mark.parametrize(
    "prompt",
    [
        "Calculate the mean of these values",  # a math word in any case
        "Balance these chemical equations",
        "Explain improper integrals",
        "List the square roots of 16 and 25",
        "What is the prime factorisation of 360?",  # British spelling
        "What is 12*7?",  # unspaced
        "12 ÷ 4",
        "What is 7 * -3?",
        "6 multiplied by 7",
        "2 to the power of -1",
        # a number written against its operator word, as "12*7" is against its sign
        "What is 12plus 7?",
        "What is 12 plus7?",
        "5times 3",
        "sqrt (2) to five places",
        "Simplify \\frac{a}{b}",
        "What is y ^ 3 when y is 2?",
    ],
)
def test_these_prompts_ask_for_a_calculation(prompt: str) -> None:
    assert asks_for_math(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        # a math word inside another word
        "How do I resolve a merge conflict?",
        # a percentage off, not a percentage of
        "Get 15% off your first order",
        # an operator word after a digit inside a name: not a number of its own
        "Rename a1plus 2 to total",
        "Is the S10plus 2 years old?",
    ],
)
def test_these_prompts_do_not(prompt: str) -> None:
    assert not asks_for_math(prompt)
