"""Our extract and load, through the library's public API only.

* ``ours_extract``: ``ingestion.extract.extract()`` of the whole table (a ``full_refresh``
  TableConfig) with ``MySQLSource`` into ``s3://<bucket>/ours/...``;
* ``ours_load``: ``ingestion.load.load()`` of that manifest into an empty ``raw_data.nps``;
* ``ours_load_staged`` (spec ``staged``): the same load with ``force_staging=True``: binary
  ``COPY`` into the staging table, then the merge into the target.

The per-phase times are the ``timings`` the library returns with its results: nothing of the
library is wrapped or replaced. The ``ingestion`` imports are inside the functions, so that
a worker measuring ``--ingestion-root`` imports that copy.
"""

from __future__ import annotations

from typing import Any

from bench.measure import Clock
from bench.settings import Settings, bench_window, pipeline_connections, stage_url, table_config

# IMPORT_ORDER: `ingestion.stage`, `.extract`, `.load` and `.warehouse` cannot be the first
# `ingestion` module a process imports (stage -> environments -> warehouse -> warehouse.base
# -> stage: a circular import); `ingestion.environments` can, and after it they import
# fine. pipeline_connections() imports it, so the workers call it before the others.

# The extract's phases in the order of the JSON: the main thread's waits for the source
# (fetch + Arrow conversion), the metadata columns, closing the parts (the rest of the
# multipart upload), the rest (connecting, columns, manifest, waiting for the writer
# thread); then the writer thread's Parquet encoding, which overlaps the reads and is not
# part of the sum.
EXTRACT_PHASES = ("read_source_s", "add_metadata_s", "close_upload_s", "other_s", "writer_thread_parquet_s")
# The load's: manifest, schema, ensure tables, lock; Parquet read from S3 + binary COPY
# rendering + COPY; DELETE (full refresh) or the merge; the audit row; COMMIT; the rest.
LOAD_PHASES = ("prepare_s", "bulk_load_s", "merge_s", "audit_s", "commit_s", "other_s")


def phases(timings: dict[str, float], order: tuple[str, ...]) -> dict[str, float]:
    """The library's timings in a fixed order (a phase that did not happen is 0); any other
    phase it reports follows."""
    known = {name: round(timings.get(name, 0.0), 3) for name in order}
    return {**known, **{k: round(v, 3) for k, v in timings.items() if k not in known}}


def embedded_stage_url(s: Settings) -> str:
    """The embedded path's folder stage."""
    return str(s.embedded_dir / "stage")


def open_case_stage(s: Settings, case: str, aws: Any) -> Any:
    from ingestion.stage import open_stage

    return open_stage(embedded_stage_url(s), None) if case == "embedded" else open_stage(stage_url(s), aws)


def ours_extract(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    """``extract()`` of one case (spec ``case``: full, batch, day or embedded)."""
    connections = pipeline_connections(s)  # first: see IMPORT_ORDER
    from ingestion.extract import extract

    case = spec.get("case", "full")
    if case == "embedded":
        from ingestion.sources.sqlite import SQLiteSource

        source: Any = SQLiteSource(s.embedded_dir / "source.sqlite")
    else:
        from ingestion.sources.mysql import MySQLSource

        source = MySQLSource(connections["source"])
    table = table_config(s, case)
    stage = open_case_stage(s, case, connections["aws"])
    try:
        with Clock() as clock:
            result = extract(table, bench_window(case), source, stage)
    finally:
        source.close()
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": result.rows,
        "manifest_url": result.manifest_url,
        "files": result.files,
        "bytes": result.bytes,
        "phases": phases(result.timings, EXTRACT_PHASES),
    }


def ours_load(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    """``load()`` of a manifest (spec ``manifest_url``, ``case``, ``staged``)."""
    connections = pipeline_connections(s)  # first: see IMPORT_ORDER
    from ingestion.environments import Connection
    from ingestion.load import load
    from ingestion.warehouse import open_warehouse

    case = spec.get("case", "full")
    table = table_config(s, case)
    stage = open_case_stage(s, case, connections["aws"])
    if case == "embedded":
        # Imported before the clock, as duckdb_floor imports it (and as the README says of
        # every worker's imports): the driver's import is a process's cost, not a load's
        # (0.1-0.4 s here: its Python layer is compiled on every import, the venv holds no
        # bytecode).
        import duckdb  # noqa: F401

        duckdb_file = str(s.embedded_dir / "warehouse.duckdb")
        warehouse = open_warehouse(Connection("bench_duckdb", "duckdb", host=duckdb_file))
    else:
        warehouse = open_warehouse(connections["warehouse"])
    # staged: the path of a batch that must be merged (an incremental batch into a table
    # that holds rows, or any Redshift load): staging table, then the merge.
    staged = bool(spec.get("staged"))
    with Clock() as clock:
        result = load(table, spec["manifest_url"], bench_window(case), warehouse, stage, force_staging=staged)
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        # The rows the load took in (the batch's): what the row checks compare.
        "rows": result.rows_staged,
        "rows_inserted": result.rows_inserted,
        "rows_replaced": result.rows_replaced,
        "phases": phases(result.timings, LOAD_PHASES),
    }
