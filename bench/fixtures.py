"""What a run measures on: the source table, the warehouse database, the S3 server, and
dropping them again.

The MariaDB database ``bench_<run id>`` gets an ``nps`` table filled with one
``INSERT ... SELECT ... FROM seq_1_to_N`` (the sequence engine); the PostgreSQL database of
the same name gets the COPY floor's table; the S3 server is the project's loopback server
(``devtools.s3_server``) with a fresh bucket.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from typing import Any

from bench.settings import COPY_TABLE, RAW_SCHEMA, TABLE, Settings, mysql_connection, pg_connection

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


def reset_warehouse(settings: Settings, copy_table: bool) -> None:
    """Empty the COPY floor table, or drop raw_data so that load() creates an empty table."""
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            if copy_table:
                cursor.execute(f"truncate {COPY_TABLE}")
            else:
                cursor.execute(f"drop schema if exists {RAW_SCHEMA} cascade")
            with contextlib.suppress(Exception):  # needs superuser or pg_checkpoint
                cursor.execute("checkpoint")  # no dirty pages of a previous measurement left to write
    finally:
        db.close()


def drop_databases(settings: Settings, created: set[str]) -> None:
    """Drop the databases named in ``created`` ("mysql", "postgres"); warn, never raise."""
    if "mysql" in created:
        try:
            db = mysql_connection(settings)
            with db.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{settings.mysql_db}`")
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
