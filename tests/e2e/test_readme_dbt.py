"""The README's dbt commands, as written, from a fresh shell.

Each ``bash`` block of README.md that runs dbt is run with ``bash -c`` from the
repository root, its ``cd`` lines and its dbt lines as they stand, in an
environment with no ``DBT_PROFILES_DIR``, no ``DBT_TARGET``, no connection
variables and a fresh ``HOME`` (what a new shell has), after the embedded
environment holds three days of loaded data. Only where the data and dbt's
output go is redirected (``PIPELINE_DATA_DIR``, ``DBT_TARGET_PATH``,
``DBT_LOG_PATH``), so the repository's own ``.data/`` and ``target/`` stay
untouched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from ingestion.pipeline import run_table
from tests.airflow_helpers import REPO_ROOT
from tests.embedded_helpers import interval

pytestmark = pytest.mark.e2e

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUNS_DBT = re.compile(r"(^|[\s/])dbt\s")
# What the test's own shell may hold that a new shell would not.
NOT_IN_A_NEW_SHELL = ("DBT_", "AIRFLOW_CONN_", "PIPELINE_")


def readme_dbt_commands(readme: Path) -> list[str]:
    """Per shell block that runs dbt: its ``cd`` and dbt lines, comments dropped, joined
    with ``&&`` (a failing ``cd`` stops the rest, as it would for the reader)."""
    commands = []
    for language, body in FENCE.findall(readme.read_text()):
        if language not in ("bash", "sh", "shell", "console"):
            continue
        lines = [line.split(" #", 1)[0].strip() for line in body.splitlines()]
        kept = [line for line in lines if RUNS_DBT.search(line) or re.match(r"cd\s+\S+$", line)]
        if any(RUNS_DBT.search(line) for line in kept):
            while kept and not RUNS_DBT.search(kept[-1]):
                kept.pop()  # a cd after the last dbt line changes nothing
            commands.append(" && ".join(kept))
    return commands


def test_the_readmes_dbt_commands_are_found():
    commands = readme_dbt_commands(REPO_ROOT / "README.md")
    assert "cd dbt_project && ../.venv/bin/python -m ingestion exec -- ../.venv/bin/dbt build" in commands


def test_the_readmes_dbt_commands_work_pasted_into_a_new_shell(source, tables, tmp_path):
    for table in tables.values():
        for day in range(3):
            run_table(table, interval(day), source)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_IN_A_NEW_SHELL)}
    env.update(
        HOME=str(home),
        PIPELINE_DATA_DIR=str(source.data_dir),
        DBT_TARGET_PATH=str(tmp_path / "dbt-target"),
        DBT_LOG_PATH=str(tmp_path / "dbt-logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
    )

    commands = readme_dbt_commands(REPO_ROOT / "README.md")
    assert commands
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}{done.stderr[-2000:]}"

    results = json.loads((tmp_path / "dbt-target" / "run_results.json").read_text())
    statuses = {result["unique_id"]: result["status"] for result in results["results"]}
    assert "model.analytics.mau_summary" in statuses
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    assert not (home / ".dbt").exists()
