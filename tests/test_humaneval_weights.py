"""A HumanEval run's stored answers belong to the weights that made them: a model file
changed in place (a package upgraded, a GGUF written again under its name) is not
another model's path, yet its stored answers are not the new weights'."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import time
from contextlib import AbstractContextManager, closing
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import routerllm.eval.weights_identity as weights_identity
import routerllm.files_identity as files_identity
from routerllm.backends.base import GenerationRequest
from routerllm.config import AppConfig, load_config
from routerllm.data.outcome_files import load_outcomes
from routerllm.eval.humaneval_report import run_experiment
from routerllm.eval.result_store import ResultStore
from routerllm.eval.transfer import load_training_run
from routerllm.exceptions import ConfigError, RouterLLMError
from routerllm.files import sha256_of
from routerllm.served_gate import GateWeights
from routerllm.system import RouterLLM

from .conftest import (
    cli_in_process,
    gguf_with_other_weights,
    tiny_config_dict,
    tiny_gguf_path,
    write_config,
)
from .test_gate import UNCHECKABLE, _cheap_to_escalate, _state_width, gated_run_of_own_medium

#: a run's answers of 8 tokens, not its code style's 512: which weights made them is what
#: is tested, not what they say (tiny-light wrote hundreds of tokens a problem)
FEW_TOKENS: dict[str, Any] = {"style_overrides": {"max_new_tokens": 8}, "progress": False}


def _light_at(config: AppConfig, path: Path) -> AppConfig:
    """``config`` with its light model's GGUF at ``path`` (a copy of the tiny one)."""
    shutil.copyfile(tiny_gguf_path(), path)
    config = config.model_copy(deep=True)
    config.models_by_size()[0].gguf.path = str(path)  # type: ignore[union-attr]
    return config


def test_stored_answers_of_a_model_file_changed_in_place_are_not_reused(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    light = tmp_path / "light.gguf"
    config, out = _light_at(tiny_config, light), tmp_path / "he"
    run_experiment(config, out, systems=["direct-light"], limit=1, **FEW_TOKENS)
    gguf_with_other_weights(light)  # same path, same size, other answers
    before = (out / "results.sqlite").read_bytes()
    with pytest.raises(RouterLLMError, match=f"'tiny-light' .*other weights.*{light}"):
        run_experiment(config, out, systems=["direct-light"], limit=1, **FEW_TOKENS)
    assert (out / "results.sqlite").read_bytes() == before
    # Nor reported by a run that does not need it, as another file's answers are not.
    heavy = run_experiment(config, out, systems=["direct-heavy"], limit=1, **FEW_TOKENS)
    assert heavy["models"] == ["tiny-heavy"]
    assert load_outcomes(out / "outcomes" / "humaneval.json").models == ["tiny-heavy"]
    # The same weights again (a reinstall, a copy back: another inode and time) are its own.
    light.unlink()
    shutil.copyfile(tiny_gguf_path(), light)
    again = run_experiment(config, out, systems=["direct-light", "direct-heavy"], limit=1,
                           **FEW_TOKENS)  # fmt: skip
    assert again["models"] == ["tiny-light", "tiny-heavy"]
    store = ResultStore(out / "results.sqlite", read_only=True)
    try:
        assert len(store.done("tiny-light")) == 1  # reused, not answered again
    finally:
        store.close()


def test_a_training_run_made_with_other_weights_at_the_same_path_is_refused(
    tmp_path: Path,
) -> None:
    """--train-on and train-gate --run read another run's answers as this config's
    models': a run whose model file was another one is refused, and so is one whose file,
    at the same path, held other weights (its outcomes and energies are not the weights'
    now); they were trained on as the weights now."""
    medium = tmp_path / "medium.gguf"
    shutil.copyfile(tiny_gguf_path(), medium)
    data = tiny_config_dict(tmp_path)
    data["models"][1]["gguf"] = {"path": str(medium)}
    config_path = write_config(tmp_path, data)
    config = load_config(config_path)
    rows = [
        {"text": f"Write a function that adds {i}.", "code": f"def add_{i}(x):\n    return x + {i}",
         "task_id": i, "test_setup_code": "", "test_list": [f"assert add_{i}(1) == {i + 1}"]}
        for i in range(2)
    ]  # fmt: skip
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "mbpp"
    run_experiment(config, run, systems=["direct-light", "direct-medium", "direct-heavy"],
                   style_overrides={"max_new_tokens": 8}, progress=False, problems_file=mbpp)  # fmt: skip
    gguf_with_other_weights(medium)  # same path, same size, other answers
    before = (run / "results.sqlite").read_bytes()
    said = (f"--train-on {run}: its 'tiny-medium' answers were made with other weights than "
            f"{medium} holds now")  # fmt: skip
    with pytest.raises(RouterLLMError, match=re.escape(said)):
        run_experiment(config, tmp_path / "he", systems=["knn"], limit=2, folds=1,
                       style_overrides={"max_new_tokens": 8}, progress=False, train_on=run)  # fmt: skip
    assert not (tmp_path / "he").exists()  # refused before anything is generated
    gate = tmp_path / "gate"
    refused = cli_in_process("train-gate", "--run", str(run), "--out", str(gate), "--folds", "2",
                             "--config", str(config_path))  # fmt: skip
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: {said.replace('--train-on', '--run')} (another sha256, same file name), so "
        f"its outcomes and energies are not this model's to train on; put back the file that "
        f"run was made with, or make that run again with this one"
    ]
    assert not gate.exists() and (run / "results.sqlite").read_bytes() == before
    # The same weights again (a copy back: another inode and time) are the run's.
    medium.unlink()
    shutil.copyfile(tiny_gguf_path(), medium)
    ladder = [m.name for m in config.models_by_size()]
    trained = load_training_run(run, ladder, ladder[1], set(), config=config)
    assert len(trained) == 2


