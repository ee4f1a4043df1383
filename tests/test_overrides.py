"""Override rules applied after the router: config checks, matching, actions, and a
real RouterLLM (tiny GGUF models, real CodeCarbon and SQLite log) following them."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from routerllm.config import AppConfig, load_config
from routerllm.exceptions import ConfigError
from routerllm.overrides import (
    PATTERN_TIMEOUT_S,
    PATTERNS_TIMEOUT_S,
    Overrides,
    asks_for_math,
    pattern_copies,
)
from routerllm.routers.base import RoutingDecision
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, tiny_model, write_config

LADDER = ["tiny-light", "tiny-medium", "tiny-heavy"]


def config_with(tmp_path: Path, *rules: dict[str, Any]) -> AppConfig:
    return load_config(write_config(tmp_path, tiny_config_dict(tmp_path, overrides=list(rules))))


def rules(tmp_path: Path, *rules: dict[str, Any]) -> Overrides:
    """The override rules of a config holding ``rules``."""
    overrides = Overrides.from_config(config_with(tmp_path, *rules))
    assert overrides is not None
    return overrides


def routed(model: str, reason: str = "rules say so") -> RoutingDecision:
    return RoutingDecision(model, 0.6, reason, "rules")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "r", "step": 1}, "give at least one condition"),
        ({"name": "r", "min_chars": 5}, "give exactly one of model, tier or step (got none)"),
        ({"name": "r", "min_chars": 5, "step": 1, "tier": "heavy"}, "got tier, step"),
        ({"name": "r", "min_chars": 5, "step": 0}, "step 0 changes nothing"),
        ({"name": "r", "pattern": "(unclosed", "step": 1}, "is not a regular expression"),
        # regex writes repeats out: a{1000000000} took all memory as the config loaded
        ({"name": "r", "pattern": "x{100001}", "step": 1}, "repeats its parts 100,001 times"),
        ({"name": "r", "pattern": r"(?:\d{1000}){1000}", "step": 1}, "over 100,000"),
        # verbose mode ignores the spaces in a count: this is x{100001}
        ({"name": "r", "pattern": "(?x)x{1 0 0 0 0 1}", "step": 1}, "100,001 times"),
        # 500 groups, one inside the other: a RecursionError's traceback as the config loaded
        (
            {"name": "r", "pattern": "(" * 500 + "x" + ")" * 500, "step": 1},
            "nests its groups too deep",
        ),
        (
            {"name": "r", "min_chars": 9, "max_chars": 3, "step": 1},
            "min_chars 9 is over max_chars 3",
        ),  # fmt: skip
        (
            {"name": "r", "math": True, "model": "gpt-9"},
            "sends to 'gpt-9', which is not a configured model",
        ),  # fmt: skip
        ({"name": "r", "math": True, "tier": "huge"}, "overrides.0.tier"),
        ({"math": True, "step": 1}, "overrides.0.name"),
        ({"name": "  ", "math": True, "step": 1}, "name is blank"),
    ],
)
def test_a_malformed_rule_is_refused_with_what_to_fix(
    tmp_path: Path, rule: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match="invalid config") as e:
        config_with(tmp_path, rule)
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("pattern", "copies"),
    [
        (r"\d{3}-\d{2}-\d{4}", 11),
        ("(ab){3}c", 7),
        ("(a|aa)+$", 4),
        ("(a{0,1000}){100}", 100),  # a range repeats its part once
        ("[]{]{5}|x", 6),  # a class is one part, whatever it holds
        ("((a{100}){100}){100}", 1_000_000),
        # verbose mode: spaces and comments are not text, even inside a count
        ("(?x)a{1 0 0}", 100),
        ("(?x) a {1#0\n0 0}", 100),
        ("(?x)#[\n a{100}", 100),  # a comment's bracket opens no class
        ("b(?x)a{1 0}", 11),  # a flag mid-pattern holds for all of it
        ("(?x:a{1 0})a{1 0}", 16),  # a scoped flag does not: the second is six characters
        ("(?#a{99})x", 1),
    ],
)
def test_a_patterns_copies_are_counted_with_nested_repeats(pattern: str, copies: int) -> None:
    assert pattern_copies(pattern) == copies


def test_two_rules_may_not_share_a_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate override names: r"):
        config_with(tmp_path, {"name": "r", "math": True, "step": 1}, {"name": "r", "min_chars": 3, "step": 1})  # fmt: skip


@pytest.mark.parametrize(
    "prompt",
    [
        "What is 12 * 7?",
        "calculate the area of a circle of radius 3",
        "Solve for x: x^2 = 9",
        "what is 15 % of 80",
        "9 - 4",
        "sqrt(2) to five places",
        "the derivative of sin x",
        "Sqrt(2)",
        "X^2 + 1",
        "10 / 4",
        "3 × 4",
        "what is 12 plus 7",
        "20 Divided By 4",
        "6 times 7",
        "2 to the power of 10",
        "What are the probabilities of rolling two sixes?",  # an inflection of a math word
        "calculating the area of a circle",
        "Help me with solving for x",
    ],
)
def test_calculations_are_detected(prompt: str) -> None:
    assert asks_for_math(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "What is a Python list?",
        "Released on 2024-12-02",
        "Translate 'hello' into French",
        "pages 10-20",
        "What is 3D printing?",
        "How much is a ticket to Paris?",
        "on 12/25/2024",
        "a 1920×1080 screen",
        "compute the hash of a file",
        "GET /api/v1/2",
        "take it 3 times a day, plus 1 at night",
        "over 5 times",
        "Is water a good solvent for salt?",  # a word that only starts like a math word
        "Is the bank still solvent?",
        "What does solvency mean for an insurer?",
    ],  # fmt: skip
)
def test_prompts_without_a_calculation_are_not_math(prompt: str) -> None:
    assert not asks_for_math(prompt)


def test_each_action_and_its_reason(tmp_path: Path) -> None:
    overrides = rules(
        tmp_path,
        {"name": "legal", "pattern": r"\bcontract\b", "model": "tiny-heavy"},
        {"name": "greeting", "pattern": r"^(hi|hello)\b", "tier": "light"},
        {"name": "long", "min_chars": 40, "step": 1},
        {"name": "short", "max_chars": 10, "step": -2},
    )
    d = overrides.apply("Review this CONTRACT please", routed("tiny-light"), LADDER)
    assert (d.model, d.confidence, d.router) == ("tiny-heavy", 1.0, "rules")
    assert d.reason == "rules say so; override 'legal': to tiny-heavy, not tiny-light"
    d = overrides.apply("Hello there, how are things", routed("tiny-medium"), LADDER)
    assert d.model == "tiny-light"
    assert d.reason.endswith("to tiny-light (the smallest light model), not tiny-medium")
    d = overrides.apply("x" * 40, routed("tiny-light"), LADDER)
    assert d.model == "tiny-medium" and d.reason.endswith("to tiny-medium, 1 model larger, not tiny-light")  # fmt: skip
    d = overrides.apply("y" * 40, routed("tiny-heavy"), LADDER)  # nothing larger: kept, said
    assert (d.model, d.confidence) == ("tiny-heavy", 0.6)
    assert d.reason.endswith("override 'long': tiny-heavy is already the largest model available")
    d = overrides.apply("tiny", routed("tiny-heavy"), LADDER)  # -2 steps
    assert d.model == "tiny-light" and "2 models smaller" in d.reason
    # no rule matches: the decision is the router's own
    unchanged = routed("tiny-medium")
    assert overrides.apply("a medium-length prompt", unchanged, LADDER) is unchanged


def test_a_step_clamped_to_the_ladder_says_how_far_it_went(tmp_path: Path) -> None:
    """A step of 2 from the middle of three models went one model and said
    "2 models larger"."""
    overrides = rules(
        tmp_path,
        {"name": "long", "min_chars": 30, "step": 2},
        {"name": "short", "max_chars": 5, "step": -5},
    )
    d = overrides.apply("x" * 40, routed("tiny-medium"), LADDER)
    assert d.model == "tiny-heavy"
    assert d.reason.endswith("override 'long': to tiny-heavy, 1 model larger (the largest available), not tiny-medium")  # fmt: skip
    d = overrides.apply("x" * 40, routed("tiny-light"), LADDER[:2])
    assert d.reason.endswith("to tiny-medium, 1 model larger (the largest available), not tiny-light")  # fmt: skip
    d = overrides.apply("hi", routed("tiny-heavy"), LADDER)
    assert d.reason.endswith("to tiny-light, 2 models smaller (the smallest available), not tiny-heavy")  # fmt: skip
    d = overrides.apply("x" * 40, routed("tiny-light"), LADDER)  # not clamped: not said
    assert d.reason.endswith("override 'long': to tiny-heavy, 2 models larger, not tiny-light")


def test_a_step_goes_past_models_of_the_routed_ones_size(tmp_path: Path) -> None:
    """With two models of one tier and size (mistral-7b and codellama-7b in the
    development config), "one model larger" went from the first to the second and
    said "1 model larger"; "one smaller" from the second went to the first."""
    models = tiny_config_dict(tmp_path)["models"]
    twin = tiny_model("tiny-medium-2", "medium", 0.5)
    config = tiny_config_dict(
        tmp_path,
        models=[*models[:2], twin, models[2]],
        overrides=[
            {"name": "long", "min_chars": 30, "step": 1},
            {"name": "short", "max_chars": 5, "step": -1},
        ],
    )
    overrides = Overrides.from_config(load_config(write_config(tmp_path, config)))
    assert overrides is not None
    ladder = [*LADDER, "tiny-medium-2"]
    for medium in ("tiny-medium", "tiny-medium-2"):
        d = overrides.apply("x" * 40, routed(medium), ladder)
        assert d.reason.endswith(f"override 'long': to tiny-heavy, 1 model larger, not {medium}")
        assert overrides.apply("hi", routed(medium), ladder).model == "tiny-light"
    # from the light model, the first of the two listed
    d = overrides.apply("x" * 40, routed("tiny-light"), ladder)
    assert d.reason.endswith("to tiny-medium, 1 model larger, not tiny-light")
    # the twin alone at the top of what is available: nothing larger
    d = overrides.apply("x" * 40, routed("tiny-medium"), ["tiny-medium", "tiny-medium-2"])
    assert d.model == "tiny-medium" and d.reason.endswith("already the largest model available")


@pytest.mark.parametrize(
    ("pattern", "prompt"),
    [(r"\bgemäß\b", "GEMÄSS § 5"), ("strasse", "Die Straße"), ("file", "the ﬁle"), ("ΣΟΦΟΣ", "σοφος")],
)  # fmt: skip
def test_a_pattern_matches_in_any_case_as_unicode_folds_it(
    tmp_path: Path, pattern: str, prompt: str
) -> None:
    """A pattern matched "in any case" missed a German prompt in capitals (ß is SS)."""
    overrides = rules(tmp_path, {"name": "legal", "pattern": pattern, "model": "tiny-heavy"})
    assert overrides.apply(prompt, routed("tiny-light"), LADDER).model == "tiny-heavy"


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_a_pattern_matches_an_accent_composed_or_decomposed(tmp_path: Path, form: str) -> None:
    """A prompt pasted from a macOS file name or a web form may write "é" as "e" and a
    combining accent (NFD): ``café`` and ``GEMÄSS`` in such a prompt were not found by
    patterns typed in the config's composed form (NFC), nor the other way round."""
    pattern, prompt = ("café", r"\bgemäß\b"), ("Un CAFÉ, s'il vous plaît", "GEMÄSS § 5")
    overrides = rules(
        tmp_path,
        *(
            {"name": f"r{i}", "pattern": unicodedata.normalize(form, p), "model": "tiny-heavy"}
            for i, p in enumerate(pattern)
        ),
    )
    for text in prompt:
        for as_sent in ("NFC", "NFD"):
            asked = unicodedata.normalize(as_sent, text)
            assert overrides.apply(asked, routed("tiny-light"), LADDER).model == "tiny-heavy"
    # the lengths the rules read are the prompt's as sent (as limits.max_prompt_chars)
    long = rules(tmp_path, {"name": "long", "min_chars": 6, "step": 1})
    assert long.apply(unicodedata.normalize("NFD", "Café!"), routed("tiny-light"), LADDER).model == "tiny-medium"  # fmt: skip


