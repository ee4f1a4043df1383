"""The policy router (MISSION M3.8): the 9-cell oracle labels, the IDK detector, the
policy map and remapping to other models, save/load, calibration, the CLI and its
errors; on small outcome data written by the tests (hashing encoder)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from routerllm.config import load_config
from routerllm.configured_router import build_router
from routerllm.data.outcome_files import load_outcomes
from routerllm.data.outcomes import OutcomeDataset
from routerllm.data.policy_labels import (
    AMBIGUOUS,
    COMPLEX,
    ORACLE_MATRIX,
    POLICIES,
    STANDARD,
    default_references,
    is_idk,
    policy_labels,
)
from routerllm.exceptions import DataError, RouterLLMError, UnknownNameError
from routerllm.routers import create_router, load_router
from routerllm.routers.base import Candidate
from routerllm.routers.policy import PolicyRouter

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_cli import assert_one_line_error
from .test_learn_cli import ok_json
from .test_outcome_routing import MODELS, SIZES, write_csv, write_json

CANDIDATES = [Candidate(m, SIZES[m]) for m in MODELS]
# A config of other models, by tier: what a saved policy router is remapped to.
OTHER = [
    Candidate("q-1b", 1.0, tier="light"),
    Candidate("q-7b", 7.0, tier="medium"),
    Candidate("q-13b", 13.0, tier="medium"),
    Candidate("q-70b", 70.0, tier="heavy"),
]


def policy_rows(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Three kinds of prompt: greetings mid solves (standard), proofs only big solves
    (complex), riddles nobody solves (ambiguous)."""
    rng = np.random.default_rng(seed)
    prompts, scores = [], []
    for i in range(n):
        topic = rng.choice(["graphs", "parsers", "caches", "queues"])
        kind = i % 3
        if kind == 0:
            prompts.append(f"hello, define the word {topic} simply please {seed}-{i}")
            scores.append([1.0, 1.0, 1.0])
        elif kind == 1:
            prompts.append(f"prove the amortized bound of a concurrent {topic} variant {seed}-{i}")
            scores.append([0.0, 0.0, 1.0])
        else:
            prompts.append(f"riddle zorblax quixotic {topic} enigma unanswerable {seed}-{i}")
            scores.append([0.0, 0.0, 0.0])
    return prompts, np.array(scores)


def trained(**options: object) -> PolicyRouter:
    router = create_router("policy", CANDIDATES, 0, encoder="hashing", **options)
    assert isinstance(router, PolicyRouter)
    return router.fit(*policy_rows(150, 0), MODELS)


# -- the 9-cell matrix ------------------------------------------------------------
@pytest.mark.parametrize(
    ("medium", "large", "policy"),
    [
        # (score, answer) of the medium and the large model; None: no answer text
        ((1.0, "def f(): ..."), (1.0, "def f(): ..."), STANDARD),
        ((1.0, "def f(): ..."), (0.0, "def g(): ..."), STANDARD),
        ((1.0, "def f(): ..."), (0.0, "I don't know."), STANDARD),
        ((0.0, "def g(): ..."), (1.0, "def f(): ..."), COMPLEX),
        ((0.0, "def g(): ..."), (0.0, "def h(): ..."), AMBIGUOUS),
        ((0.0, "def g(): ..."), (0.0, "I'm not sure what is asked."), COMPLEX),
        ((0.0, "I cannot answer that."), (1.0, "def f(): ..."), COMPLEX),
        ((0.0, "I cannot answer that."), (0.0, "def h(): ..."), AMBIGUOUS),
        ((0.0, "I do not know"), (0.0, "Sorry, I can't help with that."), AMBIGUOUS),
    ],
)
def test_the_nine_cells_one_by_one(
    medium: tuple[float, str], large: tuple[float, str], policy: int
) -> None:
    labels = policy_labels([medium[0]], [large[0]], [medium[1]], [large[1]])
    assert labels.tolist() == [policy]


def test_the_matrix_has_nine_cells_and_scores_below_half_fail() -> None:
    assert len(ORACLE_MATRIX) == 9 and set(ORACLE_MATRIX.values()) == {0, 1, 2}
    # 0.5 is correct, 0.49 is not; a correct score wins over an IDK-looking text
    labels = policy_labels([0.5, 0.49, 1.0], [0.0, 0.6, 0.0], ["I don't know"] * 3, ["x"] * 3)
    assert labels.tolist() == [STANDARD, COMPLEX, STANDARD]
    # without answer texts a failure is wrong, never IDK: (wrong, wrong) is ambiguous
    assert policy_labels([0.0], [0.0]).tolist() == [AMBIGUOUS]
    with pytest.raises(DataError, match="one medium and one large score per prompt"):
        policy_labels([1.0, 0.0], [1.0])


