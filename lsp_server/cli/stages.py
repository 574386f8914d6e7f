"""`stagecoder stages FILE --line L --col C --raw RAWFILE`: replay the stages on a raw output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis.scope.names import KnownNames
from generation.completion.pipeline import prepare, run_stages
from lsp_server.cli._common import (
    CliError,
    add_position_args,
    load_document,
    offset_of,
    project_settings,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `stages` subcommand."""
    p = sub.add_parser(
        "stages",
        help="run the three stages on a given raw model output and print each decision (JSON)",
        description="Run structure, naming and boundary checks on RAWFILE as if the model had "
        "written it at FILE:LINE:COL, and print the final text and each stage's decision as "
        "JSON. For debugging and replay evaluation; no model is called.",
    )
    add_position_args(p)
    p.add_argument("--raw", required=True, help="file holding the raw model output ('-': stdin)")
    p.add_argument("--no-naming", action="store_true", help="skip the naming stage")
    p.add_argument("--no-boundary", action="store_true", help="skip the boundary-check stage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the staged result of one raw output."""
    try:
        doc = load_document(args.file)
        offset = offset_of(doc, args.line, args.col)
        raw = sys.stdin.read() if args.raw == "-" else Path(args.raw).read_text(encoding="utf-8")
    except (CliError, OSError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    settings = project_settings(args.file).stages
    settings = type(settings)(candidates=1, naming=settings.naming and not args.no_naming,
                              boundary_checks=settings.boundary_checks and not args.no_boundary)
    inputs = prepare(doc, offset, KnownNames())
    cand = run_stages(inputs, raw, settings)
    print(json.dumps({
        "file": args.file, "line": args.line, "col": args.col,
        "holeKind": inputs.hole.kind,
        "text": cand.text,
        "parses": cand.parses,
        "namesResolve": cand.names_resolve,
        "stages": [{"stage": d.stage, "action": d.action, "detail": d.detail}
                   for d in cand.decisions],
    }, indent=2, ensure_ascii=False))
    return 0 if cand.text is not None else 1
