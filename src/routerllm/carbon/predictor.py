"""CarbonPredictor: a request's energy, CO2 and cost on a model, before it runs.

It learns per model from the request log (the model's latest requests whose
energy was measured or estimated; ``measured``), CodeCarbon's figures only where the
meter now takes them in the same tracking mode (``unlearned``):

- prompt tokens from the prompt's own length in characters (a line with a
  non-negative intercept and slope: a chat template adds a fixed number; in
  proportion to the characters when the logged prompts have about one length),
- generation energy from prompt and output tokens (non-negative least
  squares: prompt processing and decoding each cost per token; when the log
  cannot tell them apart, each is charged the whole, or, where the config prices a
  prompt token apart, the whole is shared at its figures' ratio (``config_split``);
  with no output token logged, an output token costs a prompt token's),
- the output length as a high quantile (0.9) of the output lengths of the
  model's ``NEIGHBOURS`` logged requests nearest in prompt length (a short
  question gets a short answer, a function stub a long one), an answer cut at
  its own lower cap counting as the request's ``max_new_tokens``, and at most
  that: a budget guard should rather over- than underestimate,
- loading energy (when the model is not loaded) as its mean logged loading, of the
  requests whose model loaded (a count's read of its files alone is no load),
- energy learned from no generation over ``FAR`` times what the fit of the model's
  others makes of it, nor from a load over ``FAR`` times the median load (a clock
  jump, a glitch: kept, it held a model out of a per-request budget for good),
- requests measured under contention (``Measurement.contended``) learned from as the
  others (a machine still busy bills the next request as it billed them; a few among
  quiet ones are left out as far), counted in the prediction's basis with the output
  tokens it budgets,
- CO2 at the grid of the config's country, where the request will be measured (the
  log's figure is of the country its requests ran under), and the cost as the config
  gives it.

A model with fewer than ``MIN_HISTORY`` logged requests is predicted from the
config's per-token figures and prices at ``max_new_tokens`` output tokens (the
most the request can cost) and, where the config prices a prompt token apart, the
prompt's tokens (a remote model is logged from those same figures),
else scaled by parameter count from the nearest model that has a history; with
neither, there is no prediction (``None``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from routerllm.backends.interrupts import CANCELLED
from routerllm.carbon.log_rows import FAILED, REFUSED, RequestRecord
from routerllm.carbon.meter import (
    CACHED,
    CODECARBON_FAILED,
    FROM_TEXT,
    NO_FIGURES,
    NO_FIGURES_FROM_TEXT,
    NO_USAGE,
    NOT_MEASURED,
    codecarbon_methods,
    grid_intensity_g_per_kwh,
    per_token_estimate,
)
from routerllm.carbon.request_log import RequestLog
from routerllm.carbon.text_rates import ANSWERS, UNCOUNTED, TextRates
from routerllm.config import AppConfig, ModelConfig

MIN_HISTORY = 3
HISTORY = 200  # latest requests kept per model
QUANTILE = 0.9
NEIGHBOURS = 5  # chosen on benchmarks/carbon_predictor.py's first run: see docs/experiments.md
#: A reading over this many times what the model's other readings make of it is not
#: learned from: on a real log (164 HumanEval requests per model of the local ladder,
#: CodeCarbon's load estimates on 2 shared cores) every reading sat within 0.86-1.40x
#: the median reading's share of the fit. Kept, one absurd reading (a clock jump, a
#: CodeCarbon glitch) could put a model's prediction over a per-request limit for good:
#: a model stepped down from is never run again to log the rows that push it out.
FAR = 10.0
#: Characters a token, guessed where no logged model tells its own (prose in English).
CHARS_PER_TOKEN_GUESS = 4
CUT = ("length", "")  # finish reasons of answers that may have been cut at their cap
#: Generation methods that teach no energy: carbon tracking off, a failed CodeCarbon
#: task, an answer from the request cache, a remote answer whose endpoint counted no
#: tokens (estimated from its text now, logged at 0 before), or of a model without
#: per-token figures: an estimate measures nothing.
UNMEASURED = (NOT_MEASURED, CODECARBON_FAILED, CACHED, FROM_TEXT, NO_USAGE, NO_FIGURES, NO_FIGURES_FROM_TEXT)  # fmt: skip


def unlearned(config: AppConfig) -> tuple[str, ...]:
    """The generation methods not learned from under ``config``: ``UNMEASURED``, and,
    where CodeCarbon measures, its figures of the other tracking mode: the whole
    machine's count its idle power and other processes' work, the process's do not; a
    log kept in both had their rates fitted as one. With carbon tracking off each is
    learned from, as before."""
    if not config.carbon.enabled:
        return UNMEASURED
    other = "machine" if config.carbon.tracking_mode == "process" else "process"
    return UNMEASURED + codecarbon_methods(other)


@dataclass(frozen=True)
class Prediction:
    """What a request is predicted to cost on ``model`` (loading included when the model
    is not loaded), and what the prediction rests on."""

    model: str
    energy_kwh: float
    co2_kg: float
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    basis: str

    def amount(self, quantity: str) -> float:
        """``co2_kg`` or ``cost_usd``."""
        return float(getattr(self, quantity))

    def as_dict(self) -> dict[str, object]:
        """Its fields as a JSON-ready mapping (``RoutedResult.to_dict``'s ``predicted``)."""
        return asdict(self)


@dataclass(frozen=True)
class Profile:
    """One model's learned figures (what ``routerllm report`` shows)."""

    requests: int
    base_prompt_tokens: float  # the chat template's share
    prompt_tokens_per_char: float
    kwh_per_prompt_token: float
    kwh_per_output_token: float
    output_tokens: int  # the quantile of all the logged output lengths (for reports)
    loading_kwh: float
    co2_kg_per_kwh: float  # the log's: the grids its requests ran under (predictions: the config's)
    left_out: int = 0  # readings (generations or loads) far outside the others: not learned from
    #: of ``requests``, those whose generation was measured while other processes used over
    #: ``cpu_share.CONTENDED_SHARE`` of the machine's CPU: learned from as the others (a
    #: machine still busy bills the next request so; README "The CarbonPredictor")
    contended: int = 0

    def as_dict(self) -> dict[str, float]:
        """Its fields as a JSON-ready mapping."""
        return asdict(self)

    def prompt_tokens(self, prompt_chars: int) -> int:
        """The tokens a prompt of ``prompt_chars`` characters reads, by its logged line."""
        return int(round(self.base_prompt_tokens + self.prompt_tokens_per_char * prompt_chars))


def nonnegative_fit(x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(a, b) >= 0`` minimising ``|y - a x1 - b x2|``: the least-squares solution where
    both are non-negative, else the better of the two one-variable fits."""
    best: tuple[float, tuple[float, float]] | None = None
    X = np.stack([x1, x2], axis=1).astype(float)
    y = y.astype(float)
    solution, *_ = np.linalg.lstsq(X, y, rcond=None)
    candidates = [(float(solution[0]), float(solution[1]))]
    for i in (0, 1):
        col = X[:, i]
        denom = float(col @ col)
        coef = max(float(col @ y) / denom, 0.0) if denom > 0 else 0.0
        candidates.append((coef, 0.0) if i == 0 else (0.0, coef))
    for a, b in candidates:
        if a < 0 or b < 0:
            continue
        residual = float(np.sum((y - a * X[:, 0] - b * X[:, 1]) ** 2))
        if best is None or residual < best[0] - 1e-30:
            best = (residual, (a, b))
    assert best is not None  # the one-variable fits are never negative
    return best[1]


def fit_profile(
    records: list[RequestRecord], quantile: float = QUANTILE, split: float | None = None
) -> Profile:
    """A model's figures from its logged requests (at least one). ``split``: a prompt
    token's cost over a generated one's, where the config prices the prompt apart
    (``config_split``): the log's energy is shared so where it cannot tell the two apart."""
    chars = np.array([r.prompt_chars for r in records], dtype=float)
    prompt = np.array([r.prompt_tokens for r in records], dtype=float)
    output = np.array([r.completion_tokens for r in records], dtype=float)
    # each model's own work: not the first answers of a request the cascade escalated
    generation = [r.own("llm_inference") for r in records]
    energy = np.array([m.energy_kwh if m else 0.0 for m in generation])
    if _varies(chars):
        base, per_char = nonnegative_fit(np.ones_like(chars), chars, prompt)
    else:  # prompts of one length cannot tell the template's tokens from the prompt's
        base, per_char = 0.0, float(prompt.sum() / max(chars.sum(), 1.0))
    kept = not_far(energy, prompt, output)  # their tokens still tell the lengths
    energy, prompt, output = energy[kept], prompt[kept], output[kept]
    if tells_apart(prompt, output):
        per_prompt, per_output = nonnegative_fit(prompt, output, energy)
    else:  # the log cannot tell prompt from output costs apart: each is charged the whole,
        # unless the config says how it splits (a remote model is logged from that split)
        per_prompt, per_output = whole_per_token(energy, prompt, output, split)
    # the loads alone: a count's read of the model's files before its load (logged as its
    # loading, ``count_reads``) is none where the row says its model did not load
    loads = np.array([m.energy_kwh for r in records if r.model_loaded is not False and (m := r.own("model_loading")) and m.energy_kwh > 0])  # fmt: skip
    loads_kept = _near_median(loads)
    total_kwh = sum(r.energy_kwh for r in records)
    return Profile(
        requests=len(records),
        base_prompt_tokens=base,
        prompt_tokens_per_char=per_char,
        kwh_per_prompt_token=per_prompt,
        kwh_per_output_token=per_output,
        output_tokens=int(np.ceil(np.quantile([r.completion_tokens for r in records], quantile))),
        loading_kwh=float(np.mean(loads[loads_kept])) if loads.size else 0.0,
        co2_kg_per_kwh=sum(r.co2_kg for r in records) / total_kwh if total_kwh > 0 else 0.0,
        left_out=int(np.sum(~kept) + np.sum(~loads_kept)),
        contended=sum(1 for m in generation if m is not None and m.contended),
    )


def not_far(energy: np.ndarray, prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Which generations to learn energy from: not one over ``FAR`` times what the fit of
    the others makes of it, relative to the median reading's (so that the absurd reading
    itself, which raises the fit, does not hide). Fitted again without those found, until
    none is. A reading the fit puts at 0 kWh is not judged; nor are any where fewer than
    ``MIN_HISTORY`` can be, or where the median reading is 0 kWh (a tracker too coarse
    for them tells no scale). Where none is left out, the figures are those of all."""
    kept = np.ones(energy.shape, dtype=bool)
    while True:
        per_prompt, per_output = nonnegative_fit(prompt[kept], output[kept], energy[kept])
        fitted = per_prompt * prompt + per_output * output
        judged = kept & (fitted > 0)
        if judged.sum() < MIN_HISTORY:
            return kept
        ratio = np.divide(energy, fitted, out=np.zeros_like(energy), where=judged)
        far = ~_near_median(ratio, judged)
        if not far.any():
            return kept
        kept &= ~far


def _near_median(values: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """Which of ``values`` are not over ``FAR`` times the median of those ``among`` (all
    of them by default): all where fewer than ``MIN_HISTORY`` are judged or their median
    is 0."""
    among = np.ones(values.shape, dtype=bool) if among is None else among
    if among.sum() < MIN_HISTORY or (median := float(np.median(values[among]))) <= 0:
        return np.ones(values.shape, dtype=bool)
    return ~(among & (values > FAR * median))


def tells_apart(prompt: np.ndarray, output: np.ndarray) -> bool:
    """Whether requests of these prompt and output tokens can tell a prompt token's cost
    from an output token's: both spread, and not in proportion (a log of one shape, or
    of answers as long as their prompts, fits either cost as well as the other)."""
    return _varies(prompt) and _varies(output) and abs(np.corrcoef(prompt, output)[0, 1]) < 0.98


def whole_per_token(energy: np.ndarray, prompt: np.ndarray, output: np.ndarray, split: float | None = None) -> tuple[float, float]:  # fmt: skip
    """The whole energy per prompt token and per output token. Where no token of one
    kind was logged (answers that wrote none), its cost is not known: it costs a token
    of the other kind's (not the whole energy over "at least 1" token). With ``split`` (a
    prompt token's cost over an output token's), the whole shared between them so."""
    total, prompts, outputs = float(energy.sum()), float(prompt.sum()), float(output.sum())
    if split is not None and (shares := outputs + split * prompts) > 0:
        per_output = total / shares
        return split * per_output, per_output
    per_prompt = total / prompts if prompts > 0 else 0.0
    per_output = total / outputs if outputs > 0 else 0.0
    return per_prompt or per_output, per_output or per_prompt


def config_split(cfg: ModelConfig, country_iso_code: str) -> float | None:
    """A prompt token's energy over a generated one's by the model's figures at that grid
    (an energy figure of one kind and a CO2 figure of the other compare through it), where
    it prices the prompt apart; by CO2 where a generated token's energy is 0 (CO2 figures
    alone at a grid of 0 g/kWh). None without, or where a generated token costs nothing."""
    if not (cfg.prompt_figures and cfg.generation_figures):
        return None
    read = per_token_estimate("llm_inference", cfg, 0, 0.0, country_iso_code, 1)
    written = per_token_estimate("llm_inference", cfg, 1, 0.0, country_iso_code, 0)
    if written.energy_kwh > 0:
        return read.energy_kwh / written.energy_kwh
    return read.co2_kg / written.co2_kg if written.co2_kg > 0 else None


def _varies(x: np.ndarray) -> bool:
    """Whether ``x`` spreads enough (over a tenth of its mean) to fit a slope on."""
    return bool(x.mean() > 0 and np.ptp(x) > 0.1 * x.mean())


def _contended_text(p: Profile) -> str:
    """How many of the profile's requests were measured under contention, for a basis: a
    figure learned on a busy machine is many times a quiet one's (an audit's: 168x)."""
    if not p.contended:
        return ""
    which = f"all {p.contended}" if p.contended == p.requests else f"{p.contended} of them"
    return f", {which} measured under contention"


def measured(record: RequestRecord, skip: tuple[str, ...] = UNMEASURED) -> bool:
    """Whether a logged request's generation was measured or estimated (not logged with
    carbon tracking off, with a failed CodeCarbon task, or answered from the request
    cache): only those teach energy. An escalated request's: the answering model's own. A
    failed request's generation (finish reason ``FAILED``) wrote no answer: no rate; nor
    does one cancelled half-way (its caller gone: ``CANCELLED``), whose length says
    nothing of an answer's, and whose few tokens carry the whole prompt's energy, nor one
    the budgets refused once routed (``REFUSED``: its routing alone).
    ``skip``: the methods that teach nothing (``unlearned``)."""
    m = record.own("llm_inference")
    return m is not None and m.method not in skip and record.finish_reason not in (FAILED, CANCELLED, REFUSED)  # fmt: skip


class CarbonPredictor:
    """Predicts each request's energy, CO2 and cost per model, learning from the requests
    it is shown (the log's latest at start, then each new one through ``observe``)."""

    def __init__(
        self,
        config: AppConfig,
        history: Iterable[RequestRecord] = (),
        quantile: float = QUANTILE,
    ) -> None:
        self.config = config
        self.quantile = quantile
        self._skip = unlearned(config)
        self._seen: dict[str, deque[RequestRecord]] = {
            m.name: deque(maxlen=HISTORY) for m in config.models
        }
        self._profiles: dict[str, Profile] = {}
        self._rates = TextRates(m.name for m in config.models)
        for record in history:
            self.observe(record)

    @classmethod
    def from_log(cls, config: AppConfig, log: RequestLog) -> CarbonPredictor:
        """A predictor that has learned from each configured model's latest requests whose
        energy was measured or estimated (as many as it keeps of those while it runs), in
        the meter's tracking mode (``unlearned``), and its latest answers whose tokens
        were counted (``text_rates``: a remote model without energy figures has those)."""
        skip = unlearned(config)
        rows: dict[str, RequestRecord] = {}
        for m in config.models:
            for r in log.latest(m.name, HISTORY, skip) + log.latest(m.name, ANSWERS, UNCOUNTED):
                rows[r.id] = r
        # each model's oldest first, as they were logged (a deque keeps the latest)
        return cls(config, sorted(rows.values(), key=lambda r: r.timestamp))

    def observe(self, record: RequestRecord) -> None:
        """Learn from one finished request (of a configured model, whose energy was
        measured or estimated, or whose answer's tokens were counted)."""
        self._rates.observe(record)
        if (seen := self._seen.get(record.model)) is not None and measured(record, self._skip):
            seen.append(record)
            self._profiles.pop(record.model, None)

    def profile(self, model: str) -> Profile | None:
        """``model``'s learned figures, or None below ``MIN_HISTORY`` logged requests."""
        seen = self._seen.get(model)
        if seen is None or len(seen) < MIN_HISTORY:
            return None
        if model not in self._profiles:
            split = config_split(self.config.model(model), self.config.carbon.country_iso_code)
            self._profiles[model] = fit_profile(list(seen), self.quantile, split)
        return self._profiles[model]

    def predict(
        self,
        model: str,
        prompt_chars: int,
        max_new_tokens: int,
        loaded: bool = True,
        prompt_tokens: int | None = None,
    ) -> Prediction | None:
        """What a prompt of ``prompt_chars`` characters would cost on ``model`` (None where
        neither the log nor the config says anything about its energy). ``prompt_tokens``:
        the tokens the model will read (chat template, system text, history and response
        prefix included), where the caller can count them (a loaded llama.cpp model); the
        log's prompt tokens, which the energy per prompt token is fitted on, are those.
        Without it they are estimated from the bare prompt's characters: from the log's
        (a chat template's fixed share learned, a system text or history of another
        length than the logged requests' not), else as the logged model with the most history
        reads them, else about 4 characters a token."""
        cfg = self.config.model(model)
        if (p := self.profile(model)) is not None:
            output = self._output_tokens(model, prompt_chars, max_new_tokens)
            return self._from_profile(cfg, p, prompt_chars, output, loaded, prompt_tokens)
        figures = cfg.generation_figures
        if figures or cfg.backend == "openai_http":  # a remote model is logged from these too
            guessed = ""
            if prompt_tokens is None:
                prompt_tokens, guessed = self._prompt_tokens_guess(prompt_chars)
            # the prompt counted where a figure prices it apart (else it is in the rate)
            estimate = per_token_estimate("llm_inference", cfg, max_new_tokens, 0.0, self.config.carbon.country_iso_code, prompt_tokens)  # fmt: skip
            what = "per-token figures" if figures else "prices (no energy figures: 0 kWh, as logged)"  # fmt: skip
            read = f" and {prompt_tokens} prompt tokens" if cfg.prompt_figures else ""
            return Prediction(
                model,
                estimate.energy_kwh,
                estimate.co2_kg,
                self._cost(cfg, prompt_tokens, max_new_tokens, estimate.energy_kwh),
                prompt_tokens,
                max_new_tokens,
                f"the config's {what} at max_new_tokens ({max_new_tokens}){read}: "
                f"fewer than {MIN_HISTORY} logged requests{guessed}"
                + ("" if loaded or cfg.backend == "openai_http" else "; loading not included"),
            )
        return self._scaled(cfg, prompt_chars, max_new_tokens, loaded, prompt_tokens)

    def _output_tokens(self, model: str, prompt_chars: int, max_new_tokens: int) -> int:
        """The quantile of the output lengths of ``model``'s logged requests nearest in
        prompt length (on a log scale; the newer first among equals), at most
        ``max_new_tokens``. An answer that stopped at its own, lower, cap might have gone
        on: it counts as ``max_new_tokens`` long, as does one whose finish reason is not
        known (logged before finish reasons were, or by a backend that gave none)."""
        seen = list(self._seen[model])
        here = np.log(max(prompt_chars, 1))
        order = sorted(range(len(seen)), key=lambda i: (abs(np.log(max(seen[i].prompt_chars, 1)) - here), -i))  # fmt: skip
        lengths = [
            max_new_tokens if r.finish_reason in CUT else r.completion_tokens
            for r in (seen[i] for i in order[:NEIGHBOURS])
        ]
        return min(int(np.ceil(np.quantile(lengths, self.quantile))), max_new_tokens)

    def _from_profile(
        self,
        cfg: ModelConfig,
        p: Profile,
        prompt_chars: int,
        output: int,
        loaded: bool,
        prompt_tokens: int | None,
    ) -> Prediction:
        if prompt_tokens is None:
            prompt_tokens = p.prompt_tokens(prompt_chars)
        energy = p.kwh_per_prompt_token * prompt_tokens + p.kwh_per_output_token * output
        if not loaded:
            energy += p.loading_kwh
        intensity = self._grid_kg_per_kwh()
        return Prediction(
            cfg.name,
            energy,
            energy * intensity,
            self._cost(cfg, prompt_tokens, output, energy),
            prompt_tokens,
            output,
            f"its {p.requests} latest logged requests"
            + (f", {p.left_out} far outside the others not learned from" if p.left_out else "")
            + _contended_text(p)
            + f", at {output} output tokens"
            + ("" if loaded else ", loading included"),
        )

    def _scaled(
        self,
        cfg: ModelConfig,
        prompt_chars: int,
        max_new_tokens: int,
        loaded: bool,
        prompt_tokens: int | None,
    ) -> Prediction | None:
        """From the model nearest in size that has a history, scaled by parameter count
        (``prompt_tokens``, this model's count, read by the peer: another tokenizer's
        count is about as long)."""
        known = [m for m in self.config.models if self.profile(m.name) is not None]
        if not known:
            return None
        peer = min(known, key=lambda m: abs(np.log(m.params_b / cfg.params_b)))
        base = self.predict(peer.name, prompt_chars, max_new_tokens, loaded, prompt_tokens)
        assert base is not None
        scale = cfg.params_b / peer.params_b
        energy = base.energy_kwh * scale
        return Prediction(
            cfg.name,
            energy,
            base.co2_kg * scale,
            self._cost(cfg, base.prompt_tokens, base.completion_tokens, energy),
            base.prompt_tokens,
            base.completion_tokens,
            f"{peer.name}'s logged requests, scaled by parameter count ({scale:.3g}x)",
        )

    def _prompt_tokens_guess(self, prompt_chars: int) -> tuple[int, str]:
        """Without a model's own history: the prompt's tokens as the logged model with the
        most history reads them (its chat template's share and tokens a character; another
        tokenizer's count is about as long, and code reads more tokens a character than
        prose: 4 characters a token guessed a 326-token prompt at 188), else about 4
        characters a token. With what the guess rests on, for the basis."""
        if (peer := self._peer_line()) is None:
            tokens = prompt_chars // CHARS_PER_TOKEN_GUESS
            return max(1, tokens), f"; prompt tokens at about {CHARS_PER_TOKEN_GUESS} characters a token"  # fmt: skip
        p, name = peer
        tokens = max(1, p.prompt_tokens(prompt_chars))
        return tokens, f"; prompt tokens as {name}'s {p.requests} logged requests read them"

    def _peer_line(self) -> tuple[Profile, str] | None:
        """The logged model with the most history (the first among equals), by name."""
        peers = [(p, m.name) for m in self.config.models if (p := self.profile(m.name))]
        return max(peers, key=lambda known: known[0].requests) if peers else None

    def text_tokens(self, model: str, prompt_chars: int, text: str) -> tuple[int, int]:
        """The prompt and completion tokens of an answer whose endpoint did not count them
        (``FROM_TEXT``): the prompt as a prediction reads it before the request (its own
        history's line, else ``_prompt_tokens_guess``), the text received at the model's
        completion tokens a character (``completion_tokens_per_char``). A streamed text's
        pieces, which may count more, are ``ModelCalls.counted``'s: an unstreamed answer
        has none (README "Backends" gives what was measured)."""
        own = self.profile(model)
        per_char = self.completion_tokens_per_char(model)
        prompt = max(1, own.prompt_tokens(prompt_chars)) if own else self._prompt_tokens_guess(prompt_chars)[0]  # fmt: skip
        # rounded first: 0.7 a character of 10 is 7.000000000000001, not 8 tokens
        return prompt, int(np.ceil(round(per_char * len(text), 6))) if text else 0

    def completion_tokens_per_char(self, model: str) -> float:
        """``model``'s answers' tokens a character (``TextRates.per_char``: its prompts'
        are its own history's line's, else the logged model's with the most history)."""
        line = self.profile(model) or (peer[0] if (peer := self._peer_line()) else None)
        return self._rates.per_char(model, line.prompt_tokens_per_char if line else 0.0)

    def _grid_kg_per_kwh(self) -> float:
        return grid_intensity_g_per_kwh(self.config.carbon.country_iso_code) / 1000.0

    def _cost(self, cfg: ModelConfig, prompt_tokens: int, output: int, energy: float) -> float:
        """Token prices where the model has them, else its energy at the electricity price
        (as ``RouterLLM`` prices it)."""
        if cfg.priced_by_tokens:
            return cfg.cost_usd(prompt_tokens, output)
        return energy * self.config.carbon.electricity_price_usd_per_kwh
