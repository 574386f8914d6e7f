"""Fill-in-the-middle training examples cut from the user's files, as the completion engine sees.

Holes are cut with tree-sitter where the editor asks for completions: a whole function body,
the body of another block, a run of one to three statements, and the rest of a line. Each cut
is checked with the engine's own hole classifier (`analysis.context.hole.classify`) on the
text with the middle removed, and kept only when the classifier sees the kind that was cut, so
the data holds exactly the hole kinds the engine serves. The prompt is DeepSeek-Coder's FIM
layout as `generation.completion.prompts` writes it (the file's path as a comment line, then
prefix, hole, suffix); the target is the middle, then EOS.

Texts come from `corpus.read_corpus`: secret files and excluded paths never enter, secret values
are masked, and a cut whose middle touches a masked line is dropped (a model must not learn to
write the mask). The held-out split is by file, so no held-out line was seen in training.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path

from tree_sitter import Node

from analysis.context.hole import HoleKind, classify
from analysis.documents.document import Document
from analysis.documents.node_types import SyntaxTable, table_for
from generation.completion.prompts import FIM_BEGIN, FIM_END, FIM_HOLE
from generation.serving.corpus import Corpus, SourceFile
from generation.serving.options import CONTEXT_CHARS

PER_FILE = 24  # examples cut from one file at most
MAX_MIDDLE_CHARS = 1200
MAX_CUT_BYTES = 256_000  # larger files give no examples: each check re-parses the file
MAX_NODES = 50_000  # tree nodes visited per file
KINDS = (HoleKind.BODY, HoleKind.BLOCK, HoleKind.STATEMENT, HoleKind.EXPRESSION,
         HoleKind.ARGUMENTS)


class DatasetError(Exception):
    """The repository gives no usable training data (one line, for the user)."""


@dataclass(frozen=True, slots=True)
class FimExample:
    """One fill-in-the-middle example: the prompt parts and the middle to be written."""

    path: str
    kind: str  # a HoleKind value
    header: str  # the file's path as a comment line, as the engine's prompt has it
    prefix: str
    suffix: str
    middle: str

    @property
    def prompt(self) -> str:
        """The prompt text (the tokenizer adds BOS, as vLLM does for a served prompt)."""
        return f"{FIM_BEGIN}{self.header}{self.prefix}{FIM_HOLE}{self.suffix}{FIM_END}"


@dataclass(slots=True)
class FimDataset:
    """Training and held-out examples, split by file."""

    train: list[FimExample] = field(default_factory=list)
    heldout: list[FimExample] = field(default_factory=list)
    train_files: list[str] = field(default_factory=list)
    heldout_files: list[str] = field(default_factory=list)


def build_dataset(corpus: Corpus, *, seed: int = 0, heldout_share: float = 0.2,
                  per_file: int = PER_FILE, context_chars: int = CONTEXT_CHARS) -> FimDataset:
    """Cut examples from every file; about `heldout_share` of the files are held out."""
    usable = [(f, examples_from_file(f, per_file, seed, context_chars)) for f in corpus.files]
    usable = [(f, ex) for f, ex in usable if ex]
    if len(usable) < 2:
        raise DatasetError(
            f"{corpus.root}: {len(usable)} file(s) give fill-in-the-middle examples; at least "
            "2 are needed (one is held out to measure the loss)")
    ranked = sorted(usable, key=lambda fe: hashlib.sha256(
        f"{seed}:{fe[0].path}".encode()).hexdigest())
    n_held = min(len(ranked) - 1, max(1, math.ceil(heldout_share * len(ranked))))
    data = FimDataset()
    for i, (source, examples) in enumerate(ranked):
        if i < n_held:
            data.heldout += examples
            data.heldout_files.append(source.path)
        else:
            data.train += examples
            data.train_files.append(source.path)
    data.train_files.sort()
    data.heldout_files.sort()
    return data


def examples_from_file(source: SourceFile, limit: int = PER_FILE, seed: int = 0,
                       context_chars: int = CONTEXT_CHARS) -> list[FimExample]:
    """Up to `limit` examples from one file, spread over the hole kinds, in source order."""
    data = source.text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_CUT_BYTES:
        return []
    doc = Document(f"file:///{source.path}", source.text, path=source.path)
    if doc.tree is None:
        return []
    table = table_for(doc.language)
    rng = random.Random(f"{seed}:{source.path}")
    line_starts = [0, *(m.end() for m in re.finditer(b"\n", data))]
    by_kind: dict[HoleKind, list[tuple[int, int]]] = {k: [] for k in KINDS}
    for kind, start, end in _cuts(doc.tree.root_node, data, table):
        first, last = bisect_right(line_starts, start) - 1, bisect_right(line_starts, end) - 1
        if end - start <= MAX_MIDDLE_CHARS and not any(
                n in source.masked_lines for n in range(first, last + 1)):
            by_kind[kind].append((start, end))
    for spans in by_kind.values():
        rng.shuffle(spans)
    # Round robin over the kinds, so a file of many small statements still gives bodies.
    order = [(kind, span) for row in zip_longest(*by_kind.values())
             for kind, span in zip(KINDS, row, strict=True) if span is not None]
    kept: list[tuple[int, FimExample]] = []
    for kind, (start, end) in order[:4 * limit]:  # each check parses the file once
        example = _example(source, data, start, end, kind, table, context_chars)
        if example is not None:
            kept.append((start, example))
            if len(kept) >= limit:
                break
    return [e for _, e in sorted(kept, key=lambda pair: pair[0])]


def _example(source: SourceFile, data: bytes, start: int, end: int, want: HoleKind,
             table: SyntaxTable, context_chars: int) -> FimExample | None:
    """The example for one cut, if the engine's classifier sees the kind that was cut."""
    prefix = data[:start].decode("utf-8", "replace")
    middle = data[start:end].decode("utf-8", "replace")
    suffix = data[end:].decode("utf-8", "replace")
    if not middle.strip():
        return None
    holed = Document(f"file:///{source.path}", prefix + suffix, path=source.path)
    seen = _kind_at(holed, start, table, source.path)
    # Mid-line cuts are EXPRESSION or, inside a call's parentheses, ARGUMENTS: both are fine.
    if seen != want and not (want is HoleKind.EXPRESSION and seen is HoleKind.ARGUMENTS):
        return None
    before, after = context_chars * 3 // 4, context_chars // 4
    if len(prefix) > before:
        prefix = prefix[-before:]
        prefix = prefix[prefix.find("\n") + 1:]
    if len(suffix) > after:
        suffix = suffix[:after]
        suffix = suffix[:suffix.rfind("\n") + 1]
    header = f"{source.line_comment} {source.path}\n"
    return FimExample(source.path, str(seen), header, prefix, suffix, middle)


