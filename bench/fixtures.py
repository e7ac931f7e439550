"""What a run measures on: the source table, the warehouse database, the S3 server, and
dropping them again.

The MariaDB database ``bench_<run id>`` gets an ``nps`` table filled with one
``INSERT ... SELECT ... FROM seq_1_to_N`` (the sequence engine); the PostgreSQL database of
the same name gets the COPY floor's table; the S3 server is the project's loopback server
(``devtools.s3_server``) with a fresh bucket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from bench.settings import (
    ADBC_TABLE,
    COPY_TABLE,
    RAW_SCHEMA,
    TABLE,
    Settings,
    mysql_connection,
    pg_connection,
)

NPS_DDL = f"""CREATE TABLE {TABLE} (
    id INT NOT NULL PRIMARY KEY,
    created_at DATETIME NOT NULL,
    modified_at DATETIME NOT NULL,
    score TINYINT NOT NULL,
    deleted TINYINT(1) NOT NULL DEFAULT 0,
    KEY nps_modified_at (modified_at)
) ENGINE=InnoDB"""

# Responses spread over two years with up to an hour of jitter; 30% modified again within
# 45 days; scores shaped like NPS answers (20% 0-6, 30% 7-8, 50% 9-10); 3% soft-deleted.
# RAND(seed) makes the table the same on every run; the derived table is materialised
# (it holds RAND), so created_at is computed once per row and reused for modified_at.
NPS_FILL = """INSERT INTO {table} (id, created_at, modified_at, score, deleted)
SELECT seq,
    created,
    IF(r_update < 0.3, created + INTERVAL FLOOR(r_gap * 45 * 86400) SECOND, created),
    CASE
        WHEN r_score < 0.2 THEN FLOOR(r_pick * 7)
        WHEN r_score < 0.5 THEN 7 + FLOOR(r_pick * 2)
        ELSE 9 + FLOOR(r_pick * 2)
    END,
    r_delete < 0.03
