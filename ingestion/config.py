"""Table config: read, validate, and expose the replicated tables.

The YAML file (``config/tables.yml``) is validated when it is read: an unknown
key, a missing primary key, an identifier that is not a plain name or an
incremental table without a cursor raises :class:`ConfigError` naming the entry
before any SQL runs.

Two kinds of names:

* ``name`` names the warehouse table, its dbt source and the load's temporary
  tables (``<name>__stage``, ``<name>__latest``): a plain identifier of at most
  55 characters, so that those fit PostgreSQL's 63-byte limit untruncated;
* ``source_schema``, ``source_table``, ``primary_key``, ``cursor`` and
  ``soft_delete`` name what already exists in MySQL, where a name may hold any
  character but NUL (backticks, quotes, ``;``, spaces, reserved words, non-ASCII
  letters): any non-empty text without NUL. Every identifier is quoted by its
  dialect's rule wherever SQL names it, so no name can become SQL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ingestion.batch import METADATA_COLUMNS
from ingestion.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "tables.yml"

# 55 = 63 (PostgreSQL's identifier bytes) - len("__latest"), the longest temporary-table suffix.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,54}$")
LOOKBACK = re.compile(r"^(\d+)\s*([smhd])$")
LOOKBACK_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MODES = ("incremental", "full_refresh")
#: What a load does when the source's columns changed (dbt's vocabulary; ingestion/schema_drift.py).
ON_SCHEMA_CHANGE = ("append_new_columns", "fail", "sync_all_columns")
#: Whether loads look for rows hard-deleted at the source (ingestion/reconcile.py).
HARD_DELETES = ("off", "reconcile")

ALLOWED_KEYS = {
    "name",
    "source_schema",
    "source_table",
    "primary_key",
    "mode",
    "cursor",
    "lookback",
    "soft_delete",
    "on_schema_change",
    "hard_deletes",
    "chunks",
}
#: Most primary-key ranges a table's extract may be split into (``chunks``).
MAX_CHUNKS = 64
#: The table config file to read instead of config/tables.yml (the DAG, its tasks, the CLI).
CONFIG_VARIABLE = "PIPELINE_TABLES_CONFIG"


@dataclass(frozen=True)
class TableConfig:
    """One replicated table."""

    name: str
    source_table: str
    primary_key: tuple[str, ...]
    mode: str
    source_schema: str | None = None
    cursor: str | None = None
    lookback: timedelta = timedelta(0)
    soft_delete: str | None = None
    on_schema_change: str = "append_new_columns"
    hard_deletes: str = "off"
    #: Primary-key ranges the extract is split into, each read by its own task
    #: (``ingestion/chunks.py``); 1 reads the table in one query.
    chunks: int = 1

    @property
    def is_incremental(self) -> bool:
        return self.mode == "incremental"


def _identifier(entry: str, key: str, value: Any) -> str:
    """The warehouse table's name: a plain identifier."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ConfigError(
            f"table {entry!r}: {key} {value!r} is not a plain identifier "
            "(letters, digits and _, not starting with a digit, at most 55 characters)"
        )
    return _not_metadata(entry, key, value)


