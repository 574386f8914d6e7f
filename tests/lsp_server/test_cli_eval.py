"""`stagecoder eval PATH`: holes cut from a repository, completed by the configured model, the
stages on and off side by side; secret and excluded files never read for a hole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOP = '''class Cart:
    def __init__(self):
        self.items = []

    def add(self, item, qty):
        if qty <= 0:
            raise ValueError("qty must be positive")
        self.items.append((item, qty))
        return len(self.items)

    def total(self, prices):
        total = 0
        for item, qty in self.items:
            total += prices[item] * qty
            total -= 0
        return total


def mean(values):
    count = len(values)
    return sum(values) / count
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.stagecoder.context]\nexclude = ["gen/"]\n')
    (tmp_path / "shop.py").write_text(SHOP)
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "big.py").write_text(SHOP.replace("Cart", "Generated"))
    (tmp_path / "secrets.env").write_text("TOKEN=x\n")
    (tmp_path / "credentials.py").write_text(SHOP.replace("Cart", "Creds"))
    return tmp_path


def stagecoder(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_server", "eval", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


FAKE = {"STAGECODER_MODEL_FACTORY": "tests.fakes.models:scripted",
        "STAGECODER_FAKE_TEXT": "len(values))\n"}


def test_json_report_has_both_columns_and_only_allowed_files(repo: Path):
    proc = stagecoder(repo, ".", "--holes", "6", "--seed", "2", "--json", **FAKE)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["holes"], report["files"], report["seed"], report["errors"]) == (6, 1, 2, 0)
    for side in ("stagesOn", "stagesOff"):
        assert set(report[side]) == {"exactMatch", "editSimilarity", "syntaxValid",
                                     "namingFlags", "shown"}
    assert set(report["byKind"]) <= {"line", "block", "function_body"}
    assert set(report["latencyMs"]) == {"requestP50", "requestP95", "serverP50", "serverP95"}
    again = json.loads(stagecoder(repo, ".", "--holes", "6", "--seed", "2", "--json",
                                  **FAKE).stdout)
    for key in ("stagesOn", "stagesOff", "byKind", "holes"):
        assert again[key] == report[key]  # the same seed and model: the same figures


def test_table_report(repo: Path):
    proc = stagecoder(repo, "shop.py", "--holes", "4", "--no-progress", **FAKE)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "stagecoder eval: 4 holes from 1 files (seed 0)" in out
    for text in ("stages on", "stages off", "exact match", "edit similarity", "syntax valid",
                 "naming flags", "latency: request p50"):
        assert text in out


def test_errors_are_one_line_and_exit_2(repo: Path, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    proc = stagecoder(empty, ".", **FAKE)
    assert (proc.returncode, proc.stderr) == (2, "stagecoder: no holes to cut under . (no "
                                              "source file that parses cleanly, outside the "
                                              "excludes)\n")
    proc = stagecoder(repo, ".", "--holes", "0", **FAKE)
    assert (proc.returncode, proc.stderr) == (2, "stagecoder: --holes must be between 1 and "
                                              "10,000, got 0\n")
    proc = stagecoder(repo, "nowhere", **FAKE)
    assert (proc.returncode, proc.stderr) == (2, "stagecoder: nowhere: no such file or folder\n")
    proc = stagecoder(repo, ".", "--holes", "2", "--url", "http://127.0.0.1:9",
                      **{"STAGECODER_MODEL_FACTORY": "tests.fakes.models:down"})
    assert proc.returncode == 2
    assert proc.stderr == ("stagecoder: the model answered none of the 2 requests (is the "
                           "completion server at http://127.0.0.1:9 up?)\n")


@pytest.mark.vllm
def test_eval_against_the_real_server(repo: Path, vllm_server):
    args = (".", "--holes", "6", "--seed", "1", "--json", "--candidates", "1",
            "--url", vllm_server.url, "--model", vllm_server.model)
    first = stagecoder(repo, *args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["holes"], report["errors"]) == (6, 0)
    assert set(report["stagesOn"]) == set(report["stagesOff"])
    assert 0.0 <= report["stagesOn"]["syntaxValid"] <= 1.0
    second = json.loads(stagecoder(repo, *args).stdout)
    assert (second["stagesOn"], second["stagesOff"]) == (report["stagesOn"],
                                                          report["stagesOff"])
