"""Extract: stream one table's window from the source into Parquet parts + a manifest.

Rows flow source → Arrow record batches → Parquet files that are split by size,
so memory is bounded by one batch whatever the table size. Each attempt writes
under its own ``<table>/<interval>/<attempt>/`` prefix and writes its manifest
last: a crashed attempt leaves no manifest, and a later attempt never sees its
files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.batch import METADATA_COLUMNS, Batch
from ingestion.config import TableConfig
from ingestion.errors import ConfigError, PipelineError
from ingestion.progress import Progress
from ingestion.sources.base import Source, source_schema
from ingestion.stage import Manifest, ManifestEntry, Stage
from ingestion.timing import Timings
from ingestion.types import Column
from ingestion.window import Window

if TYPE_CHECKING:
    from ingestion.chunks import Chunk

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 100_000
DEFAULT_PART_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class ExtractResult:
    table: str
    batch_id: str
    manifest_url: str
    rows: int
    files: int
    bytes: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)


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

    def __init__(
        self, stage: Stage, prefix: str, schema: pa.Schema, part_bytes: int, timings: Timings | None = None
    ) -> None:
        self.timings = timings or Timings()
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
        with self.timings.phase("writer_thread_parquet_s"):
            self._write(batch)

    def _write(self, batch: pa.RecordBatch) -> None:
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


def extract(
    table: TableConfig,
    window: Window,
    source: Source,
    stage: Stage,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    part_bytes: int = DEFAULT_PART_BYTES,
    progress_interval: float | None = None,
    chunk: Chunk | None = None,
) -> ExtractResult:
    """Extract ``table`` for ``window`` into ``stage``; return the manifest URL and counts.

    A progress line is logged every ``progress_interval`` seconds (default:
    ``PIPELINE_PROGRESS_SECONDS`` or 5; 0: every batch). A ``chunk`` of a chunked
    extract (``ingestion/chunks.py``) reads only its key range, as part of its batch."""
    timings = Timings()
    started = time.monotonic()
    columns = source.columns(table)
    check_columns(table, columns)
    # Recorded for the load: whether the key is a unique index of the source (then this
    # one snapshot needs no dedupe), and the batch's constant metadata columns.
    if chunk is None:
        batch = Batch.new(unique_key=source.key_is_unique(table), window=(window.start, window.end))
        prefix = stage.attempt_url(table.name, window.label, batch.batch_id)
    else:
        batch, prefix = chunk.batch, chunk.attempt_url(stage)
    schema = batch.schema(source_schema(columns))
    what = (
        f"{table.cursor} in [{window.extract_start(table.lookback)}, {window.end})"
        if table.is_incremental
        else "all rows (full refresh)"
    ) + (f", chunk {chunk.describe()}" if chunk else "")
    log.info("extract %s: %s -> %s", table.name, what, prefix)

    writer = PartWriter(stage, prefix, schema, part_bytes, timings)
    rows = 0
    progress = Progress(log, f"extract {table.name}", interval=progress_interval)
    try:
        # Parquet encoding and the upload run in a second thread (Arrow's C++ code, without
        # the GIL) while this one reads the next batch. One batch in flight: bounded memory.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"extract-{table.name}") as pool:
            writing: Future | None = None
            key_range = chunk.key_range if chunk else None
            for source_rows in timed(source.read(table, columns, window, batch_rows, key_range), timings):
                with timings.phase("add_metadata_s"):
                    stamped = batch.stamp(source_rows)
                if writing is not None:
                    writing.result()
                writing = pool.submit(writer.write, stamped)
                rows += stamped.num_rows
                progress.add(stamped.num_rows, stamped.nbytes)
            if writing is not None:
                writing.result()
        with timings.phase("close_upload_s"):
            entries = writer.close()
            manifest = Manifest(url=f"{prefix}/manifest.json", entries=tuple(entries))
            stage.write_manifest(manifest.url, manifest)
    except PipelineError:
        raise
    except OSError as exc:
        raise stage.error(exc, f"table {table.name!r}: writing the stage {prefix} failed") from exc
    result = ExtractResult(
        table=table.name,
        batch_id=batch.batch_id,
        manifest_url=manifest.url,
        rows=rows,
        files=len(entries),
        bytes=manifest.content_length,
        seconds=round(time.monotonic() - started, 3),
        timings=timings.as_dict(overlapping=("writer_thread_parquet_s",)),
    )
    log.info(
        "extract %s: %s rows in %d file(s), %s bytes, %.1fs -> %s",
        table.name, f"{rows:,}", result.files, f"{result.bytes:,}", result.seconds, manifest.url,
    )  # fmt: skip
    return result


def timed(batches: Iterator[pa.RecordBatch], timings: Timings) -> Iterator[pa.RecordBatch]:
    """The source's batches, the time spent waiting for each added to ``read_source_s``."""
    while True:
        with timings.phase("read_source_s"):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch
