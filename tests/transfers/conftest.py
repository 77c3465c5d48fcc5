"""Fixtures of the transfer tests: the three SQL targets, a stub gateway, report generators.

PostgreSQL (127.0.0.1:5432, user postgres, db test) and MariaDB (127.0.0.1:3306, root, db test)
are used for real. When one is absent its tests skip with the reason, unless
``SMSEND_REQUIRE_SERVICES=1``: then they FAIL, so that CI cannot pass without them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The test modules import their helpers by name; make that work in every --import-mode.
sys.path.insert(0, os.path.dirname(__file__))

from transfer_helpers import (  # noqa: E402
    GATEWAY,
    SMSEND_CONN_ID,
    SqlTarget,
    StubGateway,
    require_service,
)

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": "", "db": "test"}
TARGETS = ("sqlite", "postgres", "mysql")


def _pg_connect() -> Any:
    import psycopg

    return psycopg.connect(connect_timeout=3, **PG)


def _my_connect() -> Any:
    import MySQLdb

    return MySQLdb.connect(connect_timeout=3, **MY)


def _close(connect: Callable[[], Any]) -> Callable[[], None]:
    return lambda: connect().close()


@pytest.fixture(params=TARGETS)
def target(
    request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SqlTarget]:
    """A SQL target (SQLite file, PostgreSQL, MariaDB) reachable as Airflow connection ``conn_id``."""
    kind = request.param
    conn_id = f"smsend_sql_{kind}"
    if kind == "sqlite":
        path = tmp_path / "target.db"
        uri = json.dumps({"conn_type": "sqlite", "host": str(path)})
        connect: Callable[[], Any] = lambda: sqlite3.connect(path)  # noqa: E731
    elif kind == "postgres":
        require_service("PostgreSQL on 127.0.0.1:5432", _close(_pg_connect))
        uri = "postgres://postgres@127.0.0.1:5432/test"
        connect = _pg_connect
    else:
        require_service("MariaDB on 127.0.0.1:3306 (with mysqlclient)", _close(_my_connect))
        uri = "mysql://root@127.0.0.1:3306/test"
        connect = _my_connect
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
    sql_target = SqlTarget(kind=kind, conn_id=conn_id, connect=connect)
    yield sql_target
    sql_target.drop_created()


@pytest.fixture
def postgres_target(monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlTarget]:
    """PostgreSQL only (for the psycopg2 COPY path)."""
    require_service("PostgreSQL on 127.0.0.1:5432", _close(_pg_connect))
    sql_target = SqlTarget(kind="postgres", conn_id="smsend_sql_postgres", connect=_pg_connect)
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_SQL_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
    yield sql_target
    sql_target.drop_created()


# ---------------------------------------------------------------------------------- stub gateway


@pytest.fixture
def gateway(requests_mock: Any, monkeypatch: pytest.MonkeyPatch) -> StubGateway:
    """A stub gateway and the ``smsend_transfers_test`` connection pointing at it."""
    stub = StubGateway()
    requests_mock.post(f"{GATEWAY}/sms/batch-status.php", text=stub.batch_status)
    requests_mock.post(f"{GATEWAY}/backoffice/userlog-get.php", text=stub.userlog_get)
    requests_mock.post(f"{GATEWAY}/backoffice/credit-get.php", text=stub.credit_get)
    conn = {
        "conn_type": "smsend",
        "host": GATEWAY,
        "login": "user",
        "password": "s3cret-pass",
        "extra": {"reseller_username": "reseller", "reseller_password": "res-s3cret"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{SMSEND_CONN_ID.upper()}", json.dumps(conn))
    return stub
