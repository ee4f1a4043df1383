"""An open RouterLLM runs numpy's BLAS on one thread (README, "Decision latency"):
its routing decisions are small matrix products, and a second BLAS thread, on cores
llama.cpp is generating on, made a decision wait milliseconds for it. Closing the last
open RouterLLM gives the BLAS its thread count back, so training and batched work in
the same process keep their threads."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from routerllm.config import AppConfig, load_config
from routerllm.routers import create_router
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def knn_ladder(tmp_path: Path) -> AppConfig:
    """The tiny ladder routed by a saved knn router (hashing encoder: nothing to load);
    the systems other tests left unclosed collected first, which let go of the BLAS."""
    gc.collect()
    base = load_config(write_config(tmp_path, tiny_config_dict(tmp_path), "base.yaml"))
    router = create_router("knn", base.models, 0, encoder="hashing:32", k=2)
    prompts = ["parse this file", "write a parser", "hello", "hi there"]
    scores = np.array([[0.0, 0.0, 1.0]] * 2 + [[1.0, 1.0, 1.0]] * 2)
    router.fit(prompts, scores, ["tiny-light", "tiny-medium", "tiny-heavy"])  # type: ignore[attr-defined]
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["router"] = {"path": str(router.save(tmp_path / "router"))}
    return load_config(write_config(tmp_path, data))


def test_an_open_systems_decisions_run_blas_on_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = knn_ladder(tmp_path)
    with threadpool_limits(limits=2, user_api="blas"):
        seen: list[set[int]] = []
        with RouterLLM(config) as system:
            real = system.router._predict  # type: ignore[attr-defined]

            def predict(X: Any) -> Any:
                seen.append(blas_threads())
                return real(X)

            monkeypatch.setattr(system.router, "_predict", predict)
            system.generate("write a parser")
            # a server routes in its worker threads
            worker = threading.Thread(target=system.route, args=("hello",))
            worker.start()
            worker.join()
        assert seen == [{1}, {1}]
        assert blas_threads() == {2}  # given back at close


def test_the_last_system_closed_gives_blas_its_threads_back(tmp_path: Path) -> None:
    config = knn_ladder(tmp_path)
    with threadpool_limits(limits=2, user_api="blas"):
        first = RouterLLM(config)
        second = RouterLLM(config)
        assert blas_threads() == {1}
        first.close()
        assert blas_threads() == {1}  # the second still routes
        first.close()  # closing again counts once
        assert blas_threads() == {1}
        second.close()
        assert blas_threads() == {2}


def test_a_system_closed_in_another_thread_gives_the_threads_back(tmp_path: Path) -> None:
    # a server's shutdown closes it from another thread than the one that opened it;
    # threadpoolctl alone ignores a count set from a thread other than the first
    config = knn_ladder(tmp_path)
    with threadpool_limits(limits=2, user_api="blas"):
        system = RouterLLM(config)
        assert blas_threads() == {1}
        closer = threading.Thread(target=system.close)
        closer.start()
        closer.join()
        assert blas_threads() == {2}


def test_a_system_never_closed_lets_go_when_collected(tmp_path: Path) -> None:
    config = knn_ladder(tmp_path)
    with threadpool_limits(limits=2, user_api="blas"):
        system = RouterLLM(config)
        assert blas_threads() == {1}
        del system
        gc.collect()
        assert blas_threads() == {2}


def test_routerllm_test_times_decisions_on_one_blas_thread_as_a_served_router_makes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`routerllm test` reports a router's latency and throughput, and opens no system:
    its timed decisions ran on the BLAS's own threads, not as a served router's (one);
    its BLAS is given back after."""
    import json

    from routerllm.routers.quality import KNNRouter

    config = knn_ladder(tmp_path)
    assert config.router.path is not None
    data = tmp_path / "test.json"
    texts = ["write a parser", "hello", "parse this file", "hi there"]
    data.write_text(json.dumps([{"text": t, "label": 3} for t in texts]))
    seen: list[set[int]] = []
    real = KNNRouter._predict

    def predict(self: KNNRouter, X: Any) -> Any:
        seen.append(blas_threads())
        return real(self, X)

    monkeypatch.setattr(KNNRouter, "_predict", predict)
    with threadpool_limits(limits=2, user_api="blas"):
        done = cli_in_process(
            "test", "--config", str(tmp_path / "config.yaml"),
            "--router-model", str(config.router.path), "--data", str(data),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert blas_threads() == {2}
    assert seen[0] == {2} and seen[-1] == {1}  # the untimed accuracy pass, then timed
