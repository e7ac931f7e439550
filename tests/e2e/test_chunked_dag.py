"""A table with ``chunks: 2`` under `airflow dags test`: a plan task, mapped extracts, one
load; every key lands once. The source pool is not created here: `dags test` runs the
tasks without the scheduler's pool slots, so the tests need no Airflow setup of their own."""

from __future__ import annotations

import sqlite3
from datetime import date

import duckdb
import pytest
import yaml

from tests.airflow_helpers import BIN, REPO_ROOT, dags_test, pipeline_env, prepare_airflow, run

pytestmark = pytest.mark.e2e

START = date(2026, 10, 30)
KEYS = {"nps": "id", "session_timestamp": "sessionid", "user_session_channel": "sessionid"}


def test_chunked_tables_render_mapped_extracts_and_land_each_key_once(tmp_path):
    document = yaml.safe_load((REPO_ROOT / "config" / "tables.yml").read_text())
    for entry in document["tables"]:
        if entry["name"] != "nps":  # nps stays one extract task, as without chunks
            entry["chunks"] = 2
    tables = tmp_path / "tables.yml"
    tables.write_text(yaml.safe_dump(document))
    env = pipeline_env(tmp_path, "embedded", PIPELINE_TABLES_CONFIG=str(tables))
    run([str(BIN / "python"), "-m", "ingestion", "generate", "--size", "200", "--days", "1",
         "--start", START.isoformat()], env)  # fmt: skip
    prepare_airflow(env)

    output = dags_test(START, env)

    for name in ("session_timestamp", "user_session_channel"):
        assert f"starting task_id=plan_chunks_{name} map_index=-1" in output
        for map_index in (0, 1):
            assert f"starting task_id=extract_{name} map_index={map_index}" in output
        assert f"starting task_id=extract_{name} map_index=2" not in output
        assert f"combine {name}: 2 chunk(s)" in output
    assert "starting task_id=extract_nps map_index=-1" in output and "plan_chunks_nps" not in output

    source = sqlite3.connect(tmp_path / "data" / "source.sqlite")
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as warehouse:
        for name, key in KEYS.items():
            expected = sorted(k for (k,) in source.execute(f"select {key} from {name}"))
            landed = sorted(k for (k,) in warehouse.execute(f"select {key} from raw_data.{name}").fetchall())
            assert landed == expected, name  # every key once: no duplicate, none missing
    source.close()
