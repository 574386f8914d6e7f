"""`stagecoder stages`: replay the stages on raw model outputs, one case or a JSONL batch.

`stagecoder stages FILE --line L --col C --raw RAWFILE` runs one raw output at one position;
`stagecoder stages --batch CASES.jsonl` runs one case per input line in this one process and
writes one JSON object per case, in order, so replays of thousands of cases take seconds. The
stage inputs come from `prepare_at`, the call the editor's engine makes, so the hole kind and
the staged text are what the editor would show for that raw output at that position.

A batch line is a JSON object: the file as `text` (with `language`, a languageId or a file name
in `path` to pick the grammar) or as `path` (read from disk like FILE), the cursor as `line` and
`col` (1-based, the column in characters) or as `offset` (characters from the start), the model
output as `raw`, and optionally `id` (echoed back), `naming` and `boundary` (false skips that
stage for the case). A line that cannot be run gets `{"id": ..., "error": "..."}`; the exit code
is then 2, after every other line was answered.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.documents.store import path_to_uri
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.names import KnownNames
from analysis.settings import Settings, StageSettings
from generation.completion.pipeline import prepare_at, run_stages
from lsp_server.cli._common import CliError, load_document, offset_of, project_settings
from lsp_server.cli.context import _index as build_index

MAX_BATCH_LINE = 20_000_000  # characters of one JSONL line (a file's text and its raw output)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `stages` subcommand."""
    p = sub.add_parser(
        "stages",
        help="run the three stages on given raw model outputs and print each decision (JSON)",
        description="Run structure, naming and boundary checks on RAWFILE as if the model had "
        "written it at FILE:LINE:COL, and print the final text and each stage's decision as "
        "JSON; or, with --batch, on every case of a JSONL file (one JSON object per line in, "
        "one per line out). For debugging and replay evaluation; no model is called.",
    )
    p.add_argument("file", nargs="?", help="the source file (not with --batch)")
    p.add_argument("--line", type=int, help="1-based line of the cursor")
    p.add_argument("--col", type=int, help="1-based column of the cursor (in characters)")
    p.add_argument("--raw", help="file holding the raw model output ('-': stdin)")
    p.add_argument("--batch", metavar="CASES.jsonl",
                   help="run every case of a JSONL file ('-': stdin); one JSON line out per case")
    p.add_argument("--workspace", metavar="DIR",
                   help="index this folder first, as the editor does (members of its classes "
                   "and modules are then checked); default: no index")
    p.add_argument("--no-naming", action="store_true", help="skip the naming stage")
    p.add_argument("--no-boundary", action="store_true", help="skip the boundary-check stage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the staged result of one raw output, or of every case of a batch."""
    if args.batch is not None:
        if args.file or args.line is not None or args.col is not None or args.raw:
            print("stagecoder: --batch takes its cases from the file; FILE, --line, --col and "
                  "--raw do not apply", file=sys.stderr)
            return 2
        return _run_batch(args)
    if not args.file or args.line is None or args.col is None or args.raw is None:
        print("stagecoder: stages needs FILE --line L --col C --raw RAWFILE (or --batch "
              "CASES.jsonl)", file=sys.stderr)
        return 2
    try:
        doc = load_document(args.file)
        offset = offset_of(doc, args.line, args.col)
        raw = sys.stdin.read() if args.raw == "-" else Path(args.raw).read_text(encoding="utf-8")
        project = project_settings(args.file)
    except (CliError, OSError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    settings = _stage_settings(project.stages, not args.no_naming, not args.no_boundary)
    try:
        index = _workspace_index(args.workspace, project)
    except CliError as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    result = replay(doc, offset, raw, settings, ContextBuilder(index, project.context),
                    KnownNames())
    print(json.dumps({"file": args.file, "line": args.line, "col": args.col, **result},
                     indent=2, ensure_ascii=False))
    return 0 if result["text"] is not None else 1


def replay(doc: Document, offset: int, raw: str, settings: StageSettings,
           builder: ContextBuilder, names: KnownNames) -> dict[str, Any]:
    """The staged result of one raw output at a byte offset, as the JSON object printed."""
    ctx, inputs = prepare_at(doc, offset, builder, names)
    if inputs is None:  # the editor completes nothing here either
        return {"holeKind": ctx.hole.kind, "cut": None, "text": None, "parses": False,
                "namesResolve": False, "excluded": ctx.excluded, "stages": []}
    cand = run_stages(inputs, raw, settings)
    return {
        "holeKind": inputs.hole.kind,
        "cut": inputs.unit.shape,
        "text": cand.text,
        "parses": cand.parses,
        "namesResolve": cand.names_resolve,
        "stages": [{"stage": d.stage, "action": d.action, "detail": d.detail}
                   for d in cand.decisions],
    }


def _stage_settings(base: StageSettings, naming: bool, boundary: bool) -> StageSettings:
    return StageSettings(candidates=1, naming=base.naming and naming,
                         boundary_checks=base.boundary_checks and boundary)


def _workspace_index(folder: str | None, project: Settings) -> SymbolIndex | None:
    """The index of --workspace (None without one); CliError for a folder that is not one."""
    if folder is None:
        return None
    root = Path(folder)
    if not root.is_dir():
        raise CliError(f"--workspace {folder}: not a folder")
    index = SymbolIndex(project.context.exclude, max_file_bytes=project.max_file_bytes)
    build_index(index, root)
    return index


def _run_batch(args: argparse.Namespace) -> int:
    try:
        project = project_settings(Path.cwd() if args.batch == "-" else args.batch)
        stream = sys.stdin if args.batch == "-" else open(args.batch, encoding="utf-8")  # noqa: SIM115
    except (CliError, OSError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    try:
        index = _workspace_index(args.workspace, project)
    except CliError as exc:
        stream.close()
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    failed = 0
    with stream:
        runner = _BatchRunner(project, not args.no_naming, not args.no_boundary, index)
        for result in runner.run(stream):
            failed += "error" in result
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    if failed:
        print(f"stagecoder: {failed} case(s) could not be run (see their \"error\")",
              file=sys.stderr)
    return 2 if failed else 0


class _BatchRunner:
    """Runs the cases of one batch in this process, sharing one builder and one name cache
    (each case is a document of its own: a uri per case, so no cache mixes two cases)."""

    def __init__(self, project: Settings, naming: bool, boundary: bool,
                 index: SymbolIndex | None = None) -> None:
        self.project = project
        self.naming, self.boundary = naming, boundary
        self.builder = ContextBuilder(index, project.context)
        self.names = KnownNames()
        self._files: dict[str, str] = {}

    def run(self, stream: TextIO) -> Iterator[dict[str, Any]]:
        """One result per non-blank input line, in order."""
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            case: Any = None
            try:
                if len(line) > MAX_BATCH_LINE:
                    raise CliError(f"line {number} is over {MAX_BATCH_LINE:,} characters")
                case = json.loads(line)
                if not isinstance(case, dict):
                    raise CliError(f"line {number} is not a JSON object")
                yield {"id": case.get("id", number), **self._one(case, number)}
            except (CliError, OSError, ValueError, TypeError) as exc:
                ident = case.get("id", number) if isinstance(case, dict) else number
                yield {"id": ident, "error": str(exc) or type(exc).__name__}

    def _one(self, case: dict[str, Any], number: int) -> dict[str, Any]:
        raw = case.get("raw")
        if not isinstance(raw, str):
            raise CliError(f"line {number}: \"raw\" (the model output, a string) is missing")
        doc = self._document(case, number)
        if isinstance(case.get("line"), int) and isinstance(case.get("col"), int):
            offset = offset_of(doc, case["line"], case["col"])
        elif isinstance(case.get("offset"), int) and 0 <= case["offset"] <= len(doc.text):
            offset = len(doc.text[:case["offset"]].encode("utf-8", "surrogatepass"))
        else:
            raise CliError(f"line {number}: the cursor needs \"line\" and \"col\" (1-based) or "
                           "an \"offset\" inside the text")
        settings = _stage_settings(self.project.stages,
                                   self.naming and case.get("naming", True) is not False,
                                   self.boundary and case.get("boundary", True) is not False)
        return replay(doc, offset, raw, settings, self.builder, self.names)

    def _document(self, case: dict[str, Any], number: int) -> Document:
        text, path = case.get("text"), case.get("path")
        language = case.get("language")
        if text is None and isinstance(path, str):
            if path not in self._files:
                self._files[path] = load_document(path).text
            text = self._files[path]
        if not isinstance(text, str):
            raise CliError(f"line {number}: the file needs \"text\" or \"path\"")
        name = path if isinstance(path, str) else f"batch-case-{number}"
        uri = f"{path_to_uri(name)}#{number}"  # one document per case, whatever the path
        return Document(uri, text, language if isinstance(language, str) else None,
                        version=number, max_bytes=self.project.max_file_bytes, path=name)
