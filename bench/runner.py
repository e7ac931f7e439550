"""One benchmark run: set up, N rounds of the measurements, check the rows, report, clean up.

1. creates the MariaDB source table and the PostgreSQL database (``bench.fixtures``) and
   starts the S3 server with a fresh bucket;
2. runs the measurements in rounds, each in its own worker process (``bench.measure``),
   and checks the rows each one left (``bench.verify``);
3. keeps the fastest run of each, prints the table and writes the JSON (``bench.report``);
4. drops both databases and the work dir (unless ``keep``), also after an error or Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fixtures, peer, reconcile
from bench.measure import Measurement, ServerCpu, measure_on_machine, rounded
from bench.report import machine_info, render, write_results
from bench.settings import ORDER, REPO_ROOT, TABLE, Settings, settings_from
from bench.targets import evaluate, ratios
from bench.verify import verify_rows


@dataclass(frozen=True)
class Options:
    """The command line (see bench/run.py)."""

    rows: int = 1_000_000
    repeat: int = 3
    skip_peer: bool = False
    keep: bool = False
    s3_port: int = 0
    ingestion_root: str | None = None  # an absolute path, checked by the caller


@dataclass(frozen=True)
class Round:
    """What every round measures with: the settings, the workers' environments, the source's
    checksum and the servers to account CPU to."""

    settings: Settings
    env: dict[str, str]
    peer_env: dict[str, str]
    peer_site: str | None
    skip_peer: bool
    expected: dict[str, Any]
    servers: ServerCpu

    def record(self, name: str, env: dict[str, str], **extra: Any) -> Measurement:
        lsn = fixtures.wal_lsn(self.settings)
        measurement = measure_on_machine(name, self.settings, env, self.servers, **extra)
        measurement.detail["wal_mb"] = fixtures.wal_mb_since(self.settings, lsn)
        verify_rows(measurement, self.settings, self.expected)
        return measurement

    def run(self) -> Iterator[Measurement]:
        """One measurement of each kind, in a fixed order (ORDER), each yielded when done (an
        interrupted round keeps the ones before)."""
        client = self.record("client_floor", self.env)
        yield client
        yield self.record("cx_floor", self.env)
        if client.ok:
            fixtures.reset_warehouse(self.settings, copy_table=True)
            yield self.record("copy_floor", self.env)
        else:
            yield Measurement("copy_floor", error="needs the client_floor dump")
        extracted = self.record("ours_extract", self.env)
        yield extracted
        yield from self.loads(extracted)
        yield from self.incremental()
        yield from reconcile.measure(self.record, self.env, extracted, self.has_full_table())
        yield from self.embedded()
        yield self.record("dag_parse", self.parse_env)
        if self.skip_peer:
            yield Measurement("sql_to_s3_operator", skipped="--skip-peer")
        else:
            yield self.record(
                "sql_to_s3_operator", self.peer_env, key=peer.PEER_KEY, peer_site=self.peer_site
            )

    @property
    def parse_env(self) -> dict[str, str]:
        """As a deployed DAG processor parses: with the bytecode caches Python writes."""
        return {k: v for k, v in self.peer_env.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def warm_up(self) -> None:
        """One parse of the DAG file before the rounds, not reported: a DAG processor parses
        it every 30 s, always with the bytecode of Airflow, Cosmos and ours compiled; the
        first parse after an install that did not compile it (``uv pip install`` without
        ``--compile-bytecode``) compiles it (~1 s more)."""
        measure_on_machine("dag_parse", self.settings, self.parse_env, self.servers)

    def loads(self, extracted: Measurement) -> Iterator[Measurement]:
        """The floors and our loads of the full extract; the last leaves raw_data.nps full."""
        names = ("adbc_floor", "ours_load", "ours_load_staged")
        if not extracted.ok:
            for name in names:
                yield Measurement(name, error="needs the ours_extract manifest")
            return
        manifest_url = extracted.detail["manifest_url"]
        yield self.record("adbc_floor", self.env, manifest_url=manifest_url)
        fixtures.reset_warehouse(self.settings, copy_table=False)  # an empty raw_data.nps each time
        yield self.record("ours_load", self.env, manifest_url=manifest_url)
        fixtures.reset_warehouse(self.settings, copy_table=False)
        yield self.record("ours_load_staged", self.env, manifest_url=manifest_url, staged=True)

    def incremental(self) -> Iterator[Measurement]:
        """The incremental batch (1% updates, 1% new) merged into the full table and its
        COPY floor, then an incremental day (0.1%) extracted and loaded."""
        batch = self.record("ours_batch_extract", self.env, case="batch")
        yield batch
        fixtures.prepare_batch_floor(self.settings)  # the full table copy_floor left, key-indexed
        yield self.record("copy_batch_floor", self.env, case="batch")
        if batch.ok and self.has_full_table():
            yield self.record("ours_merge", self.env, case="batch", manifest_url=batch.detail["manifest_url"])
        else:
            yield Measurement("ours_merge", error="needs the batch's manifest and the full raw_data.nps")
        day = self.record("ours_day_extract", self.env, case="day")
        yield day
        if day.ok and self.has_full_table():
            yield self.record("ours_day_load", self.env, case="day", manifest_url=day.detail["manifest_url"])
        else:
            yield Measurement("ours_day_load", error="needs the day's manifest and the full raw_data.nps")

    def has_full_table(self) -> bool:
        return fixtures.raw_table_exists(self.settings)

    def embedded(self) -> Iterator[Measurement]:
        """SQLite -> folder stage -> DuckDB, and DuckDB's own read_parquet insert."""
        fixtures.reset_embedded(self.settings)
        extracted = self.record("ours_embedded_extract", self.env, case="embedded")
        yield extracted
        if not extracted.ok:
            for name in ("ours_embedded_load", "duckdb_floor"):
                yield Measurement(name, error="needs the ours_embedded_extract manifest")
            return
        manifest_url = extracted.detail["manifest_url"]
        yield self.record("ours_embedded_load", self.env, case="embedded", manifest_url=manifest_url)
        yield self.record("duckdb_floor", self.env, case="embedded", manifest_url=manifest_url)


