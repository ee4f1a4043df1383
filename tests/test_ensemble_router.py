"""The ensemble router (MISSION M3.6): majority vote of real member routers, the tie
broken by mean confidence, masking, save/load, config errors, and the served system."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from routerllm.config import load_config
from routerllm.exceptions import RouterLLMError, UnknownNameError
from routerllm.routers import Router, create_router, load_router
from routerllm.routers.base import Candidate, CandidateModel
from routerllm.routers.ensemble import EnsembleRouter
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config

LADDER = load_config("local").models
LIGHT, MEDIUM, HEAVY = (m.name for m in LADDER)  # smollm2-135m, qwen2.5-coder-0.5b, -1.5b
TRIVIAL = "Translate 'hello' to French."
HARD = "Implement a thread-safe LRU cache in Python"
EXPLAIN = "Explain the difference between TCP and UDP."  # rules: medium

MODELS = [Candidate("small", 1.0, "light"), Candidate("mid", 8.0), Candidate("big", 70.0, "heavy")]
PROMPTS = [f"prompt number {i} about {'code' if i % 2 else 'chat'}" for i in range(40)]
SCORES = (np.random.default_rng(0).random((40, 3)) > 0.5).astype(float)


class Pinned(Router):
    """Always ``model``, with confidence ``confidence`` (the rest share what is left)."""

    name = "pinned"

    def __init__(self, models: Sequence[CandidateModel], model: str, confidence: float) -> None:
        super().__init__(models)
        self.pick, self.confidence = self.model_names.index(model), confidence

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        row = np.full(len(self.models), (1 - self.confidence) / max(len(self.models) - 1, 1))
        row[self.pick] = self.confidence
        return np.tile(row, (len(prompts), 1))


def ensemble(members: list[object], models: Sequence[CandidateModel] = LADDER) -> EnsembleRouter:
    router = create_router("ensemble", models, members=members)
    assert isinstance(router, EnsembleRouter)
    return router


def trained(name: str, folder: Path) -> Path:
    router = create_router(name, MODELS, encoder="hashing")
    router.fit(PROMPTS, SCORES, ["small", "mid", "big"])  # type: ignore[attr-defined]
    return router.save(folder)


# -- voting ---------------------------------------------------------------------
def test_most_votes_wins_with_the_share_as_confidence() -> None:
    router = ensemble(["rules", "largest", "smallest"])
    trivial, hard = router.route_batch([TRIVIAL, HARD])
    # rules: light for the trivial prompt, heavy for the hard one; the fixed two split
    assert (trivial.model, hard.model) == (LIGHT, HEAVY)
    assert trivial.confidence == hard.confidence == pytest.approx(2 / 3)
    assert trivial.router == "ensemble"
    assert trivial.reason == f"2 of 3 routers voted for {LIGHT} (rules, smallest); largest voted {HEAVY}"  # fmt: skip
    assert hard.reason == f"2 of 3 routers voted for {HEAVY} (rules, largest); smallest voted {LIGHT}"  # fmt: skip
    assert trivial.scores == pytest.approx({LIGHT: 2 / 3, MEDIUM: 0.0, HEAVY: 1 / 3})
    # score(): the vote shares, a row summing to 1 (the base contract)
    np.testing.assert_allclose(
        router.score([TRIVIAL, HARD]), [[2 / 3, 0, 1 / 3], [1 / 3, 0, 2 / 3]]
    )


def test_weights_count_as_votes() -> None:
    router = ensemble([{"name": "largest", "weight": 3}, "rules", "smallest"])
    d = router.route(TRIVIAL)
    assert d.model == HEAVY and d.confidence == pytest.approx(3 / 5)
    assert d.reason == f"3 of 5 votes for {HEAVY} (largest x3); rules x1, smallest x1 voted {LIGHT}"
    assert router.options["members"][0] == {"name": "largest", "weight": 3.0}


def test_a_tie_goes_to_the_more_confident_voters_then_the_smaller_model() -> None:
    def vote(*pins: tuple[str, float]) -> tuple[str, str]:
        d = ensemble([Pinned(LADDER, m, c) for m, c in pins]).route("anything")
        assert d.confidence == pytest.approx(sum(m == d.model for m, _ in pins) / len(pins))
        return d.model, d.reason

    model, reason = vote((HEAVY, 0.9), (LIGHT, 0.6))
    assert model == HEAVY
    assert reason.endswith(
        f"tie broken by the voters' mean confidence ({LIGHT} 0.60, {HEAVY} 0.90)"
    )
    assert vote((HEAVY, 0.6), (LIGHT, 0.9))[0] == LIGHT
    # mean of each model's voters: heavy (0.9 + 0.5) / 2 = 0.7 < light 0.8
    assert vote((HEAVY, 0.9), (HEAVY, 0.5), (LIGHT, 0.8), (LIGHT, 0.8))[0] == LIGHT
    model, reason = vote((HEAVY, 0.7), (LIGHT, 0.7))
    assert model == LIGHT and reason.endswith(", then by the smaller model")
    # three ways: medium is the most confident; a majority still beats confidence
    assert vote((HEAVY, 0.6), (MEDIUM, 0.8), (LIGHT, 0.7))[0] == MEDIUM
    assert vote((HEAVY, 0.6), (HEAVY, 0.6), (LIGHT, 0.99))[0] == HEAVY


def test_members_route_among_the_allowed_models_only() -> None:
    router = ensemble(["rules", "largest", "smallest"])
    # heavy unavailable: rules falls back to medium (its bigger neighbour), largest too
    d = router.route(HARD, allowed=[LIGHT, MEDIUM])
    assert d.model == MEDIUM and d.confidence == pytest.approx(2 / 3)
    assert d.scores[HEAVY] == 0.0
    only = router.route_batch([TRIVIAL, HARD], allowed=[MEDIUM])
    assert [x.model for x in only] == [MEDIUM, MEDIUM] and only[0].confidence == 1.0
    with pytest.raises(UnknownNameError, match="gpt-x"):
        router.route(HARD, allowed=["gpt-x"])


def test_a_member_without_an_available_model_abstains() -> None:
    heavy_only = Pinned([LADDER[2]], HEAVY, 1.0)
    router = ensemble([heavy_only, Pinned([LADDER[1]], MEDIUM, 0.6)])
    assert router.model_names == [MEDIUM, HEAVY]  # the models some member routes to
    # a tie; each voter has one model, so confidence 1.0 each: the smaller model
    assert router.route("x").model == MEDIUM
    d = router.route("x", allowed=[LIGHT, MEDIUM])
    assert d.model == MEDIUM and d.confidence == 1.0
    assert d.reason == f"1 of 1 routers voted for {MEDIUM} (pinned#2); pinned#1 abstained (none of its models available)"  # fmt: skip
    with pytest.raises(UnknownNameError, match=f"unknown model '{LIGHT}'"):
        router.route("x", allowed=[LIGHT])


class Broken(Pinned):
    """A member whose scoring fails at run time (a bug in a user's router)."""

    name = "broken"

    def __init__(self, models: Sequence[CandidateModel], model: str = "", confidence: float = 1.0, seed: int = 0) -> None:  # fmt: skip
        super().__init__(models, model or models[0].name, confidence)

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        raise ValueError("index out of range in my scorer")


def test_a_member_failing_at_run_time_is_a_bug_with_its_traceback() -> None:
    """A bug in a member is not a user's mistake: its own exception, with its traceback
    (the CLI's status 1, the server's logged 500), not a one-line RouterLLMError."""
    router = ensemble(["rules", Broken(LADDER, LIGHT, 1.0)])
    with pytest.raises(ValueError, match="index out of range in my scorer") as e:
        router.route(HARD)
    assert not isinstance(e.value, RouterLLMError)
    assert any("ensemble member broken" in note for note in getattr(e.value, "__notes__", []))
    # the member's own clear errors pass through as they are (an unknown model, ...)
    with pytest.raises(UnknownNameError):
        router.route(HARD, allowed=["gpt-x"])


def test_the_cli_shows_a_members_bug_as_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``routerllm route`` with a user's registered router in the ensemble: its bug
    reaches the user as a traceback, not as ``error: ...`` (status 2, a user mistake)."""
    from routerllm import cli
    from routerllm.registry import ROUTERS

    monkeypatch.setattr(ROUTERS, "_entries", {**ROUTERS._entries, "broken": f"{__name__}:Broken"})
    data = tiny_config_dict(tmp_path, router={"name": "ensemble", "options": {"members": ["rules", "broken"]}})  # fmt: skip
    config = write_config(tmp_path, data)
    with pytest.raises(ValueError, match="index out of range in my scorer"):
        cli.main(["route", "--config", str(config), HARD])
    assert "error:" not in capsys.readouterr().err


# -- save / load ------------------------------------------------------------------
def test_a_saved_ensemble_reloads_self_contained_with_identical_decisions(tmp_path: Path) -> None:
    logreg, knn = trained("logreg", tmp_path / "logreg"), trained("knn", tmp_path / "knn")
    members = ["rules", {"path": str(logreg)}, {"path": str(knn), "weight": 2}, "random"]
    router = ensemble(members, MODELS)
    saved = router.save(tmp_path / "ens")
    shutil.rmtree(logreg), shutil.rmtree(knn)  # the ensemble keeps its own copies
    moved = Path(shutil.move(saved, tmp_path / "elsewhere"))  # paths are relative to it
    again = load_router(moved, MODELS)
    assert isinstance(again, EnsembleRouter)
    assert [m.weight for m in again.members] == [1.0, 1.0, 2.0, 1.0]
    # neither has routed yet: the random member's draws start from the same seed
    for allowed in (["small", "big"], None):
        assert again.route_batch(PROMPTS, allowed) == router.route_batch(PROMPTS, allowed)
    meta = json.loads((moved / "config.json").read_text())
    assert meta["options"] == {"members": [
        {"path": "members-1/1-rules"}, {"path": "members-1/2-logreg"},
        {"path": "members-1/3-knn", "weight": 2.0}, {"path": "members-1/4-random"}]}  # fmt: skip
    again.save(moved)  # saved again: new member folders, the old ones removed after
    assert sorted(p.name for p in moved.iterdir()) == [".lock", "config.json", "members-2"]


def test_a_member_routing_to_models_the_ensemble_lacks_is_refused_at_save(tmp_path: Path) -> None:
    """A member object built for more models than the ensemble's was saved with them,
    and the saved ensemble then did not load with the ensemble's models ("router was
    trained for models not in this config: big"): the save is refused, nothing written."""
    rules = create_router("rules", MODELS)  # small, mid, big
    router = ensemble([rules, "smallest"], MODELS[:2])
    assert router.model_names == ["small", "mid"]
    with pytest.raises(RouterLLMError) as e:
        router.save(tmp_path / "ens")
    assert str(e.value) == (
        "cannot save the ensemble: member rules routes to big too, which the ensemble's "
        "models (small, mid) lack, so it would not load with them; build that member for "
        "the ensemble's models"
    )
    assert not (tmp_path / "ens").exists()
    # built for the ensemble's models, it saves and loads back
    router = ensemble([create_router("rules", MODELS[:2]), "smallest"], MODELS[:2])
    assert load_router(router.save(tmp_path / "ens"), MODELS[:2]).route_batch(PROMPTS) == (
        router.route_batch(PROMPTS)
    )


def test_an_interrupted_save_leaves_the_previous_ensemble_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensemble(["rules", "smallest"], MODELS).save(tmp_path)
    before = load_router(tmp_path, MODELS).route_batch(PROMPTS)
    other = ensemble(["rules", "largest"], MODELS)

    def full_disk(directory: object) -> Path:
        raise RouterLLMError("cannot save the router: disk full")

    monkeypatch.setattr(other.members[1].router, "save", full_disk)
    with pytest.raises(RouterLLMError, match="disk full"):
        other.save(tmp_path)
    assert load_router(tmp_path, MODELS).route_batch(PROMPTS) == before
    monkeypatch.undo()
    other.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "config.json", "members-3"]
    assert load_router(tmp_path, MODELS).route_batch(PROMPTS) == other.route_batch(PROMPTS)


