"""Writing files so that a reader never sees half of one, and checking them.

An interrupted or failed write leaves the previous file (or none), never a
truncated one that a later run would trust.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import stat
import tempfile
import threading
import tokenize
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from routerllm.exceptions import RouterLLMError
from routerllm.path_checks import special_kind

try:
    import fcntl
except ImportError:  # not POSIX: folders are not locked (one process per folder)
    fcntl = None  # type: ignore[assignment]

#: The file ``locked_folder`` locks, in the folder it locks.
LOCK_FILE = ".lock"
#: The file ``present_in`` holds a shared lock on, in the folder.
PRESENCE_FILE = ".present"


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
    ``target`` is atomic), removed on exit unless it was renamed. Where ``target`` is a
    link, beside the file it leads to (:func:`publish` replaces that file). This process
    holds a lock on it (``fcntl.flock``) until the block ends, which the system drops
    when the process dies, however it dies: what :func:`remove_stale_staged` tells a
    live writer's file by."""
    target = _linked_file(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = _new_staged_file(target)
    try:
        yield Path(name)
    finally:
        try:
            Path(name).unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)


def _new_staged_file(target: Path) -> tuple[int | None, str]:
    """A new, empty staged file for ``target``, locked by this process where it can be,
    and then the descriptor that holds the lock; where it cannot, none is kept open:
    Windows (no fcntl) renames or removes no file that is open."""
    while True:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")  # fmt: skip
        try:
            if fcntl is None:
                os.close(fd)
                return None, name
            try:
                # waits where a sweeper took the new file for a dead writer's and removes it
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # no locks on this file system: nobody can tell it is live
                os.close(fd)
                return None, name
            if _is_at(fd, Path(name)):
                return fd, name
        except BaseException:  # Ctrl-C while it waited for the lock: no file left behind
            with contextlib.suppress(OSError):
                os.close(fd)
                os.unlink(name)
            raise
        os.close(fd)  # removed by a sweeper before it was locked: another one


def _is_at(fd: int, path: Path) -> bool:
    """Whether the file open as ``fd`` is the one at ``path`` (not a link to it)."""
    try:
        there, here = path.lstat(), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)


def remove_staged_leftovers(target: Path, unknown_is_stale: bool = True) -> None:
    """Remove the files ``staged`` left beside ``target`` in a process killed as it wrote
    (SIGKILL, the OOM killer: its ``finally`` never ran), not one a live process is
    writing (:func:`remove_stale_staged`). Where files cannot be locked (not POSIX, an
    NFS mount without locks), all go where ``unknown_is_stale``: only for a writer that
    owns ``target``'s folder; else none."""
    for path in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        _remove_if_stale(path, unknown_is_stale=unknown_is_stale)


def remove_stale_staged(folder: Path) -> None:
    """Remove the files ``staged`` left in ``folder``, a folder several processes write
    to (the model cache), by processes that died as they wrote: those no live process
    holds the lock of. Where that cannot be told (no file locks), nothing goes."""
    with contextlib.suppress(OSError):  # no folder yet, or one we cannot list
        for path in folder.glob(".*.partial"):
            _remove_if_stale(path, unknown_is_stale=False)


def _remove_if_stale(path: Path, unknown_is_stale: bool) -> None:
    """Remove the staged file ``path`` where the process that made it is gone: nobody
    holds its lock. Only a regular file (a named pipe would hold the open)."""
    if fcntl is None:
        if unknown_is_stale:
            with contextlib.suppress(OSError):
                path.unlink()
        return
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # gone meanwhile, or not ours to read
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # a live writer's
        os.close(fd)
        return
    except OSError:  # no locks on this file system
        os.close(fd)
        if unknown_is_stale:
            with contextlib.suppress(OSError):
                path.unlink()
        return
    try:
        if _is_at(fd, path):  # not renamed into place meanwhile, nor made anew
            path.unlink()
    except OSError:  # not ours to remove
        pass
    finally:
        os.close(fd)


def publish(tmp: Path, target: Path) -> None:
    """Rename a staged file over ``target``, with ``target``'s permissions (a new file's
    are those the umask leaves of 0666, as ``open`` gives: a temporary file starts
    private). Where ``target`` is a link, the file it leads to is replaced and the link
    kept: renaming over the link would replace it by a file and leave the linked one
    as it was. The file's data is on disk before the rename, and the rename before this
    returns (the folder is synced): a crash of the machine leaves the old file or the
    new one whole, never an empty one under the new name."""
    target = _linked_file(target)
    os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask())
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    _sync_folder(target.parent)


def _linked_file(target: Path) -> Path:
    """The file a write to ``target`` replaces: the one it leads to where it is a link
    to a file (a report linked into a shared folder), so that the link stays a link. A
    link to no file, or to a device or a pipe (/dev/zero), is itself replaced."""
    if target.is_symlink() and special_kind(target) is None and target.exists():
        return Path(os.path.realpath(target))
    return target


