"""The table config: valid entries parse, every invalid one names the entry and the problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from ingestion import config
from ingestion.config import TableConfig
from ingestion.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_SOURCES = REPO_ROOT / "dbt_project" / "models" / "staging" / "app" / "_app__sources.yml"

VALID_CONFIG = """
tables:
  - name: nps
    primary_key: id
    mode: incremental
    cursor: modified_at
    lookback: 2h
    soft_delete: deleted
  - name: order_lines
    source_schema: shop
    source_table: OrderLines
    primary_key: [order_id, line_no]
    mode: incremental
    cursor: updated_at
  - name: user_session_channel
    primary_key: sessionid
    mode: full_refresh
"""


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tables.yml"
    path.write_text(text)
    return path


def test_valid_config_parses_into_table_configs(tmp_path: Path) -> None:
    tables = config.load_tables(write_config(tmp_path, VALID_CONFIG))

    assert list(tables) == ["nps", "order_lines", "user_session_channel"]
    assert tables["nps"] == TableConfig(
        name="nps",
        source_table="nps",
        primary_key=("id",),
        mode="incremental",
        cursor="modified_at",
        lookback=timedelta(hours=2),
        soft_delete="deleted",
    )
    assert tables["order_lines"] == TableConfig(
        name="order_lines",
        source_schema="shop",
        source_table="OrderLines",
        primary_key=("order_id", "line_no"),
        mode="incremental",
        cursor="updated_at",
        lookback=timedelta(0),
    )
    assert tables["user_session_channel"] == TableConfig(
        name="user_session_channel",
        source_table="user_session_channel",
        primary_key=("sessionid",),
        mode="full_refresh",
    )
    assert tables["nps"].is_incremental
    assert not tables["user_session_channel"].is_incremental


def test_real_table_config_parses() -> None:
    tables = config.load_tables()

    assert tables["nps"] == TableConfig(
        name="nps",
        source_table="nps",
        primary_key=("id",),
        mode="incremental",
        cursor="modified_at",
        lookback=timedelta(hours=2),
        soft_delete="deleted",
        hard_deletes="reconcile",
    )
    assert all(table.hard_deletes == "reconcile" for table in tables.values())
    assert tables["session_timestamp"].primary_key == ("sessionid",)
    assert tables["session_timestamp"].cursor == "ts"
    assert tables["user_session_channel"].mode == "full_refresh"
    assert tables["user_session_channel"].cursor is None


@pytest.mark.parametrize(
    ("lookback", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("45s", timedelta(seconds=45)),
        ("2 h", timedelta(hours=2)),
        (90, timedelta(seconds=90)),
        (0, timedelta(0)),
    ],
)
def test_lookback_accepts_durations(lookback: object, expected: timedelta) -> None:
    assert config.parse_lookback("nps", lookback) == expected


def entry(**changes: object) -> dict:
    """A valid incremental entry with some keys changed (None removes the key)."""
    raw = {
        "name": "nps",
        "primary_key": "id",
        "mode": "incremental",
        "cursor": "modified_at",
        "lookback": "2h",
    }
    raw.update(changes)
    return {key: value for key, value in raw.items() if value is not None}


FULL_REFRESH = {"name": "usc", "primary_key": "sessionid", "mode": "full_refresh"}

INVALID_ENTRIES = [
    ("unknown key", [entry(primay_key="id")], ["table 'nps'", "unknown key(s) primay_key"]),
    ("two unknown keys", [entry(sort="x", dist="y")], ["table 'nps'", "unknown key(s) dist, sort"]),
    ("missing primary key", [entry(primary_key=None)], ["table 'nps'", "primary_key missing"]),
    ("empty primary key", [entry(primary_key=[])], ["table 'nps'", "primary_key missing"]),
    (
        "primary key not a list",
        [entry(primary_key={"id": 1})],
        ["table 'nps'", "primary_key must be a column or a list"],
    ),
    (
        "primary key listed twice",
        [entry(primary_key=["id", "id"])],
        ["table 'nps'", "primary_key lists a column twice"],
    ),
    (
        "name with SQL in it",
        [entry(name="nps; drop table x")],
        ["table '#1'", "name 'nps; drop table x'", "not a plain identifier"],
    ),
    ("name starting with a digit", [entry(name="1nps")], ["'1nps'", "not a plain identifier"]),
    ("name of 56 characters", [entry(name="n" * 56)], ["not a plain identifier", "at most 55"]),
    # Source names may be any MySQL name (tests/test_hostile_names.py), but not empty or NUL.
    (
        "primary key column with an empty name",
        [entry(primary_key=["id", ""])],
        ["table 'nps'", "primary_key ''", "must be a non-empty name without NUL"],
    ),
    (
        "cursor with a NUL in it",
        [entry(cursor="modified\0at")],
        ["table 'nps'", "cursor 'modified\\x00at'", "must be a non-empty name without NUL"],
    ),
    (
        "source table empty",
        [entry(source_table="")],
        ["table 'nps'", "source_table ''", "must be a non-empty name"],
    ),
    (
        "source schema not text",
        [entry(source_schema=5)],
        ["table 'nps'", "source_schema 5", "must be a non-empty name"],
    ),
    (
        "soft delete named like load metadata",
        [entry(soft_delete="_Batch_Id")],
        ["table 'nps'", "soft_delete '_Batch_Id'", "reserved load-metadata name"],
    ),
    (
        "cursor named like load metadata",
        [entry(cursor="_loaded_at")],
        ["table 'nps'", "cursor '_loaded_at'", "reserved load-metadata name"],
    ),
    ("missing name", [{"primary_key": "id", "mode": "full_refresh"}], ["table entry #1", "name missing"]),
    ("entry not a mapping", ["nps"], ["table entry #1", "expected a mapping"]),
    (
        "incremental without cursor",
        [entry(cursor=None, lookback=None)],
        ["table 'nps'", "mode incremental needs a cursor column"],
    ),
    ("lookback in words", [entry(lookback="2 hours")], ["table 'nps'", "lookback '2 hours'", "duration"]),
    ("negative lookback", [entry(lookback="-1h")], ["table 'nps'", "lookback '-1h'"]),
    ("fractional lookback", [entry(lookback="1.5h")], ["table 'nps'", "lookback '1.5h'"]),
    ("negative seconds lookback", [entry(lookback=-5)], ["table 'nps'", "lookback -5"]),
    ("boolean lookback", [entry(lookback=True)], ["table 'nps'", "lookback True"]),
    (
        "mode typo",
        [entry(mode="incremantal")],
        ["table 'nps'", "mode 'incremantal'", "must be one of incremental, full_refresh"],
    ),
    ("mode missing", [entry(mode=None)], ["table 'nps'", "mode None", "must be one of"]),
    ("duplicate table", [entry(), entry()], ["table 'nps'", "listed twice"]),
    (
        "cursor on full refresh",
        [{**FULL_REFRESH, "cursor": "modified_at"}],
        ["table 'usc'", "cursor only applies to mode incremental"],
    ),
    (
        "lookback on full refresh",
        [{**FULL_REFRESH, "lookback": "2h"}],
        ["table 'usc'", "lookback only applies to mode incremental"],
    ),
]


@pytest.mark.parametrize(
    ("entries", "fragments"),
    [pytest.param(entries, fragments, id=case) for case, entries, fragments in INVALID_ENTRIES],
)
def test_invalid_entry_names_the_entry_and_the_problem(entries: list, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        config.parse_tables({"tables": entries})

    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"tables": []}, id="empty list"),
        pytest.param({"table": [FULL_REFRESH]}, id="misspelt top-level key"),
        pytest.param({"tables": [FULL_REFRESH], "extra": 1}, id="second top-level key"),
        pytest.param([FULL_REFRESH], id="list at top level"),
        pytest.param(None, id="empty file"),
    ],
)
def test_invalid_document_shape_is_refused(document: object) -> None:
    with pytest.raises(ConfigError, match="'tables'"):
        config.parse_tables(document, origin="tables.yml")


def test_invalid_entry_in_a_file_is_refused_before_any_sql(tmp_path: Path) -> None:
    path = write_config(tmp_path, "tables:\n  - name: nps\n    primary_key: id\n    mode: full\n")

    with pytest.raises(ConfigError, match=r"table 'nps': mode 'full' must be one of"):
        config.load_tables(path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(None, "does not exist", id="missing file"),
        pytest.param("tables: [nps\n", "not valid YAML", id="broken YAML"),
    ],
)
def test_unreadable_config_file_names_the_path(tmp_path: Path, text: str | None, fragment: str) -> None:
    path = tmp_path / "tables.yml"
    if text is not None:
        path.write_text(text)

    with pytest.raises(ConfigError) as raised:
        config.load_tables(path)

    assert str(path) in str(raised.value)
    assert fragment in str(raised.value)


def test_unknown_table_lists_the_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, VALID_CONFIG)

    with pytest.raises(ConfigError) as raised:
        config.get_table("nosuch", path)

    assert "table 'nosuch' is not in the table config" in str(raised.value)
    assert "nps, order_lines, user_session_channel" in str(raised.value)


def test_every_configured_table_has_a_dbt_source_and_vice_versa() -> None:
    configured = {entry["name"] for entry in yaml.safe_load(config.DEFAULT_CONFIG_PATH.read_text())["tables"]}
    sources = yaml.safe_load(DBT_SOURCES.read_text())["sources"]
    app = [source for source in sources if source["name"] == "app"]
    assert len(app) == 1, "dbt source 'app' must be declared exactly once"
    declared = [table["name"] for table in app[0]["tables"]]

    assert len(declared) == len(set(declared)), f"dbt source 'app' lists a table twice: {declared}"
    assert sorted(configured - set(declared)) == [], "tables in config/tables.yml without a dbt source"
    assert sorted(set(declared) - configured) == [], "dbt sources of app not in config/tables.yml"
    assert configured == set(config.load_tables())
