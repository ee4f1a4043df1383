"""User-facing configuration: pydantic models loaded from YAML.

A config declares the models (tiers, backends, where the weights are, their
cost and energy figures), the router, generation defaults, carbon tracking,
the request log, the memory budget and the carbon and cost budgets.
``load_config`` turns every problem into one readable :class:`ConfigError`.
The whole file (``AppConfig``) and its loading are here; one model entry
(``ModelConfig``, ``GGUFSource``) is in :mod:`routerllm.config_models`, the other
sections in :mod:`routerllm.config_sections`: both are exported from here too.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from routerllm.checks import repeated
from routerllm.config_models import (
    TIER_ORDER,
    GGUFSource,
    ModelConfig,
    RequantizeType,
    Tier,
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
from routerllm.exceptions import ConfigError, did_you_mean
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
    "loaded_config",
    "load_config",
    "resolve_config_path",
]

PACKAGED_CONFIGS = ("local", "development", "production")

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


def loaded_config(config: object, taker: str, load_with: str = "load_config") -> AppConfig:
    """``config`` where it is a loaded config (an ``AppConfig``), for ``taker`` (what takes
    it: ``RouterLLM``, ``logged_report``); anything else (a config's name or path, None, a
    dict, a system) is a one-line ``ConfigError`` saying how to make one (``load_with``,
    for a name or a path)."""
    if isinstance(config, AppConfig):
        return config
    got = type(config).__name__
    if isinstance(config, dict):
        how = "check a dict with AppConfig.model_validate(data)"
    elif isinstance(getattr(config, "config", None), AppConfig):  # a RouterLLM
        how = f"give its config: {taker}(system.config)"
    else:
        name = config if isinstance(config, str | os.PathLike) else "local"
        how = f"load a YAML file or a packaged config with {load_with}({os.fspath(name)!r:.80})"
    raise ConfigError(f"{taker} takes a loaded config (an AppConfig), got {got}; {how}")


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
    if "\n" in str(path) or "\r" in str(path):  # not a file's name: printed, it ran on
        raise ConfigError(
            f"a config path{given} holds a line break: is it YAML text? write it to a file and give "
            "its path, or give AppConfig.model_validate(yaml.safe_load(text)) to RouterLLM"
        )
    if p.is_symlink():  # listed by ls: not "not found"
        raise ConfigError(
            f"config {path}{given} is {what_is(p)}: give a YAML path or one of: "
            f"{', '.join(PACKAGED_CONFIGS)}"
        )
    # a bare name near a packaged one ("developement", "Local", "local.yaml"): which
    near = did_you_mean(str(path).lower().removesuffix(".yaml"), PACKAGED_CONFIGS) if p.name == str(path) else ""  # fmt: skip
    raise ConfigError(
        f"config file not found: {path}{given}{near}; give a YAML path or one of: "
        f"{', '.join(PACKAGED_CONFIGS)}"
    )


def load_config(path: str | os.PathLike[str] | None = None) -> AppConfig:
    """Load and validate a YAML config; every problem becomes one ConfigError.

    ``path``: a YAML file, or a packaged config's name (``local``, ``development``,
    ``production``); None: ``$ROUTERLLM_CONFIG``, else ``local``. A config built in code
    is ``AppConfig.model_validate(data)``, checked the same."""
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