def _sync_folder(folder: Path) -> None:
    """Put a rename in ``folder`` on disk; where the file system cannot sync a folder
    (some refuse with EINVAL), the rename is as safe as it can be made there."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_umask_guard = threading.Lock()


def _umask() -> int:
    """This process's umask, read without changing it where Linux says it (a change,
    even undone at once, would apply to a file another thread creates meanwhile)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _umask_guard:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def written_atomically(target: Path) -> Iterator[Path]:
    """A temporary path to write ``target``'s content to; renamed to ``target`` when
    the block succeeds."""
    with staged(target) as tmp:
        yield tmp
        publish(tmp, target)


def write_text_atomically(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` so that an interrupted or failed write (Ctrl-C,
    a full disk) leaves the previous file whole."""
    with written_atomically(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_kept_json(path: Callable[[], Path]) -> Any:
    """The JSON a cache's file holds (``path()``, asked here: the cache's folder may not be
    found, no home folder); None where it is missing, unreadable, not UTF-8, not JSON or
    nested past the recursion limit: such a cache costs what it keeps, never an error."""
    try:
        return json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError, RuntimeError):  # RecursionError is a RuntimeError
        return None


def read_kept_entries(path: Callable[[], Path], version: int, field: str) -> dict[str, Any]:
    """The entries of a cache's file of format ``version`` (``{"format": version, field:
    {key: entry}}``, :func:`read_kept_json`): {} where it is missing, damaged or of
    another format (the GGUF headers', the control texts' and the answer checks' caches)."""
    data = read_kept_json(path)
    if not isinstance(data, dict) or data.get("format") != version:
        return {}
    entries = data.get(field)
    return entries if isinstance(entries, dict) else {}


def keep_json(path: Callable[[], Path], data: Any, **dumps: Any) -> OSError | RuntimeError | None:
    """``data`` written as JSON (``json.dumps(data, **dumps)``) to a cache's file
    (``path()``, asked here), atomically (``write_text_atomically``: two processes writing
    at once each replace it whole); the error where it cannot be (a read-only home, none),
    for the caller to say: the next process works it out again."""
    try:
        write_text_atomically(path(), json.dumps(data, **dumps) + "\n")
    except (OSError, RuntimeError) as e:
        return e
    return None


_T = TypeVar("_T")
#: How many times a load is tried again where saves by other processes landed as it read.
RELOADS = 5


def read_whole(config: Path | None, load: Callable[[], _T]) -> _T:
    """``load()`` of a saved folder (a router, a gate) whose ``config`` file names its
    weights, read again where it failed as another process's save (loads take no lock
    against saves) replaced that file meanwhile: the config read, then the new weights,
    did not match ("save or train again" for nothing)."""
    for attempt in range(RELOADS + 1):
        before = _saved_at(config)
        try:
            return load()
        except RouterLLMError:
            if attempt == RELOADS or _saved_at(config) == before:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _saved_at(config: Path | None) -> tuple[int, int, int] | None:
    """What tells one save's ``config.json`` from another's (each is a new file renamed
    into place), or None where there is none."""
    if config is None:
        return None
    try:
        st = config.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


#: The weights a save replaces, kept until the new config.json is in place.
PREVIOUS_WEIGHTS = "weights.previous.npz"


def save_config_and_weights(
    folder: Path, meta: dict[str, Any], arrays: dict[str, Any] | None
) -> None:
    """Save ``folder/config.json`` (``meta``, plus the sha256 of the weights in
    ``weights_sha256``, None without ``arrays``) and ``folder/weights.npz`` so that an
    interrupted save leaves the old pair or the new one, never a mix: both are staged,
    and the weights the old config names wait as ``weights.previous.npz`` until the new
    config is in place (``named_weights`` tells a loader which the config names)."""
    import numpy as np

    from routerllm.backends.interrupts import deferred_interrupts

    weights_file, config_file = folder / "weights.npz", folder / "config.json"
    # what a save killed as it wrote left (SIGKILL, the OOM killer): weights as big as
    # the new ones, which nothing removed; a live save's stay (another process's where
    # the folder's lock keeps only this process's threads apart)
    for target in (weights_file, config_file):
        remove_staged_leftovers(target, unknown_is_stale=False)
    with contextlib.ExitStack() as stack:
        weights_tmp = stack.enter_context(staged(weights_file)) if arrays else None
        if weights_tmp is not None:
            with weights_tmp.open("wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
        meta = {**meta, "weights_sha256": sha256_of(weights_tmp) if weights_tmp else None}
        config_tmp = stack.enter_context(staged(config_file))
        config_tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        # Ctrl-C as they are renamed is raised once all is in place (SavedThenInterrupted):
        # a first save had left weights without the config that names them, which nothing
        # loads
        with deferred_interrupts() as interrupted:
            if weights_tmp is not None:
                # the weights the config names go aside (unless a save cut short left them
                # there already: then weights.npz is its unnamed new ones)
                if weights_file.exists() and not weights_named_aside(folder):
                    os.replace(weights_file, folder / PREVIOUS_WEIGHTS)
                publish(weights_tmp, weights_file)
            publish(config_tmp, config_file)
            (folder / PREVIOUS_WEIGHTS).unlink(missing_ok=True)
            if not arrays:
                weights_file.unlink(missing_ok=True)  # an earlier save's
            try:
                interrupted()
            except KeyboardInterrupt:
                raise SavedThenInterrupted(folder) from None


class SavedThenInterrupted(KeyboardInterrupt):
    """Ctrl-C while a save renamed its files into ``folder``, raised once they all were:
    what was saved there is whole (``save_config_and_weights``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(f"interrupted once {folder} was saved")


#: What reading a damaged .npz archive raises, beyond numpy's ValueError: the zip
#: module's EOFError and BadZipFile (a cut file), NotImplementedError (an unknown
#: compression or version in a header) and RuntimeError (an "encrypted" flag); from
#: numpy's parser of an array's header, tokenize's TokenError (a bracket flipped),
#: TypeError ({[]: 1}), RecursionError (a RuntimeError: ------1) and MemoryError (a
#: shape of 10^12 numbers, allocated before the data is read).
NPZ_DAMAGE = (
    EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError, tokenize.TokenError,
    TypeError, MemoryError,
)  # fmt: skip


def holds(weights: Path, sha256: str) -> bool:
    """Whether ``weights`` is a file and has this sha256 (a named pipe or a device there
    is not read: it would never end)."""
    try:
        return weights.is_file() and sha256_of(weights) == sha256
    except OSError:
        return False


def weights_named_aside(path: Path) -> bool:
    """Whether the weights ``path/config.json`` names are ``weights.previous.npz``, not
    ``weights.npz``: a save was cut short after it moved them aside. A config saved
    before the digest was recorded names them whenever they are there: only a save cut
    short leaves them, and its own config would record one."""
    previous, config = path / PREVIOUS_WEIGHTS, path / "config.json"
    if not previous.exists() or not config.is_file():  # the loader refuses a named pipe...
        return False
    try:
        meta = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # the loader says what is wrong with it
        return False
    if not isinstance(meta, dict):
        return False
    if "weights_sha256" not in meta:
        return True
    named = meta["weights_sha256"]
    return (
        isinstance(named, str) and holds(previous, named) and not holds(path / "weights.npz", named)
    )


def named_weights(folder: Path) -> Path:
    """The weights file ``folder/config.json`` names: ``weights.npz``, or
    ``weights.previous.npz`` where a save was cut short after it moved them aside."""
    return folder / (PREVIOUS_WEIGHTS if weights_named_aside(folder) else "weights.npz")


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


#: The folders each thread holds ``locked_folder``'s lock on (resolved paths).
_held = threading.local()
#: This process's lock on each folder (resolved path) ``locked_folder`` has locked.
_process_locks: dict[Path, threading.Lock] = {}
_process_locks_guard = threading.Lock()
if hasattr(os, "register_at_fork"):  # a child forked while a thread held one: not its own
    os.register_at_fork(after_in_child=_process_locks.clear)


@contextlib.contextmanager
def locked_folder(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (an existing one) for the block: another
    process (or thread) locking it waits. It is ``fcntl.flock`` on the folder's
    ``.lock`` file, taken under a lock of this process on the folder: where the file
    system emulates flock with POSIX locks (NFS), which a process holds for all its
    threads, two threads would both get it. Where fcntl is missing (not POSIX), only
    this process's threads are kept apart. A thread that holds it already (an
    ensemble's save, in its router's save) just goes on."""
    held: set[Path] = _held.__dict__.setdefault("folders", set())
    key = folder.resolve()
    if key in held:
        yield
        return
    with _process_locks_guard:
        process_lock = _process_locks.setdefault(key, threading.Lock())
    with process_lock, _flocked(folder):
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)


@contextlib.contextmanager
def _flocked(folder: Path) -> Iterator[None]:
    """``fcntl.flock`` on ``folder``'s ``.lock`` file for the block (nothing without fcntl)."""
    if fcntl is None:
        yield
        return
    try:
        handle = (folder / LOCK_FILE).open("a")
    except OSError as e:
        raise RouterLLMError(f"cannot lock {folder}: {e}") from e
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as e:  # e.g. ENOLCK: an NFS mount without locking
            raise RouterLLMError(
                f"cannot lock {folder}: {e}; give a folder on a file system that supports "
                f"file locks (fcntl.flock)"
            ) from e
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def present_in(folder: Path) -> tuple[IO[str], bool] | None:
    """Be present in ``folder`` (an existing one) for as long as the returned file stays
    open: a shared ``fcntl.flock`` on its ``.present`` file, which the system drops when
    the process ends, however it ends; and whether nobody else was present then. None
    where fcntl is missing (nobody can be present, nor tell). A ``RouterLLMError`` where
    the folder cannot be locked (a read-only one, a presence file that cannot be opened,
    a file system without locks): others may be present, and this process cannot tell."""
    if fcntl is None:
        return None
    try:
        with locked_folder(folder):  # one comer at a time: the test and the change to shared
            handle = (folder / PRESENCE_FILE).open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            fcntl.flock(handle, fcntl.LOCK_SH)
    except OSError as e:
        raise RouterLLMError(f"cannot be present in {folder}: {e}") from e
    return handle, alone
