"""Phase timings that extract and load return with their results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings:
    """Seconds spent per named phase; ``other_s`` is what the phases do not cover."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def as_dict(self, *, overlapping: tuple[str, ...] = ()) -> dict[str, float]:
        """The phases in seconds; ``overlapping`` phases ran in another thread and are
        not subtracted from the wall time when computing ``other_s``."""
        wall = time.perf_counter() - self.started
        covered = sum(v for k, v in self.phases.items() if k not in overlapping)
        return {**{k: round(v, 3) for k, v in self.phases.items()}, "other_s": round(wall - covered, 3)}
