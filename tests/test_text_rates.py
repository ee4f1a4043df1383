"""The completion tokens a character each model's logged answers teach
(``carbon/text_rates.py``): the log keeps each answer's length, an older log's rows
read as not recorded, and the predictor counts an answer without usage at its model's
own rate, else at a high guess."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from pathlib import Path

import pytest

from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.meter import Measurement
from routerllm.carbon.predictor import CarbonPredictor
from routerllm.carbon.request_log import RequestLog

from .conftest import light_and_priced_remote


def answer(
    model: str, chars: int | None, tokens: int, method: str, when: str = "2026-12-07T10:00:00"
) -> RequestRecord:
    part = Measurement("llm_inference", 1.0, 0.0, 0.0, method)
    return RequestRecord(
        id=uuid.uuid4().hex, timestamp=when, prompt_sha256="0" * 64, prompt_chars=30,
        model=model, router="rules", confidence=1.0, prompt_tokens=10,
        completion_tokens=tokens, latency_s=1.0, cost_usd=0.0,
        components={"llm_inference": part}, completion_chars=chars,
    )  # fmt: skip


def test_a_remote_model_without_energy_figures_learns_its_rate_from_its_counted_answers(
    tmp_path: Path,
) -> None:
    """A priced remote model without energy figures logs no energy to learn (its rows
    are ``estimate:no-figures``), but its counted tokens teach its rate: 3 answers of 200
    characters in 120 tokens, 0.6 a character, read back from the log at a restart. Its
    answers counted from text, cached or of no recorded length teach nothing."""
    config = light_and_priced_remote(tmp_path)
    teach = [answer("remote", 200, 120, "estimate:no-figures", f"2026-12-07T10:0{k}:00") for k in range(3)]  # fmt: skip
    noise = [
        answer("remote", 200, 20, "estimate:no-figures:from-text"),  # estimated, not counted
        answer("remote", 200, 20, "cache"),
        answer("remote", None, 20, "estimate:no-figures"),  # an older row: no length
        dataclasses.replace(
            answer("remote", 200, 20, "estimate:no-figures"), finish_reason="error"
        ),  # fmt: skip
    ]
    with RequestLog(Path(config.log.path)) as log:
        for r in teach + noise:
            log.append(r)
        predictor = CarbonPredictor.from_log(config, log)
    assert predictor.completion_tokens_per_char("remote") == pytest.approx(0.6)
    assert predictor.text_tokens("remote", 30, "z" * 50)[1] == 30  # 50 characters at 0.6
    # two counted answers are too few: the high guess
    few = CarbonPredictor(config, teach[:2])
    assert few.completion_tokens_per_char("remote") == pytest.approx(0.5)
    # unless the prompts read more: 30 characters in 24 tokens, 0.8 a character (its
    # answers' lengths not recorded), tiny-light's own, and the remote's peer line
    dense = [
        dataclasses.replace(
            answer("tiny-light", None, 9, "codecarbon:load-estimate"), prompt_tokens=24
        )  # fmt: skip
        for _ in range(3)
    ]
    assert CarbonPredictor(config, dense).completion_tokens_per_char("tiny-light") == pytest.approx(0.8)  # fmt: skip
    assert CarbonPredictor(config, dense).completion_tokens_per_char("remote") == pytest.approx(0.8)  # fmt: skip


def test_a_log_from_before_answer_lengths_reads_them_not_recorded_then_gets_the_column(
    tmp_path: Path,
) -> None:
    from routerllm.carbon.log_schema import SCHEMA, TABLES

    from .conftest import schema_before_cpu_share

    path = tmp_path / "old.sqlite"
    # (nor the CPU share, in the requests and their parts, after them)
    old = schema_before_cpu_share().replace(",\n    completion_chars INTEGER", "")
    assert old != SCHEMA
    with sqlite3.connect(path) as db:
        db.executescript(old)
        db.execute(
            "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ("old", "2026-12-06T10:00:00.000000+00:00", "0" * 64, 10, "tiny-light", "rules",
             1.0, 5, 3, 1.0, 2e-6, 1e-6, 0.0, "", "stop", "FRA", "", 56.0),
        )  # fmt: skip
        db.execute(
            "INSERT INTO components VALUES (?,?,?,?,?,?)",
            ("old", "llm_inference", 1.0, 2e-6, 1e-6, "codecarbon:load-estimate"),
        )
    with RequestLog(path, read_only=True) as log:  # read as it is
        (row,) = log.records()
        assert row.id == "old" and row.completion_chars is None
    with RequestLog(path) as log:  # opened for writing: given the column
        log.append(answer("tiny-light", 42, 12, "codecarbon:load-estimate"))
        assert [r.completion_chars for r in log.records()] == [None, 42]
    with sqlite3.connect(path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(requests)")] == TABLES["requests"]
