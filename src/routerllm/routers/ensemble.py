"""The ensemble router (MISSION M3.6): every member router votes, most votes wins.

Members are registered routers, built by name for the ensemble's models, or saved
routers, loaded from the folder they were saved in (a path, relative to the working
directory, ``~`` the home folder, as ``router.path`` is)::

    router:
      name: ensemble
      options:
        members: [rules, complexity, {path: runs/quality}]
        # or {name: knn, options: {k: 20}, weight: 2}: a member's options and weight

Each member routes the batch among the allowed models it knows (its own masking
and fallbacks apply); a member that knows none of them abstains. The model with
the most votes (each member's weight, default 1) wins; a tie goes to the model
whose voters are the more confident (their weighted mean confidence), then to the
smaller model. The decision's confidence is the winner's share of the votes cast.

An ensemble is saved self-contained: each member in a subfolder of its folder
(``members-<k>/<i>-<name>``, written before the ensemble's ``config.json`` and the
previous ones removed after it, so an interrupted save leaves the previous
ensemble whole; a save holds the folder's lock, so two at once leave the last one's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import is_positive_number
from routerllm.exceptions import RouterLLMError, UnknownNameError
from routerllm.path_checks import refuse_special_file
from routerllm.routers.base import (
    CandidateModel,
    Router,
    RoutingDecision,
    create_router,
    locked_router_folder,
    prompt_list,
)
from routerllm.routers.saved import load_router

EXAMPLE = "[rules, complexity, {path: runs/quality}]"
MEMBER_KEYS = ("name", "options", "path", "weight")
#: The largest member weight (a sum of far larger ones would overflow).
MAX_WEIGHT = 1e6
#: Votes or mean confidences this close are a tie (weights are floats).
TIE_TOL = 1e-9
_MEMBERS_FOLDER = re.compile(r"members-\d+")


@dataclass(frozen=True)
class Member:
    """One voter: a router, its weight, and what the reasons call it."""

    router: Router
    weight: float
    label: str


class EnsembleRouter(Router):
    """Majority vote of its member routers; ties by mean confidence, then the smaller model."""

    name = "ensemble"

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        members: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(models, seed)
        specs = _member_specs(members)
        built = [_build(spec, i, self.models, self.seed) for i, spec in enumerate(specs, 1)]
        names = [router.name for router, _ in built]
        self.members = [
            Member(router, weight, _label(names, i)) for i, (router, weight) in enumerate(built)
        ]
        # The ensemble routes to the models some member routes to.
        known = {n for router, _ in built for n in router.model_names}
        self.models = [m for m in self.models if m.name in known]
        self.model_names = [m.name for m in self.models]
        self.options = {"members": [_described(router, w) for router, w in built]}
        self._saved_folder: str | None = None

    def warm_up(self, prompt: str) -> None:
        for member in self.members:
            member.router.warm_up(prompt)

    # -- voting ------------------------------------------------------------
    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """Each model's share of the votes (rows sum to 1); ``route_batch`` breaks ties
        by mean confidence, which the shares alone do not show."""
        prompts = prompt_list(prompts)
        votes, _, _ = self._vote(prompts, np.ones(len(self.models), dtype=bool))
        return votes / votes.sum(axis=1, keepdims=True)

    def route_batch(
        self, prompts: Sequence[str], allowed: Sequence[str] | None = None
    ) -> list[RoutingDecision]:
        prompts = prompt_list(prompts)
        mask = self._mask(allowed)
        votes, weighted_confidence, ballots = self._vote(prompts, mask)
        mean_confidence = np.divide(
            weighted_confidence, votes, out=np.zeros_like(votes), where=votes > 0
        )
        decisions = []
        for i in range(len(prompts)):
            row, means = votes[i], mean_confidence[i]
            tied = np.flatnonzero(row >= row.max() - TIE_TOL * max(1.0, row.max()))
            best = tied[means[tied] >= means[tied].max() - TIE_TOL]
            j = int(best[0])  # models are sorted smallest first
            decisions.append(
                RoutingDecision(
                    model=self.model_names[j],
                    confidence=float(row[j] / row.sum()),
                    reason=self._reason(
                        j, row, means, tied, [None if b is None else b[i] for b in ballots]
                    ),
                    router=self.name,
                    scores={
                        n: float(v / row.sum()) for n, v in zip(self.model_names, row, strict=True)
                    },
                )
            )
        return decisions

    def _vote(
        self, prompts: list[str], mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[list[RoutingDecision] | None]]:
        """(votes, weight x confidence summed, each member's decisions or None where it
        abstained), the first two (n, m) over the ensemble's models."""
        allowed = [n for n, ok in zip(self.model_names, mask, strict=True) if ok]
        column = {n: j for j, n in enumerate(self.model_names)}
        votes = np.zeros((len(prompts), len(self.models)))
        confidence = np.zeros_like(votes)
        ballots: list[list[RoutingDecision] | None] = []
        for member in self.members:
            theirs = [n for n in allowed if n in member.router.model_names]
            if not theirs:
                ballots.append(None)
                continue
            try:
                decisions = member.router.route_batch(prompts, theirs)
            except RouterLLMError:
                raise  # already a clear error (a missing package, an unknown model)
            except Exception as e:
                # A bug in the member, not the user's mistake: its own traceback (the
                # CLI's status 1, the server's logged 500), the member named beneath it.
                if hasattr(e, "add_note"):  # Python 3.11+
                    e.add_note(f"(in ensemble member {member.label}, routing {len(prompts)} prompt(s))")  # fmt: skip
                raise
            for i, d in enumerate(decisions):
                if d.model not in theirs:
                    raise RouterLLMError(
                        f"ensemble member {member.label} chose {d.model!r}, not one of the "
                        f"models it was allowed ({', '.join(theirs)}): fix that router"
                    )
                votes[i, column[d.model]] += member.weight
                confidence[i, column[d.model]] += member.weight * float(d.confidence)
            ballots.append(decisions)
        return votes, confidence, ballots

    def _reason(
        self,
        j: int,
        votes: np.ndarray,
        means: np.ndarray,
        tied: np.ndarray,
        ballots: list[RoutingDecision | None],
    ) -> str:
        """E.g. "2 of 3 routers voted for big (rules, knn); quality voted small"."""
        winner = self.model_names[j]
        weighted = any(m.weight != 1 for m in self.members)
        by_model: dict[str, list[str]] = {}
        abstained = []
        for member, ballot in zip(self.members, ballots, strict=True):
            if ballot is None:
                abstained.append(member.label)
            else:
                mark = f" x{member.weight:g}" if weighted else ""
                by_model.setdefault(ballot.model, []).append(member.label + mark)
        unit = "votes for" if weighted else "routers voted for"
        parts = [
            f"{votes[j]:g} of {votes.sum():g} {unit} {winner} ({', '.join(by_model.pop(winner))})"
        ]
        parts += [f"{', '.join(labels)} voted {model}" for model, labels in by_model.items()]
        if len(tied) > 1:
            means_text = ", ".join(f"{self.model_names[k]} {means[k]:.2f}" for k in tied)
            level = sum(means[k] >= means[j] - TIE_TOL for k in tied) > 1
            parts.append(
                f"tie broken by the voters' mean confidence ({means_text})"
                + (", then by the smaller model" if level else "")
            )
        if abstained:
            parts.append(f"{', '.join(abstained)} abstained (none of its models available)")
        return "; ".join(parts)

    # -- persistence ---------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return all(m.router.is_trained for m in self.members)

    def save_parts(self, directory: Path) -> dict[str, Any]:
        """Save every member into a new ``members-<k>`` subfolder; the options record
        their paths relative to ``directory``."""
        k = 1
        while (directory / f"members-{k}").exists():
            k += 1
        folder = f"members-{k}"
        saved = []
        for i, member in enumerate(self.members):
            sub = f"{folder}/{i + 1}-{member.router.name}"
            member.router.save(directory / sub)
            saved.append({"path": sub} | ({} if member.weight == 1 else {"weight": member.weight}))
        self._saved_folder = folder
        return {"members": saved}

    def save(self, directory: str | Path) -> Path:
        """Save the ensemble and its members (see the module doc) into ``directory``,
        holding the folder's lock: a save there from another process or thread waits,
        rather than remove this one's members as an earlier save's."""
        if not self.is_trained or not isinstance(directory, str | os.PathLike) or not os.fspath(directory).strip():  # fmt: skip
            return super().save(directory)  # its clear errors
        for member in self.members:  # a router object given may know models we lack
            if extra := [n for n in member.router.model_names if n not in self.model_names]:
                raise RouterLLMError(
                    f"cannot save the ensemble: member {member.label} routes to "
                    f"{', '.join(extra)} too, which the ensemble's models "
                    f"({', '.join(self.model_names)}) lack, so it would not load with them; "
                    f"build that member for the ensemble's models"
                )
        path = Path(directory)
        with locked_router_folder(path):
            super().save(path)
            for old in path.iterdir():  # earlier saves' members, no longer referenced
                if old.is_dir() and _MEMBERS_FOLDER.fullmatch(old.name) and old.name != self._saved_folder:  # fmt: skip
                    shutil.rmtree(old, ignore_errors=True)
        return path

    @classmethod
    def saved_options(cls, directory: Path, options: dict[str, Any]) -> dict[str, Any]:
        members = options.get("members")
        if not isinstance(members, list):
            return options  # the constructor says what is wrong
        return options | {
            "members": [
                {**m, "path": _member_folder(directory, m["path"])}
                if isinstance(m, Mapping) and isinstance(m.get("path"), str)
                else m
                for m in members
            ]
        }


