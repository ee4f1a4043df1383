"""The cascade's escalation gate as a routed system uses it.

The gate (:mod:`routerllm.gate`) is trained offline on one pair of models; a
system serving a config loads it once, checks it fits that config's models, and
asks it, for each unverified answer of the gate's first model, whether the next
larger model should answer instead. The first model is asked for a function stub
in the code style of the gate's own run, since the gate learned from its states
of prompts asked that way.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routerllm.config import AppConfig, ModelConfig
from routerllm.eval.codegen import CodegenStyle, style_for
from routerllm.exceptions import ConfigError, RouterLLMError
from routerllm.files_identity import Weights

if TYPE_CHECKING:
    from pathlib import Path

    from routerllm.backends.base import Completion
    from routerllm.gate import EscalationGate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedGate:
    """A loaded gate, checked against the config it serves."""

    gate: EscalationGate
    #: how the gate's run asked its first model for a function stub (None: its default)
    first_style: CodegenStyle | None
    #: the weights of its run's models, watched as it serves (None: the gate records none)
    weights: GateWeights | None = None

    @classmethod
    def load(cls, config: AppConfig) -> ServedGate | None:
        """The config's gate (``cascade.gate``); None where the cascade has none."""
        cascade = config.cascade
        if cascade.gate and not cascade.enabled:  # kept for --cascade runs, maybe: said
            log.warning(
                "cascade.gate %s is not used: the cascade is off (cascade.enabled: false); "
                "set cascade.enabled: true (or give route or serve --cascade) to use it",
                cascade.gate,
            )
        elif cascade.budget is not None and not cascade.enabled and not cascade.gate:
            log.warning(
                "cascade.budget %s is not used: it is the escalation gate's energy budget, "
                "and the cascade is off (cascade.enabled: false) with no gate (cascade.gate); "
                "give a gate (routerllm train-gate) and set cascade.enabled: true to use it, "
                "or leave cascade.budget out",
                cascade.budget,
            )
        if cascade.enabled and not cascade.gate and cascade.budget is not None:
            raise ConfigError(
                "cascade.budget is the escalation gate's energy budget, and cascade.gate is "
                "not set: the plain cascade escalates every failed answer; give a gate "
                "(routerllm train-gate, --gate) or leave cascade.budget out"
            )
        if not (cascade.enabled and cascade.gate):
            return None
        from routerllm.gate import EscalationGate

        gate = EscalationGate.load(cascade.gate)
        if cascade.budget is not None:
            gate = gate.with_budget(cascade.budget)
        names = [m.name for m in config.models_by_size()]
        for role, name in (("reads the state of", gate.first), ("escalates to", gate.then)):
            if name not in names:
                raise ConfigError(
                    f"cascade.gate {cascade.gate} {role} {name!r}, which is not a configured "
                    f"model ({', '.join(names)}); use a gate trained on this config's models"
                )
        if config.model(gate.first).backend != "llama_cpp":
            raise ConfigError(
                f"cascade.gate reads {gate.first}'s hidden state of each prompt, which only "
                f"llama_cpp models expose; {gate.first} runs on {config.model(gate.first).backend}"
            )
        if names.index(gate.then) != names.index(gate.first) + 1:
            raise ConfigError(
                f"cascade.gate decides escalations from {gate.first} to {gate.then}, but "
                f"{gate.then} is not the next larger model after {gate.first} here"
            )
        _check_sources(config, gate)
        weights = _check_weights(config, gate)
        style = _run_style(config, gate)
        _say_other_style(config, gate)
        _check_width(config, gate)
        return cls(gate, style, weights)

    def reads_state(self, name: str) -> bool:
        """Whether ``name``'s state of each prompt is read (the gate's first model)."""
        return name == self.gate.first

    def decides(self, name: str, bigger: str) -> bool:
        """Whether the gate decides escalations from ``name`` to ``bigger``."""
        return (name, bigger) == (self.gate.first, self.gate.then)

    def style(self, name: str) -> CodegenStyle:
        """How ``name`` is asked for a function stub."""
        if self.first_style is not None and self.reads_state(name):
            return self.first_style
        return style_for(name)

    def decide(self, name: str, bigger: str, completion: Completion, failed: bool, stamp: Callable[[str], str | None]) -> tuple[bool, str]:  # fmt: skip
        """Whether ``name``'s unverified answer goes to ``bigger``, and why ("" where the
        gate does not decide that escalation). Where it does not, cannot read the answer's
        state of the prompt, or one of its models answers with other weights than its
        run's (``stamp``: a model's ``Backend.weights_stamp``), a ``failed`` answer goes
        ahead and an unchecked one stays, as without a gate, and the reason says so."""
        if not self.decides(name, bigger):
            return failed, ""
        if self.weights is not None and (other := self.weights.other(stamp)) is not None:
            return failed, f"the gate was not used ({other}; {_NOT_USED_ADVICE})"
        try:
            d = self.gate.decide(completion.prompt_state, completion.prompt_tokens, completion.completion_tokens)  # fmt: skip
        except RouterLLMError as e:
            log.warning("cascade gate not used: %s", e)
            return failed, f"the gate was not used ({e})"
        return d.escalate, d.explain(bigger, self.gate.budget)


