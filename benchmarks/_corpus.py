"""Real source text for benchmarks: the running interpreter's standard library."""

from __future__ import annotations

import sysconfig
from pathlib import Path


def stdlib_dir() -> Path:
    """The directory of the Python standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def python_file(lines: int = 5000) -> str:
    """About `lines` lines of real Python, whole stdlib modules cut at a top-level statement."""
    names = ["typing.py", "argparse.py", "inspect.py", "dataclasses.py", "pathlib.py"]
    out: list[str] = []
    for name in names:
        out.extend(stdlib_dir().joinpath(name).read_text(encoding="utf-8").splitlines())
        if len(out) >= lines:
            break
    cut = lines
    while cut < len(out) and (out[cut][:1].isspace() or out[cut] == "" or out[cut][:1] in ")]}"):
        cut += 1
    return "\n".join(out[:cut]) + "\n"
