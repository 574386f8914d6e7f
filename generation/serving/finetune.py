"""LoRA fine-tuning of a code model on the user's own repository, for vLLM to serve as an adapter.

The data is `fim_examples`' fill-in-the-middle examples (held out by file); the loss counts only
the middle and the EOS after it, which is what the model writes when the engine asks. Low-rank
adapters (peft) go on the attention projections by default, at the rank that trains about 0.1%
of the base model's parameters (a power of two, 1 to 64; vLLM serves ranks up to 512).

Everything is written into a hidden work folder beside the output (`.NAME.partial`): the data
set first, then a checkpoint (adapter weights, optimizer, schedule, random state) every
`save_every` steps and at the end of each epoch. Running the same command again resumes from
the last checkpoint, in the same order, so a resumed run ends where an uninterrupted one would.
At the end the adapter folder is renamed to the output and the work folder removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec

from generation.serving.corpus import read_corpus
from generation.serving.fim_examples import FimDataset, FimExample, build_dataset, write_jsonl
from generation.serving.options import FinetuneOptions
from generation.serving.serve import TRAIN_HINT, require_modules
from generation.serving.staging import CheckpointTargetError, check_target, publish

REQUIRED = ("torch", "transformers", "peft", "safetensors")
TRAINED_SHARE = 0.001  # of the base model's parameters, for the default rank
STATE = "state.json"


class FinetuneError(Exception):
    """Fine-tuning cannot run as asked (one line, for the user)."""


@dataclass(slots=True)
class FinetuneReport:
    """What one run did."""

    out: str
    train_examples: int
    heldout_examples: int
    train_files: int
    heldout_files: int
    rank: int
    alpha: int
    trainable_params: int
    base_params: int
    steps: int
    loss_before: float  # mean held-out loss per middle token, before training
    loss_after: float
    resumed_from: int | None  # the step a checkpoint gave, when the run resumed
    device: str
    seconds: float


Progress = Callable[[int, int, float], None]  # (step, total steps, last loss)


def finetune(opts: FinetuneOptions, *, on_step: Progress | None = None,
             log: Callable[[str], None] = lambda line: None) -> FinetuneReport:
    """Train a LoRA adapter and write it to `opts.out`; checks everything before writing.

    Raises MissingDependency, FinetuneError, CorpusError, DatasetError or CheckpointTargetError.
    """
    require_modules(REQUIRED, "model finetune", TRAIN_HINT)
    started = time.monotonic()
    base, out = Path(opts.base), Path(opts.out)
    if not (base / "config.json").is_file():
        raise FinetuneError(f"{base}: not a checkpoint directory (no config.json)")
    _check_options(opts)
    check_target(out, "an adapter")
    corpus = read_corpus(opts.repo, opts.exclude, exclude_root=opts.exclude_root,
                         max_bytes=opts.max_file_bytes)
    data = build_dataset(corpus, seed=opts.seed,
                         heldout_share=opts.heldout_share, context_chars=opts.context_chars)
    log(f"{len(data.train)} training examples from {len(data.train_files)} files, "
        f"{len(data.heldout)} held out from {len(data.heldout_files)} files")

    import torch

    device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise FinetuneError("--device cuda: torch sees no GPU on this host")
    torch.manual_seed(opts.seed)
    tokenizer, model = _load(base, device)
    train = _encode(tokenizer, data.train, opts.max_tokens)
    heldout = _encode(tokenizer, data.heldout, opts.max_tokens)
    if not train or not heldout:
        raise FinetuneError(f"every {'training' if not train else 'held-out'} example is over "
                            f"--max-tokens {opts.max_tokens}")
    base_params = sum(p.numel() for p in model.parameters())
    rank = opts.rank or default_rank(model, opts.target_modules, base_params)
    alpha = opts.alpha if opts.alpha is not None else 2 * rank
    model = _with_lora(model, opts.target_modules, rank, alpha)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"LoRA rank {rank} on {', '.join(opts.target_modules)}: {trainable:,} parameters "
        f"trained ({100 * trainable / base_params:.3f}% of {base_params:,})")

    work = out.parent / f".{out.name}.partial"
    fingerprint = _fingerprint(opts, rank, alpha, data)
    steps_per_epoch = math.ceil(len(train) / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=opts.lr,
                                  weight_decay=0.0)
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    state = _resume(work, fingerprint, model, optimizer, schedule, log)
    if state is None:
        _start_work(work, data)
        loss_before = evaluate(model, heldout, opts.batch_size, device)
        state = {"fingerprint": fingerprint, "step": 0, "loss_before": loss_before}
        resumed = None
    else:
        resumed = int(state["step"])
        log(f"resuming from step {resumed} of {total} ({work})")
    model.train()
    step = int(state["step"])
    for epoch in range(step // steps_per_epoch, opts.epochs):
        batches = _batches(train, opts.batch_size, random.Random(f"{opts.seed}:{epoch}"))
        for batch in batches[step - epoch * steps_per_epoch:]:
            summed, tokens = _loss(model, batch, device)
            optimizer.zero_grad(set_to_none=True)
            (summed / tokens).backward()
            optimizer.step()
            schedule.step()
            step += 1
            if on_step is not None:
                on_step(step, total, float(summed.detach()) / tokens)
            if step % opts.save_every == 0 or step % steps_per_epoch == 0:
                _checkpoint(work, {**state, "step": step}, model, optimizer, schedule)
    loss_after = evaluate(model, heldout, opts.batch_size, device)
    report = FinetuneReport(str(out), len(train), len(heldout), len(data.train_files),
                            len(data.heldout_files), rank, alpha, trainable, base_params, total,
                            float(state["loss_before"]), loss_after, resumed, device,
                            time.monotonic() - started)
    adapter = work / "adapter"
    model.save_pretrained(str(adapter))
    (adapter / "training.json").write_text(json.dumps(asdict(report), indent=2) + "\n",
                                           encoding="utf-8")
    check_target(out, "an adapter")  # still new or empty after the training
    publish(adapter, out, "an adapter")
    shutil.rmtree(work, ignore_errors=True)
    return report


def _check_options(opts: FinetuneOptions) -> None:
    bad = [f"--{name} must be positive" for name, value in (
        ("rank", opts.rank if opts.rank is not None else 1), ("epochs", opts.epochs),
        ("lr", opts.lr), ("batch-size", opts.batch_size), ("max-tokens", opts.max_tokens),
        ("context-chars", opts.context_chars),
        ("save-every", opts.save_every)) if value <= 0]
    if not 0 < opts.heldout_share < 1:
        bad.append("--heldout-share must be between 0 and 1")
    if not opts.target_modules:
        bad.append("--target-modules names no module")
    if bad:
        raise FinetuneError("; ".join(bad))


def default_rank(model: Any, targets: list[str], base_params: int) -> int:
    """The power of two (1..64) whose LoRA trains closest to TRAINED_SHARE of the base."""
    import torch

    per_rank = sum(m.in_features + m.out_features for name, m in model.named_modules()
                   if name.rsplit(".", 1)[-1] in targets and isinstance(m, torch.nn.Linear))
    if per_rank == 0:
        raise FinetuneError(f"the base model has no Linear module named {', '.join(targets)}")
    ideal = TRAINED_SHARE * base_params / per_rank
    return int(min(64, max(1, 2 ** round(math.log2(max(ideal, 1.0))))))


def _load(base: Path, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.eos_token_id is None:
        raise FinetuneError(f"{base}: the tokenizer has no end-of-sequence token")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32  # CPU: float32 trains exactly
    model: Any = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype)
    return tokenizer, model.to(device)


def _with_lora(model: Any, targets: list[str], rank: int, alpha: int) -> Any:
    from peft import LoraConfig, get_peft_model

    try:
        return get_peft_model(model, LoraConfig(
            r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.05,
            bias="none", task_type="CAUSAL_LM"))
    except ValueError as exc:  # a target module the model does not have
        raise FinetuneError(f"--target-modules: {exc}".splitlines()[0]) from None


Encoded = tuple[list[int], int]  # (prompt + middle + EOS ids, where the middle starts)


def _encode(tokenizer: Any, examples: list[FimExample], max_tokens: int) -> list[Encoded]:
    out = []
    for example in examples:
        prompt = tokenizer(example.prompt)["input_ids"]  # with BOS, as vLLM tokenizes it
        middle = tokenizer(example.middle, add_special_tokens=False)["input_ids"]
        ids = [*prompt, *middle, tokenizer.eos_token_id]
        if len(ids) <= max_tokens:
            out.append((ids, len(prompt)))
    return out


def _batches(examples: list[Encoded], size: int, rng: random.Random) -> list[list[Encoded]]:
    order = list(examples)
    rng.shuffle(order)
    return [order[i:i + size] for i in range(0, len(order), size)]


def _loss(model: Any, batch: list[Encoded], device: str) -> tuple[Any, int]:
    """(summed cross-entropy over the middles' tokens, how many tokens) of one batch."""
    import torch
    import torch.nn.functional as F

    width = max(len(ids) for ids, _ in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (tokens, start) in enumerate(batch):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        labels[row, start:len(tokens)] = torch.tensor(tokens[start:])
        mask[row, :len(tokens)] = 1
    ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                            ignore_index=-100, reduction="sum")
    return total, int((target != -100).sum())


def evaluate(model: Any, examples: list[Encoded], batch_size: int, device: str) -> float:
    """Mean cross-entropy per middle token over `examples`."""
    import torch

    was_training = model.training
    model.eval()
    loss_sum, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            total, count = _loss(model, examples[i:i + batch_size], device)
            loss_sum += float(total)
            tokens += count
    model.train(was_training)
    return loss_sum / max(1, tokens)


def _fingerprint(opts: FinetuneOptions, rank: int, alpha: int, data: FimDataset) -> str:
    """What a checkpoint must have been made with to be resumed."""
    digest = hashlib.sha256()
    same = msgspec.structs.replace(opts, save_every=1, out="", rank=rank, alpha=alpha)
    digest.update(msgspec.json.encode(same))
    digest.update(str(Path(opts.base).resolve()).encode())
    for example in (*data.train, *data.heldout):
        digest.update(msgspec.json.encode(asdict(example)))
    return digest.hexdigest()


def _start_work(work: Path, data: FimDataset) -> None:
    if work.exists():
        shutil.rmtree(work)
    dataset = work / "adapter" / "dataset"
    try:
        dataset.mkdir(parents=True)
        write_jsonl(dataset / "train.jsonl", data.train)
        write_jsonl(dataset / "heldout.jsonl", data.heldout)
    except OSError as exc:
        raise CheckpointTargetError(f"cannot write in {work.parent}: {exc.strerror or exc}"
                                    ) from exc


def _checkpoint(work: Path, state: dict[str, Any], model: Any, optimizer: Any,
                schedule: Any) -> None:
    """Write the resumable state, then swap it in with one rename."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    fresh = work / "checkpoint.new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(
        model).items()}
    save_file(weights, str(fresh / "adapter.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "rng": torch.get_rng_state()}, fresh / "optimizer.pt")
    (fresh / STATE).write_text(json.dumps(state), encoding="utf-8")
    old = work / "checkpoint"
    if old.exists():
        os.replace(old, work / "checkpoint.old")
    os.replace(fresh, old)
    shutil.rmtree(work / "checkpoint.old", ignore_errors=True)


def _resume(work: Path, fingerprint: str, model: Any, optimizer: Any, schedule: Any,
            log: Callable[[str], None]) -> dict[str, Any] | None:
    """Load the work folder's checkpoint into the model, or None when there is none to use."""
    ckpt = work / "checkpoint"
    try:
        state = json.loads((ckpt / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("fingerprint") != fingerprint:
        log(f"{work}: its checkpoint was made with other options or data; starting over")
        return None
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(ckpt / "adapter.safetensors")))
    saved = torch.load(ckpt / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    torch.set_rng_state(saved["rng"])
    return dict(state)
