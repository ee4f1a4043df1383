"""Whether the GGUF at a path is one llama.cpp can load, as far as a stat and its header
tell (read once per version of the file), without loading it: a regular file, a GGUF,
as long as its header says; and where it is the first of llama.cpp's own split files
(``llama-gguf-split``'s ``model-00001-of-00003.gguf`` ...: each a GGUF of its own whose
header describes its own tensors, the model's metadata in the first), every split
llama.cpp reads with it, found as llama.cpp finds them: beside it, named after it."""

from __future__ import annotations

from pathlib import Path

from routerllm.exceptions import BackendError, ModelUnavailableError, RouterLLMError
from routerllm.gguf_header import GGUF_MAGIC, SplitInfo, shortfall, split_info
from routerllm.path_checks import special_file_problem, what_is

#: What a split's failure to make one model with the others may be, and what to do.
_ANOTHER = "a split of another model or splitting? Copy one model's splits again"


def not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a model file (None where it is a file)."""
    if path.is_dir():
        return f"path is a directory, not a file: {path}"
    # llama.cpp would wait on a named pipe for a writer, or read a device forever
    if why := special_file_problem(path, "give the path of the model's GGUF file"):
        return why
    if path.is_symlink() and not path.exists():  # listed by ls: not "not found"
        return f"{path} is {what_is(path)}: give the path of the model's GGUF file"
    return None if path.is_file() else f"file not found: {path}"


def header_problem(path: Path, whole: bool = True) -> str | None:
    """Why ``path`` is not a GGUF file, as its header tells (None where it reads as one):
    an empty file, a text or an archive; a ``whole`` file (not a split model's first part)
    shorter than its header says, cut short by an interrupted download or copy: it was
    listed as available, and failed at its first request. A body corrupt past that,
    llama.cpp finds. A named pipe or a device is not opened (it waited for a writer)."""
    if why := special_file_problem(path, "give the path of the model's GGUF file"):
        return why
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        return f"{path} cannot be read ({e.strerror or e})"
    if not magic:  # "bad magic b''" said nothing of a file with nothing in it
        return f"{path} is empty (0 bytes): an interrupted download or copy? Copy or install it again"  # fmt: skip
    if magic != GGUF_MAGIC:
        return f"{path} is not a GGUF file (bad magic {magic!r}); it is corrupt or the wrong format"  # fmt: skip
    if whole and (short := shortfall(path)):
        return f"{path} is cut short ({short}): an interrupted download or copy? Copy or install it again"  # fmt: skip
    return None


def check_gguf_header(path: Path) -> None:
    """Fail early, with a clear message, on a file that is not GGUF or is cut short; where
    it is the first of split files, on splits that do not make its model (``splits_problem``):
    one missing is a ``ModelUnavailableError`` (as a missing GGUF is)."""
    if why := header_problem(path):
        raise BackendError(why)
    why, error = _splits_problem(path)
    if why is not None:
        raise error(why)


def split_files(path: Path) -> list[Path]:
    """The files llama.cpp reads for the GGUF ``path``: ``path``, and where its header says
    it is the first of split files, the others, where llama.cpp looks for them (a stat and
    the header's cached read); ``path`` alone where its header does not say so."""
    info = split_info(path)
    if info is None or info.number != 0 or (prefix := _prefix(path, info)) is None:
        return [path]
    return [path, *(_split_path(prefix, n, info.splits) for n in range(1, info.splits))]


def digests_problem(path: Path, digests: str | list[str] | None) -> str | None:
    """Why a list of ``digests`` (``gguf.sha256``: one per split file, in order) is not one
    for each file llama.cpp reads for the GGUF ``path`` (``split_files``: a whole GGUF is
    one); None where it is, or ``digests`` is no list."""
    if not isinstance(digests, list) or len(digests) == (count := len(split_files(path))):
        return None
    listed = f"gguf.sha256 lists {len(digests)} sha256, one per split, but {path.name} is"
    if count == 1:
        return f"{listed} one file, not llama.cpp's split files: give its one sha256"
    return (
        f"{listed} the first of {count} split files: give the sha256 of each of the {count}, "
        f"in order"
    )


def splits_problem(path: Path) -> str | None:
    """Why the splits of the GGUF ``path`` (``split_files``; its own header checked apart:
    ``header_problem``) are not one model llama.cpp loads, as llama.cpp 0.3.16 refuses
    them at load ("the file is corrupt"); None where ``path`` is no split, or they are."""
    return _splits_problem(path)[0]


def _splits_problem(path: Path) -> tuple[str | None, type[RouterLLMError]]:
    """``splits_problem``, and the error it is: a split missing, the model unavailable; a
    split cut short or not a GGUF, as the GGUF it is part of would be, a backend's."""
    info, unavailable = split_info(path), ModelUnavailableError
    if info is None:
        return None, unavailable
    prefix = _prefix(path, info)
    if info.number != 0:
        stem = path.name[: -len(_ending(info.number, info.splits))] if prefix is not None else "..."
        return (
            f"{path} is split {info.number + 1} of {info.splits} of a model: give gguf.path "
            f"its first split, {stem}{_ending(0, info.splits)}"
        ), unavailable
    if prefix is None:
        return (
            f"{path} is split 1 of {info.splits} (its header's split.count), but its name does "
            f"not end {_ending(0, info.splits)}, by which llama.cpp finds the others: name the "
            f"splits as llama-gguf-split names them"
        ), unavailable
    found = info.tensors
    for number in range(1, info.splits):
        split = _split_path(prefix, number, info.splits)
        if why := not_a_file(split):
            return (
                f"split {number + 1} of {info.splits} of {path.name}: {why}; llama.cpp reads "
                f"each split from beside the first, named as llama-gguf-split names them"
            ), unavailable
        if why := header_problem(split):
            return why, BackendError
        other = split_info(split)
        if other is None or (other.number, other.splits) != (number, info.splits):
            says = "no split" if other is None else f"split {other.number + 1} of {other.splits}"
            return (
                f"{split} is not split {number + 1} of {info.splits} of {path.name} (its header "
                f"says {says}): {_ANOTHER}"
            ), unavailable
        found += other.tensors
    if info.total_tensors is not None and found != info.total_tensors:
        return (
            f"the {info.splits} splits of {path.name} hold {found} tensors, where its header's "
            f"split.tensors.count says {info.total_tensors}: {_ANOTHER}"
        ), unavailable
    return None, unavailable


def _ending(number: int, count: int) -> str:
    """How the name of split ``number`` (from 0) of ``count`` ends (llama.cpp's
    ``llama_split_path``)."""
    return f"-{number + 1:05d}-of-{count:05d}.gguf"


def _prefix(path: Path, info: SplitInfo) -> str | None:
    """The path of the split ``path`` without its ending, from which llama.cpp names the
    others (its ``llama_split_prefix``); None where its name does not end as its header's
    split number and count say (llama.cpp then finds no other)."""
    ending = _ending(info.number, info.splits)
    return str(path)[: -len(ending)] if path.name.endswith(ending) else None


def _split_path(prefix: str, number: int, count: int) -> Path:
    return Path(prefix + _ending(number, count))
