"""Checks of a run's stored answers, kept for later calls: ``routerllm train-gate`` runs
each answer of the gate's first model on its prompt's examples in the sandbox
(``prompt_examples.verify_completion``: a process each, serially), and what the checks
cost counts against the gate's budget. A run's answers never change once stored, so each
check's verdict is kept, with what measuring it cost, in
``$ROUTERLLM_CACHE/answer_checks.json`` (:data:`CHECKS_FILE`), and a later call on the
same answers (another budget, fold count, seed or subset) reads it there and bills what it
cost when it was measured.

An entry is found by everything that can change a verdict (:func:`answer_key`): the
prompt, the entry point and the answer's text; the packages the check may import (each
one's name, path and stat, so an upgrade is another key); the check's timeout; the
verifier's own code (the source of the modules that read the examples and run the sandbox:
any change to them, a limit included, is another key); the interpreter and the machine
(its host name and kernel, on which the sandbox's isolation depends), and the method the
call's meter measures with (``CarbonMeter.method``: CodeCarbon's, tracking mode included,
or ``none`` with carbon tracking off).

What a check cost: the checks run now are measured in one block, as before, and the
block's energy is shared between them in proportion to each one's duration; each entry
keeps its share, its duration and the method. An entry serves only a call whose meter
measures with that same method, and is billed its share: a kept check costs the budget
what measuring it cost, never less. Blocks CodeCarbon failed to measure are not kept
(their checks are run, and measured, again by the next call).

The store is a convenience, per machine: missing, damaged (unreadable, not JSON, another
format, an entry that is not one this module wrote: each entry carries a digest of its
key and fields), or not writable (a read-only home), it costs a check, never a verdict
or a traceback. It keeps at most :data:`MAX_ENTRIES` (the oldest dropped first). Two
processes writing at once each replace it whole (``files.keep_json``): one's new entries
may be lost (checked again later), neither corrupts it. A run folder is only read: its
checks are kept here, not beside its answers (a run given as training data is never
written to, may be read-only, and may be copied to a machine whose sandbox and power
differ).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.checks import is_non_negative_number

if TYPE_CHECKING:
    from routerllm.carbon.meter import CarbonMeter, Measurement

log = logging.getLogger(__name__)

#: The store's file, in ``$ROUTERLLM_CACHE``.
CHECKS_FILE = "answer_checks.json"
#: The store's format: a store of another is not read (and is replaced when written).
CHECKS_FORMAT = 1
#: The most checks the store keeps (the oldest dropped first): 30 HumanEval runs' worth.
MAX_ENTRIES = 5000
#: The modules whose code gives a check's verdict: reading the examples, building the
#: checking program, and the sandbox that runs it (its limits included).
VERIFIER_MODULES = (
    "routerllm.eval.prompt_examples", "routerllm.eval.codegen", "routerllm.quiet_compile",
    "routerllm.eval.sandbox", "routerllm.eval.sandbox_entry", "routerllm.eval.sandbox_runner",
    "routerllm.eval.sandbox_isolation", "routerllm.eval.sandbox_packages",
    "routerllm.eval.sandbox_folders", "routerllm.eval.sandbox_userns",
)  # fmt: skip
_VERDICTS = ("passed", "failed", "unverifiable")


@dataclass(frozen=True)
class KeptCheck:
    """One answer's check as kept: its verdict, its duration and its share of the measured
    block's energy, measured with ``method``."""

    verdict: str
    seconds: float
    kwh: float
    method: str

    @property
    def unverified(self) -> bool:
        """As ``Verification.unverified``: not shown correct."""
        return self.verdict != "passed"


@dataclass(frozen=True)
class CheckedAnswers:
    """The answers' checks (:func:`check_answers`): whether each is unverified, the block
    that measured the checks run now (None where every one was kept), and how many were
    kept, with the kWh they are billed (what measuring them cost)."""

    unverified: np.ndarray
    now: Measurement | None
    kept: int
    kept_kwh: float


def cache_file() -> Path:
    """Where the checks are kept for later processes."""
    from routerllm.paths import cache_root

    return cache_root() / CHECKS_FILE


def check_answers(
    prompts: Sequence[str],
    entry_points: Sequence[str],
    completions: Sequence[str],
    meter: CarbonMeter,
    packages: Sequence[str] = (),
    timeout_s: float = 5.0,
) -> CheckedAnswers:
    """Each answer ``completions[i]`` checked on the examples of ``prompts[i]`` (its
    function ``entry_points[i]``) in the sandbox, as ``verify_completion`` checks it with
    ``packages`` and ``timeout_s``, or read from the store where it was checked before
    with a meter of ``meter``'s method; the checks run now are measured by ``meter`` in
    one block (none where all are kept), and kept."""
    from routerllm.eval.prompt_examples import verify_completion

    method = meter.method
    keys = [
        answer_key(p, e, c, packages, timeout_s, method)
        for p, e, c in zip(prompts, entry_points, completions, strict=True)
    ]
    found = _kept([k for k in keys if k is not None], method)
    todo = [i for i, key in enumerate(keys) if key is None or key not in found]
    checked: dict[int, tuple[str, float]] = {}
    now = None
    if todo:
        with meter.measure("router_inference") as slot:
            for i in todo:
                start = time.perf_counter()
                verdict = verify_completion(prompts[i], entry_points[i], completions[i],
                                            timeout_s, packages)  # fmt: skip
                checked[i] = verdict.verdict, time.perf_counter() - start
        now = slot.result
        fresh = _shares(checked, now, method)
        _keep({key: fresh[i] for i in fresh if (key := keys[i]) is not None})
    unverified, kept_kwh = [], 0.0
    for i, key in enumerate(keys):
        if i in checked:
            unverified.append(checked[i][0] != "passed")
        elif key is not None:
            entry = found[key]
            unverified.append(entry.unverified)
            kept_kwh += entry.kwh
    kept = len(keys) - len(checked)
    return CheckedAnswers(np.array(unverified, dtype=bool), now, kept, kept_kwh)


