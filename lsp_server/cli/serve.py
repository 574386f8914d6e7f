"""`stagecoder serve`: run the language server over stdio (default) or TCP."""

from __future__ import annotations

import argparse
import logging
import sys


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    p = sub.add_parser(
        "serve",
        help="run the language server (LSP over stdio)",
        description="Run the stagecoder language server. Editors start it over stdio; "
        "--tcp is for debugging with a client that connects to a socket.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (default)")
    mode.add_argument("--tcp", metavar="HOST:PORT", type=_host_port,
                      help="listen on a TCP socket instead of stdio")
    p.add_argument("--log-file", metavar="PATH", help="write the server log here (default: stderr)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level (default INFO)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the server and block until the client disconnects."""
    # stdout carries the protocol: logs go to stderr or a file, never stdout.
    handler: logging.Handler = (
        logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    )
    logging.basicConfig(level=args.log_level, handlers=[handler],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "DEBUG":
        # pygls logs every message body at INFO: megabytes per keystroke on large files.
        logging.getLogger("pygls").setLevel(logging.WARNING)
        # httpx logs one INFO line per model request: noise in an editor's server log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    from lsp_server.server import create_server

    server = create_server()
    if args.tcp:
        host, port = args.tcp
        server.start_tcp(host, port)
    else:
        server.start_io()
    return 0
