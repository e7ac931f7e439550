"""Extract: stream one table's window from the source into Parquet parts + a manifest.

Rows flow source → Arrow record batches → Parquet files that are split by size,
so memory is bounded by one batch whatever the table size. Each attempt writes
under its own ``<table>/<interval>/<attempt>/`` prefix and writes its manifest
last: a crashed attempt leaves no manifest, and a later attempt never sees its
files.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.config import METADATA_COLUMNS, TableConfig
from ingestion.errors import ConfigError
from ingestion.sources import Source, source_schema
from ingestion.stage import Manifest, ManifestEntry, Stage
from ingestion.types import Column
from ingestion.window import Window

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 100_000
DEFAULT_PART_BYTES = 128 * 1024 * 1024
METADATA_FIELDS = (
    pa.field("_batch_id", pa.string()),
    pa.field("_extracted_at", pa.timestamp("us")),
)


@dataclass(frozen=True)
class ExtractResult:
    table: str
    batch_id: str
    manifest_url: str
    rows: int
    files: int
    bytes: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def new_batch_id(now: datetime | None = None) -> str:
    """Unique id of one extract attempt, sortable by time: 20261030T010203Z-1a2b3c4d."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def check_columns(table: TableConfig, columns: Sequence[Column]) -> None:
    """The configured key, cursor and soft-delete columns must exist in the source."""
    names = {c.name for c in columns}
    wanted = {"primary_key": table.primary_key}
    if table.cursor:
        wanted["cursor"] = (table.cursor,)
    if table.soft_delete:
        wanted["soft_delete"] = (table.soft_delete,)
    for key, required in wanted.items():
        missing = [c for c in required if c not in names]
        if missing:
            raise ConfigError(
                f"table {table.name!r}: {key} column(s) {', '.join(missing)} not in source "
                f"table {table.source_table!r} (columns: {', '.join(sorted(names))})"
            )
    reserved = names & set(METADATA_COLUMNS)
    if reserved:
        raise ConfigError(
            f"table {table.name!r}: source columns {', '.join(sorted(reserved))} "
            "clash with the load-metadata columns"
        )


class PartWriter:
    """Writes record batches into Parquet parts of about ``part_bytes`` each."""

    def __init__(self, stage: Stage, prefix: str, schema: pa.Schema, part_bytes: int) -> None:
        self.stage = stage
        self.prefix = prefix
        self.schema = schema
        self.part_bytes = part_bytes
        self.entries: list[ManifestEntry] = []
        self._stream = None
        self._writer: pq.ParquetWriter | None = None
        self._url = ""
        self._rows = 0

    def _open(self) -> None:
        self._url = f"{self.prefix}/part-{len(self.entries):05d}.parquet"
        self._stream = self.stage.open_output(self._url)
        # Dictionary-encode text and the constant metadata columns only: for numbers
        # and timestamps it costs time and bytes.
        dictionary = [
            f.name
            for f in self.schema
            if pa.types.is_string(f.type) or pa.types.is_binary(f.type) or f.name in METADATA_COLUMNS
        ]
        self._writer = pq.ParquetWriter(
            self._stream, self.schema, compression="snappy", use_dictionary=dictionary
        )
        self._rows = 0

    def _close_part(self) -> None:
        if self._writer is None or self._stream is None:
            return
        self._writer.close()
        size = self._stream.tell()
        self._stream.close()
        self.entries.append(ManifestEntry(self._url, size, self._rows))
        self._writer = self._stream = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._open()
        writer, stream = self._writer, self._stream
        if writer is None or stream is None:
            raise RuntimeError("part file did not open")
        writer.write_batch(batch)
        self._rows += batch.num_rows
        if stream.tell() >= self.part_bytes:
            self._close_part()

    def close(self) -> list[ManifestEntry]:
        if self._writer is None and not self.entries:
            self._open()  # an empty window still stages one file with the schema
        self._close_part()
        return self.entries


def with_metadata(batch: pa.RecordBatch, batch_id: str, extracted_at: datetime) -> pa.RecordBatch:
    rows = batch.num_rows
    return pa.RecordBatch.from_arrays(
        [
            *batch.columns,
            pa.repeat(pa.scalar(batch_id, pa.string()), rows),
            pa.repeat(pa.scalar(extracted_at, pa.timestamp("us")), rows),
        ],
        schema=batch.schema.append(METADATA_FIELDS[0]).append(METADATA_FIELDS[1]),
    )


def extract(
    table: TableConfig,
    window: Window,
    source: Source,
    stage: Stage,
    *,
    batch_id: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    part_bytes: int = DEFAULT_PART_BYTES,
) -> ExtractResult:
    """Extract ``table`` for ``window`` into ``stage``; return the manifest URL and counts."""
    started = time.monotonic()
    batch_id = batch_id or new_batch_id()
    extracted_at = datetime.now(UTC).replace(tzinfo=None)
    columns = source.columns(table)
    check_columns(table, columns)
    schema = source_schema(columns)
    schema = schema.append(METADATA_FIELDS[0]).append(METADATA_FIELDS[1])
    # Recorded for the load: constant metadata columns, and whether the key
    # is a unique index of the source (then this one snapshot needs no dedupe).
    schema = schema.with_metadata(
        {
            "pipeline.batch_id": batch_id,
            "pipeline.extracted_at": extracted_at.isoformat(),
            "pipeline.unique_key": "true" if source.key_is_unique(table) else "false",
        }
    )
    prefix = stage.attempt_url(table.name, window.label, batch_id)
    what = (
        f"{table.cursor} in [{window.extract_start(table.lookback)}, {window.end})"
        if table.is_incremental
        else "all rows (full refresh)"
    )
    log.info("extract %s: %s -> %s", table.name, what, prefix)

    writer = PartWriter(stage, prefix, schema, part_bytes)
    rows = 0
    next_report = 1_000_000
    # Parquet encoding and the upload run in a second thread (Arrow's C++ code, without
    # the GIL) while this one reads the next batch. One batch in flight: bounded memory.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"extract-{table.name}") as pool:
        writing: Future | None = None
        for batch in source.read(table, columns, window, batch_rows):
            batch = with_metadata(batch, batch_id, extracted_at)
            if writing is not None:
                writing.result()
            writing = pool.submit(writer.write, batch)
            rows += batch.num_rows
            if rows >= next_report:
                log.info("extract %s: %s rows so far", table.name, f"{rows:,}")
                next_report += 1_000_000
        if writing is not None:
            writing.result()
    entries = writer.close()
    manifest = Manifest(url=f"{prefix}/manifest.json", entries=tuple(entries))
    stage.write_manifest(manifest.url, manifest)
    result = ExtractResult(
        table=table.name,
        batch_id=batch_id,
        manifest_url=manifest.url,
        rows=rows,
        files=len(entries),
        bytes=manifest.content_length,
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "extract %s: %s rows in %d file(s), %s bytes, %.1fs -> %s",
        table.name, f"{rows:,}", result.files, f"{result.bytes:,}", result.seconds, manifest.url,
    )  # fmt: skip
    return result
