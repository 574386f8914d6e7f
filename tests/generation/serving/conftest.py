"""Checkpoints the model-lifecycle tests share: the W8A8 tiny model and a LoRA adapter trained on
tests/fixtures/finetune_repo, each made once per session through the real CLI."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from lsp_server.cli import main

ROOT = Path(__file__).resolve().parents[3]
FIXTURE_REPO = ROOT / "tests" / "fixtures" / "finetune_repo"
# A random-weight model learns fast at a high rate; a short window keeps the run in seconds.
FINETUNE_ARGS = ("--rank", "8", "--lr", "3e-3", "--epochs", "1", "--context-chars", "400")
ADAPTER_NAME = "bookshop"


@dataclass(frozen=True)
class Made:
    """A folder a CLI command wrote, with what the command printed."""

    path: Path
    code: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`stagecoder ARGV` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def needs(*modules: str) -> None:
    """Skip unless the `train` extra (and torch) is installed."""
    for module in modules:
        pytest.importorskip(module, reason=f"needs {module} (pip install -e '.[cpu,train]')")


@pytest.fixture(scope="session")
def tiny_w8a8(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Made:
    """The tiny checkpoint quantized to W8A8, calibrated on the fixture repository."""
    needs("torch", "transformers", "compressed_tensors")
    target = tmp_path_factory.mktemp("w8a8") / "tiny-w8a8"
    code, out, err = run_cli("model", "quantize", str(tiny_checkpoint), str(target),
                             "--calibration", str(FIXTURE_REPO))
    assert code == 0, err
    return Made(target, code, out, err)


@pytest.fixture(scope="session")
def fixture_adapter(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A LoRA adapter trained by `model finetune` on the fixture repository."""
    needs("torch", "transformers", "peft")
    target = tmp_path_factory.mktemp("lora") / ADAPTER_NAME
    code, out, err = run_cli("model", "finetune", str(FIXTURE_REPO), "--base",
                             str(tiny_checkpoint), "--out", str(target), *FINETUNE_ARGS)
    assert code == 0, err
    return Made(target, code, out, err)


def copy_checkpoint(source: Path, target: Path) -> Path:
    """A copy of a checkpoint folder (to edit its config)."""
    shutil.copytree(source, target)
    return target