def _check_sources(config: AppConfig, gate: EscalationGate) -> None:
    """Refuse a gate whose run's model of a name was another file than the config's: its
    states of the prompts (as wide as this file's, another quantisation) and outcomes
    are not this model's, and it would decide on them without a word."""
    sources = gate.about.get("sources", {})  # none in a gate saved before 2026-12-03: no check
    if not isinstance(sources, dict):
        raise ConfigError(
            f"cascade.gate {config.cascade.gate}: the models of its run are not readable; "
            f"train the gate again with this version (routerllm train-gate)"
        )
    for name in (gate.first, gate.then):
        if name in sources and sources[name] != config.model(name).source_text():
            raise ConfigError(
                f"cascade.gate {config.cascade.gate} was trained on a run whose {name} was "
                f"another model file (or quantisation) than this config's; train a gate on a "
                f"run of this config's models"
            )


def _check_weights(config: AppConfig, gate: EscalationGate) -> GateWeights | None:
    """Refuse a gate whose run's answers of one of its models were made with other weights
    than the config's file of it holds now (written again at its path, as wide): it would
    decide on states and outcomes it never learned, without a word. A file is read only
    where its stat is not the one the gate records (a copy of the file: at every start).
    The watch on them as the system serves (None where the gate records none)."""
    from routerllm.files_identity import weights_from_record

    recorded = gate.about.get("weights", {})  # none in a gate saved before 2026-12-06: no check
    try:
        if not isinstance(recorded, dict):
            raise ValueError("not an object")
        weights = {m: weights_from_record(recorded[m]) for m in (gate.first, gate.then) if m in recorded}  # fmt: skip
    except ValueError:
        raise ConfigError(
            f"cascade.gate {config.cascade.gate}: the weights of its run's models are not "
            f"readable; train the gate again with this version (routerllm train-gate)"
        ) from None
    if not weights:
        return None
    watch = GateWeights(config, weights)
    for name in weights:
        if (other := watch.other_now(name)) is not None:
            raise ConfigError(
                f"{other}; put back the file that run was made with, or train a gate on a run "
                f"of this config's models"
            )
    return watch


