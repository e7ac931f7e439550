"""The batch contract (``ingestion/batch.py``): what the Parquet metadata records, and the
metadata columns stamped on every row."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.batch import Batch
from ingestion.errors import StageError

SOURCE = pa.schema([pa.field("id", pa.int32()), pa.field("name", pa.string())])
EXTRACTED_AT = datetime(2026, 10, 30, 1, 2, 3, 456789)
BATCHES = {
    "unique-key": Batch("20261030T010203Z-1a2b3c4d", EXTRACTED_AT, unique_key=True),
    "key-not-unique": Batch("20261030T010203Z-1a2b3c4d", EXTRACTED_AT, unique_key=False),
    "no-extract-time": Batch("20261030T010203Z-00000000", None, unique_key=True),
}


@pytest.mark.parametrize("batch", BATCHES.values(), ids=BATCHES.keys())
def test_batch_read_back_from_its_schema_is_the_same_batch(batch: Batch) -> None:
    assert Batch.of(batch.schema(SOURCE), "part-00000.parquet") == batch


@pytest.mark.parametrize("batch", BATCHES.values(), ids=BATCHES.keys())
def test_batch_read_back_from_a_written_parquet_file_is_the_same_batch(batch: Batch, tmp_path: Path) -> None:
    path = tmp_path / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist([], schema=batch.schema(SOURCE)), path)

    assert Batch.of(pq.read_schema(path), str(path)) == batch


def test_schema_appends_the_two_metadata_columns_to_the_source_columns() -> None:
    schema = BATCHES["unique-key"].schema(SOURCE)

    assert schema.names == ["id", "name", "_batch_id", "_extracted_at"]
    assert schema.field("_batch_id").type == pa.string()
    assert schema.field("_extracted_at").type == pa.timestamp("us")


def test_stamp_appends_the_batch_id_and_extract_time_to_every_row() -> None:
    rows = pa.RecordBatch.from_pylist([{"id": 1, "name": "a"}, {"id": 2, "name": None}], schema=SOURCE)

    stamped = BATCHES["unique-key"].stamp(rows)

    assert stamped.schema.names == ["id", "name", "_batch_id", "_extracted_at"]
    assert stamped.schema.field("_extracted_at").type == pa.timestamp("us")
    assert stamped.to_pylist() == [
        {"id": 1, "name": "a", "_batch_id": "20261030T010203Z-1a2b3c4d", "_extracted_at": EXTRACTED_AT},
        {"id": 2, "name": None, "_batch_id": "20261030T010203Z-1a2b3c4d", "_extracted_at": EXTRACTED_AT},
    ]


def test_stamp_of_no_rows_gives_no_rows_with_the_metadata_columns() -> None:
    stamped = BATCHES["unique-key"].stamp(pa.RecordBatch.from_pylist([], schema=SOURCE))

    assert stamped.num_rows == 0
    assert stamped.schema.names == ["id", "name", "_batch_id", "_extracted_at"]


def test_file_without_a_batch_id_raises_stage_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "stage" / "nps" / "part-00000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2]}), path)  # a Parquet file this pipeline did not write

    with pytest.raises(StageError) as raised:
        Batch.of(pq.read_schema(path), str(path))

    assert str(path) in str(raised.value)
    assert "pipeline.batch_id" in str(raised.value)
    assert raised.value.retryable is False  # the same file fails the same way on a retry


def test_batch_without_an_extract_time_has_only_the_batch_id_constant() -> None:
    batch = BATCHES["no-extract-time"]

    assert batch.constants() == {"_batch_id": pa.scalar("20261030T010203Z-00000000", pa.string())}
    assert b"pipeline.extracted_at" not in batch.metadata()
    assert batch.metadata()[b"pipeline.batch_id"] == b"20261030T010203Z-00000000"


def test_batch_without_an_extract_time_refuses_to_stamp_rows() -> None:
    rows = pa.RecordBatch.from_pylist([{"id": 1, "name": "a"}], schema=SOURCE)

    with pytest.raises(ValueError, match="one extract time"):
        BATCHES["no-extract-time"].stamp(rows)
