"""Replay evaluation of the stages on holes cut from real code that is not stagecoder's own.

Holes: a single line (cursor inside a statement, the middle is the rest of the line), a
multi-line block (the body of an if/for/while/try), and a whole function body. The "model" is an
oracle: the true middle followed by the text that follows it in the file, as a model that runs on
past the hole would write. Figures:
- exact_cut_rate: the structure stage's cut equals the true middle (trailing blank lines aside);
- syntax_valid_rate: prefix + staged text + suffix parses with no new error node;
- naming_detection_rate: with one used identifier of the middle renamed to a nonexistent name,
  the naming stage reports or repairs it; naming_repair_rate: with two neighbouring letters of
  such a name swapped (a typo), the stage repairs it back to the true name;
- naming_false_alarm_rate: on the untouched middle, the stage flags a name.
Corpora: the Python standard library, and the JavaScript of the npm CLI installed with Node.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.documents.document import Document
from analysis.documents.trial import count_errors
from analysis.scope.names import KnownNames, names_in_span
from analysis.settings import StageSettings
from benchmarks._corpus import stdlib_dir
from generation.completion.pipeline import prepare, run_stages
from generation.completion.stages import naming

BLOCKS = {
    "python": ("if_statement", "for_statement", "while_statement", "try_statement",
               "with_statement"),
    "javascript": ("if_statement", "for_statement", "for_in_statement", "while_statement",
                   "try_statement"),
}
FUNCTIONS = {
    "python": ("function_definition",),
    "javascript": ("function_declaration", "method_definition"),
}
STRUCTURE_ONLY = StageSettings(candidates=1, naming=False, boundary_checks=False)


@dataclass(slots=True)
class HoleCase:
    """One hole: file text, cursor offset (bytes), the true middle, and its kind."""

    language: str
    path: str
    source: bytes
    offset: int
    middle: str
    kind: str


def corpus(language: str) -> list[Path]:
    """Source files of a language from code on this machine that is not the project's."""
    if language == "python":
        root = stdlib_dir()
        return sorted(p for p in root.glob("*.py") if p.stat().st_size < 200_000)
    root = Path("/usr/lib/node_modules/npm/lib")
    return sorted(root.rglob("*.js")) if root.is_dir() else []


def _line_start(src: bytes, offset: int) -> int:
    return src.rfind(b"\n", 0, offset) + 1


def _line_end(src: bytes, offset: int) -> int:
    nl = src.find(b"\n", offset)
    return len(src) if nl == -1 else nl + 1


