"""The exact SQL a Redshift load runs, for a single-key and a composite-key table."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from ingestion.batch import Batch
from ingestion.config import TableConfig
from ingestion.environments import Connection
from ingestion.errors import LoadError
from ingestion.load import loads_straight_into_target
from ingestion.warehouse import sql
from ingestion.warehouse.redshift import RedshiftWarehouse, copy_sql

NPS = TableConfig(
    name="nps",
    source_table="nps",
    primary_key=("id",),
    mode="incremental",
    cursor="modified_at",
    lookback=timedelta(hours=2),
    soft_delete="deleted",
)
NPS_COLUMNS = ["id", "created_at", "modified_at", "score", "deleted", "_batch_id", "_extracted_at"]
NPS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int32(), metadata={"source_type": "INT"}),
        pa.field("created_at", pa.timestamp("us"), metadata={"source_type": "DATETIME"}),
        pa.field("modified_at", pa.timestamp("us"), metadata={"source_type": "DATETIME"}),
        pa.field("score", pa.int16(), metadata={"source_type": "TINYINT"}),
        pa.field("deleted", pa.int16(), metadata={"source_type": "TINYINT(1)"}),
        pa.field("_batch_id", pa.string()),
        pa.field("_extracted_at", pa.timestamp("us")),
    ]
)

# A composite key, incremental: order lines keyed by (order_id, line_no).
LINES = TableConfig(
    name="order_lines",
    source_table="order_lines",
    primary_key=("order_id", "line_no"),
    mode="incremental",
    cursor="updated_at",
)
LINES_COLUMNS = ["order_id", "line_no", "sku", "updated_at", "_batch_id", "_extracted_at"]
LINES_SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.decimal128(20, 0), metadata={"source_type": "bigint(20) unsigned"}),
        pa.field("line_no", pa.int16(), metadata={"source_type": "smallint"}),
        pa.field("sku", pa.string(), metadata={"source_type": "varchar(40)"}),
        pa.field("updated_at", pa.timestamp("us"), metadata={"source_type": "datetime(6)"}),
        pa.field("_batch_id", pa.string()),
        pa.field("_extracted_at", pa.timestamp("us")),
    ]
)

# A composite key, full refresh: no cursor, so the sort key is the first key column.
CHANNELS = TableConfig(
    name="user_session_channel",
    source_table="user_session_channel",
    primary_key=("userid", "sessionid"),
    mode="full_refresh",
)
CHANNELS_COLUMNS = ["userid", "sessionid", "channel", "_batch_id", "_extracted_at"]
CHANNELS_SCHEMA = pa.schema(
    [
        pa.field("userid", pa.int32(), metadata={"source_type": "INT"}),
        pa.field("sessionid", pa.string(), metadata={"source_type": "VARCHAR(32)"}),
        pa.field("channel", pa.string(), metadata={"source_type": "VARCHAR(32)"}),
        pa.field("_batch_id", pa.string()),
        pa.field("_extracted_at", pa.timestamp("us")),
    ]
)

MANIFEST_URL = (
    "s3://pipeline-stage/stage/nps/20261030T000000Z_20261031T000000Z/20261031T010203Z-1a2b3c4d/manifest.json"
)
IAM_ROLE = "arn:aws:iam::123456789012:role/redshift-stage-reader"
REDSHIFT = RedshiftWarehouse(Connection("pipeline_warehouse", "redshift", extra={"iam_role": IAM_ROLE}))


@pytest.mark.parametrize(
    ("table", "manifest_url", "iam_role", "expected"),
    [
        pytest.param(
            NPS,
            MANIFEST_URL,
            IAM_ROLE,
            'copy "nps__stage"\n'
            "from 's3://pipeline-stage/stage/nps/20261030T000000Z_20261031T000000Z/"
            "20261031T010203Z-1a2b3c4d/manifest.json'\n"
            "iam_role 'arn:aws:iam::123456789012:role/redshift-stage-reader'\n"
            "manifest\n"
            "format as parquet",
            id="nps",
        ),
        pytest.param(
            LINES,
            "s3://b/it's/manifest.json",
            "arn:aws:iam::1:role/o'brien",
            'copy "order_lines__stage"\n'
            "from 's3://b/it''s/manifest.json'\n"
            "iam_role 'arn:aws:iam::1:role/o''brien'\n"
            "manifest\n"
            "format as parquet",
            id="quotes-doubled",
        ),
    ],
)
def test_copy_reads_only_the_manifest_into_the_staging_table(
    table: TableConfig, manifest_url: str, iam_role: str, expected: str
) -> None:
    assert copy_sql(sql.staging_table(table), manifest_url, iam_role) == expected


@pytest.mark.parametrize(
    ("table", "columns", "expected"),
    [
        pytest.param(
            NPS,
            NPS_COLUMNS,
            'create temporary table "nps__stage" as\n'
            'select "id", "created_at", "modified_at", "score", "deleted", "_batch_id", "_extracted_at"\n'
            'from "raw_data"."nps"\n'
            "where 1 = 0",
            id="nps",
        ),
        pytest.param(
            LINES,
            LINES_COLUMNS,
            'create temporary table "order_lines__stage" as\n'
            'select "order_id", "line_no", "sku", "updated_at", "_batch_id", "_extracted_at"\n'
            'from "raw_data"."order_lines"\n'
            "where 1 = 0",
            id="composite-key",
        ),
    ],
)
def test_staging_table_copies_the_target_columns_without_rows(
    table: TableConfig, columns: list[str], expected: str
) -> None:
    assert sql.create_staging_sql("raw_data", table, columns) == expected


@pytest.mark.parametrize(
    ("table", "columns", "expected"),
    [
        pytest.param(
            NPS,
            NPS_COLUMNS,
            'create temporary table "nps__latest" as\n'
            'select "id", "created_at", "modified_at", "score", "deleted", "_batch_id", "_extracted_at"\n'
            "from (\n"
            '    select "id", "created_at", "modified_at", "score", "deleted", '
            '"_batch_id", "_extracted_at",\n'
            '        row_number() over (partition by "id" order by "modified_at" desc nulls last, '
            '"_extracted_at" desc nulls last, "created_at" desc nulls last, "score" desc nulls last, '
            '"deleted" desc nulls last, "_batch_id" desc nulls last) as _row_rank\n'
            '    from "nps__stage"\n'
            ") as ranked\n"
            "where _row_rank = 1",
            id="nps",
        ),
        pytest.param(
            LINES,
            LINES_COLUMNS,
            'create temporary table "order_lines__latest" as\n'
            'select "order_id", "line_no", "sku", "updated_at", "_batch_id", "_extracted_at"\n'
            "from (\n"
            '    select "order_id", "line_no", "sku", "updated_at", "_batch_id", "_extracted_at",\n'
            '        row_number() over (partition by "order_id", "line_no" order by '
            '"updated_at" desc nulls last, "_extracted_at" desc nulls last, "sku" desc nulls last, '
            '"_batch_id" desc nulls last) as _row_rank\n'
            '    from "order_lines__stage"\n'
            ") as ranked\n"
            "where _row_rank = 1",
            id="composite-key",
        ),
        pytest.param(
            CHANNELS,
            CHANNELS_COLUMNS,
            'create temporary table "user_session_channel__latest" as\n'
            'select "userid", "sessionid", "channel", "_batch_id", "_extracted_at"\n'
            "from (\n"
            '    select "userid", "sessionid", "channel", "_batch_id", "_extracted_at",\n'
            '        row_number() over (partition by "userid", "sessionid" order by '
            '"_extracted_at" desc nulls last, "channel" desc nulls last, '
            '"_batch_id" desc nulls last) as _row_rank\n'
            '    from "user_session_channel__stage"\n'
            ") as ranked\n"
            "where _row_rank = 1",
            id="full-refresh-no-cursor",
        ),
    ],
)
def test_dedupe_keeps_one_row_per_key_by_cursor_then_extract_then_values(
    table: TableConfig, columns: list[str], expected: str
) -> None:
    assert sql.dedupe_sql(table, columns) == expected


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        pytest.param(
            NPS,
            'delete from "raw_data"."nps"\n'
            'using "nps__latest"\n'
            'where "raw_data"."nps"."id" = "nps__latest"."id"\n'
            '    and ("raw_data"."nps"."modified_at" < "nps__latest"."modified_at" '
            'or "raw_data"."nps"."modified_at" is null)',
            id="nps",
        ),
        pytest.param(
            LINES,
            'delete from "raw_data"."order_lines"\n'
            'using "order_lines__latest"\n'
            'where "raw_data"."order_lines"."order_id" = "order_lines__latest"."order_id" '
            'and "raw_data"."order_lines"."line_no" = "order_lines__latest"."line_no"\n'
            '    and ("raw_data"."order_lines"."updated_at" < "order_lines__latest"."updated_at" '
            'or "raw_data"."order_lines"."updated_at" is null)',
            id="composite-key",
        ),
    ],
)
def test_delete_removes_only_target_rows_older_than_the_batch(table: TableConfig, expected: str) -> None:
    assert sql.delete_older_sql("raw_data", table) == expected


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        pytest.param(NPS, 'delete from "raw_data"."nps"', id="nps"),
        pytest.param(CHANNELS, 'delete from "raw_data"."user_session_channel"', id="full-refresh"),
    ],
)
def test_full_refresh_deletes_every_row(table: TableConfig, expected: str) -> None:
    assert sql.delete_all_sql("raw_data", table) == expected


@pytest.mark.parametrize(
    ("table", "columns", "expected"),
    [
        pytest.param(
            NPS,
            NPS_COLUMNS,
            'insert into "raw_data"."nps" ("id", "created_at", "modified_at", "score", "deleted", '
            '"_batch_id", "_extracted_at", "_loaded_at")\n'
            'select latest."id", latest."created_at", latest."modified_at", latest."score", '
            'latest."deleted", latest."_batch_id", latest."_extracted_at", %(loaded_at)s\n'
            'from "nps__latest" as latest\n'
            'left join "raw_data"."nps" as target\n'
            '    on target."id" = latest."id"\n'
            'where target."id" is null',
            id="nps",
        ),
        pytest.param(
            LINES,
            LINES_COLUMNS,
            'insert into "raw_data"."order_lines" ("order_id", "line_no", "sku", "updated_at", '
            '"_batch_id", "_extracted_at", "_loaded_at")\n'
            'select latest."order_id", latest."line_no", latest."sku", latest."updated_at", '
            'latest."_batch_id", latest."_extracted_at", %(loaded_at)s\n'
            'from "order_lines__latest" as latest\n'
            'left join "raw_data"."order_lines" as target\n'
            '    on target."order_id" = latest."order_id" and target."line_no" = latest."line_no"\n'
            'where target."order_id" is null',
            id="composite-key",
        ),
    ],
)
def test_insert_adds_only_keys_the_target_lacks(
    table: TableConfig, columns: list[str], expected: str
) -> None:
    assert sql.insert_new_sql("raw_data", table, columns) == expected


@pytest.mark.parametrize(
    ("table", "schema", "expected"),
    [
        pytest.param(
            NPS,
            NPS_SCHEMA,
            'create table if not exists "raw_data"."nps" (\n'
            '    "id" integer,\n'
            '    "created_at" timestamp,\n'
            '    "modified_at" timestamp,\n'
            '    "score" smallint,\n'
            '    "deleted" smallint,\n'
            '    "_batch_id" varchar(256),\n'
            '    "_extracted_at" timestamp,\n'
            '    "_loaded_at" timestamp,\n'
            '    "_deleted_at" timestamp\n'
            ")\n"
            'distkey ("id")\n'
            'sortkey ("modified_at")',
            id="nps",
        ),
        pytest.param(
            LINES,
            LINES_SCHEMA,
            'create table if not exists "raw_data"."order_lines" (\n'
            '    "order_id" decimal(20, 0),\n'
            '    "line_no" smallint,\n'
            '    "sku" varchar(160),\n'
            '    "updated_at" timestamp,\n'
            '    "_batch_id" varchar(256),\n'
            '    "_extracted_at" timestamp,\n'
            '    "_loaded_at" timestamp,\n'
            '    "_deleted_at" timestamp\n'
            ")\n"
            'distkey ("order_id")\n'
            'sortkey ("updated_at")',
            id="composite-key",
        ),
        pytest.param(
            CHANNELS,
            CHANNELS_SCHEMA,
            'create table if not exists "raw_data"."user_session_channel" (\n'
            '    "userid" integer,\n'
            '    "sessionid" varchar(128),\n'
            '    "channel" varchar(128),\n'
            '    "_batch_id" varchar(256),\n'
            '    "_extracted_at" timestamp,\n'
            '    "_loaded_at" timestamp,\n'
            '    "_deleted_at" timestamp\n'
            ")\n"
            'distkey ("userid")\n'
            'sortkey ("userid")',
            id="full-refresh-no-cursor",
        ),
    ],
)
def test_redshift_target_table_has_byte_lengths_and_dist_and_sort_keys(
    table: TableConfig, schema: pa.Schema, expected: str
) -> None:
    assert REDSHIFT.create_target_sql("raw_data", table, schema) == expected


def test_audit_insert_binds_every_value() -> None:
    assert sql.insert_audit_sql("raw_data") == (
        'insert into "raw_data"."_load_audit" (table_name, mode, window_start, window_end, batch_id, '
        "manifest_url, files, rows_staged, rows_inserted, rows_replaced, rows_deleted, bytes, "
        "started_at, finished_at, duration_seconds, status, error_class, error_message, schema_changes, "
        "rows_flagged_deleted, rows_unflagged_deleted)\n"
        "values (%(table_name)s, %(mode)s, %(window_start)s, %(window_end)s, %(batch_id)s, "
        "%(manifest_url)s, %(files)s, %(rows_staged)s, %(rows_inserted)s, %(rows_replaced)s, "
        "%(rows_deleted)s, %(bytes)s, %(started_at)s, %(finished_at)s, %(duration_seconds)s, "
        "%(status)s, %(error_class)s, %(error_message)s, %(schema_changes)s, "
        "%(rows_flagged_deleted)s, %(rows_unflagged_deleted)s)"
    )


def every_statement(table: TableConfig, columns: list[str], schema: pa.Schema) -> list[str]:
    statements = [
        sql.create_audit_sql("raw_data"),
        REDSHIFT.create_target_sql("raw_data", table, schema),
        sql.create_staging_sql("raw_data", table, columns),
        copy_sql(sql.staging_table(table), MANIFEST_URL, IAM_ROLE),
        sql.dedupe_sql(table, columns),
        sql.delete_all_sql("raw_data", table),
        sql.insert_new_sql("raw_data", table, columns),
        sql.insert_all_sql("raw_data", table, columns),
        sql.delete_gone_sql("raw_data", table),
        sql.delete_changed_sql("raw_data", table, columns),
        sql.insert_audit_sql("raw_data"),
    ]
    if table.is_incremental:
        statements.append(sql.delete_older_sql("raw_data", table))
    return statements


@pytest.mark.parametrize(
    ("table", "columns", "schema"),
    [
        pytest.param(NPS, NPS_COLUMNS, NPS_SCHEMA, id="nps"),
        pytest.param(LINES, LINES_COLUMNS, LINES_SCHEMA, id="composite-key"),
        pytest.param(CHANNELS, CHANNELS_COLUMNS, CHANNELS_SCHEMA, id="full-refresh"),
    ],
)
def test_no_statement_truncates(table: TableConfig, columns: list[str], schema: pa.Schema) -> None:
    statements = every_statement(table, columns, schema)

    assert len(statements) >= 8
    for statement in statements:
        assert "truncate" not in statement.lower()


@pytest.mark.parametrize(
    "extra",
    [pytest.param({}, id="no-extra"), pytest.param({"iam_role": ""}, id="empty-role")],
)
def test_missing_iam_role_raises_load_error_saying_what_to_set(extra: dict) -> None:
    warehouse = RedshiftWarehouse(
        Connection("pipeline_warehouse", "redshift", host="example.redshift.amazonaws.com", extra=extra)
    )

    with pytest.raises(LoadError) as raised:
        warehouse.iam_role  # noqa: B018 - the property raises

    message = str(raised.value)
    assert "connection 'pipeline_warehouse'" in message
    assert "extra.iam_role" in message


def test_iam_role_comes_from_the_connection_extra() -> None:
    warehouse = RedshiftWarehouse(Connection("pipeline_warehouse", "redshift", extra={"iam_role": IAM_ROLE}))

    assert warehouse.iam_role == IAM_ROLE


def test_full_refresh_insert_takes_every_row_of_the_batch() -> None:
    assert sql.insert_all_sql("raw_data", NPS, NPS_COLUMNS) == (
        'insert into "raw_data"."nps" ("id", "created_at", "modified_at", "score", "deleted", '
        '"_batch_id", "_extracted_at", "_loaded_at")\n'
        'select "id", "created_at", "modified_at", "score", "deleted", "_batch_id", "_extracted_at", '
        "%(loaded_at)s\n"
        'from "nps__latest"'
    )


def test_merge_reads_the_staging_table_when_the_key_needs_no_dedupe() -> None:
    staged = sql.staging_table(NPS)
    assert staged == '"nps__stage"'
    assert sql.delete_older_sql("raw_data", NPS, staged) == (
        'delete from "raw_data"."nps"\n'
        'using "nps__stage"\n'
        'where "raw_data"."nps"."id" = "nps__stage"."id"\n'
        '    and ("raw_data"."nps"."modified_at" < "nps__stage"."modified_at" '
        'or "raw_data"."nps"."modified_at" is null)'
    )
    assert sql.insert_new_sql("raw_data", NPS, ["id"], staged) == (
        'insert into "raw_data"."nps" ("id", "_loaded_at")\n'
        'select latest."id", %(loaded_at)s\n'
        'from "nps__stage" as latest\n'
        'left join "raw_data"."nps" as target\n'
        '    on target."id" = latest."id"\n'
        'where target."id" is null'
    )


@pytest.mark.parametrize("table", [NPS, CHANNELS], ids=["incremental", "full-refresh"])
def test_redshift_always_merges_through_the_staging_table(table: TableConfig) -> None:
    """Its Parquet COPY cannot fill _loaded_at: never straight into the target, and no query asks."""
    warehouse = RedshiftWarehouse(Connection("pipeline_warehouse", "redshift", extra={"iam_role": IAM_ROLE}))
    unique = Batch("20261031T010203Z-1a2b3c4d", datetime(2026, 10, 31), unique_key=True)

    assert loads_straight_into_target(warehouse, None, "raw_data", table, unique) is False