@pytest.mark.parametrize(
    "text",
    [
        "I don't know.",
        "I do not know the answer to that question.",
        "I'm not sure how to solve this.",
        "I cannot answer that without more information.",
        "Sorry, I can't help with that.",
        "As an AI language model, I cannot browse the internet.",
        "['I am unable to determine the answer.']",
        "N/A",
        "unknown",
        "",
        "   ",
        # typographic apostrophes, as many models write them
        "I don\u2019t know.",
        "I\u2019m not sure what is asked.",
        "I\u2019m sorry, but I can\u2019t help with that.",
        # contractions of "I am unable to" and "I am not able to": until 2026-12-06 the
        # pattern asked for "I 'm unable to", with a space, and these were wrong answers
        "I'm unable to answer that question.",
        "I\u2019m unable to determine the answer.",
        "I'm not able to answer that.",
        "I'm sorry, but I'm unable to help with that.",
        "I have no idea.",
    ],
)
def test_idk_answers_are_detected(text: str) -> None:
    assert is_idk(text)


@pytest.mark.parametrize(
    "text",
    [
        "def add(a, b):\n    return a + b",
        "['Here is a Python function:\\n```python\\ndef f(x): return x\\n```']",
        "The capital of France is Paris.",
        "x = 'unknown'  # the default label",
        # a doubt after a long attempt is still an attempt
        "def f(x):\n" + "    y = x * 2\n" * 40 + "# I'm not sure this is optimal",
    ],
)
def test_attempts_are_not_idk(text: str) -> None:
    assert not is_idk(text)
    assert is_idk(None) is False


@pytest.mark.parametrize(
    "text",
    [
        # An "I don't know" that is the answer's code or a quotation, not the model's own
        # admission, made a failed attempt an IDK (and so, medium wrong, a "complex" label).
        'def answer():\n    return "I don\'t know"\n',
        "def answer():\n    return 'I don't know'\n",
        '```python\nprint("I don\'t know")\n```',
        "['```python\\nprint(\"I don't know\")\\n```']",  # RouterBench's escaped newlines
        'The parrot says "I don\'t know" whenever it is asked.',
        "The parrot says \u201cI don\u2019t know\u201d whenever it is asked.",
        "Return `I'm not sure` when the input is empty.",
        "The function returns 'I don't know' for an empty list.",
        "def f(x):\n    return x + 1  # I'm not sure this handles negatives",
    ],
)
def test_idk_words_in_code_or_a_quote_are_not_idk(text: str) -> None:
    assert not is_idk(text)


@pytest.mark.parametrize(
    "text",
    [
        'I don\'t know. The parrot would say "maybe".',
        "['I don\\'t know what \"foo\" means.']",  # escaped apostrophe of a list literal
        "I'm not sure.\n```python\nprint(1)\n```",
    ],
)
def test_an_admission_beside_code_or_a_quote_is_still_idk(text: str) -> None:
    assert is_idk(text)


def test_default_reference_models() -> None:
    names = ["tiny", "cheap-good", "mid", "best"]
    scores = np.array([[0, 1, 0, 1], [0, 1, 1, 1], [1, 0, 1, 1]], dtype=float)
    costs = np.array([1.0, 2.0, 5.0, 10.0])
    # large: best mean score; medium: best of the cheaper half (tiny, cheap-good)
    assert default_references(names, scores, costs) == ("cheap-good", "best")
    # the best model is cheap: medium is the best of the rest of the cheaper half
    assert default_references(["a", "b"], np.array([[1.0, 0.0]]), np.array([1.0, 2.0])) == (
        "b",
        "a",
    )
    with pytest.raises(DataError, match="needs at least 2"):
        default_references(["a"], np.array([[1.0]]), np.array([1.0]))