def test_a_served_gate_whose_model_holds_other_weights_at_the_same_path_is_refused(
    tmp_path: Path,
) -> None:
    """A saved gate records its run's model files (their paths): a GGUF written again at
    its path, as wide, was served with a gate trained on another model's states of the
    prompts, without a word. The gate records the weights its run's answers were made
    with, and a system refuses it in one line; a start reads no file whose stat is the
    recorded one, and a gate saved before the weights were recorded is served as before;
    one trained on a run stored before records its files' weights as train-gate found them."""
    medium, config_path, run = gated_run_of_own_medium(tmp_path)
    gate = tmp_path / "gate"
    trained = cli_in_process("train-gate", "--run", str(run), "--out", str(gate), "--folds", "2",
                             "--config", str(config_path))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    recorded = json.loads((gate / "config.json").read_text())["about"]["weights"]
    assert set(recorded) == {"tiny-medium", "tiny-heavy"}
    # one file: the sha256 of its sha256, as the run's store records it
    assert recorded["tiny-medium"]["sha256"] == hashlib.sha256(sha256_of(medium).encode()).hexdigest()  # fmt: skip
    assert recorded["tiny-medium"]["files"] == [str(medium)]
    serving = load_config(config_path)
    serving.cascade.enabled, serving.cascade.gate = True, str(gate)
    with mock.patch.object(files_identity, "sha256_of", wraps=sha256_of) as hashed:
        RouterLLM(serving).close()
    assert hashed.call_count == 0  # the files' stat is the one recorded: none is read
    gguf_with_other_weights(medium)  # same path, same size and width, other answers
    says = (
        f"cascade.gate {gate} was trained on a run whose tiny-medium answers were made with "
        f"other weights than {medium} holds now (another sha256, same file name); put back "
        f"the file that run was made with, or train a gate on a run of this config's models"
    )
    with pytest.raises(ConfigError) as refused:
        RouterLLM(serving)
    assert str(refused.value) == says
    route = cli_in_process("route", "def add(a, b):", "--config", str(config_path),
                           "--gate", str(gate))  # fmt: skip
    assert (route.returncode, route.stderr, route.stdout) == (2, f"error: {says}\n", "")
    # The same weights again (a copy back: another inode and time) are the gate's.
    medium.unlink()
    shutil.copyfile(tiny_gguf_path(), medium)
    RouterLLM(serving).close()
    # A gate saved before the weights were recorded (2026-12-06) is served as before.
    gguf_with_other_weights(medium)
    meta = json.loads((gate / "config.json").read_text())
    del meta["about"]["weights"]
    (gate / "config.json").write_text(json.dumps(meta))
    RouterLLM(serving).close()
    # A record changed by hand is one line, not a traceback.
    meta["about"]["weights"] = {"tiny-medium": {"sha256": 1}}
    (gate / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="the weights of its run's models are not readable"):
        RouterLLM(serving)
    # A run stored before its weights were recorded: the gate records its files' as they are.
    with closing(sqlite3.connect(run / "results.sqlite")) as db, db:
        assert db.execute("DELETE FROM meta WHERE key LIKE 'weights:%'").rowcount == 3
    other = tmp_path / "other-gate"
    trained = cli_in_process("train-gate", "--run", str(run), "--out", str(other), "--folds", "2",
                             "--config", str(config_path))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    serving.cascade.gate = str(other)
    RouterLLM(serving).close()
    medium.unlink()
    shutil.copyfile(tiny_gguf_path(), medium)
    with pytest.raises(ConfigError, match=f"{other} was trained on a run whose tiny-medium"):
        RouterLLM(serving)


