"""User-facing configuration: pydantic models loaded from YAML.

A config declares the models (tiers, backends, where the weights are, their
cost and energy figures), the router, generation defaults, carbon tracking,
the request log, the memory budget and the carbon and cost budgets.
``load_config`` turns every problem into one readable :class:`ConfigError`.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from routerllm.checks import MAX_SEED, repeated
from routerllm.exceptions import ConfigError

Tier = Literal["light", "medium", "heavy"]
TIER_ORDER: dict[str, int] = {"light": 0, "medium": 1, "heavy": 2}
PACKAGED_CONFIGS = ("local", "development", "production")
#: The hottest sampling accepted, as in the OpenAI API (llama.cpp takes any, uselessly).
MAX_TEMPERATURE = 2.0
#: The most new tokens a request may ask for: far beyond any model's context, and small
#: enough that its predicted energy, CO2 and cost stay finite numbers.
MAX_NEW_TOKENS = 2**31 - 1
#: The most CPU threads a local backend may be given: llama.cpp's GGML_MAX_N_THREADS.
#: A huge count aborted the whole process (std::bad_alloc) as the model loaded.
MAX_THREADS = 512


def _home(path: str | None) -> str | None:
    """A path with ``~`` read as the home folder, as the shell and a GGUF's ``path`` read
    it: a config's ``log.path: ~/logs/requests.sqlite`` wrote into a folder named ``~``
    in whatever folder the command ran from."""
    return os.path.expanduser(path) if path is not None else None


class _Strict(BaseModel):
    # Fields set in code (``config.generation.temperature = 0``) are checked like the YAML.
    model_config = ConfigDict(
        extra="forbid", protected_namespaces=(), allow_inf_nan=False, validate_assignment=True
    )

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


# llama.cpp file types a GGUF can be re-quantized to (LLAMA_FTYPE_MOSTLY_<name>).
RequantizeType = Literal[
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"
]


class GGUFSource(_Strict):
    """Where a llama.cpp model file comes from: a path, one packaged file, or packaged parts."""

    path: str | None = None
    package: str | None = Field(None, description="module whose directory holds `filename`")
    filename: str | None = None
    parts: list[str] | None = Field(
        None, description="modules with get_part_path(), concatenated in this order"
    )
    sha256: str | None = None
    pip: str | None = Field(None, description="what to `pip install` when the package is missing")
    requantize: RequantizeType | None = Field(
        None,
        description="llama.cpp type to convert the file to once, into the model cache "
        "(e.g. Q8_0; benchmarks/quantization.py compares types)",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> GGUFSource:
        kinds = [self.path is not None, self.package is not None, bool(self.parts)]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of: path, package (+ filename), parts")
        if self.package is not None and not self.filename:
            raise ValueError("a packaged GGUF needs `filename`")
        return self


class ModelConfig(_Strict):
    """One model the router can send requests to."""

    name: str = Field(min_length=1)
    backend: Literal["llama_cpp", "hf", "openai_http"]
    tier: Tier
    params_b: float = Field(gt=0, description="parameters, billions")
    class_id: int | None = Field(
        None, description="seed class map: 0 heavy code, 1 medium text, 2 medium code, 3 light"
    )
    category: Literal["code", "text", "general"] = "general"
    model_id: str | None = Field(
        None, description="HF id or local dir (hf), served model name (openai_http)"
    )
    gguf: GGUFSource | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    quantization: str | None = None
    load_in_4bit: bool = False
    memory_gb: float = Field(gt=0)
    gpus: int = Field(0, ge=0, description="GPUs needed; 0 runs on CPU")
    context_length: int = Field(4096, gt=16)
    cost_per_1m_input_usd: float = Field(0.0, ge=0)
    cost_per_1m_output_usd: float = Field(0.0, ge=0)
    energy_per_token_kwh: float | None = Field(None, ge=0, description="per generated token")
    co2_per_token_kg: float | None = Field(None, ge=0, description="per generated token")
    quality_score: float | None = Field(None, ge=0, le=1)
    avg_latency_s: float | None = Field(None, ge=0)
    figures_source: str = ""
    timeout_s: float = Field(120.0, gt=0, le=86_400, description="per attempt, the whole answer")
    max_retries: int = Field(3, ge=0, le=20)

    @model_validator(mode="after")
    def _backend_fields(self) -> ModelConfig:
        if self.backend == "llama_cpp" and self.gguf is None:
            raise ValueError(f"model {self.name!r}: backend llama_cpp needs `gguf`")
        if self.backend == "hf" and not self.model_id:
            raise ValueError(f"model {self.name!r}: backend hf needs `model_id`")
        if self.backend == "openai_http" and not (self.base_url and self.model_id):
            raise ValueError(
                f"model {self.name!r}: backend openai_http needs `base_url` and `model_id`"
            )
        return self

    def source_text(self) -> str:
        """Where this model's weights come from, as text: its backend and file, package,
        HF id or endpoint (not its name, tier or figures). Two runs with the same source
        text ran the same model."""
        fields = {"backend", "gguf", "model_id", "base_url", "load_in_4bit"}
        return json.dumps(self.model_dump(include=fields), sort_keys=True)

    @property
    def size(self) -> tuple[int, float]:
        """Its place on the ladder: tier, then parameter count (models of one size tie)."""
        return TIER_ORDER[self.tier], self.params_b

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.cost_per_1m_input_usd
            + completion_tokens * self.cost_per_1m_output_usd
        ) / 1e6


class GenerationConfig(_Strict):
    """Sampling defaults (the seeds' code defaults)."""

    temperature: float = Field(0.3, ge=0, le=MAX_TEMPERATURE)
    top_p: float = Field(0.9, gt=0, le=1)
    max_new_tokens: int = Field(1024, gt=0, le=MAX_NEW_TOKENS)
    repetition_penalty: float = Field(1.1, gt=0)
    seed: int | None = Field(0, ge=0, le=MAX_SEED)
    complete_stubs: bool = Field(
        True,
        description="ask a request that is a bare Python function stub (a def whose body is "
        "its docstring) in each model's code style, and answer with the completed function",
    )


class RouterSettings(_Strict):
    name: str = "rules"
    seed: int = Field(0, ge=0, le=MAX_SEED)
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


class CarbonConfig(_Strict):
    enabled: bool = True
    country_iso_code: str = Field("USA", min_length=3, max_length=3)
    output_dir: str = "logs/carbon"
    electricity_price_usd_per_kwh: float = Field(
        0.15, ge=0, description="prices local energy when a model has no per-token price"
    )

    _home_output_dir = field_validator("output_dir")(_home)


class CascadeConfig(_Strict):
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


class LogConfig(_Strict):
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
        return os.path.expanduser(path)


class ManagerConfig(_Strict):
    memory_budget_gb: float = Field(8.0, gt=0)
    n_threads: int | None = Field(
        None, gt=0, le=MAX_THREADS, description="CPU threads for local backends"
    )


class LimitsConfig(_Strict):
    max_prompt_chars: int = Field(200_000, gt=0)


class BudgetLimits(_Strict):
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


class BudgetConfig(_Strict):
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


class CacheConfig(_Strict):
    """The request cache (``routerllm/cache.py``): a request asked again is answered with
    its earlier answer, where that answer was fixed by the request (temperature 0 or a
    seed), without running a model."""

    enabled: bool = False
    max_entries: int = Field(1000, ge=1, le=1_000_000)
    ttl_s: float = Field(86_400.0, gt=0, description="seconds an answer is served from the cache")


class OverrideRule(_Strict):
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


class AppConfig(_Strict):
    """The whole config file."""

    models: list[ModelConfig] = Field(min_length=1)
    router: RouterSettings = Field(default_factory=RouterSettings)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    carbon: CarbonConfig = Field(default_factory=CarbonConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    manager: ManagerConfig = Field(default_factory=ManagerConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    budgets: BudgetConfig = Field(default_factory=BudgetConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    overrides: list[OverrideRule] = Field(
        default_factory=list, description="rules applied after the router, first match wins"
    )
    source: str = Field("", description="where this config was loaded from (set by load_config)")

    @model_validator(mode="after")
    def _unique_names(self) -> AppConfig:
        if dupes := repeated(m.name for m in self.models):
            raise ValueError(f"duplicate model names: {', '.join(dupes)}")
        unmeasured = [m.name for m in self.models if m.backend == "openai_http" and m.energy_per_token_kwh is None and m.co2_per_token_kg is None]  # fmt: skip
        if self.budgets.co2_kg.any() and unmeasured:
            raise ValueError(
                f"budgets.co2_kg: the remote model(s) {', '.join(unmeasured)} have no "
                f"energy_per_token_kwh or co2_per_token_kg, so their CO2 is not known and the "
                f"budget could not hold; give their per-token figures"
            )
        cap = self.budgets.routed_cap()
        if cap is not None and not any(m.params_b <= cap for m in self.models):
            raise ValueError(
                f"budgets: routed requests may go to models of at most {cap:g}B parameters "
                f"(max_params_b or level), but every configured model is larger; raise it"
            )
        names = [m.name for m in self.models]
        for i, rule in enumerate(self.overrides):
            if rule.model is not None and rule.model not in names:
                raise ValueError(
                    f"overrides[{i}] ({rule.name}) sends to {rule.model!r}, which is not a "
                    f"configured model ({', '.join(names)})"
                )
        if dupes := repeated(r.name for r in self.overrides):
            raise ValueError(f"duplicate override names: {', '.join(dupes)}")
        local = [m for m in self.models if m.backend != "openai_http"]
        unpriced = [m for m in local if not (m.cost_per_1m_input_usd or m.cost_per_1m_output_usd)]
        for quantity, models in (("co2_kg", local), ("cost_usd", unpriced)):
            if getattr(self.budgets, quantity).any() and not self.carbon.enabled and models:
                raise ValueError(
                    f"budgets.{quantity} needs carbon.enabled: true (with carbon tracking off, "
                    f"the energy of {', '.join(m.name for m in models)} is not measured, so "
                    f"{'its CO2' if quantity == 'co2_kg' else 'its cost, priced by energy,'} "
                    f"is not known and the budget could not hold)"
                )
        return self

    def model(self, name: str) -> ModelConfig:
        from routerllm.exceptions import UnknownNameError

        for m in self.models:
            if m.name == name:
                return m
        raise UnknownNameError("model", name, [m.name for m in self.models])

    def models_by_size(self) -> list[ModelConfig]:
        """Smallest first: tier, then parameter count."""
        return sorted(self.models, key=lambda m: m.size)


def format_validation(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    """A file path, or the name of a packaged config (local, development, production)."""
    if path is None:  # an empty variable counts as unset, as shells treat it
        path = os.environ.get("ROUTERLLM_CONFIG") or "local"
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(
            f"a config is a YAML path or one of: {', '.join(PACKAGED_CONFIGS)}; got "
            f"{type(path).__name__} (a loaded AppConfig goes to RouterLLM(config) directly)"
        )
    if not str(path).strip():
        raise ConfigError(
            f"the config path is empty: give a YAML path or one of: {', '.join(PACKAGED_CONFIGS)}"
        )
    p = Path(path)
    if p.is_file():
        return p
    if str(path) in PACKAGED_CONFIGS:
        return Path(str(resources.files("routerllm") / "configs" / f"{path}.yaml"))
    if p.is_dir():
        raise ConfigError(f"config {path} is a directory: give a YAML file inside it")
    raise ConfigError(
        f"config file not found: {path} (give a YAML path or one of: {', '.join(PACKAGED_CONFIGS)})"
    )


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load``, refusing a key given twice in one mapping: PyYAML keeps the
    last silently, so a second ``budgets:`` dropped the limits of the first."""
    import yaml
    from yaml.constructor import ConstructorError

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor`: its keys may be set again after it
                key = self.construct_object(key_node, deep=deep)
                try:
                    again = key in seen
                    seen.add(key)
                except TypeError:  # unhashable: the base class says so
                    continue
                if again:
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (give each key once)", key_node.start_mark,
                    )  # fmt: skip
            return super().construct_mapping(node, deep)

    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no Python objects


def load_config(path: str | os.PathLike[str] | None = None) -> AppConfig:
    """Load and validate a YAML config; every problem becomes one ConfigError."""
    import yaml

    file = resolve_config_path(path)
    try:
        data = _load_yaml(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{file}: malformed YAML{where}: {problem}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: cannot read config: {e}") from e
    except ValueError as e:  # an integer of over 4,300 digits: Python refuses to read it
        raise ConfigError(f"{file}: malformed YAML: {e}") from e
    except RecursionError as e:
        raise ConfigError(f"{file}: malformed YAML: nested too deeply") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping with a `models` list at the top level")
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{file}: invalid config: {format_validation(e)}") from e
    config.source = str(file)
    return config
