"""``routerllm serve``: the config's models over the OpenAI API, every request
measured and logged. Registered on the main parser by ``routerllm.cli``."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import stat
import sys
from typing import Any

from routerllm.checks import MAX_PORT
from routerllm.cli import _configured, _drop_stdout
from routerllm.cli_args import steps_arg, whole_number_arg, whole_range
from routerllm.exceptions import ModelUnavailableError, OutputError, RouterLLMError
from routerllm.route_cli import ROUTER_HELP

API_KEY_ENV = "ROUTERLLM_API_KEY"
"""The server's API key (``routerllm serve``), read from the environment, never from argv."""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="an OpenAI-compatible HTTP server: model 'auto' is routed, a model's name goes "
        "to that model; every request measured and logged",
        description="Serve the config's models over the OpenAI API (/v1/chat/completions, "
        "/v1/completions, /v1/models; also /routerllm/feedback, /routerllm/report, /metrics "
        "(Prometheus), /health). "
        "With $ROUTERLLM_API_KEY set, every request needs Authorization: Bearer <key>.",
        epilog="details and examples: README.md, 'OpenAI-compatible server'",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")  # fmt: skip
    serve.add_argument("--port", type=whole_number_arg(0, MAX_PORT), default=8000, help=f"port, {whole_range(0, MAX_PORT)} (default: 8000; 0: any free one)")  # fmt: skip
    serve.add_argument("--router", help=ROUTER_HELP)
    serve.add_argument("--cascade", action="store_true", help="as for route (config: cascade.enabled)")  # fmt: skip
    serve.add_argument("--gate", metavar="DIR", help="as for route (config: cascade.gate)")
    serve.add_argument("--as-written", action="store_true", help="as for route (config: generation.complete_stubs)")  # fmt: skip
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="let browser pages from ORIGIN (http://localhost:3000; * for any) call the server; repeatable (default: none)")  # fmt: skip
    serve.add_argument("--max-waiting", type=steps_arg, metavar="N", help="refuse a request (503, server_busy) while N others already wait their turn behind the one generating (0: any that would wait; default: no cap)")  # fmt: skip
    serve.add_argument("--max-connections-per-client", type=steps_arg, metavar="N", help="refuse a connection (429, too_many_client_connections) from a client address already holding N (0: no per-client limit, as behind a reverse proxy, whose address every client then has; default: half of what the file descriptors allow, at least 128 and at most 1,024)")  # fmt: skip
    serve.set_defaults(func=cmd_serve, interrupted=_server_stopped, sigterm_as_ctrl_c=False)


def cmd_serve(args: argparse.Namespace) -> int:
    from routerllm.manager import LLMManager
    from routerllm.server.app import TAG
    from routerllm.server.options import cors_origins, per_client_connections, waiting_cap
    from routerllm.server.serving import listen, serve, stop_signals_held
    from routerllm.system import RouterLLM

    api_key = os.environ.get(API_KEY_ENV)
    if api_key is not None and not api_key.strip():
        raise RouterLLMError(f"{API_KEY_ENV} is empty: set a key, or unset it to serve without one")
    cors = cors_origins(args.cors_origin)  # a mistake said before the models load
    waiting_cap(args.max_waiting)
    per_client_connections(args.max_connections_per_client)
    # the address first: a busy port or a bad --host is said before the models load (a
    # client that connects while they load waits its turn in the socket's backlog)
    with listen(args.host, args.port) as sock:
        config = _configured(args)
        manager = LLMManager(config)
        # none that can run: said before the system opens its log, which a start refused
        # here left behind, empty, where the config points
        models = manager.runnable_models()
        closing = contextlib.ExitStack()  # its signals held until the system has closed
        with closing, RouterLLM(config, manager=manager) as system:
            args.request_log = system.log  # its unlogged answers, which the closing line counts
            host, port = sock.getsockname()[:2]
            url = f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"
            text = (
                f"RouterLLM serving {url} (OpenAI API): model 'auto' is routed by "
                f"{system.router.name!r}; also {', '.join(models)}\n"
                f"carbon: {system.meter.method}; requests logged to {system.config.log.path} "
                f"(tag {TAG!r}); Ctrl-C stops"
            )
            info = {"url": url, "router": system.router.name, "models": models}
            try:
                system.scope.routable()
            except ModelUnavailableError as e:  # models asked by name are still served
                print(f"warning: {e}; model 'auto' is refused until one is, models named in a "
                      f"request are served", file=sys.stderr)  # fmt: skip
            if api_key is None and host not in ("127.0.0.1", "::1"):
                print(f"warning: serving on {host} without an API key ({API_KEY_ENV}): anyone "
                      f"who can reach this port can use the models", file=sys.stderr)  # fmt: skip
            if api_key is None and "*" in cors:
                print(f"warning: --cors-origin '*' without an API key ({API_KEY_ENV}): any web "
                      f"page open in a browser that can reach this port can use the models", file=sys.stderr)  # fmt: skip
            # one line, once requests are answered (and SIGTERM stops gracefully): scripts wait for it
            try:
                serve(system, sock, api_key, lambda: print(json.dumps(info) if args.json else text, flush=True), cors, args.max_waiting, args.max_connections_per_client)  # fmt: skip
            except OutputError as e:
                # the terminal hung up as the ready line was written: its EIO may come
                # before the SIGHUP that follows a hangup (or none comes, where the server
                # is not in the terminal's session); it stops as SIGHUP does, not an error
                if not _hung_up(e):
                    raise
                _drop_stdout()  # the unwritten line would fail again as Python exits
            finally:  # serving has stopped: the close below is not cut short by a stop signal
                closing.enter_context(stop_signals_held())
    # SIGTERM or SIGHUP (Ctrl-C says it in main); after a hangup the terminal, and stderr
    # with it, may be gone (EIO): the server stopped as it should, its status says so
    with contextlib.suppress(OSError):
        print(_server_stopped(args, None), file=sys.stderr)
    return 0


def _server_stopped(args: argparse.Namespace, error: KeyboardInterrupt | None) -> str:
    """The closing line: whether every answered request is in the log, as an operator
    reads it (an answer the log could not take, a full disk, went back with a warning)."""
    lost = getattr(getattr(args, "request_log", None), "unlogged", 0)
    if not lost:
        return "server stopped; every answered request is in the log"
    some = "1 request" if lost == 1 else f"{lost:,} requests"
    return f"server stopped; {some} could not be logged (the errors above say why); every other answered request is in the log"  # fmt: skip


def _hung_up(error: OutputError) -> bool:
    """Whether stdout's write failed as a terminal's does once it has hung up: EIO on a
    character device (isatty() is already False then, so it cannot tell), not on a file."""
    cause = error.__cause__
    if not (isinstance(cause, OSError) and cause.errno == errno.EIO):
        return False
    try:
        return stat.S_ISCHR(os.fstat(sys.stdout.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # closed, or not a real file
        return False
