"""`stagecoder complete FILE --line L --col C`: one staged completion from the configured model."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from generation.completion.engine import CompletionEngine
from generation.completion.fim_model import model_factory
from generation.completion.pipeline import Candidate
from lsp_server.cli._common import (
    CliError,
    add_position_args,
    load_document,
    offset_of,
    project_settings,
    with_model_overrides,
)

EPILOG = """\
exit status:
  0  a completion was printed
  1  no completion: every candidate was dropped by the stages (the reasons, one line per
     candidate, go to stderr), or nothing was sent because the file is kept from the model
  2  an error: the file cannot be read, the position is outside it, the settings are invalid,
     or the model server is unreachable, too slow or answers garbage
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `complete` subcommand."""
    p = sub.add_parser(
        "complete",
        help="print the staged completion at FILE:LINE:COL (calls the configured model)",
        description="Ask the completion model for FILE at LINE:COL (1-based), run the stages "
        "and print the completion. Settings come from the nearest pyproject.toml "
        "[tool.stagecoder]; --url and --model override the completion endpoint.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_position_args(p)
    p.add_argument("--url", help="completion endpoint URL (default: settings, else loopback)")
    p.add_argument("--model", help="model name (default: the server's first model)")
    p.add_argument("--candidates", type=int, help="candidates to request (default: settings)")
    p.add_argument("--json", action="store_true", help="print every candidate and decision")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the completion; exit 1 (with the reasons on stderr) when there is none, 2 on errors."""
    try:
        doc = load_document(args.file)
        offset = offset_of(doc, args.line, args.col)
        settings = project_settings(args.file)
    except (CliError, OSError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    settings = with_model_overrides(settings, args)
    engine = CompletionEngine(settings, model_factory())
    outcome = asyncio.run(_complete(engine, doc, offset))
    if outcome.error is not None:
        print(f"stagecoder: {outcome.error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "text": outcome.text,
            "candidates": [{"raw": c.raw, "text": c.text, "parses": c.parses,
                            "namesResolve": c.names_resolve, "meanLogprob": c.mean_logprob,
                            "stages": [vars_of(d) for d in c.decisions]}
                           for c in outcome.candidates],
        }, indent=2, ensure_ascii=False))
    elif outcome.text:
        print(outcome.text)
    if outcome.text:
        return 0
    for line in why_nothing(engine, doc, offset, outcome.candidates):
        print(line, file=sys.stderr)
    return 1


def why_nothing(engine: CompletionEngine, doc, offset: int,
                candidates: list[Candidate]) -> list[str]:
    """Lines telling why no completion came: the stages' decisions, one line per candidate."""
    if not candidates:
        # The engine sends nothing for a file kept from the model; say which rule keeps it.
        excluded = engine.context_builder().build(doc.snapshot(), offset).excluded
        return [f"stagecoder: no completion: nothing was sent to the model"
                f"{f' ({excluded})' if excluded else ''}"]
    lines = [f"stagecoder: no completion: the stages dropped all {len(candidates)} "
             f"candidate{'s' if len(candidates) != 1 else ''}"]
    for i, cand in enumerate(candidates, 1):
        steps = "; ".join(f"{d.stage} {d.action}: {d.detail}" for d in cand.decisions)
        lines.append(f"  candidate {i} {_excerpt(cand.raw)}: {steps or 'no decision'}")
    return lines


def _excerpt(raw: str, limit: int = 40) -> str:
    """A raw model output as a short one-line Python string literal."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "…")


def vars_of(decision) -> dict[str, str]:
    """A stage decision as a plain mapping."""
    return {"stage": decision.stage, "action": decision.action, "detail": decision.detail}


async def _complete(engine: CompletionEngine, doc, offset: int):
    try:
        return await engine.complete(doc, offset)
    finally:
        close = getattr(engine.model, "aclose", None)
        if close is not None:
            await close()