def test_the_first_matching_rule_decides_and_every_condition_must_hold(tmp_path: Path) -> None:
    overrides = rules(
        tmp_path,
        {"name": "long math", "math": True, "min_chars": 30, "model": "tiny-heavy"},
        {"name": "math", "math": True, "step": 1},
        {"name": "no math", "math": False, "tier": "light"},
    )
    assert overrides.apply("What is 3 * 4?", routed("tiny-light"), LADDER).model == "tiny-medium"
    long = "Please calculate 1234 * 5678 for me, carefully"
    assert overrides.apply(long, routed("tiny-light"), LADDER).model == "tiny-heavy"
    assert overrides.apply("Name a colour", routed("tiny-heavy"), LADDER).model == "tiny-light"


def test_a_target_not_available_here_leaves_the_routers_choice(tmp_path: Path) -> None:
    overrides = rules(
        tmp_path,
        {"name": "legal", "pattern": "contract", "model": "tiny-heavy"},
        {"name": "big", "min_chars": 1, "tier": "heavy"},
    )
    available = ["tiny-light", "tiny-medium"]
    d = overrides.apply("a contract", routed("tiny-light"), available)
    assert d.model == "tiny-light"
    assert d.reason.endswith(
        "override 'legal' not applied: tiny-heavy is not available to routing here"
    )
    d = overrides.apply("anything", routed("tiny-medium"), available)
    assert d.reason.endswith(
        "override 'big' not applied: no heavy model is available to routing here"
    )


