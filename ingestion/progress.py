"""Progress lines for long extracts and loads: rows, MB, rows/s and elapsed seconds.

Time-based and checked per batch (one ``time.monotonic()`` call each), no thread: a
long extract logs ``extract nps: 1,200,000 rows, 48.1 MB, 240,000 rows/s, 5.0 s``
every few seconds on the caller's logger (``ingestion.extract``, ``ingestion.load``),
so the lines show in the CLI's stderr and in the Airflow task log. MB are the Arrow
batches' in-memory bytes. The interval is ``PIPELINE_PROGRESS_SECONDS`` (default 5;
0 logs every batch).
"""

from __future__ import annotations

import logging
import math
import os
import time

from ingestion.errors import ConfigError

DEFAULT_INTERVAL_S = 5.0
INTERVAL_VARIABLE = "PIPELINE_PROGRESS_SECONDS"


def interval_from_env() -> float:
    """Seconds between progress lines, from ``PIPELINE_PROGRESS_SECONDS`` (default 5)."""
    text = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(
            f"{INTERVAL_VARIABLE}={text!r} must be a number of seconds >= 0 "
            f"(default {DEFAULT_INTERVAL_S:g}; 0 logs every batch)"
        )
    return seconds


class Progress:
    """Counts rows and bytes; logs ``<label>: rows, MB, rows/s, elapsed`` every ``interval`` s."""

    def __init__(
        self,
        logger: logging.Logger,
        label: str,
        *,
        interval: float | None = None,
        total_rows: int | None = None,
    ) -> None:
        self.logger = logger
        self.label = label
        self.interval = interval_from_env() if interval is None else interval
        self.total_rows = total_rows
        self.rows = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._next = self.started + self.interval

    def add(self, rows: int, nbytes: int) -> None:
        """Count one batch; log a progress line when the interval has passed."""
        self.rows += rows
        self.bytes += nbytes
        now = time.monotonic()
        if now >= self._next:
            self.report(now)
            self._next = now + self.interval

    def line(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self.started
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        rows = f"{self.rows:,} rows"
        if self.total_rows:
            rows = f"{self.rows:,} of {self.total_rows:,} rows ({100 * self.rows / self.total_rows:.0f}%)"
        return f"{self.label}: {rows}, {self.bytes / 1e6:.1f} MB, {rate:,.0f} rows/s, {elapsed:.1f} s"

    def report(self, now: float | None = None) -> None:
        self.logger.info("%s", self.line(now))
