"""Per-process call counters of the backend, written to files when `STAGECODER_SPARSE_STATS` is set.

vLLM runs the model in worker processes that may be killed rather than exit, so counters are
flushed by a daemon thread at most `FLUSH_SECONDS` after they change, each process to its own
`<dir>/sparse-stats-<pid>.json` (written atomically). Without the variable, counting is free of
file I/O and the thread never starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import Counter
from pathlib import Path

from .config import STATS_ENV_VAR

FLUSH_SECONDS = 0.2

_counts: Counter[str] = Counter()
_lock = threading.Lock()
_dirty = threading.Event()
_flusher_pid = 0  # the process whose flusher thread runs (a fork child must start its own)


def record(**amounts: int) -> None:
    """Add to named counters (e.g. `record(decode_sparse=1, blocks_read=12)`)."""
    with _lock:
        _counts.update(amounts)
    if os.environ.get(STATS_ENV_VAR):
        _ensure_flusher()
        _dirty.set()


def snapshot() -> dict[str, int]:
    """A copy of this process's counters."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Zero the counters (tests)."""
    with _lock:
        _counts.clear()


def flush() -> Path | None:
    """Write this process's counters now; returns the file, or None when stats are off."""
    directory = os.environ.get(STATS_ENV_VAR)
    if not directory:
        return None
    target = Path(directory) / f"sparse-stats-{os.getpid()}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(snapshot(), sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)
    return target


def read_all(directory: str | os.PathLike[str]) -> dict[str, int]:
    """Sum the counters of every process that wrote into `directory`."""
    total: Counter[str] = Counter()
    for path in Path(directory).glob("sparse-stats-*.json"):
        total.update(json.loads(path.read_text(encoding="utf-8")))
    return dict(total)


def _ensure_flusher() -> None:
    global _flusher_pid
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    threading.Thread(target=_flush_loop, name="sparse-stats", daemon=True).start()


def _flush_loop() -> None:
    while True:
        _dirty.wait()
        _dirty.clear()
        with contextlib.suppress(OSError):  # counters are a diagnostic; never disturb serving
            flush()
        threading.Event().wait(FLUSH_SECONDS)
