"""The config file's sections other than its models (generation, router, carbon,
cascade, log, manager, limits, budgets, cache, override rules), and the strict base
every config model shares. :mod:`routerllm.config` puts them together into
``AppConfig`` and exports every name here too: import them from there."""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterator
from types import UnionType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from routerllm.checks import MAX_NEW_TOKENS, MAX_SEED, MAX_THREADS, MAX_USD_PER_KWH
from routerllm.exceptions import ConfigError

#: The hottest sampling accepted, as in the OpenAI API (llama.cpp takes any, uselessly).
MAX_TEMPERATURE = 2.0
#: The largest top_k: llama.cpp takes a 32-bit count (one beyond the vocabulary keeps it all).
MAX_TOP_K = 2**31 - 1
#: The longest context a model may be configured with: llama.cpp takes a 32-bit count,
#: and a longer one wrapped silently (2**32 + 17 ran a 17-token context).
MAX_CONTEXT_LENGTH = 2**31 - 1


def _home(path: str | None) -> str | None:
    """A path with ``~`` read as the home folder, as the shell and a GGUF's ``path`` read
    it: a config's ``log.path: ~/logs/requests.sqlite`` wrote into a folder named ``~``
    in whatever folder the command ran from. A NUL character, which no file name holds,
    is refused here: the filesystem's and SQLite's calls raised a bare ValueError."""
    if path is not None and "\x00" in path:
        raise ValueError(f"{path!r} holds a NUL character (\\0), which no file path can hold")
    return os.path.expanduser(path) if path is not None else None


