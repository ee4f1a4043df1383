"""The escalation gate: trained, saved, reloaded, and used by the serving cascade (real
tiny GGUF models reading real prompt states, real sandbox, real CodeCarbon)."""

from __future__ import annotations

import json
import logging
import math
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import asdict, replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import routerllm.files as files_module
from routerllm.backends.base import GenerationRequest
from routerllm.carbon.units import energy
from routerllm.config import AppConfig, load_config
from routerllm.config_sections import BudgetConfig, BudgetLimits
from routerllm.eval.cascade_gate import state_predictions
from routerllm.eval.codegen import style_for
from routerllm.eval.humaneval_report import run_experiment
from routerllm.exceptions import ConfigError, RouterLLMError
from routerllm.gate import EscalationGate, GateDecision, gate_threshold, percent
from routerllm.gate_models import EnergyModel, Logistic, SuccessModel, out_of_fold
from routerllm.system import RouterLLM

from .conftest import (
    GEMMA_TEMPLATE,
    another_save_meanwhile,
    benchmark_in_process,
    cli_in_process,
    gguf_with_chat_template,
    hide_package,
    no_block_read_as_contended,
    tiny_config_dict,
    write_config,
)
from .test_cascade import REQUEST


def _problems(n: int, d: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Problems where the second model's success falls with state feature 0 among the
    unverified answers, and its energy grows with the answer's tokens."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, d))
    unverified = rng.random(n) < 0.5
    then = np.where(unverified, states[:, 0] < 0, True).astype(float)
    solved = np.column_stack([(~unverified).astype(float), then])
    tokens = np.column_stack([rng.integers(50, 300, n), rng.integers(20, 400, n)]).astype(float)
    kwh = np.column_stack([tokens[:, 1] * 1e-7, 3e-7 * tokens[:, 1] + 1e-5])
    return {
        "states": states,
        "solved": solved,
        "kwh": kwh,
        "tokens": tokens,
        "unverified": unverified,
    }


def _fit(
    p: dict[str, np.ndarray], budget: float = 0.7, idx: object = slice(None), check_kwh: float = 0.0
) -> EscalationGate:
    return EscalationGate.fit(
        "tiny-medium", "tiny-heavy", p["states"][idx], p["solved"][idx], p["kwh"][idx],
        p["tokens"][idx], p["unverified"][idx], budget, folds=4, seed=0, check_kwh=check_kwh,
    )  # fmt: skip


def test_the_serving_gate_makes_the_experiments_decisions() -> None:
    """Trained on one cross-validation fold's training problems, the gate scores the test
    fold and picks the threshold exactly as the experiment's gated cascade does."""
    p = _problems(120, 5)
    for tr, te, p_train, p_test in state_predictions(p["states"], p["solved"][:, 1], p["unverified"], 4, 0):  # fmt: skip
        gate = _fit(p, idx=tr)
        cost = EnergyModel.fit(p["tokens"][tr], p["kwh"][tr, 1])(p["tokens"])
        np.testing.assert_allclose(gate.scores(p["states"][te], p["tokens"][te]), p_test() / cost[te])  # fmt: skip
        np.testing.assert_allclose(gate.calibration["score"], p_train / cost[tr])
        expected = gate_threshold(p_train / cost[tr], p["unverified"][tr], p["solved"][tr], p["kwh"][tr], 0.7)  # fmt: skip
        assert gate.threshold == pytest.approx(expected)
        one = gate.decide(tuple(p["states"][te[0]]), *p["tokens"][te[0]].astype(int))
        assert one.escalate == (gate.scores(p["states"][te[:1]], p["tokens"][te[:1]])[0] >= gate.threshold)  # fmt: skip


def test_a_larger_budget_lets_more_through_and_stays_within_it_on_training() -> None:
    gate = _fit(_problems(200, 4))
    seen = [gate.with_budget(b).on_training() for b in (0.3, 0.5, 0.7, 1.0)]
    assert [s["escalated"] for s in seen] == sorted(s["escalated"] for s in seen)
    for b, s in zip((0.3, 0.5, 0.7, 1.0), seen, strict=True):
        assert s["energy_share"] <= b + 1e-9 or s["escalated"] == 0
    # the checks count against the budget: with them, fewer escalations, still within it
    checked = _fit(_problems(200, 4), budget=0.5, check_kwh=5e-6)
    with_checks = checked.on_training()
    assert 0 < with_checks["escalated"] < seen[1]["escalated"]
    assert with_checks["energy_share"] <= 0.5 + 1e-9
    assert (
        with_checks["energy_share"] > replace(checked, check_kwh=0.0).on_training()["energy_share"]
    )
    assert math.isinf(gate.with_budget(0.01).threshold)  # not even the first model fits
    assert gate.with_budget(0.01).on_training()["escalated"] == 0
    with pytest.raises(RouterLLMError, match="share of the larger model's energy > 0"):
        gate.with_budget(float("nan"))


def test_a_saved_gate_reloads_to_the_same_decisions(tmp_path: Path) -> None:
    p = _problems(80, 6)
    gate = _fit(p, check_kwh=1e-6)
    gate.save(tmp_path / "gate")
    again = EscalationGate.load(tmp_path / "gate")
    assert (again.first, again.then, again.budget) == ("tiny-medium", "tiny-heavy", 0.7)
    assert again.threshold == gate.threshold and again.dim == 6 and again.check_kwh == 1e-6
    np.testing.assert_array_equal(again.scores(p["states"], p["tokens"]), gate.scores(p["states"], p["tokens"]))  # fmt: skip
    # a different width of state: a clear error, not a numpy one
    with pytest.raises(RouterLLMError, match="6-wide state"):
        again.decide((0.1, 0.2), 10, 10)
    with pytest.raises(RouterLLMError, match="got none"):
        again.decide(None, 10, 10)


def test_broken_or_foreign_gate_folders_are_clear_errors(tmp_path: Path) -> None:
    gate = _fit(_problems(40, 3))
    with pytest.raises(RouterLLMError, match="is not a saved gate"):
        EscalationGate.load(tmp_path / "missing")
    saved = gate.save(tmp_path / "gate")
    whole = (saved / "weights.npz").read_bytes()
    (saved / "weights.npz").write_bytes(whole[:-1])
    with pytest.raises(RouterLLMError, match="weights.npz does not match config.json"):
        EscalationGate.load(saved)  # refused before numpy reads it
    # A gate saved before the digest was recorded: the archive itself is checked. Damaged
    # bytes in the zip's directory of an array: its compression method, its "encrypted"
    # flag (the zip module raised NotImplementedError, RuntimeError: a traceback).
    meta = json.loads((saved / "config.json").read_text())
    del meta["weights_sha256"]
    (saved / "config.json").write_text(json.dumps(meta))
    entry = whole.index(b"PK\x01\x02")
    for offset, value in ((10, b"\x63\x00"), (8, b"\x01\x00")):
        damaged = whole[: entry + offset] + value + whole[entry + offset + 2 :]
        (saved / "weights.npz").write_bytes(damaged)
        with pytest.raises(RouterLLMError, match="corrupt weights.npz"):
            EscalationGate.load(saved)
    (saved / "weights.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RouterLLMError, match="corrupt weights.npz"):
        EscalationGate.load(saved)
    (saved / "config.json").write_text(json.dumps({"format": "routerllm-escalation-gate", "version": 9}))  # fmt: skip
    with pytest.raises(RouterLLMError, match="saved by a newer RouterLLM \\(version 9, this one reads 2\\)"):  # fmt: skip
        EscalationGate.load(saved)
    # another tool's folder is neither read nor written over
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(RouterLLMError, match="not a saved gate"):
        EscalationGate.load(theirs)
    with pytest.raises(
        RouterLLMError, match="holds a config.json that is not a saved escalation gate"
    ):
        gate.save(theirs)
    assert (theirs / "config.json").read_text() == '{"model_type": "bert"}'
    assert not (theirs / "weights.npz").exists()


def test_a_gate_from_a_newer_routerllm_says_to_upgrade_not_to_train_it_over(
    tmp_path: Path,
) -> None:
    """A gate saved by a newer RouterLLM said "train it again" with this one: doing so
    saved this version's gate over the newer one. It says to upgrade, as a router does;
    an older one still says to train it again."""
    saved = _fit(_problems(40, 3)).save(tmp_path / "gate")
    meta = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**meta, "version": 3}))
    with pytest.raises(RouterLLMError) as err:
        EscalationGate.load(saved)
    assert str(err.value) == (
        f"cannot load the gate in {saved}: it was saved by a newer RouterLLM (version 3, this "
        f"one reads 2); upgrade routerllm to use it"
    )
    (saved / "config.json").write_text(json.dumps({**meta, "version": 1}))
    with pytest.raises(RouterLLMError, match="saved as version 1, this RouterLLM reads 2; train it again"):  # fmt: skip
        EscalationGate.load(saved)