def test_one_named_reference_model_is_kept_and_the_other_chosen_among_the_rest() -> None:
    """Naming one reference model (--large-model b) was refused as "the medium and large
    reference models must differ, both are 'b'" where the default for the other one,
    chosen without regard to it, was that same model."""
    scores, costs = np.array([[1.0, 0.0]]), np.array([1.0, 2.0])  # a: cheap and best
    assert default_references(["a", "b"], scores, costs, large="b") == ("a", "b")
    assert default_references(["a", "b"], scores, costs, medium="a") == ("a", "b")
    names = ["tiny", "cheap-good", "mid", "best"]
    scores = np.array([[0, 1, 0, 1], [0, 1, 1, 1], [1, 0, 1, 1]], dtype=float)
    costs = np.array([1.0, 2.0, 5.0, 10.0])
    assert default_references(names, scores, costs, medium="best") == ("best", "cheap-good")
    assert default_references(names, scores, costs, large="mid") == ("cheap-good", "mid")
    with pytest.raises(UnknownNameError, match="unknown reference model 'nope'"):
        default_references(names, scores, costs, large="nope")
    router = trained(large_model="small")  # the default medium model, chosen first, was small
    assert (router.medium_model, router.large_model) == ("big", "small")


# -- the router -------------------------------------------------------------------
def test_the_router_learns_the_policies_and_maps_them_to_models() -> None:
    router = trained(medium_model="mid", large_model="big")
    assert router.selection["labels"] == {"standard": 50, "complex": 50, "ambiguous": 50}
    assert router.policy_models == {"standard": "mid", "complex": "big"}
    prompts, _ = policy_rows(30, 1)
    assert router.predict_policies(prompts) == [POLICIES[i % 3] for i in range(30)]
    # predicted success: mid where standard, big where standard or complex, small never
    probs = router.policy_probabilities(router.embed(prompts[:3]))
    decisions = router.route_batch(prompts[:3])
    for d, p in zip(decisions, probs, strict=True):
        assert d.scores == pytest.approx(
            {"small": 0.0, "mid": p[STANDARD], "big": p[STANDARD] + p[COMPLEX]}
        )
    # uncalibrated, the seed's rule: the most likely policy's model, an ambiguous prompt
    # ("do not escalate") staying on the standard one
    assert router.mode == "argmax"
    assert [d.model for d in decisions] == ["mid", "big", "mid"]
    assert decisions[0].reason.endswith(
        "(the most likely policy; ambiguous stays on the standard model)"
    )
    assert router.policy(router.embed(prompts[:3])).argmax(axis=1).tolist() == [1, 2, 1]
    # a policy's model barred: the best predicted success among the allowed
    assert [d.model for d in router.route_batch(prompts[:3], ["small", "mid"])] == ["mid"] * 3
    barred = router.route_batch(prompts[:3], ["small", "big"])
    assert [d.model for d in barred] == ["big"] * 3
    # and the reason says so (until 2026-12-04 it called big the most likely policy's)
    assert barred[0].reason.endswith(
        "(the most likely policy's model, mid, may not serve: the allowed model most likely "
        "to succeed)"
    )
    assert barred[1].reason.endswith("(the most likely policy; ambiguous stays on the standard model)")  # fmt: skip
    # lambda, knob 0 (quality first): big, the most likely to succeed, for every prompt
    router.mode = "lambda"
    assert {d.model for d in router.route_batch(prompts[:3])} == {"big"}
    # a knob pricing cost: standard stays on mid, complex escalates, an ambiguous
    # prompt (nobody solves it: do not escalate) goes to the cheapest model
    router.knob = 0.9
    decisions = router.route_batch(prompts[:3])
    assert [d.model for d in decisions] == ["mid", "big", "small"]
    assert (
        decisions[1].reason.startswith("policies standard p=")
        and "complex p=" in decisions[1].reason
    )
    assert decisions[1].confidence == pytest.approx(probs[1, STANDARD] + probs[1, COMPLEX])
    assert decisions[1].router == "policy"
    # a high price of cost keeps even complex prompts off the big model
    router.knob = 5.0
    assert "big" not in {d.model for d in router.route_batch(prompts)}


def test_default_references_and_a_configured_policy_map() -> None:
    router = trained()  # three models: the cheaper half is "small" alone
    assert (router.medium_model, router.large_model) == ("small", "big")
    remapped = trained(medium_model="mid", large_model="big", policy_map={"standard": "light"})
    # no model of the light tier: the nearest tier's smallest model serves it
    assert remapped.policy_models["standard"] == "small"
    named = trained(medium_model="mid", large_model="big", policy_map={"complex": "small"})
    assert named.policy_models["complex"] == "small"