class GateWeights:
    """Whether a served gate's models answer with the weights its run's answers were made
    with (``about.weights``). A model file replaced while the system serves is loaded
    again (``Backend.weights_stamp``), and the gate would decide on answers and states it
    never learned: where either model's weights are other ones, it is not used until they
    are those again, and a warning says so once. A request costs a look-up of the stamp
    of the weights each model answers with; a model's files are read again (hashed) only
    where that stamp is one not seen yet and is their stat now (not a file being copied
    over the one the model answers on with), and that stat has changed since they were
    last read, and none of them was written in the last ``SETTLED_S`` seconds (a file
    written over in place, by ``rsync --inplace`` or a download tool, has a new stat at
    each look: read at each, it cost a read of the whole file per request)."""

    #: the stamps remembered per model (a file being copied has a new one at each look)
    KEPT = 16
    #: how long a file is left alone before a request reads it (a copy's writes are
    #: closer together than this; a pause as long, and it is read once)
    SETTLED_S = 2.0

    def __init__(self, config: AppConfig, recorded: dict[str, Weights]) -> None:
        self._config, self._recorded = config, recorded
        # each model's files as last read: read again where their stat is not this one's
        self._files: dict[str, Weights] = dict(recorded)
        # what each model's files held with each stat they were read with (those checked
        # at the start among them): a model answering on with weights it loaded while
        # other files are copied to their paths asks for an older stat than theirs now
        self._seen: dict[str, dict[str, Weights]] = {m: {} for m in recorded}
        self._lock = threading.Lock()
        self._said: str | None = None  # the model weights last warned of, until they are back

    def other_now(self, name: str) -> str | None:
        """Why the gate's run is not ``name``'s files' weights now (they were read again
        where their stat changed); None where they are its weights, or nothing tells."""
        now = self._read(name)
        return self._other_text(name, now) if isinstance(now, Weights) else None

    def _read(self, name: str, stamp: str | None = None) -> Weights | _Unread | _Writing | None:
        """``name``'s weights now (as ``weights_now``), its files read only where their stat
        is not the one they had when they were last read, and kept under their stat where
        it did not change as they were read; None where there are none to tell (the config
        pins their sha256, they are gone). Given ``stamp``, the files are read only where
        it is their stat, and ``_UNREAD`` where it is not: other files are at their paths
        since (the model loaded those of ``stamp``, which no one can read now), and
        ``_Writing`` where one of them is being written (``SETTLED_S``): not read yet."""
        from routerllm.eval.weights_identity import weights_files
        from routerllm.files_identity import files_stamp, files_weights, written_within

        files = weights_files(self._config.model(name))
        if files is None:
            return None
        if stamp is not None and files_stamp(files) != stamp:
            return _UNREAD
        if stamp is not None and (path := written_within(files, self.SETTLED_S)) is not None:
            return _Writing(path)
        now = files_weights(files, self._files[name])
        if files_stamp(files) != now.stamp:  # replaced as they were read: a mix of two
            return now if stamp is None else _UNREAD
        self._files[name] = now
        seen = self._seen[name]
        if now.stamp not in seen and len(seen) >= self.KEPT:
            seen.pop(next(iter(seen)))
        seen[now.stamp] = now
        return now

    def other(self, stamp: Callable[[str], str | None]) -> str | None:
        """Why the gate must not decide now: the first of its models whose weights, as
        ``stamp`` tells which they answer with, are not its run's, or cannot be told
        (:meth:`_weights`); None where all are (or nothing tells)."""
        for name in self._recorded:
            now = self._weights(name, stamp(name))
            if isinstance(now, Weights):
                other = self._other_text(name, now)
            elif isinstance(now, _Writing):
                other = self._writing_text(name, now.path)
            else:
                other = None if now is None else self._unread_text(name)
            if other is not None:
                self._say(other)
                return other
        self._say(None)
        return None

    def _weights(self, name: str, stamp: str | None) -> Weights | _Unread | _Writing | None:
        """``name``'s weights, answering with those of ``stamp``: what its files held with
        that stat (the request path: a look-up), else its files read now where their stat
        is ``stamp``; ``_UNREAD`` where it is not (loaded from files replaced since, before
        a decision read them: which weights answer, nothing can tell, and those at their
        paths now are not the ones); ``_Writing`` where they are being written; None where
        nothing tells (no files here)."""
        if stamp is None:
            return None
        seen = self._seen[name]
        try:
            return seen[stamp]
        except KeyError:  # (or taken out by another thread meanwhile)
            pass
        with self._lock:  # one request reads a changed file, the others wait for it
            return seen.get(stamp) or self._read(name, stamp)

    def _other_text(self, name: str, now: Weights) -> str | None:
        if now.sha256 == self._recorded[name].sha256:
            return None
        holds = "holds" if len(now.files) == 1 else "hold"
        return (
            f"cascade.gate {self._config.cascade.gate} was trained on a run whose {name} "
            f"answers were made with other weights than {', '.join(now.files)} {holds} now "
            f"(another sha256, same file name)"
        )

    def _unread_text(self, name: str) -> str:
        return (
            f"cascade.gate {self._config.cascade.gate} cannot tell which weights {name} "
            f"answers with: the files it loaded ({', '.join(self._files[name].files)}) were "
            f"replaced before the gate read them, and the files at their paths now cannot "
            f"be loaded yet"
        )

    def _writing_text(self, name: str, path: Path) -> str:
        return (
            f"cascade.gate {self._config.cascade.gate} cannot tell which weights {name}'s "
            f"files hold yet: {path} was written less than {self.SETTLED_S:g} s ago (a copy or "
            f"download under way?); it reads them once they are left alone that long"
        )

    def _say(self, other: str | None) -> None:
        """A warning once per change: the gate not used, and used again."""
        if other == self._said:
            return
        with self._lock:
            if other == self._said:
                return
            if other is not None:
                log.warning(
                    "cascade gate not used: %s; the cascade goes on as without a gate (a "
                    "failed answer goes up, an unchecked one stays): %s",
                    other,
                    _NOT_USED_ADVICE,
                )
            else:
                log.warning(
                    "cascade.gate %s is used again: its models' files hold the weights its "
                    "run's answers were made with",
                    self._config.cascade.gate,
                )
            self._said = other