def test_train_gate_refuses_an_out_under_a_file_before_it_trains(tmp_path: Path) -> None:
    """--out under a file was found only when the trained gate was saved: after the
    training, as "[Errno 20] Not a directory". Now it is said first, as train's --out."""
    (tmp_path / "notes.txt").write_text("keep me")
    under = tmp_path / "notes.txt" / "gate"
    with pytest.raises(RouterLLMError, match="is under .*notes.txt, which is a file"):
        EscalationGate.check_saveable(under)
    # before the run is read: a run that does not exist is not what it says
    bad = cli_in_process("train-gate", "--run", str(tmp_path / "no-run"), "--out", str(under))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr == f"error: {under} is under {tmp_path / 'notes.txt'}, which is a file; save the gate to a directory\n"  # fmt: skip
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_train_gate_refuses_an_out_it_cannot_write_before_it_trains(tmp_path: Path) -> None:
    """An --out nothing could be created in (root under /proc, a read-only disk) failed
    only when the trained gate was saved."""
    from .test_learn_cli_inputs import unwritable_folder

    out = unwritable_folder() / "routerllm-test" / "gate"
    with pytest.raises(RouterLLMError, match=f"{out}: nothing can be written in /proc"):
        EscalationGate.check_saveable(out)
    bad = cli_in_process("train-gate", "--run", str(tmp_path / "no-run"), "--out", str(out))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith(f"error: {out}: nothing can be written in /proc")
    assert bad.stderr.endswith("give a folder you can write to (nothing was saved)\n")


#: The width _state_width read, by tiny-medium's GGUF file as it was (path, size, mtime, inode).
_WIDTHS: dict[tuple[str, int, int, int], int] = {}


