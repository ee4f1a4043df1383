"""A HumanEval run's stored answers belong to the weights that made them: a model file
changed in place (a package upgraded, a GGUF written again under its name) is not
another model's path, yet its stored answers are not the new weights'."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from routerllm.config import AppConfig, load_config
from routerllm.data.outcome_files import load_outcomes
from routerllm.eval.humaneval_report import run_experiment
from routerllm.eval.result_store import ResultStore
from routerllm.eval.transfer import load_training_run
from routerllm.exceptions import RouterLLMError

from .conftest import (
    cli_in_process,
    gguf_with_other_weights,
    tiny_config_dict,
    tiny_gguf_path,
    write_config,
)


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
    run_experiment(config, out, systems=["direct-light"], limit=1, progress=False)
    gguf_with_other_weights(light)  # same path, same size, other answers
    before = (out / "results.sqlite").read_bytes()
    with pytest.raises(RouterLLMError, match=f"'tiny-light' .*other weights.*{light}"):
        run_experiment(config, out, systems=["direct-light"], limit=1, progress=False)
    assert (out / "results.sqlite").read_bytes() == before
    # Nor reported by a run that does not need it, as another file's answers are not.
    heavy = run_experiment(config, out, systems=["direct-heavy"], limit=1, progress=False)
    assert heavy["models"] == ["tiny-heavy"]
    assert load_outcomes(out / "outcomes" / "humaneval.json").models == ["tiny-heavy"]
    # The same weights again (a reinstall, a copy back: another inode and time) are its own.
    light.unlink()
    shutil.copyfile(tiny_gguf_path(), light)
    again = run_experiment(config, out, systems=["direct-light", "direct-heavy"], limit=1,
                           progress=False)  # fmt: skip
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
