"""Demo OLTP data: deterministic, sized, and changing from day to day.

Three tables in the shape the pipeline replicates:

* ``nps`` (id, created_at, modified_at, score 0..10, deleted): new responses
  every day; later days also update the score of earlier responses and
  soft-delete some (``deleted = 1``), moving ``modified_at`` forward, so
  incremental replication has real updates to pick up;
* ``session_timestamp`` (sessionid, ts): append-only sessions;
* ``user_session_channel`` (userid, sessionid, channel).

The same seed and size always give the same rows. The DDL and the DML are
plain SQL that both SQLite (embedded) and MySQL accept; only the placeholder
differs.
"""

from __future__ import annotations

import hashlib
import logging
import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ingestion.connection import Connection

log = logging.getLogger(__name__)

CHANNELS = ("Google", "Facebook", "Instagram", "Naver", "Youtube", "Organic")
DEFAULT_START = date(2026, 10, 30)

DDL = (
    "CREATE TABLE nps (\n"
    "    id INT NOT NULL PRIMARY KEY,\n"
    "    created_at DATETIME NOT NULL,\n"
    "    modified_at DATETIME NOT NULL,\n"
    "    score TINYINT NOT NULL,\n"
    "    deleted TINYINT(1) NOT NULL DEFAULT 0\n"
    ")",
    "CREATE INDEX nps_modified_at ON nps (modified_at)",
    "CREATE TABLE session_timestamp (\n"
    "    sessionid VARCHAR(32) NOT NULL PRIMARY KEY,\n"
    "    ts DATETIME NOT NULL\n"
    ")",
    "CREATE INDEX session_timestamp_ts ON session_timestamp (ts)",
    "CREATE TABLE user_session_channel (\n"
    "    userid INT NOT NULL,\n"
    "    sessionid VARCHAR(32) NOT NULL PRIMARY KEY,\n"
    "    channel VARCHAR(32) NOT NULL\n"
    ")",
)
TABLES = ("nps", "session_timestamp", "user_session_channel")


@dataclass(frozen=True)
class DemoSpec:
    """``size`` sessions a day; a tenth of that many NPS responses a day."""

    seed: int = 42
    size: int = 1000
    start: date = DEFAULT_START

    @property
    def users(self) -> int:
        return max(10, self.size // 4)

    @property
    def responses_per_day(self) -> int:
        return max(1, self.size // 10)

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)


@dataclass
class DayChanges:
    nps_inserts: list[tuple] = field(default_factory=list)
    nps_updates: list[tuple] = field(default_factory=list)  # (score, deleted, modified_at, id)
    sessions: list[tuple] = field(default_factory=list)  # (sessionid, ts)
    channels: list[tuple] = field(default_factory=list)  # (userid, sessionid, channel)


def _moment(rng: random.Random, day: date) -> datetime:
    return datetime.combine(day, datetime.min.time()) + timedelta(seconds=rng.randrange(86_400))


def session_id(seed: int, day_index: int, number: int) -> str:
    return hashlib.md5(f"{seed}/{day_index}/{number}".encode()).hexdigest()


def day_changes(spec: DemoSpec, index: int) -> DayChanges:
    """Everything that happens on day ``index`` (0-based), independent of other days."""
    rng = random.Random(f"{spec.seed}/{index}")
    day = spec.day(index)
    changes = DayChanges()
    first_id = index * spec.responses_per_day + 1
    for number in range(spec.responses_per_day):
        created = _moment(rng, day)
        changes.nps_inserts.append((first_id + number, created, created, rng.randrange(11), 0))
    earlier = first_id - 1  # ids created on earlier days
    if earlier:
        touched: dict[int, tuple] = {}
        for _ in range(max(1, spec.responses_per_day // 5)):
            row_id = rng.randrange(1, earlier + 1)
            deleted = 1 if rng.random() < 0.25 else 0
            touched[row_id] = (rng.randrange(11), deleted, _moment(rng, day), row_id)
        changes.nps_updates = sorted(touched.values(), key=lambda row: row[2])
    for number in range(spec.size):
        sid = session_id(spec.seed, index, number)
        changes.sessions.append((sid, _moment(rng, day)))
        changes.channels.append((rng.randrange(1, spec.users + 1), sid, rng.choice(CHANNELS)))
    return changes


class OltpWriter:
    """Writes the demo tables through a DB-API connection of SQLite or MySQL."""

    def __init__(self, db: Any, dialect: str) -> None:
        self.db = db
        self.dialect = dialect
        self.mark = "?" if dialect == "sqlite" else "%s"

    def _value(self, value: Any) -> Any:
        if self.dialect == "sqlite" and isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value

    def _rows(self, rows: Iterable[tuple]) -> list[tuple]:
        return [tuple(self._value(v) for v in row) for row in rows]

    def recreate(self) -> None:
        cursor = self.db.cursor()
        for name in TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
        for statement in DDL:
            cursor.execute(statement)
        self.db.commit()

    def apply(self, changes: DayChanges) -> None:
        m = self.mark
        cursor = self.db.cursor()
        cursor.executemany(
            f"INSERT INTO nps (id, created_at, modified_at, score, deleted) VALUES ({m}, {m}, {m}, {m}, {m})",
            self._rows(changes.nps_inserts),
        )
        if changes.nps_updates:
            cursor.executemany(
                f"UPDATE nps SET score = {m}, deleted = {m}, modified_at = {m} WHERE id = {m}",
                self._rows(changes.nps_updates),
            )
        cursor.executemany(
            f"INSERT INTO session_timestamp (sessionid, ts) VALUES ({m}, {m})",
            self._rows(changes.sessions),
        )
        cursor.executemany(
            f"INSERT INTO user_session_channel (userid, sessionid, channel) VALUES ({m}, {m}, {m})",
            self._rows(changes.channels),
        )
        self.db.commit()


def connect_oltp(connection: Connection, create_database: bool = True) -> tuple[Any, str]:
    """A DB-API connection to the source database (SQLite file or MySQL)."""
    if connection.conn_type == "sqlite":
        path = connection.host or ""
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path), "sqlite"
    if connection.conn_type == "mysql":
        import MySQLdb

        from ingestion.sources.mysql import quote

        options = dict(
            host=connection.host or "127.0.0.1",
            port=connection.port or 3306,
            user=connection.login or "root",
            password=connection.password or "",
            charset="utf8mb4",
        )
        if create_database and connection.schema:
            server = MySQLdb.connect(**options)
            server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {quote(connection.schema)}")
            server.close()
        return MySQLdb.connect(database=connection.schema, **options), "mysql"
    raise ValueError(f"connection {connection.conn_id!r}: no demo writer for {connection.conn_type!r}")


def generate(
    connection: Connection, spec: DemoSpec, days: int, *, first_day: int = 0, recreate: bool = True
) -> dict[str, int]:
    """Write days ``first_day .. first_day + days - 1`` of demo data; return row counts."""
    db, dialect = connect_oltp(connection)
    try:
        writer = OltpWriter(db, dialect)
        if recreate:
            writer.recreate()
        for index in range(first_day, first_day + days):
            writer.apply(day_changes(spec, index))
            log.info("generated day %d (%s)", index, spec.day(index))
        cursor = db.cursor()
        counts = {}
        for name in TABLES:
            cursor.execute(f"SELECT COUNT(*) FROM {name}")
            counts[name] = int(cursor.fetchone()[0])
        return counts
    finally:
        db.close()
