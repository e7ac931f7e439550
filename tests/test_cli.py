"""The command line, ``python -m ingestion``: in a subprocess (what a user types) and
through ``ingestion.cli.main`` in this process.

Expected values come from the files the commands touch (SQLite counted with ``sqlite3``,
``config/tables.yml`` read with ``yaml``) or are written out literally.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingestion import cli as ingestion_cli
from ingestion.environments import Environment
from tests.airflow_helpers import REPO_ROOT
from tests.embedded_helpers import interval, raw_rows, window_rows

# What the user's shell may hold that would pick another world than the embedded one.
SELECTING = ("AIRFLOW_CONN_", "PIPELINE_", "DBT_TARGET")


# ------------------------------------------------------------------ in a subprocess


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SELECTING)}
    env["PIPELINE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "ingestion", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_run_prints_the_row_counts(source: Environment) -> None:
    expected = len(window_rows(source, "nps", interval(1)))

    done = cli(source.data_dir, "run", "nps", "--start", "2026-10-31", "--end", "2026-11-01")

    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["extract"]["rows"] == expected
    assert output["load"]["table"] == "nps"
    assert output["load"]["rows_staged"] == expected
    assert output["load"]["rows_inserted"] == expected
    assert len(raw_rows(source, "nps")) == expected


BAD_CONFIG = "tables:\n  - name: nps\n    primary_key: id\n    mode: incremental\n    cursor: modified_at\n"


@pytest.mark.parametrize(
    ("args", "config_text", "fragments"),
    [
        pytest.param(
            ["run", "nosuch"],
            None,
            ["table 'nosuch' is not in the table config", "known: nps, session_timestamp"],
            id="unknown-table",
        ),
        pytest.param(
            ["run", "nps"],
            BAD_CONFIG + "    lookbak: 2h\n",
            ["table 'nps'", "unknown key(s) lookbak"],
            id="unknown-key-in-config",
        ),
        pytest.param(
            ["run", "nps"],
            BAD_CONFIG.replace("name: nps", "name: 'nps; drop table x'"),
            ["table '#1'", "name 'nps; drop table x'", "not a plain identifier"],
            id="identifier-in-config",
        ),
    ],
)
def test_cli_error_exits_2_and_names_the_entry(
    source: Environment, tmp_path: Path, args: list[str], config_text: str | None, fragments: list[str]
) -> None:
    options = []
    if config_text is not None:
        (tmp_path / "bad.yml").write_text(config_text)
        options = ["--config", str(tmp_path / "bad.yml")]

    done = cli(source.data_dir, *options, *args, "--start", "2026-10-31", "--end", "2026-11-01")

    assert done.returncode == 2
    assert done.stdout == ""
    for fragment in fragments:
        assert fragment in done.stderr
    assert not (source.data_dir / "warehouse.duckdb").exists()


def test_cli_refuses_an_empty_window(source: Environment) -> None:
    done = cli(source.data_dir, "run", "nps", "--start", "2026-10-31", "--end", "2026-10-31")

    assert done.returncode == 2
    assert "is empty" in done.stderr
    assert not (source.data_dir / "warehouse.duckdb").exists()


def test_exec_passes_the_environment_variables_to_the_command(tmp_path: Path) -> None:
    show = "import json, os; print(json.dumps(dict(os.environ)))"

    done = cli(tmp_path, "exec", "--", sys.executable, "-c", show)

    assert done.returncode == 0, done.stderr
    assert_embedded_variables(json.loads(done.stdout), tmp_path)


def test_env_prints_exports_that_bash_evaluates(tmp_path: Path, monkeypatch, capsys) -> None:
    data_dir = tmp_path / "data dir with 'quotes' and $dollar"  # the exports must quote it
    data_dir.mkdir()
    use_embedded(monkeypatch, data_dir)

    assert ingestion_cli.main(["env"]) == 0

    exports = capsys.readouterr().out
    assert exports.splitlines() and all(line.startswith("export ") for line in exports.splitlines())
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SELECTING)}
    done = subprocess.run(
        ["bash", "-c", 'eval "$EXPORTS" && env -0'],
        env={**clean, "EXPORTS": exports}, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    variables = dict(item.split("=", 1) for item in done.stdout.split("\0") if item)
    assert_embedded_variables(variables, data_dir)


# ------------------------------------------------------------------ through cli.main


def use_embedded(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """The embedded environment with its files in ``data_dir``, whatever the shell holds."""
    for key in list(os.environ):
        if key.startswith(SELECTING):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data_dir))


def assert_embedded_variables(variables: dict[str, str], data_dir: Path) -> None:
    """The variables that define the embedded environment whose files are in ``data_dir``."""
    data_dir = data_dir.resolve()
    assert variables["PIPELINE_ENV"] == "embedded"
    assert variables["DBT_TARGET"] == "dev"
    assert variables["PIPELINE_STAGE_URI"] == str(data_dir / "stage")
    source = json.loads(variables["AIRFLOW_CONN_PIPELINE_SOURCE"])
    warehouse = json.loads(variables["AIRFLOW_CONN_PIPELINE_WAREHOUSE"])
    assert source == {"conn_type": "sqlite", "host": str(data_dir / "source.sqlite")}
    assert warehouse == {"conn_type": "duckdb", "host": str(data_dir / "warehouse.duckdb")}


def test_check_config_prints_each_table(capsys) -> None:
    entries = yaml.safe_load((REPO_ROOT / "config" / "tables.yml").read_text())["tables"]

    assert ingestion_cli.main(["check-config"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [[entry["name"], entry["mode"]] for entry in entries]
    for line, entry in zip(lines, entries, strict=True):
        assert f"key {entry['primary_key']}" in line
        if entry["mode"] == "incremental":
            assert f"cursor {entry['cursor']}" in line


def source_count(data_dir: Path, table: str) -> int:
    db = sqlite3.connect(data_dir / "source.sqlite")
    try:
        return db.execute(f'select count(*) from "{table}"').fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("table", ["nps", "session_timestamp", "user_session_channel"])
def test_run_prints_row_counts_equal_to_the_source_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, table: str
) -> None:
    use_embedded(monkeypatch, tmp_path)
    assert ingestion_cli.main(["generate", "--size", "50", "--days", "1"]) == 0
    capsys.readouterr()
    expected = source_count(tmp_path, table)
    assert expected > 0

    status = ingestion_cli.main(["run", table, "--start", "2026-10-30", "--end", "2026-10-31"])

    out, err = capsys.readouterr()
    assert status == 0, err
    output = json.loads(out)
    assert output["extract"]["table"] == output["load"]["table"] == table
    assert output["extract"]["rows"] == expected
    assert output["load"]["rows_staged"] == output["load"]["rows_inserted"] == expected


def test_unknown_table_exits_2_with_one_error_line_naming_it(tmp_path: Path, monkeypatch, capsys) -> None:
    use_embedded(monkeypatch, tmp_path)

    status = ingestion_cli.main(["run", "no_such_table", "--start", "2026-10-30", "--end", "2026-10-31"])

    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: ")
    assert "'no_such_table'" in line


def test_the_readmes_dbt_command_works_from_a_fresh_shell(tmp_path) -> None:
    """`cd dbt_project && ../.venv/bin/python -m ingestion exec -- ../.venv/bin/dbt ...` with no
    DBT_PROFILES_DIR set: exec points dbt at the project's profiles.yml."""
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "AIRFLOW_CONN_", "PIPELINE_"))}
    env.update(PIPELINE_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [str(bin_dir / "python"), "-m", "ingestion", "exec", "--", str(bin_dir / "dbt"), "parse",
         "--quiet", "--target-path", str(tmp_path / "target")],
        cwd=repo / "dbt_project", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "target" / "manifest.json").exists()
