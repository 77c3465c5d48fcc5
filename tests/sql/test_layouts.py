"""sql/layouts.py: the report tables' layouts and the compact PostgreSQL batch-status objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from smsend_test_support.services import require_service

from airflow_provider_smsend.sql.dialect import dialect_for
from airflow_provider_smsend.sql.layouts import (
    BATCH_STATUS_TABLE,
    CREDIT_SNAPSHOT_TABLE,
    INBOUND_TABLE,
    LOAD_COLUMNS,
    OUTCOMES_TABLE,
    ROW_COLUMNS,
    USERLOG_TABLE,
    VIEW_COLUMNS,
    CompactNames,
    TableSpec,
    compact_ddl,
    relation_kind,
)
from airflow_provider_smsend.sql.loader import AdbcSession

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
LAYOUTS = (BATCH_STATUS_TABLE, USERLOG_TABLE, CREDIT_SNAPSHOT_TABLE, OUTCOMES_TABLE, INBOUND_TABLE)


@pytest.mark.parametrize("spec", LAYOUTS, ids=lambda spec: spec.name)
def test_keys_and_scopes_are_columns_and_keys_are_never_null(spec: TableSpec) -> None:
    columns = {c.name: c for c in spec.columns}
    assert len(columns) == len(spec.columns) == len(spec.column_names)  # no name twice
    assert set(spec.key) <= set(columns) and set(spec.scope) <= set(columns)
    assert [name for name in spec.key if columns[name].nullable] == []  # a unique key needs values
    assert columns["loaded_at"].nullable is False and "dag_run_id" in columns  # every load is dated
    for column in spec.columns:  # every kind has a type in every dialect
        for name in ("sqlite", "postgres", "mysql", "generic"):
            assert dialect_for(name).sql_type(column)


def test_the_compact_view_has_the_wide_layouts_columns() -> None:
    assert VIEW_COLUMNS == BATCH_STATUS_TABLE.column_names
    stored = set(ROW_COLUMNS) | set(LOAD_COLUMNS)
    assert set(VIEW_COLUMNS) - stored == {"status_class"}  # the only computed column


def test_compact_names_are_derived_quoted_and_bounded() -> None:
    names = CompactNames("analytics.sms")
    assert (names.view, names.rows, names.loads) == (
        '"analytics"."sms"',
        '"analytics"."sms_rows"',
        '"analytics"."sms_loads"',
    )
    assert (names.rows_index, names.rows_unique, names.loads_index) == (
        '"sms_rows_load"',
        '"sms_rows_uk"',
        '"sms_loads_scope"',
    )
    longest = "s." + "x" * CompactNames.MAX_NAME
    assert CompactNames.fits(longest) and len(CompactNames(longest).loads_index.strip('"')) == 63
    assert not CompactNames.fits(longest + "x")
    with pytest.raises(ValueError, match="too long for the compact PostgreSQL layout"):
        CompactNames(longest + "x")
    with pytest.raises(ValueError, match="Invalid table or column name"):
        CompactNames("sms; DROP TABLE x")


@pytest.fixture
def postgres() -> Iterator[AdbcSession]:
    import adbc_driver_postgresql.dbapi

    require_service(
        "PostgreSQL on 127.0.0.1:5432", lambda: adbc_driver_postgresql.dbapi.connect(POSTGRES_URL).close()
    )
    session = AdbcSession(adbc_driver_postgresql.dbapi.connect(POSTGRES_URL), dialect_for("postgres"))
    yield session
    session.close()


def _drop(session: Any, names: CompactNames) -> None:
    session.rollback()
    for sql in (f"DROP VIEW IF EXISTS {names.view}", f"DROP TABLE IF EXISTS {names.rows}",
                f"DROP TABLE IF EXISTS {names.loads}"):  # fmt: skip
        session.execute(sql)
    session.commit()


def test_compact_objects_on_postgres_compute_the_status_class(postgres: AdbcSession) -> None:
    names = CompactNames(f"smsend_compact_{uuid.uuid4().hex[:10]}")
    try:
        assert relation_kind(postgres, names.table) is None
        for sql in compact_ddl(names) + compact_ddl(names):  # IF NOT EXISTS / OR REPLACE: twice is harmless
            postgres.execute(sql)
        postgres.execute(
            f"INSERT INTO {names.loads} (request_id, report_type, loaded_at, row_count) "
            "VALUES ('HTTP1', 'notify', now(), 4)"
        )
        postgres.execute(
            f"INSERT INTO {names.rows} (load_id, id, dest, status) SELECT load_id, s, '+39333', s * 100 "
            f"FROM {names.loads}, generate_series(1, 4) AS s"
        )
        postgres.commit()
        assert (relation_kind(postgres, names.table), relation_kind(postgres, names.rows_name)) == (
            "view",
            "table",
        )
        assert postgres.column_names(names.view) == list(VIEW_COLUMNS)
        rows = postgres.query(f"SELECT request_id, id, status, status_class FROM {names.view} ORDER BY id")
        assert rows == [
            ("HTTP1", 1, 100, "pending"),
            ("HTTP1", 2, 200, "success"),
            ("HTTP1", 3, 300, "failure"),
            ("HTTP1", 4, 400, "unknown"),
        ]
    finally:
        _drop(postgres, names)
