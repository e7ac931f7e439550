"""``stage-clean``: old attempts leave the stage, unloaded and newest loaded ones stay.

Each test makes attempts with chosen ids (``new_batch_id`` patched) through the real
extract and load, so their age and load status are known; what must remain is written
down from that, and the stage is read back with ``pathlib`` or the S3 listing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest

import ingestion.batch
from ingestion import cli as ingestion_cli
from ingestion import pipeline, retention
from ingestion.environments import Environment
from ingestion.errors import ConfigError
from ingestion.stage import open_stage
from ingestion.warehouse import open_warehouse
from tests.embedded_helpers import interval

NOW = datetime.now(UTC)
RECENT = NOW - timedelta(hours=1)


def attempt_id(when: datetime, suffix: str) -> str:
    return f"{when:%Y%m%dT%H%M%SZ}-{suffix}"


# nps, interval 0: two loaded attempts, one never loaded, one crashed (all old).
A1 = attempt_id(datetime(2020, 1, 1, 6), "0000000a")
A2 = attempt_id(datetime(2020, 1, 2, 6), "0000000b")
UNLOADED = attempt_id(datetime(2020, 1, 3, 6), "0000000c")
CRASHED = attempt_id(datetime(2020, 1, 4, 6), "0000000d")
# nps, interval 1: an old loaded attempt superseded by a recent loaded one, a recent crash.
B1 = attempt_id(datetime(2020, 1, 1, 7), "0000000e")
B2 = attempt_id(RECENT, "0000000f")
RECENT_CRASHED = attempt_id(RECENT, "00000010")

DAY0, DAY1 = interval(0).label, interval(1).label
EVERY_ATTEMPT = {
    f"nps/{DAY0}/{A1}", f"nps/{DAY0}/{A2}", f"nps/{DAY0}/{UNLOADED}", f"nps/{DAY0}/{CRASHED}",
    f"nps/{DAY1}/{B1}", f"nps/{DAY1}/{B2}", f"nps/{DAY1}/{RECENT_CRASHED}",
}  # fmt: skip
REMOVED_AFTER_7D = {f"nps/{DAY0}/{A1}", f"nps/{DAY0}/{CRASHED}", f"nps/{DAY1}/{B1}"}


def extract_as(monkeypatch, env: Environment, tables, index: int, batch_id: str) -> str:
    monkeypatch.setattr(ingestion.batch, "new_batch_id", lambda now=None: batch_id)
    return pipeline.run_extract(tables["nps"], interval(index), env).manifest_url


def make_attempts(monkeypatch, env: Environment, tables) -> None:
    stage = pipeline.environment_stage(env)
    for index, batch_id, load in [
        (0, A1, True),
        (0, A2, True),
        (0, UNLOADED, False),
        (1, B1, True),
        (1, B2, True),
    ]:
        manifest = extract_as(monkeypatch, env, tables, index, batch_id)
        if load:
            pipeline.run_load(tables["nps"], manifest, interval(index), env)
    for index, batch_id in [(0, CRASHED), (1, RECENT_CRASHED)]:
        manifest = extract_as(monkeypatch, env, tables, index, batch_id)
        stage.filesystem.delete_file(stage.path(manifest))


def folder_attempts(env: Environment) -> set[str]:
    root = Path(env.stage_uri)
    return {str(p.relative_to(root)) for p in root.glob("*/*/*") if p.is_dir()}


def s3_attempts(bucket: str, connection) -> set[str]:
    stage = open_stage(f"s3://{bucket}/stage", connection)
    infos = stage.filesystem.get_file_info(pafs.FileSelector(f"{bucket}/stage", recursive=True))
    prefix = f"{bucket}/stage/"
    return {
        "/".join(info.path.removeprefix(prefix).split("/")[:3])
        for info in infos
        if info.type == pafs.FileType.File
    }


def test_clean_removes_old_superseded_and_crashed_attempts_from_folder_stage(
    source, tables, monkeypatch
) -> None:
    make_attempts(monkeypatch, source, tables)
    assert folder_attempts(source) == EVERY_ATTEMPT
    crashed = Path(source.stage_uri) / "nps" / DAY0 / CRASHED
    crashed_bytes = sum(f.stat().st_size for f in crashed.rglob("*") if f.is_file())  # keys/ too

    report = retention.clean(
        pipeline.environment_stage(source), open_warehouse(source.warehouse), timedelta(days=7)
    )

    assert folder_attempts(source) == EVERY_ATTEMPT - REMOVED_AFTER_7D
    removed = {d.attempt.name: d for d in report.chosen(retention.REMOVE)}
    assert set(removed) == REMOVED_AFTER_7D
    assert removed[f"nps/{DAY0}/{CRASHED}"].attempt.bytes == crashed_bytes
    assert not removed[f"nps/{DAY0}/{CRASHED}"].attempt.has_manifest
    reasons = {d.attempt.name: d.reason for d in report.chosen(retention.KEEP)}
    assert "newest loaded" in reasons[f"nps/{DAY0}/{A2}"]
    assert "not loaded" in reasons[f"nps/{DAY0}/{UNLOADED}"]
    assert "newer than the limit" in reasons[f"nps/{DAY1}/{B2}"]


def test_cli_dry_run_lists_without_deleting_then_clean_deletes(source, tables, monkeypatch, capsys) -> None:
    make_attempts(monkeypatch, source, tables)
    for key in list(os.environ):
        if key.startswith(("AIRFLOW_CONN_", "PIPELINE_", "DBT_TARGET")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(source.data_dir))

    assert ingestion_cli.main(["--env", "embedded", "stage-clean", "--older-than", "7d", "--dry-run"]) == 0
    dry = capsys.readouterr().out.splitlines()
    assert folder_attempts(source) == EVERY_ATTEMPT
    assert sorted(line.split()[2] for line in dry if line.startswith("would remove nps/")) == sorted(
        REMOVED_AFTER_7D
    )
    assert dry[-1].startswith("would remove 3 attempts") and dry[-1].endswith("kept 4 attempts")

    assert ingestion_cli.main(["--env", "embedded", "stage-clean", "--older-than", "7d"]) == 0
    done = capsys.readouterr().out.splitlines()
    assert folder_attempts(source) == EVERY_ATTEMPT - REMOVED_AFTER_7D
    assert done[-1].startswith("removed 3 attempts")


def test_a_limit_longer_than_every_age_removes_nothing(source, tables, monkeypatch) -> None:
    make_attempts(monkeypatch, source, tables)
    stage, warehouse = pipeline.environment_stage(source), open_warehouse(source.warehouse)

    report = retention.clean(stage, warehouse, timedelta(days=365 * 100))

    assert report.chosen(retention.REMOVE) == []
    assert folder_attempts(source) == EVERY_ATTEMPT


def test_without_an_audit_table_nothing_counts_as_loaded(source, tables, monkeypatch) -> None:
    old = [attempt_id(datetime(2020, 1, day), "0000000a") for day in (1, 2)]
    for batch_id in old:
        extract_as(monkeypatch, source, tables, 0, batch_id)

    retention.clean(pipeline.environment_stage(source), open_warehouse(source.warehouse), timedelta(days=1))

    assert folder_attempts(source) == {f"nps/{DAY0}/{batch_id}" for batch_id in old}


def test_clean_removes_the_same_attempts_from_s3_stage(
    source, tables, monkeypatch, s3_bucket, s3_connection
) -> None:
    # The attempts are made and loaded on the folder stage (DuckDB loads from a folder
    # only), then copied to the bucket: the audit table names the same batch ids.
    make_attempts(monkeypatch, source, tables)
    stage = open_stage(f"s3://{s3_bucket}/stage", s3_connection)
    pafs.copy_files(source.stage_uri, f"{s3_bucket}/stage", destination_filesystem=stage.filesystem)
    assert s3_attempts(s3_bucket, s3_connection) == EVERY_ATTEMPT

    dry = retention.clean(stage, open_warehouse(source.warehouse), timedelta(days=7), dry_run=True)
    assert {d.attempt.name for d in dry.chosen(retention.REMOVE)} == REMOVED_AFTER_7D
    assert s3_attempts(s3_bucket, s3_connection) == EVERY_ATTEMPT

    retention.clean(stage, open_warehouse(source.warehouse), timedelta(days=7))

    assert s3_attempts(s3_bucket, s3_connection) == EVERY_ATTEMPT - REMOVED_AFTER_7D


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("7d", timedelta(days=7))],
)
def test_age_limits_read_like_lookback(text: str, expected: timedelta) -> None:
    assert retention.parse_age(text) == expected


def test_an_unreadable_age_limit_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--older-than '7 weeks'"):
        retention.parse_age("7 weeks")
