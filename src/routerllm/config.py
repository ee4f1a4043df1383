"""User-facing configuration: pydantic models loaded from YAML.

A config declares the models (tiers, backends, where the weights are, their
cost and energy figures), the router, generation defaults, carbon tracking,
the request log, the memory budget and the carbon and cost budgets.
``load_config`` turns every problem into one readable :class:`ConfigError`.
The models and the whole file (``AppConfig``) are here; its other sections, in
:mod:`routerllm.config_sections`, are exported from here too.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import urllib.parse
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from routerllm.checks import (
    MAX_KG_CO2_PER_TOKEN,
    MAX_KWH_PER_TOKEN,
    MAX_PARAMS_B,
    MAX_USD_PER_1M_TOKENS,
    MIN_PARAMS_B,
    repeated,
)
from routerllm.config_sections import (
    LEVEL_MAX_PARAMS_B,
    MAX_CONTEXT_LENGTH,
    MAX_NEW_TOKENS,
    MAX_TEMPERATURE,
    MAX_THREADS,
    MAX_TOP_K,
    BudgetConfig,
    BudgetLimits,
    CacheConfig,
    CarbonConfig,
    CascadeConfig,
    GenerationConfig,
    LimitsConfig,
    LogConfig,
    ManagerConfig,
    OverrideRule,
    RouterSettings,
    StrictConfig,
    format_validation,
)
from routerllm.config_yaml import read_config_yaml
from routerllm.exceptions import ConfigError
from routerllm.path_checks import refuse_special_file, what_is

__all__ = [
    "LEVEL_MAX_PARAMS_B",
    "MAX_CONTEXT_LENGTH",
    "MAX_NEW_TOKENS",
    "MAX_TEMPERATURE",
    "MAX_TOP_K",
    "MAX_THREADS",
    "PACKAGED_CONFIGS",
    "TIER_ORDER",
    "AppConfig",
    "BudgetConfig",
    "BudgetLimits",
    "CacheConfig",
    "CarbonConfig",
    "CascadeConfig",
    "GGUFSource",
    "GenerationConfig",
    "LimitsConfig",
    "LogConfig",
    "ManagerConfig",
    "ModelConfig",
    "OverrideRule",
    "RequantizeType",
    "RouterSettings",
    "StrictConfig",
    "Tier",
    "format_validation",
    "load_config",
    "resolve_config_path",
]

Tier = Literal["light", "medium", "heavy"]
TIER_ORDER: dict[str, int] = {"light": 0, "medium": 1, "heavy": 2}
PACKAGED_CONFIGS = ("local", "development", "production")


# llama.cpp file types a GGUF can be re-quantized to (LLAMA_FTYPE_MOSTLY_<name>).
RequantizeType = Literal[
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"
]


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _checked_sha256(digest: object) -> object:
    """``digest``, where it is a sha256 as ``sha256sum`` prints it."""
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise ValueError(
            f"{digest!r:.80} is not a sha256 (64 hexadecimal digits, as `sha256sum` prints "
            f"them, without a 'sha256:' prefix)"
        )
    return digest


class GGUFSource(StrictConfig):
    """Where a llama.cpp model file comes from: a path, one packaged file, or packaged parts."""

    path: str | None = None
    package: str | None = Field(None, description="module whose directory holds `filename`")
    filename: str | None = None
    parts: list[str] | None = Field(
        None, description="modules with get_part_path(), concatenated in this order"
    )
    sha256: str | list[str] | None = Field(
        None,
        description="the file's sha256; of llama.cpp's split files, the first's, or a list "
        "of each split's in order",
    )
    pip: str | None = Field(None, description="what to `pip install` when the package is missing")
    requantize: RequantizeType | None = Field(
        None,
        description="llama.cpp type to convert the file to once, into the model cache "
        "(e.g. Q8_0; benchmarks/quantization.py compares types)",
    )

    @field_validator("sha256", mode="before")
    @classmethod
    def _a_sha256(cls, sha256: object) -> object:
        """64 hexadecimal digits (either case), or a list of them, one per split file:
        anything else could never match, and the first request would call a sound file
        corrupt."""
        if sha256 is None:
            return None
        if isinstance(sha256, str):
            return _checked_sha256(sha256)
        if not isinstance(sha256, list):
            raise ValueError(
                f"expected a sha256 or a list of them (one per split file), not {sha256!r:.80}"
            )
        if not sha256:
            raise ValueError(
                "an empty list: give one sha256 per split file, in order, or leave it out"
            )
        for number, digest in enumerate(sha256, 1):
            try:
                _checked_sha256(digest)
            except ValueError as e:
                raise ValueError(f"entry {number} of {len(sha256)}: {e}") from None
        return sha256

    @model_validator(mode="after")
    def _one_kind(self) -> GGUFSource:
        kinds = [self.path is not None, self.package is not None, bool(self.parts)]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of: path, package (+ filename), parts")
        if self.package is not None and not self.filename:
            raise ValueError("a packaged GGUF needs `filename`")
        if self.parts and isinstance(self.sha256, list):
            raise ValueError(
                "a sha256 of `parts` is the sha256 of the file they make together: give "
                "one sha256, not a list"
            )
        return self


#: An environment variable's name, as POSIX shells take one.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A part of an api_key_env (between its _) that no variable's name has but a key does:
#: 16 characters or more with a digit among them, or 20 or more of mixed case (a name is
#: one case: AZUREOPENAIAPIKEYWESTEUROPE loads). Keys of letters, digits and _ alone
#: (Groq's gsk_..., Hugging Face's hf_..., Together's hex, Mistral's) would otherwise pass
#: for a name, and be shown as one.
_KEY_PART = re.compile(
    r"(?:^|_)(?:(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{16,}"
    r"|(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]{20,})"
)


class ModelConfig(StrictConfig):
    """One model the router can send requests to."""

    name: str = Field(min_length=1)
    backend: Literal["llama_cpp", "hf", "openai_http"]
    tier: Tier
    params_b: float = Field(ge=MIN_PARAMS_B, le=MAX_PARAMS_B, description="parameters, billions")
    class_id: int | None = Field(
        None,
        ge=0,
        description="seed class map: 0 heavy code, 1 medium text, 2 medium code, 3 light",
    )
    category: Literal["code", "text", "general"] = "general"
    model_id: str | None = Field(
        None, description="HF id, local dir or GGUF file (hf), served model name (openai_http)"
    )
    gguf: GGUFSource | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    quantization: str | None = None
    load_in_4bit: bool = False
    memory_gb: float | None = Field(
        None,
        gt=0,
        description="counted against manager.memory_budget_gb; needed by llama_cpp and hf, "
        "not by openai_http (its memory is its endpoint's)",
    )
    gpus: int = Field(0, ge=0, description="GPUs needed; 0 runs on CPU")
    context_length: int = Field(4096, gt=16, le=MAX_CONTEXT_LENGTH)
    # bounded so that a request's predicted energy, CO2 and cost stay finite (checks.py)
    cost_per_1m_input_usd: float = Field(0.0, ge=0, le=MAX_USD_PER_1M_TOKENS)
    cost_per_1m_output_usd: float = Field(0.0, ge=0, le=MAX_USD_PER_1M_TOKENS)
    # per generated token; reading the prompt included unless the per prompt token figures
    # below give it apart (a long first prompt was predicted as a short one without them)
    energy_per_token_kwh: float | None = Field(None, ge=0, le=MAX_KWH_PER_TOKEN)
    co2_per_token_kg: float | None = Field(None, ge=0, le=MAX_KG_CO2_PER_TOKEN)
    energy_per_prompt_token_kwh: float | None = Field(
        None, ge=0, le=MAX_KWH_PER_TOKEN, description="per prompt token read"
    )
    co2_per_prompt_token_kg: float | None = Field(
        None, ge=0, le=MAX_KG_CO2_PER_TOKEN, description="per prompt token read"
    )
    quality_score: float | None = Field(None, ge=0, le=1)
    avg_latency_s: float | None = Field(None, ge=0)
    figures_source: str = ""
    timeout_s: float = Field(120.0, gt=0, le=86_400, description="per attempt, the whole answer")
    max_retries: int = Field(3, ge=0, le=20)

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:
        """A name that can be asked for and printed: the server and ``--model`` refuse a
        blank one, spaces around it do not show, and a control character (a new line, a
        tab, an escape) broke the lines of every table that prints it."""
        if not name.strip():
            raise ValueError("a model's name is blank: give it a name")
        if name != name.strip():
            raise ValueError(f"a model's name has spaces around it ({name!r:.80}): remove them")
        if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
            raise ValueError(
                f"a model's name holds a control character ({name!r:.80}): use visible text"
            )
        # a zero-width space, a right-to-left override, a byte-order mark: the name shows
        # as another (``tiny\u200b`` as ``tiny``), which asking for by name then missed
        if invisible := [c for c in name if unicodedata.category(c) == "Cf"]:
            raise ValueError(
                f"a model's name holds an invisible format character (U+{ord(invisible[0]):04X} "
                f"in {name!r:.80}): use visible text"
            )
        return name

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, name: str | None) -> str | None:
        """The name of an environment variable, never the key itself (not quoted: it may
        be the key): a key written here would load, and be printed in each model's reason
        to be unavailable ("environment variable sk-... is not set")."""
        if name is not None and _KEY_PART.search(name):
            raise ValueError(
                "api_key_env looks like an API key, not the name of the environment variable "
                "that holds one (such as OPENAI_API_KEY); give the key in that variable, "
                "never in the config (and replace the key, if the config was shared)"
            )
        if name is not None and not _ENV_NAME.fullmatch(name):
            raise ValueError(
                "api_key_env names the environment variable that holds the API key (letters, "
                "digits and _, such as OPENAI_API_KEY), and this is no such name; give the "
                "key in that variable, never in the config"
            )
        return name

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        """A URL the API's paths (``/chat/completions``) can be appended to and sent over
        HTTP: one without a scheme would load as an unavailable model ("unknown url type:
        localhost"), and ftp:// or file:// be asked for answers."""
        if url is None:
            return None
        url = url.strip()
        if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
            raise ValueError(f"base_url {url!r:.80} holds a space or control character")
        parts = urllib.parse.urlsplit(url)
        if "://" not in url:
            raise ValueError(
                f"base_url {url!r:.80} has no scheme: give http://{url:.80} or https://{url:.80}"
            )
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(f"base_url {url!r:.80} is not an http:// or https:// URL")
        if parts.username is not None or parts.password is not None:  # not quoted: a secret
            raise ValueError(
                "base_url holds a user name or password, which would be shown in errors and "
                "logs; remove it, and give the API key in the environment variable "
                "`api_key_env` names"
            )
        if not parts.hostname:
            raise ValueError(f"base_url {url!r:.80} names no host")
        try:
            parts.port  # noqa: B018 - read for its check: a number from 0 to 65535
        except ValueError:
            raise ValueError(
                f"base_url {url!r:.80} has a bad port (a number up to 65535)"
            ) from None
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            raise ValueError(
                f"base_url {url!r:.80} has a query or fragment (?..., #...): the API's paths "
                f"are appended to it; give the URL up to /v1"
            )
        return url

    @model_validator(mode="after")
    def _backend_fields(self) -> ModelConfig:
        if self.backend != "openai_http" and self.memory_gb is None:
            raise ValueError(
                f"model {self.name!r}: backend {self.backend} needs `memory_gb`, the GB its "
                f"weights take here (counted against manager.memory_budget_gb)"
            )
        if self.backend == "llama_cpp" and self.gguf is None:
            raise ValueError(f"model {self.name!r}: backend llama_cpp needs `gguf`")
        if self.backend == "hf" and not self.model_id:
            raise ValueError(f"model {self.name!r}: backend hf needs `model_id`")
        if self.backend == "openai_http" and not (self.base_url and self.model_id):
            raise ValueError(
                f"model {self.name!r}: backend openai_http needs `base_url` and `model_id`"
            )
        if self.prompt_figures and not self.generation_figures:
            given = "energy_per_prompt_token_kwh" if self.energy_per_prompt_token_kwh is not None else "co2_per_prompt_token_kg"  # fmt: skip
            raise ValueError(
                f"model {self.name!r}: {given} is given without energy_per_token_kwh or "
                f"co2_per_token_kg, and every generated token would count 0 kWh; give the "
                f"figure per generated token too"
            )
        return self

    @property
    def generation_figures(self) -> bool:
        """Whether it has a figure (energy or CO2) per generated token."""
        return self.energy_per_token_kwh is not None or self.co2_per_token_kg is not None

    @property
    def prompt_figures(self) -> bool:
        """Whether it has a figure (energy or CO2) per prompt token: prompts count apart."""
        return self.energy_per_prompt_token_kwh is not None or self.co2_per_prompt_token_kg is not None  # fmt: skip

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

    @property
    def priced_by_tokens(self) -> bool:
        """Whether it has token prices; without, its cost is its energy at the
        electricity price (``carbon.electricity_price_usd_per_kwh``)."""
        return bool(self.cost_per_1m_input_usd or self.cost_per_1m_output_usd)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.cost_per_1m_input_usd
            + completion_tokens * self.cost_per_1m_output_usd
        ) / 1e6


