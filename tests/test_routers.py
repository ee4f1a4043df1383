import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from routerllm.config import load_config
from routerllm.demo import DEMO_PROMPTS
from routerllm.exceptions import RouterLLMError, UnknownNameError
from routerllm.registry import ROUTERS
from routerllm.routers import create_router, load_router
from routerllm.routers.base import Candidate, Router
from routerllm.routers.rules import RuleBasedRouter

from .conftest import another_save_meanwhile, rewrite_weights


@pytest.fixture(scope="module")
def ladder():  # type: ignore[no-untyped-def]
    return load_config("local").models


def test_unknown_router_lists_valid_names(ladder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownNameError) as err:
        create_router("bert-magic", ladder)
    assert re.search(r"valid names: .*largest, .*random, rules, smallest", str(err.value))
    assert set(ROUTERS.names()) >= {"random", "rules", "largest", "smallest"}


def test_names_added_for_a_block_are_gone_after_it_and_replaced_ones_back() -> None:
    """benchmarks/moe_defaults.py registered six ``moe-N`` names for good: a test that
    ran it in-process left them in every later error's list of valid routers (CI)."""
    before = ROUTERS.names()
    target = "routerllm.routers.moe:MoERouter"
    with pytest.raises(KeyError), ROUTERS.added({"moe-0": target, "rules": target}):
        assert ROUTERS.get("rules") is ROUTERS.get("moe-0")
        raise KeyError("a failure inside the block")
    assert ROUTERS.names() == before
    assert ROUTERS.get("rules").__name__ == "RuleBasedRouter"


def test_an_unknown_name_close_to_a_valid_one_says_which_was_likely_meant(ladder) -> None:  # type: ignore[no-untyped-def]
    """As an unknown config key does (``budget: unknown key (did you mean 'budgets'?)``)."""
    with pytest.raises(UnknownNameError, match=r"unknown router 'rulez' \(did you mean 'rules'\?\); valid names: classifier, "):  # fmt: skip
        create_router("rulez", ladder)
    with pytest.raises(UnknownNameError, match=r"unknown router 'bert-magic'; valid names: "):
        create_router("bert-magic", ladder)  # nothing close: the names alone


def test_random_router_is_seedable_and_confident(ladder) -> None:  # type: ignore[no-untyped-def]
    prompts = [f"prompt {i}" for i in range(300)]
    a = create_router("random", ladder, seed=7).route_batch(prompts)
    b = create_router("random", ladder, seed=7).route_batch(prompts)
    assert [d.model for d in a] == [d.model for d in b]
    conf = np.array([d.confidence for d in a])
    assert conf.min() >= 0.5 and conf.max() <= 1.0
    counts = {m.name: sum(d.model == m.name for d in a) for m in ladder}
    assert all(60 <= c <= 140 for c in counts.values()), counts  # ~100 each
    scores = create_router("random", ladder, seed=1).score(prompts[:5])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)


def test_random_router_only_picks_allowed(ladder) -> None:  # type: ignore[no-untyped-def]
    allowed = [ladder[0].name, ladder[2].name]
    decisions = create_router("random", ladder, seed=3).route_batch(["x"] * 100, allowed)
    assert {d.model for d in decisions} == set(allowed)


def test_rules_router_sends_trivial_to_light_and_hard_code_to_heavy(ladder) -> None:  # type: ignore[no-untyped-def]
    router = create_router("rules", ladder)
    tier = {m.name: m.tier for m in ladder}
    got = {p: tier[router.route(p).model] for p in DEMO_PROMPTS}
    assert got["Translate 'hello' to French."] == "light"
    assert got["What is a Python list?"] == "light"
    assert got["Explain the difference between TCP and UDP."] == "medium"
    assert got[DEMO_PROMPTS[-1]] == "heavy"  # thread-safe LRU cache
    decision = router.route(DEMO_PROMPTS[-1])
    assert "hard engineering terms" in decision.reason and 0.5 <= decision.confidence <= 1.0