class _Unread:
    """Weights no one read (``GateWeights._read``)."""


_UNREAD = _Unread()


@dataclass(frozen=True)
class _Writing:
    """Files not read as one of them is being written (``GateWeights._read``)."""

    path: Path


#: What to do where a served gate's model files hold other weights than its run's.
_NOT_USED_ADVICE = (
    "put back the file that run was made with (the gate is used again then), or train a "
    "gate on a run of this config's models (routerllm train-gate) and restart with it"
)


def _check_width(config: AppConfig, gate: EscalationGate) -> None:
    """Refuse a gate that reads states of another width than its first model's GGUF
    gives (trained on another file: one saved before its run's sources were recorded,
    or the file at the configured path replaced since): it could decide no request."""
    from routerllm.model_header import other_state_width

    if (other := other_state_width(config.model(gate.first), gate.dim)) is not None:
        raise ConfigError(
            f"cascade.gate {config.cascade.gate} reads {gate.first}'s {gate.dim}-wide state "
            f"of the prompt, and {other}: the gate was trained on another model file; train "
            f"a gate on a run of this config's models"
        )


def _run_style(config: AppConfig, gate: EscalationGate) -> CodegenStyle | None:
    """How the gate's run asked its first model (recorded in the gate)."""
    if (style := gate.about.get("style")) is None:
        return None
    try:
        return CodegenStyle(**style)
    except (TypeError, ConfigError) as e:
        raise ConfigError(
            f"cascade.gate {config.cascade.gate}: the prompting style of its run is not "
            f"readable ({e}); train the gate again with this version (routerllm train-gate)"
        ) from None


#: How to make a gate's run in the style it will be served in (train-gate's and a
#: serving system's warnings where the run asked its second model otherwise).
STYLE_ADVICE = (
    "make its run in the style the gate's requests will be asked in: the default options "
    "for function stubs, as a system asks them; --mode chat for requests in prose, which "
    "a system sends as written"
)


def served_style(model: ModelConfig) -> dict[str, Any]:
    """How a system asks ``model`` for a function stub where the gate does not read its
    state (``ModelCalls.style``): its name's style, the chat style where its backend
    cannot start the answer."""
    from routerllm.registry import BACKENDS

    prefills = BACKENDS.get(model.backend).prefills
    return dataclasses.asdict(style_for(model.name, prefills=prefills))


def _say_other_style(config: AppConfig, gate: EscalationGate) -> None:
    """Warn where the gate's run asked its second model otherwise than this system will:
    the gate predicts that model's success and energy as asked in the run's style. (Its
    first model is asked as the run asked it.)"""
    from routerllm.eval.style_diff import differences_text, other_styles

    styles = gate.about.get("styles")  # none in a gate saved before 2026-12-05: nothing said
    if not isinstance(styles, dict) or not isinstance(styles.get(gate.then), dict):
        return
    ours = {gate.then: served_style(config.model(gate.then))}
    if differs := other_styles(styles, ours):
        log.warning(
            "cascade.gate %s was trained on a run that asked %s; it predicts %s's success and "
            "energy as asked there: %s",
            config.cascade.gate, differences_text(styles, ours, differs, "this system"), gate.then,
            STYLE_ADVICE,
        )  # fmt: skip
