"""Reading both ends of the embedded environment, for the extract, load and pipeline tests.

Every expected value is computed from the SQLite file (read with ``sqlite3``), from the
files on disk, or written literally; the warehouse is read back with ``duckdb``. The
``source`` fixture (three days of this demo data) is in ``tests/conftest.py``.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from devtools.generate import DemoSpec
from ingestion import pipeline
from ingestion.batch import Batch
from ingestion.config import TableConfig
from ingestion.environments import Environment
from ingestion.extract import ExtractResult
from ingestion.load import LoadResult
from ingestion.stage import Manifest, ManifestEntry
from ingestion.window import Window

SPEC = DemoSpec(size=100)  # 100 sessions and 10 NPS responses a day; days 1+ update 2 responses
DAY0 = datetime(2026, 10, 30)
LOOKBACK = timedelta(hours=2)  # config/tables.yml: lookback 2h for both incremental tables
KEYS = {"nps": ("id",), "session_timestamp": ("sessionid",), "user_session_channel": ("sessionid",)}
CURSORS = {"nps": "modified_at", "session_timestamp": "ts"}
METADATA = ("_batch_id", "_extracted_at", "_loaded_at", "_deleted_at")
INCREMENTAL = ("nps", "session_timestamp")


def interval(index: int) -> Window:
    return Window(DAY0 + timedelta(days=index), DAY0 + timedelta(days=index + 1))


# ------------------------------------------------------------------ reading both ends


def source_rows(env: Environment, table: str) -> list[dict]:
    """Every row of a source table, DATETIME columns parsed, read with plain sqlite3."""
    db = sqlite3.connect(env.source.host)
    try:
        declared = {row[1]: row[2].upper() for row in db.execute(f'PRAGMA table_info("{table}")')}
        cursor = db.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cursor.description]
        rows = []
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            for name, value in row.items():
                if declared[name].startswith("DATETIME") and value is not None:
                    row[name] = datetime.fromisoformat(value)
            rows.append(row)
    finally:
        db.close()
    return sort_by_key(table, rows)


def window_rows(env: Environment, table: str, window: Window) -> list[dict]:
    """The source rows a window must deliver: cursor >= start - lookback and < end."""
    cursor = CURSORS[table]
    low = window.start - LOOKBACK
    return [row for row in source_rows(env, table) if low <= row[cursor] < window.end]


def sort_by_key(table: str, rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: tuple(row[k] for k in KEYS[table]))


def query(env: Environment, sql: str) -> list[dict]:
    db = duckdb.connect(env.warehouse.host)
    try:
        cursor = db.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    finally:
        db.close()


def raw_rows(env: Environment, table: str) -> list[dict]:
    """Every column of ``raw_data.<table>``, ordered by key."""
    return sort_by_key(table, query(env, f'select * from raw_data."{table}"'))


def business(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in METADATA} for row in rows]


def audit_rows(env: Environment) -> list[dict]:
    return query(env, "select * from raw_data._load_audit order by started_at, batch_id")


def attempt_folders(env: Environment, table: str, window: Window) -> list[Path]:
    folder = Path(env.stage_uri) / table / window.label
    return sorted(p for p in folder.iterdir() if p.is_dir())


def run(
    env: Environment, tables: dict[str, TableConfig], table: str, index: int
) -> tuple[ExtractResult, LoadResult]:
    return pipeline.run_table(tables[table], interval(index), env)


# ------------------------------------------------------------------ hand-made nps batches


NPS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int32(), metadata={"source_type": "INT"}),
        pa.field("created_at", pa.timestamp("us"), metadata={"source_type": "DATETIME"}),
        pa.field("modified_at", pa.timestamp("us"), metadata={"source_type": "DATETIME"}),
        pa.field("score", pa.int16(), metadata={"source_type": "TINYINT"}),
        pa.field("deleted", pa.int16(), metadata={"source_type": "TINYINT(1)"}),
        pa.field("_batch_id", pa.string()),
        pa.field("_extracted_at", pa.timestamp("us")),
    ]
)


def stage_batch(env: Environment, window: Window, batch_id: str, files: list[list[dict]]) -> str:
    """Write nps Parquet parts and their manifest the way an extract attempt does."""
    folder = Path(env.stage_uri) / "nps" / window.label / batch_id
    folder.mkdir(parents=True)
    entries = []
    for number, rows in enumerate(files):
        path = folder / f"part-{number:05d}.parquet"
        rows = [{**row, "_batch_id": batch_id} for row in rows]
        # One batch id; the rows' extract times differ, so none is recorded for the batch.
        schema = NPS_SCHEMA.with_metadata(Batch(batch_id, extracted_at=None).metadata())
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        entries.append(ManifestEntry(str(path), path.stat().st_size, len(rows)))
    manifest = Manifest(url=str(folder / "manifest.json"), entries=tuple(entries))
    pipeline.environment_stage(env).write_manifest(manifest.url, manifest)
    return manifest.url


def nps_row(row_id: int, modified_at: str, score: int, extracted_at: str = "2026-10-31 01:00:00") -> dict:
    return {
        "id": row_id,
        "created_at": datetime(2026, 10, 30, 9, 0),
        "modified_at": datetime.fromisoformat(modified_at),
        "score": score,
        "deleted": 0,
        "_extracted_at": datetime.fromisoformat(extracted_at),
    }
