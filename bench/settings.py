"""What one benchmark run works on: the databases, the S3 server, the table, the measurements.

Everything here is immutable: a :class:`Settings` is built once from the command line and
the environment, then copied with :meth:`Settings.with_` when the work dir or the S3 URL is
known. Workers get it as JSON (:meth:`Settings.spec`) and rebuild it with
:meth:`Settings.from_spec`.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

TABLE = "nps"
COPY_TABLE = "copy_floor_nps"
ADBC_TABLE = "adbc_floor_nps"
RAW_SCHEMA = "raw_data"

# The order the measurements run in, and the order of the printed table.
ORDER = (
    "client_floor", "cx_floor", "copy_floor", "ours_extract", "adbc_floor", "ours_load", "ours_load_staged",
    "ours_batch_extract", "copy_batch_floor", "ours_merge", "ours_day_extract", "ours_day_load",
    "ours_reconcile", "ours_embedded_extract", "ours_embedded_load", "duckdb_floor", "dag_parse",
    "sql_to_s3_operator",
)  # fmt: skip
TABLE_ORDER = (
    "client_floor", "cx_floor", "ours_extract", "sql_to_s3_operator", "copy_floor", "adbc_floor", "ours_load",
    "ours_load_staged", "ours_batch_extract", "copy_batch_floor", "ours_merge", "ours_day_extract",
    "ours_day_load", "ours_reconcile", "ours_embedded_extract", "duckdb_floor", "ours_embedded_load",
    "dag_parse",
)  # fmt: skip
DESCRIPTIONS = MappingProxyType(
    {
        "client_floor": "mariadb --quick -B > file",
        "cx_floor": "connectorx arrow_stream, rows discarded",
        "copy_floor": "psql \\copy FROM file",
        "adbc_floor": "ADBC adbc_ingest of our Parquet (S3)",
        "ours_extract": "extract(): MariaDB -> S3 Parquet + manifest",
        "ours_load": "load(): manifest -> PostgreSQL raw_data",
        "ours_load_staged": "the same load through a staging table + merge",
        "ours_batch_extract": "extract() of a 2% batch (1% updates, 1% new)",
        "copy_batch_floor": "psql \\copy of that batch, appended to the full table",
        "ours_merge": "load() of the batch into the full table (merge)",
        "ours_day_extract": "incremental extract() of a 0.1% day",
        "ours_day_load": "load() of that day into the full table",
        "ours_reconcile": "hard-delete reconcile: key extract + flag (bench/reconcile.py)",
        "ours_embedded_extract": "extract(): SQLite -> folder Parquet (<= 1M rows)",
        "ours_embedded_load": "load(): folder Parquet -> DuckDB",
        "duckdb_floor": "DuckDB insert ... from read_parquet()",
        "dag_parse": "parse dags/ like the DAG processor",
        "sql_to_s3_operator": "Airflow SqlToS3Operator (parquet)",
    }
)
# The embedded path (SQLite -> folder stage -> DuckDB) is measured on at most this many rows.
EMBEDDED_ROWS = 1_000_000
# The incremental batch: every 100th row updated (1%) plus 1% new rows, all modified on
# BATCH_DAY (after every generated row); the incremental day: the rows modified in
# [DAY_START, DAY_START + DAY_LENGTH), 0.1% of a table spread over 730 days.
BATCH_DAY = datetime(2026, 6, 1)
DAY_START = datetime(2025, 1, 1)
DAY_LENGTH = timedelta(seconds=730 * 86400 // 1000)


@dataclass(frozen=True)
class Settings:
    rows: int
    run_id: str
    mysql_host: str
    mysql_port: int
    mysql_user: str
    mysql_password: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    mysql_db: str
    pg_db: str
    bucket: str
    s3_url: str = ""
    workdir: str = ""
    # --ingestion-root: the directory whose `ingestion` package the workers measure
    # (None: this repository's).
    ingestion_root: str | None = None

    @property
    def dump_path(self) -> str:
        return str(Path(self.workdir) / "client_floor.tsv")

    @property
    def batch_dump_path(self) -> str:
        return str(Path(self.workdir) / "copy_batch_floor.tsv")

    @property
    def batch_db(self) -> str:
        """The MariaDB database holding the incremental batch's ``nps`` rows."""
        return f"{self.mysql_db}_batch"

    @property
    def embedded_rows(self) -> int:
        return min(self.rows, EMBEDDED_ROWS)

    @property
    def embedded_dir(self) -> Path:
        """The SQLite source, the folder stage and the DuckDB files of the embedded path."""
        return Path(self.workdir) / "embedded"

    def with_(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def spec(self, **extra: Any) -> dict[str, Any]:
        """The JSON document a worker gets: these settings plus the measurement's own values."""
        return {**dataclasses.asdict(self), **extra}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Settings:
        return cls(**{f.name: spec[f.name] for f in dataclasses.fields(cls) if f.name in spec})


def settings_from(rows: int, ingestion_root: str | None = None) -> Settings:
    """Settings of a new run: unique database and bucket names, servers from the environment."""
    run_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}_{secrets.token_hex(3)}"
    return Settings(
        rows=rows,
        run_id=run_id,
        mysql_host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        mysql_port=int(os.environ.get("MYSQL_PORT", "3306")),
        mysql_user=os.environ.get("MYSQL_USER", "root"),
        mysql_password=os.environ.get("MYSQL_PASSWORD", ""),
        pg_host=os.environ.get("PGHOST", "127.0.0.1"),
        pg_port=int(os.environ.get("PGPORT", "5432")),
        pg_user=os.environ.get("PGUSER", "root"),
        pg_password=os.environ.get("PGPASSWORD", ""),
        mysql_db=f"bench_{run_id}",
        pg_db=f"bench_{run_id}",
        bucket=f"bench-{run_id.replace('_', '-')}",
        ingestion_root=ingestion_root,
    )