def _state_width(config: AppConfig) -> int:
    """The width of tiny-medium's state of a prompt, as a system of ``config`` reads it:
    read once per GGUF file (a system started and asked, 1.5 s), not in each of the seven
    tests that build a gate for it."""
    gguf = Path(config.model("tiny-medium").gguf.path).resolve()  # type: ignore[union-attr]
    st = gguf.stat()
    key = (str(gguf), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _WIDTHS:
        with RouterLLM(config) as system:
            request = GenerationRequest(REQUEST, prompt_state=True)
            result = system.generate(request, model="tiny-medium")
            assert result.prompt_state is not None
            _WIDTHS[key] = len(result.prompt_state)
    return _WIDTHS[key]


def _cheap_to_escalate(d: int) -> EscalationGate:
    """A gate whose training escalations all succeed and cost more the longer the first
    answer: tinycoder's 8-token answers are cheap, so they clear the threshold."""
    p = _problems(60, d)
    p["solved"][:, 1] = 1.0
    p["tokens"][:, 1] += 500
    p["kwh"][:, 1] = 3e-7 * p["tokens"][:, 1]
    return _fit(p, budget=1.0)


def test_a_decision_kept_by_a_gate_that_escalates_nothing_says_so() -> None:
    below = GateDecision(False, 0.4, 2e-3, 300.0).explain("big", 0.5)
    assert below == (
        "the gate's predicted success of big (0.40) per expected kWh (0.002) is below its "
        "threshold for a budget of 50% of big's energy"
    )
    nothing = GateDecision(False, 0.4, 2e-3, math.inf).explain("big", 0.5)
    assert nothing == "the gate escalates nothing within a budget of 50% of big's energy"


def test_a_budget_below_one_percent_or_huge_is_said_as_given() -> None:
    """Every request's reason rounded a budget to whole percents: 0.004 read "a budget of
    0%", and a budget of 1e300 wrote 300 digits into every reason and log row."""
    small = GateDecision(False, 0.4, 2e-3, 300.0).explain("big", 0.004)
    assert small.endswith("below its threshold for a budget of 0.4% of big's energy")
    nothing = GateDecision(False, 0.4, 2e-3, math.inf).explain("big", 0.705)
    assert nothing == "the gate escalates nothing within a budget of 70.5% of big's energy"
    huge = GateDecision(True, 0.4, 2e-3, 3.0).explain("big", 1e300)
    assert huge.endswith("clears its threshold for a budget of 1e+302% of big's energy")
    # four significant digits, as given: not 12.3%
    given = GateDecision(True, 0.4, 2e-3, 3.0).explain("big", 0.1234)
    assert given.endswith("clears its threshold for a budget of 12.34% of big's energy")
    # train-gate --budget 1e308 said "budget inf%": x 100 overflowed the float
    largest = GateDecision(True, 0.4, 2e-3, 3.0).explain("big", 1e308)
    assert largest.endswith("clears its threshold for a budget of 1e+310% of big's energy")
    assert percent(1.7976931348623157e308) == "1.798e+310%"


def test_the_serving_cascade_escalates_only_where_its_gate_lets_it(
    tmp_path: Path, tiny_config: AppConfig
) -> None:
    gate_dir = _cheap_to_escalate(_state_width(tiny_config)).save(tmp_path / "gate")
    tiny_config.cascade.enabled = True
    tiny_config.cascade.gate = str(gate_dir)
    with RouterLLM(tiny_config) as system:
        result = system.generate(REQUEST, model="tiny-medium")
        assert result.model == "tiny-heavy"
        assert "failed 2 of the request's 2 examples, escalated to tiny-heavy: the gate's " in result.reason  # fmt: skip
        assert "clears its threshold for a budget of 100% of tiny-heavy's energy" in result.reason
        # the gate decides escalations from tiny-medium only: tiny-light's go ahead as before
        light = system.generate(REQUEST, model="tiny-light")
        assert "tiny-light's answer failed 2 of the request's 2 examples, escalated to tiny-medium;" in light.reason  # fmt: skip
    # within budgets that let it, the escalation still says why the gate let it
    tiny_config.budgets = BudgetConfig(co2_kg=BudgetLimits(per_request=1.0))
    with RouterLLM(tiny_config) as system:
        assert system.budget is not None
        within = system.generate(REQUEST, model="tiny-medium")
        assert within.model == "tiny-heavy"
        assert "escalated to tiny-heavy: the gate's " in within.reason
    tiny_config.budgets = BudgetConfig()
    tiny_config.cascade.budget = 0.01  # not even tiny-medium alone fits: nothing is escalated
    with RouterLLM(tiny_config) as system:
        kept = system.generate(REQUEST, model="tiny-medium")
        assert kept.model == "tiny-medium"
        assert system.gate is not None and math.isinf(system.gate.gate.threshold)
        # no request could pass it: the reason says so, not "below its threshold"
        assert "not escalated to tiny-heavy: the gate escalates nothing within a budget of 1% of tiny-heavy's energy" in kept.reason  # fmt: skip
        assert "threshold" not in kept.reason
        assert kept.components["router_inference"].duration_s > 0  # check + gate, measured
        assert list(system.log.records())[-1].model == "tiny-medium"


#: A function stub whose docstring gives no examples: its answer cannot be checked.
UNCHECKABLE = 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n'


def _asked(prompt: str) -> GenerationRequest:
    """``prompt`` asked for 8 tokens: a stub is asked in the model's code style, whose
    512 the tiny models fill (465 tokens, 2 s of each answer idle, 30 s on a busy machine)."""
    return GenerationRequest(prompt, max_new_tokens=8)


def test_the_gate_weighs_answers_to_stubs_without_examples(
    tmp_path: Path, tiny_config: AppConfig
) -> None:
    """The plain cascade keeps an answer it cannot check; with a gate, the gate decides
    whether it goes to the larger model, as the experiment's gated cascade does."""
    tiny_config.cascade.enabled = True
    with RouterLLM(tiny_config) as system:
        kept = system.generate(_asked(UNCHECKABLE), model="tiny-medium")
    assert kept.model == "tiny-medium" and "could not be checked" not in kept.reason
    gate_dir = _cheap_to_escalate(_state_width(tiny_config)).save(tmp_path / "gate")
    tiny_config.cascade.gate = str(gate_dir)
    with RouterLLM(tiny_config) as system:
        result = system.generate(_asked(UNCHECKABLE), model="tiny-medium")
        assert result.model == "tiny-heavy"
        assert "tiny-medium's answer could not be checked (the function states no examples), escalated to tiny-heavy: the gate's " in result.reason  # fmt: skip
        # the gate decides escalations from tiny-medium only: tiny-light's answer stays
        light = system.generate(_asked(UNCHECKABLE), model="tiny-light")
        assert light.model == "tiny-light" and "could not be checked" not in light.reason
        # a request in prose without examples is not a code answer to weigh
        prose = system.generate("Say hello.", model="tiny-medium")
        assert prose.model == "tiny-medium" and "escalated" not in prose.reason
    tiny_config.cascade.budget = 0.01
    with RouterLLM(tiny_config) as system:
        withheld = system.generate(_asked(UNCHECKABLE), model="tiny-medium")
    assert withheld.model == "tiny-medium"
    assert "could not be checked (the function states no examples), not escalated to tiny-heavy: the gate escalates nothing" in withheld.reason  # fmt: skip


def test_a_gate_that_cannot_read_the_state_lets_the_cascade_go_on(
    tmp_path: Path, tiny_config: AppConfig
) -> None:
    """A gate trained on another model file (another width of state) does not lose the
    request: the answer is escalated as without a gate, and the reason says why. (One
    whose first model's GGUF header gives its width is refused as the system starts;
    here the header is read as saying none, as a header this reader does not know.)"""
    gate_dir = _cheap_to_escalate(_state_width(tiny_config) + 1).save(tmp_path / "gate")
    tiny_config.cascade.enabled, tiny_config.cascade.gate = True, str(gate_dir)
    with (
        mock.patch("routerllm.model_header.gguf_hyperparameters", return_value={}),
        RouterLLM(tiny_config) as system,
    ):
        result = system.generate(REQUEST, model="tiny-medium")
        # an answer that could not be checked stays, as without a gate
        unchecked = system.generate(_asked(UNCHECKABLE), model="tiny-medium")
    assert result.model == "tiny-heavy" and "the gate was not used (the gate reads" in result.reason
    assert unchecked.model == "tiny-medium"
    assert "could not be checked (the function states no examples), not escalated to tiny-heavy: the gate was not used" in unchecked.reason  # fmt: skip


def test_a_served_gate_decides_without_scipy(tmp_path: Path, tiny_config: AppConfig) -> None:
    """A gate is served by a first model on llama.cpp (the ``local`` extra), which does not
    bring scipy (``learn``'s scikit-learn does): every decision of such a gate raised
    ModuleNotFoundError, the request lost to a traceback. Its sigmoid is numpy's now, as
    exact as scipy's, infinite intercepts (a sure outcome) included."""
    from scipy.special import expit

    from routerllm.gate_models import Logistic

    z = np.array([-np.inf, -800.0, -40.0, -1e-9, 0.0, 3.5, 40.0, 800.0, np.inf])
    sigmoid = Logistic(np.zeros(1), np.ones(1), np.ones(1), 0.0)
    np.testing.assert_allclose(sigmoid(z[:, None]), expit(z), rtol=1e-15, atol=0)
    gate_dir = _cheap_to_escalate(_state_width(tiny_config)).save(tmp_path / "gate")
    tiny_config.cascade.enabled, tiny_config.cascade.gate = True, str(gate_dir)
    with (
        mock.patch.dict(sys.modules, {"scipy": None, "scipy.special": None}),
        RouterLLM(tiny_config) as system,
    ):
        result = system.generate(REQUEST, model="tiny-medium")
    assert result.model == "tiny-heavy"
    assert "escalated to tiny-heavy: the gate's predicted success of tiny-heavy" in result.reason


def test_training_a_gate_without_scikit_learn_names_the_extra() -> None:
    """``train-gate`` without the learn extra was a ModuleNotFoundError traceback."""
    from routerllm.exceptions import MissingDependencyError

    with (
        pytest.MonkeyPatch.context() as hide,
        pytest.raises(MissingDependencyError, match=r"pip install 'routerllm\[learn\]'"),
    ):
        hide_package(hide, "sklearn")
        _fit(_problems(40, 3))


def test_a_gate_for_other_models_is_refused_when_the_system_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gate = _fit(_problems(40, 3))
    saved = gate.save(tmp_path / "gate")
    data = tiny_config_dict(tmp_path, cascade={"enabled": True, "gate": str(saved)})
    data["models"][1]["name"] = "other-medium"
    with pytest.raises(ConfigError, match="reads the state of 'tiny-medium', which is not a configured"):  # fmt: skip
        RouterLLM(load_config(write_config(tmp_path, data)))
    data = tiny_config_dict(tmp_path, cascade={"enabled": True, "gate": str(saved)})
    data["models"][1]["tier"], data["models"][1]["params_b"] = "heavy", 3.0  # now above tiny-heavy
    with pytest.raises(ConfigError, match="tiny-heavy is not the next larger model after tiny-medium"):  # fmt: skip
        RouterLLM(load_config(write_config(tmp_path, data)))
    data = tiny_config_dict(tmp_path, cascade={"enabled": True, "gate": str(tmp_path / "nope")})
    with pytest.raises(RouterLLMError, match="is not a saved gate"):
        RouterLLM(load_config(write_config(tmp_path, data)))
    # a gate on a disabled cascade is not used (nor read), which a warning says (until
    # 2026-12-04 nothing did): a config may keep it for the runs given --cascade
    data = tiny_config_dict(tmp_path, cascade={"enabled": False, "gate": str(tmp_path / "nope")})
    with caplog.at_level(logging.WARNING, logger="routerllm.served_gate"):
        RouterLLM(load_config(write_config(tmp_path, data))).close()
    assert "nope is not used: the cascade is off (cascade.enabled: false); set cascade.enabled: true (or give route or serve --cascade)" in caplog.text  # fmt: skip
    data["cascade"]["enabled"] = True  # as --cascade does
    with pytest.raises(RouterLLMError, match="is not a saved gate"):
        RouterLLM(load_config(write_config(tmp_path, data)))
    # a gate's budget without a gate would be ignored: the plain cascade escalates everything
    data = tiny_config_dict(tmp_path, cascade={"enabled": True, "budget": 0.5})
    with pytest.raises(ConfigError, match="cascade.budget is the escalation gate's energy budget, and cascade.gate is not set"):  # fmt: skip
        RouterLLM(load_config(write_config(tmp_path, data)))


def test_a_budget_with_the_cascade_off_is_warned_about_when_the_system_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """cascade.budget with the cascade off and no gate was silently not used (until
    2026-12-04): a warning says so, as for a gate with the cascade off."""
    data = tiny_config_dict(tmp_path, cascade={"enabled": False, "budget": 0.5})
    with caplog.at_level(logging.WARNING, logger="routerllm.served_gate"):
        RouterLLM(load_config(write_config(tmp_path, data))).close()
    assert "cascade.budget 0.5 is not used: it is the escalation gate's energy budget, and the cascade is off (cascade.enabled: false) with no gate" in caplog.text  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="routerllm.served_gate"):
        del data["cascade"]["budget"]
        RouterLLM(load_config(write_config(tmp_path, data))).close()
    assert "cascade.budget" not in caplog.text


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gated-cascade run of 8 problems (2 folds) on the tiny config, made once for the
    module (10-20 s under load): a test reads a copy of its own (``_copy_of``)."""
    folder = tmp_path_factory.mktemp("gated")
    run = folder / "run"
    run_experiment(load_config(write_config(folder, tiny_config_dict(folder))), run,
                   systems=["gated-cascade"], limit=8, folds=2,
                   style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    return run


def _copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def test_train_gate_on_a_run_and_serve_with_it(
    tiny_config_path: Path, tmp_path: Path, gated_run: Path
) -> None:
    run = _copy_of(gated_run, tmp_path)
    gate_dir = tmp_path / "gate"
    out = cli_in_process("train-gate", "--run", str(run), "--out", str(gate_dir), "--folds", "2",
                         "--budget", "0.9", "--config", str(tiny_config_path), "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    # the run asked the models for 8 tokens; a system asks tiny-heavy for its style's 512:
    # the gate learns its success and energy in another style than it will be served in
    other_style = (
        f"--run {run} was made in another prompting style: it asked tiny-heavy in chat mode "
        "(max_new_tokens 8), a system of this config in chat mode (max_new_tokens 512): "
        "differs in max_new_tokens; its answers train the gate all the same"
    )
    assert other_style in out.stderr and out.stderr.count("prompting style") == 1, out.stderr
    summary = json.loads(out.stdout)
    assert summary["first"] == "tiny-medium" and summary["then"] == "tiny-heavy"
    assert summary["training"]["problems"] == 8 and summary["budget"] == 0.9
    assert summary["check_kwh"] > 0  # checking the answers, measured by CodeCarbon
    printed = cli_in_process("train-gate", "--run", str(run), "--out", str(tmp_path / "g1"),
                             "--folds", "2", "--config", str(tiny_config_path)).stdout  # fmt: skip
    check_kwh = EscalationGate.load(tmp_path / "g1").check_kwh
    assert f"checking tiny-medium's answers included ({energy(check_kwh)} a request)" in printed
    # carbon tracking off: the checks cannot be measured, and the output says so
    quiet = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}), "quiet.yaml")  # fmt: skip
    unmeasured = cli_in_process("train-gate", "--run", str(run), "--out", str(tmp_path / "g0"), "--folds", "2",
                      "--config", str(quiet))  # fmt: skip
    assert "answers not counted (carbon tracking is off in the config)" in unmeasured.stdout
    assert EscalationGate.load(tmp_path / "g0").check_kwh == 0.0
    gate = EscalationGate.load(gate_dir)
    assert (
        gate.about["run"] == str(run) and gate.about["style"]["mode"] == "chat"
    )  # tiny models: the chat style
    served = cli_in_process("route", REQUEST, "--config", str(tiny_config_path), "--model",
                            "tiny-medium", "--gate", str(gate_dir), "--json")  # fmt: skip
    assert served.returncode == 0, served.stderr
    assert gate.about["styles"]["tiny-heavy"]["max_new_tokens"] == 8  # recorded, so said here
    assert (
        f"cascade.gate {gate_dir} was trained on a run that asked tiny-heavy in chat mode "
        "(max_new_tokens 8), this system in chat mode (max_new_tokens 512): differs in "
        "max_new_tokens" in served.stderr
    ), served.stderr
    # a run that asked tiny-heavy as a system asks it: nothing said
    same = shutil.copytree(run, tmp_path / "same")
    with closing(sqlite3.connect(same / "results.sqlite")) as db, db:
        db.execute("UPDATE styles SET style = ? WHERE model = 'tiny-heavy'",
                   (json.dumps(asdict(style_for("tiny-heavy")), sort_keys=True),))  # fmt: skip
    alike = cli_in_process("train-gate", "--run", str(same), "--out", str(tmp_path / "g4"), "--folds", "2",
                 "--config", str(tiny_config_path))  # fmt: skip
    assert alike.returncode == 0 and "prompting style" not in alike.stderr, alike.stderr
    reason = json.loads(served.stdout)["reason"]
    assert "tiny-medium's answer failed 2 of the request's 2 examples" in reason
    said = (  # a budget no escalation fits says so, not that this one fell short
        "the gate escalates nothing within a budget of 90% of tiny-heavy's energy"
        if math.isinf(gate.threshold)
        else "the gate's predicted success of tiny-heavy"
    )
    assert said in reason
    # the same name on another file (here the chat template differs; a quantisation would
    # too), whose states are as wide: refused, not decided on states it never learned
    other = tiny_config_dict(tmp_path, cascade={"enabled": True, "gate": str(gate_dir)})
    other["models"][1]["gguf"] = {"path": str(gguf_with_chat_template(tmp_path / "other.gguf", GEMMA_TEMPLATE))}  # fmt: skip
    with pytest.raises(ConfigError, match="trained on a run whose tiny-medium was another model file"):  # fmt: skip
        RouterLLM(load_config(write_config(tmp_path, other, "other.yaml")))
    # nor trained for that config: train-gate said "serve with the config's cascade", and a
    # system of that config refused the gate
    mismatched = cli_in_process("train-gate", "--run", str(run), "--out", str(tmp_path / "g3"), "--folds", "2",
                      "--config", str(tmp_path / "other.yaml"))  # fmt: skip
    assert mismatched.returncode == 2 and "Traceback" not in mismatched.stderr
    assert "its tiny-medium was another model file (or quantisation) than this config's" in mismatched.stderr  # fmt: skip
    assert not (tmp_path / "g3").exists()
    meta = json.loads((gate_dir / "config.json").read_text())
    assert set(meta["about"]["sources"]) == {"tiny-medium", "tiny-heavy"}
    # user mistakes: one line each, nothing written
    for args, message in (
        (["--run", str(tmp_path / "none")], "no results.sqlite there"),
        (
            ["--run", str(run), "--folds", "5"],
            "has 8 problems to train on; a gate needs at least 10",
        ),
        (["--run", str(run), "--budget", "0"], "must be a finite number > 0"),
        # a run whose larger model cost nothing it knew of (a remote one without energy
        # figures): its budget is a share of nothing; the gate was saved, then a traceback,
        # and serving it said "make it again", which made it again the same
        (["--run", str(_without_energy(run, "tiny-heavy", tmp_path / "free")), "--folds", "2"],
         "tiny-heavy's generation energy is 0 kWh on all 8 training problems"),
    ):  # fmt: skip
        bad = cli_in_process("train-gate", *args, "--out", str(tmp_path / "g2"), "--config", str(tiny_config_path))  # fmt: skip
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
        assert not (tmp_path / "g2").exists()


def _without_energy(run: Path, model: str, out: Path) -> Path:
    """A copy of ``run`` whose ``model`` spent no energy it measured."""
    shutil.copytree(run, out)
    with closing(sqlite3.connect(out / "results.sqlite")) as db, db:
        db.execute("UPDATE generations SET gen_kwh = 0 WHERE model = ?", (model,))
    return out


def test_a_gate_config_json_nested_too_deeply_is_one_error_naming_it(tmp_path: Path) -> None:
    """json's parser recurses: its RecursionError (a RuntimeError) was read as a zip's
    damage, "corrupt weights.npz", when the gate was loaded, and was a traceback when a
    gate was to be saved into the folder."""
    saved = _fit(_problems(40, 3)).save(tmp_path / "gate")
    (saved / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RouterLLMError) as err:
        EscalationGate.load(saved)
    assert "config.json is not valid JSON (nested too deeply)" in str(err.value)
    assert "weights.npz" not in str(err.value)
    # a save cut short left weights aside: config.json is read to see which it names
    shutil.copy(saved / "weights.npz", saved / "weights.previous.npz")
    with pytest.raises(RouterLLMError, match=r"config.json is not valid JSON \(nested too deeply\)"):  # fmt: skip
        EscalationGate.load(saved)
    with pytest.raises(RouterLLMError, match="holds a config.json that is not a saved escalation gate"):  # fmt: skip
        EscalationGate.check_saveable(saved)


def test_an_incomplete_or_corrupt_gate_is_refused_when_loaded_naming_what_is_wrong(
    tmp_path: Path,
) -> None:
    """A key missing from config.json, an array missing from weights.npz or an array of
    the wrong shape: one line naming it, when the gate is loaded (not when it decides)."""
    saved = _fit(_problems(40, 3)).save(tmp_path / "gate")
    config = json.loads((saved / "config.json").read_text())
    del config["weights_sha256"]  # the arrays change below; as saved before it was recorded
    with np.load(saved / "weights.npz") as npz:
        weights = {k: npz[k] for k in npz.files}

    def broken(
        name: str, meta: dict[str, object], arrays: dict[str, np.ndarray], message: str
    ) -> None:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(meta))
        np.savez(folder / "weights.npz", **arrays)  # type: ignore[arg-type]
        with pytest.raises(RouterLLMError) as err:
            EscalationGate.load(folder)
        text = str(err.value)
        assert "\n" not in text and f"the gate in {folder} is incomplete or corrupt: " in text
        assert message in text and text.endswith(f"routerllm train-gate --run RUN --out {folder}")

    no_floor = {k: v for k, v in config.items() if k != "energy_floor"}
    broken("nokey", no_floor, weights, "config.json has no 'energy_floor'")
    broken("budget", {**config, "budget": "abc"}, weights, "'budget' must be a finite number, got 'abc'")  # fmt: skip
    broken("check", {**config, "check_kwh": -1.0}, weights, "the energy of a check must be a number of kWh >= 0, got -1.0")  # fmt: skip
    # saved before the checks were measured: read as costing nothing, as it was calibrated
    older = tmp_path / "older"
    older.mkdir()
    (older / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "check_kwh"}))  # fmt: skip
    np.savez(older / "weights.npz", **weights)  # type: ignore[arg-type]
    assert EscalationGate.load(older).check_kwh == 0.0
    broken("empty", config, {}, "weights.npz has no array 'regression_mean'")
    short = {**weights, "calibration_score": weights["calibration_score"][:3]}
    broken("calshape", config, short, "weights.npz's 'calibration_score' has shape (3), expected (40)")  # fmt: skip
    broken("coef", config, {**weights, "energy_coef": weights["energy_coef"][:1]},
           "weights.npz's 'energy_coef' has shape (1), expected (3)")  # fmt: skip
    one_model = {**weights, "calibration_kwh": weights["calibration_kwh"][:, :1]}
    broken("kwh", config, one_model, "'calibration_kwh' has shape (40, 1), expected (40, 2)")
    narrow = {**weights, "regression_coef": weights["regression_coef"][:2]}
    broken("regression", config, narrow, "'regression_coef' has shape (2), expected (3)")
    nan_coef = {**weights, "regression_coef": np.full_like(weights["regression_coef"], np.inf)}
    broken(
        "nan", config, nan_coef, "weights.npz's 'regression_coef' holds values that are not finite"
    )
    zero_scale = {**weights, "regression_scale": np.zeros_like(weights["regression_scale"])}
    broken("scale", config, zero_scale, "'regression_scale' holds values that are not > 0")
    broken("floor", {**config, "energy_floor": 0.0}, weights, "'energy_floor' must be > 0, got 0.0")
    none = {k: v[:0] if k.startswith("calibration_") else v for k, v in weights.items()}
    broken("none", config, none, "weights.npz holds no training problems to set the threshold on")
    nan_score = {**weights, "calibration_score": np.full_like(weights["calibration_score"], np.nan)}
    broken("nanscore", config, nan_score, "'calibration_score' holds values that are not numbers")


@pytest.mark.parametrize(
    ("argv", "error"),
    [(["--fold", "5"], "--fold: 0 to 4, one of the --folds 5"),
     (["--fold", "-1"], "--fold: 0 to 4, one of the --folds 5"),
     (["--folds", "3", "--fold", "3"], "--fold: 0 to 2, one of the --folds 3"),
     (["--folds", "1"], "argument --folds: 1 is out of range: give 2 to 20"),
     (["--limit", "0"], "argument --limit: 0 is out of range: give a whole number >= 1"),
     (["--limit", "-1"], "argument --limit: -1 is out of range: give a whole number >= 1")],
)  # fmt: skip
def test_the_serving_benchmark_refuses_a_fold_or_limit_that_serves_nothing(
    argv: list[str], error: str, tmp_path: Path
) -> None:
    """--fold 5 of 5 folds trained the gate on every problem, then served none and died
    dividing by zero; --limit -1 silently left out the fold's last problem."""
    out = benchmark_in_process("serving_gate", "--run", str(tmp_path / "run"), *argv)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == f"serving_gate.py: error: {error}"


