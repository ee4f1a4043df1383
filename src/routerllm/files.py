"""Writing files so that a reader never sees half of one, and checking them.

An interrupted or failed write leaves the previous file (or none), never a
truncated one that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from routerllm.exceptions import RouterLLMError

try:
    import fcntl
except ImportError:  # not POSIX: folders are not locked (one process per folder)
    fcntl = None  # type: ignore[assignment]

#: The file ``locked_folder`` locks, in the folder it locks.
LOCK_FILE = ".lock"


def sha256_of(path: Path) -> str:
    """The file's sha256, read in blocks (model files are gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target`` (same file system, so renaming it over
    ``target`` is atomic), removed on exit unless it was renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def publish(tmp: Path, target: Path) -> None:
    """Rename a staged file over ``target``, with ``target``'s permissions (or the
    usual 0644 for a new file: a temporary file starts private)."""
    os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
    os.replace(tmp, target)


@contextlib.contextmanager
def written_atomically(target: Path) -> Iterator[Path]:
    """A temporary path to write ``target``'s content to; renamed to ``target`` when
    the block succeeds."""
    with staged(target) as tmp:
        yield tmp
        publish(tmp, target)


def refuse_foreign_folder(path: Path, ours: Callable[[Path], bool], what: str) -> None:
    """Refuse to save a ``what`` into the folder ``path`` when its ``config.json`` or
    ``weights.npz`` belong to something else (``ours(config_json)`` says whether they
    are a saved ``what``): saving would replace them and lose them."""
    config, weights = path / "config.json", path / "weights.npz"
    if (config.exists() or weights.exists()) and not (config.is_file() and ours(config)):
        theirs = config if config.exists() else weights
        raise RouterLLMError(
            f"{path} holds a {theirs.name} that is not a saved {what}; "
            f"save it to another folder (nothing was changed)"
        )


@contextlib.contextmanager
def locked_folder(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (an existing one) for the block: another
    process (or thread) locking it waits. It is ``fcntl.flock`` on the folder's
    ``.lock`` file; where fcntl is missing (not POSIX), nothing is locked."""
    if fcntl is None:
        yield
        return
    try:
        handle = (folder / LOCK_FILE).open("a")
    except OSError as e:
        raise RouterLLMError(f"cannot lock {folder}: {e}") from e
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
