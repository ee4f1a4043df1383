"""A HumanEval run's stored answers belong to the weights that made them: a model file
changed in place (a package upgraded, a GGUF written again under its name) is not
another model's path, yet its stored answers are not the new weights'."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from routerllm.config import AppConfig
from routerllm.data.outcome_files import load_outcomes
from routerllm.eval.humaneval_report import run_experiment
from routerllm.eval.result_store import ResultStore
from routerllm.exceptions import RouterLLMError

from .conftest import gguf_with_other_weights, tiny_gguf_path


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