def test_the_serving_benchmark_refuses_a_bad_run_in_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """``benchmarks/serving_gate.py --run`` reads a run: a mistyped one was made (an empty
    results.sqlite) before a traceback, as was a run without prompt states."""
    from routerllm.data.humaneval import load_humaneval
    from routerllm.eval.result_store import ResultStore

    stateless = tmp_path / "stateless"
    store = ResultStore(stateless / "results.sqlite")
    problems = load_humaneval()[:12]
    store.add_problems(problems)
    for model in [m.name for m in load_config("local").models_by_size()]:
        for p in problems:
            store.add({"model": model, "task_id": p.task_id, "raw": "x", "completion": "x",
                       "prompt_tokens": 3, "completion_tokens": 1, "gen_s": 0.1, "gen_kwh": 1e-6,
                       "gen_co2": 4e-7, "method": "test", "status": "failed", "detail": "",
                       "passed": 0})  # fmt: skip
    store.close()
    before = (stateless / "results.sqlite").read_bytes()
    for run, message in (
        (tmp_path / "typo", "no results.sqlite there"),
        (stateless, "were made without reading"),
    ):
        out = benchmark_in_process("serving_gate", "--run", str(run), tmpdir=tmp_path)
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "typo").exists()
    assert (stateless / "results.sqlite").read_bytes() == before


