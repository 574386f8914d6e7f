"""The tiny checkpoint: deterministic files, DeepSeek-Coder's special tokens, a loadable config."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
from pathlib import Path

import pytest

from generation.serving import tiny
from lsp_server.cli import main
from tests.generation.serving.test_serving import run_without

# Writing weights needs torch and safetensors (the cpu extra); the CLI checks that first.
needs_torch = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "safetensors")),
    reason="needs torch and safetensors (pip install -e '.[cpu]')")

SPECIALS = {
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<\uff5cfim\u2581begin\uff5c>",
    "<\uff5cfim\u2581hole\uff5c>",
    "<\uff5cfim\u2581end\uff5c>",
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    root = tmp_path_factory.mktemp("tiny")
    return {
        "a": tiny.make_tiny(root / "a", seed=0),
        "b": tiny.make_tiny(root / "b", seed=0),
        "c": tiny.make_tiny(root / "c", seed=1),
    }


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_gives_byte_identical_files(made: dict[str, Path]) -> None:
    a, b = _files(made["a"]), _files(made["b"])
    assert set(a) >= {"config.json", "generation_config.json", "model.safetensors",
                      "tokenizer.json", "tokenizer_config.json"}
    assert a == b


def test_other_seed_changes_only_the_weights(made: dict[str, Path]) -> None:
    a, c = _files(made["a"]), _files(made["c"])
    assert a["model.safetensors"] != c["model.safetensors"]
    assert {k: v for k, v in a.items() if k != "model.safetensors"} == {
        k: v for k, v in c.items() if k != "model.safetensors"}


def test_special_tokens_are_deepseek_coders_exactly(made: dict[str, Path]) -> None:
    assert set(tiny.SPECIAL_TOKENS) == SPECIALS  # spelled with U+FF5C and U+2581
    tok = tiny.load_tokenizer(made["a"])
    for token in SPECIALS:
        ids = tok.encode(token, add_special_tokens=False).ids
        assert ids == [tok.token_to_id(token)], token
    added = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    assert added == SPECIALS
    config = json.loads((made["a"] / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["bos_token"] == tiny.BOS and config["eos_token"] == tiny.EOS
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_fim_prompt_keeps_fim_tokens_whole_and_round_trips(made: dict[str, Path]) -> None:
    tok = tiny.load_tokenizer(made["a"])
    hole = f"def add(a, b):\n    {tiny.FIM_HOLE}\n\nprint(add(1, 2))"
    prompt = f"{tiny.FIM_BEGIN}{hole}{tiny.FIM_END}"
    enc = tok.encode(prompt)
    assert enc.ids[0] == tok.token_to_id(tiny.BOS)  # BOS is added like DeepSeek-Coder's
    for special in (tiny.FIM_BEGIN, tiny.FIM_HOLE, tiny.FIM_END):
        assert enc.ids.count(tok.token_to_id(special)) == 1
    assert tok.decode(enc.ids, skip_special_tokens=False) == tiny.BOS + prompt


def test_tokenizer_is_byte_level_bpe_of_a_few_thousand(made: dict[str, Path]) -> None:
    tok = tiny.load_tokenizer(made["a"])
    assert 2000 <= tok.get_vocab_size() <= 8000
    text = "naïve — 日本語 \x00\U0001f600"  # anything round-trips through bytes
    assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text
    # trained on code: a common keyword is one token
    assert len(tok.encode(" return", add_special_tokens=False).ids) == 1


def test_model_config_is_llama_with_gqa(made: dict[str, Path]) -> None:
    config = json.loads((made["a"] / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "llama"
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["num_key_value_heads"] < config["num_attention_heads"]
    assert config["head_dim"] * config["num_attention_heads"] == config["hidden_size"]
    assert config["max_position_embeddings"] == 32768
    assert config["vocab_size"] == tiny.load_tokenizer(made["a"]).get_vocab_size()
    tok = tiny.load_tokenizer(made["a"])
    assert config["bos_token_id"] == tok.token_to_id(tiny.BOS)
    assert config["eos_token_id"] == tok.token_to_id(tiny.EOS)


def test_weights_match_the_config(made: dict[str, Path]) -> None:
    from safetensors import safe_open

    config = json.loads((made["a"] / "config.json").read_text(encoding="utf-8"))
    with safe_open(str(made["a"] / "model.safetensors"), "pt") as f:
        names = set(f.keys())
        embed = f.get_slice("model.embed_tokens.weight").get_shape()
        k_proj = f.get_slice("model.layers.0.self_attn.k_proj.weight").get_shape()
    assert embed == [config["vocab_size"], config["hidden_size"]]
    assert k_proj == [config["num_key_value_heads"] * config["head_dim"], config["hidden_size"]]
    assert len([n for n in names if n.startswith("model.layers.")]) == 9 * config[
        "num_hidden_layers"]


def test_transformers_tokenizer_agrees_with_the_local_one(made: dict[str, Path]) -> None:
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(made["a"]))
    tok = tiny.load_tokenizer(made["a"])
    for text in ("import os\n", f"{tiny.FIM_BEGIN}x{tiny.FIM_HOLE}y{tiny.FIM_END}", "ünï 123456"):
        assert hf(text)["input_ids"] == tok.encode(text).ids
    assert hf.bos_token == tiny.BOS and hf.eos_token == tiny.EOS


def test_cli_make_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       made: dict[str, Path]) -> None:
    assert main(["model", "make-tiny", str(tmp_path / "ck")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "ck")
    assert _files(tmp_path / "ck") == _files(made["a"])


@needs_torch
def test_test_cache_builds_from_scratch_then_reuses(tmp_path: Path) -> None:
    from tests.plugins.vllm_server import checkpoint_key, tiny_checkpoint_dir

    first = tiny_checkpoint_dir(0, root=tmp_path)
    assert first.name == f"tiny-{checkpoint_key(0)}"
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert tiny_checkpoint_dir(0, root=tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not rewritten
    assert checkpoint_key(1) != checkpoint_key(0)
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no scratch left behind


# --- what the user sees when the checkpoint cannot be written ----------------------------------

@needs_torch
@pytest.mark.parametrize("target, message", [
    ("/proc/nope", "cannot write a checkpoint in /proc/nope: No such file or directory"),
    ("a-file", "a-file exists and is not a directory"),
    ("a-file/ck", "cannot write a checkpoint in a-file/ck: a-file is not a directory"),
    ("full", "full is not empty: give a new or empty directory"),
])
def test_cli_make_tiny_bad_target_is_one_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        target: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["model", "make-tiny", target]) == 2
    assert capsys.readouterr() == ("", f"stagecoder: {message}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no leftovers
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"


@needs_torch
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_cli_make_tiny_unwritable_directory(tmp_path: Path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main(["model", "make-tiny", str(locked / "ck")]) == 2
    assert capsys.readouterr().err == (
        f"stagecoder: cannot write a checkpoint in {locked / 'ck'}: Permission denied\n")
    assert list(locked.iterdir()) == []


@needs_torch
@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt()], ids=["disk-full", "ctrl-c"])
def test_failed_write_leaves_no_half_written_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, failure: BaseException) -> None:
    def fail(*args: object) -> None:
        raise failure

    monkeypatch.setattr(tiny, "_write_weights", fail)  # after the tokenizer and configs
    code = main(["model", "make-tiny", str(tmp_path / "ck")])
    if isinstance(failure, OSError):
        assert code == 2
        assert capsys.readouterr().err == (
            f"stagecoder: cannot write a checkpoint in {tmp_path / 'ck'}: "
            "No space left on device\n")
    else:
        assert code == 130
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary folder


def test_make_tiny_without_torch_names_the_extra(tmp_path: Path) -> None:
    proc = run_without(["torch", "safetensors"], "model", "make-tiny", "ck", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "stagecoder: model make-tiny needs torch and safetensors, which this install lacks; "
        "install the extra from the stagecoder checkout: pip install -e '.[cpu]' (CPU hosts) "
        "or pip install -e '.[vllm]' (GPU hosts)\n")
    assert list(tmp_path.iterdir()) == []