def holes_in(path: Path, language: str, rng: random.Random) -> list[HoleCase]:
    """A few holes of each kind from one file."""
    src = path.read_bytes()
    if b"\r" in src:
        return []
    doc = Document(str(path), src.decode("utf-8", "replace"), language)
    if doc.tree is None or doc.has_errors():
        return []
    blocks, functions, lines = [], [], []
    stack = [doc.tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        body = node.child_by_field_name("body") or node.child_by_field_name("consequence")
        if node.type in BLOCKS[language] and body is not None and body.named_child_count >= 2:
            blocks.append(body)
        if node.type in FUNCTIONS[language] and body is not None and body.named_child_count >= 2:
            functions.append(body)
        if node.type in ("expression_statement", "return_statement", "lexical_declaration"):
            lines.append(node)
    out: list[HoleCase] = []
    for body in rng.sample(blocks, min(2, len(blocks))):
        out.extend(_block_hole(doc, body, "block", language, str(path)))
    for body in rng.sample(functions, min(2, len(functions))):
        out.extend(_block_hole(doc, body, "function_body", language, str(path)))
    for stmt in rng.sample(lines, min(3, len(lines))):
        out.extend(_line_hole(doc, stmt, language, str(path), rng))
    return out


def _block_hole(doc: Document, body, kind: str, language: str, path: str) -> list[HoleCase]:
    src = doc.source
    stmts = [c for c in body.named_children if c.type != "comment"]
    if not stmts:
        return []
    if language == "python":
        start, end = _line_start(src, stmts[0].start_byte), _line_end(src, stmts[-1].end_byte)
    else:  # inside the braces: from the first statement's line to the last statement's line
        start, end = _line_start(src, stmts[0].start_byte), _line_end(src, stmts[-1].end_byte)
        if src[start:stmts[0].start_byte].strip() or src[stmts[-1].end_byte:end].strip():
            return []  # statements share a line with the braces: not a block of whole lines
    if src[start:stmts[0].start_byte].strip():
        return []
    middle = src[start:end].decode("utf-8", "replace")
    return [HoleCase(language, path, src, start, middle, kind)]


def _line_hole(doc: Document, stmt, language: str, path: str,
               rng: random.Random) -> list[HoleCase]:
    src = doc.source
    line_end = _line_end(src, stmt.start_byte)
    if stmt.end_byte > line_end:
        return []  # multi-line statements are block material, not single-line holes
    tokens = [n for n in _leaves(stmt) if n.start_byte > stmt.start_byte]
    if not tokens:
        return []
    cut = rng.choice(tokens).start_byte
    end = line_end - 1 if src[line_end - 1:line_end] == b"\n" else line_end
    middle = src[cut:end].decode("utf-8", "replace")
    if not middle.strip():
        return []
    return [HoleCase(language, path, src, cut, middle, "single_line")]


def _leaves(node):
    stack = [node]
    while stack:
        n = stack.pop()
        if n.child_count == 0:
            yield n
        stack.extend(reversed(n.children))


def evaluate(case: HoleCase, tail_chars: int) -> dict:
    """Run the stages on the oracle output of one hole."""
    src = case.source
    end = case.offset + len(case.middle.encode())
    doc = Document(case.path, (src[:case.offset] + src[end:]).decode("utf-8", "replace"),
                   case.language)
    oracle = case.middle + src[end:end + tail_chars].decode("utf-8", "ignore")
    names = KnownNames()
    inputs = prepare(doc, case.offset, names)
    cand = run_stages(inputs, oracle, STRUCTURE_ONLY)
    text = cand.text or ""
    exact = text.rstrip() == case.middle.rstrip()
    valid = False
    if cand.text is not None:
        full = Document(case.path, doc.text[: len(doc.source[:case.offset].decode())] + text
                        + doc.source[case.offset:].decode(), case.language)
        valid = count_errors(full.tree.root_node) == 0
    result = {"kind": case.kind, "exact": exact, "valid": valid}
    result.update(_naming_probe(case, doc, inputs))
    return result


def _naming_probe(case: HoleCase, doc: Document, inputs) -> dict:
    """Rename one used name of the middle; does the naming stage catch or repair it?"""
    trial = inputs.trials.trial(case.middle)
    if trial.tree is None:
        return {}
    data = case.middle.encode()
    uses = names_in_span(trial.tree.root_node, case.offset, case.offset + len(data))
    defined = {u.name for u in uses if u.defines}
    candidates = [u for u in uses if not u.defines and u.name not in defined
                  and u.name in inputs.known and len(u.name) >= 4]
    clean = naming.run(case.middle, case.offset, trial, inputs.known, None)
    out = {"false_alarm": bool(clean.unresolved)}
    if not candidates:
        return out
    target = candidates[0]
    rel = (target.start - case.offset, target.end - case.offset)

    def renamed(new: str) -> tuple[str, object]:
        text = (data[:rel[0]] + new.encode() + data[rel[1]:]).decode()
        return text, inputs.trials.trial(text)

    bogus = "zq" + "".join(random.Random(target.name).choice("xjkvw") for _ in range(6))
    text, t = renamed(bogus)
    res = naming.run(text, case.offset, t, inputs.known, None)
    out["detected"] = bool(res.unresolved) or any(a == bogus for a, _ in res.repairs)
    name = target.name
    typo = name[:1] + name[2] + name[1] + name[3:] if name[1] != name[2] else name + "x"
    if typo not in inputs.known:
        text, t = renamed(typo)
        res = naming.run(text, case.offset, t, inputs.known, None)
        out["repaired"] = (typo, name) in res.repairs
    return out


def rate(rows: list[dict], key: str, kind: str | None = None) -> float:
    """Share of rows (of a kind) where `key` is true, over rows that have the key."""
    sel = [r[key] for r in rows if key in r and (kind is None or r["kind"] == kind)]
    return round(sum(sel) / len(sel), 3) if sel else float("nan")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=80, help="files per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tail", type=int, default=1500,
                        help="characters of run-on text after the middle")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    figures: dict = {}
    started = time.perf_counter()
    all_rows: list[dict] = []
    for language in ("python", "javascript"):
        files = corpus(language)
        if not files:
            print(f"{language}: no corpus on this machine, skipped")
            continue
        rows: list[dict] = []
        for path in rng.sample(files, min(args.files, len(files))):
            for case in holes_in(path, language, rng):
                rows.append(evaluate(case, args.tail))
        all_rows.extend(rows)
        print(f"{language}: {len(rows)} holes from {min(args.files, len(files))} files")
        for kind in ("single_line", "block", "function_body"):
            n = sum(r["kind"] == kind for r in rows)
            print(f"  {kind:14s} n={n:4d}  exact cut {rate(rows, 'exact', kind):.3f}  "
                  f"syntax valid {rate(rows, 'valid', kind):.3f}")
            figures[f"{language}_{kind}_exact_cut_rate"] = rate(rows, "exact", kind)
        print(f"  naming: detection {rate(rows, 'detected'):.3f}, typo repair "
              f"{rate(rows, 'repaired'):.3f}, false alarms {rate(rows, 'false_alarm'):.3f}")
    figures.update({
        "holes": len(all_rows),
        "exact_cut_rate": rate(all_rows, "exact"),
        "syntax_valid_rate": rate(all_rows, "valid"),
        "naming_detection_rate": rate(all_rows, "detected"),
        "naming_repair_rate": rate(all_rows, "repaired"),
        "naming_false_alarm_rate": rate(all_rows, "false_alarm"),
        "wall_s": round(time.perf_counter() - started, 1),
    })
    print(f"all: {len(all_rows)} holes, exact cut {figures['exact_cut_rate']}, syntax valid "
          f"{figures['syntax_valid_rate']}, naming detection {figures['naming_detection_rate']}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
