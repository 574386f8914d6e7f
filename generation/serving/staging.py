"""Write an output folder (a checkpoint, an adapter) all at once: build it beside, then rename.

Every command that writes a model folder goes through here, so an interrupted or failed run
never leaves a half-written folder where the user asked for one: the files are written into a
hidden scratch folder in the same parent directory and renamed into place at the end (a rename
within one file system is atomic). The target must be new or an empty directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class CheckpointTargetError(Exception):
    """The output cannot be written where it was asked for (one line, for the user)."""


def check_target(out: Path, what: str = "a checkpoint") -> None:
    """Raise CheckpointTargetError unless `out` is new or an empty directory in a writable place."""
    if out.is_dir():
        if next(out.iterdir(), None) is not None:
            raise CheckpointTargetError(f"{out} is not empty: give a new or empty directory")
    elif out.exists() or out.is_symlink():
        raise CheckpointTargetError(f"{out} exists and is not a directory")
    else:
        existing = next(p for p in out.parents if p.exists())  # "." and "/" always do
        if not existing.is_dir():
            raise CheckpointTargetError(f"cannot write {what} in {out}: "
                                        f"{existing} is not a directory")


def publish(scratch: Path, out: Path, what: str = "a checkpoint") -> None:
    """Rename a finished scratch folder to `out` (which must still be absent or empty)."""
    try:
        # mkdtemp and some writers make files private; an output folder is ordinary files.
        for folder, _, files in os.walk(scratch):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
        scratch.rename(out)  # replaces an empty directory, refuses a full one
    except OSError as exc:  # a full disk, or a directory that filled up meanwhile
        raise CheckpointTargetError(f"cannot write {what} in {out}: "
                                    f"{exc.strerror or exc}") from exc


@contextmanager
def staged(out: str | os.PathLike[str], what: str = "a checkpoint") -> Iterator[Path]:
    """A scratch folder beside `out`; renamed to `out` when the block ends without an error.

    The target is checked before anything is created; on an error (or Ctrl-C) the scratch
    folder is removed and `out` is left as it was.
    """
    target = Path(out)
    check_target(target, what)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                        dir=target.parent))
    except OSError as exc:
        raise CheckpointTargetError(f"cannot write {what} in {target}: "
                                    f"{exc.strerror or exc}") from exc
    try:
        try:
            yield scratch
        except OSError as exc:
            raise CheckpointTargetError(f"cannot write {what} in {target}: "
                                        f"{exc.strerror or exc}") from exc
        publish(scratch, target, what)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
