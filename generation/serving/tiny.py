"""Write a tiny DeepSeek-Coder-architecture checkpoint for tests: Llama layers, random weights.

The checkpoint exercises mechanics only (serving, streaming, cancellation, tokenization, FIM
prompts); its random weights produce meaningless text. Its tokenizer is a byte-level BPE trained
at make time on a fixed list of the running interpreter's standard library files, with
DeepSeek-Coder's special tokens spelled exactly. Same seed and same interpreter: byte-identical
files.
"""

from __future__ import annotations

import json
import os
import sysconfig
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from generation.serving.serve import require_modules
from generation.serving.staging import CheckpointTargetError as CheckpointTargetError  # re-export
from generation.serving.staging import staged

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
FIM_BEGIN = "<｜fim▁begin｜>"
FIM_HOLE = "<｜fim▁hole｜>"
FIM_END = "<｜fim▁end｜>"
# DeepSeek-Coder's order: bos, eos, hole, begin, end (ids 0..4 here).
SPECIAL_TOKENS = (BOS, EOS, FIM_HOLE, FIM_BEGIN, FIM_END)

VOCAB_SIZE = 4096
HIDDEN = 256
INTERMEDIATE = 512
LAYERS = 2
HEADS = 4
KV_HEADS = 2  # fewer KV heads than query heads: grouped-query attention is exercised
HEAD_DIM = 64  # a head size that vLLM's CPU attention supports
MAX_POSITIONS = 32768
DTYPE = "bfloat16"

# Fixed training text: standard library modules present in every CPython >= 3.11.
TRAINING_FILES = (
    "abc.py", "argparse.py", "ast.py", "bisect.py", "calendar.py", "collections/__init__.py",
    "contextlib.py", "csv.py", "dataclasses.py", "datetime.py", "difflib.py", "enum.py",
    "fractions.py", "functools.py", "heapq.py", "inspect.py", "json/decoder.py",
    "json/encoder.py", "logging/__init__.py", "operator.py", "pprint.py", "queue.py",
    "random.py", "shlex.py", "statistics.py", "string.py", "textwrap.py", "threading.py",
    "typing.py",
)

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}### Instruction:\n{{ message['content'] }}\n"
    "{% else %}### Response:\n{{ message['content'] }}\n{{ eos_token }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}### Response:\n{% endif %}"
)


def make_tiny(directory: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the tiny checkpoint (config, tokenizer, safetensors weights) into `directory`.

    `directory` must be new or empty. Everything is written into a temporary folder beside it,
    then renamed into place, so an interrupted run leaves no half-written checkpoint. Raises
    MissingDependency (torch, safetensors) or CheckpointTargetError before writing anything.
    """
    require_modules(["torch", "safetensors"], "model make-tiny")
    with staged(directory) as scratch:
        _write_checkpoint(scratch, seed)
    return Path(directory)


def _write_checkpoint(out: Path, seed: int) -> None:
    tokenizer = train_tokenizer()
    tokenizer.save(str(out / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    _write_json(out / "tokenizer_config.json", _tokenizer_config())
    _write_json(out / "config.json", _model_config(vocab))
    _write_json(out / "generation_config.json", {
        "_from_model_config": True, "bos_token_id": 0, "eos_token_id": 1,
    })
    _write_weights(out / "model.safetensors", vocab, seed)
    (out / "README.md").write_text(
        "Tiny random-weight DeepSeek-Coder-architecture checkpoint written by "
        "`stagecoder model make-tiny`.\nIt tests mechanics only; its output is meaningless.\n",
        encoding="utf-8",
    )


def load_tokenizer(directory: str | os.PathLike[str]) -> Tokenizer:
    """The local `tokenizers.Tokenizer` of a checkpoint directory (its tokenizer.json)."""
    return Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))


def training_files() -> list[Path]:
    """The standard library files the tokenizer is trained on, in a fixed order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [stdlib / name for name in TRAINING_FILES if (stdlib / name).is_file()]


def train_tokenizer() -> Tokenizer:
    """Train the byte-level BPE tokenizer deterministically on `training_files()`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [path.read_text(encoding="utf-8") for path in training_files()]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
        ),
    ])
    return tokenizer


def _tokenizer_config() -> dict[str, object]:
    added = {
        str(i): {"content": tok, "lstrip": False, "normalized": False, "rstrip": False,
                 "single_word": False, "special": True}
        for i, tok in enumerate(SPECIAL_TOKENS)
    }
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_POSITIONS,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def _model_config(vocab: int) -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": MAX_POSITIONS,
        "mlp_bias": False,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-6,
        "rope_scaling": None,
        "rope_theta": 100000.0,
        "tie_word_embeddings": False,
        "torch_dtype": DTYPE,
        "use_cache": True,
        "vocab_size": vocab,
    }


def _weight_shapes(vocab: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (vocab, HIDDEN),
        "model.norm.weight": (HIDDEN,),
        "lm_head.weight": (vocab, HIDDEN),
    }
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes |= {
            p + "self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
            p + "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
            p + "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
            p + "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
            p + "input_layernorm.weight": (HIDDEN,),
            p + "post_attention_layernorm.weight": (HIDDEN,),
        }
    return shapes


def _write_weights(path: Path, vocab: int, seed: int) -> None:
    import torch  # heavy: only when weights are written
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    dtype = getattr(torch, DTYPE)
    tensors = {}
    for name, shape in sorted(_weight_shapes(vocab).items()):
        if name.endswith("norm.weight"):
            tensors[name] = torch.ones(shape, dtype=dtype)
        else:
            tensors[name] = (torch.randn(shape, generator=generator) * 0.02).to(dtype)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _write_json(path: Path, data: dict[str, object]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
