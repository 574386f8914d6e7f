"""Full parse vs one-character edit + incremental reparse on a 5,000-line Python file.

Prints both medians and the speedup; the last line is JSON:
{"lines": ..., "full_parse_ms": ..., "incremental_ms": ..., "speedup": ...}
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.documents.document import Document
from analysis.documents.languages import by_name
from benchmarks._corpus import python_file


def main(rounds: int = 200) -> dict:
    text = python_file(5000)
    lines = text.count("\n")
    source = text.encode()
    parser = by_name("python").parser()
    full = []
    for _ in range(max(rounds // 4, 20)):
        t0 = time.perf_counter()
        parser.parse(source)
        full.append(time.perf_counter() - t0)

    doc = Document("file:///bench.py", text, "python")
    rng = random.Random(0)
    incremental = []
    for _ in range(rounds // 2):
        # Type one character inside an identifier, then delete it again: two one-char edits,
        # and the file stays as real as it started (errors do not pile up across rounds).
        line = rng.randrange(lines)
        content = doc.line_text(line)
        col = next((i + 1 for i, ch in enumerate(content) if ch.isalpha()), len(content))
        steps = (((line, col), (line, col), "x"), ((line, col), (line, col + 1), ""))
        for start, end, new in steps:
            t0 = time.perf_counter()
            doc.apply_edit(start, end, new, "utf-16")
            incremental.append(time.perf_counter() - t0)
    assert doc.text == text
    full_ms = statistics.median(full) * 1e3
    inc_ms = statistics.median(incremental) * 1e3
    figures = {
        "lines": lines,
        "full_parse_ms": round(full_ms, 3),
        "incremental_ms": round(inc_ms, 3),
        "speedup": round(full_ms / inc_ms, 1),
    }
    print(f"file: {lines} lines, {len(source) / 1024:.0f} KiB of stdlib Python")
    print(f"full parse (median of {len(full)}):            {full_ms:8.3f} ms")
    print(f"1-char edit + incremental reparse (median of {rounds}): {inc_ms:8.3f} ms")
    print(f"speedup: {full_ms / inc_ms:.1f}x (expected >= 20x)")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
