"""Policy labels from outcome data: the seed's 9-cell oracle matrix (MISSION M3.8).

Each training prompt gets a *policy* by comparing a medium and a large reference
model's outcome on it, each correct, wrong or "I don't know" (IDK):

=========  =========  ==========  =================================
medium     large      policy      why
=========  =========  ==========  =================================
correct    any        standard    the cheaper model suffices
wrong      correct    complex     classic escalation
wrong      IDK        complex     an IDK is safer than a wrong answer
wrong      wrong      ambiguous   both fail: escalating does not help
IDK        correct    complex     the large model knows the answer
IDK        wrong      ambiguous   the medium model's IDK was safer
IDK        IDK        ambiguous   both fail: escalating does not help
=========  =========  ==========  =================================

Correct means a score >= 0.5 (``CORRECT_AT``, the threshold the outcome routers
learn success by). A failed answer is an IDK when its text is a refusal or an
admission of not knowing (``is_idk``); without response texts (the
``{question, scores}`` JSON format) every failure counts as wrong, so IDK never occurs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from routerllm.exceptions import DataError, UnknownNameError

POLICIES = ("standard", "complex", "ambiguous")
STANDARD, COMPLEX, AMBIGUOUS = range(3)
#: A score at or above this is a correct answer (LogisticRouter learns ``Y >= 0.5``).
CORRECT_AT = 0.5
CORRECT, WRONG, IDK = "correct", "wrong", "idk"

#: (medium outcome, large outcome) -> policy: the seed's matrix, cell by cell.
ORACLE_MATRIX: dict[tuple[str, str], int] = {
    (CORRECT, CORRECT): STANDARD,
    (CORRECT, WRONG): STANDARD,
    (CORRECT, IDK): STANDARD,
    (WRONG, CORRECT): COMPLEX,
    (WRONG, WRONG): AMBIGUOUS,
    (WRONG, IDK): COMPLEX,
    (IDK, CORRECT): COMPLEX,
    (IDK, WRONG): AMBIGUOUS,
    (IDK, IDK): AMBIGUOUS,
}

# Phrases of an answer that declines or admits not knowing. Searched only near the
# start of an answer (``IDK_WINDOW``): a long answer that says "I'm not sure this is
# optimal" after its code is an attempt, not a refusal.
_IDK_PATTERNS = (
    r"\bi (?:really )?(?:do not|don'?t|dont) know\b",
    r"\bi(?:'m| am) not (?:sure|certain|aware)\b",
    # "I'm unable to" is "i'm", not "i 'm": the contraction belongs to the subject
    r"\bi(?: cannot| can'?t|(?:'m| am) (?:unable|not able) to) "
    r"(?:answer|help|assist|provide|determine|solve|complete|comply|write|do that)\b",
    r"\bi(?:'m| am) (?:sorry|afraid),? (?:but )?i(?: cannot| can'?t|(?:'m| am) unable| don'?t)\b",
    r"\b(?:i have|there is) no (?:idea|way of knowing|information|knowledge)\b",
    r"\bas an ai(?: language model)?,? i (?:cannot|can'?t|do not|don'?t)\b",
)
_IDK = re.compile("|".join(_IDK_PATTERNS), re.IGNORECASE)
#: A whole answer that is only a non-answer.
_BARE = re.compile(r"(?:n/?a|idk|unknown|no answer|not sure)[.!]?", re.IGNORECASE)
#: How many characters from the start of an answer ``is_idk`` reads.
IDK_WINDOW = 300
#: What the phrases are not searched in: an "I don't know" there is the answer's code
#: or a quotation, not the model's own admission.
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_QUOTED = re.compile(r"\"[^\"\n]*\"|\u201c[^\u201d\n]*\u201d|(?<!\w)'[^\n]*?'(?!\w)")
#: A line of unfenced code: indented, or opened by a keyword of a common language.
_CODE_LINE = re.compile(
    r"^(?:[ \t]+\S|(?:def|class|import|from|return|print|raise|if|elif|else|for|while|try|"
    r"except|with|function|const|let|var|public|private|static|int|void|#include)\b)"
)


def _prose(head: str) -> str:
    """``head`` without its code (fenced, inline, code lines) and quotations."""
    text = _INLINE_CODE.sub(" ", _FENCED.sub("\n", head))
    lines = [line for line in text.split("\n") if not _CODE_LINE.match(line)]
    return _QUOTED.sub(" ", "\n".join(lines))


def is_idk(text: str | None) -> bool:
    """Whether an answer declines or says it does not know ("I don't know", "I'm not
    sure", "I cannot answer that", "I'm unable to help", "I have no idea", "As an AI,
    I can't ...", a bare "N/A"), judged
    on its first ``IDK_WINDOW`` characters. An empty answer is an IDK too: the model
    gave none. A refusal buried after an attempt is not one, nor are those words in
    code (fenced, inline or a line of code) or in a quotation."""
    if text is None:
        return False
    head = str(text).strip()[:IDK_WINDOW]
    # RouterBench stores answers as Python list literals: "['...']"
    head = head.removeprefix("[").strip("'\"] \n")
    # ... with their newlines and apostrophes escaped
    head = head.replace("\\n", "\n").replace("\\'", "'")
    head = head.replace("\u2019", "'").replace("\u2018", "'")  # typographic apostrophes
    return not head or bool(_BARE.fullmatch(head) or _IDK.search(_prose(head)))


def outcome_kind(score: float, response: str | None) -> str:
    """``correct``, ``idk`` or ``wrong``: a correct score wins over the text."""
    if score >= CORRECT_AT:
        return CORRECT
    return IDK if response is not None and is_idk(response) else WRONG


def policy_labels(
    medium: Sequence[float] | np.ndarray,
    large: Sequence[float] | np.ndarray,
    medium_responses: Sequence[str] | None = None,
    large_responses: Sequence[str] | None = None,
) -> np.ndarray:
    """Each prompt's policy index (``POLICIES``) from the reference models' scores and,
    where known, their answers (None: no IDK); a score not in [0, 1] is a DataError."""
    m, g = np.asarray(medium, dtype=float), np.asarray(large, dtype=float)
    if m.shape != g.shape or m.ndim != 1:
        raise DataError(f"need one medium and one large score per prompt, got {m.shape}, {g.shape}")
    for name, values in (("medium", m), ("large", g)):
        bad = np.flatnonzero(~((values >= 0) & (values <= 1)))  # NaN too
        if bad.size:  # NaN would be labelled a wrong answer, 1.5 a correct one
            raise DataError(
                f"the {name} score of prompt {bad[0] + 1} is {float(values[bad[0]])!r}, not a number "
                "in [0, 1] (1 = solved)"
            )
    for texts in (medium_responses, large_responses):
        if texts is not None and len(texts) != len(m):
            raise DataError(f"{len(texts)} responses for {len(m)} prompts")
    labels = [
        ORACLE_MATRIX[
            outcome_kind(a, None if medium_responses is None else medium_responses[i]),
            outcome_kind(b, None if large_responses is None else large_responses[i]),
        ]
        for i, (a, b) in enumerate(zip(m, g, strict=True))
    ]
    return np.asarray(labels, dtype=np.int64)


def default_references(
    models: Sequence[str],
    scores: np.ndarray,
    costs: np.ndarray,
    medium: str | None = None,
    large: str | None = None,
) -> tuple[str, str]:
    """(medium, large) reference models where not named: large is the best single
    model (highest mean score, the cheaper on a tie), the one a prompt escalates to;
    medium the best model of the cheaper half (by mean cost, the large model left
    out), the cheap model most prompts should stay on. On data of two models they
    are the two. A reference named (``medium``, ``large``) is kept, and the other is
    chosen among the other models, so that the two differ."""
    check_model_count(models)
    for name in (medium, large):
        check_reference(models, name)
    quality, cost = np.asarray(scores, dtype=float).mean(axis=0), np.asarray(costs, dtype=float)
    given = None if medium is None else list(models).index(medium)
    li = (
        list(models).index(large)
        if large is not None
        else next(int(j) for j in np.lexsort((cost, -quality)) if j != given)
    )
    if given is not None:
        return models[given], models[li]
    cheaper = [int(j) for j in np.argsort(cost, kind="stable")[: max(1, len(models) // 2)]]
    pool = [j for j in cheaper if j != li] or [j for j in range(len(models)) if j != li]
    mi = max(pool, key=lambda j: (quality[j], -cost[j]))
    return models[mi], models[li]


def check_model_count(models: Sequence[str]) -> None:
    """A clear error unless the outcome data has two models or more to compare."""
    if len(models) < 2:
        raise DataError(
            f"the policy router compares a medium and a large model's outcomes: the data "
            f"has {len(models)} model(s) ({', '.join(models)}), it needs at least 2"
        )


def check_references(models: Sequence[str], medium: str, large: str) -> None:
    """A clear error unless ``medium`` and ``large`` are two of ``models``."""
    check_model_count(models)
    for name in (medium, large):
        check_reference(models, name)
    if medium == large:
        raise DataError(f"the medium and large reference models must differ, both are {medium!r}")


def check_reference(models: Sequence[str], name: str | None) -> None:
    """A clear error when ``name`` (None: not given) is not one of ``models``."""
    if name is not None and name not in models:
        raise UnknownNameError("reference model", name, list(models))


def label_counts(labels: np.ndarray) -> dict[str, int]:
    """How many prompts got each policy."""
    return {p: int(np.sum(labels == k)) for k, p in enumerate(POLICIES)}
