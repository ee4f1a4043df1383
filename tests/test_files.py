"""``routerllm.files``' atomic writes: through a link to the file, with the old file's
permissions (a new one's from the umask), on disk before the rename, whole or not at
all under SIGKILL."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from unittest import mock

import pytest

from routerllm import files
from routerllm.files import write_text_atomically, written_atomically

from .conftest import PausedWriter


def test_a_write_through_a_link_replaces_the_linked_file_and_keeps_the_link(
    tmp_path: Path,
) -> None:
    real = tmp_path / "shared" / "report.md"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "report.md"
    link.symlink_to(real)
    write_text_atomically(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert not [p for p in tmp_path.rglob("*.partial")]


def test_a_link_to_no_file_or_to_a_pipe_is_itself_replaced(tmp_path: Path) -> None:
    # a pipe of our own, not /dev/zero: followed, the write would replace what it leads to
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for name, to in (("gone.json", tmp_path / "nowhere" / "gone.json"), ("piped", fifo)):
        link = tmp_path / name
        link.symlink_to(to)
        write_text_atomically(link, "{}")
        assert not link.is_symlink() and link.read_text() == "{}"
    assert not (tmp_path / "nowhere").exists()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")
    target.chmod(0o640)
    write_text_atomically(target, "new")
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_new_file_has_the_permissions_the_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_text_atomically(tmp_path / "private.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    write_text_atomically(tmp_path / "usual.json", "{}")
    assert (tmp_path / "usual.json").stat().st_mode & 0o777 == 0o666 & ~old


def test_the_new_file_and_its_folder_reach_the_disk_before_it_is_relied_on(
    tmp_path: Path,
) -> None:
    target = tmp_path / "checkpoint.json"
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        synced.append((Path(path).name if path != str(tmp_path) else "<folder>", target.exists()))
        real_fsync(fd)

    with mock.patch.object(files.os, "fsync", fsync):
        write_text_atomically(target, "x")
    assert len(synced) == 2
    (staged_name, existed_then), (folder, renamed_then) = synced
    assert staged_name.endswith(".partial") and not existed_then  # before the rename
    assert folder == "<folder>" and renamed_then  # after it


_WRITER = """
import sys
from pathlib import Path
from routerllm.files import written_atomically
target = Path(sys.argv[1])
with written_atomically(target) as tmp:
    with tmp.open("w") as f:
        f.write("n" * 1_000_000)
        f.flush()
        print("writing", flush=True)
        sys.stdin.readline()  # killed here, half-way
        f.write("n" * 1_000_000)
"""


def test_sigkill_while_writing_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")
    PausedWriter(_WRITER, str(target)).kill()
    assert target.read_text() == "old"
    # the next write is not disturbed by what the killed one left
    write_text_atomically(target, "new")
    assert target.read_text() == "new"
    (left,) = tmp_path.glob(".results.json.*.partial")
    files.remove_stale_staged(tmp_path)  # nobody holds its lock: its writer is dead
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_live_writers_staged_file_is_not_stale(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    with written_atomically(target) as tmp:  # this process's, another thread's alike
        tmp.write_text("new")
        files.remove_stale_staged(tmp_path)
        files.remove_staged_leftovers(target)
        assert tmp.read_text() == "new"
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_failed_write_leaves_the_old_file_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), written_atomically(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def _open_on(path: Path) -> list[str]:
    """This process's file descriptors open on ``path`` (Linux's /proc)."""
    fds = Path("/proc/self/fd")
    return [fd.name for fd in fds.iterdir() if os.path.realpath(fd) == os.path.realpath(path)]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads Linux's /proc")
def test_where_files_cannot_be_locked_no_staged_file_is_held_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without fcntl (Windows), a staged file is not locked, and nothing holds it open:
    Windows renames or removes no file that is open (``publish``'s ``os.replace``, the
    clean-up's unlink). Until 2026-12-05 its descriptor stayed open for the block."""
    monkeypatch.setattr(files, "fcntl", None)
    target = tmp_path / "results.json"
    with written_atomically(target) as tmp:
        tmp.write_text("new")
        assert _open_on(tmp) == []
    assert target.read_text() == "new"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads Linux's /proc")
def test_a_staged_file_that_cannot_be_removed_is_not_left_open(tmp_path: Path) -> None:
    """The clean-up's unlink may fail (a folder made read-only meanwhile): the staged
    file's descriptor, and its lock, are let go all the same."""
    target = tmp_path / "results.json"
    unlink_fails = mock.patch.object(Path, "unlink", side_effect=PermissionError("read-only"))
    with unlink_fails, pytest.raises(PermissionError), files.staged(target) as tmp:
        tmp.write_text("half")
        assert len(_open_on(tmp)) == 1  # locked: held open for the block
    assert _open_on(tmp) == []


_SAVER = """
import sys
from pathlib import Path
import numpy as np
from routerllm import files
folder = Path(sys.argv[1])
real_savez = np.savez

def savez(f, **arrays):
    real_savez(f, **arrays)
    f.flush()
    print("writing", flush=True)
    sys.stdin.readline()  # killed here, its weights staged, nothing renamed

np.savez = savez
files.save_config_and_weights(folder, {"router": "x", "models": ["a"]}, {"w": np.zeros(100_000)})
"""


def test_a_save_removes_what_a_killed_save_left_in_the_folder(tmp_path: Path) -> None:
    import numpy as np

    folder = tmp_path / "my router"  # a space in its name, as users' folders have
    files.save_config_and_weights(folder, {"router": "x", "models": ["a"]}, {"w": np.ones(3)})
    PausedWriter(_SAVER, str(folder)).kill()
    (left,) = folder.glob(".weights.npz.*.partial")  # 800 kB nobody will ever read
    assert left.stat().st_size > 800_000
    with np.load(files.named_weights(folder)) as saved:  # the first save, whole
        assert saved["w"].tolist() == [1, 1, 1]
    files.save_config_and_weights(folder, {"router": "x", "models": ["a"]}, {"w": np.ones(2)})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.npz"]
