"""Chunked extract: one table's window split into primary-key ranges, one task each.

A table with ``chunks: N`` in the table config is extracted in three steps (in Airflow:
``plan_chunks_<table>``, then ``extract_<table>`` mapped over the chunks, possibly on
different workers, then ``load_<table>``; on the command line: the same, one after the
other):

1. :func:`plan` asks the source where to split the window's keys so that each range
   holds about the same number of rows (``ingestion/keyrange.py``) and fixes the
   batch every chunk belongs to: one batch id, one extract time, one window;
2. :func:`extract_chunk` reads one range of the window (``window ∩ key range``) in a
   snapshot of its own and writes its parts and manifest under
   ``<table>/<interval>/<batch id>/chunk-NNN-of-NNN-<attempt>/``: a retried chunk
   writes a new folder and its predecessor's files are never listed;
3. :func:`combine` writes the batch's one manifest (``<batch id>/manifest.json``)
   listing every chunk's files, after checking that each chunk is there exactly once;
   the load reads it like any other, so all chunks land in one transaction and
   Redshift's ``COPY`` gets one manifest.

What the per-chunk snapshots guarantee (the chunks are read at different moments):

* every key is read by at most one chunk: the ranges are disjoint and a primary key
  never changes, so a row cannot move from one range to another between two reads;
* a row that exists throughout the reads and is in the window is read exactly once:
  the ranges cover every key (the first is open below, the last above), whatever rows
  were inserted or deleted since the boundaries were read;
* a row updated while the chunks are read lands once, as its chunk's snapshot saw it:
  old or new version. If the update moved it out of the window, or into it after its
  chunk was read, the next interval's extract (the cursor window plus ``lookback``)
  reads its new version, exactly as it would for a table read in one snapshot;
* the batch is not one snapshot of the whole table: two rows of different chunks may
  show states a few seconds (or, after a retry, minutes) apart. Each row is still
  consistent in itself, and the warehouse converges on the next run.

Per batch, the key stays unique (a unique source key read by disjoint ranges), so the
load keeps its no-dedupe path; with ``hard_deletes: reconcile`` the first chunk also
stages the key snapshot next to the combined manifest.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestion import reconcile
from ingestion.batch import Batch
from ingestion.config import TableConfig
from ingestion.errors import LoadError
from ingestion.extract import ExtractResult, check_columns, extract
from ingestion.keyrange import KeyRange, ranges
from ingestion.sources.base import Source
from ingestion.stage import Manifest, Stage
from ingestion.window import Window

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CHUNK_FOLDER = re.compile(r"^chunk-(\d{3})-of-(\d{3})-[0-9a-f]+$")


@dataclass(frozen=True)
class Chunk:
    """One key range of a chunked extract and the batch it belongs to (JSON for XCom)."""

    table: str
    number: int  # 0-based
    count: int
    batch: Batch
    key_range: KeyRange

    @property
    def window(self) -> Window:
        if self.batch.window is None:
            raise ValueError("a chunk's batch records its window")
        return Window(*self.batch.window)

    def batch_url(self, stage: Stage) -> str:
        """The folder of the batch: the chunks' folders and the combined manifest."""
        return stage.attempt_url(self.table, self.window.label, self.batch.batch_id)

    def attempt_url(self, stage: Stage) -> str:
        """A new folder for one attempt at this chunk."""
        name = f"chunk-{self.number:03d}-of-{self.count:03d}-{secrets.token_hex(4)}"
        return f"{self.batch_url(stage)}/{name}"

    def describe(self) -> str:
        return f"{self.number + 1} of {self.count}, {self.key_range.describe()}"

    def to_json(self) -> dict[str, Any]:
        window = self.window
        return {
            "table": self.table,
            "number": self.number,
            "count": self.count,
            "batch_id": self.batch.batch_id,
            "extracted_at": self.batch.extracted_at.isoformat() if self.batch.extracted_at else None,
            "unique_key": self.batch.unique_key,
            "window": [window.start.isoformat(), window.end.isoformat()],
            "key_range": self.key_range.to_json(),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Chunk:
        extracted_at = document.get("extracted_at")
        start, end = (datetime.fromisoformat(value) for value in document["window"])
        batch = Batch(
            batch_id=document["batch_id"],
            extracted_at=datetime.fromisoformat(extracted_at) if extracted_at else None,
            unique_key=bool(document["unique_key"]),
            window=(start, end),
        )
        key_range = KeyRange.from_json(document["key_range"])
        return cls(document["table"], int(document["number"]), int(document["count"]), batch, key_range)


def plan(table: TableConfig, window: Window, source: Source, chunks: int | None = None) -> list[Chunk]:
    """Split the window's keys into ``chunks`` (default: the table's) ranges of about
    equal row counts, read from the source now. Fewer when the window has fewer rows;
    one (every key) when it is empty."""
    wanted = chunks or table.chunks
    started = time.monotonic()
    columns = source.columns(table)
    check_columns(table, columns)
    found = source.key_boundaries(table, columns, window, wanted)
    batch = Batch.new(unique_key=source.key_is_unique(table), window=(window.start, window.end))
    key_ranges = ranges(found)
    planned = [Chunk(table.name, n, len(key_ranges), batch, r) for n, r in enumerate(key_ranges)]
    log.info(
        "plan %s: %d chunk(s) of batch %s in %.1fs: %s",
        table.name, len(planned), batch.batch_id, time.monotonic() - started,
        "; ".join(chunk.key_range.describe() for chunk in planned),
    )  # fmt: skip
    return planned


def extract_chunk(table: TableConfig, chunk: Chunk, source: Source, stage: Stage) -> ExtractResult:
    """Extract one chunk (its own snapshot); the manifest URL goes to :func:`combine`."""
    if chunk.table != table.name:
        raise LoadError(f"chunk of table {chunk.table!r} given for table {table.name!r}", retryable=False)
    result = extract(table, chunk.window, source, stage, chunk=chunk)
    if chunk.number == 0 and reconcile.needs_key_extract(table):
        reconcile.extract_keys(table, source, stage, f"{chunk.batch_url(stage)}/{MANIFEST}")
    return result


def combine(table: TableConfig, stage: Stage, manifest_urls: list[str]) -> str:
    """Write the batch's manifest listing every chunk's files; return its URL.

    Each chunk of one batch must be there exactly once (one manifest per chunk number,
    all in one batch folder), or nothing is written. Idempotent: the same chunk
    manifests give the same file."""
    by_number: dict[int, str] = {}
    folders, counts = set(), set()
    for url in manifest_urls:
        folder, name, file = (url.rsplit("/", 2) + ["", ""])[:3]
        match = CHUNK_FOLDER.match(name)
        if file != MANIFEST or match is None:
            raise LoadError(f"table {table.name!r}: {url} is not a chunk's manifest", retryable=False)
        number, count = int(match.group(1)), int(match.group(2))
        if number in by_number:
            raise LoadError(
                f"table {table.name!r}: chunk {number + 1} given twice ({by_number[number]}, {url})",
                retryable=False,
            )
        by_number[number] = url
        folders.add(folder)
        counts.add(count)
    if len(folders) != 1 or len(counts) != 1 or sorted(by_number) != list(range(counts.pop())):
        raise LoadError(
            f"table {table.name!r}: the chunk manifests are not every chunk of one batch: "
            f"{', '.join(manifest_urls) or 'none'}",
            retryable=False,
        )
    entries = [entry for n in sorted(by_number) for entry in stage.read_manifest(by_number[n]).entries]
    manifest = Manifest(url=f"{folders.pop()}/{MANIFEST}", entries=tuple(entries))
    try:
        stage.write_manifest(manifest.url, manifest)
    except OSError as exc:
        raise stage.error(exc, f"table {table.name!r}: writing {manifest.url} failed", LoadError) from exc
    log.info(
        "combine %s: %d chunk(s), %d file(s), %s rows -> %s",
        table.name, len(by_number), len(entries), f"{manifest.record_count:,}", manifest.url,
    )  # fmt: skip
    return manifest.url


def extract_all(
    table: TableConfig, window: Window, source: Source, stage: Stage, chunks: int | None = None
) -> ExtractResult:
    """Plan, extract every chunk one after the other and combine: what the DAG's tasks
    do, in one process (the command line). The result names the combined manifest."""
    started = time.monotonic()
    planned = plan(table, window, source, chunks)
    results = [extract_chunk(table, chunk, source, stage) for chunk in planned]
    manifest_url = combine(table, stage, [result.manifest_url for result in results])
    return ExtractResult(
        table=table.name,
        batch_id=planned[0].batch.batch_id,
        manifest_url=manifest_url,
        rows=sum(result.rows for result in results),
        files=sum(result.files for result in results),
        bytes=sum(result.bytes for result in results),
        seconds=round(time.monotonic() - started, 3),
    )