@pytest.mark.parametrize("before_digests", [False, True])
@pytest.mark.parametrize("cut_at", ["weights.npz", "config.json"])
def test_an_interrupted_save_leaves_the_previous_gate_whole(
    tmp_path: Path, cut_at: str, before_digests: bool
) -> None:
    """A save cut short between its two files (here: before its weights or its config
    are renamed into place) loads as the gate saved before, not the old config with
    the new weights, also over a gate saved before config.json recorded the weights'
    digest; saving again then works, and a weights.npz that does not match its
    config.json is a clear error."""
    folder = tmp_path / "gate"
    old, new = _fit(_problems(40, 3)), _fit(_problems(80, 3), budget=0.3)
    old.save(folder)
    real = files_module.publish
    if before_digests:  # a gate saved before today, its first save since cut short
        config = json.loads((folder / "config.json").read_text())
        del config["weights_sha256"]
        (folder / "config.json").write_text(json.dumps(config))

    def cut(tmp: Path, target: Path) -> None:
        if target.name == cut_at:
            raise KeyboardInterrupt
        real(tmp, target)

    with mock.patch.object(files_module, "publish", cut), pytest.raises(KeyboardInterrupt):
        new.save(folder)
    loaded = EscalationGate.load(folder)
    assert (loaded.budget, len(loaded.calibration["score"])) == (0.7, 40)
    new.save(folder)
    loaded = EscalationGate.load(folder)
    assert (loaded.budget, len(loaded.calibration["score"])) == (0.3, 80)
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "config.json", "weights.npz"]
    other = _fit(_problems(80, 3, seed=1)).save(tmp_path / "other")
    (folder / "weights.npz").write_bytes((other / "weights.npz").read_bytes())
    with pytest.raises(RouterLLMError, match="weights.npz does not match config.json"):
        EscalationGate.load(folder)


