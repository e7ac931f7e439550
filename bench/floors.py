"""The floors: the fastest open-source clients get the rows out of MariaDB and into
PostgreSQL (and DuckDB), measured on the same table in the same run.

* ``client_floor``: ``mariadb --quick -B ... -e "SELECT * FROM db.nps" > file`` (streamed,
  ``mysql_use_result``, tab-separated text), the wall time of that shell command;
* ``copy_floor``: ``psql -c "\\copy copy_floor_nps from 'dump' with (format text, header
  true)"``: that dump (PostgreSQL's text format already) into an empty table with the five
  column types of ``raw_data.nps``.

* ``cx_floor``: connectorx reading the same ``SELECT`` as Arrow (``arrow_stream``, batches of
  our extract's size), writing nothing;
* ``adbc_floor``: the ADBC PostgreSQL driver's ``adbc_ingest`` of our extract's Parquet parts
  into a new table;
* ``duckdb_floor``: DuckDB's ``insert ... select * from read_parquet()`` of the embedded
  extract's parts into a table of ``raw_data.nps``'s shape, committed and closed.

The two command-line floors run under GNU time when it is installed: the client's own
maximum RSS goes into the JSON as ``client_max_rss_mb``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Clock, command_max_rss_mb, timed_command
from bench.settings import ADBC_TABLE, COPY_TABLE, TABLE, Settings, pipeline_connections, stage_url


def client_floor(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    command = (
        f"mariadb --quick -B -h {s.mysql_host} -P {s.mysql_port} --protocol=TCP -u {s.mysql_user} "
        f'-e "SELECT * FROM {s.mysql_db}.{TABLE}" > {s.dump_path}'
    )
    env = dict(os.environ)
    if s.mysql_password:
        env["MYSQL_PWD"] = s.mysql_password
    rss_file = Path(s.workdir) / "client_floor.maxrss"
    clock, done = timed_command(["bash", "-c", command], env, rss_file)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited with {done.returncode}: {done.stderr.strip()}")
    lines = 0
    with open(s.dump_path, "rb") as dump:
        while chunk := dump.read(1 << 20):
            lines += chunk.count(b"\n")
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": lines - 1,  # the first line holds the column names
        "bytes": Path(s.dump_path).stat().st_size,
        "command": command,
        "client_max_rss_mb": command_max_rss_mb(rss_file),
    }


def copy_floor(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    # The client dump is PostgreSQL's text format already (tab-separated, \-escaped);
    # the first line holds the column names. Spec ``case`` "batch": the batch's dump.
    dump = s.batch_dump_path if spec.get("case") == "batch" else s.dump_path
    copy = f"\\copy {COPY_TABLE} from '{dump}' with (format text, header true)"
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.pg_host, "-p", str(s.pg_port)]
    command += ["-U", s.pg_user, "-d", s.pg_db, "-c", copy]
    env = dict(os.environ)
    if s.pg_password:
        env["PGPASSWORD"] = s.pg_password
    rss_file = Path(s.workdir) / "copy_floor.maxrss"
    clock, done = timed_command(command, env, rss_file)
    if done.returncode != 0:
        raise RuntimeError(f"psql {copy} exited with {done.returncode}: {done.stderr.strip()}")
    rows = None
    for line in done.stdout.splitlines():
        if line.startswith("COPY "):
            rows = int(line.split()[1])
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": rows,
        "command": copy,
        "client_max_rss_mb": command_max_rss_mb(rss_file),
    }


def cx_floor(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    """connectorx reads the same ``SELECT`` as Arrow record batches of our batch size; the
    batches are counted and dropped (nothing is written)."""
    import connectorx

    pipeline_connections(s)  # first: see IMPORT_ORDER in bench/ours.py
    from ingestion.extract import DEFAULT_BATCH_ROWS as BATCH_ROWS  # what our extract uses

    url = f"mysql://{s.mysql_user}{':' + s.mysql_password if s.mysql_password else ''}@"
    url += f"{s.mysql_host}:{s.mysql_port}/{s.mysql_db}"
    rows = 0
    with Clock() as clock:
        reader = connectorx.read_sql(
            url, f"SELECT * FROM {TABLE}", return_type="arrow_stream", batch_size=BATCH_ROWS
        )
        for batch in reader:
            rows += batch.num_rows
    return {"wall_s": clock.wall, "cpu_s": clock.cpu, "rows": rows, "batch_size": BATCH_ROWS}


def adbc_floor(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    """The ADBC PostgreSQL driver's ``adbc_ingest`` of our extract's Parquet parts (read
    from the S3 stage as a stream of record batches, as our load reads them) into a new
    table, committed."""
    import adbc_driver_postgresql.dbapi
    import pyarrow as pa

    connections = pipeline_connections(s)  # first: see IMPORT_ORDER in bench/ours.py
    from ingestion.stage import open_stage

    stage = open_stage(stage_url(s), connections["aws"])
    manifest = stage.read_manifest(spec["manifest_url"])
    schema = stage.open_parquet(manifest.entries[0].url).schema_arrow

    def batches() -> Any:
        for entry in manifest.entries:
            parquet = stage.open_parquet(entry.url)
            for index in range(parquet.num_row_groups):
                yield from parquet.read_row_group(index).to_batches()

    password = f":{s.pg_password}" if s.pg_password else ""
    uri = f"postgresql://{s.pg_user}{password}@{s.pg_host}:{s.pg_port}/{s.pg_db}"
    db = adbc_driver_postgresql.dbapi.connect(uri)
    try:
        with Clock() as clock:
            reader = pa.RecordBatchReader.from_batches(schema, batches())
            with db.cursor() as cursor:
                rows = cursor.adbc_ingest(ADBC_TABLE, reader, mode="create")
            db.commit()
    finally:
        db.close()
    return {"wall_s": clock.wall, "cpu_s": clock.cpu, "rows": rows, "columns": schema.names}


def duckdb_floor(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    """DuckDB's own ``insert into ... select * from read_parquet([...])`` of the embedded
    extract's parts into an empty table of a new DuckDB file, committed and closed.

    The work our load does to the same rows: the table has the shape of ``raw_data.nps``
    (the files' columns, then ``_loaded_at``, one value for every row, and ``_deleted_at``,
    NULL), and closing the connection is timed (DuckDB checkpoints the WAL into the file
    then, as at the end of our load). Opening the new file and creating the table are not."""
    import duckdb

    pipeline_connections(s)  # first: see IMPORT_ORDER in bench/ours.py
    from ingestion.stage import open_stage

    stage = open_stage(str(s.embedded_dir / "stage"))
    paths = [stage.path(entry.url) for entry in stage.read_manifest(spec["manifest_url"]).entries]
    path = s.embedded_dir / "duckdb_floor.duckdb"
    path.unlink(missing_ok=True)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    db = duckdb.connect(str(path))
    try:
        db.execute(
            "create table floor as select *, null::timestamp as _loaded_at, null::timestamp as _deleted_at\n"
            "from read_parquet(?) limit 0",
            [paths],
        )
        with Clock() as clock:
            db.execute("begin")
            db.execute("insert into floor select *, ?, null from read_parquet(?)", [loaded_at, paths])
            rows = int(db.fetchone()[0])
            db.execute("commit")
            db.close()
    finally:
        db.close()
    return {"wall_s": clock.wall, "cpu_s": clock.cpu, "rows": rows, "file": str(path)}
