"""Progress of long steps, one line each on stderr: a step silent for minutes looks hung,
and stdout stays the stages' results."""

from __future__ import annotations

import sys
import time


class Progress:
    """``evaluate: cross-validation 3/10 (41 s)``: which step of how many, time so far."""

    def __init__(self, stage: str, what: str, total: int | None = None):
        self.stage, self.what, self.total = stage, what, total
        self.done, self.started = 0, time.perf_counter()

    def step(self, note: str = "") -> None:
        self.done += 1
        of = f"/{self.total}" if self.total else ""
        seconds = time.perf_counter() - self.started
        detail = f": {note}" if note else ""
        print(
            f"{self.stage}: {self.what} {self.done}{of}{detail} ({seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
