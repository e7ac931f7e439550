"""The demo data generator: deterministic, day by day, with updates and soft deletes."""

from __future__ import annotations

from pathlib import Path

from devtools import generate
from devtools.generate import DemoSpec
from ingestion.environments import Connection, Environment
from tests.embedded_helpers import SPEC, interval, source_rows


def all_source_rows(env: Environment) -> dict[str, list[dict]]:
    return {table: source_rows(env, table) for table in generate.TABLES}


def environment_in(folder: Path) -> Environment:
    return Environment(
        name="embedded", source=Connection("pipeline_source", "sqlite", host=str(folder / "source.sqlite")),
        warehouse=Connection("pipeline_warehouse", "duckdb", host=str(folder / "warehouse.duckdb")),
        stage_uri=str(folder / "stage"), aws=None, data_dir=folder,
    )  # fmt: skip


def test_generator_same_seed_and_size_give_identical_rows(tmp_path: Path) -> None:
    first, second, other_seed = (environment_in(tmp_path / name) for name in ("a", "b", "c"))
    generate.generate(first.source, SPEC, 2)
    generate.generate(second.source, SPEC, 2)
    generate.generate(other_seed.source, DemoSpec(seed=7, size=100), 2)

    assert all_source_rows(first) == all_source_rows(second)
    assert all_source_rows(first) != all_source_rows(other_seed)
    assert len(all_source_rows(first)["session_timestamp"]) == 200


def test_generator_days_added_one_by_one_equal_days_written_at_once(tmp_path: Path) -> None:
    at_once, one_by_one = environment_in(tmp_path / "a"), environment_in(tmp_path / "b")
    generate.generate(at_once.source, SPEC, 3)
    for index in range(3):
        generate.generate(one_by_one.source, SPEC, 1, first_day=index, recreate=index == 0)

    assert all_source_rows(one_by_one) == all_source_rows(at_once)


def test_generator_later_days_update_and_soft_delete_earlier_rows(tmp_path: Path) -> None:
    day0, day2 = environment_in(tmp_path / "a"), environment_in(tmp_path / "b")
    generate.generate(day0.source, SPEC, 1)
    generate.generate(day2.source, SPEC, 3)
    first = {row["id"]: row for row in source_rows(day0, "nps")}
    later = {row["id"]: row for row in source_rows(day2, "nps")}

    assert sorted(first) == list(range(1, 11))
    assert sorted(later) == list(range(1, 31))
    assert not [row for row in first.values() if row["deleted"]]
    changed = [later[i] for i in first if later[i] != first[i]]
    assert changed, "days 1 and 2 must update rows of day 0"
    for row in changed:
        assert row["created_at"] == first[row["id"]]["created_at"]
        assert row["modified_at"] >= interval(1).start
    deleted = [row for row in later.values() if row["deleted"] == 1]
    assert deleted, "days 1 and 2 must soft-delete some earlier rows"
    assert all(row["modified_at"].date() > row["created_at"].date() for row in deleted)
    assert all(0 <= row["score"] <= 10 for row in later.values())
