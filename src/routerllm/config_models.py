"""One model entry of the config file: its backend and tier, where its weights come from
(``GGUFSource``: a path, a packaged file or packaged parts, their sha256), its endpoint
and API key's variable, its prices and energy figures, each checked as it loads.
:mod:`routerllm.config` puts the entries into ``AppConfig`` and exports every name here
too: import them from there."""

from __future__ import annotations

import json
import re
import unicodedata
import urllib.parse
from typing import Literal

from pydantic import Field, field_validator, model_validator

from routerllm.checks import (
    MAX_KG_CO2_PER_TOKEN,
    MAX_KWH_PER_TOKEN,
    MAX_PARAMS_B,
    MAX_USD_PER_1M_TOKENS,
    MIN_PARAMS_B,
)
from routerllm.config_sections import MAX_CONTEXT_LENGTH, StrictConfig

Tier = Literal["light", "medium", "heavy"]
TIER_ORDER: dict[str, int] = {"light": 0, "medium": 1, "heavy": 2}


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