def test_a_saved_router_reloads_to_identical_predictions_and_remaps_to_other_models(
    tmp_path: Path,
) -> None:
    router = trained(medium_model="mid", large_model="big")
    prompts, _ = policy_rows(30, 2)
    folder = router.save(tmp_path / "policy")
    again = load_router(folder, CANDIDATES)
    assert np.array_equal(again.predict_prompts(prompts), router.predict_prompts(prompts))  # type: ignore[attr-defined]
    assert again.route_batch(prompts) == router.route_batch(prompts)
    # a config of other models: no retraining, the same policies, mapped by tier
    other = load_router(folder, OTHER)
    assert isinstance(other, PolicyRouter)
    assert (other.medium_model, other.large_model) == (None, None)  # models of the old config
    again_prompts, scores = policy_rows(30, 4)  # trained again: references among its models
    retrained = load_router(folder, OTHER)
    retrained.fit(again_prompts, scores[:, [0, 1, 1, 2]], [m.name for m in OTHER])  # type: ignore[attr-defined]
    assert retrained.large_model == "q-70b"  # type: ignore[attr-defined]
    assert other.policy_models == {"standard": "q-7b", "complex": "q-70b"}
    X = router.embed(prompts)
    assert np.array_equal(other.policy_probabilities(X), router.policy_probabilities(X))
    policies = router.predict_policies(prompts)
    by_policy = {"standard": "q-7b", "complex": "q-70b", "ambiguous": "q-7b"}
    assert [d.model for d in other.route_batch(prompts)] == [by_policy[p] for p in policies]
    other.mode, other.knob = "lambda", 0.9  # ambiguous -> the cheapest
    by_policy["ambiguous"] = "q-1b"
    assert [d.model for d in other.route_batch(prompts)] == [by_policy[p] for p in policies]
    # the map set by the config when loading
    down = load_router(folder, OTHER, {"policy_map": {"standard": "light"}})
    assert down.policy_models["standard"] == "q-1b"  # type: ignore[attr-defined]
    # the options given, not the saved router, may be at fault: the error says so
    with pytest.raises(RouterLLMError, match=r"config.json or the options given for it \(policy_map\): .*neither a tier .* nor a model .*; map it to one of those \(policy_map, in router.options for a saved router\)$"):  # fmt: skip
        load_router(folder, OTHER, {"policy_map": {"complex": "mid"}})  # not in this config
    with pytest.raises(RouterLLMError, match=r"or the options given for it \(knob\): .*'knob' must be a number"):  # fmt: skip
        load_router(folder, CANDIDATES, {"knob": "high"})


def test_reference_models_still_configured_keep_their_policies_in_a_config_of_other_models(
    tmp_path: Path,
) -> None:
    folder = trained(medium_model="mid", large_model="big").save(tmp_path / "policy")
    # "small" left out and "q-1b" added, all three of one tier: the references, still
    # configured, keep serving standard and complex (by tier both went to q-1b)
    models = [Candidate("q-1b", 1.0), Candidate("mid", 8.0), Candidate("big", 70.0)]
    router = load_router(folder, models)
    assert isinstance(router, PolicyRouter)
    assert (router.medium_model, router.large_model) == ("mid", "big")
    assert router.policy_models == {"standard": "mid", "complex": "big"}
    # one reference gone: its policy goes by tier, the other keeps its reference
    router = load_router(folder, [Candidate("q-1b", 1.0), Candidate("big", 70.0, "heavy")])
    assert (router.medium_model, router.large_model) == (None, "big")  # type: ignore[attr-defined]
    assert router.policy_models == {"standard": "q-1b", "complex": "big"}  # type: ignore[attr-defined]


def test_a_policy_router_from_a_config_path(tmp_path: Path) -> None:
    folder = trained(medium_model="mid", large_model="big").save(tmp_path / "policy")
    data = tiny_config_dict(tmp_path)
    data["router"] = {"name": "policy", "path": str(folder)}
    router = build_router(load_config(write_config(tmp_path, data)))
    assert router.name == "policy"
    assert router.policy_models == {"standard": "tiny-medium", "complex": "tiny-heavy"}  # type: ignore[attr-defined]
    data["router"]["options"] = {"policy_map": {"standard": "light"}}
    router = build_router(load_config(write_config(tmp_path, data)))
    assert router.policy_models["standard"] == "tiny-light"  # type: ignore[attr-defined]


