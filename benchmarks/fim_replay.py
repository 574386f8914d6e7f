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
- naming_false_alarm_rate: on the untouched middle, the stage flags a name;
- member_detection_rate / member_repair_rate / member_false_alarm_rate: the same for one member
  of `self`/`this` that the middle uses (`self.types` -> `self.zqxkvw`, `self.tpyes`), over
  every hole that has one, whether or not the class's members can be known (a class with a
  library base stays unchecked and counts as missed);
- broken_*: every figure again with an unrelated unclosed bracket (`_pending = compute(1,`) on
  a line of its own at the top-level boundary farthest above the hole's own unit (below it when
  the hole is in the first one): files in an editor are broken while someone types.
Corpora: the Python standard library, and the JavaScript of the npm CLI installed with Node.
Every hole and probe goes through `stagecoder stages --batch` (one process): `prepare_at`, the
call the editor's engine makes (context, hole, stage inputs), so the figures are the editor's.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.documents.document import Document
from analysis.documents.trial import count_errors
from analysis.scope.members import member_uses
from analysis.scope.names import KnownNames, names_in_span
from benchmarks._corpus import stdlib_dir

ROOT = Path(__file__).resolve().parents[1]
NPM_LIB = Path("/usr/lib/node_modules/npm/lib")

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


@dataclass(slots=True)
class HoleCase:
    """One hole: file text, cursor offset (bytes), the true middle, and its kind."""

    language: str
    path: str
    source: bytes
    offset: int
    middle: str
    kind: str
    pristine: bytes | None = None  # a broken variant's file before the bracket was added
    shift: int = 0  # bytes the bracket's line moved the hole by


def corpus(language: str) -> list[Path]:
    """Source files of a language from code on this machine that is not the project's."""
    if language == "python":
        root = stdlib_dir()
        return sorted(p for p in root.glob("*.py") if p.stat().st_size < 200_000)
    return sorted(NPM_LIB.rglob("*.js")) if NPM_LIB.is_dir() else []


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


def broken_variant(case: HoleCase) -> HoleCase | None:
    """The same hole in the same file with an unrelated unclosed bracket far from it: a new
    line at the top-level boundary farthest above the hole's own top-level unit (below it when
    the hole is in the first one). None when the file has no second top-level unit."""
    src = case.source
    doc = Document(case.path, src.decode("utf-8", "replace"), case.language)
    assert doc.tree is not None
    starts = [c.start_byte for c in doc.tree.root_node.children
              if src.rfind(b"\n", 0, c.start_byte) + 1 == c.start_byte]
    end = case.offset + len(case.middle.encode())
    above = [b for b in starts if b < case.offset and b > 0]
    below = [b for b in starts if b > end]
    line = BROKEN_LINE[case.language]
    if above:
        at = above[0]
        return HoleCase(case.language, case.path, src[:at] + line + src[at:],
                        case.offset + len(line), case.middle, case.kind, src, len(line))
    if below:
        at = below[-1]
        return HoleCase(case.language, case.path, src[:at] + line + src[at:], case.offset,
                        case.middle, case.kind, src, 0)
    return None


BROKEN_LINE = {"python": b"_pending = compute(1,\n", "javascript": b"const pending = compute(1,\n"}


def batch_cases(case: HoleCase, key: str, tail_chars: int) -> tuple[list[dict], dict]:
    """The `stages --batch` cases of one hole (the cut, then the naming probes) and what each
    probe expects to find in the naming stage's detail."""
    src = case.source
    end = case.offset + len(case.middle.encode())
    text = (src[:case.offset] + src[end:]).decode("utf-8", "replace")
    offset = len(src[:case.offset].decode("utf-8", "replace"))  # characters, as --batch takes
    oracle = case.middle + src[end:end + tail_chars].decode("utf-8", "ignore")
    base = {"text": text, "language": case.language, "offset": offset, "boundary": False}
    cases = [{**base, "id": f"{key}|cut", "raw": oracle, "naming": False},
             {**base, "id": f"{key}|clean", "raw": case.middle}]
    expect: dict = {}
    for probe, raw, wants in _probes(case, text):
        cases.append({**base, "id": f"{key}|{probe}", "raw": raw})
        expect[probe] = wants
    return cases, expect