def test_no_rules_no_overrides(tmp_path: Path) -> None:
    assert Overrides.from_config(config_with(tmp_path)) is None


def test_a_routed_system_follows_the_rules_and_a_callers_model_is_kept(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"name": "legal", "pattern": "contract", "model": "tiny-heavy"})
    with RouterLLM(config) as system:
        prompt = "hi, is this contract fine?"
        plain = RouterLLM(load_config(write_config(tmp_path, tiny_config_dict(tmp_path), "plain.yaml")))  # fmt: skip
        with plain:
            assert plain.route(prompt).model != "tiny-heavy"  # the rules router alone
        assert system.route(prompt).model == "tiny-heavy"
        result = system.generate(prompt, tag="override")
        assert result.model == "tiny-heavy" and "override 'legal'" in result.reason
        [logged] = system.log.records(tag="override")
        assert (logged.model, logged.router) == ("tiny-heavy", "rules")
        chosen = system.generate(prompt, model="tiny-light")
        assert chosen.model == "tiny-light" and "override" not in chosen.reason
        # a per-request router is overridden too
        batch = system.generate_batch([prompt, "What is a list?"], router="smallest")
        assert [r.model for r in batch] == ["tiny-heavy", "tiny-light"]


def test_a_pattern_that_backtracks_without_end_is_given_up_on_time(tmp_path: Path) -> None:
    overrides = rules(
        tmp_path,
        {"name": "greedy", "pattern": "(a|aa)+$", "model": "tiny-heavy"},
        {"name": "any", "min_chars": 1, "tier": "medium"},
    )
    # this thread's CPU time, not the wall clock's: a pattern searched without end takes
    # hours of it; a machine busy with other work took 1.04 s of wall clock (CI-like load)
    started = time.thread_time()
    d = overrides.apply("a" * 60 + "b", routed("tiny-light"), LADDER)
    assert time.thread_time() - started < 1.0  # re would take hours
    assert d.model == "tiny-medium"  # the next rule decides
    assert f"override 'greedy' skipped: its pattern took over {PATTERN_TIMEOUT_S:g} s" in d.reason
    assert overrides.apply("aaaa", routed("tiny-light"), LADDER).model == "tiny-heavy"