def test_a_broken_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    folder = trained().save(tmp_path / "policy")
    meta = json.loads((folder / "config.json").read_text())
    del meta["weights_sha256"]
    (folder / "config.json").write_text(json.dumps(meta))
    np.savez(folder / "weights.npz", coef=np.zeros((4, 2)), intercept=np.zeros(2))
    with pytest.raises(RouterLLMError, match="does not fit the router: policy weights must be"):
        load_router(folder, CANDIDATES)
    np.savez(folder / "weights.npz", coef=np.zeros((4, 3)))
    with pytest.raises(RouterLLMError, match="corrupt: no array 'intercept'"):
        load_router(folder, CANDIDATES)
    (folder / "weights.npz").write_bytes(b"not a zip")
    with pytest.raises(RouterLLMError, match="is corrupt"):
        load_router(folder, CANDIDATES)


def test_calibration_and_the_do_no_harm_fallback() -> None:
    router = trained(medium_model="mid", large_model="big")
    prompts, scores = policy_rows(60, 3)
    cal = router.calibrate(prompts, scores, "quality=0.95", MODELS)
    # big alone solves 40 of 60 (greetings and proofs); 95 % of it is 38: the cheapest
    # setting sends 18 of the 20 proofs to big (the grid of before 2026-12-05 found 20)
    assert cal["target_reached"] and cal["quality"] == pytest.approx(38 / 60)
    assert cal["shares"]["big"] == pytest.approx(18 / 60)
    assert cal["beats_fixed_mix"] and cal["fallback_mix"] is None
    budget = router.calibrate(prompts, scores, "max_cost=0.5", MODELS)
    assert budget["cost"] <= 0.5 * SIZES["big"] + 1e-9
    # prompts whose policies say nothing of who solves them: the fixed mix does better
    # (on 300 prompts: on 60, chance lets the router ahead for some draws of the noise)
    prompts, _ = policy_rows(300, 3)
    rng = np.random.default_rng(0)
    noise = (rng.random((300, 3)) < [0.2, 0.5, 0.9]).astype(float)
    fallback = router.calibrate(prompts, noise, "max_cost=0.6", MODELS)
    assert not fallback["beats_fixed_mix"] and router.mix is not None
    assert set(fallback["fallback_mix"]) == {"mid", "big"}
    assert {d.reason.endswith("which calibration found better)") for d in
            router.route_batch(prompts[:3])} == {True}  # fmt: skip


def test_training_reads_idk_answers_from_the_dataset() -> None:
    prompts, scores = policy_rows(30, 0)
    responses = [["code"] * 3 for _ in prompts]
    for i in range(2, 30, 3):  # riddles: mid fails, big says it does not know
        responses[i][2] = "I don't know."
    data = OutcomeDataset(prompts, MODELS, scores, responses=responses)
    router = create_router("policy", CANDIDATES, 0, encoder="hashing", medium_model="mid",
                           large_model="big")  # fmt: skip
    router.fit_dataset(data)  # type: ignore[attr-defined]
    # (wrong, IDK) is complex: the riddles escalate now
    assert router.selection["labels"] == {"standard": 10, "complex": 20, "ambiguous": 0}
    assert router.selection["idk_from_responses"] is True


