"""Feedback on a routed system's answers (``RouterLLM.feedback``).

The system remembers, in memory, the requests its routers routed: for the last
``MAX_REMEMBERED`` requests (and at most ``MAX_REMEMBERED_CHARS`` characters of
their prompts, whichever bound is reached first) the prompt, the model that
answered and the router. A score in [0, 1] for one of them is written to the
request log's ``feedback`` table at once (so none is lost), and, where the config
says ``router.learn: true``, taught to the router that routed it (``learn``). The
configured router loaded from ``router.path`` is then saved back there every
``SAVE_EVERY`` scores it learned and when the system closes (``Router.save``
writes beside the files and renames them into place). Feedback may arrive from
several threads at once (the server's): one lock orders it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from routerllm.checks import is_finite_number
from routerllm.exceptions import ConfigError, PromptError, RouterLLMError, UnknownRequestError

if TYPE_CHECKING:
    from routerllm.carbon.request_log import RequestLog
    from routerllm.config import AppConfig
    from routerllm.routers.base import Router

logger = logging.getLogger(__name__)

#: How many routed requests the system remembers for feedback.
MAX_REMEMBERED = 10_000
#: The most prompt characters it keeps for them (a prompt may hold 200,000).
MAX_REMEMBERED_CHARS = 20_000_000
#: How many learned scores the configured router is saved after (and when closing).
SAVE_EVERY = 100


@dataclass
class Routed:
    """What feedback on one routed request needs: the model that answered, the router,
    whether it learns, and the prompt to teach it (kept only where it will be taught)."""

    model: str
    router: Router
    learns: bool
    prompt: str = ""
    rated: bool = False


class FeedbackLoop:
    """Remembers routed requests, stores their scores and teaches their routers."""

    def __init__(self, router: Router, learn: bool, save_to: str | None = None) -> None:
        """``router`` is the system's own, saved to ``save_to`` (its ``router.path``)
        as it learns, when ``learn``."""
        self.router, self.learn, self.save_to = router, learn, save_to
        self._routed: OrderedDict[str, Routed] = OrderedDict()
        self._chars = 0
        self._unsaved = 0  # scores learned since the last save point
        self._dirty = False  # learned something not saved yet
        self._lock = threading.Lock()

    @classmethod
    def of(cls, config: AppConfig, router: Router, configured: bool) -> FeedbackLoop:
        """The loop of a system routing with ``router`` (``configured``: the config's, not
        one given in code): with ``router.learn``, the router loaded from ``router.path``
        learns and is saved back there, and must be one that learns."""
        settings = config.router
        if settings.learn and configured and not callable(getattr(router, "learn", None)):
            raise ConfigError(
                f"router.learn: true, but router {router.name!r} ({settings.path}) does not "
                f"learn from feedback; train a feedback router (routerllm train --router "
                f"feedback) and point router.path at it, or set router.learn: false"
            )
        return cls(router, settings.learn, settings.path if configured else None)

    def remember(self, request_id: str, prompt: str, model: str, router: Router) -> None:
        """Keep a routed request for feedback, forgetting the oldest beyond the bounds."""
        learns = callable(getattr(router, "learn", None))
        kept = prompt if learns and self.learn else ""
        with self._lock:
            self._routed[request_id] = Routed(model, router, learns, kept)
            self._chars += len(kept)
            while len(self._routed) > MAX_REMEMBERED or self._chars > MAX_REMEMBERED_CHARS:
                _, old = self._routed.popitem(last=False)
                self._chars -= len(old.prompt)

    def feedback(self, request_id: str, score: float, log: RequestLog) -> None:
        """Store ``score`` for the request in ``log``, and teach its router where the
        config says so."""
        if not isinstance(request_id, str) or not request_id.strip():
            raise PromptError(
                f"request_id must be the request_id of a routed answer (a text), got {request_id!r:.80}"  # fmt: skip
            )
        if not (is_finite_number(score) and 0 <= score <= 1):
            raise PromptError(
                f"score must be a number from 0 (failed) to 1 (solved), got {score!r:.80}"
            )
        with self._lock:
            routed = self._routed.get(request_id)
            _check_rateable(request_id, routed)
            assert routed is not None
            log.add_feedback(request_id, float(score))  # first: then it is never lost
            routed.rated = True
            if self.learn:
                self._teach(routed, float(score))

    def _teach(self, routed: Routed, score: float) -> None:
        router = routed.router
        if routed.model not in router.model_names:  # e.g. an escalation it never routes to
            logger.info("feedback on %s, which router %r does not route to", routed.model, router.name)  # fmt: skip
            return
        router.learn([routed.prompt], [routed.model], [score])  # type: ignore[attr-defined]
        if router is self.router and self.save_to is not None:
            self._unsaved += 1
            self._dirty = True
            if self._unsaved >= SAVE_EVERY:
                self._unsaved = 0  # a failed save is tried again at the next save point
                self._save()

    def _save(self) -> None:
        """Save the configured router to its path; a failure is logged, and tried again
        at the next save point and at close (the scores stay in the request log, but
        not the prompts: what was learned and never saved cannot be learned again)."""
        assert self.save_to is not None
        try:
            self.router.save(self.save_to)
            self._dirty = False
        except RouterLLMError as e:
            logger.error("could not save the learning router to %s: %s", self.save_to, e)

    def close(self) -> None:
        """Save what the configured router learned since it was last saved."""
        with self._lock:
            if self._dirty and self.save_to is not None:
                self._save()


def _check_rateable(request_id: str, routed: Routed | None) -> None:
    """A clear error unless ``routed`` (the remembered request ``request_id``) can be
    rated: remembered, routed by a router that learns, not rated yet."""
    shown = request_id if len(request_id) <= 80 else f"{request_id[:80]}..."
    if routed is None:
        raise UnknownRequestError(
            f"no routed request {shown!r} to rate: the system remembers the last "
            f"{MAX_REMEMBERED:,} requests its routers routed since it started (fewer where "
            f"their prompts are long: {MAX_REMEMBERED_CHARS:,} characters in all; not those "
            f"whose model the caller chose); give the request_id of a recent answer"
        )
    if not routed.learns:
        raise PromptError(
            f"request {shown!r} was routed by {routed.router.name!r}, which does not learn "
            f"from feedback; route with a feedback router (routerllm train --router feedback, "
            f"then router.path) to rate its answers"
        )
    if routed.rated:
        raise PromptError(f"request {shown!r} has been rated already; each answer is rated once")
