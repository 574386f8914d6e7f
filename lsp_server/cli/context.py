"""`stagecoder context FILE --line L --col C`: print the completion context and the exact prompt.

For users debugging what the model sees: the hole (its kind, the shape the structure stage cuts,
its scopes and indentation), imports, related snippets with their token costs, and the FIM prompt
byte for byte (special tokens included, BOS excluded: the server adds it). The context comes
from `prepare_at`, the call the editor's engine makes. The workspace is indexed first (a
progress bar when stderr is a terminal).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from analysis.context.builder import CompletionContext, ContextBuilder
from analysis.context.tokens import counter_for
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.names import KnownNames
from generation.completion.pipeline import prepare_at
from generation.completion.prompts import FimPrompt, build_fim_prompt
from lsp_server.cli._common import (
    CliError,
    add_position_args,
    load_document,
    offset_of,
    project_settings,
)

ROOT_MARKERS = (".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml", "pom.xml",
                "build.gradle", "CMakeLists.txt", "Makefile")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `context` subcommand."""
    p = sub.add_parser(
        "context",
        help="print the completion context and the exact FIM prompt at a position",
        description="Build the completion context at FILE:LINE:COL (1-based; the column counts "
        "characters) as the language server would, and print it with the exact prompt.",
    )
    add_position_args(p)
    p.add_argument("--workspace", metavar="DIR",
                   help="folder to index for related snippets (default: the nearest folder "
                   "above FILE holding .git, pyproject.toml, package.json, go.mod, ...)")
    p.add_argument("--budget", type=int, metavar="TOKENS",
                   help="prompt token budget (default: context.budgetTokens, 2048)")
    p.add_argument("--tokenizer", metavar="PATH",
                   help="tokenizer.json, or a model folder holding one, for exact token counts "
                   "(default: an estimate of 3.5 bytes per token)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Index the workspace, build the context and print it with its prompt."""
    try:
        doc = load_document(args.file)
        offset = offset_of(doc, args.line, args.col)
        if args.budget is not None and args.budget < 1:
            raise CliError(f"--budget must be a positive number of tokens, got {args.budget}")
        settings = project_settings(args.file).context
    except (CliError, OSError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    if args.budget is not None:
        settings = msgspec.structs.replace(settings, budget_tokens=args.budget)
    root = Path(args.workspace) if args.workspace else workspace_root(Path(args.file))
    if not root.is_dir():
        print(f"stagecoder: --workspace {root}: not a folder", file=sys.stderr)
        return 2
    index = SymbolIndex(settings.exclude, max_file_bytes=project_settings(args.file).max_file_bytes)
    _index(index, root)
    counter = counter_for(args.tokenizer)
    context, inputs = prepare_at(doc, offset, ContextBuilder(index, settings, counter),
                                 KnownNames())
    cut = inputs.unit.shape if inputs is not None else None
    prompt = build_fim_prompt(context, counter, exact=True)
    if args.json:
        payload = {"context": context, "cut": cut, "prompt": prompt, "indexedFiles": len(index)}
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(payload)).decode() + "\n")
    else:
        sys.stdout.write(render_text(context, prompt, len(index), cut))
    return 0


def workspace_root(file: Path) -> Path:
    """The nearest folder above `file` with a project marker, else the file's folder."""
    here = file.resolve().parent
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return here


def _index(index: SymbolIndex, root: Path) -> None:
    if not sys.stderr.isatty():
        index.build([root])
        return
    from rich.progress import Progress

    with Progress(transient=True, console=None) as bar:
        task = bar.add_task("indexing", total=None)
        index.build([root], progress=lambda done, total: bar.update(task, completed=done,
                                                                     total=total))


def render_text(ctx: CompletionContext, prompt: FimPrompt, indexed: int,
                cut: str | None = None) -> str:
    """The human-readable report: context fields, related snippets, then the prompt verbatim."""
    hole = ctx.hole
    lines = [
        f"file:        {ctx.path} ({ctx.language}, version {ctx.version})",
        f"cursor:      line {ctx.line + 1}, column {ctx.column + 1} (bytes), offset {ctx.offset}",
        f"hole:        {hole.kind}" + (f" (the stages cut: {cut})" if cut else ""),
        "scopes:      " + (" > ".join(f"{s.kind} {s.name}" for s in hole.scopes)
                           or "(top level)"),
        f"indent unit: {hole.indent_unit!r}, line indent {hole.indent!r}",
        f"imports:     {len(ctx.imports)}",
        *(f"  {text}" for text in ctx.imports),
        f"kept:        bytes {ctx.prefix_start}..{ctx.suffix_end} of the file",
        f"tokens:      budget {ctx.tokens.budget}, prefix {ctx.tokens.prefix}, suffix "
        f"{ctx.tokens.suffix}, related {ctx.tokens.related} ({ctx.tokens.counter}); prompt "
        f"{prompt.tokens}{' exact' if prompt.exact else ' estimated'} incl. BOS",
        f"index:       {indexed} files",
    ]
    if ctx.excluded:
        lines.append(f"excluded:    {ctx.excluded}")
    if ctx.redacted_lines:
        lines.append(f"redacted:    {ctx.redacted_lines} line(s) that looked like secrets")
    lines.append(f"related:     {len(ctx.related)}")
    for s in ctx.related:
        what = f"{s.name} " if s.name else ""
        lines.append(f"  {s.kind} {what}{s.path}:{s.line + 1} ({s.tokens} tokens)")
    lines.append("----- prompt (BOS added by the server) -----")
    return "\n".join(lines) + "\n" + prompt.text + "\n----- end of prompt -----\n"