def test_a_gate_loaded_while_another_save_lands_there_loads_whole(tmp_path: Path) -> None:
    """A `train-gate` saving into the folder a server or `route` was loading: the load
    read the old config.json, then the new weights, and failed ("weights.npz does not
    match config.json ... make it again"). It loads the gate saved there now."""
    import routerllm.gate as gate_module

    folder = tmp_path / "gate"
    old, new = _fit(_problems(40, 3)), _fit(_problems(80, 3), budget=0.3)
    old.save(folder)
    real, saves = gate_module.holds, []

    def another_save_meanwhile(weights: Path, sha256: str) -> bool:
        if not saves:  # the old config and weights read: the new ones land
            saves.append(new.save(folder))
        return real(weights, sha256)

    with mock.patch.object(gate_module, "holds", another_save_meanwhile):
        loaded = EscalationGate.load(folder)
    assert saves == [folder]
    assert (loaded.budget, len(loaded.calibration["score"])) == (0.3, 80)


def test_two_saves_to_one_folder_at_once_leave_one_whole_gate(tmp_path: Path) -> None:
    # A save that ran while another was between its weights and its config replaced the
    # weights: the other's config then named weights that were gone, and the folder
    # loaded neither ("weights.npz does not match config.json").
    import threading

    folder = tmp_path / "gate"
    first, second = _fit(_problems(40, 3)), _fit(_problems(80, 3), budget=0.3)
    first.save(folder)
    other = threading.Thread(target=second.save, args=(folder,))
    with another_save_meanwhile(other):
        first.save(folder)
    loaded = EscalationGate.load(folder)  # the last save's, whole
    assert (loaded.budget, len(loaded.calibration["score"])) == (0.3, 80)


def test_train_gate_refuses_a_run_it_cannot_train_on_before_checking_its_answers(
    tiny_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], gated_run: Path
) -> None:
    """A run whose larger model spent no energy it knew of, and a missing scikit-learn,
    were found only after every stored answer of the first model had run on its prompt's
    examples in the sandbox (up to 5 s each: minutes on a whole HumanEval run); without
    scikit-learn a run whose answers all failed even trained a gate."""
    import routerllm.eval.prompt_examples as examples
    from routerllm.cli import main

    run = _copy_of(gated_run, tmp_path)
    free = _without_energy(run, "tiny-heavy", tmp_path / "free")
    no_sklearn = ["sklearn"]
    for run_dir, hidden, says in (
        (free, [], "error: tiny-heavy's generation energy is 0 kWh on all 8 training problems"),
        (
            run,
            no_sklearn,
            "error: scikit-learn is not installed; install it with: pip install 'routerllm[learn]'",
        ),
    ):
        # Only these entries hidden, and put back: mock.patch.dict(sys.modules) dropped
        # every module first imported inside it (the train-gate command's), leaving later
        # tests a second copy of each (a patch of routerllm.eval.transfer missed the one
        # the CLI imports) and scikit-learn, imported again, refusing to load
        with (
            mock.patch.object(
                examples, "verify_completion", wraps=examples.verify_completion
            ) as checks,
            pytest.MonkeyPatch.context() as hide,
        ):
            for name in hidden:
                hide_package(hide, name)
            status = main(["train-gate", "--run", str(run_dir), "--out", str(tmp_path / "gate"),
                           "--folds", "2", "--config", str(tiny_config_path)])  # fmt: skip
        err = capsys.readouterr().err
        assert status == 2 and err.startswith(says) and err.count("\n") == 1, err
        assert checks.call_count == 0  # no answer was run in the sandbox
        assert not (tmp_path / "gate").exists()


