"""``is_idk`` phrase by phrase, where a mutation sweep of its patterns found no test
holding them: each case fails with one small change to a pattern or to how the head
of an answer is cleaned before it is read."""

from __future__ import annotations

import pytest

from routerllm.data.policy_labels import is_idk


@pytest.mark.parametrize(
    "text",
    [
        "I really don't know.",
        "I'm not aware of a closed form for this sum.",
        "I am not sure what the question asks.",
        "I'm afraid I cannot say.",  # no comma after afraid
        "There is no way of knowing which one is larger.",
        "NA",
        "Unknown.",
        # the phrase is read after the answer's leading white space, a tab included (an
        # indented line is code, not an admission)
        "\tI don't know.",
        # RouterBench's list literals: "['N/A']" is "N/A", "['']" an empty answer
        "['N/A']",
        "['']",
        # a quotation after a contraction: the apostrophe of "don't" opens none
        "I don't know what 'x' means here.",
        # a line of prose that starts with "print..." is no code line
        "The value is never\nprinted, so I don't know it.",
        # the text on either side of a fence is two lines: the code line before it goes,
        # the admission after it stays
        "def f(): return 1```\nout\n```I'm not sure this is right.",
    ],
)
def test_these_answers_are_idk(text: str) -> None:
    assert is_idk(text)


@pytest.mark.parametrize(
    "text",
    [
        "I don't knowingly skip a case: the answer is 12.",
        # a whole answer that is a non-answer, not one that starts like one
        "Natural numbers start at 1, so the sum is 55.",
        "Unknowns x and y solve to 2 and 3.",
        # leading blank lines are not an empty answer
        "\n" * 300 + "The answer is 4.",
        # RouterBench's escaped newlines split the code's lines: a comment in the code
        "['Here is the code:\\ndef f():\\n    return None  # I don\\'t know the spec']",
        # a fenced block cut off before its closing fence is still code (or output)
        "The program prints:\n```\nI don't know",
        # a quotation holding a contraction ends at its closing quote, not at the "'s"
        "The bot replies 'it's fine, I don't know why' to everything.",
    ],
)
def test_these_answers_are_attempts(text: str) -> None:
    assert not is_idk(text)
