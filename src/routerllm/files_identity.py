"""What a set of files holds, told cheaply: their stat (``files_stamp``, no read) and,
where that is not the recorded one, their sha256 (:func:`files_weights`). A HumanEval
store and a served gate record so the weights of a model's files
(``eval.weights_identity``), a saved router its encoder's (``routers.encoder_weights``):
a file written again at its path has another sha256; a copy of it (a reinstall, ``cp``)
another stat but the same sha256, so it is the same weights."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from routerllm.files import sha256_of


def files_stamp(paths: list[Path]) -> str:
    """The identity of the files at ``paths`` now, from a stat of each (no read): a file
    replaced there, renamed over (another inode) or written in place (its ctime, which
    no one can set back), has another; a missing one has its own."""
    stamps = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            stamps.append("missing")
            continue
        stamps.append(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    return ",".join(stamps)


def written_within(paths: Sequence[Path], seconds: float) -> Path | None:
    """The first of ``paths`` modified less than ``seconds`` ago (a copy or a download
    writing it, most likely: its hash would be of bytes still changing); None where none
    is. A time further ahead of this clock's (a skewed clock, an archive's) is no write."""
    now = time.time_ns()
    for path in paths:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:  # gone: its stamp says "missing", and a read finds nothing to hash
            continue
        if abs(now - mtime) < seconds * 1e9:
            return path
    return None


@dataclass(frozen=True)
class Weights:
    """Files as they are (a model's weights, an encoder's): their stat and their sha256 (one
    over all)."""

    stamp: str
    sha256: str
    files: tuple[str, ...]


def files_weights(files: Sequence[Path], recorded: Weights | None) -> Weights:
    """What ``files`` hold now: ``recorded`` where their stat is the recorded one (nothing
    read), their sha256 otherwise (a copy of the same files has another stat, the same
    sha256)."""
    stamp = files_stamp(list(files))
    if recorded is not None and recorded.stamp == stamp:
        return recorded
    digest = hashlib.sha256("\0".join(sha256_of(f) for f in files).encode()).hexdigest()
    return Weights(stamp, digest, tuple(str(f) for f in files))


def weights_from_record(data: object) -> Weights:
    """The :class:`Weights` a record holds (``asdict`` of one, as JSON reads it back: a
    store's, a saved gate's); ValueError where it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"a record of weights is an object, got {type(data).__name__}")
    stamp, sha256, files = data.get("stamp"), data.get("sha256"), data.get("files")
    if not isinstance(stamp, str) or not isinstance(sha256, str) or not isinstance(files, list) or not all(isinstance(f, str) for f in files):  # fmt: skip
        raise ValueError("a record of weights has a stamp, a sha256 and files (strings)")
    return Weights(stamp, sha256, tuple(files))