AUTO = "auto"
"""The model name that asks RouterLLM's server to route (a configured name skips routing)."""


class AppConfig(StrictConfig):
    """The whole config file. ``load_config`` reads one from YAML; built in code
    (``AppConfig(**data)``, ``AppConfig.model_validate(data)``, ``model_validate_json``,
    ``model_validate_strings``) it is checked the same,
    every problem one :class:`ConfigError`."""

    _described_as: ClassVar[str] = "config"

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
    source: str = Field(
        "", exclude=True, description="where this config was loaded from (set by load_config)"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> AppConfig:
        if dupes := repeated(m.name for m in self.models):
            raise ValueError(f"duplicate model names: {', '.join(dupes)}")
        if any(m.name == AUTO for m in self.models):
            raise ValueError(
                f"a model is named {AUTO!r}, the name that asks the server to route: it could "
                f"not be asked for by name; name it otherwise"
            )
        unmeasured = [m for m in self.models if m.backend == "openai_http" and not m.generation_figures]  # fmt: skip
        if self.budgets.co2_kg.any() and unmeasured:
            raise ValueError(
                f"budgets.co2_kg: the remote model(s) {', '.join(m.name for m in unmeasured)} have no "
                f"energy_per_token_kwh or co2_per_token_kg, so their CO2 is not known and the "
                f"budget could not hold; give their per-token figures"
            )
        # a remote model without token prices costs its estimated energy: none without figures
        costless = [m.name for m in unmeasured if not (m.cost_per_1m_input_usd or m.cost_per_1m_output_usd)]  # fmt: skip
        if self.budgets.cost_usd.any() and costless:
            raise ValueError(
                f"budgets.cost_usd: the remote model(s) {', '.join(costless)} have no token "
                f"prices (cost_per_1m_input_usd, cost_per_1m_output_usd) and no per-token "
                f"figures, so their cost is not known and the budget could not hold; give "
                f"their prices, or energy_per_token_kwh (0 for an endpoint that costs nothing)"
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
        """The configured model of that name (``UnknownNameError`` listing them if none)."""
        from routerllm.exceptions import UnknownNameError

        for m in self.models:
            if m.name == name:
                return m
        raise UnknownNameError("model", name, [m.name for m in self.models])

    def models_by_size(self) -> list[ModelConfig]:
        """Smallest first: tier, then parameter count."""
        return sorted(self.models, key=lambda m: m.size)


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    """A file path, or the name of a packaged config (local, development, production)."""
    given = ""  # where the path came from, where the user may not remember giving it
    if path is None:  # an empty variable counts as unset, as shells treat it
        path = os.environ.get("ROUTERLLM_CONFIG") or "local"
        given = " (from $ROUTERLLM_CONFIG)" if path != "local" else ""
    if not isinstance(path, str | os.PathLike):
        # a dict is a config built in code: say how it becomes one a system takes
        hint = (
            "a config built in code is checked by AppConfig.model_validate(data); give the "
            "AppConfig to RouterLLM(config)"
            if isinstance(path, dict)
            else "a loaded AppConfig goes to RouterLLM(config) directly"
        )
        raise ConfigError(
            f"a config is a YAML path or one of: {', '.join(PACKAGED_CONFIGS)}; got "
            f"{type(path).__name__} ({hint})"
        )
    if not str(path).strip():
        raise ConfigError(
            f"the config path is empty{given}: give a YAML path or one of: "
            f"{', '.join(PACKAGED_CONFIGS)}"
        )
    p = Path(path)
    if p.is_file():
        return p
    if str(path) in PACKAGED_CONFIGS:
        return Path(str(resources.files("routerllm") / "configs" / f"{path}.yaml"))
    if p.is_dir():
        raise ConfigError(f"config {path}{given} is a directory: give a YAML file inside it")
    # read_bytes() would wait on a named pipe for a writer, or read a device forever
    refuse_special_file(p, f"give the path of a YAML config file{given}", ConfigError)
    if p.is_symlink():  # listed by ls: not "not found"
        raise ConfigError(
            f"config {path}{given} is {what_is(p)}: give a YAML path or one of: "
            f"{', '.join(PACKAGED_CONFIGS)}"
        )
    raise ConfigError(
        f"config file not found: {path}{given}; give a YAML path or one of: "
        f"{', '.join(PACKAGED_CONFIGS)}"
    )


def load_config(path: str | os.PathLike[str] | None = None) -> AppConfig:
    """Load and validate a YAML config; every problem becomes one ConfigError."""
    file = resolve_config_path(path)
    data = read_config_yaml(file)
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping with a `models` list at the top level")
    if "source" in data:  # set below to the file's path: a value written here was dropped
        keys = ", ".join(k for k in AppConfig.model_fields if k != "source")
        raise ConfigError(
            f"{file}: invalid config: source: unknown key (a config's source is the file "
            f"it is loaded from, not a setting; the keys here: {keys})"
        )
    try:
        config = AppConfig.model_validate(data)
    except ConfigError as e:  # "invalid config: ...": said of the file
        raise ConfigError(f"{file}: {e}") from None
    config.source = str(file)
    return config
