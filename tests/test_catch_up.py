"""Missed intervals are caught up: a run after a gap reads from the end of the table's
last loaded window; a backfill of an old interval and a first load widen nothing."""

from __future__ import annotations

import duckdb
import pytest

from devtools import generate
from ingestion import pipeline
from ingestion.environments import Environment
from tests.embedded_helpers import INCREMENTAL, SPEC, interval


def raw_keys(env: Environment, table: str, key: str) -> set:
    with duckdb.connect(env.warehouse.host, read_only=True) as db:
        return {row[0] for row in db.execute(f'select "{key}" from raw_data."{table}"').fetchall()}


def audit_windows(env: Environment, table: str) -> list[tuple]:
    with duckdb.connect(env.warehouse.host, read_only=True) as db:
        return db.execute(
            "select window_start, window_end from raw_data._load_audit "
            "where table_name = ? and status = 'succeeded' order by finished_at",
            [table],
        ).fetchall()


def load_interval(env: Environment, table: str, index: int) -> None:
    extracted = pipeline.run_extract(pipeline_table(table), interval(index), env, catch_up=True)
    pipeline.run_load(pipeline_table(table), extracted.manifest_url, interval(index), env)


def pipeline_table(name: str):
    from ingestion.config import get_table

    return get_table(name)


@pytest.fixture
def four_days(embedded: Environment) -> Environment:
    generate.generate(embedded.source, SPEC, 4)
    return embedded


KEY = {"nps": "id", "session_timestamp": "sessionid"}


@pytest.mark.parametrize("table", INCREMENTAL)
def test_a_run_after_missed_intervals_loads_their_rows(four_days: Environment, table: str) -> None:
    import sqlite3

    load_interval(four_days, table, 0)
    load_interval(four_days, table, 3)  # intervals 1 and 2 were missed

    with sqlite3.connect(four_days.source.host) as source:
        expected = {row[0] for row in source.execute(f'select "{KEY[table]}" from "{table}"')}
    assert raw_keys(four_days, table, KEY[table]) == expected
    # the audit row of the catching-up load records the widened window
    assert audit_windows(four_days, table) == [
        (interval(0).start, interval(0).end),
        (interval(1).start, interval(3).end),
    ]


def test_a_backfill_of_an_old_interval_widens_nothing(four_days: Environment) -> None:
    load_interval(four_days, "session_timestamp", 0)
    load_interval(four_days, "session_timestamp", 3)
    load_interval(four_days, "session_timestamp", 1)  # a backfill after the catch-up

    assert audit_windows(four_days, "session_timestamp")[-1] == (interval(1).start, interval(1).end)


def test_a_first_load_widens_nothing(four_days: Environment) -> None:
    load_interval(four_days, "session_timestamp", 2)

    assert audit_windows(four_days, "session_timestamp") == [(interval(2).start, interval(2).end)]


def test_a_full_refresh_table_is_never_widened(four_days: Environment) -> None:
    table = pipeline_table("user_session_channel")
    assert pipeline.catch_up_window(table, interval(3), four_days) == interval(3)