def test_a_gate_of_another_width_of_state_is_refused_when_the_system_starts(
    tmp_path: Path, tiny_config_path: Path, tiny_config: AppConfig
) -> None:
    """A gate trained on another model file (saved before its run's model files were
    recorded, or the file at the configured path replaced since) reads states of another
    width: it was loaded, `serve --gate` started with it, and every request then said "the
    gate was not used". Its first model's GGUF header gives the width of its states."""
    from routerllm.gguf_header import gguf_hyperparameters

    from .conftest import tiny_gguf_path

    width = gguf_hyperparameters(tiny_gguf_path())["embedding_length"]
    assert width == _state_width(tiny_config)  # the header's width is the state's
    gate_dir = _cheap_to_escalate(width + 1).save(tmp_path / "gate")
    says = (
        f"cascade.gate {gate_dir} reads tiny-medium's {width + 1}-wide state of the prompt, "
        f"and tiny-medium's GGUF ({tiny_gguf_path()}) gives {width}-wide states: the gate "
        f"was trained on another model file; train a gate on a run of this config's models"
    )
    tiny_config.cascade.enabled, tiny_config.cascade.gate = True, str(gate_dir)
    with pytest.raises(ConfigError) as refused:
        RouterLLM(tiny_config)
    assert str(refused.value) == says
    try:
        serve = subprocess.run(
            [sys.executable, "-m", "routerllm.cli", "serve", "--config", str(tiny_config_path),
             "--port", "0", "--gate", str(gate_dir)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve started with the gate: {e.stdout!r}")
    assert (serve.returncode, serve.stderr, serve.stdout) == (2, f"error: {says}\n", "")


def gated_run_of_own_medium(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A gated-cascade run of 4 problems (2 folds) on the tiny config whose medium model is
    a copy of the tiny GGUF of its own (to replace): that file, the config, the run."""
    from .conftest import tiny_gguf_path

    medium = tmp_path / "medium.gguf"
    shutil.copyfile(tiny_gguf_path(), medium)
    data = tiny_config_dict(tmp_path)
    data["models"][1]["gguf"] = {"path": str(medium)}
    config_path = write_config(tmp_path, data)
    run = tmp_path / "run"
    run_experiment(load_config(config_path), run, systems=["gated-cascade"], limit=4, folds=2,
                   style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
    return medium, config_path, run


def test_train_gate_refuses_a_run_whose_states_it_cannot_use_before_checking_its_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose stored states are not as wide as the config's GGUF of the first model
    gives (the file at the configured path replaced since the run) trained a gate that
    `serve --gate` then refused; states of two widths, or a state holding NaN (a damaged
    file), were a traceback or a gate trained on them; a run stopped before its first
    answer said it "was made with other models (none)"."""
    import routerllm.eval.prompt_examples as examples
    from routerllm.cli import main

    from .conftest import gguf_with_state_width

    medium, config_path, run = gated_run_of_own_medium(tmp_path)

    def damaged(name: str, statement: str) -> Path:
        shutil.copytree(run, out := tmp_path / name)
        with closing(sqlite3.connect(out / "results.sqlite")) as db, db:
            db.execute(statement)
        return out

    nan = np.full(16, np.nan, dtype=np.float32).tobytes()
    some = "WHERE task_id = (SELECT MIN(task_id) FROM prompt_states)"
    cases = [
        (damaged("mixed", f"UPDATE prompt_states SET state = substr(state, 1, 60) {some}"),
         "prompt_states of tiny-medium: states of 2 widths (15, 16 values)"),
        (damaged("nan", f"UPDATE prompt_states SET state = x'{nan.hex()}' {some}"),
         "holds a value that is not a finite number"),
        (damaged("unanswered", "DELETE FROM generations"),
         f"--run {tmp_path / 'unanswered'}: the run holds no answers yet; finish it first"),
        (run, f"--run {run} stored tiny-medium's 16-wide states of the prompts, and "
              f"tiny-medium's GGUF ({medium}) gives 32-wide states: the run was made with "
              f"another model file; train on a run of this config's models"),
    ]  # fmt: skip
    for run_dir, says in cases:
        if run_dir == run:  # the file at the configured path replaced since the run
            gguf_with_state_width(tmp_path / "wide.gguf", 32).replace(medium)
            capsys.readouterr()  # the gguf writer's progress
            _forget_weights(run)  # else refused for its other weights, before its states
        with mock.patch.object(
            examples, "verify_completion", wraps=examples.verify_completion
        ) as checks:
            status = main(["train-gate", "--run", str(run_dir), "--out", str(tmp_path / "gate"),
                           "--folds", "2", "--config", str(config_path)])  # fmt: skip
        err = capsys.readouterr().err
        assert status == 2 and says in err and err.count("\n") == 1, err
        assert checks.call_count == 0  # no answer was run in the sandbox
        assert not (tmp_path / "gate").exists()


def _forget_weights(run: Path) -> None:
    """``run`` as stored before its models' weights were recorded (2026-12-06): a run
    made with another file at the same path is then told by its states' width alone."""
    with closing(sqlite3.connect(run / "results.sqlite")) as db, db:
        assert db.execute("DELETE FROM meta WHERE key LIKE 'weights:%'").rowcount > 0


def test_training_on_a_run_of_states_of_another_width_is_refused_before_generating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`humaneval --train-on` a run whose first model was another file at the configured
    path (its states 16 wide; the file there now, a real model, gives 64-wide ones)
    generated every answer, then ended in numpy's vstack traceback."""
    from routerllm.cli import main

    from . import tiny_archs
    from .conftest import tiny_gguf_path

    no_block_read_as_contended(monkeypatch)  # its stderr is read whole
    medium = tmp_path / "medium.gguf"
    shutil.copyfile(tiny_gguf_path(), medium)
    data = tiny_config_dict(tmp_path)
    data["models"][1]["gguf"] = {"path": str(medium)}
    config_path = write_config(tmp_path, data)
    rows = [{"text": f"Write a function that adds {i}.", "task_id": i, "test_setup_code": "",
             "code": f"def add_{i}(x):\n    return x + {i}", "test_list": [f"assert add_{i}(1) == {i + 1}"]}
            for i in range(4)]  # fmt: skip
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    other = tmp_path / "mbpp"
    run_experiment(load_config(config_path), other, systems=["gated-cascade"], folds=2,
                   style_overrides={"max_new_tokens": 8}, progress=False, problems_file=mbpp)  # fmt: skip
    tiny_archs.gemma3(tmp_path / "wide.gguf").replace(medium)  # another model, same path
    capsys.readouterr()  # the gguf writer's progress
    _forget_weights(other)  # else refused for its other weights, before its states
    out = tmp_path / "he"
    status = main(["humaneval", "--systems", "gated-cascade", "--limit", "2", "--folds", "1",
                   "--max-new-tokens", "8", "--train-on", str(other), "--out", str(out),
                   "--config", str(config_path)])  # fmt: skip
    err = capsys.readouterr().err
    says = (
        f"error: --train-on {other} stored tiny-medium's 16-wide states of the prompts, and "
        f"tiny-medium's GGUF ({medium}) gives 64-wide states for this run ({out}): the run "
        f"was made with another model file; train on a run of this config's models\n"
    )
    assert (status, err) == (2, says)
    assert not (out / "results.sqlite").exists()  # nothing was generated
    # a GGUF whose header could not be read before (one yet to be downloaded): said once
    # the states are read, the answers kept
    with mock.patch("routerllm.model_header.state_width", return_value=None):
        status = main(["humaneval", "--systems", "gated-cascade", "--limit", "2", "--folds", "1",
                       "--max-new-tokens", "8", "--train-on", str(other), "--out", str(out),
                       "--config", str(config_path), "--json"])  # fmt: skip
    err = capsys.readouterr().err
    says = (
        f"error: --train-on {other} stored tiny-medium's 16-wide states of the prompts, and "
        f"this run ({out}) 64-wide ones: the run was made with another model file; train on "
        f"a run of this config's models (this run's answers are kept)\n"
    )
    assert (status, err) == (2, says)
    with closing(sqlite3.connect(out / "results.sqlite")) as db:
        assert db.execute("SELECT COUNT(*) FROM generations").fetchone() == (6,)


def test_gate_threshold_by_hand() -> None:
    """Three unverified problems scored 3, 2, 1; the first model costs nothing here."""
    score, unverified = np.array([3.0, 2.0, 1.0]), np.ones(3, dtype=bool)
    kwh = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 2.0]])
    # Only the second model solves: escalating the top two spends 2 kWh, exactly the
    # budget (0.5 x its 4 kWh), which fits.
    solved = np.array([[0, 1], [0, 1], [0, 1]], dtype=bool)
    assert gate_threshold(score, unverified, solved, kwh, 0.5) == 2.0
    # Escalating 1, 2 or 3 problems solves one: the least spent, the top one alone.
    kwh = np.ones((3, 2)) * [0.0, 1.0]
    solved = np.array([[0, 1], [0, 0], [0, 0]], dtype=bool)
    assert gate_threshold(score, unverified, solved, kwh, 1.0) == 3.0
    # The top problem, solved by the first model only, is lost when escalated: escalating
    # it with the next (solved by the second only) gains nothing, so nothing is escalated.
    solved = np.array([[1, 0], [0, 1], [0, 0]], dtype=bool)
    assert gate_threshold(score, unverified, solved, kwh, 1.0) == math.inf
    # Escalating the top two spends exactly the budget, 0.6 x 0.5 kWh, though the sum
    # 0.1 + 0.2 rounds above 0.3 in floating point: it fits.
    kwh = np.array([[0.0, 0.1], [0.0, 0.2], [0.0, 0.2]])
    solved = np.array([[0, 1], [0, 1], [0, 1]], dtype=bool)
    assert gate_threshold(score, unverified, solved, kwh, 0.6) == 2.0


