"""Feedback on a routed system's answers (``RouterLLM.feedback``).

The system remembers, in memory, the last ``MAX_REMEMBERED`` requests its routers
routed: the model that answered, the router and, where the router will be taught
the score, the prompt's embedding as the router saw it when it routed (taken from
that routing, not encoded again). With ``router.learn: true`` and a request log
open for writing, the configured router's requests are also kept in the log's
``pending_feedback`` table (the embedding, never the prompt, and the router's folder,
``router.path`` resolved; the newest ``MAX_REMEMBERED`` of each folder), so that a
later process with that ``router.path``, after a restart, can still learn their
scores; another folder's router sharing the log does not. A score in [0, 1] is written
to the log's ``feedback`` table at once (so none is lost; once per request, whichever
process gives it), and, where the config says ``router.learn: true``, taught to the
router that routed it (``learn``). A process with ``learn: false`` leaves a kept
request's row with its score; the next learning process of that folder to open while
no other runs learns it (``learn_scored``; each once). The configured router loaded from ``router.path``
is then saved back there every ``SAVE_EVERY`` scores it learned and when the system
closes (``Router.save`` writes beside the files and renames them into place; a
``FeedbackRouter`` adds what other processes saved there meanwhile). A kept request's
row stays until a save holds what was learned from it, so a process that ends before
its save loses nothing: the next learner of the folder to open while no other runs
learns those rows again (``learn_scored``). Feedback may arrive from several threads
at once (the server's): one lock orders it.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from routerllm.backends.interrupts import CANCELLED
from routerllm.carbon.log_rows import FAILED, REFUSED, PendingRequest
from routerllm.checks import is_finite_number, not_utf8
from routerllm.exceptions import (
    ConfigError,
    PromptError,
    RequestLogError,
    RouterLLMError,
    UnknownRequestError,
)
from routerllm.files import present_in

if TYPE_CHECKING:
    from routerllm.carbon.request_log import RequestLog
    from routerllm.config import AppConfig
    from routerllm.routers.base import Router, RoutingDecision

logger = logging.getLogger(__name__)

#: How many routed requests the system remembers for feedback (in memory, and in the
#: request log's pending_feedback table).
MAX_REMEMBERED = 10_000
#: How many learned scores the configured router is saved after (and when closing).
SAVE_EVERY = 100
#: The finish reasons of answers that are not a model's whole answer, and so are not
#: rated: a score would teach the router how a model did on what it was not let finish
#: (cancelled half-way, its caller gone) or never gave (an endpoint's failure).
#: A request the budgets refused once it was routed (logged for its routing) has none.
UNRATEABLE = {CANCELLED: "was cancelled half-way", FAILED: "failed", REFUSED: "was refused by the budgets before any model ran"}  # fmt: skip


@dataclass
class Routed:
    """What feedback on one routed request needs: the model that answered, the router,
    whether it learns, and the prompt's embedding to teach it (kept only where it will
    be taught)."""

    model: str
    router: Router
    learns: bool
    embedding: np.ndarray | None = None
    rated: bool = False
    #: its finish reason where that says it is no whole answer (``UNRATEABLE``): not rated
    cut: str = ""
    #: the caller's ``on_text`` or ``on_answer`` raised as it was given: not rated either
    by_caller: bool = False
    #: the request whose answer it is, where it came from the request cache: rated as
    #: that one, so that one answer is learned once however often the cache served it
    answer_of: str = ""


def learns(router: Router) -> bool:
    """Whether ``router`` learns from feedback on its answers (a ``FeedbackRouter``):
    it learns from embeddings and routes giving the embeddings it routed on."""
    return callable(getattr(router, "learn", None)) and callable(
        getattr(router, "route_batch_embedded", None)
    )


class FeedbackLoop:
    """Remembers routed requests, stores their scores and teaches their routers."""

    def __init__(self, router: Router, learn: bool, save_to: str | None = None) -> None:
        """``router`` is the system's own, saved to ``save_to`` (its ``router.path``)
        as it learns, when ``learn``."""
        self.router, self.learn, self.save_to = router, learn, save_to
        # whose requests are this router's in the request log: another router.path's are
        # not; and where it is saved (a relative router.path is the folder it was loaded
        # from, not one under a working folder changed since)
        self.folder = str(Path(save_to).resolve()) if save_to is not None else ""
        self._routed: OrderedDict[str, Routed] = OrderedDict()
        self._unsaved = 0  # scores learned since the last save point
        self._dirty = False  # learned something not saved yet
        self._lock = threading.Lock()
        # held while it learns (``learn_scored``): a kept request it learned keeps its row
        # until a save holds what it learned, and no other learner takes those rows
        self._presence: IO[str] | None = None
        self._learned: list[str] = []  # those requests, since the last save
        self._log: RequestLog | None = None

    @classmethod
    def of(cls, config: AppConfig, router: Router, configured: bool) -> FeedbackLoop:
        """The loop of a system routing with ``router`` (``configured``: the config's, not
        one given in code): with ``router.learn``, the router loaded from ``router.path``
        learns and is saved back there, and must be one that learns."""
        settings = config.router
        if settings.learn and configured and not learns(router):
            raise ConfigError(
                f"router.learn: true, but router {router.name!r} ({settings.path}) does not "
                f"learn from feedback; train a feedback router (routerllm train --router "
                f"feedback) and point router.path at it, or set router.learn: false"
            )
        return cls(router, settings.learn, settings.path if configured else None)

    def route(
        self, router: Router, prompts: Sequence[str], allowed: Sequence[str] | None
    ) -> tuple[list[RoutingDecision], np.ndarray | None]:
        """``router``'s decisions for ``prompts``, and where it will be taught their
        scores the embeddings it took them on (one row per prompt; else None)."""
        if self.learn and learns(router):
            decisions, embedded = router.route_batch_embedded(prompts, allowed)  # type: ignore[attr-defined]
            return decisions, np.asarray(embedded, dtype=np.float32)
        return router.route_batch(prompts, allowed), None

    def remember(
        self,
        request_id: str,
        model: str,
        router: Router,
        embedding: np.ndarray | None,
        log: RequestLog | None = None,
        finish_reason: str | None = None,
        cached_from: str = "",
        by_caller: bool = False,
    ) -> None:
        """Keep a routed request for feedback, forgetting the oldest beyond the bound;
        ``embedding`` is its prompt's as ``route`` gave it (None where it gave none). A
        request of the configured router that learns is also kept in ``log``
        (``keeps_in``); one whose ``finish_reason`` says it is no whole answer
        (``UNRATEABLE``) only in memory, to refuse its score by name, as one its caller
        cut (``by_caller``: its ``on_text`` or ``on_answer`` raised); so is one answered
        from the request cache (``cached_from``, the request whose answer it is), whose
        score is that request's (its answer is learned once)."""
        learning = learns(router)
        cut = finish_reason if finish_reason is not None and finish_reason in UNRATEABLE else ""
        kept = embedding if self.learn and learning and not cut and not by_caller else None
        with self._lock:
            self._routed[request_id] = Routed(model, router, learning, kept, cut=cut, by_caller=by_caller, answer_of=cached_from)  # fmt: skip
            while len(self._routed) > MAX_REMEMBERED:
                self._routed.popitem(last=False)
        if cached_from:  # the answer's own request is kept; a copy would learn it again
            return
        if kept is not None and router is self.router and self.keeps_in(log):
            assert log is not None
            encoder = str(getattr(router, "encoder_spec", ""))
            try:
                log.remember_pending(PendingRequest(request_id, model, router.name, encoder, kept, self.folder), MAX_REMEMBERED)  # fmt: skip
            except RequestLogError as e:  # the answer is given: it stays rateable here
                logger.warning("feedback on request %s can be given to this process only: %s", request_id, e)  # fmt: skip

    def keeps_in(self, log: RequestLog | None) -> bool:
        """Whether the configured router's requests are kept in ``log`` for feedback
        after a restart: it learns, and the log is open for writing."""
        return (
            self.learn
            and self.save_to is not None
            and log is not None
            and not log.read_only
            and learns(self.router)
        )

    def feedback(self, request_id: str, score: float, log: RequestLog) -> None:
        """Store ``score`` for the request in ``log``, and teach its router where the
        config says so."""
        if not isinstance(request_id, str) or not request_id.strip():
            raise PromptError(
                f"request_id must be the request_id of a routed answer (a text), got {request_id!r:.80}"  # fmt: skip
            )
        if (at := not_utf8(request_id)) is not None:  # the request log stores UTF-8
            raise PromptError(
                f"request_id is not valid UTF-8 text (undecodable at character {at}); "
                f"give the request_id of a routed answer",
                "request_id",
            )
        if not (is_finite_number(score) and 0 <= score <= 1):
            raise PromptError(
                f"score must be a number from 0 (failed) to 1 (solved), got {score!r:.80}"
            )
        with self._lock:
            routed = self._routed.get(request_id)
            if routed is None and self.keeps_in(log):
                routed = self._recalled(request_id, log)
            elif routed is None and not self.learn and (kept := log.pending(request_id)):
                # kept by a process that learned; this one only stores the score
                routed = Routed(kept.model, self.router, True)
            if routed is None and log.scored(request_id):  # e.g. before a restart
                raise PromptError(_RATED.format(_shown(request_id)))
            _check_rateable(request_id, routed)
            assert routed is not None
            # a copy from the request cache: its score is the answer's, stored as that of
            # the request that made it, so that the answer is learned once, not per copy
            answer = routed.answer_of or request_id
            original = self._routed.get(answer) if routed.answer_of else None
            if original is not None and original.rated:
                raise PromptError(_RATED.format(_shown(request_id)) + _copy_of(routed))
            if self.learn:
                _check_teachable(request_id, routed)
            # first: then it is never lost; refused where any process stored one already.
            # Not learned here, a kept request's row stays for a process that learns;
            # learned by a present learner, it stays until a save holds what it learned.
            stays = self.learn and self._presence is not None and routed.router is self.router
            kept_in = self.folder if stays else ""  # a row from before folders: now ours
            if not log.add_feedback(answer, float(score), self.learn and not stays, kept_in):
                raise PromptError(_RATED.format(_shown(request_id)) + _copy_of(routed))
            routed.rated = True
            if original is not None:
                original.rated = True
            if stays:
                self._log = log
                self._learned.append(answer)
            if self.learn:
                self._teach(routed, float(score))

    def _recalled(self, request_id: str, log: RequestLog) -> Routed | None:
        """The request as the log kept it for feedback (``remember``), for the configured
        router, or None; a clear error where another router folder's router routed it
        (not this one's to learn) or where this router could not learn it any more."""
        pending = log.pending(request_id)
        if pending is None:
            return None
        if pending.folder not in ("", self.folder):
            raise UnknownRequestError(
                f"request {_shown(request_id)!r} was routed by the router in {pending.folder}, "
                f"not by this system's (router.path {self.folder}): only a system with that "
                f"router.path can rate it; nothing was stored"
            )
        router = self.router
        encoder, dim = str(getattr(router, "encoder_spec", "")), getattr(router, "dim", None)
        if (pending.router, pending.encoder, len(pending.embedding)) != (router.name, encoder, dim):
            raise PromptError(
                f"request {_shown(request_id)!r} was routed by a {pending.router!r} router on "
                f"{len(pending.embedding)}-wide {pending.encoder!r} embeddings, but router.path "
                f"now holds a {router.name!r} router on {dim}-wide {encoder!r} ones, which "
                f"cannot learn it; nothing was stored"
            )
        return Routed(pending.model, router, True, pending.embedding)

    def learn_scored(self, log: RequestLog) -> int:
        """Learn the scores stored, by processes that do not learn, for requests the
        configured router's folder kept in ``log`` (``RequestLog.claim_scored``: each is
        taken by one process only), and count them toward the next save; how many it
        learned. A system calls it as it opens, before it routes anything. Where the log
        refuses, they wait in it for the next process that opens.

        From here on it is present in the folder (``files.present_in``) until it closes:
        the rows of the requests it learns stay in the log until a save holds what it
        learned (``_save``), so that a process that ends before saving loses nothing;
        only a learner that opens while no other is present takes scored rows, so
        those it takes are scores nobody learned or that a learner ended without
        saving. Where presence cannot be told (no fcntl), rows go as they are learned; where
        this process cannot lock the folder though others may (a read-only folder to it),
        it takes no scored rows (another learner present may have learned them and not
        saved yet), and the rows of the scores it is given go as they are learned."""
        if not self.keeps_in(log):
            return 0
        router = self.router
        encoder, dim = str(getattr(router, "encoder_spec", "")), getattr(router, "dim", None)
        if dim is None:
            return 0
        try:
            presence = present_in(Path(self.folder))
        except RouterLLMError as e:
            logger.warning("scores stored for router %r's requests are left for a later start: it cannot tell whether another learner of its folder is present (and learned them): %s", router.name, e)  # fmt: skip
            return 0
        if presence is not None:
            self._presence, alone = presence
            self._log = log
            if not alone:  # another learner's rows, or ones for a learner opening alone
                return 0
        try:
            keep = self._presence is not None
            claimed = log.claim_scored(self.folder, router.name, encoder, int(dim), remove=not keep)
        except RequestLogError as e:
            logger.warning("scores stored for router %r's requests are left for a later start: %s", router.name, e)  # fmt: skip
            return 0
        learned = 0
        with self._lock:
            for pending, score in claimed:
                if keep:  # removed at the next save (an unteachable one too: it stays scored)
                    self._learned.append(pending.request_id)
                routed = Routed(pending.model, router, True, pending.embedding)
                if why := _unteachable(routed):  # changed in the log: its score stays stored
                    logger.warning("the score stored for request %s is not learned by router %r: %s", pending.request_id, router.name, why)  # fmt: skip
                    continue
                if routed.model in router.model_names:
                    learned += 1
                self._teach(routed, score)
        if claimed:
            logger.info("learned %d of %d scores stored for router %r's requests by processes that do not learn", learned, len(claimed), router.name)  # fmt: skip
        return learned

    def _teach(self, routed: Routed, score: float) -> None:
        router = routed.router
        if routed.model not in router.model_names:  # e.g. an escalation it never routes to
            logger.info("feedback on %s, which router %r does not route to", routed.model, router.name)  # fmt: skip
            return
        assert routed.embedding is not None
        router.learn(None, [routed.model], [score], embeddings=routed.embedding[None])  # type: ignore[attr-defined]
        if router is self.router and self.save_to is not None:
            self._unsaved += 1
            self._dirty = True
            if self._unsaved >= SAVE_EVERY:
                self._unsaved = 0  # a failed save is tried again at the next save point
                self._save()

    def _save(self) -> None:
        """Save the configured router to its path, then remove the rows of the kept
        requests it learned (``_forget_learned``); a failure is logged, and tried again
        at the next save point and at close (the rows stay meanwhile)."""
        assert self.save_to is not None
        try:
            self.router.save(self.folder)
            self._dirty = False
        except RouterLLMError as e:
            logger.error("could not save the learning router to %s: %s", self.folder, e)
            return
        self._forget_learned()

    def _forget_learned(self) -> None:
        """Remove the rows of the kept requests learned since the last save, now saved;
        where the log refuses, they are tried again at the next save."""
        if not self._learned or self._log is None:
            return
        try:
            self._log.forget_pending(self._learned)
            self._learned = []
        except RequestLogError as e:
            logger.error("the requests learned and saved stay in the request log (a learner opening alone would learn them again): %s", e)  # fmt: skip

    def close(self) -> None:
        """Save what the configured router learned since it was last saved; where its
        folder still refuses the save (another process put a router there it cannot
        merge with, a disk error), save it beside that folder instead. Where neither
        could be saved, the rows of the requests it learned stay in the log, for a
        learner opening alone to learn again."""
        with self._lock:
            if self._dirty and self.save_to is not None:
                self._save()
                if self._dirty:
                    self._save_aside()
            if not self._dirty:
                self._forget_learned()
            if self._presence is not None:
                self._presence.close()  # no longer present: what it left is anyone's
                self._presence = None

    def _save_aside(self) -> None:
        """Save the configured router to a new folder beside ``router.path``
        (``<name>.unsaved-<UTC time>-<pid>``, then ``-2``, ``-3``... where another
        router of this process was saved there in the same second), so that what it
        learned is not lost."""
        assert self.save_to is not None
        path = Path(self.folder)  # resolved: router.path "." or ".." has no name to extend
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"{path.name}.unsaved-{stamp}-{os.getpid()}"
        try:
            for n in itertools.count(1):
                aside = path.with_name(name if n == 1 else f"{name}-{n}")
                try:
                    aside.mkdir()  # made here, so no other save writes into it
                    break
                except FileExistsError:
                    continue
            self.router.save(aside)
        except (RouterLLMError, OSError) as e:
            kept = "the requests stay in the request log, for the next learning process that opens alone to learn them again" if self._learned else "the scores stay in the request log"  # fmt: skip
            logger.error(
                "could not save the learning router beside %s either (%s): what it learned "
                "since its last save is not saved (%s)", path, e, kept
            )  # fmt: skip
            return
        self._dirty = False
        logger.error(
            "the learning router could not be saved to %s; what it learned is saved in %s "
            "instead: check it and move it there (router.path)", path, aside
        )  # fmt: skip


