"""What a prompt too long for a cold model's context costs before it is refused or sent
to a larger model: by the CLI (`routerllm route`, a fresh process) and by the server
(its app in this process, another model warm).

The config's two models (``--small``, its ``context_length`` set to ``--context``, and
``--large``, whose context holds the prompt) are asked a prompt of about 450 tokens:

- ``cli_named``: `routerllm route --model SMALL` (refused: exit status 1);
- ``cli_routed``: `routerllm route --router smallest` (the router chooses SMALL, the
  prompt goes to LARGE, which writes one token);
- ``server_named``: a POST naming SMALL to `routerllm serve`'s app, where LARGE is loaded
  and the memory budget holds one of the two at a time.

For each: the wall time the caller saw (a whole process for the CLI), its exit status or
HTTP status, SMALL's ``model_loading`` in the request log's row (its own, or the part of a
step up's refused models: its load where it was loaded for the request; refused before
it loads, the count's read of its vocabulary or tokenizer, measured since 2026-12-07,
logged as 0 before), and for the server whether LARGE, the model the user had warm, was
evicted for it.

``--fresh``: SMALL, a split model (``gguf.parts``), not yet assembled, as on a fresh
machine: each run in a model cache of its own, LARGE's files there linked from the
model cache (made first where they are not), SMALL's not (``small_assembled``: whether
the run assembled it). ``--hf``: SMALL run by transformers (``backend: hf``) from a
model folder made first (not timed) from the GGUF file llama.cpp runs (read
dequantised, saved in float16).

    .venv/bin/python benchmarks/cold_context_refusal.py [--config local] [--small qwen2.5-coder-0.5b] [--large qwen2.5-coder-1.5b] [--context 256] [--fresh] [--hf] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from machine import print_figures
from served import serving

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.request_log import RequestLog
from routerllm.cli_args import DefaultsHelpFormatter, whole_number_arg
from routerllm.config import GGUFSource, load_config, resolve_config_path
from routerllm.config_yaml import read_config_yaml
from routerllm.exceptions import RouterLLMError
from routerllm.model_files import cache_dir, resolve_gguf
from routerllm.system import RouterLLM

#: About 450 tokens of Qwen2.5's vocabulary, its chat template's included: over a
#: 256-token context, under 4,096.
PROMPT = "Explain what this code does:\n" + "".join(f"x{i} = x{i - 1} + {i}\n" for i in range(1, 36))  # fmt: skip


def _config(args: argparse.Namespace, folder: Path) -> Path:
    """The config with the two models alone, SMALL's context ``--context``, its logs in
    ``folder``, no cache and no budgets (nothing refused but by the context)."""
    data = read_config_yaml(resolve_config_path(args.config))
    models = {m["name"]: m for m in data["models"]}
    for name in (args.small, args.large):
        if name not in models:
            raise RouterLLMError(f"model {name!r} is not in config {args.config}")
    models[args.small]["context_length"] = args.context
    if args.hf:  # its GGUF's file (assembled, converted where it is so configured)
        gguf = resolve_gguf(GGUFSource.model_validate(models[args.small].pop("gguf")), args.small)  # fmt: skip
        models[args.small].update(backend="hf", model_id=str(_hf_folder(gguf, folder / "hf")))
    data["models"] = [models[args.small], models[args.large]]
    data.pop("budgets", None)
    data["log"] = {"path": str(folder / "requests.sqlite")}
    data["carbon"] = {**data.get("carbon", {}), "output_dir": str(folder / "carbon")}
    data["cache"] = {"enabled": False}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _hf_folder(gguf: Path, folder: Path) -> Path:
    """The GGUF's model read by transformers (dequantised) and saved in ``folder`` as a
    model folder (config.json, tokenizer files, float16 safetensors): what a transformers
    model is read from, its tokenizer and config without its weights. A GGUF file as
    ``model_id`` is not counted before it loads (its config is read from its whole
    metadata, as long as the count would save)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    where = {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}
    AutoTokenizer.from_pretrained(**where).save_pretrained(folder)
    read = AutoModelForCausalLM.from_pretrained(**where, quantization_config=GgufConfig(dequantize=True))  # fmt: skip
    # a plain model of its weights: transformers saves no model read from a GGUF
    config = read.config.to_dict()
    config.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(type(read.config).from_dict(config), dtype=torch.float16)  # fmt: skip
    plain.load_state_dict(read.state_dict())
    plain.save_pretrained(folder)
    return folder


def _last_row(config: Path) -> RequestRecord:
    with RequestLog(load_config(config).log.path, read_only=True) as log:
        return list(log.records())[-1]


def _small_load(row: RequestRecord, small: str) -> tuple[float, float]:
    """SMALL's ``model_loading`` in ``row`` (seconds, kWh): its load, or its count's read
    (``count_reads``); its own where it is the row's model, else the refused models' part
    of a step up."""
    part = row.components.get("model_loading") if row.model == small else row.escalated.get("model_loading")  # fmt: skip
    return (part.duration_s, part.energy_kwh) if part is not None else (0.0, 0.0)