def _shares(
    checked: dict[int, tuple[str, float]], block: Measurement, method: str
) -> dict[int, KeptCheck]:
    """The checks run in ``block`` as kept: each with its share of the block's energy, in
    proportion to its duration; none where the block was not measured as ``method`` says
    (CodeCarbon failed: kept, they would be billed nothing)."""
    if block.method != method:
        return {}
    total = sum(s for _, s in checked.values())
    n = len(checked)
    return {
        i: KeptCheck(verdict, s, block.energy_kwh * (s / total if total > 0 else 1 / n), method)
        for i, (verdict, s) in checked.items()
    }


def answer_key(
    prompt: str,
    entry_point: str,
    completion: str,
    packages: Sequence[str],
    timeout_s: float,
    method: str,
) -> str | None:
    """The store's key of checking ``completion`` on ``prompt``'s examples as
    :func:`check_answers` does, measured with ``method``; None where the verifier's code
    cannot be read (then nothing is kept: a change to it would go unseen)."""
    verifier = verifier_digest()
    if verifier is None:
        return None
    shape = {
        "answer": [prompt, entry_point, completion],
        "packages": _packages_identity(tuple(packages)),
        "timeout_s": float(timeout_s),
        "verifier": verifier,
        "python": [sys.version, sys.executable, os.geteuid() == 0],
        "machine": [platform.node(), platform.release()],
        "method": method,
    }
    text = json.dumps(shape, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@functools.cache
def verifier_digest() -> str | None:
    """The sha256 of the source of :data:`VERIFIER_MODULES` (read once a process); None
    where one cannot be read (an install without sources)."""
    digest = hashlib.sha256()
    for name in VERIFIER_MODULES:
        spec = find_spec(name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return None
        try:
            digest.update(Path(spec.origin).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def _packages_identity(packages: tuple[str, ...]) -> list[list[str]]:
    """Each package's name, the paths the sandbox links for it and their stat: another
    version installed is another identity."""
    if not packages:
        return []
    from routerllm.eval.sandbox_packages import package_links, package_names
    from routerllm.files_identity import files_stamp

    names = package_names(packages)
    identity = []
    for name in names:
        targets = [target for _, target in package_links(name)]
        identity.append([name, *map(str, targets), files_stamp(targets)])
    return identity


def _kept(keys: Sequence[str], method: str) -> dict[str, KeptCheck]:
    """The store's entries of ``keys`` that are whole and measured with ``method``."""
    wanted = set(keys)
    if not wanted:
        return {}
    entries = _entries()
    found = {}
    for key in wanted & entries.keys():
        if (check := _decoded(key, entries[key], method)) is not None:
            found[key] = check
    return found


def _keep(new: dict[str, KeptCheck]) -> None:
    """``new`` checks added to the store (read again now: another process may have added
    its own), the oldest dropped beyond :data:`MAX_ENTRIES`; nothing where it cannot be
    written (the next call checks them again)."""
    if not new:
        return
    from routerllm.files import keep_json

    entries = {k: e for k, e in _entries().items() if k not in new}
    entries |= {key: _encoded(key, check) for key, check in new.items()}
    data = {"format": CHECKS_FORMAT, "checks": dict(list(entries.items())[-MAX_ENTRIES:])}
    if (error := keep_json(cache_file, data, separators=(",", ":"))) is not None:
        log.debug("the checks of %d answers were not kept: %s", len(new), error)


def _entries() -> dict[str, Any]:
    """The store's entries by key ({} where it is missing, damaged or of another format)."""
    from routerllm.files import read_kept_entries

    return read_kept_entries(cache_file, CHECKS_FORMAT, "checks")


def _fields(check: KeptCheck) -> dict[str, Any]:
    return {"verdict": check.verdict, "seconds": check.seconds, "kwh": check.kwh,
            "method": check.method}  # fmt: skip


def _digest(key: str, fields: dict[str, Any]) -> str:
    """What tells an entry this module wrote from one changed since (a bit flipped, a
    file edited or mixed with another): its key and fields hashed."""
    text = json.dumps([key, fields], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _encoded(key: str, check: KeptCheck) -> dict[str, Any]:
    fields = _fields(check)
    return fields | {"digest": _digest(key, fields)}


def _decoded(key: str, entry: Any, method: str) -> KeptCheck | None:
    """The check an entry holds; None where it is not one :func:`_encoded` wrote for
    ``key``, measured with ``method``."""
    if not isinstance(entry, dict) or set(entry) != {"verdict", "seconds", "kwh", "method", "digest"}:  # fmt: skip
        return None
    verdict, seconds, kwh = entry["verdict"], entry["seconds"], entry["kwh"]
    if verdict not in _VERDICTS or entry["method"] != method:
        return None
    if not (is_non_negative_number(seconds) and is_non_negative_number(kwh)):
        return None
    check = KeptCheck(verdict, float(seconds), float(kwh), method)
    if entry["digest"] != _digest(key, _fields(check)):
        return None
    return check