def _gated_medium(tiny_config: AppConfig, tmp_path: Path) -> tuple[AppConfig, Path]:
    """``tiny_config`` with its medium model's GGUF at a copy of the tiny one in
    ``tmp_path``, and a gate that escalates what it weighs, recording its models' weights
    now as train-gate records them; and that copy's path."""
    medium = tmp_path / "medium.gguf"
    shutil.copyfile(tiny_gguf_path(), medium)
    config = tiny_config.model_copy(deep=True)
    config.model("tiny-medium").gguf.path = str(medium)  # type: ignore[union-attr]
    weights = {m: weights_identity.weights_now(config.model(m), None) for m in ("tiny-medium", "tiny-heavy")}  # fmt: skip
    about = {"weights": {m: asdict(w) for m, w in weights.items() if w is not None}}
    gate = replace(_cheap_to_escalate(_state_width(config)), about=about)
    config.cascade.enabled, config.cascade.gate = True, str(gate.save(tmp_path / "gate"))
    return config, medium


def _written_long_ago() -> AbstractContextManager[object]:
    """Each file written here taken as left alone since (``GateWeights.SETTLED_S``: a
    file written in the last seconds is not read yet), as one replaced by a copy made
    long before is."""
    return mock.patch.object(GateWeights, "SETTLED_S", 0)


def asked(prompt: str) -> GenerationRequest:
    """``prompt`` asked for 8 tokens (not tiny-heavy's style's 512)."""
    return GenerationRequest(prompt, max_new_tokens=8)


