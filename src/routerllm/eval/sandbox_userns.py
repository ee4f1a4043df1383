"""An ordinary user's way into the sandbox's namespaces: a user namespace of its own.

Only root may unshare a network, PID, mount or IPC namespace; an ordinary user may where
the kernel allows unprivileged user namespaces (``user.max_user_namespaces`` above 0 and,
on kernels that have it, ``kernel.unprivileged_userns_clone`` 1): the child unshares a
user namespace first, in which it holds every capability, and makes the others there. Its uid and gid are mapped to themselves, not to root, and it gives up
those capabilities once it entered them, before any of the program's code runs (as the
exec of a non-root user did when the entry was made in a forked child), so the program
cannot undo the read-only remounts, re-enter a namespace or ptrace the not-dumpable
init, and ``RLIMIT_NPROC`` binds it, as before; the harness's files stay its own, as they were. ``setgroups`` is
denied before ``gid_map`` is written, which the kernel requires of an unprivileged
writer: the program keeps its harness's supplementary groups (it cannot drop them
without ``setgroups``, and no more than before can it use them for more).

:func:`routerllm.eval.sandbox_isolation._isolation` probes it once, where the harness is
not root; :func:`id_maps` is made in the harness, and
:func:`routerllm.eval.sandbox_entry.enter_user_namespace` writes them in the sandboxed
interpreter.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def id_maps() -> tuple[tuple[bytes, bytes], ...]:
    """(file of ``/proc/self``, line) the child writes once in its user namespace, in this
    order: the harness's effective uid and gid mapped to themselves, the only mapping an
    unprivileged process may write; ``setgroups`` denied before the ``gid_map``."""
    uid, gid = os.geteuid(), os.getegid()
    return (
        (b"/proc/self/uid_map", b"%d %d 1\n" % (uid, uid)),
        (b"/proc/self/setgroups", b"deny"),
        (b"/proc/self/gid_map", b"%d %d 1\n" % (gid, gid)),
    )


def warn_refused(executable: str) -> None:
    """The log's one line where the kernel refuses the harness's user a user namespace."""
    logger.warning(
        "sandbox: the kernel refuses user %d a user namespace (user.max_user_namespaces, "
        "kernel.unprivileged_userns_clone): %s runs programs with no network, PID, mount "
        "or IPC namespace, as the harness's user; only the in-process guards keep them "
        "off the network and away from the harness",
        os.geteuid(),
        executable,
    )