def _kind_at(doc: Document, offset: int, table: SyntaxTable, path: str) -> HoleKind:
    """The kind of hole the completion engine sees at `offset` (its one classifier)."""
    hole, _ = classify(doc, offset, table, path)
    return hole.kind


def _cuts(root: Node, data: bytes, table: SyntaxTable) -> Iterator[tuple[HoleKind, int, int]]:
    """Candidate (kind, start, end) byte spans: bodies, blocks, statement runs, line ends."""
    cursor = root.walk()
    visited = 0
    while visited < MAX_NODES:
        node = cursor.node
        assert node is not None
        visited += 1
        if node.is_named:
            yield from _cuts_at(node, root, data, table)
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return


def _cuts_at(node: Node, root: Node, data: bytes, table: SyntaxTable
             ) -> Iterator[tuple[HoleKind, int, int]]:
    if node.type in table.functions:
        body = node.child_by_field_name("body")
        if body is not None and body.type in table.blocks | table.function_bodies:
            stmts = _statements(body, table, data)
            if stmts and _docstring(stmts[0]):
                stmts = stmts[1:]
            if stmts:
                yield HoleKind.BODY, stmts[0].start_byte, stmts[-1].end_byte
        return
    if node.type in table.blocks:
        stmts = _statements(node, table, data)
        parent = node.parent
        if stmts and node.id != root.id and parent is not None and (
                parent.type not in table.functions):
            yield HoleKind.BLOCK, stmts[0].start_byte, stmts[-1].end_byte
        for i in range(len(stmts)):
            for j in range(i, min(i + 3, len(stmts))):
                if (i, j) != (0, len(stmts) - 1) or node.id == root.id:
                    yield HoleKind.STATEMENT, stmts[i].start_byte, stmts[j].end_byte
        for stmt in stmts:
            yield from _line_end_cuts(stmt, data)


def _statements(block: Node, table: SyntaxTable, data: bytes) -> list[Node]:
    """The block's statements that stand on lines of their own (comments left out)."""
    return [c for c in block.named_children
            if c.type not in table.comments and not c.is_error and _own_lines(c, data)]


def _own_lines(node: Node, data: bytes) -> bool:
    start = data.rfind(b"\n", 0, node.start_byte) + 1
    end = data.find(b"\n", node.end_byte)
    end = len(data) if end == -1 else end
    return not data[start:node.start_byte].strip() and not data[node.end_byte:end].strip()


def _docstring(node: Node) -> bool:
    return (node.type == "expression_statement" and node.named_child_count == 1
            and node.named_children[0].type == "string")


def _line_end_cuts(stmt: Node, data: bytes) -> Iterator[tuple[HoleKind, int, int]]:
    """Cuts after a token of a one-line statement, to the end of its line."""
    if stmt.start_point.row != stmt.end_point.row:
        return
    leaves: list[Node] = []
    stack = [stmt]
    while stack and len(leaves) < 64:
        node = stack.pop()
        if node.child_count == 0:
            leaves.append(node)
        else:
            stack.extend(reversed(node.children))
    for leaf in leaves[:-1]:  # after the last token nothing is left to write
        if data[leaf.end_byte:stmt.end_byte].strip():
            yield HoleKind.EXPRESSION, leaf.end_byte, stmt.end_byte


def write_jsonl(path: Path, examples: list[FimExample]) -> None:
    """One example per line, as JSON (the exact texts trained on)."""
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[FimExample]:
    """The examples `write_jsonl` wrote."""
    with path.open(encoding="utf-8") as source:
        return [FimExample(**json.loads(line)) for line in source if line.strip()]