def best(runs: list[Measurement]) -> Measurement:
    """The fastest of the repeated runs (an error in any run is reported instead)."""
    failed = [m for m in runs if not m.ok and not m.skipped]
    if failed or runs[0].skipped:
        return failed[0] if failed else runs[0]
    chosen = min(runs, key=lambda m: m.wall_s or 0.0)
    chosen.detail["walls_s"] = [round(m.wall_s or 0.0, 3) for m in runs]
    return chosen


def run(options: Options) -> int:
    settings = settings_from(options.rows, options.ingestion_root)
    started_at = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{settings.run_id}-"))
    settings = settings.with_(workdir=str(workdir))
    created: set[str] = set()
    rounds: dict[str, list[Measurement]] = {name: [] for name in ORDER}
    setup_error: str | None = None
    generation_s = None
    peer_site = None
    expected: dict[str, Any] = {}
    print(f"bench: run {settings.run_id}: {settings.rows:,} rows, work dir {workdir}", flush=True)
    try:
        created.add("mysql")
        clock = time.perf_counter()
        expected = {"full": {"rows": settings.rows, **fixtures.create_source(settings)}}
        expected.update(fixtures.create_cases(settings))
        generation_s = time.perf_counter() - clock
        print(
            f"bench: generated {settings.mysql_db}.{TABLE} ({settings.rows:,} rows) in {generation_s:.1f} s"
        )
        print(
            "bench: cases: " + ", ".join(f"{case} {sums['rows']:,} rows" for case, sums in expected.items())
        )
        created.add("postgres")
        fixtures.create_warehouse(settings)
        if not options.skip_peer:
            peer_site = peer.ensure_peer_site()
        port = options.s3_port or fixtures.free_port()
        with fixtures.s3_server(settings, port) as settings:
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            airflow_home = workdir / "airflow"
            (airflow_home / "dags").mkdir(parents=True)
            measuring = Round(
                settings=settings,
                env=env,
                peer_env={**env, **peer.airflow_env(settings, airflow_home)},
                peer_site=peer_site,
                skip_peer=options.skip_peer,
                expected=expected,
                servers=ServerCpu(port),
            )
            measuring.warm_up()
            for round_number in range(1, options.repeat + 1):
                if options.repeat > 1:
                    print(f"bench: round {round_number} of {options.repeat}", flush=True)
                for measurement in measuring.run():
                    rounds[measurement.name].append(measurement)
    except BaseException as exc:
        setup_error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        if isinstance(exc, KeyboardInterrupt):
            print("bench: interrupted", file=sys.stderr)
    finally:
        if options.keep:
            print(
                f"bench: --keep: MariaDB {settings.mysql_db}, PostgreSQL {settings.pg_db}, work dir {workdir}"
            )
        else:
            fixtures.drop_databases(settings, created)
            shutil.rmtree(workdir, ignore_errors=True)

    measurements = {name: best(runs) for name, runs in rounds.items() if runs}
    skipped = {m.name for m in measurements.values() if m.skipped}
    values = ratios(measurements)
    checks = evaluate(values, skipped)
    print(render(settings.rows, measurements, checks, options.repeat))
    errors = [f"{m.name}: {m.error}" for m in measurements.values() if not m.ok and not m.skipped]
    if setup_error:
        errors.insert(0, f"setup: {setup_error}")
    document = {
        "rows": settings.rows,
        "run_id": settings.run_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "generation_s": rounded(generation_s, 3),
        "source_checksum": expected,
        "options": {
            "skip_peer": options.skip_peer,
            "keep": options.keep,
            "repeat": options.repeat,
            "ingestion_root": options.ingestion_root,
        },
        "machine": machine_info(settings, peer.pandas_version(peer_site)),
        "measurements": {name: m.as_dict() for name, m in measurements.items()},
        "ratios": {k: rounded(v, 3) for k, v in values.items()},
        "targets": checks,
        "errors": errors,
    }
    path, latest = write_results(document, settings.rows, f"{started_at:%Y%m%dT%H%M%SZ}")
    print(f"bench: results written to {path.relative_to(REPO_ROOT)} and {latest.relative_to(REPO_ROOT)}")
    if errors:
        print("bench: FAILED:", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0