def test_the_rules_patterns_have_a_time_limit_together(tmp_path: Path) -> None:
    """Twelve patterns that each backtrack without end held a request 2.7 s here (0.1 s
    each, as regex checks its time limit) until 2026-12-05; together they now take at most ``PATTERNS_TIMEOUT_S``: the rules
    with a pattern after that are not tried, and one without a pattern still decides."""
    greedy = [{"name": f"g{i}", "pattern": "(a|aa)+$", "model": "tiny-heavy"} for i in range(12)]
    overrides = rules(tmp_path, *greedy, {"name": "long", "min_chars": 10, "tier": "medium"})
    started = time.perf_counter()
    d = overrides.apply("a" * 60 + "b", routed("tiny-light"), LADDER)
    # under 2.7 s, with room for a loaded machine (0.3 s was not: a run beside others failed)
    assert time.perf_counter() - started < PATTERNS_TIMEOUT_S + 1.0
    assert d.model == "tiny-medium"  # the rule without a pattern decides
    assert "override 'g0' skipped: its pattern took over 0.1 s" in d.reason
    assert f"'g11' not tried: the rules' patterns took over {PATTERNS_TIMEOUT_S:g} s together" in d.reason  # fmt: skip
    assert d.reason.count("skipped") + d.reason.count("', '") + 1 == 12  # each one said


