"""What the GPU check's sections share: the run's mode and clock, the timer, and the import fence.

The check may import torch, triton, numpy, the standard library and `generation.sparse_attention`
(its selection, reference and kernels modules) and nothing else: `fence_imports()` makes any
other project package, vLLM or transformers fail to import, so the script runs as it will on a
GPU host that has none of them.
"""

from __future__ import annotations

import importlib.abc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Top-level packages the check must never import, and the sparse_attention modules that need vLLM.
FORBIDDEN_PACKAGES = ("vllm", "transformers", "peft", "analysis", "lsp_server", "tests")
FORBIDDEN_MODULES = ("generation.sparse_attention.backend", "generation.sparse_attention.plugin",
                     "generation.sparse_attention.kernels.cpu_stock")


def forbidden(name: str) -> bool:
    """Whether the check may not import the module called `name`."""
    if name.split(".")[0] in FORBIDDEN_PACKAGES:
        return True
    if name.startswith("generation.") and not name.startswith("generation.sparse_attention"):
        return True
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


class _Fence(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if forbidden(fullname):
            raise ModuleNotFoundError(f"the GPU check must not import {fullname}", name=fullname)
        return None


def fence_imports() -> list[str]:
    """Refuse forbidden imports from now on; returns those already imported (should be none)."""
    if not any(isinstance(f, _Fence) for f in sys.meta_path):
        sys.meta_path.insert(0, _Fence())
    return imported_forbidden()


def imported_forbidden() -> list[str]:
    """Forbidden modules present in this process."""
    return sorted(m for m in sys.modules if forbidden(m))


@dataclass
class Run:
    """The run's mode, device and time budget."""

    smoke: bool
    device: str
    budget_s: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        """Seconds left of the budget."""
        return self.budget_s - (time.monotonic() - self.started)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started


def time_ms(fn: Callable[[], Any], device: str, smoke: bool) -> float:
    """Median milliseconds of one call: triton's do_bench (CUDA events, L2 flushed) on CUDA."""
    if device == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=10, rep=40, return_mode="median"))
    fn()  # warm-up
    runs = []
    for _ in range(1 if smoke else 5):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(runs)


def describe(exc: BaseException) -> str:
    """One line for a failure recorded in the figures."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
