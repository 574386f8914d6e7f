"""`stagecoder context FILE --line L --col C`: the context and the exact prompt, text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from lsp_server.cli import main
from tests.analysis.context.context_cases import FIXTURES

CART = FIXTURES / "python" / "shop" / "cart.py"
# Line 36 is `        return apply_discount(gross, self.discount_percent)`; column 31 is
# the character after the opening parenthesis.
LINE, COL = 36, 31


def test_json_output(capsys):
    code = main(["context", str(CART), "--line", str(LINE), "--col", str(COL),
                 "--workspace", str(FIXTURES / "python"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    ctx, prompt = out["context"], out["prompt"]
    assert ctx["hole"]["kind"] == "arguments" and ctx["language"] == "python"
    assert out["cut"] == "line"  # the call goes on after the cursor: finish the line
    assert [s["name"] for s in ctx["hole"]["scopes"]] == ["Cart", "net_total"]
    assert ctx["line"] == LINE - 1 and ctx["prefix"].endswith("return apply_discount(")
    assert ctx["path"] == "shop/cart.py"
    assert {"shop/pricing.py"} == {s["path"] for s in ctx["related"]}
    assert prompt["text"].startswith("<｜fim▁begin｜># shop/pricing.py\n")
    assert "<｜fim▁hole｜>gross, self.discount_percent)" in prompt["text"]
    assert out["indexedFiles"] == 3


def test_text_output_ends_with_the_verbatim_prompt(capsys):
    code = main(["context", str(CART), "--line", str(LINE), "--col", str(COL),
                 "--workspace", str(FIXTURES / "python"), "--budget", "300"])
    assert code == 0
    out = capsys.readouterr().out
    assert "hole:        arguments (the stages cut: line)\n" in out
    assert "scopes:      class Cart > method net_total" in out
    assert "definition apply_discount shop/pricing.py:11" in out
    prompt = out.split("----- prompt (BOS added by the server) -----\n", 1)[1]
    assert prompt.startswith("<｜fim▁begin｜>") and prompt.endswith(
        "<｜fim▁end｜>\n----- end of prompt -----\n")


def test_bad_positions_and_files(capsys, tmp_path):
    assert main(["context", str(CART), "--line", "999", "--col", "1"]) == 2
    assert "past the end of the file" in capsys.readouterr().err
    assert main(["context", str(CART), "--line", "0", "--col", "1"]) == 2
    assert "1-based" in capsys.readouterr().err
    assert main(["context", str(tmp_path / "missing.py"), "--line", "1", "--col", "1"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["context", str(CART), "--line", "1", "--col", "1", "--budget", "0"]) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["context", str(empty), "--line", "1", "--col", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["context"]["language"] == "plaintext"


def test_console_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server", "context", str(CART), "--line", str(LINE),
         "--col", str(COL), "--workspace", str(FIXTURES / "python"), "--json"],
        capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["context"]["hole"]["kind"] == "arguments"
