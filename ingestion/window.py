"""The data interval a task extracts and loads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingestion.errors import ConfigError


def as_utc_naive(value: datetime) -> datetime:
    """Timestamps are UTC throughout; drop the zone after converting to UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return as_utc_naive(value)


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc_naive(self.start))
        object.__setattr__(self, "end", as_utc_naive(self.end))
        if self.end <= self.start:
            raise ConfigError(
                f"data interval {self.start.isoformat()} .. {self.end.isoformat()} is empty; "
                "the DAG needs a timetable with real intervals (e.g. CronDataIntervalTimetable)"
            )

    def extract_start(self, lookback: timedelta) -> datetime:
        return self.start - lookback

    @property
    def label(self) -> str:
        """Path-safe name of the interval, e.g. 20261030T000000Z_20261031T000000Z."""
        return f"{self.start:%Y%m%dT%H%M%SZ}_{self.end:%Y%m%dT%H%M%SZ}"

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        return cls(parse_timestamp(start), parse_timestamp(end))
