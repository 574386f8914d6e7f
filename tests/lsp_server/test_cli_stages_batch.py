"""`stagecoder stages --batch`: one JSON line in per case, one out, in one process, answering
exactly what the one-case command answers (so replays measure the editor's path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def stagecoder(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsp_server", "stages", *args], cwd=cwd,
                          input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_batch_answers_each_case_like_the_single_command(tmp_path: Path):
    source = "def total(values):\n    t = 0\n\n    return t\n"
    (tmp_path / "t.py").write_text(source)
    (tmp_path / "raw.txt").write_text("    for v in values:\n        t += v\n")
    single = stagecoder(tmp_path, "t.py", "--line", "3", "--col", "1", "--raw", "raw.txt")
    cases = [
        {"id": "from-text", "text": source, "language": "python", "line": 3, "col": 1,
         "raw": "    for v in values:\n        t += v\n"},
        {"id": "from-path", "path": "t.py", "offset": source.index("\n\n") + 1,
         "raw": "    for v in values:\n        t += v\n"},
        {"text": "x = 1\n", "language": "python", "offset": 4, "raw": "2 + 3\n",
         "naming": False},
    ]
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    batch = stagecoder(tmp_path, "--batch", "cases.jsonl")
    assert (batch.returncode, batch.stderr) == (0, "")
    out = [json.loads(line) for line in batch.stdout.splitlines()]
    want = json.loads(single.stdout)
    for result in out[:2]:
        assert {k: v for k, v in result.items() if k != "id"} == {
            k: v for k, v in want.items() if k not in ("file", "line", "col")}
    assert [r["id"] for r in out] == ["from-text", "from-path", 3]
    assert out[0]["text"] == "    for v in values:\n        t += v"
    assert [s["stage"] for s in out[2]["stages"]] == ["structure", "boundary"]


def test_bad_lines_get_an_error_each_and_exit_2(tmp_path: Path):
    lines = ['{"id": "ok", "text": "x = 1\\n", "language": "python", "offset": 5, '
             '"raw": "\\n"}', "[1, 2]", "{not json", '{"id": "no-raw", "text": "x"}',
             '{"id": "far", "text": "x", "offset": 99, "raw": "y"}', ""]
    batch = stagecoder(tmp_path, "--batch", "-", stdin="\n".join(lines) + "\n")
    assert batch.returncode == 2
    assert batch.stderr == "stagecoder: 4 case(s) could not be run (see their \"error\")\n"
    out = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [r["id"] for r in out] == ["ok", 2, 3, "no-raw", "far"]
    assert out[1]["error"] == "line 2 is not a JSON object"
    assert out[3]["error"] == 'line 4: "raw" (the model output, a string) is missing'
    assert out[4]["error"] == ('line 5: the cursor needs "line" and "col" (1-based) or an '
                               '"offset" inside the text')


def test_batch_and_position_arguments_do_not_mix(tmp_path: Path):
    proc = stagecoder(tmp_path, "--batch", "x.jsonl", "t.py")
    assert (proc.returncode, proc.stderr) == (2, "stagecoder: --batch takes its cases from the "
                                              "file; FILE, --line, --col and --raw do not "
                                              "apply\n")
    proc = stagecoder(tmp_path, "t.py")
    assert proc.returncode == 2 and "stages needs FILE --line L --col C --raw" in proc.stderr


def test_thousands_of_cases_take_seconds(tmp_path: Path):
    case = {"text": "def f(a, b):\n    return max(a,\n", "language": "python", "line": 2,
            "col": 18, "raw": " b)\n"}
    (tmp_path / "many.jsonl").write_text((json.dumps(case) + "\n") * 2000)
    started = time.monotonic()
    batch = stagecoder(tmp_path, "--batch", "many.jsonl")
    elapsed = time.monotonic() - started
    assert batch.returncode == 0
    assert len(batch.stdout.splitlines()) == 2000
    assert elapsed < 90  # generous: one process, a few ms a case (a process each: minutes)
