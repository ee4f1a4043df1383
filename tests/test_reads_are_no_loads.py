"""A count's read of a model's files (``count_reads``: its GGUF's vocabulary opened
before the model loads) is energy of ``model_loading``, not a load: each logged request
says whether its model loaded (``RequestRecord.model_loaded``), and the report's count of
loads (the loading recommendation's "N loads (model Kx)"), its replay of the cache and
the predictor's load energy count the loads alone. Until 2026-12-07 a refused request's
read, or an answer whose model another request loaded meanwhile, was taken for a load
(a ``model_loading`` that took time or energy). Real tiny GGUFs through llama.cpp, real
request logs."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.log_figures import LogFigures
from routerllm.carbon.log_schema import TABLES
from routerllm.carbon.log_tallies import CacheReplay
from routerllm.carbon.predictor import CarbonPredictor
from routerllm.carbon.recommend import loading_churn
from routerllm.carbon.recommend_base import LOADING_SHARE
from routerllm.carbon.report import logged_report
from routerllm.carbon.request_log import RequestLog
from routerllm.config import AppConfig
from routerllm.exceptions import ContextLengthError
from routerllm.system import RouterLLM

from .conftest import schema_before_model_loaded
from .test_context_before_load import PROMPT, _config

ASKED = GenerationRequest("hi", max_new_tokens=1)


def _figures(config: AppConfig) -> LogFigures:
    """The report's figures of ``config``'s log, streamed as ``logged_report`` streams
    them, with a replay of a cache (the config's is off)."""
    fig = LogFigures(replay=CacheReplay(config.cache.max_entries, config.cache.ttl_s))
    with RequestLog(config.log.path, read_only=True) as log:
        for row in log.report_rows():
            fig.add(*row)
    return fig


def test_a_cold_refusals_read_then_an_answer_in_another_process_is_one_load(
    tmp_path: Path,
) -> None:
    """A cold refusal (its vocabulary read, no load), then the model's answer in another
    system (a new process's: read and loaded): one load, not two; the read's energy is
    model_loading's all the same (the loading share, the totals); no reload is
    recommended; the predictor's load is the real one's."""
    config = _config(tmp_path)
    with RouterLLM(config) as refusing, pytest.raises(ContextLengthError):
        refusing.generate(PROMPT, model="tiny-light", tag="refused")
    with RouterLLM(config) as answering:
        for _ in range(3):  # a load, then two warm answers: the predictor's history
            answering.generate(ASKED, model="tiny-light", tag="answered")
    with RequestLog(config.log.path, read_only=True) as log:
        (refused,) = log.records(tag="refused")
        cold, *warm = log.records(tag="answered")
        predictor = CarbonPredictor.from_log(config, log)
    read, load = refused.components["model_loading"], cold.components["model_loading"]
    assert read.duration_s > 0 and read.energy_kwh > 0  # spent, though nothing loaded
    assert (refused.model_loaded, cold.model_loaded) == (False, True)
    assert [w.model_loaded for w in warm] == [False, False]
    fig = _figures(config)
    assert fig.loads == Counter({"tiny-light": 1})
    # the read is loading's energy still: the share the recommendation weighs counts it
    assert fig.loading_kwh.total() == pytest.approx(read.energy_kwh + load.energy_kwh, rel=1e-9)
    assert fig.by_component["model_loading"].energy_kwh == pytest.approx(read.energy_kwh + load.energy_kwh, rel=1e-9)  # fmt: skip
    assert fig.loading_kwh.total() / fig.energy.total() > LOADING_SHARE  # a reload would be said
    assert loading_churn(fig, config) == []
    assert not [r for r in logged_report(config).recommendations if r.kind == "model_loading"]
    profile = predictor.profile("tiny-light")
    assert profile is not None and profile.loading_kwh == load.energy_kwh


def test_the_cache_replay_takes_no_refusals_read_for_a_reload(tmp_path: Path) -> None:
    """A process answers a prompt, another refuses one for the same model, cold (its
    vocabulary read), then the first answers the same prompt again, its model loaded all
    along: its cache would have answered it (a hit of the replay), not a repeat after a
    reload (until 2026-12-07 the read was taken for the model loaded anew)."""
    config = _config(tmp_path, budgets={})
    with RouterLLM(config) as serving:
        serving.generate(ASKED, model="tiny-light")
        with RouterLLM(config) as other, pytest.raises(ContextLengthError):
            other.generate(PROMPT, model="tiny-light", tag="refused")
        serving.generate(ASKED, model="tiny-light")
    with RequestLog(config.log.path, read_only=True) as log:
        (refused,) = log.records(tag="refused")
    assert refused.components["model_loading"].duration_s > 0 and refused.model_loaded is False
    replay = _figures(config).replay
    assert replay is not None and (replay.hits, replay.after_reload) == (1, 0)


def test_an_answer_whose_model_another_request_loaded_meanwhile_is_no_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that read its cold model's vocabulary to count its prompt, whose model
    another request (another thread) then loaded: answered, its model_loading the read
    alone, no load of its own. Counted as one (until 2026-12-07), it was a second load,
    and the predictor's load energy the mean of the load and the read."""
    config = _config(tmp_path, budgets={})
    with RouterLLM(config) as first:
        for _ in range(3):  # a load, then two warm answers
            first.generate(ASKED, model="tiny-light", tag="first")
    with RouterLLM(config) as second:
        manager = second.manager
        count_then = manager.refusal_before_load

        def loaded_meanwhile(name: str, request: GenerationRequest) -> ContextLengthError | None:
            refused = count_then(name, request)  # the count: the vocabulary read
            other = threading.Thread(target=manager.acquire, args=(name,))
            other.start()
            other.join(60)
            return refused

        monkeypatch.setattr(manager, "refusal_before_load", loaded_meanwhile)
        second.generate(ASKED, model="tiny-light", tag="second")
    with RequestLog(config.log.path, read_only=True) as log:
        loaded, *_ = log.records(tag="first")
        (answered,) = log.records(tag="second")
        predictor = CarbonPredictor.from_log(config, log)
    read = answered.components["model_loading"]
    assert answered.finish_reason != "error" and answered.completion_tokens == 1
    assert read.duration_s > 0 and read.energy_kwh > 0 and answered.model_loaded is False
    assert loaded.model_loaded is True
    assert _figures(config).loads == Counter({"tiny-light": 1})
    profile = predictor.profile("tiny-light")
    assert profile is not None
    assert profile.loading_kwh == loaded.components["model_loading"].energy_kwh


def test_a_log_from_before_loads_were_marked_is_read_as_before_then_given_the_column(
    tmp_path: Path,
) -> None:
    """A log whose requests do not say whether their model loaded: read as it is, each
    ``model_loaded`` None (not recorded), a model_loading that took time or energy counted
    as a load as before; opened for writing, given the column (its rows NULL), a new
    row's marked."""
    config = _config(tmp_path, budgets={})
    path = Path(config.log.path)
    with sqlite3.connect(path) as db:
        db.executescript(schema_before_model_loaded())
        db.execute(
            f"INSERT INTO requests VALUES ({','.join('?' * 20)})",
            ("old", "2026-12-06T10:00:00.000000+00:00", "0" * 64, 2, "tiny-light", "fixed",
             1.0, 2, 1, 1.0, 2e-6, 1e-7, 0.0, "", "stop", "FRA", "", 56.0, 2, None),
        )  # fmt: skip
        db.execute(
            "INSERT INTO components VALUES (?,?,?,?,?,?)",
            ("old", "model_loading", 0.5, 1e-6, 5e-8, "codecarbon:load-estimate"),
        )
    before = path.read_bytes()
    with RequestLog(path, read_only=True) as log:
        (old,) = log.records()
    assert old.model_loaded is None
    assert _figures(config).loads == Counter({"tiny-light": 1})  # as before: it took time
    assert path.read_bytes() == before  # read only
    with RouterLLM(config) as system:  # opened for writing: given the column
        system.generate(ASKED, model="tiny-light", tag="new")
    with sqlite3.connect(path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(requests)")] == TABLES["requests"]
        rows = db.execute("SELECT id, model_loaded FROM requests WHERE id = 'old' OR tag = 'new'").fetchall()  # fmt: skip
    assert rows[0] == ("old", None) and rows[1][1] == 1
    assert _figures(config).loads == Counter({"tiny-light": 2})
