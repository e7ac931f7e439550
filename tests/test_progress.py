"""Progress lines of long extracts and loads, and ``python -m ingestion run`` over
several tables (``run all``, a failing table among others).

Expected row counts come from the SQLite source (``sqlite3``) and the DuckDB warehouse
(``duckdb``), table names from ``config/tables.yml`` (``yaml``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest
import yaml

from devtools import generate
from ingestion import cli as ingestion_cli
from ingestion import config, environments, pipeline
from ingestion.errors import ConfigError
from ingestion.extract import extract
from ingestion.progress import Progress
from ingestion.warehouse import StagedBatch
from tests.airflow_helpers import REPO_ROOT
from tests.embedded_helpers import interval, query
from tests.test_cli import use_embedded

LINE = re.compile(r"^(?P<label>.+): (?P<rows>[\d,]+)(?: of [\d,]+)? rows(?: \(\d+%\))?, "
                  r"(?P<mb>[\d.]+) MB, (?P<rate>[\d,]+) rows/s, (?P<elapsed>[\d.]+) s$")  # fmt: skip
DAY0 = ["--start", "2026-10-30", "--end", "2026-10-31"]


def sqlite_count(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f'select count(*) from "{table}"').fetchone()[0]
    finally:
        db.close()


def progress_lines(caplog: pytest.LogCaptureFixture, logger: str, label: str) -> list[re.Match]:
    found = [LINE.match(r.getMessage()) for r in caplog.records if r.name == logger]
    return [m for m in found if m is not None and m["label"] == label]


def as_int(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture
def one_day(embedded: environments.Environment) -> environments.Environment:
    """The embedded environment with day 0 of demo data, 1,000 sessions."""
    generate.generate(embedded.source, generate.DemoSpec(size=1000), 1)
    return embedded


def test_extract_with_interval_0_logs_every_batch_up_to_the_extracted_total(
    one_day: environments.Environment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = sqlite_count(Path(one_day.source.host), "session_timestamp")
    assert expected == 1000
    monkeypatch.setenv("PIPELINE_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(pipeline, "extract", functools.partial(extract, batch_rows=150))
    table = config.load_tables()["session_timestamp"]

    with caplog.at_level(logging.INFO, logger="ingestion.extract"):
        result = pipeline.run_extract(table, interval(0), one_day)

    lines = progress_lines(caplog, "ingestion.extract", "extract session_timestamp")
    rows = [as_int(m["rows"]) for m in lines]
    assert len(rows) == 7  # ceil(1000 / 150) batches, one line each
    assert rows == sorted(set(rows))  # strictly increasing
    assert rows[-1] == result.rows == expected
    megabytes = [float(m["mb"]) for m in lines]
    assert megabytes == sorted(megabytes) and megabytes[-1] > 0
    elapsed = [float(m["elapsed"]) for m in lines]
    assert elapsed == sorted(elapsed)


def test_a_short_extract_logs_no_progress_line_at_the_default_interval(
    one_day: environments.Environment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PIPELINE_PROGRESS_SECONDS", raising=False)
    monkeypatch.setattr(pipeline, "extract", functools.partial(extract, batch_rows=150))

    with caplog.at_level(logging.INFO, logger="ingestion.extract"):
        pipeline.run_extract(config.load_tables()["session_timestamp"], interval(0), one_day)

    assert progress_lines(caplog, "ingestion.extract", "extract session_timestamp") == []


def test_bulk_load_batches_are_counted_up_to_the_manifest_total(
    one_day: environments.Environment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = sqlite_count(Path(one_day.source.host), "session_timestamp")
    monkeypatch.setattr(pipeline, "extract", functools.partial(extract, batch_rows=150))
    extracted = pipeline.run_extract(config.load_tables()["session_timestamp"], interval(0), one_day)
    stage = pipeline.environment_stage(one_day)
    manifest = stage.read_manifest(extracted.manifest_url)
    columns = list(stage.open_parquet(manifest.entries[0].url).schema_arrow.names)
    logger = logging.getLogger("ingestion.load")
    progress = Progress(
        logger, "load raw_data.session_timestamp", interval=0, total_rows=manifest.record_count
    )

    with caplog.at_level(logging.INFO, logger="ingestion.load"):
        sent = sum(b.num_rows for b in StagedBatch(manifest, stage, columns, {}, progress).record_batches())

    rows = [
        as_int(m["rows"]) for m in progress_lines(caplog, "ingestion.load", "load raw_data.session_timestamp")
    ]
    assert len(rows) >= 2 and rows == sorted(set(rows))
    assert rows[-1] == sent == expected
    assert f"of {expected:,} rows (100%)" in caplog.records[-1].getMessage()


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_progress_interval_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PIPELINE_PROGRESS_SECONDS", value)

    with pytest.raises(ConfigError, match=r"PIPELINE_PROGRESS_SECONDS=.* must be a number of seconds"):
        Progress(logging.getLogger("ingestion.extract"), "extract nps")


# ------------------------------------------------------------------ run several tables


def raw_count(data_dir: Path, table: str) -> int:
    env = environments.resolve("embedded", env={"PIPELINE_DATA_DIR": str(data_dir)})
    return query(env, f"select count(*) as n from raw_data.{table}")[0]["n"]


def test_run_all_loads_every_table_of_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    use_embedded(monkeypatch, tmp_path)
    assert ingestion_cli.main(["generate", "--size", "50", "--days", "1"]) == 0
    capsys.readouterr()
    names = [e["name"] for e in yaml.safe_load((REPO_ROOT / "config" / "tables.yml").read_text())["tables"]]
    expected = {name: sqlite_count(tmp_path / "source.sqlite", name) for name in names}
    assert all(expected.values())

    status = ingestion_cli.main(["run", "all", *DAY0])

    out, err = capsys.readouterr()
    assert status == 0, err
    output = json.loads(out)
    assert [o["table"] for o in output] == names
    assert {o["table"]: o["extract"]["rows"] for o in output} == expected
    assert {o["table"]: o["load"]["rows_inserted"] for o in output} == expected
    assert {name: raw_count(tmp_path, name) for name in names} == expected
    summary = {
        line.split()[0]: line.split() for line in err.splitlines() if line.split()[:1] in ([n] for n in names)
    }
    for name in names:
        assert summary[name][1:3] == [f"{expected[name]:,}", f"{expected[name]:,}"]
        assert summary[name][-1] == "ok"


def test_a_failing_table_exits_2_and_the_other_table_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    use_embedded(monkeypatch, tmp_path)
    assert ingestion_cli.main(["generate", "--size", "50", "--days", "1"]) == 0
    capsys.readouterr()
    tables = tmp_path / "tables.yml"
    tables.write_text(
        "tables:\n"
        "  - name: ghost\n    source_table: no_such_table\n    primary_key: id\n    mode: full_refresh\n"
        "  - name: nps\n    primary_key: id\n    mode: incremental\n    cursor: modified_at\n"
        "    lookback: 2h\n"
    )
    expected = sqlite_count(tmp_path / "source.sqlite", "nps")

    status = ingestion_cli.main(["--config", str(tables), "run", "ghost", "nps", *DAY0])

    out, err = capsys.readouterr()
    assert status == 2
    ghost, nps = json.loads(out)
    assert ghost["table"] == "ghost" and "no_such_table" in ghost["error"]
    assert nps["table"] == "nps" and nps["load"]["rows_inserted"] == expected
    assert raw_count(tmp_path, "nps") == expected
    lines = err.splitlines()
    (ghost_line,) = [line for line in lines if line.startswith("ghost ")]
    assert "failed: " in ghost_line and "no_such_table" in ghost_line
    (nps_line,) = [line for line in lines if line.startswith("nps ")]
    assert nps_line.split()[-1] == "ok"
    assert lines[-1].startswith("error: 1 of 2 table(s) failed: ghost")