def test_rules_router_scores_by_hand(ladder) -> None:  # type: ignore[no-untyped-def]
    router = RuleBasedRouter(ladder)
    # base 0.1 + code task 0.25 + 3 hard terms (thread-safe, LRU, cache) x 0.2, clipped to 1
    score, fired, is_code = router.analyse("Implement a thread-safe LRU cache")
    assert score == pytest.approx(0.95) and is_code
    assert fired == ["code task", "hard engineering terms x3"]
    assert router.tier_of(0.95) == (2, 1.0)
    # 0.1 - 0.3 (translate) clipped to 0 -> light, 0.25 from the medium threshold
    assert router.analyse("translate cat")[0] == 0.0
    assert router.tier_of(0.0) == (0, 1.0)
    assert router.tier_of(0.30)[0] == 1 and router.tier_of(0.30)[1] == pytest.approx(0.6)
    # a bare function stub: 0.1 + code in the request 0.25 -> medium, a code model
    stub = 'def add(a, b):\n    """Return the sum of a and b."""\n'
    assert router.analyse(stub) == (pytest.approx(0.35), ["code in the request"], True)
    assert router.analyse("define cat")[1] == ["trivial request"]  # "define" is no definition


#: Prompts and the confidence the rules router states for them: 0.5 + 0.5 x the
#: complexity's distance to the nearest threshold / 0.25 (capped at 1).
STATED_CONFIDENCES = {
    "What is a Python list?": 0.9,  # 0.1 - 0.3 + 0.25 = 0.05, 0.2 under medium's 0.25
    "Write a haiku about the sea.": 0.8,  # 0.1, 0.15 under 0.25
    "Explain the difference between TCP and UDP.": 0.6,  # 0.3, 0.05 over 0.25
    "Write a Python function that reverses a list.": 0.7,  # 0.35, 0.1 over 0.25
    "Why is the sky blue? Explain step by step": 0.8,  # 0.4, 0.15 from both
    "Explain how to implement a parser": 0.9,  # 0.75, 0.2 over heavy's 0.55
}


def test_rules_router_confidences_are_the_stated_numbers_exactly(ladder) -> None:  # type: ignore[no-untyped-def]
    """Sums of float weights, and the row's normalising, made 0.7 read 0.6999999999999998
    (and 0.9 0.8999999999999999) in ``result.confidence`` and the server's JSON."""
    general = [Candidate(n, p, t) for n, p, t in (("l", 0.1, "light"), ("m", 0.5, "medium"), ("h", 1.5, "heavy"))]  # fmt: skip
    for models in (ladder, general):
        router = RuleBasedRouter(models)
        got = {p: router.route(p).confidence for p in STATED_CONFIDENCES}
        assert got == STATED_CONFIDENCES  # ==, not approx
        assert [d.confidence for d in router.route_batch(list(STATED_CONFIDENCES))] == list(STATED_CONFIDENCES.values())  # fmt: skip
        assert {p: router.tier_of(router.analyse(p)[0])[1] for p in STATED_CONFIDENCES} == STATED_CONFIDENCES  # fmt: skip


def test_rules_scores_summing_to_a_threshold_reach_it(ladder) -> None:  # type: ignore[no-untyped-def]
    """The weights are added as decimals are: 0.1 + 0.25 + 0.1 + 0.1 summed as floats is
    0.5499999999999999, under heavy's 0.55, and such a prompt went to the medium model
    (two of HumanEval's stubs, /87 and /105, until 2026-12-06)."""
    router = RuleBasedRouter(ladder)
    # base 0.1 + code task 0.25 + multi-part 0.1 + long prompt (61 to 180 words) 0.1
    prompt = "Write a Python function, step by step. " + "word " * 60
    score, fired, _ = router.analyse(prompt)
    assert fired == ["code task", "multi-part request", "long prompt (67 words)"]
    assert score == 0.55  # ==: the score a reader adds up
    assert router.tier_of(score) == (2, 0.5)
    tier = {m.name: m.tier for m in ladder}
    assert tier[router.route(prompt).model] == "heavy"