class StrictConfig(BaseModel):
    """The base of every config model: an unknown key, NaN or infinity is refused."""

    # Fields set in code (``config.generation.temperature = 0``) are checked like the YAML.
    model_config = ConfigDict(
        extra="forbid", protected_namespaces=(), allow_inf_nan=False, validate_assignment=True
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_section_is_its_defaults(cls, data: Any) -> Any:
        """A section left empty (``budgets:`` with every setting under it commented out,
        which YAML reads as null) is the section's defaults, as a section left out is: a
        section (or list of them) that has defaults and does not itself take None."""
        if not isinstance(data, dict):
            return data
        empty = [k for k, v in data.items() if v is None and _section(cls.model_fields.get(k))]  # fmt: skip
        return {k: v for k, v in data.items() if k not in empty} if empty else data

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """A number field refuses a bool (YAML's ``yes``, ``on``, ``true``), which pydantic
        would take as 1 or 0. A number written as text (``5e-7``, which YAML reads as
        a string) is still read as that number."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None:
            kinds = set(get_args(field.annotation)) or {field.annotation}
            if kinds & {int, float}:
                raise ValueError(f"expected a number, not {value!r}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            raise ConfigError(
                f"cannot set {type(self).__name__}.{name} to {value!r}: {format_validation(e)}"
            ) from None

    #: What a validation error calls it ("invalid config: ..."): its class's name if empty.
    _described_as: ClassVar[str] = ""

    if not TYPE_CHECKING:  # a type checker keeps pydantic's typed signatures

        def __init__(self, **data: Any) -> None:
            # built in code (AppConfig(**data)): one ConfigError line, as a file's
            with type(self)._checked():
                super().__init__(**data)

        # as pydantic's own __init__ and RootModel's: a section inside a config is then
        # validated with it, its errors named by their place ("generation.temprature")
        __init__.__pydantic_base_init__ = True

        # pydantic's other ways in, each validating on its own (none calls another)
        @classmethod
        def model_validate(cls, obj: Any, **options: Any) -> Any:
            with cls._checked():
                return super().model_validate(obj, **options)

        @classmethod
        def model_validate_json(cls, json_data: Any, **options: Any) -> Any:
            with cls._checked():
                return super().model_validate_json(json_data, **options)

        @classmethod
        def model_validate_strings(cls, obj: Any, **options: Any) -> Any:
            with cls._checked():
                return super().model_validate_strings(obj, **options)

    @classmethod
    @contextlib.contextmanager
    def _checked(cls) -> Iterator[None]:
        """pydantic's ValidationError as one ConfigError line ("invalid config: ...")."""
        try:
            yield
        except ValidationError as e:
            raise ConfigError(
                f"invalid {cls._described_as or cls.__name__}: {format_validation(e, cls)}"
            ) from None


def _section(field: FieldInfo | None) -> bool:
    """Whether ``field`` is a section with defaults (a config model, or a list), which
    None is not a value of."""
    if field is None or field.is_required():
        return False
    kind = field.annotation
    return get_origin(kind) is list or (isinstance(kind, type) and issubclass(kind, BaseModel))


#: pydantic's errors of a number past a bound (Field's ge, gt, le, lt).
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def format_validation(err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line of every problem, each with the field it concerns. Given the ``model``
    validated, an unknown key says which key was likely meant, or which there are."""
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] in _BOUNDS:  # "less than or equal to 1000" says the bound, not the value
            msg += f", got {e['input']!r}"
        known = _keys_at(model, e["loc"][:-1]) if e["type"] == "extra_forbidden" else None
        if known:
            close = difflib.get_close_matches(str(e["loc"][-1]), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the keys here: {', '.join(known)}"
            msg = f"unknown key ({hint})"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def _keys_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys of the section at ``loc`` in ``model`` (a list's item by its index); None
    where that is not a config section."""
    kind: Any = model
    for part in loc:
        if isinstance(part, int):
            kind = get_args(kind)[0] if get_origin(kind) is list else None
        else:
            fields = kind.model_fields if isinstance(kind, type) and issubclass(kind, BaseModel) else {}  # fmt: skip
            kind = fields[part].annotation if part in fields else None
        if get_origin(kind) in (Union, UnionType):  # an optional section: the section's type
            kinds = [k for k in get_args(kind) if k is not type(None)]
            kind = kinds[0] if len(kinds) == 1 else None
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [k for k in kind.model_fields if k != "source"]
    return None


class GenerationConfig(StrictConfig):
    """Sampling defaults (the seeds' code defaults)."""

    temperature: float = Field(0.3, ge=0, le=MAX_TEMPERATURE)
    top_p: float = Field(0.9, gt=0, le=1)
    top_k: int | None = Field(
        None, ge=0, le=MAX_TOP_K, description="sample from the k likeliest tokens; 0: no "
        "filter; null: the backend's own (llama.cpp 40, transformers the model's "
        "generation_config.json or 50)",
    )  # fmt: skip
    min_p: float | None = Field(
        None, ge=0, le=1, description="sample from the tokens at least min_p times as likely "
        "as the likeliest, before the temperature; 0: no filter; null: the backend's own "
        "(llama.cpp 0.05, transformers none)",
    )  # fmt: skip
    max_new_tokens: int = Field(1024, gt=0, le=MAX_NEW_TOKENS)
    repetition_penalty: float = Field(1.1, gt=0)
    seed: int | None = Field(0, ge=0, le=MAX_SEED)
    complete_stubs: bool = Field(
        True,
        description="ask a request that is a bare Python function stub (a def whose body is "
        "its docstring) in each model's code style, and answer with the completed function",
    )


class RouterSettings(StrictConfig):
    name: str = "rules"
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="the router's draws; a router loaded from `path` "
        "keeps the seed it was saved with",
    )  # fmt: skip
    path: str | None = Field(
        None, min_length=1, description="directory of a saved (trained) router; overrides name"
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the router's options; with `path`, they replace the saved options of "
        "the same name (e.g. a policy router's policy_map)",
    )
    learn: bool = Field(
        False,
        description="teach the router loaded from `path` the feedback on its answers "
        "(RouterLLM.feedback, POST /routerllm/feedback) and save it back there; off, "
        "feedback is only stored in the request log",
    )

    _home_path = field_validator("path")(_home)

    @model_validator(mode="after")
    def _learns_from_a_saved_router(self) -> RouterSettings:
        if self.learn and not self.path:
            raise ValueError(
                "learn: true saves what the router learns back to its folder: give `path`, "
                "a saved feedback router (routerllm train --router feedback --out DIR)"
            )
        return self


TrackingMode = Literal["machine", "process"]
"""What CodeCarbon counts (``carbon.tracking_mode``)."""
TRACKING_MODES: tuple[str, ...] = get_args(TrackingMode)


class CarbonConfig(StrictConfig):
    enabled: bool = True
    country_iso_code: str = Field("USA", min_length=3, max_length=3)
    output_dir: str = "logs/carbon"
    electricity_price_usd_per_kwh: float = Field(
        0.15,
        ge=0,
        le=MAX_USD_PER_KWH,  # a request's cost stays finite (checks.py)
        description="prices local energy when a model has no per-token price",
    )
    tracking_mode: TrackingMode = Field(
        "machine",
        description="what CodeCarbon counts: the whole machine (its idle power and other "
        "processes' work too), or RouterLLM's process and its children (their CPU time, "
        "their memory); energy counters and GPUs are read whole either way",
    )

    _home_output_dir = field_validator("output_dir")(_home)


class CascadeConfig(StrictConfig):
    """Escalate an answer that fails the examples in its request to the next larger model
    (``routerllm/cascade.py``). It runs generated code in the sandbox, hence off by default."""

    enabled: bool = False
    timeout_s: float = Field(5.0, gt=0, description="time limit of one check, seconds")
    gate: str | None = Field(
        None,
        min_length=1,
        description="directory of a saved escalation gate (routerllm train-gate): it weighs "
        "every unverified answer (failed, or to a function stub without examples) and lets "
        "only the escalations most worth their energy go ahead, within its energy budget",
    )
    budget: float | None = Field(
        None,
        gt=0,
        description="the gate's energy budget, a share of the larger model's generation "
        "energy (default: the budget it was trained for)",
    )

    _home_gate = field_validator("gate")(_home)


class LogConfig(StrictConfig):
    path: str = Field("logs/requests.sqlite", min_length=1)

    @field_validator("path")
    @classmethod
    def _a_file(cls, path: str) -> str:
        if not path.strip() or path.strip() == ":memory:" or path.startswith("file:"):
            # SQLite would keep an in-memory log nowhere, and read file: as a URI
            raise ValueError(
                f"{path!r} is not a file path; the request log needs a file, "
                f"e.g. logs/requests.sqlite"
            )
        return _home(path) or path  # a NUL refused as in every other path


class ManagerConfig(StrictConfig):
    memory_budget_gb: float = Field(8.0, gt=0)
    n_threads: int | None = Field(
        None, gt=0, le=MAX_THREADS, description="CPU threads for local backends"
    )


class LimitsConfig(StrictConfig):
    max_prompt_chars: int = Field(200_000, gt=0)


class BudgetLimits(StrictConfig):
    """Limits on one quantity (kg of CO2, or USD); each is off when left out."""

    per_request: float | None = Field(None, gt=0, description="one request, all its parts")
    hourly: float | None = Field(None, gt=0, description="any 60 minutes, every logged request")
    daily: float | None = Field(None, gt=0, description="any 24 hours, every logged request")

    @field_validator("per_request", "hourly", "daily")
    @classmethod
    def _not_tiny(cls, value: float | None) -> float | None:
        if value is not None and value < 1e-12:  # shares of smaller limits overflow
            raise ValueError("must be at least 1e-12 (a nanogram of CO2, or 1e-12 USD)")
        return value

    def windows(self) -> dict[str, float]:
        """The rolling windows that have a limit: hourly, daily."""
        return {w: v for w in ("hourly", "daily") if (v := getattr(self, w)) is not None}

    def any(self) -> bool:
        return self.per_request is not None or bool(self.windows())


#: The seeds' carbon-aware levels (MISSION M3.7): the largest model a routed request
#: may go to, billions of parameters.
LEVEL_MAX_PARAMS_B = {"aggressive": 34.0, "balanced": 70.0, "relaxed": 405.0}


class BudgetConfig(StrictConfig):
    """Carbon and cost budgets (``carbon/budget.py``): every request, routed or not, is
    kept within them; routed requests go to a smaller model near a limit."""

    co2_kg: BudgetLimits = Field(default_factory=BudgetLimits)
    cost_usd: BudgetLimits = Field(default_factory=BudgetLimits)
    downgrade_at: float = Field(
        0.8,
        gt=0,
        le=1,
        description="share of an hourly or daily budget spent from which a routed request "
        "goes to the next smaller model than its router chose",
    )

    level: Literal["aggressive", "balanced", "relaxed"] | None = Field(
        None,
        description="the seeds' carbon-aware levels: routed requests go to models of at most "
        "34B (aggressive), 70B (balanced) or 405B (relaxed) parameters",
    )
    max_params_b: float | None = Field(
        None, gt=0, description="the largest model routed requests may go to, billions; "
        "overrides the level's",
    )  # fmt: skip

    def routed_cap(self) -> float | None:
        """The largest model, in billions of parameters, routed requests may go to."""
        if self.max_params_b is not None:
            return self.max_params_b
        return LEVEL_MAX_PARAMS_B[self.level] if self.level else None

    def limits(self) -> dict[str, BudgetLimits]:
        """The quantities that have a limit (co2_kg, cost_usd)."""
        return {k: v for k in ("co2_kg", "cost_usd") if (v := getattr(self, k)).any()}


class CacheConfig(StrictConfig):
    """The request cache (``routerllm/cache.py``): a request asked again is answered with
    its earlier answer, where that answer was fixed by the request (temperature 0 or a
    seed), without running a model."""

    enabled: bool = False
    max_entries: int = Field(1000, ge=1, le=1_000_000)
    ttl_s: float = Field(86_400.0, gt=0, description="seconds an answer is served from the cache")


class OverrideRule(StrictConfig):
    """A rule applied after the router (``routerllm/overrides.py``): a routed request
    whose prompt meets every condition given goes to ``model``, to the smallest model
    of ``tier``, or ``step`` models larger (negative: smaller) than its router chose."""

    name: str = Field(min_length=1, max_length=80, description="shown in the decision's reason")
    pattern: str | None = Field(
        None, min_length=1, description="a regular expression found in the prompt (any case)"
    )
    min_chars: int | None = Field(None, ge=1, description="the prompt is at least this long")
    max_chars: int | None = Field(None, ge=1, description="the prompt is at most this long")
    math: bool | None = Field(
        None, description="true: the prompt asks for a calculation; false: it does not"
    )
    model: str | None = Field(None, min_length=1, description="send it to this model")
    tier: Literal["light", "medium", "heavy"] | None = Field(
        None, description="send it to the smallest available model of this tier"
    )
    step: int | None = Field(None, ge=-10, le=10, description="models larger (+) or smaller (-)")

    @model_validator(mode="after")
    def _one_condition_one_action(self) -> OverrideRule:
        if not self.name.strip():
            raise ValueError("name is blank; give the rule a name its decisions can show")
        conditions = [self.pattern, self.min_chars, self.max_chars, self.math]
        if all(c is None for c in conditions):
            raise ValueError("give at least one condition: pattern, min_chars, max_chars or math")
        actions = [a for a in ("model", "tier", "step") if getattr(self, a) is not None]
        if len(actions) != 1:
            raise ValueError(f"give exactly one of model, tier or step (got {', '.join(actions) or 'none'})")  # fmt: skip
        if self.step == 0:
            raise ValueError("step 0 changes nothing; give a step of 1 or more, or -1 or less")
        if self.pattern is not None:
            from routerllm.overrides import check_pattern

            check_pattern(self.pattern)
        if self.min_chars and self.max_chars and self.min_chars > self.max_chars:
            raise ValueError(f"min_chars {self.min_chars} is over max_chars {self.max_chars}")
        return self
