"""Shared fixtures: an embedded environment in its own folder, and the real table config."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion import config, environments

REPO_ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its settings when first imported: point it at a throwaway home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="pipeline-tests-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[environments.Environment]:
    """SQLite source, local stage and DuckDB warehouse, all under a fresh folder; dropped after."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    yield environments.resolve("embedded", env={"PIPELINE_DATA_DIR": str(data_dir)})
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tables() -> dict[str, config.TableConfig]:
    """The replicated tables of the real ``config/tables.yml``."""
    return config.load_tables()
