"""Each sandboxed program's temporary folder: made, held while its run lasts, removed after,
and removed by a later run where its harness died first (SIGKILL, the OOM killer, a CI
timeout), which nothing else would do.

A folder's owner is its harness's ``flock`` on the folder itself, taken before the folder
is marked (mode ``0o1700``, sticky: :data:`MARKED_MODE`) and held until it is removed:
the kernel releases it when the harness dies, however it dies, so a folder marked and
free belongs to no live harness. The lock names no process (a pid is reused, and a pid
namespace or a container renumbers it), holds across PID and network namespaces (an
abstract socket, as :data:`routerllm.eval.sandbox_isolation._RUN_UID_LOCK`, is one network
namespace's: two containers sharing ``/tmp`` would each find the other's free), and is
one open file's, not one process's (``fcntl``'s locks are a process's: a second run of the
same harness would find its sibling's folder free, and closing any descriptor of it
would drop the lock). The program never holds it: the descriptor is not inherited past
the exec.

:func:`remove_left_folders` (each run, before it makes its own) removes, of the temporary
folder's entries, only a real folder named as ``mkdtemp`` names this code's, marked, of an
owner a harness of this user makes (its own uid; as root also :data:`RUN_UIDS`'s and
``nobody``'s) and whose lock it can take: never a live harness's (another process, or
another thread of this one), a folder of an older version (``0o700``, unmarked), a
symlink, a file, or another user's folder. A program may unmark its own folder
(``chmod``): that one is kept, as before. Removal is :func:`_remove_tree`'s, which
follows no symlink the program planted.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from routerllm.exceptions import RouterLLMError

logger = logging.getLogger(__name__)

PREFIX = "routerllm-sandbox-"
#: A folder this code made and locked: no other mode says so (``mkdtemp`` makes ``0o700``).
MARKED_MODE = 0o1700
#: As root, the uids (each with its gid of the same number) of programs running at once,
#: one each: in systemd's unused 60578-61183 (none of its users, dynamic users or
#: containers) and below 65536, which a user namespace of 65,536 ids still maps.
RUN_UIDS = range(60600, 60728)
# the names tempfile.mkdtemp gives: the prefix and 8 of its characters
_MADE_NAME = re.compile(re.escape(PREFIX) + r"[a-z0-9_]{8}")
_OPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def program_folder(user: tuple[int, int] | None) -> Iterator[Path]:
    """A fresh folder, locked and marked, owned by ``user`` (uid, gid) where given;
    removed when the block ends. Folders left by dead harnesses are removed first."""
    remove_left_folders()
    try:  # a temporary folder gone, full or not writable: one line, as a failed start is
        path = Path(tempfile.mkdtemp(prefix=PREFIX))
    except OSError as e:
        raise RouterLLMError(f"cannot create the sandbox's folder: {e}") from e
    fd = -1
    try:
        try:
            fd = os.open(path, _OPEN_FLAGS)
            fcntl.flock(fd, fcntl.LOCK_EX)  # nobody else has it yet: at once
            os.fchmod(fd, MARKED_MODE)  # only once locked: a marked folder is a held one
            if user is not None:
                os.fchown(fd, *user)
        except OSError as e:
            raise RouterLLMError(f"cannot prepare the sandbox's folder {path}: {e}") from e
        yield path
    finally:
        _remove_folder(path)
        if fd >= 0:
            os.close(fd)  # after the removal: no other run takes the folder for a dead one


def remove_left_folders() -> None:
    """Remove the folders of :data:`PREFIX` in the temporary folder whose harness died
    (this module's docstring says which); what cannot be read is left as it is."""
    try:
        root = tempfile.gettempdir()
        with os.scandir(root) as entries:
            names = [entry.name for entry in entries if _MADE_NAME.fullmatch(entry.name)]
    except OSError:
        return
    owners = _owners()
    for name in names:
        path = os.path.join(root, name)
        try:
            fd = os.open(path, _OPEN_FLAGS | os.O_NONBLOCK)
        except OSError:  # gone, a symlink, a file, not ours to read
            continue
        try:
            found = os.fstat(fd)
            if stat.S_IMODE(found.st_mode) != MARKED_MODE or found.st_uid not in owners:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    logger.debug("sandbox: cannot lock %s: %s", path, e)
                continue  # its harness runs
            # still the folder locked (its harness may have removed it and another run
            # made one of the same name since), and the mark not taken off meanwhile
            if not os.path.samestat(os.lstat(path), found) or os.fstat(fd).st_mode != found.st_mode:  # fmt: skip
                continue
            logger.info("sandbox: removing %s, left by a harness that ended first", path)
            _remove_folder(Path(path))
        except OSError:
            continue
        finally:
            os.close(fd)


def _owners() -> frozenset[int]:
    """The owners of the folders a harness of this user makes: itself; as root also the
    users its programs run as."""
    uid = os.geteuid()
    if uid != 0:
        return frozenset({uid})
    import pwd  # only as root

    try:
        nobody = {pwd.getpwnam("nobody").pw_uid}
    except KeyError:
        nobody = set()
    return frozenset({0, *RUN_UIDS, *nobody})


def _remove_folder(path: Path) -> None:
    _remove_tree(path)
    # As non-root, the program may have taken away its own permissions. Never as root,
    # which needs none to remove it, nor through a symlink the program put in its place:
    # root (or the harness's user) would chmod whatever that points to.
    if os.geteuid() != 0 and path.is_dir() and not path.is_symlink():
        for root, dirs, _ in os.walk(path):
            for name in dirs:
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), 0o700)
        _remove_tree(path)
    if path.exists():
        logger.warning("could not remove the sandbox directory %s", path)


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:  # shutil.rmtree recurses (Python 3.11): a deep tree
        with suppress(OSError, subprocess.SubprocessError):  # rm walks any depth
            subprocess.run(["rm", "-rf", "--", str(path)], capture_output=True, timeout=60)