def _probes(case: HoleCase, text: str) -> list[tuple[str, str, str]]:
    """(probe, raw output, text the naming detail must hold): one used name of the middle and
    one member of `self`/`this` renamed to a nonexistent name, and each with a typo."""
    # Targets are picked in the file as it was (a broken variant probes the same names).
    pristine = case.pristine if case.pristine is not None else case.source
    original = Document(case.path, pristine.decode("utf-8", "replace"), case.language)
    holed = Document(case.path, text, case.language)
    assert original.tree is not None
    known = KnownNames().known(holed, min(case.offset, len(holed.source)))
    data = case.middle.encode()
    start = case.offset - case.shift
    end = start + len(data)
    uses = names_in_span(original.tree.root_node, start, end)
    defined = {u.name for u in uses if u.defines}
    out: list[tuple[str, str, str]] = []

    def renamed(span: tuple[int, int], new: str) -> str:
        return (data[:span[0] - start] + new.encode() + data[span[1] - start:]).decode()

    names = [u for u in uses if not u.defines and u.name not in defined and u.name in known
             and len(u.name) >= 4]
    if names:
        target = names[0]
        bogus = _bogus(target.name)
        out.append(("bogus", renamed((target.start, target.end), bogus), bogus))
        typo = _typo(target.name)
        if typo not in known:
            out.append(("typo", renamed((target.start, target.end), typo),
                        f"{typo} -> {target.name}"))
    members = [u for u in member_uses(original.tree.root_node, start, end, case.language)
               if u.obj in ("self", "this") and not u.defines and len(u.name) >= 4
               and u.name in known
               and not any(m.defines and m.name == u.name for m in uses_of_members(
                   original, start, end, case.language))]
    if members:
        target_m = members[0]
        bogus = _bogus(target_m.name)
        out.append(("member_bogus", renamed((target_m.start, target_m.end), bogus),
                    f"{target_m.obj}.{bogus}"))
        typo = _typo(target_m.name)
        if typo not in known:
            out.append(("member_typo", renamed((target_m.start, target_m.end), typo),
                        f"{target_m.obj}.{typo} -> {target_m.obj}.{target_m.name}"))
    return out


def uses_of_members(doc: Document, start: int, end: int, language: str) -> list:
    """Every member use of the middle (for the ones it assigns)."""
    assert doc.tree is not None
    return member_uses(doc.tree.root_node, start, end, language)


def _bogus(name: str) -> str:
    return "zq" + "".join(random.Random(name).choice("xjkvw") for _ in range(6))


def _typo(name: str) -> str:
    return name[:1] + name[2] + name[1] + name[3:] if name[1] != name[2] else name + "x"


def score(case: HoleCase, results: dict[str, dict], expect: dict) -> dict:
    """The figures of one hole from its batch results."""
    cut = results["cut"]
    text = cut.get("text")
    exact = (text or "").rstrip() == case.middle.rstrip()
    valid = False
    if text is not None:  # judged in the file without the added bracket: is the text valid?
        src = case.pristine if case.pristine is not None else case.source
        at = case.offset - case.shift
        end = at + len(case.middle.encode())
        full = Document(case.path, (src[:at].decode() + text + src[end:].decode()),
                        case.language)
        valid = full.tree is not None and count_errors(full.tree.root_node) == 0
    row: dict = {"kind": case.kind, "exact": exact, "valid": valid}
    clean = _naming_detail(results["clean"])
    row["false_alarm"] = any("." not in n for n in _unknown(clean))
    row["member_false_alarm"] = any("." in n for n in _unknown(clean))
    for probe, wants in expect.items():
        detail = _naming_detail(results[probe])
        key = {"bogus": "detected", "typo": "repaired", "member_bogus": "member_detected",
               "member_typo": "member_repaired"}[probe]
        row[key] = wants in detail
    return row


def _naming_detail(result: dict) -> str:
    return next((s["detail"] for s in result.get("stages", ()) if s["stage"] == "naming"), "")


def _unknown(detail: str) -> list[str]:
    part = next((p for p in detail.split("; ") if p.startswith("unknown ")), "")
    return [n.strip() for n in part[len("unknown "):].split(",") if n.strip()]


def run_batch(cases: list[dict], workspaces: list[Path]) -> dict[str, dict]:
    """All cases through `stagecoder stages --batch` (one process), by id; one run per corpus
    folder, indexed as the editor indexes its workspace."""
    out: dict[str, dict] = {}
    for root in workspaces:
        mine = [c for c in cases if c["text_root"] == str(root)]
        out.update(_run_batch([{k: v for k, v in c.items() if k != "text_root"} for c in mine],
                              root))
    return out


def _run_batch(cases: list[dict], root: Path) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "cases.jsonl"
        batch.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "lsp_server", "stages", "--batch",
                               str(batch), "--workspace", str(root)], capture_output=True,
                              text=True, env=env, cwd=tmp, timeout=3600)
    out = {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}
    if len(out) != len(cases):
        raise SystemExit(f"stages --batch answered {len(out)} of {len(cases)} cases (exit "
                         f"{proc.returncode}): {proc.stderr.strip()[-500:]}")
    return out