def test_a_csv_without_a_models_answers_does_not_count_its_failures_as_idk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A RouterBench CSV without `big|model_response` gave big an empty answer on every
    prompt, an IDK: the riddles both models fail were labelled complex (wrong, IDK) and
    escalated to big, which fails them. Answers of only some models are not read."""
    full = write_csv(tmp_path / "full.csv", *policy_rows(30, 0))
    with full.open(newline="") as f:
        rows = list(csv.reader(f))
    keep = [j for j, c in enumerate(rows[0]) if c != "big|model_response"]
    partial = tmp_path / "partial.csv"
    with partial.open("w", newline="") as f:
        csv.writer(f).writerows([[row[j] for j in keep] for row in rows])
    data = load_outcomes(partial)
    assert data.responses is None
    assert "big" in caplog.text and "model_response" in caplog.text
    router = create_router("policy", CANDIDATES, 0, encoder="hashing", medium_model="mid",
                           large_model="big")  # fmt: skip
    router.fit_dataset(data)  # type: ignore[attr-defined]
    assert router.selection["labels"] == {"standard": 10, "complex": 10, "ambiguous": 10}
    assert load_outcomes(full).responses is not None  # every model's answers: read


@pytest.mark.parametrize(
    ("options", "data", "error", "message"),
    [
        ({"medium_model": "nope"}, None, UnknownNameError, "unknown reference model 'nope'"),
        ({"medium_model": "big", "large_model": "big"}, None, DataError, "must differ"),
        ({}, "one-model", DataError, "needs at least 2"),
    ],
)
def test_bad_training_inputs(
    options: dict[str, str], data: str | None, error: type[Exception], message: str
) -> None:
    prompts, scores = policy_rows(12, 0)
    router = create_router("policy", CANDIDATES[:1] if data else CANDIDATES, 0,
                           encoder="hashing", **options)  # fmt: skip
    names = MODELS[:1] if data else MODELS
    with pytest.raises(error, match=message):
        router.fit(prompts, scores[:, : len(names)], names)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("policy_map", "message"),
    [
        ({"easy": "medium"}, "names policy 'easy'; valid: standard, complex"),
        ({"ambiguous": "light"}, "ambiguous prompts .both models fail. go to the cheapest model"),
        ({"complex": "huge"}, "sends 'complex' to 'huge', neither a tier"),
        ("heavy", "option 'policy_map' must be an object of strings"),
    ],
)
def test_a_bad_policy_map_is_a_clear_error(policy_map: object, message: str) -> None:
    with pytest.raises(RouterLLMError, match=message):
        create_router("policy", CANDIDATES, 0, encoder="hashing", policy_map=policy_map)


# -- the CLI ------------------------------------------------------------------------
def test_train_and_eval_routing_from_the_command_line(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", *policy_rows(150, 0))
    (tmp_path / "t").mkdir()
    test = write_json(tmp_path / "t" / "test.json", *policy_rows(60, 1))
    out = tmp_path / "policy"
    got = ok_json(
        "train", "--router", "policy", "--data", str(train), "--out", str(out),
        "--encoder", "hashing", "--medium-model", "mid", "--large-model", "big",
        "--calibrate", "quality=0.95",
    )  # fmt: skip
    labels = got["selection"]["labels"]  # of the 80 % not held out for calibration
    assert sum(labels.values()) == 120 and min(labels.values()) > 30
    assert got["selection"]["idk_from_responses"] is True  # the CSV has answers
    assert got["calibration"]["target_reached"] and got["train_size"] == 120
    assert load_router(out, CANDIDATES).name == "policy"
    ev = ok_json(
        "eval-routing", "--data", str(write_json(tmp_path / "train.json", *policy_rows(150, 0))),
        "--test", str(test), "--routers", "policy,logreg", "--encoder", "hashing",
    )  # fmt: skip
    assert set(ev["routers"]["policy"]) == set(ev["routers"]["logreg"])
    assert ev["selection"]["policy"]["labels"]["complex"] > 0
    assert ev["routers"]["policy"]["aiq"] > ev["routers"]["random"]["aiq"]


def test_trained_without_calibration_it_routes_by_the_most_likely_policy(
    tmp_path: Path,
) -> None:
    train = write_json(tmp_path / "train.json", *policy_rows(150, 0))
    out = tmp_path / "policy"
    got = ok_json(
        "train", "--router", "policy", "--data", str(train), "--out", str(out),
        "--encoder", "hashing", "--medium-model", "mid", "--large-model", "big",
    )  # fmt: skip
    assert "calibration" not in got and got["mode"] == "argmax"
    router = load_router(out, CANDIDATES)
    assert isinstance(router, PolicyRouter) and router.mode == "argmax"
    prompts, _ = policy_rows(30, 1)
    # not every prompt escalated, as lambda's knob 0 would
    assert [d.model for d in router.route_batch(prompts)] == ["mid", "big", "mid"] * 10


def test_a_saved_router_that_escalates_every_prompt_is_a_warning_when_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Saved uncalibrated before argmax was the default: lambda, knob 0."""
    folder = trained(medium_model="mid", large_model="big", mode="lambda").save(tmp_path / "p")
    load_router(folder, CANDIDATES)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "sends every prompt to its complex model (big)" in warning
    assert "mode: argmax" in warning
    caplog.clear()
    assert load_router(folder, CANDIDATES, {"mode": "argmax"}).mode == "argmax"  # type: ignore[attr-defined]
    assert load_router(folder, CANDIDATES, {"knob": 0.9}).knob == 0.9  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    train = write_json(tmp_path / "train.json", *policy_rows(30, 0))
    base = ("train", "--router", "policy", "--data", str(train), "--out", str(tmp_path / "o"),
            "--encoder", "hashing")  # fmt: skip
    assert_one_line_error(
        cli_in_process(*base, "--decision", "argmax", "--calibrate", "quality=0.9"),
        "--decision argmax has no knob to calibrate",
    )
    assert_one_line_error(
        cli_in_process("train", "--router", "logreg", "--data", str(train),
                       "--out", str(tmp_path / "o"), "--encoder", "hashing", "--decision", "argmax"),
        "unknown decision mode 'argmax' for the logreg router; valid: lambda, threshold",
    )  # fmt: skip
    assert_one_line_error(
        cli_in_process(*base, "--medium-model", "gpt-9"),
        "unknown reference model 'gpt-9'; valid names",
    )
    assert_one_line_error(
        cli_in_process("train", "--router", "logreg", "--data", str(train),
                       "--out", str(tmp_path / "o"), "--large-model", "big"),
        "--large-model is for the policy router",
    )  # fmt: skip
    prompts, scores = policy_rows(30, 0)
    one = tmp_path / "one" / "train.json"
    one.parent.mkdir()
    one.write_text(json.dumps([{"question": p, "scores": {"mid": s[1]}}
                               for p, s in zip(prompts, scores, strict=True)]))  # fmt: skip
    assert load_outcomes(one).models == ["mid"]
    assert_one_line_error(
        cli_in_process(
            "train", "--router", "policy", "--data", str(one), "--out", str(tmp_path / "o")
        ),
        "needs at least 2",
    )


