"""``normalise``, the key two prompts are "the same question" by (a test prompt also in
the training data is removed; a question's copies stay on one side of a split), where a
mutation sweep found no test holding it: each case fails with one small change."""

from __future__ import annotations

import numpy as np

from routerllm.data.outcomes import OutcomeDataset, normalise, overlap, question_copies


def test_case_is_folded_as_unicode_folds_it_not_lowered() -> None:
    # "ß".lower() stays "ß"; casefold makes it "ss", as "STRASSE" lowers
    assert normalise("Wie lang ist die Straße?") == normalise("WIE LANG IST DIE STRASSE?")


def test_a_folded_letter_is_composed_again() -> None:
    """Capital upsilon with dialytika (one character) and a combining acute, which has no
    composed capital form, folds to small upsilon with dialytika and the acute; the small
    letter written composed (U+03B0) folds to upsilon, dialytika and acute, three
    characters: the same letter, equal only once both are composed again."""
    assert normalise("ΚΑΤΑΠΡΑΫ\u0301ΝΩ") == normalise("καταπρα\u03b0νω")


def test_any_run_of_white_space_is_one_space() -> None:
    train = OutcomeDataset(["Sort the list\t[3, 1, 2]\nascending"], ["m"], np.array([[1.0]]))
    test = OutcomeDataset(
        ["sort the list [3, 1, 2] ascending", "sort the list [3, 2, 1] ascending"],
        ["m"],
        np.array([[1.0], [0.0]]),
    )
    assert overlap(test, train) == [0]


def test_spaces_still_part_words_and_numbers() -> None:
    """Two questions that differ only in where a space falls are two questions: the
    numbers 12, 3, 4 are not 1, 23, 4."""
    assert question_copies(["Sort 12 3 4", "Sort 1 23 4", "sort  12 3 4"]) == [[0, 2], [1]]
