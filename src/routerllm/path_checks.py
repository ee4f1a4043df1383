"""What is at a path, checked before anything opens or writes there: a special file
(a named pipe, a device) that would hang or never end, a file or a broken link where a
folder would go, a folder nothing can be written in. Each is one clear error found
before any work, not an errno after it."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from routerllm.exceptions import RouterLLMError


def special_kind(path: Path) -> str | None:
    """What ``path`` is where it is there but is not a regular file ("a named pipe
    (FIFO)", "a character device"...); None for a regular file, or where nothing is
    there or it cannot be looked at (its reader says why). ``os.stat`` follows links:
    a link to /dev/zero is a character device. Nothing is opened."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):  # missing, no permission, a NUL in the name...
        return None
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def refuse_special_file(path: Path, fix: str, error: type[RouterLLMError] = RouterLLMError) -> None:
    """Raise ``error`` where ``path`` is there but is not a regular file, before anything
    opens it: opening a named pipe waits for a writer that never comes, a device such
    as /dev/zero never ends. "PATH is a named pipe (FIFO), not a file: ``fix``". Every
    loader of saved routers, gates, checkpoints and encoder files checks its files so."""
    if (why := special_file_problem(path, fix)) is not None:
        raise error(why)


def refuse_special_input(
    path: Path, fix: str, error: type[RouterLLMError] = RouterLLMError
) -> None:
    """``refuse_special_file`` for a file a user names for a command to read once (a data
    or problem file), but for a folder (its reader says what to give instead) and a pipe
    without a name in any folder, which another command writes and ends when it does:
    ``--data <(command)`` (``/dev/fd/63``), ``/dev/stdin`` after a ``|``. A named pipe
    made with mkfifo is refused: nothing may ever write to it."""
    kind = special_kind(path)
    if kind == "a folder" or (kind == "a named pipe (FIFO)" and _unnamed(path)):
        return
    refuse_special_file(path, fix, error)


def _unnamed(path: Path) -> bool:
    """Whether ``path`` leads to something with no name in any folder: the link
    ``/proc/self/fd/N`` to a pipe says ``pipe:[12345]``, a name that is nowhere."""
    return not os.path.lexists(os.path.realpath(path))


def refuse_special_database(
    path: Path, fix: str, error: type[RouterLLMError] = RouterLLMError
) -> None:
    """``refuse_special_file`` for an SQLite database and the ``-wal`` and ``-shm`` files
    SQLite opens beside it: a named pipe there would hold it forever."""
    for suffix in ("", "-wal", "-shm"):
        refuse_special_file(path.with_name(path.name + suffix), fix, error)


def special_file_problem(path: Path, fix: str) -> str | None:
    """``refuse_special_file``'s message for ``path``, None where it is a regular file
    (or is not there)."""
    if (kind := special_kind(path)) is None:
        return None
    link = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
    return f"{path}{link} is {kind}, not a file: {fix}"


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing path at or above ``path``, where it is not a folder: a file
    where ``path`` or a folder above it would go, or a broken link (None where nothing
    is in the way). Found before any work, it is one clear error, not an "[Errno 20]"
    (or "[Errno 17]") after it; :func:`what_is` says which it is."""
    existing = _nearest_existing(path)
    return existing if existing is not None and not existing.is_dir() else None


def what_is(path: Path) -> str:
    """What ``file_in_the_way`` found, for messages: "a file", "a named pipe (FIFO)" (or
    another special file), or "a broken link (to TARGET)" (its target deleted, not
    mounted, or itself a link back)."""
    if path.is_symlink() and not path.exists():
        return f"a broken link (to {os.readlink(path)})"
    return special_kind(path) or "a file"


def unwritable_folder(path: Path) -> tuple[Path, OSError] | None:
    """The nearest existing folder at or above ``path`` where nothing can be created,
    with the error creating there gave (None where something can). It is tried, not
    asked: ``os.access`` says yes to root in /proc or on a read-only file system. The
    folder the try makes is removed at once, so the check leaves nothing behind."""
    existing = _nearest_existing(path)
    if existing is None or not existing.is_dir():
        return None
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".routerllm-check-", dir=existing))
    except OSError as e:
        return existing, e
    return None


def refuse_unwritable_folder(
    path: Path, said: str, nothing_done: str, error: type[RouterLLMError] = RouterLLMError
) -> None:
    """Raise ``error`` where nothing can be created at ``path`` (``unwritable_folder``):
    "``said``: nothing can be written in FOLDER (why); give a folder you can write to
    (``nothing_done``)". Called before any work, not when its result is saved."""
    if (unwritable := unwritable_folder(path)) is not None:
        folder, e = unwritable
        raise error(
            f"{said}: nothing can be written in {folder} ({e.strerror or e}); "
            f"give a folder you can write to ({nothing_done})"
        )


def _nearest_existing(path: Path) -> Path | None:
    # a broken link exists too: nothing can be made where it is, nor under it
    return next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