def test_a_regex_whose_parser_changed_is_a_clear_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regex import _regex_core

    from routerllm.overrides import TESTED_REGEX

    # the version the copies are counted with is the one set-up installs
    constraints = (Path(__file__).parents[1] / "constraints.txt").read_text().split()
    assert f"regex=={TESTED_REGEX}" in constraints
    monkeypatch.delattr(_regex_core, "_parse_pattern")
    with pytest.raises(ConfigError, match=f"install the version in RouterLLM's constraints.txt .*regex=={TESTED_REGEX}"):  # fmt: skip
        config_with(tmp_path, {"name": "p", "pattern": "abc", "model": "tiny-heavy"})


def test_the_cascade_checks_an_overridden_answer_as_any_other(tmp_path: Path) -> None:
    """A rule chooses the model that answers first; the cascade then checks that answer
    and escalates it where it fails its examples, as it does a model the caller names."""
    from .test_cascade import REQUEST

    data = tiny_config_dict(
        tmp_path,
        cascade={"enabled": True},
        cache={"enabled": True},
        overrides=[{"name": "adders", "pattern": "Add two numbers", "model": "tiny-light"}],
    )
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        first = system.generate(REQUEST)
        assert "override 'adders': to tiny-light" in first.reason
        assert "tiny-light's answer failed 2 of the request's 2 examples, escalated to tiny-medium" in first.reason  # fmt: skip
        assert first.model == "tiny-heavy" and first.escalated["llm_inference"].energy_kwh > 0
        again = system.generate(REQUEST)  # the escalated answer, from the cache: no model runs
        assert (again.model, again.cached_from, again.escalated) == ("tiny-heavy", first.request_id, {})  # fmt: skip
        assert again.components["llm_inference"].energy_kwh == again.components["model_loading"].energy_kwh == 0  # fmt: skip
        assert again.reason.startswith(first.reason)


def test_the_length_bounds_include_a_prompt_of_exactly_that_length(tmp_path: Path) -> None:
    """min_chars and max_chars are "at least" and "at most": a 5-character prompt meets
    max_chars 5, a 6-character one does not; a 6-character prompt meets min_chars 6."""
    overrides = rules(
        tmp_path,
        {"name": "short", "max_chars": 5, "tier": "light"},
        {"name": "long", "min_chars": 6, "tier": "heavy"},
    )
    assert overrides.apply("abcde", routed("tiny-medium"), LADDER).model == "tiny-light"
    assert overrides.apply("abcdef", routed("tiny-medium"), LADDER).model == "tiny-heavy"
    assert overrides.apply("abcd", routed("tiny-medium"), LADDER).model == "tiny-light"