def _member_folder(directory: Path, path: str) -> str:
    """A saved ensemble's member ``path`` (relative to ``directory``, as ``save`` writes
    it), refused where it leads out of ``directory`` (``..``, an absolute path, a link):
    an ensemble downloaded so made loaded a router from elsewhere on this machine."""
    folder = directory / path
    if not folder.resolve().is_relative_to(directory.resolve()):
        raise RouterLLMError(
            f"{directory / 'config.json'}: ensemble member path {path!r:.100} is outside the "
            f"ensemble's folder, where a saved ensemble keeps its members: not loaded"
        )
    return str(folder)


def _member_specs(members: Any) -> list[Any]:
    if members is None:
        raise RouterLLMError(
            f"the ensemble router needs `members`, the routers that vote: e.g. "
            f"options: {{members: {EXAMPLE}}}"
        )
    if isinstance(members, str | bytes | Mapping) or not isinstance(members, Sequence):
        raise RouterLLMError(
            f"ensemble `members` must be a list of routers, each a registered name or "
            f"{{path: <folder of a saved router>}}, e.g. {EXAMPLE}; got {members!r:.100}"
        )
    if len(members) < 2:
        raise RouterLLMError(
            f"an ensemble needs at least 2 members to vote, got {len(members)}: add "
            f"another, or use that router alone"
        )
    return list(members)