def test_a_config_whose_models_have_class_ids_is_mapped_by_tier(tmp_path: Path) -> None:
    # The local ladder gives its models the classifier's class ids (the 1.5B is class
    # 0): a tier must still go to that tier's model, not to the model of class 0.
    folder = trained(medium_model="mid", large_model="big").save(tmp_path / "policy")
    models = load_config("local").models
    router = load_router(folder, models)
    assert router.policy_models == {  # type: ignore[attr-defined]
        "standard": "qwen2.5-coder-0.5b",
        "complex": "qwen2.5-coder-1.5b",
    }
    down = load_router(folder, models, {"policy_map": {"standard": "light"}})
    assert down.policy_models["standard"] == "smollm2-135m"  # type: ignore[attr-defined]
    prompts, _ = policy_rows(30, 2)
    policies = down.predict_policies(prompts)  # type: ignore[attr-defined]
    chosen = [d.model for d in down.route_batch(prompts)]
    expected = {"standard": "smollm2-135m", "complex": "qwen2.5-coder-1.5b"}
    assert chosen == [expected.get(p, "smollm2-135m") for p in policies]


def test_train_help_gives_each_reference_models_own_default() -> None:
    """`routerllm train --help` gave --large-model the medium model's default ("the best
    model of the cheaper half") as well: each says its own."""
    import argparse

    from routerllm.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {
        a.option_strings[0]: " ".join((a.help or "").split())
        for a in sub.choices["train"]._actions
        if a.option_strings
    }
    assert "cheaper half" in helps["--medium-model"]
    assert "cheaper half" not in helps["--large-model"]
    assert "the best model on --data" in helps["--large-model"]


def test_a_prompt_gets_the_same_decision_alone_as_in_any_batch() -> None:
    # The batch's matrix product summed in another order than one row's: 61 of 300
    # prompts got a confidence (and 119 scores) a last bit off their route() one.
    router = trained(medium_model="mid", large_model="big")
    prompts, _ = policy_rows(300, 7)
    batch = router.route_batch(prompts)
    assert [router.route(p) for p in prompts] == batch
    assert router.route_batch(prompts[::-1]) == batch[::-1]
    assert np.array_equal(router.score(prompts[:1]), router.score(prompts)[:1])


def test_labels_match_an_independent_recomputation_on_random_outcomes() -> None:
    rng = np.random.default_rng(7)
    answers = ["I don't know", "def f():\n    return 1", "", "N/A", "It is 4."]
    n = 300
    medium, large = rng.choice([0, 0.25, 0.5, 0.75, 1.0], (2, n))
    m_text, g_text = rng.choice(answers, n).tolist(), rng.choice(answers, n).tolist()

    def kind(score: float, text: str) -> str:
        return "ok" if score >= 0.5 else ("idk" if text in ("I don't know", "", "N/A") else "bad")

    expected = []
    for a, b in zip(
        map(kind, medium, m_text), map(kind, large, g_text), strict=True
    ):  # standard 0, complex 1, ambiguous 2
        expected.append(0 if a == "ok" else 1 if b == "ok" or (a, b) == ("bad", "idk") else 2)
    assert policy_labels(medium, large, m_text, g_text).tolist() == expected
    assert set(expected) == {0, 1, 2}


