"""An open RouterLLM runs numpy's BLAS on one thread (README, "Decision latency"):
its routing decisions are small matrix products, and a second BLAS thread, on cores
llama.cpp is generating on, made a decision wait milliseconds for it. Closing the last
open RouterLLM gives the BLAS its thread count back, so training and batched work in
the same process keep their threads. Fitting a router runs each BLAS and OpenMP library
loaded on one thread (``blas_threads.one_thread``), one loaded after a system opened
too, unless the user set a thread count."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from routerllm.blas_threads import USER_THREAD_VARIABLES
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


#: In a fresh process (scipy not loaded yet): a system opened, then scikit-learn (and
#: scipy's OpenBLAS) loaded, then a quality router fitted; each library's thread count
#: seen inside scikit-learn's fits.
FIT_AFTER_OPEN = """
import json, sys
from threadpoolctl import threadpool_info
from routerllm.config import load_config
from routerllm.routers import create_router
from routerllm.system import RouterLLM

config = load_config(sys.argv[1])
assert "scipy" not in sys.modules
with RouterLLM(config):
    opened = {p["filepath"] for p in threadpool_info()}
    from sklearn.linear_model import LogisticRegression

    seen = []
    real = LogisticRegression.fit

    def fit(self, X, y, *args, **kwargs):
        seen.append({p["filepath"]: p["num_threads"] for p in threadpool_info()})
        return real(self, X, y, *args, **kwargs)

    LogisticRegression.fit = fit
    router = create_router("quality", config.models, 0, encoder="hashing:32")
    prompts = ["parse this file", "write a parser", "hello", "hi there"] * 3
    scores = [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]] * 3
    router.fit(prompts, scores, [m.name for m in config.models])
print(json.dumps({"opened": sorted(opened), "seen": seen}))
"""


def test_fitting_in_an_open_system_runs_a_blas_loaded_since_on_one_thread(
    tmp_path: Path,
) -> None:
    """scipy's OpenBLAS, loaded with scikit-learn after the system opened (the hold
    limited numpy's alone), fitted the quality router on every core: about twice the
    CPU of one thread on two cores (README "Training threads"), with scikit-learn's
    OpenMP at two threads too."""
    knn_ladder(tmp_path)  # its config.yaml
    env = {k: v for k, v in os.environ.items() if k not in USER_THREAD_VARIABLES}
    env["PYTHONPATH"] = str(Path(__file__).parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", FIT_AFTER_OPEN, str(tmp_path / "config.yaml")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["seen"]  # scikit-learn fitted
    for counts in out["seen"]:
        assert set(counts) - set(out["opened"])  # a library loaded since (scipy's BLAS)
        assert set(counts.values()) == {1}, counts


def fitted_threads(tmp_path: Path) -> list[set[int]]:
    """The BLAS thread counts a knn router's fit and a quality router's logistic
    regressions see, in a process at two BLAS threads and no system open."""
    from sklearn.linear_model import LogisticRegression

    from routerllm.routers.quality import KNNRouter

    config = knn_ladder(tmp_path)
    seen: list[set[int]] = []
    knn_fit, logistic_fit = KNNRouter._fit, LogisticRegression.fit

    def knn(self: KNNRouter, X: Any, Y: Any) -> None:
        seen.append(blas_threads())
        knn_fit(self, X, Y)

    def logistic(self: LogisticRegression, X: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(blas_threads())
        return logistic_fit(self, X, y, *args, **kwargs)

    prompts = ["parse this file", "write a parser", "hello", "hi there"]
    scores = np.array([[0.0, 0.0, 1.0]] * 2 + [[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    with pytest.MonkeyPatch.context() as patch, threadpool_limits(limits=2, user_api="blas"):
        patch.setattr(KNNRouter, "_fit", knn)
        patch.setattr(LogisticRegression, "fit", logistic)
        for name in ("knn", "quality"):
            router = create_router(name, config.models, 0, encoder="hashing:32")
            router.fit(prompts, scores, [m.name for m in config.models])  # type: ignore[attr-defined]
        assert blas_threads() == {2}  # given back after
    return seen


def test_training_runs_blas_on_one_thread_without_an_open_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in USER_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    seen = fitted_threads(tmp_path)
    assert len(seen) >= 2 and all(s == {1} for s in seen)


@pytest.mark.parametrize("variable", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_a_thread_count_the_user_set_wins_over_trainings_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in USER_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "2")
    seen = fitted_threads(tmp_path)
    assert len(seen) >= 2 and all(s == {2} for s in seen)


def test_calibrations_predictions_run_blas_on_one_thread_as_the_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --calibrate` chose its knob from predictions made on the libraries' own
    thread counts, after a fit on one: the knob (and whether the router keeps routing)
    then rested on the machine's core count, where rounding tips a near tie."""
    for name in USER_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = knn_ladder(tmp_path)
    names = [m.name for m in config.models]
    prompts = ["parse this file", "write a parser", "hello", "hi there"] * 3
    scores = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]] * 3)
    router: Any = create_router("quality", config.models, 0, encoder="hashing:32")
    router.fit(prompts, scores, names)
    seen: list[set[int]] = []
    real = router.predict

    def predict(X: Any) -> Any:
        seen.append(blas_threads())
        return real(X)

    monkeypatch.setattr(router, "predict", predict)
    with threadpool_limits(limits=2, user_api="blas"):
        router.calibrate(prompts, scores, "quality=0.95", names)
        assert blas_threads() == {2}
    assert seen == [{1}]