def _build(spec: Any, i: int, models: Sequence[CandidateModel], seed: int) -> tuple[Router, float]:
    """Member ``i``'s router, built or loaded for ``models``, and its weight."""
    where = f"ensemble member {i}"
    if isinstance(spec, Router):  # the Python API
        router, weight = spec, 1.0
        ours = [m.name for m in models]
        if not set(router.model_names) & set(ours):
            raise RouterLLMError(
                f"{where} ({router.name}) routes to {', '.join(router.model_names)}, none of "
                f"which is among the ensemble's models ({', '.join(ours)}): build it for them"
            )
    else:
        spec = {"name": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, Mapping):
            raise RouterLLMError(
                f"{where} must be a router's name or {{path: <folder of a saved router>}}, "
                f"got {spec!r:.100}"
            )
        if unknown := sorted(str(k) for k in spec if k not in MEMBER_KEYS):
            raise RouterLLMError(
                f"{where}: unknown key(s) {', '.join(unknown)}; a member is a router's name, "
                f"{{name: ..., options: {{...}}, weight: ...}} or {{path: ..., weight: ...}}"
            )
        weight = spec.get("weight", 1.0)
        if not (is_positive_number(weight) and weight <= MAX_WEIGHT):
            raise RouterLLMError(f"{where}: weight must be a number > 0 and at most {MAX_WEIGHT:g}, got {weight!r:.60}")  # fmt: skip
        router = _routed(spec, where, models, seed)
    if isinstance(router, EnsembleRouter):
        raise RouterLLMError(
            f"{where} is an ensemble: an ensemble may not contain an ensemble; list that "
            f"ensemble's members instead"
        )
    if not router.is_trained:
        raise RouterLLMError(
            f"{where} ({router.name}) is not trained: give a saved one as {{path: <folder>}} "
            f"(e.g. routerllm train --router {router.name} ... --out <folder>)"
        )
    return router, float(weight)