def test_two_saves_to_one_folder_at_once_leave_one_whole_ensemble(tmp_path: Path) -> None:
    # A save that ran while another was writing its members removed them as an earlier
    # save's: the config the other wrote last named members that were gone, and the
    # folder no longer loaded ("no saved router at .../members-1/1-rules").
    import threading

    first, second = ensemble(["rules", "smallest"], MODELS), ensemble(["rules", "largest"], MODELS)  # fmt: skip
    save_member = first.members[1].router.save
    other = threading.Thread(target=second.save, args=(tmp_path / "ens",))

    def with_the_other_save_meanwhile(directory: Path) -> Path:
        other.start()  # the second save runs while the first writes its second member
        other.join(timeout=2.0)  # it waits for the first (with the fix: for 2 s)
        return save_member(directory)

    first.members[1].router.save = with_the_other_save_meanwhile  # type: ignore[method-assign]
    first.save(tmp_path / "ens")
    other.join()
    saved = load_router(tmp_path / "ens", MODELS)  # the last save's, whole
    assert saved.route_batch(PROMPTS) == second.route_batch(PROMPTS)
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == [".lock", "config.json", "members-2"]  # fmt: skip


# -- config errors -------------------------------------------------------------------
def test_member_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown ensemble member router 'bert'") as e:
        ensemble(["rules", "bert"])
    assert "ensemble" not in e.value.valid and "rules" in e.value.valid and "knn" in e.value.valid
    cases: list[tuple[object, str]] = [
        (None, "needs `members`, the routers that vote: e.g. options: {members: [rules,"),
        ("rules", "must be a list of routers"),
        ([], "at least 2 members to vote, got 0"),
        (["rules"], "at least 2 members to vote, got 1"),
        (["rules", "ensemble"], "member 2: an ensemble may not contain an ensemble"),
        (["rules", "knn"], "member 2 (knn) is not trained: give a saved one as {path: <folder>}"),
        (["rules", {"path": str(tmp_path / "nope")}], "member 2: no saved router at"),
        (["rules", {"name": "largest", "wieght": 2}], "member 2: unknown key(s) wieght"),
        (
            ["rules", {"name": "largest", "weight": 0}],
            "weight must be a number > 0 and at most 1e+06, got 0",
        ),  # fmt: skip
        (["rules", {"name": "largest", "weight": True}], "weight must be a number > 0"),
        (["rules", {"name": "largest", "weight": 1e308}], "at most 1e+06, got 1e+308"),
        (["rules", {"name": "largest", "path": "x"}], "give a router's `name` or the `path`"),
        (["rules", {"weight": 2}], "give a router's `name` or the `path`"),
        (["rules", 3], "member 2 must be a router's name or {path:"),
        (
            ["rules", {"name": "rules", "options": {"base": 7}}],
            "member 2: bad options for router 'rules'",
        ),  # fmt: skip
        (
            ["rules", Pinned([Candidate("gpt-x", 1.0)], "gpt-x", 1.0)],
            "routes to gpt-x, none of which",
        ),  # fmt: skip
    ]
    for members, needle in cases:
        with pytest.raises(RouterLLMError) as err:
            create_router("ensemble", LADDER, members=members)
        assert needle in str(err.value), (members, str(err.value))
    with pytest.raises(RouterLLMError, match="an ensemble may not contain an ensemble"):
        ensemble(["rules", ensemble(["rules", "largest"])])