def rate(rows: list[dict], key: str, kind: str | None = None) -> float:
    """Share of rows (of a kind) where `key` is true, over rows that have the key."""
    sel = [r[key] for r in rows if key in r and (kind is None or r["kind"] == kind)]
    return round(sum(sel) / len(sel), 3) if sel else float("nan")


def summarize(label: str, rows: list[dict], figures: dict, prefix: str) -> None:
    """Print one variant's rates per language and kind, and add them to `figures`."""
    for language in ("python", "javascript"):
        sel = [r for r in rows if r["language"] == language]
        if not sel:
            continue
        print(f"{label} {language}: {len(sel)} holes")
        for kind in ("single_line", "block", "function_body"):
            n = sum(r["kind"] == kind for r in sel)
            print(f"  {kind:14s} n={n:4d}  exact cut {rate(sel, 'exact', kind):.3f}  "
                  f"syntax valid {rate(sel, 'valid', kind):.3f}")
            figures[f"{prefix}{language}_{kind}_exact_cut_rate"] = rate(sel, "exact", kind)
        print(f"  naming: detection {rate(sel, 'detected'):.3f}, typo repair "
              f"{rate(sel, 'repaired'):.3f}, false alarms {rate(sel, 'false_alarm'):.3f}; "
              f"members: detection {rate(sel, 'member_detected'):.3f} "
              f"(n={sum('member_detected' in r for r in sel)}), typo repair "
              f"{rate(sel, 'member_repaired'):.3f}, false alarms "
              f"{rate(sel, 'member_false_alarm'):.3f}")
    for key, name in (("exact", "exact_cut_rate"), ("valid", "syntax_valid_rate"),
                      ("detected", "naming_detection_rate"), ("repaired", "naming_repair_rate"),
                      ("false_alarm", "naming_false_alarm_rate"),
                      ("member_detected", "member_detection_rate"),
                      ("member_repaired", "member_repair_rate"),
                      ("member_false_alarm", "member_false_alarm_rate")):
        figures[prefix + name] = rate(rows, key)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=80, help="files per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tail", type=int, default=1500,
                        help="characters of run-on text after the middle")
    parser.add_argument("--no-broken", action="store_true",
                        help="skip the variant with an unclosed bracket far from each hole")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    holes: list[HoleCase] = []
    for language in ("python", "javascript"):
        files = corpus(language)
        if not files:
            print(f"{language}: no corpus on this machine, skipped")
            continue
        for path in rng.sample(files, min(args.files, len(files))):
            holes.extend(holes_in(path, language, rng))
    variants = {"": holes}
    if not args.no_broken:
        variants["broken_"] = [b for h in holes if (b := broken_variant(h)) is not None]
    cases: list[dict] = []
    plans: list[tuple[str, HoleCase, str, dict]] = []
    for prefix, group in variants.items():
        for i, case in enumerate(group):
            key = f"{prefix}{i}"
            batch, expect = batch_cases(case, key, args.tail)
            cases.extend(batch)
            plans.append((prefix, case, key, expect))
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"javascript": NPM_LIB, "python": Path(tmp)}
        for path in corpus("python"):  # the stdlib's top level only, not its test suites
            shutil.copyfile(path, Path(tmp) / path.name)
        for c in cases:
            c["text_root"] = str(roots[c["language"]])
        results = run_batch(cases, [roots[lang] for lang in ("python", "javascript")
                                    if any(c["language"] == lang for c in cases)])
    figures: dict = {}
    for prefix, label in (("", "unbroken"), ("broken_", "broken elsewhere")):
        rows = []
        for p, case, key, expect in plans:
            if p != prefix:
                continue
            mine = {c["id"].rsplit("|", 1)[1]: results[c["id"]] for c in cases
                    if c["id"].startswith(key + "|")}
            rows.append({"language": case.language, **score(case, mine, expect)})
        if rows:
            summarize(label, rows, figures, prefix)
            figures[prefix + "holes"] = len(rows)
    if "broken_exact_cut_rate" in figures:
        figures["broken_max_drop_points"] = round(100 * max(
            figures[k] - figures["broken_" + k] for k in
            ("exact_cut_rate", "syntax_valid_rate", "naming_detection_rate",
             "member_detection_rate")), 1)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    print(f"all: {figures.get('holes', 0)} holes, exact cut {figures.get('exact_cut_rate')}, "
          f"syntax valid {figures.get('syntax_valid_rate')}, naming detection "
          f"{figures.get('naming_detection_rate')}, member detection "
          f"{figures.get('member_detection_rate')}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
