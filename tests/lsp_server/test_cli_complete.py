"""`stagecoder complete`: what the user sees when a completion comes, when none survives, and why.

The model is the scripted fake (tests/fakes/models.py), chosen the way the CLI chooses its model:
STAGECODER_MODEL_FACTORY, with STAGECODER_FAKE_TEXT as the raw text of every candidate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.cli import build_parser, main

SOURCE = "def add(a, b):\n    \n"


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STAGECODER_MODEL_FACTORY", "tests.fakes.models:scripted")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calc.py").write_text(SOURCE, encoding="utf-8")

    def answer(text: str) -> None:
        monkeypatch.setenv("STAGECODER_FAKE_TEXT", text)

    return answer


def test_a_surviving_candidate_is_printed_with_exit_0(fake_model, capsys) -> None:
    fake_model("    return a + b\n")
    assert main(["complete", "calc.py", "--line", "2", "--col", "5"]) == 0
    assert capsys.readouterr() == ("    return a + b\n", "")


def test_no_survivor_says_why_per_candidate_with_exit_1(fake_model, capsys) -> None:
    fake_model(")))) ((((\n")
    assert main(["complete", "calc.py", "--line", "2", "--col", "5"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    reason = "structure dropped: closes the block at line 1; adds 2 error node(s) where the " \
             "file had 0"
    assert err == (
        "stagecoder: no completion: the stages dropped all 2 candidates\n"
        f"  candidate 1 ')))) ((((\\n': {reason}\n"
        f"  candidate 2 ')))) ((((\\n': {reason}\n")


def test_one_candidate_and_a_long_raw_text(fake_model, capsys) -> None:
    fake_model(")" * 50 + "\n")
    assert main(["complete", "calc.py", "--line", "2", "--col", "5", "--candidates", "1"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "stagecoder: no completion: the stages dropped all 1 candidate"
    assert lines[1].startswith(f"  candidate 1 '{')' * 40}…': structure dropped: ")
    assert len(lines) == 2


def test_a_file_kept_from_the_model_says_so(fake_model, capsys, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TOKEN=abc\n", encoding="utf-8")
    assert main(["complete", ".env", "--line", "1", "--col", "1"]) == 1
    assert capsys.readouterr() == ("", (
        "stagecoder: no completion: nothing was sent to the model (the file looks like a "
        "secret store or matches a context exclude)\n"))


def test_help_documents_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["complete", "--help"])
    out = capsys.readouterr().out
    assert "exit status:\n  0  a completion was printed\n  1  no completion:" in out
    assert "\n  2  an error: the file cannot be read" in out