def _source_name(entry: str, key: str, value: Any) -> str:
    """A MySQL schema, table or column name: any non-empty text without NUL (always quoted)."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfigError(
            f"table {entry!r}: {key} {value!r} must be a non-empty name without NUL characters "
            "(quote it in YAML when it is not plain text)"
        )
    return value


def _column(entry: str, key: str, value: Any) -> str:
    """A source column the config names (key, cursor, soft delete)."""
    return _not_metadata(entry, key, _source_name(entry, key, value))


def _not_metadata(entry: str, key: str, value: str) -> str:
    if value.lower() in METADATA_COLUMNS:
        raise ConfigError(f"table {entry!r}: {key} {value!r} is a reserved load-metadata name")
    return value


def parse_lookback(entry: str, value: Any) -> timedelta:
    """Parse ``30m``, ``2h``, ``1d`` (or a number of seconds) into a timedelta."""
    if isinstance(value, bool):
        raise ConfigError(f"table {entry!r}: lookback {value!r} is not a duration like 2h")
    if isinstance(value, int) and value >= 0:
        return timedelta(seconds=value)
    match = LOOKBACK.match(str(value).strip())
    if not match:
        raise ConfigError(f"table {entry!r}: lookback {value!r} is not a duration like 30m, 2h or 1d")
    return timedelta(**{LOOKBACK_UNITS[match.group(2)]: int(match.group(1))})


def parse_table(raw: Any, position: int) -> TableConfig:
    """Validate one entry of the ``tables`` list."""
    label = f"#{position + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"table entry {label}: expected a mapping, got {type(raw).__name__}")
    if "name" not in raw:
        raise ConfigError(f"table entry {label}: name missing")
    name = _identifier(label, "name", raw["name"])

    unknown = sorted(set(raw) - ALLOWED_KEYS)
    if unknown:
        raise ConfigError(
            f"table {name!r}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ALLOWED_KEYS))}"
        )

    if raw.get("primary_key") in (None, "", []):
        raise ConfigError(f"table {name!r}: primary_key missing")
    keys = raw["primary_key"]
    keys = [keys] if isinstance(keys, str) else keys
    if not isinstance(keys, list):
        raise ConfigError(f"table {name!r}: primary_key must be a column or a list of columns")
    primary_key = tuple(_column(name, "primary_key", k) for k in keys)
    if len(set(primary_key)) != len(primary_key):
        raise ConfigError(f"table {name!r}: primary_key lists a column twice")

    mode = raw.get("mode")
    if mode not in MODES:
        raise ConfigError(f"table {name!r}: mode {mode!r} must be one of {', '.join(MODES)}")

    cursor = raw.get("cursor")
    if mode == "incremental":
        if cursor is None:
            raise ConfigError(f"table {name!r}: mode incremental needs a cursor column (e.g. modified_at)")
        cursor = _column(name, "cursor", cursor)
        lookback = parse_lookback(name, raw.get("lookback", 0))
    else:
        for key in ("cursor", "lookback"):
            if key in raw:
                raise ConfigError(f"table {name!r}: {key} only applies to mode incremental")
        lookback = timedelta(0)

    source_schema = raw.get("source_schema")
    if source_schema is not None:
        source_schema = _source_name(name, "source_schema", source_schema)
    soft_delete = raw.get("soft_delete")
    if soft_delete is not None:
        soft_delete = _column(name, "soft_delete", soft_delete)
    on_schema_change = raw.get("on_schema_change", ON_SCHEMA_CHANGE[0])
    if on_schema_change not in ON_SCHEMA_CHANGE:
        raise ConfigError(
            f"table {name!r}: on_schema_change {on_schema_change!r} must be one of "
            f"{', '.join(ON_SCHEMA_CHANGE)}"
        )

    hard_deletes = raw.get("hard_deletes", "off")
    hard_deletes = "off" if hard_deletes is False else hard_deletes  # YAML reads a bare off as false
    if hard_deletes not in HARD_DELETES:
        raise ConfigError(
            f"table {name!r}: hard_deletes {hard_deletes!r} must be one of {', '.join(HARD_DELETES)}"
        )

    chunks = raw.get("chunks", 1)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or not 1 <= chunks <= MAX_CHUNKS:
        raise ConfigError(
            f"table {name!r}: chunks {chunks!r} must be a whole number from 1 to {MAX_CHUNKS} "
            "(primary-key ranges read in parallel; 1 reads the table in one query)"
        )

    return TableConfig(
        name=name,
        source_table=_source_name(name, "source_table", raw.get("source_table", name)),
        source_schema=source_schema,
        primary_key=primary_key,
        mode=mode,
        cursor=cursor,
        lookback=lookback,
        soft_delete=soft_delete,
        on_schema_change=on_schema_change,
        hard_deletes=hard_deletes,
        chunks=chunks,
    )


def parse_tables(document: Any, origin: str = "table config") -> dict[str, TableConfig]:
    """Validate a whole config document; return the tables by name, in file order."""
    if document is None:
        raise ConfigError(f"{origin} is empty; list the replicated tables under a top-level key 'tables'")
    if not isinstance(document, dict) or set(document) != {"tables"}:
        raise ConfigError(f"{origin}: expected one top-level key 'tables' holding a list")
    entries = document["tables"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{origin}: 'tables' must be a non-empty list")
    tables: dict[str, TableConfig] = {}
    for position, raw in enumerate(entries):
        table = parse_table(raw, position)
        if table.name in tables:
            raise ConfigError(f"table {table.name!r}: listed twice in {origin}")
        tables[table.name] = table
    return tables


def load_tables(path: str | Path | None = None) -> dict[str, TableConfig]:
    """Read and validate the table config file (default: ``$PIPELINE_TABLES_CONFIG``, else
    config/tables.yml)."""
    path = Path(path or os.environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG_PATH)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"table config {path} does not exist; give --config the path of tables.yml"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"table config {path} cannot be read: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"table config {path}: not valid YAML: {exc}") from None
    return parse_tables(document, origin=f"table config {path}")


def get_table(name: str, path: str | Path | None = None) -> TableConfig:
    tables = load_tables(path)
    if name not in tables:
        raise ConfigError(f"table {name!r} is not in the table config; known: {', '.join(tables)}")
    return tables[name]
