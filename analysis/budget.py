"""The time budget of one file's analysis: a deadline that the query loop and the rules check.

`analyze` gives every file `review.timeBudget` seconds (default 2). Past the deadline the next
check raises `OutOfTime`; `analyze` keeps the findings made so far and says the analysis was cut
short. Checks are cheap (the clock is read every `CHECK_EVERY` calls), so rules call `check()`
once per match and walks once per node. A caller that no longer wants the answer (a cancelled
LSP request, a newer document version) calls `stop()` from another thread.

The query itself cannot be stopped from inside: py-tree-sitter 0.26's `progress_callback` keeps
a pointer to options that go out of scope, and calling it crashes the process. So `analyze` runs
the query in byte-range chunks and checks the budget between them.
"""

from __future__ import annotations

import math
import time

from analysis.documents.document import AnalysisError

DEFAULT_SECONDS = 2.0  # the `review.timeBudget` setting's default
CHECK_EVERY = 32


class OutOfTime(AnalysisError):
    """The analysis of a file ran past its time budget (or was stopped)."""


class Budget:
    """A deadline for one analysis; `seconds` <= 0 or None means no deadline."""

    __slots__ = ("_countdown", "deadline", "seconds", "stopped")

    def __init__(self, seconds: float | None = DEFAULT_SECONDS) -> None:
        self.seconds = seconds if seconds is not None and seconds > 0 else math.inf
        self.deadline = time.monotonic() + self.seconds
        self.stopped = False
        self._countdown = CHECK_EVERY

    def expired(self) -> bool:
        """True once the deadline has passed or `stop()` was called (reads the clock)."""
        return self.stopped or time.monotonic() > self.deadline

    def check(self) -> None:
        """Raise OutOfTime when the budget is spent (the clock is read every few calls)."""
        self._countdown -= 1
        if self._countdown > 0 and not self.stopped:
            return
        self._countdown = CHECK_EVERY
        if self.expired():
            raise OutOfTime(self.reason())

    def stop(self) -> None:
        """Make the next check fail: the answer is no longer wanted (thread-safe)."""
        self.stopped = True

    def reason(self) -> str:
        """Why the analysis stopped, as a sentence fragment for the user."""
        if self.stopped:
            return "analysis stopped: the result was no longer needed"
        return (f"analysis stopped at its time budget of {self.seconds:g} s "
                "(review.timeBudget); findings after that point are missing")
