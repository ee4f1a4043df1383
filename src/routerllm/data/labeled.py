"""Labelled prompts: the form every classifier dataset takes (synthetic, tiny-codes, ...).

Labels follow the seeds' class map (MISSION M1/M5): 0 code generation (heavy
code model), 1 text generation (medium text), 2 general purpose (medium),
3 lightweight (light). Files are JSON lists of ``{"text", "label", "category",
"source"}`` objects (or JSON Lines, ``.jsonl``: one such object a line).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from routerllm.checks import is_finite_number, not_utf8
from routerllm.data import as_path, read_json, read_json_lines
from routerllm.exceptions import DataError
from routerllm.files import publish, staged, written_atomically
from routerllm.path_checks import file_in_the_way, refuse_unwritable_folder, what_is

CLASS_NAMES: tuple[str, ...] = (
    "code_generation",
    "text_generation",
    "general_purpose",
    "lightweight",
)
NUM_CLASSES = len(CLASS_NAMES)
#: Tier each class is served by when no configured model carries that class_id.
CLASS_TIERS: tuple[str, ...] = ("heavy", "medium", "medium", "light")
#: The files a written dataset is made of, ``<name>.json`` each.
SPLIT_FILES: tuple[str, ...] = ("full", "train", "val", "test")


@dataclass(frozen=True)
class LabeledPrompt:
    text: str
    label: int
    category: str = ""
    source: str = ""


def _problem(text: object, label: object) -> str | None:
    """Why (``text``, ``label``) is not a labelled prompt; None where it is one."""
    if not isinstance(text, str) or not text.strip():
        return f"text must be a non-empty string, got {text!r}"[:200]
    if (at := not_utf8(text)) is not None:
        return (
            f"text is not valid UTF-8 (a lone surrogate, such as JSON's \\ud800, at "
            f"character {at}); fix the file's text"
        )
    if not (is_finite_number(label) and float(label).is_integer() and 0 <= label < NUM_CLASSES):  # type: ignore[arg-type, operator]
        return f"label must be an integer in 0..{NUM_CLASSES - 1}, got {label!r}"
    return None


def save_json(items: Sequence[LabeledPrompt], path: str | Path) -> Path:
    """Write ``items`` as a labelled-prompt file, atomically; every item is checked first."""
    path = _checked(items, path)
    with _writing(path), written_atomically(path) as tmp:
        tmp.write_text(
            json.dumps([asdict(i) for i in items], ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return path


def save_splits(parts: Mapping[str, Sequence[LabeledPrompt]], out: Path) -> dict[str, Path]:
    """Write each part as ``out/<name>.json`` (as :func:`save_json`), all or none: each
    is staged first, then all are renamed in place, so a run stopped part-way (Ctrl-C)
    leaves the splits that were there, never new ones beside old ones. Ctrl-C while
    they are renamed is raised once all are in place; an OS error renaming one is a
    DataError that says which are new and which are not."""
    from routerllm.backends.interrupts import deferred_interrupts

    paths = {name: _checked(items, out / f"{name}.json") for name, items in parts.items()}
    with contextlib.ExitStack() as stack:
        tmps = {}
        for name, items in parts.items():
            with _writing(paths[name]):
                tmps[name] = stack.enter_context(staged(paths[name]))
                text = json.dumps([asdict(i) for i in items], ensure_ascii=False, indent=1)
                tmps[name].write_text(text, encoding="utf-8")
        with deferred_interrupts():
            for i, (name, tmp) in enumerate(tmps.items()):
                try:
                    publish(tmp, paths[name])
                except OSError as e:
                    raise _not_all_published(paths, i, e) from e
    return paths


def _not_all_published(paths: Mapping[str, Path], failed: int, e: OSError) -> DataError:
    """The error of a split that could not be renamed in place, after ``failed`` others
    were: which files are new and which are not (their staged copies are removed), so
    the folder's mix of two datasets is said, not found later as leaked test prompts."""
    names = [p.name for p in paths.values()]
    target = list(paths.values())[failed]
    why = f"cannot put {target} in place: {e.strerror or e}"
    if not failed:
        return DataError(f"{why}; {target.parent} holds the split files it held before")
    old = [p.name for p in list(paths.values())[failed:] if p.exists()]
    missing = [name for name in names[failed:] if name not in old]
    rest = ([f"beside the earlier {', '.join(old)}"] if old else []) + (
        [f"without {', '.join(missing)}"] if missing else []
    )
    return DataError(
        f"{why}; {target.parent} now holds the new {', '.join(names[:failed])} "
        f"{' and '.join(rest)} (not one dataset: do not train or test on them): write all "
        f"the splits again, replacing these, once that is fixed"
    )


