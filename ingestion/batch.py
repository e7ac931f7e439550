"""The batch contract: what an extract attempt hands to the load.

Every staged row carries the load-metadata columns ``_batch_id`` and
``_extracted_at``; the load adds ``_loaded_at`` and ``_deleted_at`` (set when
the row's key is gone from the source, see ``ingestion/reconcile.py``). The extract also records the
batch in the Parquet files' key/value metadata (``pipeline.*``): the batch id,
the extract time and whether the key was read from a unique index in one
snapshot (then the load needs no dedupe). The load reads all of it from the
staged files, never from a URL.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from ingestion.errors import StageError

if TYPE_CHECKING:  # pyarrow is imported on first use: config reads the names above on every DAG parse
    import pyarrow as pa

BATCH_ID = "_batch_id"
EXTRACTED_AT = "_extracted_at"
LOADED_AT = "_loaded_at"
DELETED_AT = "_deleted_at"
METADATA_COLUMNS = (BATCH_ID, EXTRACTED_AT, LOADED_AT, DELETED_AT)
#: The columns the load adds to every raw table (not in the staged files).
LOAD_COLUMNS = (LOADED_AT, DELETED_AT)
#: Longest batch id the warehouse column holds (``new_batch_id`` makes 25 characters).
BATCH_ID_LENGTH = 64

_KEYS = {"batch_id": b"pipeline.batch_id", "extracted_at": b"pipeline.extracted_at"}
_UNIQUE_KEY = b"pipeline.unique_key"
_WINDOW = (b"pipeline.window_start", b"pipeline.window_end")


@cache
def metadata_fields() -> tuple[pa.Field, pa.Field]:
    """The Arrow fields of the metadata columns the extract writes."""
    import pyarrow as pa

    return pa.field(BATCH_ID, pa.string()), pa.field(EXTRACTED_AT, pa.timestamp("us"))


def new_batch_id(now: datetime | None = None) -> str:
    """Unique id of one extract attempt, sortable by time: 20261030T010203Z-1a2b3c4d."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Batch:
    """One extract attempt: its id, when it read the source, and whether its key is unique.

    ``extracted_at`` is None for a batch whose rows were read at different times (parts
    of several reads under one manifest): each row then carries its own ``_extracted_at``.
    """

    batch_id: str
    extracted_at: datetime | None
    unique_key: bool = False
    #: The cursor window the extract read (before the lookback): the interval, or a
    #: wider one when it caught up missed intervals. None when not recorded.
    window: tuple[datetime, datetime] | None = None

    @classmethod
    def new(cls, *, unique_key: bool, window: tuple[datetime, datetime] | None = None) -> Batch:
        return cls(new_batch_id(), datetime.now(UTC).replace(tzinfo=None), unique_key, window)

    def schema(self, source: pa.Schema) -> pa.Schema:
        """The staged files' schema: the source columns, the metadata columns, the batch."""
        batch_id, extracted_at = metadata_fields()
        schema = source.append(batch_id).append(extracted_at)
        return schema.with_metadata(self.metadata())

    def metadata(self) -> dict[bytes, bytes]:
        """The Parquet key/value metadata that records the batch."""
        metadata = {_KEYS["batch_id"]: self.batch_id.encode()}
        if self.extracted_at is not None:
            metadata[_KEYS["extracted_at"]] = self.extracted_at.isoformat().encode()
        metadata[_UNIQUE_KEY] = b"true" if self.unique_key else b"false"
        if self.window is not None:
            for key, value in zip(_WINDOW, self.window, strict=True):
                metadata[key] = value.isoformat().encode()
        return metadata

    def stamp(self, rows: pa.RecordBatch) -> pa.RecordBatch:
        """The source rows with the batch's metadata columns appended."""
        import pyarrow as pa

        count = rows.num_rows
        constants = self.constants()
        fields = metadata_fields()
        if len(constants) != len(fields):
            raise ValueError("a batch stamps its rows only with one extract time")
        return pa.RecordBatch.from_arrays(
            [*rows.columns, *(pa.repeat(value, count) for value in constants.values())],
            schema=rows.schema.append(fields[0]).append(fields[1]),
        )

    def constants(self) -> dict[str, pa.Scalar]:
        """The metadata columns with one value for every row of the batch."""
        import pyarrow as pa

        constants = {BATCH_ID: pa.scalar(self.batch_id, pa.string())}
        if self.extracted_at is not None:
            constants[EXTRACTED_AT] = pa.scalar(self.extracted_at, pa.timestamp("us"))
        return constants

    @classmethod
    def of(cls, schema: pa.Schema, where: str) -> Batch:
        """The batch recorded in a staged file's schema (``where`` names the file in errors)."""
        metadata = schema.metadata or {}
        if _KEYS["batch_id"] not in metadata:
            raise StageError(
                f"staged file {where}: Parquet metadata {_KEYS['batch_id'].decode()} missing; "
                "it was not written by this pipeline's extract",
                retryable=False,
            )
        extracted_at = metadata.get(_KEYS["extracted_at"])
        window = None
        if all(key in metadata for key in _WINDOW):
            start, end = (datetime.fromisoformat(metadata[key].decode()) for key in _WINDOW)
            window = (start, end)
        return cls(
            batch_id=metadata[_KEYS["batch_id"]].decode(),
            extracted_at=datetime.fromisoformat(extracted_at.decode()) if extracted_at else None,
            unique_key=metadata.get(_UNIQUE_KEY) == b"true",
            window=window,
        )
