"""`stagecoder proxy`: serve staged completions over an OpenAI-compatible HTTP API.

For editors without a stagecoder plugin (Zed, minuet-ai.nvim, Continue): they send FIM requests
to `/v1/completions` as they would to vLLM and get the staged text back (README "Team setup").
Needs uvicorn and starlette (the `proxy` extra).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

import msgspec

from analysis.project import load_project

DEFAULT_TCP = ("127.0.0.1", 8010)
INSTALL_HINT = "pip install -e '.[proxy]' (uvicorn and starlette)"


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `proxy` subcommand."""
    p = sub.add_parser(
        "proxy", help="an OpenAI-compatible /v1/completions server that answers with staged text",
        description="Serve /v1/completions (streamed and not), /v1/models and /health. Each FIM "
        "request (a DeepSeek-Coder FIM prompt, or prompt + suffix) goes to the configured vLLM "
        "([tool.stagecoder.completion] url or urls) and comes back through the structure, "
        "naming and boundary stages. Code is never logged unless --log-content is given.",
    )
    p.add_argument("--tcp", metavar="HOST:PORT", type=_host_port, default=DEFAULT_TCP,
                   help=f"where to listen (default {DEFAULT_TCP[0]}:{DEFAULT_TCP[1]}; port 0 "
                   "picks a free one, printed at start)")
    p.add_argument("--url", action="append", metavar="URL",
                   help="a model server (repeat for replicas); default: the settings' "
                   "completion.url / completion.urls")
    p.add_argument("--model", metavar="NAME", help="the served model's name (default: the "
                   "settings', else the server's first)")
    p.add_argument("--api-key-env", metavar="VAR",
                   help="require `Authorization: Bearer KEY` on /v1/*, KEY read from the "
                   "environment variable VAR (a key on the command line would show in ps)")
    p.add_argument("--log-content", action="store_true",
                   help="also log the code around the cursor and the completion (off: a line "
                   "per request with sizes and times only)")
    p.add_argument("--config", metavar="PYPROJECT", type=Path,
                   help="read settings from this file instead of the nearest pyproject.toml")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    try:
        import uvicorn

        from lsp_server.proxy.app import Proxy
    except ModuleNotFoundError as exc:
        if exc.name not in ("uvicorn", "starlette"):
            raise
        return _fail(f"the proxy needs {exc.name}, which this install lacks; {INSTALL_HINT}")
    from generation.completion.fim_model import model_factory

    project = load_project(Path.cwd(), args.config)
    if project.failed:
        return _fail(project.problems[0])
    for problem in project.problems:
        print(f"stagecoder: warning: {problem}; using the default", file=sys.stderr)
    settings = project.settings
    completion = settings.completion
    if args.url:
        completion = msgspec.structs.replace(completion, urls=list(args.url))
    if args.model:
        completion = msgspec.structs.replace(completion, model=args.model)
    settings = msgspec.structs.replace(settings, completion=completion)
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            return _fail(f"--api-key-env {args.api_key_env}: that environment variable is "
                         "not set")
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per model request otherwise
    host, port = args.tcp
    try:
        listener = socket.create_server((host, port), family=_family(host), backlog=512)
    except OSError as exc:
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    proxy = Proxy(settings, model_factory(), api_key=key, log_content=args.log_content)
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"stagecoder: proxy serving at http://{shown}:{bound} (model servers: "
          f"{', '.join(completion.replica_urls())})", flush=True)
    config = uvicorn.Config(proxy.app(), log_level=args.log_level.lower(), access_log=False,
                            timeout_graceful_shutdown=5, lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _fail(message: str) -> int:
    print(f"stagecoder: {message}", file=sys.stderr)
    return 2