def _checked(items: Sequence[LabeledPrompt], path: str | Path) -> Path:
    """``path`` as a Path, once every item is a labelled prompt and it is no folder."""
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise DataError(f"items must be a list of LabeledPrompt, got {type(items).__name__}")
    for i, item in enumerate(items):
        why = (
            _problem(item.text, item.label)
            if isinstance(item, LabeledPrompt)
            else f"expected a LabeledPrompt, got {type(item).__name__}"
        )
        if why:
            raise DataError(f"items[{i}]: {why}; nothing was written")
    path = as_path(path, "a labelled-prompt file")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the path of a .json file")
    return path


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OS error writing ``path`` as one DataError naming it."""
    try:
        yield
    except FileExistsError as e:  # a file where one of the path's folders should be
        raise DataError(f"cannot write {path}: {e.filename} exists and is not a directory") from e
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror or e}") from e


def refuse_replacing_splits(
    out: Path, overwrite: bool, folder: str = "out_dir", flag: str = "overwrite=True"
) -> None:
    """A clear error when ``out`` already holds a split file and ``overwrite`` is not
    set: they may be the user's own, hand-made splits. ``folder`` and ``flag`` name
    the folder and the way to allow replacing them (an argument, a CLI option).
    A file where ``out`` or a folder above it goes, or a folder where nothing can be
    created, is refused too: before the work, which may read a large file, not when the
    first split is written."""
    if (nearest := file_in_the_way(out)) is not None:
        raise DataError(
            f"{folder} {out}: {nearest} is {what_is(nearest)}, not a directory; choose "
            f"another {folder}"
        )
    refuse_unwritable_folder(out, f"{folder} {out}", "nothing was written", DataError)
    if folders := [f"{k}.json" for k in SPLIT_FILES if (out / f"{k}.json").is_dir()]:
        raise DataError(
            f"{folder} {out} holds a folder named {folders[0]}, where a split file goes: "
            f"choose another {folder}"
        )  # found now, before any split is written, not after the first ones
    existing = [f"{k}.json" for k in SPLIT_FILES if (out / f"{k}.json").exists()]
    if existing and not overwrite:
        raise DataError(
            f"{folder} {out} already holds {', '.join(existing)}: add {flag} to replace "
            f"them, or choose another {folder}"
        )


def load_json(path: str | Path) -> list[LabeledPrompt]:
    """Read a labelled-prompt file: a JSON list of ``{text, label}`` objects, or one
    object a line where its name ends in ``.jsonl`` (JSON Lines); a malformed file is one
    clear DataError naming the item (the line) at fault."""
    if str(path).lower().endswith(".csv"):  # outcome files are read by suffix: .csv RouterBench
        raise DataError(
            f"{path} is a CSV file, read as outcome data (RouterBench), not labelled prompts "
            "(a JSON list of {text, label}): the outcome routers train on it (routerllm train "
            "--router quality, logreg, knn, ...) and routerllm eval-routing evaluates them on it"
        )
    if str(path).lower().endswith(".jsonl"):
        rows = [(f"line {n}", row) for n, row in read_json_lines(path)]
    else:
        raw = read_json(path)
        if not isinstance(raw, list):
            raise DataError(f"{path}: expected a JSON list of {{text, label}} objects")
        # the file's first item is item 1, as outcome files'
        rows = [(f"item {i}", row) for i, row in enumerate(raw, 1)]
    items = []
    for i, row in rows:
        if not isinstance(row, dict) or "text" not in row or "label" not in row:
            if isinstance(row, dict) and {"question", "scores"} <= row.keys():
                raise DataError(
                    f"{path} holds outcome data ({{question, scores}}), not labelled prompts "
                    "({text, label}): the outcome routers train on it (routerllm train "
                    "--router quality, logreg, knn, ...) and routerllm eval-routing "
                    "evaluates them on it"
                )
            raise DataError(f"{path}: {i} needs `text` and an integer `label`")
        if why := _problem(row["text"], row["label"]):
            raise DataError(f"{path}: {i}: {why}")
        items.append(LabeledPrompt(row["text"], int(row["label"]), *_tags(row, f"{path}: {i}")))
    return items


def _tags(row: dict[str, object], where: str) -> tuple[str, str]:
    """A row's category and source: absent or null (pandas' missing value) is empty, not
    the word "None"; anything but text is refused rather than written back as its repr."""
    tags = []
    for key in ("category", "source"):
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where}: {key} must be a string (or null), got {value!r}"[:300])
        tags.append(value or "")
    return tags[0], tags[1]
