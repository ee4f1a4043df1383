"""What a cold request's count before load costs beside the load itself: each llama.cpp
model of ``--config``, its GGUF opened as ``VocabCounters`` opens it (``vocab_only``: the
architecture, hyperparameters and vocabulary, no weights; then its chat template read)
and loaded as ``LlamaCppBackend`` loads it (one thread, the model's effective context),
each closed again; the CPU (this process's) and wall milliseconds of each, the median of
``--repeats``, and the open's share of the load. A model whose GGUF is not here (a split
model not yet assembled) is left out.

Run:

    .venv/bin/python benchmarks/vocab_open.py [--config local] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from machine import print_figures

from routerllm.backends.llama_prompt import _open
from routerllm.config import load_config
from routerllm.files_identity import files_stamp
from routerllm.model_files import header_file
from routerllm.model_header import effective_context


def _timed(action: Callable[[], None], repeats: int) -> tuple[float, float]:
    """The median CPU and wall milliseconds of ``action``."""
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        action()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu) * 1e3, statistics.median(wall) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="local", help="a config path or packaged name")
    parser.add_argument("--repeats", type=int, default=5, help="opens and loads of each")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args()
    import llama_cpp

    from routerllm.backends.llama_cpp import _silence_llama_cpp

    _silence_llama_cpp()
    config = load_config(args.config)
    figures: dict[str, object] = {}
    for model in config.models:
        path = None if model.gguf is None else header_file(model.gguf, model.name)
        if model.backend != "llama_cpp" or path is None or not Path(path).is_file():
            continue

        def opened(file: Path = path, name: str = model.name) -> None:
            prompt = _open(name, file, files_stamp([file]))
            assert prompt is not None, f"{file} did not open"
            prompt.model.close()

        def loaded(file: Path = path, context: int = effective_context(model)) -> None:
            llm = llama_cpp.Llama(
                model_path=str(file), n_ctx=context, n_threads=1, n_threads_batch=1, verbose=False
            )
            llm.close()

        opened()  # the file read once into the page cache before either is timed
        vocab_cpu, vocab_wall = _timed(opened, args.repeats)
        load_cpu, load_wall = _timed(loaded, args.repeats)
        figures[f"{model.name}.vocab_open_cpu_ms"] = vocab_cpu
        figures[f"{model.name}.vocab_open_wall_ms"] = vocab_wall
        figures[f"{model.name}.load_cpu_ms"] = load_cpu
        figures[f"{model.name}.load_wall_ms"] = load_wall
        figures[f"{model.name}.open_share_of_load_cpu"] = vocab_cpu / load_cpu
    print_figures(figures, args.json, 44)


if __name__ == "__main__":
    main()
