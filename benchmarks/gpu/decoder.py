"""A small causal decoder trained on real code by next-byte prediction, for the fidelity check.

Corpus: the Python standard library of the interpreter that runs this (every machine has one;
PSF licence), read at run time, tests and data tables left out. Files whose path hashes to 0
mod 16 are held out; the rest are training text. Bytes are the tokens (a 256-symbol vocabulary:
no tokenizer to ship), so 8K tokens here are 8K bytes of code, about a quarter of what 8K
DeepSeek-Coder tokens cover.

Model: pre-norm decoder layers (RMSNorm, multi-head attention with RoPE, SwiGLU MLP), tied
embeddings, plain torch; attention through `scaled_dot_product_attention` (FlashAttention on a
GPU). `forward(..., capture=[])` also returns every layer's query, key (after RoPE) and value.
Training runs for a step count or a wall-clock budget, whichever ends first, with a cosine
schedule over whichever is further along.
"""

from __future__ import annotations

import math
import sysconfig
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
             "encodings", "pydoc_data"}  # tests, installed packages, generated tables
HELD_OUT_MOD = 16


@dataclass(frozen=True)
class Size:
    """One model and training size."""

    name: str
    context: int
    layers: int
    width: int
    heads: int
    mlp: int
    batch: int
    train_seconds: float
    max_steps: int
    lr: float
    warmup_steps: int


SIZES = {
    "gpu": Size("gpu", context=8192, layers=6, width=512, heads=8, mlp=1408, batch=8,
                train_seconds=180.0, max_steps=20_000, lr=1e-3, warmup_steps=30),
    # A fixed step count on CPU (the time limit is only a guard): the same figures on any machine.
    "cpu": Size("cpu", context=1024, layers=4, width=128, heads=4, mlp=352, batch=4,
                train_seconds=900.0, max_steps=120, lr=3e-3, warmup_steps=10),
    "smoke": Size("smoke", context=256, layers=2, width=32, heads=2, mlp=64, batch=2,
                  train_seconds=5.0, max_steps=6, lr=3e-3, warmup_steps=2),
}


@dataclass
class Corpus:
    """Training bytes and held-out files, with where they came from."""

    train: torch.Tensor  # uint8 [n]
    held_out: list[tuple[str, bytes]]
    source: str


def stdlib_corpus() -> Corpus:
    """The running interpreter's standard library, split by a hash of each file's path."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    train: list[bytes] = []
    held: list[tuple[str, bytes]] = []
    for path in sorted(lib.rglob("*.py")):
        rel = path.relative_to(lib)
        if set(rel.parts[:-1]) & SKIP_DIRS or not path.is_file():
            continue
        data = path.read_bytes()
        if zlib.crc32(rel.as_posix().encode()) % HELD_OUT_MOD == 0:
            held.append((rel.as_posix(), data))
        else:
            train.append(data)
    joined = b"\x1c".join(train)  # file separator byte between files
    return Corpus(torch.frombuffer(bytearray(joined), dtype=torch.uint8), held, str(lib))


def held_out_sequences(corpus: Corpus, context: int, count: int) -> tuple[torch.Tensor, list[str]]:
    """The first `context` bytes of the first `count` held-out files at least that long."""
    chosen = [(name, data[:context]) for name, data in corpus.held_out
              if len(data) >= context][:count]
    rows = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for _, data in chosen]
    return torch.stack(rows).long() if rows else torch.zeros(0, context, dtype=torch.long), \
        [name for name, _ in chosen]


def _rope(x: torch.Tensor, base: float = 100_000.0) -> torch.Tensor:
    """Rotary position embedding over [batch, heads, T, d] (halves rotated, as Llama)."""
    t, d = x.shape[-2], x.shape[-1]
    freqs = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    angles = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * freqs[None]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


class Layer(nn.Module):
    """One pre-norm decoder layer."""

    def __init__(self, size: Size):
        super().__init__()
        self.heads = size.heads
        self.norm1 = nn.RMSNorm(size.width)
        self.qkv = nn.Linear(size.width, 3 * size.width, bias=False)
        self.proj = nn.Linear(size.width, size.width, bias=False)
        self.norm2 = nn.RMSNorm(size.width)
        self.up = nn.Linear(size.width, 2 * size.mlp, bias=False)
        self.down = nn.Linear(size.mlp, size.width, bias=False)

    def forward(self, x: torch.Tensor, capture: list | None) -> torch.Tensor:
        batch, t, width = x.shape
        qkv = self.qkv(self.norm1(x)).view(batch, t, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [batch, heads, T, d]
        q, k = _rope(q), _rope(k)
        if capture is not None:
            capture.append((q[0].detach().float(), k[0].detach().float(), v[0].detach().float()))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(batch, t, width))
        gate, up = self.up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class Decoder(nn.Module):
    """Byte-level causal decoder."""

    def __init__(self, size: Size):
        super().__init__()
        self.embed = nn.Embedding(256, size.width)
        self.layers = nn.ModuleList(Layer(size) for _ in range(size.layers))
        self.norm = nn.RMSNorm(size.width)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * size.layers) if name.endswith(("proj.weight",
                                                                          "down.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, ids: torch.Tensor, capture: list | None = None) -> torch.Tensor:
        """Logits [batch, T, 256]; with `capture`, appends each layer's (q, k, v) of row 0."""
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, capture)
        return self.norm(x) @ self.embed.weight.T


def bits_per_byte(model: Decoder, rows: torch.Tensor, device: str) -> float:
    """Mean next-byte loss over the rows, in bits."""
    losses = []
    with torch.no_grad(), _autocast(device):
        for row in rows:
            ids = row[None].to(device)
            logits = model(ids[:, :-1]).float()
            losses.append(F.cross_entropy(logits.reshape(-1, 256), ids[:, 1:].reshape(-1)))
    return float(torch.stack(losses).mean()) / math.log(2)


def _autocast(device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")


def train(size: Size, corpus: Corpus, device: str, seconds: float,
          seed: int = 0) -> tuple[Decoder, dict[str, float]]:
    """Train a fresh decoder for `size.max_steps` or `seconds`; returns it and its figures."""
    torch.manual_seed(seed)
    model = Decoder(size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=size.lr, betas=(0.9, 0.95),
                            weight_decay=0.1)
    gen = torch.Generator().manual_seed(seed)
    data = corpus.train
    warm = size.warmup_steps
    start = time.monotonic()
    step, loss_value = 0, float("nan")
    while step < size.max_steps and (elapsed := time.monotonic() - start) < seconds:
        # Progress through the schedule: by the clock or by the steps, whichever is further.
        frac = min(max(elapsed / seconds, step / size.max_steps), 1.0)
        lr = size.lr * min(1.0, (step + 1) / warm) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, data.numel() - size.context - 1, (size.batch,), generator=gen)
        rows = torch.stack([data[s:s + size.context + 1] for s in starts.tolist()]).long()
        rows = rows.to(device)
        with _autocast(device):
            logits = model(rows[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, 256), rows[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        loss_value = float(loss.detach())
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    return model, {"steps": step, "train_seconds": time.monotonic() - start,
                   "train_bytes": step * size.batch * size.context,
                   "final_train_bits_per_byte": loss_value / math.log(2), "parameters": params}