def test_unavailable_target_falls_back_to_a_bigger_model(ladder) -> None:  # type: ignore[no-untyped-def]
    router = create_router("rules", ladder)
    names = [m.name for m in router.models]
    decision = router.route("Translate 'hello' to French.", allowed=names[1:])
    assert decision.model == names[1]
    assert "unavailable" in decision.reason
    with pytest.raises(RouterLLMError, match="none of the router's models is available"):
        router.route("x", allowed=[])


def test_largest_and_smallest(ladder) -> None:  # type: ignore[no-untyped-def]
    names = [m.name for m in create_router("largest", ladder).models]
    assert create_router("largest", ladder).route("x").model == names[-1]
    assert create_router("largest", ladder).route("x", allowed=names[:2]).model == names[1]
    assert create_router("smallest", ladder).route("x").model == names[0]


@pytest.mark.parametrize("thresholds", [[0.5], [0.2, 0.5, 0.7], ["a", "b"], 0.3, [True, 0.5]])
def test_rules_thresholds_that_are_not_two_numbers_say_what_they_are(ladder, thresholds) -> None:  # type: ignore[no-untyped-def]
    # they said "not enough values to unpack", "'float' object is not iterable"...
    with pytest.raises(RouterLLMError, match=r"thresholds are two complexities in \[0, 1\], medium's then heavy's \(e.g. \[0.25, 0.55\]\)"):  # fmt: skip
        create_router("rules", ladder, thresholds=thresholds)


def test_save_load_round_trip(tmp_path: Path, ladder) -> None:  # type: ignore[no-untyped-def]
    router = create_router("rules", ladder, thresholds=[0.2, 0.6])
    router.save(tmp_path / "r")
    again = load_router(tmp_path / "r", ladder)
    prompts = list(DEMO_PROMPTS)
    np.testing.assert_array_equal(router.score(prompts), again.score(prompts))
    assert again.t_medium == 0.2 and again.t_heavy == 0.6


def test_a_router_path_that_does_not_exist_is_said_so_naming_the_setting(tmp_path: Path) -> None:
    """``router.path: /nowhere`` said "/nowhere: not a saved router (no config.json)",
    naming neither the setting nor the file it was set in, until 2026-12-05."""
    from routerllm.system import RouterLLM

    from .conftest import tiny_config_dict, write_config

    cfg = write_config(
        tmp_path,
        tiny_config_dict(tmp_path, router={"name": "knn", "path": str(tmp_path / "nowhere")}),
    )
    with pytest.raises(RouterLLMError) as err:
        RouterLLM(load_config(cfg))
    assert str(err.value) == (
        f"router.path in {cfg}: {tmp_path / 'nowhere'}: no such folder (a saved router is the "
        f"folder routerllm train saved it in, its --out)"
    )
    assert not (tmp_path / "requests.sqlite").exists()  # refused before anything is opened


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (
            {"long_prompt_word": 50},
            "bad options for router 'rules': unknown option 'long_prompt_word' (did you mean "
            "'long_prompt_words'?); its options are base, long_prompt_words, thresholds",
        ),
        (
            {"long_prompt_words": "many"},
            "bad options for router 'rules': option 'long_prompt_words' must be an integer, "
            'got "many"',
        ),
    ],
)
def test_a_bad_router_option_in_a_config_names_the_setting_and_the_file(
    tmp_path: Path, options: dict[str, object], said: str
) -> None:
    """Until 2026-12-05 ``router.options`` said "bad options for router 'rules': ...", naming
    neither the setting nor the file (router.name and router.path did), and a misspelt
    option gave no hint of the one meant."""
    from routerllm.system import RouterLLM

    from .conftest import tiny_config_dict, write_config

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, router={"name": "rules", "options": options}))  # fmt: skip
    with pytest.raises(RouterLLMError) as err:
        RouterLLM(load_config(cfg))
    assert str(err.value) == f"router.options in {cfg}: {said}"
    assert not (tmp_path / "requests.sqlite").exists()  # refused before anything is opened