def test_a_served_gate_is_not_used_while_its_model_file_holds_other_weights(
    tiny_config: AppConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A start refuses a gate whose model's file holds other weights than its run's; a file
    replaced while the system serves is loaded again, and the gate went on deciding on the
    new weights' states and answers as if they were the run's, without a word. While the
    file holds other weights the gate is not used: the cascade goes on as without one, each
    reason says why and a warning says so once; the file put back, the gate decides again.
    No file is read while their stat stays the same."""
    config, medium = _gated_medium(tiny_config, tmp_path)
    not_used = (
        f"the gate was not used (cascade.gate {tmp_path / 'gate'} was trained on a run whose "
        f"tiny-medium answers were made with other weights than {medium} holds now (another "
        f"sha256, same file name); put back the file that run was made with (the gate is used "
        f"again then), or train a gate on a run of this config's models (routerllm train-gate) "
        f"and restart with it)"
    )
    with (
        RouterLLM(config) as system,
        mock.patch.object(files_identity, "sha256_of", wraps=sha256_of) as hashed,
        caplog.at_level(logging.WARNING, logger="routerllm.served_gate"),
        _written_long_ago(),
    ):
        decided = system.generate(asked(UNCHECKABLE), model="tiny-medium")
        assert decided.model == "tiny-heavy", decided.reason
        assert "escalated to tiny-heavy: the gate's predicted success" in decided.reason
        assert hashed.call_count == 0  # the files as the system started: none read
        gguf_with_other_weights(tmp_path / "new.gguf").replace(medium)  # same size and width
        for n in (1, 2):  # two prompts: not one answer cached
            kept = system.generate(
                asked(UNCHECKABLE.replace("add", f"add_{n}")), model="tiny-medium"
            )
            assert kept.model == "tiny-medium", kept.reason  # an unchecked answer stays
            assert f"not escalated to tiny-heavy: {not_used}" in kept.reason
        assert hashed.call_count == 1  # read once, as it changed
        said = [r.getMessage() for r in caplog.records if "gate" in r.getMessage()]
        assert len(said) == 1 and "the cascade goes on as without a gate" in said[0], said
        (tmp_path / "back.gguf").write_bytes(tiny_gguf_path().read_bytes())
        (tmp_path / "back.gguf").replace(medium)  # the same weights again, another inode
        again = system.generate(asked(UNCHECKABLE.replace("add", "add_3")), model="tiny-medium")
        assert again.model == "tiny-heavy" and "the gate's predicted success" in again.reason
        assert hashed.call_count == 2
    said = [r.getMessage() for r in caplog.records if "gate" in r.getMessage()]
    assert len(said) == 2 and said[1] == f"cascade.gate {tmp_path / 'gate'} is used again: its models' files hold the weights its run's answers were made with"  # fmt: skip


def test_a_served_gate_is_used_while_its_model_answers_with_its_runs_weights_during_a_copy(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """A file being copied over a served gate's model file: the model answers on with the
    weights it loaded, its run's, and the gate's first decision then read the half-copied
    file under their stamp, so the gate was not used until the new file loaded. A stamp
    is mapped only to what the files held with it: those checked at the start, or files
    read while their stat is that stamp. Where the model answers with weights loaded from
    files never read (replaced again before a decision read them) nothing tells they are
    its run's: the gate is not used, and says why, until the model loads files it reads."""
    config, medium = _gated_medium(tiny_config, tmp_path)
    other = gguf_with_other_weights(tmp_path / "new.gguf").read_bytes()

    def copying(data: bytes) -> None:  # the first half of a copy of ``data`` to medium
        medium.unlink()
        medium.write_bytes(data[: len(data) // 2])

    def copied(data: bytes) -> None:
        with medium.open("ab") as f:
            f.write(data[len(data) // 2 :])

    with (
        RouterLLM(config) as system,
        mock.patch.object(files_identity, "sha256_of", wraps=sha256_of) as hashed,
        _written_long_ago(),
    ):
        system.manager.acquire("tiny-medium")  # loaded by a request the gate did not weigh
        assert "tiny-medium" in system.manager.available_models()  # checked as it serves
        copying(other)
        decided = system.generate(asked(UNCHECKABLE), model="tiny-medium")
        assert decided.model == "tiny-heavy", decided.reason
        assert "escalated to tiny-heavy: the gate's predicted success" in decided.reason
        assert hashed.call_count == 0  # the loaded files were checked at the start
        copied(other)  # loaded now: other weights, read as their stat is the stamp asked
        kept = system.generate(asked(UNCHECKABLE.replace("add", "add_1")), model="tiny-medium")
        assert kept.model == "tiny-medium" and "answers were made with other weights" in kept.reason  # fmt: skip
        assert hashed.call_count == 1
        run = tiny_gguf_path().read_bytes()
        medium.unlink()
        medium.write_bytes(run)  # the run's weights back, loaded with no decision
        system.manager.acquire("tiny-medium")
        copying(other)  # and replaced again before a decision read them
        unknown = system.generate(asked(UNCHECKABLE.replace("add", "add_2")), model="tiny-medium")
        assert unknown.model == "tiny-medium", unknown.reason
        assert (
            f"the gate was not used (cascade.gate {tmp_path / 'gate'} cannot tell which "
            f"weights tiny-medium answers with: the files it loaded ({medium}) were replaced "
            f"before the gate read them, and the files at their paths now cannot be loaded yet"
        ) in unknown.reason
        assert hashed.call_count == 1  # the half-copied file is not read
        medium.unlink()
        medium.write_bytes(run)  # whole again: loaded and read
        again = system.generate(asked(UNCHECKABLE.replace("add", "add_3")), model="tiny-medium")
        assert again.model == "tiny-heavy" and "the gate's predicted success" in again.reason
        assert hashed.call_count == 2


def test_a_served_gate_reads_no_file_of_its_larger_model_as_it_is_written_in_place(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    """The GGUF of a gate's larger model, not loaded, written over in place as the system
    serves (``rsync --inplace``, a download tool that allocates the whole file first): each
    decision found a new stat and read (hashed) the whole file again, on the request path
    (98 MB: 100-400 ms a decision on this machine; 1 GB, seconds). A file written in the
    last ``SETTLED_S`` seconds is not read: the gate is not used meanwhile, and says why;
    left alone that long, the file is read once. (One copied in whole, ``cp``, is shorter
    than its header says until it is done: the model is unavailable meanwhile, and no
    decision is asked of the gate for it.)"""
    heavy = tmp_path / "heavy.gguf"
    shutil.copyfile(tiny_gguf_path(), heavy)
    tiny_config.model("tiny-heavy").gguf.path = str(heavy)  # type: ignore[union-attr]
    config, _ = _gated_medium(tiny_config, tmp_path)
    other = gguf_with_other_weights(tmp_path / "new.gguf").read_bytes()
    writing = (
        f"not escalated to tiny-heavy: the gate was not used (cascade.gate {tmp_path / 'gate'} "
        f"cannot tell which weights tiny-heavy's files hold yet: {heavy} was written less than "
        f"60 s ago (a copy or download under way?); it reads them once they are left alone "
        f"that long"
    )
    with (
        RouterLLM(config) as system,
        mock.patch.object(files_identity, "sha256_of", wraps=sha256_of) as hashed,
        # 60 s, not 2: a write and the decision after it are more than 2 s apart where the
        # cores are shared (the file then read as settled, the test failed: hashed once)
        mock.patch.object(GateWeights, "SETTLED_S", 60.0),
    ):
        for n, at in enumerate(range(0, len(other), len(other) // 3 + 1)):
            with heavy.open("r+b") as f:  # written over, its size the same throughout
                f.seek(at)
                f.write(other[at : at + len(other) // 3 + 1])
            kept = system.generate(asked(UNCHECKABLE.replace("add", f"add_{n}")), model="tiny-medium")  # fmt: skip
            assert hashed.call_count == 0  # no read of a file being written
            assert kept.model == "tiny-medium", kept.reason  # an unchecked answer stays
            assert writing in kept.reason
        old = time.time() - 120
        os.utime(heavy, (old, old))  # left alone since
        kept = system.generate(asked(UNCHECKABLE.replace("add", "add_4")), model="tiny-medium")
        assert "answers were made with other weights" in kept.reason
        assert hashed.call_count == 1  # read once, as it was left alone
