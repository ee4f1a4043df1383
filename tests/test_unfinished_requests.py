"""Requests that ended without a whole answer, as the request log and ``routerllm report``
say them: one cancelled half-way (its client gone, Ctrl-C) counted by the report as
``/metrics`` counts it. Real llama.cpp on the tiny GGUF, a real request log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.interrupts import CANCELLED, cancellable
from routerllm.carbon.log_rows import FAILED
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import ContextLengthError
from routerllm.system import RouterLLM

from .conftest import StopAfter, cli_in_process, tiny_config_dict, write_config

LONG = "word " * 60  # over 48 tokens, well under the character limit


def short_contexts(tmp_path: Path, **overrides: Any) -> tuple[Path, AppConfig]:
    """The tiny ladder, each model's llama.cpp context (n_ctx) 48 tokens: ``LONG`` fits
    none; the smallest router sends every prompt to tiny-light."""
    data = tiny_config_dict(tmp_path, router={"name": "smallest"}, **overrides)
    for model in data["models"]:
        model["context_length"] = 48
    path = write_config(tmp_path, data)
    return path, load_config(path)


# -- cancelled requests in the report -----------------------------------------------
def test_the_report_counts_cancelled_requests_beside_the_failed_ones(tmp_path: Path) -> None:
    """Two answers stopped half-way (the caller gone, as a server's client leaving), one
    whole and one that failed: ``/metrics`` counts the cancelled ones by their outcome,
    and ``routerllm report`` counted them as answers, nothing saying any had been cut.
    It counts them now, in total and per model, beside the failed ones (text and --json)."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import totals_lines

    config_path, config = short_contexts(tmp_path, carbon={"enabled": False})
    with RouterLLM(config) as system:
        with pytest.raises(ContextLengthError):  # tiny-medium loaded for it: its load logged
            system.generate(LONG, model="tiny-medium")
        for model in ("tiny-light", "tiny-medium"):
            with cancellable(StopAfter(2)):
                cut = system.generate("Name a sorting algorithm.", model=model)
            assert cut.finish_reason == CANCELLED and cut.completion_tokens == 2
        whole = system.generate("hi", model="tiny-light")
        rows = list(system.log.records())
    assert whole.finish_reason not in (CANCELLED, FAILED)
    assert sorted(r.finish_reason for r in rows if r.id != whole.request_id) == [CANCELLED, CANCELLED, FAILED]  # fmt: skip
    rep = logged_report(config)
    assert (rep.totals.requests, rep.totals.failed, rep.totals.cancelled) == (4, 1, 2)
    assert (rep.by_model["tiny-light"].cancelled, rep.by_model["tiny-light"].failed) == (1, 0)
    assert (rep.by_model["tiny-medium"].cancelled, rep.by_model["tiny-medium"].failed) == (1, 1)
    assert rep.by_router["fixed"].cancelled == 2
    lines = totals_lines(rep)
    assert lines[0].startswith("requests 4 (1 failed, 2 cancelled)  tokens"), lines[0]
    per_model = {line.split()[0]: line for line in lines if line.startswith("tiny-")}
    assert per_model["tiny-light"].endswith("  (1 cancelled)"), per_model
    assert per_model["tiny-medium"].endswith("  (1 failed, 1 cancelled)"), per_model
    done = cli_in_process("report", "--json", "--config", str(config_path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["totals"]["cancelled"], out["totals"]["failed"]) == (2, 1)
    assert out["by_model"]["tiny-medium"]["cancelled"] == 1
    text = cli_in_process("report", "--config", str(config_path)).stdout
    assert "requests 4 (1 failed, 2 cancelled)" in text, text


def test_a_report_without_unfinished_requests_says_nothing_of_them(tmp_path: Path) -> None:
    """Whole answers only: no "(0 cancelled)" in the text; 0 in --json."""
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import totals_lines

    _, config = short_contexts(tmp_path, carbon={"enabled": False})
    with RouterLLM(config) as system:
        system.generate("hi")
    rep = logged_report(config)
    assert rep.as_dict()["totals"]["cancelled"] == 0
    assert totals_lines(rep)[0].startswith("requests 1  tokens")