def test_bad_member_paths_are_clear(tmp_path: Path) -> None:
    logreg = trained("logreg", tmp_path / "logreg")
    inner = ensemble(["rules", {"path": str(logreg)}], MODELS).save(tmp_path / "inner")
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "config.json").write_text("{not json")
    (tmp_path / "deep").mkdir()  # json's parser recurses: was a RecursionError traceback
    (tmp_path / "deep" / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    for folder, needle in [
        (inner, "is a saved ensemble: an ensemble may not contain an ensemble"),
        (tmp_path / "empty", "no saved router at"),
        (tmp_path / "corrupt", "config.json is corrupt"),
        (tmp_path / "deep", "config.json is corrupt: nested too deeply"),
    ]:
        with pytest.raises(RouterLLMError, match="ensemble member 2: ") as err:
            ensemble(["rules", {"path": str(folder)}], MODELS)
        assert needle in str(err.value)
    # a member trained for models the config does not have
    with pytest.raises(RouterLLMError, match="trained for models not in this config: mid"):
        ensemble(["rules", {"path": str(logreg)}], [MODELS[0], MODELS[2]])
    # a saved ensemble whose member folder went missing
    shutil.rmtree(inner / "members-1" / "2-logreg")
    with pytest.raises(RouterLLMError, match=r"config.json: .*ensemble member 2: no saved router"):
        load_router(inner, MODELS)


def test_a_saved_ensembles_member_outside_its_folder_is_refused(tmp_path: Path) -> None:
    """A saved ensemble keeps its members in its own folder (``save`` writes no other
    path); one downloaded whose config.json names ``../x``, ``/x`` or a link out of it
    loaded a router from elsewhere on this machine, not the one it shipped."""
    logreg = trained("logreg", tmp_path / "logreg")
    saved = ensemble(["rules", {"path": str(logreg)}], MODELS).save(tmp_path / "ens")
    meta = json.loads((saved / "config.json").read_text())
    (saved / "link").symlink_to(logreg)
    for outside in ("../logreg", str(logreg), "members-1/../../logreg", "link"):
        meta["options"]["members"][1]["path"] = outside
        (saved / "config.json").write_text(json.dumps(meta))
        with pytest.raises(RouterLLMError, match="outside the ensemble's folder") as err:
            load_router(saved, MODELS)
        assert outside in str(err.value)
    meta["options"]["members"][1]["path"] = "members-1/2-logreg"
    (saved / "config.json").write_text(json.dumps(meta))
    assert [m.router.name for m in load_router(saved, MODELS).members] == ["rules", "logreg"]  # type: ignore[attr-defined]


def test_a_member_path_may_be_a_path_object(tmp_path: Path) -> None:
    # what Router.save returns, as load_router takes it; was "`path` must be the folder
    # of a saved router, got PosixPath(...)"
    logreg = trained("logreg", tmp_path / "logreg")
    router = ensemble(["rules", {"path": logreg, "weight": 2}], MODELS)
    assert [(m.router.name, m.weight) for m in router.members] == [("rules", 1.0), ("logreg", 2.0)]
    saved = router.save(tmp_path / "ens")
    assert load_router(saved, MODELS).route_batch(PROMPTS) == router.route_batch(PROMPTS)


def test_a_member_path_under_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    trained("logreg", tmp_path / "runs" / "logreg")
    # as router.path: ~ is the home folder, not a folder named ~ in the working directory
    router = ensemble(["rules", {"path": "~/runs/logreg"}], MODELS)
    assert [m.router.name for m in router.members] == ["rules", "logreg"]


# -- the served system ---------------------------------------------------------------
def test_the_configured_ensemble_routes_the_system(tmp_path: Path) -> None:
    members = {"members": ["rules", "largest", {"name": "smallest"}]}
    config = load_config(write_config(tmp_path, tiny_config_dict(
        tmp_path, router={"name": "ensemble", "options": members})))  # fmt: skip
    with RouterLLM(config) as system:
        trivial, hard = system.generate_batch([TRIVIAL, HARD])
        assert (trivial.model, hard.model) == ("tiny-light", "tiny-heavy")
        assert trivial.router == "ensemble" and trivial.confidence == pytest.approx(2 / 3)
        assert trivial.reason.startswith("2 of 3 routers voted for tiny-light (rules, smallest)")
        assert [r.router for r in system.log.records()] == ["ensemble", "ensemble"]
        saved = system.router.save(tmp_path / "saved-ensemble")
    config.router.name, config.router.options, config.router.path = "rules", {}, str(saved)
    with RouterLLM(config) as system:
        assert system.route(HARD).model == "tiny-heavy" and system.router.name == "ensemble"


def test_cli_route_with_the_configured_ensemble(tmp_path: Path) -> None:
    ensemble_config = tiny_config_dict(
        tmp_path,
        router={"name": "ensemble", "options": {"members": ["rules", "largest", "smallest"]}},
    )

    # in this process: what route says is tested, not its process (three processes,
    # each importing the CLI and CodeCarbon again, made this the file's slowest test)
    def route(data: dict[str, object], router: str = "ensemble") -> subprocess.CompletedProcess[str]:  # fmt: skip
        cfg = write_config(tmp_path, data)
        return cli_in_process("route", "hello there", "--config", str(cfg), "--router", router,
                              "--json", "--max-new-tokens", "2")  # fmt: skip

    proc = route(ensemble_config)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == "tiny-light" and out["router"] == "ensemble"
    # another router by name does not take the ensemble's options
    proc = route(ensemble_config, "largest")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["router"] == "largest"
    # --router ensemble takes its members from the config's router options
    proc = route(tiny_config_dict(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the ensemble router needs `members`" in proc.stderr.strip().splitlines()[-1]


def test_a_warm_up_loads_each_members_encoder_and_draws_nothing(tmp_path: Path) -> None:
    # the demo warms the router up before its runs: the knn member's encoder loaded,
    # the random member's draws left to the runs
    knn = trained("knn", tmp_path / "knn")
    router, twin = (ensemble([{"path": str(knn)}, "random"], MODELS) for _ in range(2))
    members = [m.router for m in router.members]
    assert members[0]._encoder is None  # type: ignore[attr-defined]
    router.warm_up("Hello")
    assert members[0]._encoder is not None  # type: ignore[attr-defined]
    assert router.route_batch(PROMPTS) == twin.route_batch(PROMPTS)


def test_a_tie_weighs_each_voters_confidence_by_its_weight() -> None:
    """largest (weight 2, confidence 1.0) against two rules members (weight 1 each,
    confidence 0.95 for a trivial prompt): 2 votes each; the heavy model's weighted mean
    confidence is 2 x 1.0 / 2 = 1.0, above the light one's 0.95 (an unweighted sum over
    the votes would read 1.0 / 2 = 0.5 and hand the tie to the light model)."""
    d = ensemble([{"name": "largest", "weight": 2}, "rules", "rules"]).route(TRIVIAL)
    assert (d.model, d.confidence) == (HEAVY, pytest.approx(0.5))
    assert d.reason.endswith(
        f"tie broken by the voters' mean confidence ({LIGHT} 0.95, {HEAVY} 1.00)"
    )


def test_float_weights_that_add_up_to_a_tie_are_a_tie() -> None:
    """Weights 0.1 + 0.2 for the heavy model sum to 0.30000000000000004 in floats, the
    light model's 0.3 to 0.3: a tie (equal confidence), so the smaller model."""
    members = [{"name": "largest", "weight": 0.1}, {"name": "largest", "weight": 0.2}, {"name": "smallest", "weight": 0.3}]  # fmt: skip
    d = ensemble(members).route(TRIVIAL)
    assert d.model == LIGHT and d.reason.endswith(", then by the smaller model")


def test_mean_confidences_equal_but_for_float_rounding_are_a_tie() -> None:
    """Heavy's voters are 0.51 and 0.63 sure, light's 0.57 and 0.57: both means are 0.57,
    but in floats heavy's is (0.51 + 0.63) / 2 = 0.5700000000000001. Equal confidence,
    so the smaller model wins, as the tie rule says; read exactly, heavy won by 1e-16."""
    pins = [(HEAVY, 0.51), (HEAVY, 0.63), (LIGHT, 0.57), (LIGHT, 0.57)]
    d = ensemble([Pinned(LADDER, m, c) for m, c in pins]).route("anything")
    assert d.model == LIGHT, d.reason
    assert d.reason.endswith(f"({LIGHT} 0.57, {HEAVY} 0.57), then by the smaller model")


def test_a_tie_goes_to_the_smaller_model_whatever_order_the_models_are_given_in() -> None:
    """The models listed largest first: a tie of equal confidence still goes to the
    smallest tied model (the ensemble's models are ordered by tier, then size)."""
    models = list(reversed(LADDER))
    pins = [Pinned(models, HEAVY, 0.7), Pinned(models, MEDIUM, 0.7)]
    d = ensemble(pins, models).route("anything")
    assert d.model == MEDIUM and d.reason.endswith(", then by the smaller model"), d.reason