def test_broken_checkpoints_are_clear_errors(tmp_path: Path, ladder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RouterLLMError, match="not a saved router"):
        load_router(tmp_path, ladder)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RouterLLMError, match="corrupt"):
        load_router(tmp_path, ladder)
    (tmp_path / "config.json").write_text('{"router": "rules", "models": ["gpt-9"]}')
    with pytest.raises(RouterLLMError, match="not in this config: gpt-9"):
        load_router(tmp_path, ladder)
    (tmp_path / "config.json").write_text(
        '{"router": "rules", "models": ["smollm2-135m"], "options": {"bogus": 1}}'
    )
    with pytest.raises(RouterLLMError, match="bad options for router 'rules': unknown option 'bogus'; its options are base, long_prompt_words, thresholds$"):  # fmt: skip
        load_router(tmp_path, ladder)
    for version in ("Infinity", "1.5", '"2"', "0"):
        (tmp_path / "config.json").write_text(f'{{"router": "rules", "models": ["smollm2-135m"], "format_version": {version}}}')  # fmt: skip
        with pytest.raises(RouterLLMError, match="config.json is corrupt: 'format_version' must be a whole number >= 1"):  # fmt: skip
            load_router(tmp_path, ladder)
    for options in ("null", "5", '"x"', '[["base", 1]]'):  # 'NoneType' object is not iterable
        (tmp_path / "config.json").write_text(f'{{"router": "rules", "models": ["smollm2-135m"], "options": {options}}}')  # fmt: skip
        with pytest.raises(RouterLLMError, match="config.json is corrupt: 'options' must be a mapping of names to values, got"):  # fmt: skip
            load_router(tmp_path, ladder)
    (tmp_path / "config.json").write_text('{"router": "rules", "models": ["smollm2-135m"]}')
    (tmp_path / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(RouterLLMError, match="weights.npz is corrupt"):
        load_router(tmp_path, ladder)


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999, 1.5, True, "3", float("inf")])
def test_a_router_seed_is_one_every_library_accepts(ladder, seed) -> None:  # type: ignore[no-untyped-def]
    # scikit-learn and numpy take seeds in [0, 2**32 - 1]; a bigger one failed in fit.
    with pytest.raises(RouterLLMError, match=r"seed must be an integer >= 0 and <= 4294967295"):
        create_router("random", ladder, seed=seed)
    assert create_router("random", ladder, seed=2**32 - 1).seed == 2**32 - 1


@pytest.fixture(scope="module")
def saved_classifier(ladder, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from routerllm.data.labeled import LabeledPrompt
    from routerllm.training.trainer import TrainingArguments

    router = create_router("classifier", ladder, encoder="hashing:32")
    data = [LabeledPrompt(f"prompt {i} of kind {i % 4}", i % 4) for i in range(16)]
    router.fit(data, [], TrainingArguments(epochs=1, warmup_steps=0, progress=False))  # type: ignore[attr-defined]
    return router.save(tmp_path_factory.mktemp("clf") / "router")


def copy_router(src: Path, dst: Path, **meta_changes: object) -> Path:
    dst.mkdir()
    (dst / "weights.npz").write_bytes((src / "weights.npz").read_bytes())
    meta = json.loads((src / "config.json").read_text())
    meta.update(meta_changes)
    (dst / "config.json").write_text(json.dumps(meta))
    return dst


def test_a_bad_saved_option_blames_config_json(
    saved_classifier: Path, tmp_path: Path, ladder
) -> None:  # type: ignore[no-untyped-def]
    meta = json.loads((saved_classifier / "config.json").read_text())
    bogus = copy_router(saved_classifier, tmp_path / "enc",
                        options={**meta["options"], "encoder": "bogus"})  # fmt: skip
    with pytest.raises(RouterLLMError) as err:
        load_router(bogus, ladder)
    assert str(err.value).startswith(f"bad {bogus}/config.json: unknown encoder 'bogus'")
    seed = copy_router(saved_classifier, tmp_path / "seed", seed=2**40)
    with pytest.raises(RouterLLMError, match=rf"bad {seed}/config.json: .*seed must be"):
        load_router(seed, ladder)


def test_weights_of_the_wrong_shape_are_a_one_line_error(
    saved_classifier: Path,
    tmp_path: Path,
    ladder,  # type: ignore[no-untyped-def]
) -> None:
    folder = copy_router(saved_classifier, tmp_path / "shape")
    rewrite_weights(folder, lambda arrays: {**arrays, "head.weight": np.zeros((5, 32), np.float32),
                                            "head.bias": np.zeros(7, np.float32)})  # fmt: skip
    with pytest.raises(RouterLLMError) as err:
        load_router(folder, ladder)
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        f"{folder}/weights.npz: saved weights do not fit"
    )
    assert "size mismatch for head.weight" in message and "(and 1 more)" in message