@contextlib.contextmanager
def _model_cache(fresh: bool, small: str, large: str, folder: Path) -> Iterator[list[bool]]:
    """With ``fresh``, the model cache (``ROUTERLLM_CACHE``) a new folder in ``folder``
    while the block runs, LARGE's files (made) linked into it from the model cache:
    SMALL's parts not yet assembled there. Yields a list that the block's end fills with
    whether SMALL's assembled file is there then."""
    if not fresh:
        yield []
        return
    made = Path(tempfile.mkdtemp(prefix="cache-", dir=folder))
    (made / "models").mkdir()
    for file in cache_dir().glob(f"{large}.*"):
        (made / "models" / file.name).symlink_to(file)
    before, assembled = os.environ.get("ROUTERLLM_CACHE"), list[bool]()
    os.environ["ROUTERLLM_CACHE"] = str(made)
    try:
        yield assembled
    finally:
        assembled.append((made / "models" / f"{small}.gguf").exists())
        if before is None:
            os.environ.pop("ROUTERLLM_CACHE")
        else:
            os.environ["ROUTERLLM_CACHE"] = before


def _cli(config: Path, small: str, how: list[str]) -> dict[str, Any]:
    """`routerllm route` in a process of its own, the prompt on stdin."""
    command = [sys.executable, "-m", "routerllm", "route", "--config", str(config), "--max-new-tokens", "1", *how, "-"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, input=PROMPT, capture_output=True, text=True, env=os.environ.copy())  # fmt: skip
    wall = time.perf_counter() - start
    row = _last_row(config)
    load_s, load_kwh = _small_load(row, small)
    said = (done.stderr.strip().splitlines() or [""])[-1]
    return {"wall_s": wall, "exit_status": done.returncode, "row_model": row.model, "row_finish": row.finish_reason, "small_load_s": load_s, "small_load_kwh": load_kwh, "row_latency_s": row.latency_s, "said": said[:160]}  # fmt: skip


def _server(config_path: Path, small: str, large: str) -> dict[str, Any]:
    """A request naming SMALL to the server, LARGE warm, room for one of them."""
    config = load_config(config_path)
    with RouterLLM(config) as system:
        manager = system.manager
        # LARGE loaded, SMALL loadable only by evicting it
        manager.budget_gb = max(manager.local_gb(large), manager.local_gb(small)) + 0.01
        system.generate(GenerationRequest("hi", max_new_tokens=1), model=large)
        before = manager.loaded_models
        body = {"model": small, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1}  # fmt: skip
        with serving(system) as url:
            request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # fmt: skip
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(request) as answer:
                    status, error = answer.status, {}
            except urllib.error.HTTPError as e:
                status, error = e.code, json.loads(e.read()).get("error", {})
            wall = time.perf_counter() - start
        after = manager.loaded_models
        row = list(system.log.records())[-1]
    load_s, load_kwh = _small_load(row, small)
    return {"wall_s": wall, "http_status": status, "code": error.get("code", ""), "loaded_before": ",".join(before), "loaded_after": ",".join(after), "large_evicted": large in before and large not in after, "row_finish": row.finish_reason, "small_load_s": load_s, "small_load_kwh": load_kwh, "said": str(error.get("message", ""))[:160]}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--config", default="local")
    ap.add_argument("--small", default="qwen2.5-coder-0.5b", help="the model whose context is too short")  # fmt: skip
    ap.add_argument("--large", default="qwen2.5-coder-1.5b", help="a larger model whose context holds the prompt")  # fmt: skip
    ap.add_argument("--context", type=whole_number_arg(16, 100_000), default=256, help="SMALL's context_length")  # fmt: skip
    ap.add_argument("--fresh", action="store_true", help="SMALL's parts not yet assembled (a model cache of each run's own)")  # fmt: skip
    ap.add_argument("--hf", action="store_true", help="SMALL run by transformers, from a model folder made from its GGUF file")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="routerllm-bench-") as scratch:
        try:
            config = _config(args, Path(scratch))
            if args.fresh:  # LARGE's files made in the model cache, to be linked
                small, large = (load_config(config).model(n).gguf for n in (args.small, args.large))  # fmt: skip
                if args.hf or small is None or not small.parts or large is None:
                    raise RouterLLMError(f"--fresh: model {args.small!r} is no split model (gguf.parts) run by llama.cpp")  # fmt: skip
                resolve_gguf(large, args.large)
            figures: dict[str, object] = {}
            runs = {
                "cli_named": lambda: _cli(config, args.small, ["--model", args.small]),
                "cli_routed": lambda: _cli(config, args.small, ["--router", "smallest"]),
                "server_named": lambda: _server(config, args.small, args.large),
            }
            for run, measure in runs.items():
                with _model_cache(args.fresh, args.small, args.large, Path(scratch)) as assembled:  # fmt: skip
                    for key, value in measure().items():
                        figures[f"{run}.{key}"] = value
                if args.fresh:
                    figures[f"{run}.small_assembled"] = assembled[0]
        except RouterLLMError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print_figures(figures, args.json, 32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
