"""The extract on the embedded environment: what it writes to the stage, and what a
failing write leaves behind."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingestion import pipeline
from ingestion.environments import Environment
from ingestion.errors import StageError
from tests.embedded_helpers import NPS_SCHEMA, interval


def test_extract_writes_the_schema_of_the_hand_made_batches(source: Environment, tables: dict) -> None:
    extracted = pipeline.run_extract(tables["nps"], interval(1), source)

    written = pq.read_schema(Path(extracted.manifest_url).parent / "part-00000.parquet")
    fields = written.remove_metadata()  # field metadata (source types) stays
    assert fields.equals(NPS_SCHEMA, check_metadata=True), f"{fields} != {NPS_SCHEMA}"
    # the batch-level facts the load relies on: nps.id is the SQLite table's primary key
    assert written.metadata[b"pipeline.unique_key"] == b"true"
    assert written.metadata[b"pipeline.batch_id"] == extracted.batch_id.encode()


def test_a_failing_part_write_fails_the_extract_and_leaves_no_manifest(
    source: Environment, tables: dict
) -> None:
    stage_root = Path(source.stage_uri)
    stage_root.mkdir(parents=True, exist_ok=True)
    (stage_root / "nps").write_text("a file where the table's folder must go")

    with pytest.raises(StageError, match="table 'nps': writing the stage"):
        pipeline.run_extract(tables["nps"], interval(0), source)

    assert not list(stage_root.rglob("manifest.json"))
