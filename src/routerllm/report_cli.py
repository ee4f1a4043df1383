"""The commands that read: ``routerllm models`` (the configured models and whether each
can run here) and ``routerllm report`` (totals read back from the request log); and
``routerllm prune``, which deletes the log's old requests. Registered on the main parser
by ``routerllm.cli``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from routerllm.cli import _load, emit, nothing_written


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser(
        "models",
        parents=[common],
        help="list configured models and whether each can run here",
        epilog="details: README.md, 'Unavailable models' and 'Model entries'",
    )
    models.set_defaults(func=cmd_models, interrupted=nothing_written)

    report = sub.add_parser(
        "report",
        parents=[common],
        help="totals read back from the request log",
        epilog="details: README.md, 'Reasons and the report' and 'Recommendations in the report'",
    )
    report.add_argument(
        "--since",
        metavar="WHEN",
        help="only requests at or after this ISO date or time, UTC unless it has an offset "
        "(e.g. 2026-12-01, 2026-12-01T08:30+01:00)",
    )
    report.add_argument(
        "--tag",
        help="only requests with this tag: demo, demo-baseline, interactive (demo "
        "--interactive) or server (route's requests have none)",
    )
    report.set_defaults(func=cmd_report, interrupted=nothing_written)

    prune = sub.add_parser(
        "prune",
        parents=[common],
        help="delete the request log's requests logged before a time (not those of the last 2 days)",  # fmt: skip
        epilog="details: README.md, 'Queueing, long runs, errors and stopping' (Running for weeks)",  # fmt: skip
    )
    prune.add_argument(
        "--before",
        metavar="WHEN",
        required=True,
        help="delete the requests logged before this ISO date or time, UTC unless it has an "
        "offset (e.g. 2026-09-01); at least 2 days ago",
    )
    prune.set_defaults(func=cmd_prune, interrupted=_prune_interrupted)


def _instance(backend: Any, module: str, name: str) -> Any:
    """``backend`` where it is an instance of the class ``name`` of ``module`` (a
    backend's), else None; a module not imported has made no instance, so it is not
    imported to ask: a config of llama.cpp models alone reads neither the HTTP backend's
    modules (HTTP, TLS, e-mail headers) nor transformers' backend's."""
    loaded = sys.modules.get(module)
    return backend if loaded is not None and isinstance(backend, getattr(loaded, name)) else None


def cmd_models(args: argparse.Namespace) -> int:
    from routerllm.manager import LLMManager, gb_up
    from routerllm.model_header import context_and_source

    config = _load(args)
    manager = LLMManager(config)
    cap = config.budgets.routed_cap()
    rows, unlisted, float32 = [], {}, False
    for m in config.models_by_size():
        reason = manager.availability(m.name)
        backend = manager.backend(m.name)
        here = backend.measured_locally  # else its memory is its endpoint's: no figure here
        hf = _instance(backend, "routerllm.backends.hf", "HFBackend")
        float32 = float32 or (hf is not None and hf.counts_float32)
        # read from the availability check's /models: None where not remote or none listed
        http = _instance(backend, "routerllm.backends.openai_http", "OpenAIHTTPBackend")
        listed = http.lists_model_id() if http else None
        if http and listed is False:
            unlisted[m.name] = http.unlisted_model_id()
        context, source = context_and_source(m, backend)
        rows.append(
            {
                "name": m.name,
                "tier": m.tier,
                "backend": m.backend,
                "params_b": m.params_b,
                "class_id": m.class_id,
                "memory_gb": backend.memory_gb if here else None,
                "kv_cache_gb": backend.kv_cache_gb_estimate if here else None,
                # what the manager counts against memory_budget_gb (0: served elsewhere)
                "counted_gb": manager.local_gb(m.name),
                "context_length": m.context_length,
                # at most its GGUF's, or what its endpoint's /models gave (read just now)
                "effective_context": context,
                "context_source": source,
                "endpoint_context": dataclasses.asdict(c)
                if (c := backend.endpoint_context())
                else None,  # fmt: skip
                "gpus": m.gpus,
                "available": reason is None,
                "reason": reason or "",
                "routed": reason is None and (cap is None or m.params_b <= cap),
                "endpoint_lists_model": listed,
            }
        )
    lines = [
        f"config: {config.source}",
        f"{'model':<22}{'tier':<8}{'backend':<13}{'params':>8}{'memory':>11}{'context':>11}  available",
    ]
    for r in rows:
        status = "yes" if r["available"] else f"no: {r['reason']}"
        if r["available"] and not r["routed"]:
            status += f" (over the budgets' cap of {cap:g}B: only when asked by name)"
        if r["available"] and r["name"] in unlisted:
            status += f" ({unlisted[r['name']]})"
        if r["context_source"] == "gguf":
            status += f" (runs at its GGUF's context of {r['effective_context']} tokens, under the configured {r['context_length']})"  # fmt: skip
        elif r["context_source"] == "endpoint":
            whose = (source := r["endpoint_context"]["source"]) + ("'" if source.endswith("s") else "'s")  # fmt: skip
            status += f" (runs at its endpoint's context of {r['effective_context']} tokens, its {whose} {r['endpoint_context']['field']}, under the configured {r['context_length']})"  # fmt: skip
        memory = f"{gb_up(r['counted_gb'])} GB" if r["counted_gb"] else "-"
        lines.append(
            f"{r['name']:<22}{r['tier']:<8}{r['backend']:<13}{r['params_b']:>7g}B"
            f"{memory:>11}{r['effective_context']:>11}  {status}"
        )
    elsewhere = "; -: served by its endpoint, nothing counted here" if any(r["memory_gb"] is None for r in rows) else ""  # fmt: skip
    # loaded as float32 there, whatever load_in_4bit says (README, Backends)
    on_cpu = "; an hf model on CPU at its float32 weights (4 GB per billion parameters)" if float32 else ""  # fmt: skip
    lines.append(
        f"memory: as counted against manager.memory_budget_gb ({manager.budget_gb:g} GB), "
        f"a llama_cpp model's estimated KV cache included{elsewhere}{on_cpu}"
    )
    emit(args, {"config": config.source, "models": rows}, "\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from routerllm.carbon.log_rows import utc_timestamp
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = _load(args)
    if args.since:
        utc_timestamp(args.since)  # a bad date is the first thing to hear about
    rep = logged_report(config, args.since, args.tag)
    lines = [f"request log: {config.log.path}", *_nothing_selected(args, config, rep), *report_lines(rep)]  # fmt: skip
    emit(args, {"log": config.log.path, **rep.as_dict()}, "\n".join(lines))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from routerllm.carbon.log_prune import prune
    from routerllm.carbon.report_text import counted
    from routerllm.carbon.request_log import RequestLog
    from routerllm.exceptions import RequestLogError

    config = _load(args)
    if not Path(config.log.path).is_file():  # opening would create an empty one
        raise RequestLogError(f"there is no request log at {config.log.path} (log.path): nothing to prune")  # fmt: skip
    with RequestLog(config.log.path) as log:
        done = prune(log, args.before)
    held = f"it holds {counted(done.kept, 'request')}, from {done.first} to {done.last}" if done.kept else "it holds none"  # fmt: skip
    lines = [
        f"request log: {config.log.path}",
        f"pruned {counted(done.deleted, 'request')} logged before {done.before} (UTC); {held}",
        f"{done.free_bytes / 1e6:.1f} MB of the file is free, taken by the next requests logged "
        f"(the file does not shrink; the emissions CSV is left as it is)",
    ]
    emit(args, {"log": config.log.path, "before": done.before, "deleted": done.deleted, "kept": done.kept, "first": done.first or None, "last": done.last or None, "free_bytes": done.free_bytes}, "\n".join(lines))  # fmt: skip
    return 0


def _prune_interrupted(args: argparse.Namespace, error: KeyboardInterrupt | None) -> str:
    return (
        "interrupted; the requests pruned so far are gone, the others kept: prune again to finish"
    )


def _nothing_selected(args: argparse.Namespace, config: Any, rep: Any) -> list[str]:
    """Where ``--since`` or ``--tag`` selected no request, a line that says so and what
    the log holds (a report of zeros alone reads like a log with nothing in it)."""
    from routerllm.carbon.log_rows import utc_timestamp
    from routerllm.carbon.report_text import counted
    from routerllm.carbon.request_log import RequestLog

    if rep.totals.requests or rep.refused.requests or not (args.since or args.tag):
        return []
    with RequestLog(config.log.path, read_only=True) as log:
        n, first, last = log.span()
    asked = [f"at or after {utc_timestamp(args.since)} (UTC)"] if args.since else []
    asked += [f"tagged {args.tag!r}"] if args.tag else []
    held = f"it holds {counted(n, 'request')}, from {first} to {last}" if n else "it holds none"
    return [f"no logged request is {' and '.join(asked)}: {held}"]