@pytest.mark.parametrize("value", [np.nan, 1e300], ids=["nan", "past-float32"])
def test_a_saved_classifier_with_weights_that_are_not_finite_is_refused(
    saved_classifier: Path, tmp_path: Path, ladder, value: float
) -> None:  # type: ignore[no-untyped-def]
    # They loaded into torch, and every prompt went to class 0 with p=nan in its reason
    # (float64 weights past float32's range too: inf as the head's float32 weights).
    folder = copy_router(saved_classifier, tmp_path / "nan")
    rewrite_weights(folder, lambda arrays: {**arrays, "head.bias": np.full(arrays["head.bias"].shape, value)})  # fmt: skip
    with pytest.raises(RouterLLMError) as err:
        load_router(folder, ladder)
    assert str(err.value) == (
        f"{folder}/weights.npz: saved weights hold values that are not finite numbers "
        f"(head.bias): train the router again"
    )


def test_a_router_saved_before_the_digest_loads_with_a_warning(
    saved_classifier: Path,
    tmp_path: Path,
    ladder,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    # Format 1 gained "weights_sha256" without a new version: older saves stay loadable.
    meta = json.loads((saved_classifier / "config.json").read_text())
    del meta["weights_sha256"]
    folder = tmp_path / "old"
    copy_router(saved_classifier, folder)
    (folder / "config.json").write_text(json.dumps(meta))
    with caplog.at_level("WARNING", logger="routerllm.routers.base"):
        old = load_router(folder, ladder)
    assert "records no weights digest" in caplog.text
    again = load_router(saved_classifier, ladder)
    prompts = ["prompt 3 of kind 3", "something else"]
    np.testing.assert_array_equal(old.score(prompts), again.score(prompts))


def test_two_saves_to_one_folder_at_once_leave_one_whole_router(
    saved_classifier: Path, tmp_path: Path, ladder
) -> None:  # type: ignore[no-untyped-def]
    # A save that ran while another was between its weights and its config replaced the
    # weights: the other's config then named weights that were gone, and the folder
    # loaded neither ("weights.npz does not match config.json").
    import threading

    from routerllm.data.labeled import LabeledPrompt
    from routerllm.training.trainer import TrainingArguments

    first = load_router(saved_classifier, ladder)
    second = create_router("classifier", ladder, encoder="hashing:32", seed=1)
    data = [LabeledPrompt(f"prompt {i} of kind {i % 4}", i % 4) for i in range(16)]
    second.fit(data, [], TrainingArguments(epochs=1, warmup_steps=0, progress=False))  # type: ignore[attr-defined]
    prompts = ["prompt 3 of kind 3", "something else"]
    assert not np.array_equal(first.score(prompts), second.score(prompts))
    folder = first.save(tmp_path / "r")
    other = threading.Thread(target=second.save, args=(folder,))
    with another_save_meanwhile(other):
        first.save(folder)
    saved = load_router(folder, ladder)  # the last save's, whole
    np.testing.assert_array_equal(saved.score(prompts), second.score(prompts))
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "config.json", "weights.npz"]