def _routed(
    spec: Mapping[str, Any], where: str, models: Sequence[CandidateModel], seed: int
) -> Router:
    """The router a member's mapping names or points at."""
    from routerllm.registry import ROUTERS

    if ("name" in spec) == ("path" in spec):
        raise RouterLLMError(
            f"{where}: give a router's `name` or the `path` of a saved router (one of them), "
            f"got {dict(spec)!r:.100}"
        )
    try:
        if "path" in spec:
            if "options" in spec:
                raise RouterLLMError(
                    "`options` go with a router's name; a saved router (path) keeps the "
                    "options it was saved with"
                )
            return load_router(_saved_folder(spec["path"]), models)
        name, options = spec["name"], spec.get("options", {})
        if name == EnsembleRouter.name:
            raise RouterLLMError(
                "an ensemble may not contain an ensemble; list that ensemble's members instead"
            )
        if not isinstance(name, str) or name not in ROUTERS:
            valid = [n for n in ROUTERS.names() if n != EnsembleRouter.name]
            raise UnknownNameError("ensemble member router", str(name), valid)
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise RouterLLMError(f"`options` must map option names to values, got {options!r:.100}")
        return create_router(name, models, seed, **options)
    except RouterLLMError as e:
        if type(e) is not RouterLLMError:  # a missing package or model, an unknown name
            raise
        raise RouterLLMError(f"{where}: {e}") from e


def _saved_folder(path: Any) -> Path:
    """``path`` as the folder of a saved router that is not an ensemble."""
    if isinstance(path, os.PathLike):  # the Python API: what Router.save returns
        path = os.fspath(path)
    if not isinstance(path, str) or not path.strip():
        raise RouterLLMError(f"`path` must be the folder of a saved router, got {path!r:.100}")
    folder = Path(path).expanduser()  # ~ is the home folder, as in router.path
    refuse_special_file(folder / "config.json", "give the folder of a saved router")
    if not (folder / "config.json").is_file():
        raise RouterLLMError(
            f"no saved router at {folder} (no {folder / 'config.json'}): train one there "
            f"(routerllm train ... --out {folder}) or fix the path"
        )
    try:  # checked before loading: a saved ensemble may list itself
        nested = (
            json.loads((folder / "config.json").read_text(encoding="utf-8")).get("router")
            == "ensemble"
        )
    except (OSError, ValueError, AttributeError, RecursionError):  # nested too deeply too
        nested = False  # load_router says what is wrong with it
    if nested:
        raise RouterLLMError(
            f"{folder} is a saved ensemble: an ensemble may not contain an ensemble; list "
            f"its members instead"
        )
    return folder


def _label(names: list[str], i: int) -> str:
    """A member's name, numbered where two members share it (knn#1, knn#2)."""
    if names.count(names[i]) == 1:
        return names[i]
    return f"{names[i]}#{names[:i].count(names[i]) + 1}"


def _described(router: Router, weight: float) -> dict[str, Any]:
    """A member as the options describe it (``save`` records saved paths instead)."""
    out: dict[str, Any] = {"name": router.name}
    if router.options:
        out["options"] = router.options
    return out | ({} if weight == 1 else {"weight": weight})
