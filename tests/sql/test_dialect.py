"""sql/dialect.py: identifiers, types, DDL, parameter markers and the insert-if-absent per database family."""

from __future__ import annotations

import sqlite3

import pytest

from airflow_provider_smsend.sql.dialect import dialect_for, scope_values
from airflow_provider_smsend.sql.layouts import BATCH_STATUS_TABLE, CREDIT_SNAPSHOT_TABLE, USERLOG_TABLE


def test_identifiers_are_checked_and_quoted_per_dialect() -> None:
    assert dialect_for("postgres").quote("analytics.sms") == '"analytics"."sms"'
    assert dialect_for("mysql").quote("sms") == "`sms`"
    assert dialect_for("mariadb").name == "mysql" and dialect_for("postgresql").name == "postgres"
    assert dialect_for("sqlite").placeholder == "?"
    for bad in ("sms; DROP TABLE x", "a.b.c d", 'x"y', ""):
        with pytest.raises(ValueError, match="Invalid table or column name"):
            dialect_for("sqlite").quote(bad)


def test_ddl_types_per_dialect() -> None:
    pg = dialect_for("postgres").create_table_sql("t", USERLOG_TABLE)
    my = dialect_for("mysql").create_table_sql("t", CREDIT_SNAPSHOT_TABLE)
    lite = dialect_for("sqlite").create_table_sql("t", BATCH_STATUS_TABLE)
    assert (
        '"date" TIMESTAMPTZ NOT NULL' in pg
        and '"credit" NUMERIC(18,4)' in pg
        and '"id" BIGINT NOT NULL' in pg
    )
    assert (
        "`credit` NUMERIC(18,4) NOT NULL" in my
        and "`loaded_at` DATETIME(6) NOT NULL" in my
        and "InnoDB" in my
    )
    assert '"dest" TEXT NOT NULL' in lite and '"status" INTEGER NOT NULL' in lite
    assert all(sql.startswith("CREATE TABLE IF NOT EXISTS") and "DROP" not in sql for sql in (pg, my, lite))
    generic = dialect_for("oracle")
    assert generic.name == "generic" and "TIMESTAMP" in generic.create_table_sql("t", USERLOG_TABLE)
    with pytest.raises(ValueError, match="No ON DUPLICATE KEY clause"):
        generic.upsert_clause(USERLOG_TABLE, USERLOG_TABLE.column_names)
    assert dialect_for("mysql").upsert_clause(CREDIT_SNAPSHOT_TABLE, CREDIT_SNAPSHOT_TABLE.column_names) == (
        "ON DUPLICATE KEY UPDATE `credit` = VALUES(`credit`), `loaded_at` = VALUES(`loaded_at`), "
        "`dag_run_id` = VALUES(`dag_run_id`)"
    )


def test_connection_types_and_parameter_markers() -> None:
    assert dialect_for("postgresql+psycopg").name == "postgres" and dialect_for(None).name == "generic"
    assert dialect_for("postgres").marks(3) == ["%s", "%s", "%s"]
    numbered = dialect_for("postgres", placeholder="$")
    assert numbered.marks(2) == ["$1", "$2"] and numbered.marks(2, start=4) == ["$4", "$5"]
    assert dialect_for("mysql").with_placeholder("?") == dialect_for("mysql", placeholder="?")


def test_index_names_fit_postgres_and_sqlite_schemas_qualify_the_index() -> None:
    postgres = dialect_for("postgres")
    name = postgres.index_name("s." + "x" * 80, "smsend_scope")
    assert len(name) == 63 and name.endswith("_smsend_scope")
    # two long names alike in their first characters: two index names (indexes are named per schema)
    first, second = ("smsend_" + "l" * 45 + f"_{n:010d}" for n in (1, 2))
    assert postgres.index_name(first, "smsend_uk") != postgres.index_name(second, "smsend_uk")
    assert len(postgres.index_name(first, "smsend_uk")) <= 63
    assert postgres.index_name("sms", "smsend_uk") == "sms_smsend_uk"  # a name that fits is unchanged
    assert len(postgres.index_name("è" * 40, "smsend_uk").encode()) <= 63  # bytes, not characters
    # MySQL names indexes per table: cut short only, as 0.2 did (no second index on its tables)
    assert dialect_for("mysql").index_name(first, "smsend_uk") == first[:53] + "_smsend_uk"
    assert postgres.create_index_sql("s.sms", BATCH_STATUS_TABLE, unique=True) == (
        'CREATE UNIQUE INDEX IF NOT EXISTS "sms_smsend_uk" ON "s"."sms" ("request_id", "report_type", "id")'
    )
    assert dialect_for("sqlite").create_index_sql("s.sms", BATCH_STATUS_TABLE, unique=False) == (
        'CREATE INDEX IF NOT EXISTS "s"."sms_smsend_scope" ON "sms" ("request_id", "report_type")'
    )
    assert (
        dialect_for("mysql")
        .create_index_sql("sms", CREDIT_SNAPSHOT_TABLE, unique=True)
        .startswith("CREATE UNIQUE INDEX `sms_smsend_uk` ON `sms`")
    )  # MySQL has no IF NOT EXISTS for indexes


@pytest.mark.parametrize("name", ["sqlite", "generic"])
def test_insert_if_absent_inserts_a_key_once_and_says_so(name: str) -> None:
    dialect = dialect_for(name, placeholder="?")
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE ledger (job TEXT, item TEXT, state TEXT, PRIMARY KEY (job, item))")
    sql = dialect.insert_if_absent_sql("ledger", ["job", "item", "state"], ["job", "item"])
    params = ("j", "a", "sending") + (("j", "a") if name == "generic" else ())
    assert conn.execute(sql, params).rowcount == 1
    assert conn.execute(sql, params[:2] + ("accepted",) + params[3:]).rowcount == 0
    assert conn.execute("SELECT state FROM ledger").fetchall() == [("sending",)]


def test_scope_values_are_lists() -> None:
    assert scope_values("HTTP1") == ["HTTP1"] and scope_values(("a", "b")) == ["a", "b"]
    assert scope_values(None) == [None]