FROM (
    SELECT seq,
        TIMESTAMP'2024-01-01 00:00:00'
            + INTERVAL (FLOOR((seq - 1) * (730 * 86400) / {rows}) + FLOOR(RAND(11) * 3600)) SECOND
            AS created,
        RAND(12) AS r_update, RAND(13) AS r_gap, RAND(14) AS r_score, RAND(15) AS r_pick,
        RAND(16) AS r_delete
    FROM seq_1_to_{rows}
) AS generated"""

# Column types of raw_data.nps for the five source columns (what our load creates).
COPY_TABLE_DDL = (
    f"create table {COPY_TABLE} (id integer, created_at timestamp, modified_at timestamp, "
    "score smallint, deleted smallint)"
)


def create_source(settings: Settings) -> dict[str, Any]:
    """Create the bench database and fill nps with N rows; return a checksum of the rows."""
    db = mysql_connection(settings)
    try:
        with db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{settings.mysql_db}`")
            cursor.execute(f"USE `{settings.mysql_db}`")
            cursor.execute(NPS_DDL)
            cursor.execute(NPS_FILL.format(table=TABLE, rows=int(settings.rows)))
            # Warm the buffer pool / page cache the same way for every measurement.
            cursor.execute(
                "SELECT COUNT(*), SUM(score), SUM(deleted), MAX(modified_at) "
                f"FROM {TABLE} IGNORE INDEX (nps_modified_at)"
            )
            count, score, deleted, last = cursor.fetchone()
    finally:
        db.close()
    if count != settings.rows:
        raise RuntimeError(f"generated {count:,} rows instead of {settings.rows:,}")
    return {"sum_score": int(score), "sum_deleted": int(deleted), "max_modified_at": str(last)}


# The incremental batch (BATCH_DAY, see bench/settings.py): every 100th row of the bench
# table with a new score and modified on the batch's day (1% updates), plus 1% new rows.
BATCH_FILL = """INSERT INTO `{batch}`.{table} (id, created_at, modified_at, score, deleted)
SELECT id, created_at, TIMESTAMP'{day}' + INTERVAL (id % 86400) SECOND, (score + 1) % 11, deleted
FROM `{source}`.{table} WHERE id % 100 = 0
UNION ALL
SELECT {rows} + seq, TIMESTAMP'{day}', TIMESTAMP'{day}' + INTERVAL (seq % 86400) SECOND, seq % 11, 0
FROM seq_1_to_{new}"""

CHECKSUM = "SELECT COUNT(*), SUM(score), SUM(deleted), MAX(modified_at) FROM {rows}"


def checksum(cursor: Any, rows: str) -> dict[str, Any]:
    """Count and checksum of a row source (a table or a derived table), as verify compares."""
    cursor.execute(CHECKSUM.format(rows=rows))
    count, score, deleted, last = cursor.fetchone()
    return {"rows": int(count), "sum_score": int(score or 0), "sum_deleted": int(deleted or 0),
            "max_modified_at": str(last) if last is not None else None}  # fmt: skip


def create_cases(settings: Settings) -> dict[str, dict[str, Any]]:
    """The incremental batch's database, its client dump (the floor of its COPY), the
    embedded path's SQLite file; the rows each case must leave, computed from MariaDB."""
    from bench.settings import BATCH_DAY, DAY_LENGTH, DAY_START

    main, batch, table = settings.mysql_db, settings.batch_db, TABLE
    db = mysql_connection(settings)
    try:
        with db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{batch}`")
            cursor.execute(f"CREATE TABLE `{batch}`.{table} LIKE `{main}`.{table}")
            cursor.execute(f"USE `{batch}`")  # seq_1_to_N lives in the current database
            day = f"{BATCH_DAY:%Y-%m-%d %H:%M:%S}"
            new = max(1, settings.rows // 100)
            cursor.execute(
                BATCH_FILL.format(batch=batch, source=main, table=table, day=day, rows=settings.rows, new=new)
            )
            expected = {
                "batch": checksum(cursor, f"`{batch}`.{table}"),
                # the full table after the batch's merge: the batch's rows replace theirs
                "merged": checksum(
                    cursor,
                    f"(SELECT score, deleted, modified_at FROM `{main}`.{table} AS t WHERE NOT EXISTS "
                    f"(SELECT 1 FROM `{batch}`.{table} AS b WHERE b.id = t.id) UNION ALL "
                    f"SELECT score, deleted, modified_at FROM `{batch}`.{table}) AS merged",
                ),
                "day": checksum(
                    cursor,
                    f"`{main}`.{table} WHERE modified_at >= '{DAY_START:%Y-%m-%d %H:%M:%S}' "
                    f"AND modified_at < '{DAY_START + DAY_LENGTH:%Y-%m-%d %H:%M:%S}'",
                ),
                "embedded": checksum(cursor, f"`{main}`.{table} WHERE id <= {settings.embedded_rows}"),
                # the COPY floor's table after the batch is appended to the full table
                "appended": checksum(
                    cursor,
                    f"(SELECT score, deleted, modified_at FROM `{main}`.{table} UNION ALL "
                    f"SELECT score, deleted, modified_at FROM `{batch}`.{table}) AS appended",
                ),
            }
    finally:
        db.close()
    dump_batch(settings)
    create_sqlite(settings)
    return expected


def dump_batch(settings: Settings) -> None:
    """The batch's rows as the client floor writes them (PostgreSQL's text format)."""
    env = dict(os.environ)
    if settings.mysql_password:
        env["MYSQL_PWD"] = settings.mysql_password
    with open(settings.batch_dump_path, "wb") as out:
        command = ["mariadb", "--quick", "-B", "-h", settings.mysql_host, "-P", str(settings.mysql_port)]
        command += ["--protocol=TCP", "-u", settings.mysql_user]
        command += ["-e", f"SELECT * FROM `{settings.batch_db}`.{TABLE}"]
        subprocess.run(command, stdout=out, env=env, check=True)


def create_sqlite(settings: Settings) -> None:
    """The embedded path's source: the first ``embedded_rows`` rows of the bench table in a
    SQLite file with the same DDL (datetimes as ISO text, as SQLite stores them)."""
    import sqlite3

    import MySQLdb.cursors

    settings.embedded_dir.mkdir(parents=True, exist_ok=True)
    target = sqlite3.connect(settings.embedded_dir / "source.sqlite")
    source = mysql_connection(settings, settings.mysql_db)
    try:
        target.execute(
            NPS_DDL.replace(" ENGINE=InnoDB", "").replace(",\n    KEY nps_modified_at (modified_at)", "")
        )
        target.execute(f"CREATE INDEX nps_modified_at ON {TABLE} (modified_at)")
        cursor = source.cursor(MySQLdb.cursors.SSCursor)
        cursor.execute(
            f"SELECT id, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s'), "
            f"DATE_FORMAT(modified_at, '%Y-%m-%d %H:%i:%s'), score, deleted "
            f"FROM {TABLE} WHERE id <= {settings.embedded_rows}"
        )
        while rows := cursor.fetchmany(50_000):
            target.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?)", rows)
        cursor.close()
        target.commit()
    finally:
        target.close()
        source.close()


def create_warehouse(settings: Settings) -> None:
    db = pg_connection(settings, "postgres")
    try:
        with db.cursor() as cursor:
            cursor.execute(f'create database "{settings.pg_db}"')
    finally:
        db.close()
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            cursor.execute(COPY_TABLE_DDL)
    finally:
        db.close()


COPY_KEY_INDEX = f"{COPY_TABLE}_key"


def reset_warehouse(settings: Settings, copy_table: bool, keep_raw: bool = False) -> None:
    """Empty the COPY floor table (without the key index of the batch's floor), or drop
    raw_data so that load() creates an empty table (``keep_raw``: keep it); drop the ADBC
    floor's table."""
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            if copy_table:
                cursor.execute(f"drop index if exists {COPY_KEY_INDEX}")
                cursor.execute(f"truncate {COPY_TABLE}")
            if not keep_raw and not copy_table:
                cursor.execute(f"drop schema if exists {RAW_SCHEMA} cascade")
            cursor.execute(f"drop table if exists {ADBC_TABLE}")
            with contextlib.suppress(Exception):  # needs superuser or pg_checkpoint
                cursor.execute("checkpoint")  # no dirty pages of a previous measurement left to write
    finally:
        db.close()


def prepare_batch_floor(settings: Settings) -> None:
    """The batch's COPY floor appends to the full table copy_floor left, with an index on
    the key as ``raw_data.nps`` has one (``<table>__key``) when ours_merge runs: the floor
    is the plain append of the batch's rows to a table that holds the rows."""
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            cursor.execute(f"create index if not exists {COPY_KEY_INDEX} on {COPY_TABLE} (id)")
            cursor.execute(f"vacuum analyze {COPY_TABLE}")
            with contextlib.suppress(Exception):  # needs superuser or pg_checkpoint
                cursor.execute("checkpoint")
    finally:
        db.close()


def wal_lsn(settings: Settings) -> str:
    """PostgreSQL's current WAL position (what a measurement's WAL volume is counted from)."""
    db = pg_connection(settings, "postgres")
    try:
        with db.cursor() as cursor:
            cursor.execute("select pg_current_wal_lsn()::text")
            return str(cursor.fetchone()[0])
    finally:
        db.close()


def wal_mb_since(settings: Settings, lsn: str) -> float:
    """MB of WAL PostgreSQL wrote since ``lsn`` (every client's, as the server CPU is)."""
    db = pg_connection(settings, "postgres")
    try:
        with db.cursor() as cursor:
            cursor.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (lsn,))
            return round(float(cursor.fetchone()[0]) / 1e6, 1)
    finally:
        db.close()


def raw_table_exists(settings: Settings) -> bool:
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            cursor.execute("select to_regclass(%s) is not null", (f"{RAW_SCHEMA}.{TABLE}",))
            return bool(cursor.fetchone()[0])
    finally:
        db.close()


def reset_embedded(settings: Settings) -> None:
    """No DuckDB file and no staged parts left from a previous round."""
    import shutil

    shutil.rmtree(settings.embedded_dir / "stage", ignore_errors=True)
    for name in (
        "warehouse.duckdb",
        "warehouse.duckdb.wal",
        "duckdb_floor.duckdb",
        "duckdb_floor.duckdb.wal",
    ):
        (settings.embedded_dir / name).unlink(missing_ok=True)


def drop_databases(settings: Settings, created: set[str]) -> None:
    """Drop the databases named in ``created`` ("mysql", "postgres"); warn, never raise."""
    if "mysql" in created:
        try:
            db = mysql_connection(settings)
            with db.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{settings.mysql_db}`")
                cursor.execute(f"DROP DATABASE IF EXISTS `{settings.batch_db}`")
            db.close()
            print(f"bench: dropped MariaDB database {settings.mysql_db}")
        except Exception as exc:
            print(
                f"bench: WARNING could not drop MariaDB database {settings.mysql_db}: {exc}", file=sys.stderr
            )
    if "postgres" in created:
        try:
            db = pg_connection(settings, "postgres")
            with db.cursor() as cursor:
                cursor.execute(f'drop database if exists "{settings.pg_db}" with (force)')
            db.close()
            print(f"bench: dropped PostgreSQL database {settings.pg_db}")
        except Exception as exc:
            print(
                f"bench: WARNING could not drop PostgreSQL database {settings.pg_db}: {exc}", file=sys.stderr
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def s3_server(settings: Settings, port: int) -> Iterator[Settings]:
    """The loopback S3 server on ``port`` (one already answering there is reused) with the
    run's bucket; yields the settings with its URL."""
    from devtools.s3_server import ensure_bucket, running_s3_server

    with running_s3_server(port) as url:
        ensure_bucket(url, settings.bucket)
        print(f"bench: S3 server {url}, bucket {settings.bucket}", flush=True)
        yield settings.with_(s3_url=url)