@pytest.mark.parametrize("bad", [float("nan"), -0.5, 1.5, float("inf")])
def test_scores_that_are_not_outcomes_are_refused_not_labelled(bad: float) -> None:
    # NaN would be "wrong", 1.5 "correct": a label from a score that is none
    with pytest.raises(DataError, match=r"large score of prompt 2 is .*, not a number in \[0, 1\]"):
        policy_labels([0.2, 0.9], [0.0, bad])


@pytest.mark.parametrize(
    ("intercepts", "model"),
    [
        # P(standard) = P(complex) = 1/2 (ambiguous e^-50, lost beside 2): a tie stays
        ((0.0, 0.0, -50.0), "mid"),
        # P(complex) = P(ambiguous) = 1/2: "do not escalate" ties escalation: stays
        ((-50.0, 0.0, 0.0), "mid"),
        # complex ahead of both by e^0.01: escalates
        ((0.0, 0.01, -50.0), "big"),
        ((-50.0, 0.01, 0.0), "big"),
        # ambiguous the most likely: the standard model, not escalated
        ((0.0, 0.01, 0.02), "mid"),
    ],
)
def test_argmax_escalates_only_when_complex_is_strictly_the_most_likely(
    intercepts: tuple[float, float, float], model: str
) -> None:
    """The seed's rule: escalate to the complex model only when complex is the most
    likely policy; a tie (with standard or with ambiguous) stays on the standard model.
    The weights are set by hand (zero, so every prompt gets softmax(intercepts))."""
    router = trained(medium_model="mid", large_model="big")
    assert router.mode == "argmax" and router.policy_models == {"standard": "mid", "complex": "big"}
    router.set_state({"coef": np.zeros_like(router.W), "intercept": np.array(intercepts)})
    decision = router.route("any prompt at all")
    assert decision.model == model, decision.reason


def test_two_policies_present_learn_the_right_sides_and_the_third_gets_no_probability() -> None:
    """Training data where nobody fails both models (no ambiguous label): the binary fit
    must give each of the two policies its own side, and ambiguous e^-50 at most (its
    intercept 50 below the others', its weights 0; standard's logit is 0)."""
    prompts, scores = policy_rows(150, 0)
    keep = [i for i in range(len(prompts)) if i % 3 != 2]  # greetings and proofs only
    router = create_router("policy", CANDIDATES, 0, encoder="hashing", medium_model="mid", large_model="big")  # fmt: skip
    assert isinstance(router, PolicyRouter)
    router.fit([prompts[i] for i in keep], scores[keep], MODELS)
    assert router.selection["labels"] == {"standard": 50, "complex": 50, "ambiguous": 0}
    test, _ = policy_rows(6, 1)  # greeting, proof, riddle, greeting, proof, riddle
    probs = router.policy_probabilities(router.embed(test[:2]))
    assert probs[0, STANDARD] > 0.5 > probs[0, COMPLEX]
    assert probs[1, COMPLEX] > 0.5 > probs[1, STANDARD]
    assert (probs[:, AMBIGUOUS] <= np.exp(-50.0)).all()
    assert [d.model for d in router.route_batch(test[:2])] == ["mid", "big"]


def test_the_medium_reference_on_a_quality_tie_is_the_cheaper_model() -> None:
    # cheaper half by cost: b (1), a (2), both solving half the prompts; d is the best
    names, costs = ["a", "b", "c", "d"], np.array([2.0, 1.0, 5.0, 10.0])
    scores = np.array([[1, 0, 1, 1], [0, 1, 0, 1]], dtype=float)
    assert default_references(names, scores, costs) == ("b", "d")


def test_a_single_policy_in_the_training_data_is_every_prompts_policy() -> None:
    """Every training prompt standard (the medium model solves all): there is nothing to
    tell apart, so each prompt is standard with probability 1 (the others e^-50 below),
    and its decision on the standard model is sure of success (confidence 1)."""
    prompts, _ = policy_rows(30, 0)
    router = create_router("policy", CANDIDATES, 0, encoder="hashing", medium_model="mid", large_model="big")  # fmt: skip
    assert isinstance(router, PolicyRouter)
    router.fit(prompts, np.ones((30, 3)), MODELS)
    test, _ = policy_rows(3, 1)
    np.testing.assert_array_equal(router.policy_probabilities(router.embed(test))[:, STANDARD], 1.0)  # fmt: skip
    assert [(d.model, d.confidence) for d in router.route_batch(test)] == [("mid", 1.0)] * 3