def test_a_saved_classifier_keeps_the_options_its_weights_were_learned_with(
    saved_classifier: Path, ladder
) -> None:  # type: ignore[no-untyped-def]
    same = {"encoder": "hashing:32", "mode": "frozen", "num_classes": 4, "pooling": "mean"}
    assert load_router(saved_classifier, ladder, same).num_classes == 4  # type: ignore[attr-defined]
    with pytest.raises(RouterLLMError, match=r"^mode: .* trained with mode 'frozen'; to use another, train it again \(routerllm train --mode \.\.\.\), or remove"):  # fmt: skip
        load_router(saved_classifier, ladder, {"mode": "full"})
    # routerllm train has no flag for these: none is named
    for knob, value in (("num_classes", 3), ("pooling", "cls")):
        with pytest.raises(RouterLLMError, match=rf"^{knob}: .*; to use another, train it again, or remove it from the options \(router.options\)$"):  # fmt: skip
            load_router(saved_classifier, ladder, {knob: value})


def test_a_saved_router_says_which_of_the_configs_models_it_never_routes_to(
    tmp_path: Path, ladder, caplog
) -> None:  # type: ignore[no-untyped-def]
    """A router saved for some of the config's models routes to those alone; the
    others were left out without a word until 2026-12-05 (a model added to the config
    after the router was trained was never used, and nothing said so)."""
    create_router("rules", ladder[:2], thresholds=[0.2, 0.6]).save(tmp_path / "r")
    with caplog.at_level("WARNING", logger="routerllm.routers.saved"):
        again = load_router(tmp_path / "r", ladder)
    assert again.model_names == [m.name for m in ladder[:2]]
    assert (
        f"{tmp_path / 'r'}: router 'rules' was saved for {ladder[0].name}, {ladder[1].name}; "
        f"it never routes to this config's {ladder[2].name} (train or save it again with "
        f"that model to route to it)"
    ) in caplog.text
    caplog.clear()
    create_router("rules", ladder, thresholds=[0.2, 0.6]).save(tmp_path / "all")
    with caplog.at_level("WARNING", logger="routerllm.routers.saved"):
        load_router(tmp_path / "all", ladder)
    assert caplog.text == ""


class _Scored(Router):
    """Gives every prompt the scores ``row`` (in ``models``' order as given)."""

    name = "scored"

    def __init__(self, models: list[Candidate], row: list[float]) -> None:
        super().__init__(models)
        given = [m.name for m in models]
        self.row = np.array([row[given.index(n)] for n in self.model_names])

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return np.tile(self.row, (len(prompts), 1))


def test_a_choice_among_the_available_models_is_as_sure_as_its_share_of_their_scores() -> None:
    models = [Candidate("small", 1.0), Candidate("mid", 8.0), Candidate("big", 70.0)]
    router = _Scored(models, [0.5, 0.3, 0.2])
    assert router.route("x").confidence == pytest.approx(0.5)
    decision = router.route("x", allowed=["mid", "big"])
    # 0.3 of the 0.5 the available two share, not 0.3 of all three's 1.0
    assert (decision.model, decision.confidence) == ("mid", pytest.approx(0.6))
    assert decision.reason == "highest score; small unavailable"


def test_the_ladder_is_ordered_by_tier_before_parameter_count() -> None:
    # a light model with more parameters than a heavy one is still the smaller (README:
    # "a step counts sizes (tier, then parameter count)")
    models = [Candidate("heavy-1b", 1.0, "heavy"), Candidate("light-7b", 7.0, "light")]
    assert create_router("smallest", models).model_names == ["light-7b", "heavy-1b"]
    assert create_router("smallest", models).route("x").model == "light-7b"
    assert create_router("largest", models).route("x").model == "heavy-1b"
    # among ties the smaller model wins
    assert _Scored(models, [0.5, 0.5]).route("x").model == "light-7b"
