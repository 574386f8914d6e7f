"""The `stagecoder` command line: one module per subcommand, routed from one table."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lsp_server import __version__

# Subcommand modules under lsp_server.cli; each defines `register(subparsers)` which adds its
# parser and sets `func(args) -> int` as the handler. A module that is missing is skipped, so
# a partial checkout still has a working CLI.
SUBCOMMANDS = ("serve", "model", "context", "complete", "stages", "eval", "review", "proxy")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand (`only`: just that one, so that a
    command does not pay for importing the others: the model client, numpy, the engine)."""
    parser = argparse.ArgumentParser(
        prog="stagecoder",
        description="Code assistant: language server, staged completions on DeepSeek-Coder via "
        "vLLM, and batch code review.",
    )
    parser.add_argument("--version", action="version", version=f"stagecoder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only in SUBCOMMANDS else SUBCOMMANDS:
        try:
            module = importlib.import_module(f"lsp_server.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lsp_server.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `stagecoder` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `stagecoder ... | head`: the reader left, nothing to report
        sys.stderr.close()
        return 141


if __name__ == "__main__":
    sys.exit(main())