# ---------------------------------------------------------------------------- connections
# The driver and `ingestion` imports are inside the functions: a worker measuring another
# copy of the package (--ingestion-root) must not import this repository's first.


def mysql_connection(s: Settings, database: str | None = None) -> Any:
    import MySQLdb

    options: dict[str, Any] = {
        "host": s.mysql_host,
        "port": s.mysql_port,
        "user": s.mysql_user,
        "password": s.mysql_password,
        "charset": "utf8mb4",
    }
    if database:
        options["database"] = database
    db = MySQLdb.connect(**options)
    db.autocommit(True)
    return db


def pg_connection(s: Settings, database: str) -> Any:
    import psycopg2

    db = psycopg2.connect(
        host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password or None, dbname=database
    )
    db.autocommit = True
    return db


def pipeline_connections(s: Settings) -> dict[str, Any]:
    """The pipeline's own Connection objects for the bench databases and the S3 server."""
    from ingestion.environments import Connection, loopback_s3_connection

    return {
        "source": Connection(
            "bench_source", "mysql", host=s.mysql_host, port=s.mysql_port, login=s.mysql_user,
            password=s.mysql_password or None, schema=s.mysql_db,
        ),
        "warehouse": Connection(
            "bench_warehouse", "postgres", host=s.pg_host, port=s.pg_port, login=s.pg_user,
            password=s.pg_password or None, schema=s.pg_db,
        ),
        "aws": loopback_s3_connection(s.s3_url, "bench_aws"),
    }  # fmt: skip


def stage_url(s: Settings) -> str:
    """Where our extract writes its parts and manifest."""
    return f"s3://{s.bucket}/ours"


# ---------------------------------------------------------------------------- table config


def table_config(s: Settings, case: str = "full") -> Any:
    """The pipeline's TableConfig of the bench table: ``full``, a full refresh of the whole
    table; ``batch``, incremental from the batch database; ``day``, incremental from the
    bench table (the cursor ``modified_at`` is indexed in both); ``embedded``, a full refresh
    of the SQLite table."""
    from ingestion.config import parse_table

    raw: dict[str, Any] = {"name": TABLE, "primary_key": "id", "soft_delete": "deleted"}
    if case == "full":
        raw.update(source_schema=s.mysql_db, mode="full_refresh")
    elif case == "batch":
        raw.update(source_schema=s.batch_db, mode="incremental", cursor="modified_at")
    elif case == "day":
        raw.update(source_schema=s.mysql_db, mode="incremental", cursor="modified_at")
    elif case == "embedded":
        raw.update(mode="full_refresh")
    else:
        raise ValueError(f"unknown bench case {case!r}")
    return parse_table(raw, 0)


def bench_window(case: str = "full") -> Any:
    """The window each case extracts: everything, the batch's day, or the incremental day."""
    from ingestion.window import Window

    if case == "batch":
        return Window(BATCH_DAY, BATCH_DAY + timedelta(days=1))
    if case == "day":
        return Window(DAY_START, DAY_START + DAY_LENGTH)
    return Window(datetime(2000, 1, 1), datetime(2100, 1, 1))
