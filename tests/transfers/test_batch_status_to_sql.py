"""SmSendBatchStatusToSqlOperator against SQLite, PostgreSQL and MariaDB, with a stub gateway."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from transfer_helpers import SMSEND_CONN_ID, SPEC_MNC_REPORT, SqlTarget, StubGateway, context, notify_report

from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

COLUMNS = (
    "request_id, report_type, id, dest, status, status_class, status_text, netcode, loaded_at, dag_run_id"
)


def operator(
    target: SqlTarget, table: str, request_ids: object, **kwargs: object
) -> SmSendBatchStatusToSqlOperator:
    return SmSendBatchStatusToSqlOperator(
        task_id="load_status",
        request_ids=request_ids,  # type: ignore[arg-type]
        table=table,
        conn_id=target.conn_id,
        smsend_conn_id=SMSEND_CONN_ID,
        **kwargs,  # type: ignore[arg-type]
    )


def test_types_round_trip_and_metadata(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.batch[("HTTP00000000111", "notify")] = notify_report(3, start_id=9184)
    table = target.table("bs")

    result = operator(target, table, "HTTP00000000111").execute(context())

    assert result["rows"] == 3 and result["table"] == table and result["load_mode"] == "replace"
    assert result["requests"] == 1 and result["report_type"] == "notify"
    rows = target.rows(table, COLUMNS)
    assert [r[:8] for r in rows] == [
        ("HTTP00000000111", "notify", 9184, "+393333000000", 100, "pending", "Waiting", None),
        ("HTTP00000000111", "notify", 9185, "+393333000001", 200, "success", "Delivered", None),
        ("HTTP00000000111", "notify", 9186, "+393333000002", 300, "failure", "Unknown subscriber", None),
    ]
    assert all(isinstance(r[2], int) and isinstance(r[4], int) for r in rows)
    assert {target.utc(r[8]) for r in rows}.__len__() == 1  # one load timestamp, in UTC
    assert {r[9] for r in rows} == {"manual__2024-07-16T00:00:00+00:00"}


def test_replace_reload_is_idempotent_and_scoped(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.batch[("REQ-A", "notify")] = notify_report(5, start_id=1)
    gateway.batch[("REQ-B", "notify")] = notify_report(4, start_id=100)
    table = target.table("bs")

    operator(target, table, "REQ-A, REQ-B").execute(context())
    before = target.rows(table, "request_id, id, dest, status, status_text", order="request_id, id")
    gateway.batch[("REQ-A", "notify")] = notify_report(5, start_id=1).replace("Waiting", "Still waiting")
    again = operator(target, table, ["REQ-A"]).execute(context())
    after = target.rows(table, "request_id, id, dest, status, status_text", order="request_id, id")

    assert again["rows"] == 5 and again["deleted"] == 5
    assert len(before) == len(after) == 9
    assert [r for r in after if r[0] == "REQ-B"] == [r for r in before if r[0] == "REQ-B"]
    assert sum(r[4] == "Still waiting" for r in after) == 2


def test_append_adds_and_upsert_updates(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.batch[("REQ-U", "queue")] = notify_report(6)
    append_table, upsert_table = target.table("ap"), target.table("up")

    for _ in range(2):
        operator(target, append_table, "REQ-U", report_type="queue", load_mode="append").execute(context())
        operator(target, upsert_table, "REQ-U", report_type="queue", load_mode="upsert").execute(context())
    gateway.batch[("REQ-U", "queue")] = notify_report(7).replace(",100,Waiting", ",200,Sent")
    operator(target, upsert_table, "REQ-U", report_type="queue", load_mode="upsert").execute(context())

    assert target.count(append_table) == 12
    rows = target.rows(upsert_table, "id, status, status_text")
    assert len(rows) == 7
    assert rows[0] == (1, 200, "Sent")


def test_malformed_line_after_first_chunk_rolls_everything_back(
    target: SqlTarget, gateway: StubGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_smsend.client import reports

    monkeypatch.setattr(reports, "BLOCK_BYTES", 256)  # blocks of a few lines: some are loaded first
    table = target.table("rb")
    gateway.batch[("REQ-R", "notify")] = notify_report(30)
    operator(target, table, "REQ-R").execute(context())
    before = target.rows(table, "id, dest, status, status_text")
    # Line 26 of the file is bad: blocks of lines before it are already written when it is read.
    gateway.batch[("REQ-R", "notify")] = notify_report(40, start_id=1000, bad_line=26)

    with pytest.raises(AirflowFailException, match=r"REQ-R line 26 column 'status' is not an integer: '2OO'"):
        operator(target, table, "REQ-R", chunk_size=10).execute(context())

    assert target.rows(table, "id, dest, status, status_text") == before


def test_bad_header_writes_nothing(target: SqlTarget, gateway: StubGateway) -> None:
    table = target.table("hd")
    gateway.batch[("REQ-H", "notify")] = "id,number,status\r\n1,+393331234567,200\r\n"

    with pytest.raises(AirflowFailException, match=r"header on line 1 lacks column\(s\) dest, status_text"):
        operator(target, table, "REQ-H").execute(context())

    assert not target.exists(table)  # the report is read before the table is made


def test_ragged_mnc_rows_of_the_spec(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.batch[("MNC-1", "mnc")] = SPEC_MNC_REPORT
    table = target.table("mnc")

    operator(target, table, "MNC-1", report_type="mnc").execute(context())

    assert target.rows(table, "id, dest, status, status_class, netcode, status_text") == [
        (9186, "+393209999999", 100, "pending", None, "Waiting"),
        (9187, "+393339999999", 200, "success", "TIM", "TIM"),
        (9188, "+393409999999", 300, "failure", None, "Unknown subscriber"),
    ]


def test_a_gateway_ko_fails_without_writing(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.batch[("GOOD", "notify")] = notify_report(3)
    table = target.table("ko")

    with pytest.raises(AirflowFailException, match="non corretto"):
        operator(target, table, ["GOOD", "UNKNOWN"]).execute(context())

    assert not target.exists(table) or target.count(table) == 0


def test_hundred_thousand_rows(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.batch[("BIG", "notify")] = notify_report(100_000)
    table = target.table("big")

    result = operator(target, table, "BIG").execute(context())

    assert result["rows"] == 100_000
    assert result["method"] == ("to_sql" if target.kind == "mysql" else "adbc")
    assert target.count(table) == 100_000
    assert (
        target.query(f"SELECT SUM(status) FROM {table}")[0][0] == 100 * 33_334 + 200 * 33_333 + 300 * 33_333
    )
    print(f"\n{target.kind}: 100k rows via {result['method']} in {result['seconds']}s")


def only_undelivered(frame: Any) -> Any:
    """A transform by dotted path: keep the rows that are not 2xx."""
    return frame[frame["status"] // 100 != 2]


def test_transform_filters_rows_by_callable_and_by_dotted_path(
    target: SqlTarget, gateway: StubGateway
) -> None:
    gateway.batch[("REQ-T", "notify")] = notify_report(9)
    by_path, by_callable = target.table("trp"), target.table("trc")

    operator(target, by_path, "REQ-T", transform=f"{__name__}.only_undelivered").execute(context())
    operator(
        target, by_callable, "REQ-T", transform=lambda f: f.assign(status_text=f["status_text"].str.upper())
    ).execute(context())

    assert [r[0] for r in target.rows(by_path, "status")] == [100, 300, 100, 300, 100, 300]
    assert {r[0] for r in target.rows(by_callable, "status_text")} == {
        "WAITING",
        "DELIVERED",
        "UNKNOWN SUBSCRIBER",
    }


def test_transform_fills_a_column_of_a_table_you_made(target: SqlTarget, gateway: StubGateway) -> None:
    from airflow_provider_smsend.sql.dialect import dialect_for
    from airflow_provider_smsend.sql.layouts import BATCH_STATUS_TABLE

    gateway.batch[("REQ-X", "notify")] = notify_report(3)
    table = target.table("trx")
    dialect = dialect_for(target.kind)
    target.query(dialect.create_table_sql(table, BATCH_STATUS_TABLE))
    target.query(f"ALTER TABLE {table} ADD COLUMN campaign VARCHAR(40)")

    operator(target, table, "REQ-X", transform=lambda f: f.assign(campaign="spring")).execute(context())

    assert target.rows(table, "campaign") == [("spring",)] * 3


def test_a_transform_that_breaks_the_layout_is_refused(target: SqlTarget, gateway: StubGateway) -> None:
    gateway.batch[("REQ-Y", "notify")] = notify_report(3)
    table = target.table("try")
    with pytest.raises(AirflowFailException, match="dropped column"):
        operator(target, table, "REQ-Y", transform=lambda f: f.drop(columns=["dest"])).execute(context())
    with pytest.raises(AirflowFailException, match="region"):
        operator(target, table, "REQ-Y", transform=lambda f: f.assign(region="north")).execute(context())
    with pytest.raises(AirflowFailException, match="not a pandas DataFrame"):
        operator(target, table, "REQ-Y", transform=lambda f: None).execute(context())
    with pytest.raises(AirflowFailException, match="cannot be imported"):
        operator(target, table, "REQ-Y", transform="no_such_module.fn").execute(context())
    with pytest.raises(TypeError, match="transform must be a callable"):
        operator(target, table, "REQ-Y", transform=42)


def test_tables_made_by_earlier_versions_keep_loading(target: SqlTarget, gateway: StubGateway) -> None:
    """0.1's wide table (every dialect) and 0.2's PostgreSQL compact view load as they are."""
    from airflow_provider_smsend.sql.dialect import dialect_for
    from airflow_provider_smsend.sql.layouts import BATCH_STATUS_TABLE, CompactNames, compact_ddl

    gateway.batch[("REQ-OLD", "notify")] = notify_report(4)
    wide = target.table("old")
    target.query(dialect_for(target.kind).create_table_sql(wide, BATCH_STATUS_TABLE))
    operator(target, wide, "REQ-OLD").execute(context())
    operator(target, wide, "REQ-OLD").execute(context())
    assert target.count(wide) == 4
    if target.kind == "postgres":
        compact = target.table("old02")
        for statement in compact_ddl(CompactNames(compact)):
            target.query(statement)
        target.created += [f"{compact}_rows", f"{compact}_loads"]
        operator(target, compact, "REQ-OLD").execute(context())
        assert target.count(compact) == 4 and target.count(f"{compact}_loads") == 1
        assert target.query("SELECT relkind FROM pg_class WHERE relname = %s", (wide,)) == [
            ("r",)
        ]  # still a table: never turned into a view


# ------------------------------------------------------- PostgreSQL's compact layout: refusals, long names


def relkind(target: SqlTarget, name: str) -> str | None:
    """PostgreSQL's pg_class kind of ``name`` (``r`` table, ``v`` view), None when it does not exist."""
    found = target.query("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (name,))
    return found[0][0] if found else None


def test_a_view_the_provider_did_not_make_is_refused_and_left_alone(
    postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    """A view over another table (even one with the batch-status columns) is not a compact table:
    every load mode refuses it, and neither the view nor its table is changed, nothing is created."""
    from airflow_provider_smsend.sql.dialect import dialect_for
    from airflow_provider_smsend.sql.layouts import BATCH_STATUS_TABLE

    pg = postgres_target
    gateway.batch[("REQ-V", "notify")] = notify_report(3)
    other_view, shaped_view = pg.table("fv"), pg.table("fvw")  # named first: dropped before their tables
    other, wide = pg.table("fvo"), pg.table("fvt")
    pg.query(f"CREATE TABLE {other} (id BIGINT, note VARCHAR(20))")
    pg.query(f"INSERT INTO {other} VALUES (1, 'kept'), (2, 'kept')")
    pg.query(f"CREATE VIEW {other_view} AS SELECT id, note FROM {other}")
    pg.query(dialect_for("postgres").create_table_sql(wide, BATCH_STATUS_TABLE))
    pg.query(
        f"INSERT INTO {wide} ({COLUMNS}) VALUES ('OLD', 'notify', 7, '+39333', 200, 'success', 'Delivered', "
        "NULL, now(), 'by hand')"
    )
    pg.query(f"CREATE VIEW {shaped_view} AS SELECT {COLUMNS} FROM {wide}")

    def state() -> list[Any]:
        return [
            pg.query("SELECT pg_get_viewdef(%s::regclass)", (other_view,)),
            pg.query("SELECT pg_get_viewdef(%s::regclass)", (shaped_view,)),
            pg.rows(other_view, "id, note"),
            pg.rows(shaped_view, COLUMNS),
        ]

    before = state()
    for view in (other_view, shaped_view):
        for mode in ("replace", "append", "upsert"):
            with pytest.raises(
                AirflowFailException,
                match=rf"TableLayoutError: '{view}' is a view but '{view}_rows' is missing: it is not a "
                "compact batch-status table of this provider",
            ):
                operator(pg, view, "REQ-V", load_mode=mode).execute(context())

    assert state() == before
    assert [relkind(pg, name) for name in (other_view, shaped_view, other, wide)] == ["v", "v", "r", "r"]
    for view in (other_view, shaped_view):
        assert relkind(pg, f"{view}_rows") is None and relkind(pg, f"{view}_loads") is None


@pytest.mark.parametrize(
    ("schema", "length", "kind"),
    [("", 51, "v"), ("", 52, "r"), ("public.", 52, "r"), ("", 63, "r")],
    ids=["51-compact", "52-wide", "schema-52-wide", "63-wide"],
)
def test_names_too_long_for_the_compact_objects_get_and_keep_the_wide_layout(
    postgres_target: SqlTarget, gateway: StubGateway, schema: str, length: int, kind: str
) -> None:
    """``{table}_loads_scope`` must fit PostgreSQL's 63 characters: a longer bare name (its schema
    aside) is made a wide table, and keeps loading (replace, append, upsert) as one."""
    from airflow_provider_smsend.sql.layouts import CompactNames

    pg = postgres_target
    name = pg.table("l" * (length - len("smsend__") - 10))  # smsend_<prefix>_<10 hex>
    assert len(name) == length and CompactNames.fits(name) == (length <= CompactNames.MAX_NAME == 51)
    table = f"{schema}{name}"
    pg.created.append(table)
    gateway.batch[("REQ-L", "notify")] = notify_report(4)

    first = operator(pg, table, "REQ-L").execute(context())
    again = operator(pg, table, "REQ-L").execute(context())  # the table now exists: kept as it is
    appended = operator(pg, table, "REQ-L", load_mode="append").execute(context())
    assert pg.count(table) == 8
    replaced = operator(pg, table, "REQ-L").execute(context())
    upsert = operator(pg, table, "REQ-L", load_mode="upsert").execute(context())

    assert [r["rows"] for r in (first, again, appended, replaced, upsert)] == [4] * 5
    assert (again["deleted"], replaced["deleted"]) == (4, 8)
    # What PostgreSQL holds under the name (a 63-character name's "_rows" would be cut back to it):
    # the compact view and its two tables, or one table and its indexes only.
    held = pg.query(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') AND starts_with(c.relname, %s) "
        "ORDER BY c.relname",
        (name,),
    )
    expected = [(name, "v"), (f"{name}_loads", "r"), (f"{name}_rows", "r")] if kind == "v" else [(name, "r")]
    assert held == expected and relkind(pg, table) == kind
    assert [r[:5] for r in pg.rows(table, COLUMNS)] == [
        ("REQ-L", "notify", 1, "+393333000000", 100),
        ("REQ-L", "notify", 2, "+393333000001", 200),
        ("REQ-L", "notify", 3, "+393333000002", 300),
        ("REQ-L", "notify", 4, "+393333000003", 100),
    ]


def test_two_long_names_alike_in_their_first_characters_each_get_their_own_indexes(
    postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    """PostgreSQL names indexes per schema: two 63-character table names that differ only at
    their end must not share an index name (the second table's unique key would be skipped, and
    its upsert fail on ON CONFLICT)."""
    pg = postgres_target
    first = pg.table("l" * 45)  # smsend_<45 l>_<10 hex>: 63 characters, wide layout
    second = first[:-10] + ("0" * 10 if first[-10:] != "0" * 10 else "1" * 10)
    pg.created.extend([first, second])
    gateway.batch[("REQ-U", "notify")] = notify_report(3)
    for table in (first, second):
        for _ in range(2):
            assert operator(pg, table, "REQ-U", load_mode="upsert").execute(context())["rows"] == 3
        assert pg.count(table) == 3
    indexes = pg.query(
        "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename IN (%s, %s)",
        (first, second),
    )
    assert len(indexes) == 4 and len({name for _, name in indexes}) == 4


def test_upsert_over_a_report_whose_ids_repeat_says_to_replace_it(
    target: SqlTarget, gateway: StubGateway
) -> None:
    """A report appended with an id twice leaves rows that a unique key cannot hold: the upsert
    that needs the key fails with what to do (not the driver's integrity error, which a retry would
    only repeat), and the table is unchanged."""
    from airflow.sdk.exceptions import AirflowFailException

    table = target.table()
    gateway.batch[("REQ-D", "notify")] = (
        "id,dest,status,status_text\r\n1,+393330000001,200,Delivered\r\n1,+393330000001,200,Delivered\r\n"
    )
    assert operator(target, table, "REQ-D", load_mode="append").execute(context())["rows"] == 2
    with pytest.raises(AirflowFailException, match="load_mode='replace' first, then upsert"):
        operator(target, table, "REQ-D", load_mode="upsert").execute(context())
    assert target.count(table) == 2
    gateway.batch[("REQ-D", "notify")] = notify_report(2)  # the gateway's report, each id once
    assert operator(target, table, "REQ-D").execute(context())["rows"] == 2  # replace: as advised
    operator(target, table, "REQ-D", load_mode="upsert").execute(context())
    assert target.count(table) == 2


def test_appending_rows_a_unique_key_already_holds_says_to_upsert(
    target: SqlTarget, gateway: StubGateway
) -> None:
    """A wide table an upsert gave its unique key refuses a load that repeats a key with what to do
    (PostgreSQL's compact layout gives every load its own load_id: an append never collides)."""
    from airflow.sdk.exceptions import AirflowFailException

    table = target.table() if target.kind != "postgres" else target.table("l" * 45)  # 63 characters: wide
    gateway.batch[("REQ-K", "notify")] = notify_report(3)
    assert operator(target, table, "REQ-K", load_mode="upsert").execute(context())["rows"] == 3
    with pytest.raises(AirflowFailException, match="load with load_mode='upsert'"):
        operator(target, table, "REQ-K", load_mode="append").execute(context())
    assert target.count(table) == 3


def test_create_table_false_refuses_a_missing_table_and_creates_nothing(
    target: SqlTarget, gateway: StubGateway
) -> None:
    """Every dialect; on PostgreSQL neither the compact view nor its two tables are made."""
    gateway.batch[("REQ-N", "notify")] = notify_report(3)
    table = target.table("nc")

    for mode in ("replace", "append", "upsert"):
        with pytest.raises(
            AirflowFailException,
            match=rf"TableLayoutError: Table '{table}' does not exist; set create_table=True to create it",
        ):
            operator(target, table, "REQ-N", create_table=False, load_mode=mode).execute(context())

    assert not target.exists(table)
    assert not target.exists(f"{table}_rows") and not target.exists(f"{table}_loads")
    if target.kind == "postgres":
        found = target.query("SELECT relname FROM pg_class WHERE relname LIKE %s", (f"{table}%",))
        assert found == []  # no index, sequence or view of the name either


def test_upsert_refuses_a_report_held_more_than_once_and_changes_nothing(
    postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    """Two appended loads of one report in the compact layout: an upsert cannot tell which to
    update, so it fails naming ``replace``, for the whole load; a ``replace`` then heals it."""
    pg = postgres_target
    table = pg.table("upd")
    gateway.batch[("REQ-A", "notify")] = notify_report(4)
    gateway.batch[("REQ-B", "notify")] = notify_report(2, start_id=50)
    operator(pg, table, "REQ-A, REQ-B", load_mode="append").execute(context())
    operator(pg, table, "REQ-A", load_mode="append").execute(context())
    assert relkind(pg, table) == "v"

    def state() -> list[Any]:
        return [
            pg.rows(table, COLUMNS, order="request_id, id, loaded_at"),
            pg.rows(
                f"{table}_loads",
                "load_id, request_id, report_type, loaded_at, dag_run_id, row_count",
                order="load_id",
            ),
            pg.rows(f"{table}_rows", "load_id, id, dest, status, status_text, netcode", order="load_id, id"),
        ]

    before = state()
    assert len(before[0]) == 10 and [r[1:3] + r[5:] for r in before[1]] == [
        ("REQ-A", "notify", 4), ("REQ-B", "notify", 2), ("REQ-A", "notify", 4),
    ]  # fmt: skip
    gateway.batch[("REQ-A", "notify")] = notify_report(5).replace(",100,Waiting", ",200,Delivered")
    gateway.batch[("REQ-B", "notify")] = notify_report(3, start_id=50)

    with pytest.raises(
        AirflowFailException,
        match=rf"TableLayoutError: Cannot upsert the notify report of 'REQ-A': '{table}' holds it more than "
        r"once \(appended loads\)\. Reload it with load_mode='replace'\.",
    ):
        operator(pg, table, "REQ-B, REQ-A", load_mode="upsert").execute(context())

    assert state() == before  # REQ-B (held once) was not upserted either: one transaction
    operator(pg, table, "REQ-A").execute(context())  # replace: one load of REQ-A again
    result = operator(pg, table, "REQ-A, REQ-B", load_mode="upsert").execute(context())
    assert result["rows"] == 8
    assert pg.rows(f"{table}_loads", "request_id, row_count", order="request_id") == [
        ("REQ-A", 5),
        ("REQ-B", 3),
    ]
    assert pg.count(table) == 8 and pg.rows(table, "status", order="request_id, id")[0] == (200,)
