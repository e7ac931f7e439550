"""Stage retention: remove extract attempts older than a limit, never one still needed.

An attempt is ``<stage>/<table>/<interval>/<attempt id>/`` (Parquet parts and
``manifest.json``); its age comes from the UTC timestamp that starts its id
(``20261030T010203Z-1a2b3c4d``, see ``ingestion.batch.new_batch_id``), not from file
times. An attempt older than the limit is removed unless

* it has a manifest and is not loaded yet (no ``succeeded`` row with its batch id in
  ``raw_data._load_audit``): the load may still come, or
* it is the newest loaded attempt of its table and interval: what the raw table holds
  can be traced to, and reloaded from, its files.

An old attempt without a manifest crashed before finishing: nothing can load it, so it
goes. A folder whose name is not an attempt id is left alone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow.fs as pafs

from ingestion.config import LOOKBACK, LOOKBACK_UNITS
from ingestion.environments import Environment
from ingestion.errors import ConfigError
from ingestion.stage import Stage, open_stage
from ingestion.warehouse import Warehouse, open_warehouse
from ingestion.warehouse import sql as q

RAW_SCHEMA = "raw_data"
MANIFEST = "manifest.json"
ATTEMPT_ID = re.compile(r"^(\d{8}T\d{6}Z)-")

REMOVE, KEEP = "remove", "keep"


def parse_age(text: str) -> timedelta:
    """``30m``, ``2h``, ``7d`` (the units of a table's ``lookback``) as a timedelta."""
    match = LOOKBACK.match(text.strip())
    if not match:
        raise ConfigError(f"--older-than {text!r} is not a duration: use e.g. 30m, 2h or 7d")
    return timedelta(**{LOOKBACK_UNITS[match.group(2)]: int(match.group(1))})


@dataclass
class Attempt:
    """One attempt folder of the stage and what it holds."""

    table: str
    interval: str
    attempt_id: str
    path: str  # filesystem path of the folder
    files: int = 0
    bytes: int = 0
    has_manifest: bool = False

    @property
    def created_at(self) -> datetime | None:
        match = ATTEMPT_ID.match(self.attempt_id)
        if not match:
            return None
        return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    @property
    def name(self) -> str:
        return f"{self.table}/{self.interval}/{self.attempt_id}"


@dataclass(frozen=True)
class Decision:
    attempt: Attempt
    action: str  # REMOVE or KEEP
    reason: str


@dataclass
class Report:
    decisions: list[Decision] = field(default_factory=list)
    dry_run: bool = False

    def chosen(self, action: str) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = [
            f"{verb if d.action == REMOVE else 'kept'} {d.attempt.name} "
            f"({d.attempt.files} files, {d.attempt.bytes:,} bytes): {d.reason}"
            for d in self.decisions
        ]
        removed = self.chosen(REMOVE)
        out.append(
            f"{verb} {len(removed)} attempts, {sum(d.attempt.files for d in removed)} files, "
            f"{sum(d.attempt.bytes for d in removed):,} bytes; kept {len(self.chosen(KEEP))} attempts"
        )
        return out


def list_attempts(stage: Stage) -> list[Attempt]:
    """Every ``<table>/<interval>/<attempt>`` folder of the stage, with its files' count and size."""
    selector = pafs.FileSelector(stage.root, recursive=True, allow_not_found=True)
    try:
        infos = stage.filesystem.get_file_info(selector)
    except OSError as exc:
        raise stage.error(exc, f"stage {stage.uri} cannot be listed") from None
    attempts: dict[tuple[str, str, str], Attempt] = {}
    for info in infos:
        parts = info.path[len(stage.root) :].strip("/").split("/")
        if len(parts) < 3 or (len(parts) == 3 and info.type != pafs.FileType.Directory):
            continue
        key = (parts[0], parts[1], parts[2])
        attempt = attempts.get(key)
        if attempt is None:
            attempt = attempts[key] = Attempt(*key, path="/".join([stage.root, *key]))
        if info.type == pafs.FileType.File:
            attempt.files += 1
            attempt.bytes += info.size or 0
            attempt.has_manifest |= len(parts) == 4 and parts[3] == MANIFEST
    return sorted(attempts.values(), key=lambda a: (a.table, a.interval, a.attempt_id))


def loaded_batches(warehouse: Warehouse, raw_schema: str = RAW_SCHEMA) -> set[str]:
    """Batch ids with a ``succeeded`` row in ``_load_audit``; none when there is no audit table."""
    db = warehouse.connect()
    try:
        warehouse.begin(db)  # read-only: rolled back below
        cursor = warehouse.cursor(db)
        if not warehouse.table_columns(cursor, raw_schema, q.AUDIT_TABLE):
            return set()
        rows = warehouse.fetch_all(
            cursor,
            f"select distinct batch_id from {q.audit_table(raw_schema)} where status = %(status)s",
            {"status": "succeeded"},
        )
        return {row[0] for row in rows if row[0]}
    finally:
        db.rollback()
        db.close()


def plan(attempts: list[Attempt], loaded: set[str], cutoff: datetime) -> list[Decision]:
    """What to do with each attempt, and why (see the module docstring)."""
    newest: dict[tuple[str, str], str] = {}
    by_interval: dict[tuple[str, str], list[str]] = defaultdict(list)
    for attempt in attempts:
        if attempt.attempt_id in loaded:
            by_interval[(attempt.table, attempt.interval)].append(attempt.attempt_id)
    for key, ids in by_interval.items():
        newest[key] = max(ids)
    decisions = []
    for attempt in attempts:
        created = attempt.created_at
        latest = newest.get((attempt.table, attempt.interval))
        if created is None:
            decision = KEEP, "the folder name is not an attempt id (YYYYmmddTHHMMSSZ-xxxxxxxx)"
        elif created >= cutoff:
            decision = KEEP, f"newer than the limit (made {created:%Y-%m-%d %H:%M:%S}Z)"
        elif attempt.attempt_id == latest:
            decision = KEEP, "the newest loaded attempt of its table and interval"
        elif attempt.attempt_id in loaded:
            decision = REMOVE, f"loaded, superseded by {latest}"
        elif not attempt.has_manifest:
            decision = REMOVE, "no manifest (a crashed attempt)"
        else:
            decision = KEEP, "not loaded yet (no succeeded load in _load_audit)"
        decisions.append(Decision(attempt, *decision))
    return decisions


def clean(
    stage: Stage,
    warehouse: Warehouse,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Report:
    """Remove the attempts ``plan`` picks (none with ``dry_run``); say what was done."""
    cutoff = (now or datetime.now(UTC)) - older_than
    report = Report(plan(list_attempts(stage), loaded_batches(warehouse), cutoff), dry_run)
    if not dry_run:
        for decision in report.chosen(REMOVE):
            try:
                stage.filesystem.delete_dir(decision.attempt.path)
            except OSError as exc:
                raise stage.error(exc, f"attempt {decision.attempt.name} cannot be removed") from None
    return report


def clean_environment(environment: Environment, older_than: timedelta, *, dry_run: bool = False) -> Report:
    stage = open_stage(environment.stage_uri, environment.aws)
    return clean(stage, open_warehouse(environment.warehouse), older_than, dry_run=dry_run)