def test_gate_threshold_counts_the_first_answer_of_an_escalated_problem() -> None:
    """The first model's answer (0.5 kWh each) is paid for on every problem, escalated or
    not: within 0.75 x 4 kWh = 3, the top one fits (1.5 + 1 = 2.5), the top two do not
    (1.5 + 2 = 3.5), though they would (2.5) if an escalated problem's first answer were
    left out."""
    score, unverified = np.array([3.0, 2.0, 1.0]), np.ones(3, dtype=bool)
    kwh = np.array([[0.5, 1.0], [0.5, 1.0], [0.5, 2.0]])
    solved = np.array([[0, 1], [0, 1], [0, 1]], dtype=bool)
    assert gate_threshold(score, unverified, solved, kwh, 0.75) == 3.0


def test_gate_threshold_never_escalates_a_verified_answer_whatever_its_score() -> None:
    """A verified answer scored 5, above the three unverified ones, stays with the first
    model: within 0.5 x 5 kWh = 2.5, the top two unverified (2 kWh) go up and 3 are
    solved. Were the verified one escalated with them (3 kWh) it would not fit, and the
    threshold would rise to 3 (the top one and the verified one, 2 solved)."""
    score = np.array([3.0, 2.0, 1.0, 5.0])
    unverified = np.array([True, True, True, False])
    kwh = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [0.0, 1.0]])
    solved = np.array([[0, 1], [0, 1], [0, 1], [1, 1]], dtype=bool)
    assert gate_threshold(score, unverified, solved, kwh, 0.5) == 2.0


def test_the_energy_models_floor_is_a_tenth_of_the_fitted_mean() -> None:
    """kWh = answer tokens exactly, mean 4: the fit gives 2 for 2 answer tokens, and for
    none the floor, 0.4, not 0."""
    model = EnergyModel.fit(
        np.array([[5.0, 1], [3, 2], [8, 3], [1, 10]]), np.array([1.0, 2, 3, 10])
    )
    assert model.floor == pytest.approx(0.4)
    np.testing.assert_allclose(model(np.array([[0.0, 0], [0, 2]])), [0.4, 2.0])


def test_out_of_fold_predictions_never_see_their_own_problem() -> None:
    """Six problems in 3 folds: each is predicted by a model fitted on the 4 others."""
    seen = out_of_fold(np.arange(6), 3, 0, lambda fit_on, idx: np.array([[float(i in fit_on), len(fit_on)] for i in idx]))  # fmt: skip
    np.testing.assert_array_equal(seen, [[0.0, 4.0]] * 6)


def test_the_success_map_is_fitted_on_the_unverified_answers() -> None:
    """Among unverified answers the heavy model solves 46 % (75 % over all problems): the
    map's out-of-fold predictions average what it solves there (a logistic regression's
    intercept balances its fitted chances), not the rate over all problems."""
    p = _problems(200, 4)
    u = p["unverified"]
    _, oof = SuccessModel.fit(p["states"], p["solved"][:, 1], u, 4, 0)
    assert p["solved"][u, 1].mean() == pytest.approx(0.4565, abs=1e-4)
    assert oof[u].mean() == pytest.approx(p["solved"][u, 1].mean(), abs=1e-3)


def _hand_made_gate(check_kwh: float = 0.0) -> EscalationGate:
    """A gate that predicts success 0.5 and 2 kWh for every answer (score 0.25), its
    threshold chosen on four training problems: three unverified ones scored 3, 2 and 1
    that only the second model solves (1, 1 and 2 kWh of it), and a verified one scored
    10 that the first model solves (the second spends nothing on it)."""
    constant = Logistic(np.zeros(1), np.ones(1), np.zeros(1), 0.0)  # sigmoid(0) = 0.5
    calibration = {
        "score": np.array([3.0, 2.0, 1.0, 10.0]),
        "unverified": np.array([True, True, True, False]),
        "solved": np.array([[0, 1], [0, 1], [0, 1], [1, 1]], dtype=float),
        "kwh": np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [0.0, 0.0]]),
    }
    gate = EscalationGate(
        "tiny-medium", "tiny-heavy", SuccessModel(constant, constant),
        EnergyModel(np.array([0.0, 0.0, 2.0]), 0.1), 0.5, math.inf, calibration,
        check_kwh=check_kwh,
    )  # fmt: skip
    return gate.with_budget(0.5)


def test_a_gate_on_its_training_problems_by_hand() -> None:
    """0.5 x 4 kWh: the top two unverified escalated (2 kWh), not the verified one scored
    above them: 3 of 4 solved. Checks of 0.1 kWh a problem leave 2 - 0.4 = 1.6: the top
    one only, 1 + 0.4 = 1.4 kWh, 35% of the second model's."""
    gate = _hand_made_gate()
    assert gate.threshold == 2.0
    assert gate.on_training() == {
        "problems": 4, "unverified": 3, "escalated": 2, "pass@1": 0.75,
        "energy_share": 0.5, "estimated_energy_share": None, "then_pass@1": 1.0,
    }  # fmt: skip
    checked = _hand_made_gate(check_kwh=0.1).on_training()
    assert (checked["escalated"], checked["pass@1"]) == (1, 0.5)
    assert checked["energy_share"] == pytest.approx(0.35)


def test_a_score_exactly_at_the_threshold_is_escalated() -> None:
    """As on the training problems (score >= threshold): 0.5 / 2 kWh = 0.25 clears a
    threshold of 0.25, not one just above it."""
    gate = _hand_made_gate()
    at = replace(gate, threshold=0.25).decide((0.3,), 100, 50)
    assert (at.escalate, at.success, at.kwh) == (True, 0.5, 2.0)
    above = replace(gate, threshold=math.nextafter(0.25, 1.0)).decide((0.3,), 100, 50)
    assert not above.escalate


def test_the_energy_model_is_fitted_on_the_second_models_measured_answers_only() -> None:
    """The second model's kWh is 3e-7 x answer tokens + 1e-5 (``_problems``); where it
    was not measured (stored as 0) the fit leaves the answer out, where only the first
    model's was not it keeps it: the fit is exact."""
    p = _problems(60, 3)
    measured = np.ones((60, 2), dtype=bool)
    measured[:10, 1] = measured[10:20, 0] = False
    gate = EscalationGate.fit(
        "tiny-medium", "tiny-heavy", p["states"], p["solved"], np.where(measured, p["kwh"], 0.0),
        p["tokens"], p["unverified"], 0.7, folds=4, seed=0, measured=measured,
    )  # fmt: skip
    np.testing.assert_allclose(gate.energy.coef, [0.0, 3e-7, 1e-5], rtol=1e-6, atol=1e-15)
