"""The prepared GPU check: kernel vs oracle, decode timing, selection cost, KV bytes, fidelity.

Run through `benchmarks/gpu/run.sh OUTDIR` (see it for the time budget). Writes every figure to
OUTDIR/sparse_gpu_check.json after each section (a run cut short keeps what it measured) and
prints the file at the end. `--smoke` runs the same code on tiny shapes on CPU, the Triton kernel
under the interpreter; it exits non-zero when a kernel case misses the oracle or a forbidden
module was imported. Needs only torch, triton, numpy, the standard library and
`generation.sparse_attention` (no vLLM, no network).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from .common import Run, describe, fence_imports, imported_forbidden

OUT_NAME = "sparse_gpu_check.json"
FIDELITY_RESERVE_S = 230.0  # training (180 s) + capture and measurement, kept for section 5


def _environment(device: str) -> dict[str, Any]:
    import torch
    import triton

    info: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__,
                            "triton": triton.__version__, "device": device,
                            "platform": platform.platform()}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30)
    return info


def main(argv: list[str] | None = None) -> int:
    """Run every section within the budget; write and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU (interpreter)")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="wall-clock budget for all sections (default 450)")
    args = parser.parse_args(argv)
    early = fence_imports()
    import torch

    from . import decode_timing, fidelity, kernel_check

    if args.smoke and os.environ.get("TRITON_INTERPRET") != "1":
        print("--smoke needs TRITON_INTERPRET=1 (run.sh sets it)", file=sys.stderr)
        return 2
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device (torch {torch.__version__}); use --smoke on CPU", file=sys.stderr)
        return 2
    run = Run(smoke=args.smoke, device=device, budget_s=args.budget_s)
    args.outdir.mkdir(parents=True, exist_ok=True)
    out = args.outdir / OUT_NAME
    figures: dict[str, Any] = {
        # timezone.utc, not datetime.UTC: the GPU host's Python may be older than 3.11.
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(  # noqa: UP017
            timespec="seconds"),
        "mode": "smoke" if args.smoke else "full", "environment": _environment(device),
    }

    def save(section: str, value: Any) -> None:
        figures[section] = value
        figures["elapsed_s"] = round(run.elapsed(), 1)
        out.write_text(json.dumps(figures, indent=1, default=str), encoding="utf-8")

    sections = (
        ("kernel_vs_oracle", lambda: kernel_check.run(run)),
        ("decode", lambda: decode_timing.run(run, reserve_s=0 if args.smoke
                                             else FIDELITY_RESERVE_S)),
        ("fidelity", lambda: fidelity.run("smoke" if args.smoke else "gpu", device,
                                          seconds=None if args.smoke
                                          else max(30.0, min(180.0, run.left() - 50.0)))),
    )
    for name, section in sections:
        try:
            save(name, section())
        except Exception as exc:  # a failed section is a figure too; the others still run
            save(name, {"error": describe(exc)})
        print(f"[{run.elapsed():6.1f} s] {name} done", file=sys.stderr)
    late = imported_forbidden()
    save("imports", {"forbidden_imported": sorted(set(early) | set(late)),
                     "ok": not early and not late})
    print(out.read_text(encoding="utf-8"))
    kernels_ok = bool(figures["kernel_vs_oracle"].get("all_ok"))
    return 0 if kernels_ok and figures["imports"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
