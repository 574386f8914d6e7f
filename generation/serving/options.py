"""The options of `model quantize` and `model finetune`, light to import: the CLI's parser reads
their choices and defaults from here without loading the training code."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from analysis.documents.reader import DEFAULT_MAX_BYTES

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
CONTEXT_CHARS = 4000  # prompt window around a hole: 3/4 before it, 1/4 after it
SMOOTHING_STRENGTH = 0.5  # SmoothQuant's alpha: how much of the outliers move into the weights


class Scheme(StrEnum):
    """A quantization scheme that `stagecoder model quantize` writes."""

    W8A8 = "w8a8"
    W8A16 = "w8a16"


DESCRIPTIONS = {
    Scheme.W8A8: "INT8 weights per output channel, INT8 activations per token (dynamic)",
    Scheme.W8A16: "INT8 weights per output channel, 16-bit activations",
}


class FinetuneOptions(msgspec.Struct, kw_only=True):
    """One fine-tuning run."""

    repo: str
    base: str
    out: str
    rank: int | None = None  # None: the rank that trains about TRAINED_SHARE of the base
    alpha: int | None = None  # None: twice the rank
    target_modules: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_TARGETS))
    epochs: int = 2
    lr: float = 2e-4
    batch_size: int = 4
    max_tokens: int = 2048  # longer examples are left out
    context_chars: int = CONTEXT_CHARS  # prompt window around each hole
    heldout_share: float = 0.2
    seed: int = 0
    device: str | None = None  # None: cuda when torch sees a GPU, else cpu
    save_every: int = 100  # steps between checkpoints (and at the end of every epoch)
    exclude: list[str] = msgspec.field(default_factory=list)  # globs never trained on
    exclude_root: str | None = None  # the folder `exclude` is relative to (default: repo)
    max_file_bytes: int = DEFAULT_MAX_BYTES  # larger files are skipped (maxFileBytes)