def _shown(request_id: str) -> str:
    return request_id if len(request_id) <= 80 else f"{request_id[:80]}..."


def _check_rateable(request_id: str, routed: Routed | None) -> None:
    """A clear error unless ``routed`` (the remembered request ``request_id``) can be
    rated: remembered, routed by a router that learns, not rated yet."""
    shown = _shown(request_id)
    if routed is None:
        raise UnknownRequestError(
            f"no routed request {shown!r} to rate: the system remembers the last "
            f"{MAX_REMEMBERED:,} requests its routers routed since it started (with "
            f"router.learn: true, also those the learning router routed before a restart; "
            f"not those whose model the caller chose; after a restart an answer from the "
            f"request cache is rated by the request its cached_from names; an answer still "
            f"being generated (streamed) can be rated once it has ended); give the "
            f"request_id of a recent answer"
        )
    if routed.by_caller:
        raise PromptError(
            f"request {shown!r} was cut by its caller: its on_text or on_answer raised as "
            f"the answer was given, so the caller did not take {routed.model}'s whole answer "
            f"and its score would teach the router nothing about the model; nothing was stored"
        )
    if routed.cut:
        raise PromptError(
            f"request {shown!r} {UNRATEABLE[routed.cut]} (finish reason {routed.cut!r}): "
            f"not {routed.model}'s whole answer, so its score would teach the router "
            f"nothing about the model; nothing was stored"
        )
    if not routed.learns:
        raise PromptError(
            f"request {shown!r} was routed by {routed.router.name!r}, which does not learn "
            f"from feedback; route with a feedback router (routerllm train --router feedback, "
            f"then router.path) to rate its answers"
        )
    if routed.rated:
        raise PromptError(_RATED.format(shown) + _copy_of(routed))


def _copy_of(routed: Routed) -> str:
    """What a refusal adds for a copy from the request cache: whose answer it rated."""
    if not routed.answer_of:
        return ""
    return (
        f" (it is request {_shown(routed.answer_of)!r}'s answer, from the request cache: "
        f"a score for any copy of an answer is that answer's)"
    )


def _check_teachable(request_id: str, routed: Routed) -> None:
    """A clear error, before its score is stored, where the router could not learn the
    request (``_unteachable``)."""
    if why := _unteachable(routed):
        raise PromptError(
            f"request {_shown(request_id)!r} cannot be learned by router "
            f"{routed.router.name!r}: {why}; nothing was stored"
        ) from why


def _unteachable(routed: Routed) -> RouterLLMError | None:
    """Why the router could not learn the request, or None: its embedding (e.g. kept in
    the request log and changed there since) is not finite or too large."""
    router, embedding = routed.router, routed.embedding
    check = getattr(router, "check_learnable", None)
    if embedding is None or routed.model not in router.model_names or not callable(check):
        return None
    try:
        check(embedding[None])
    except RouterLLMError as e:
        return e
    return None


_RATED = "request {!r} has been rated already; each answer is rated once"
