"""SQL targets, a stub gateway, report generators and the task context of the transfer tests."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from airflow.sdk import Context

from smsend_test_support.services import require_service, services_required  # noqa: F401 (re-exported)

GATEWAY = "http://gateway.test"
SMSEND_CONN_ID = "smsend_transfers_test"


@dataclass
class SqlTarget:
    """One SQL database under test, with an Airflow connection and unique table names."""

    kind: str
    conn_id: str
    connect: Callable[[], Any]
    created: list[str] = field(default_factory=list)

    def table(self, prefix: str = "t") -> str:
        """A fresh table name, dropped at teardown."""
        name = f"smsend_{prefix}_{uuid.uuid4().hex[:10]}"
        self.created.append(name)
        return name

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on a new connection and return its rows (committing)."""
        if self.kind == "sqlite":
            sql = sql.replace("%s", "?")
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def rows(self, table: str, columns: str, order: str = "id") -> list[tuple[Any, ...]]:
        """The table's rows, as the database returns them."""
        return self.query(f"SELECT {columns} FROM {table} ORDER BY {order}")

    def exists(self, table: str) -> bool:
        try:
            self.query(f"SELECT 1 FROM {table} WHERE 1 = 0")
        except Exception:  # the driver's "no such table"
            return False
        return True

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])

    def utc(self, value: Any) -> dt.datetime:
        """A stored timestamp back as an aware UTC datetime, whatever the dialect returned."""
        if isinstance(value, str):  # SQLite: ISO text in UTC
            parsed = dt.datetime.fromisoformat(value)
            assert parsed.utcoffset() == dt.timedelta(0), value
            return parsed
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:  # MariaDB DATETIME(6) holds UTC
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    @staticmethod
    def money(value: Any) -> Decimal:
        """A stored amount as a Decimal (SQLite stores exact text)."""
        assert not isinstance(value, float), f"money came back as a float: {value!r}"
        return Decimal(str(value))

    def drop_created(self) -> None:
        for name in self.created:
            # PostgreSQL's compact layout: a view over {name}_rows and {name}_loads.
            statements = [f"DROP TABLE IF EXISTS {name}"]
            if self.kind == "postgres":
                statements = [
                    f"DROP VIEW IF EXISTS {name}",
                    *statements,
                    f"DROP TABLE IF EXISTS {name}_rows, {name}_loads",
                ]
            for statement in statements:
                try:
                    self.query(statement)
                except Exception:  # the test may have failed before creating it; a table is no view
                    pass


@dataclass
class StubGateway:
    """Reports served by requests-mock on :data:`GATEWAY`, keyed by request id / userlog type."""

    batch: dict[tuple[str, str], str] = field(default_factory=dict)
    userlog: dict[str, str] = field(default_factory=dict)
    credits: dict[str, str] = field(default_factory=dict)
    calls: list[dict[str, str]] = field(default_factory=list)

    def _form(self, request: Any) -> dict[str, str]:
        form = {k: v[0] for k, v in parse_qs(request.text or "").items()}
        self.calls.append(form)
        return form

    def batch_status(self, request: Any, context: Any) -> str:
        form = self._form(request)
        return self.batch.get((form["id"], form["type"]), "KO Parametro id non corretto.")

    def userlog_get(self, request: Any, context: Any) -> str:
        return self.userlog.get(self._form(request)["type"], "KO Parametri non corretti.")

    def credit_get(self, request: Any, context: Any) -> str:
        return self.credits.get(self._form(request)["u_id"], "KO Utente non trovato.")


# ---------------------------------------------------------------------------------- reports

NOTIFY_TEXT = {100: "Waiting", 200: "Delivered", 300: "Unknown subscriber"}


def notify_report(n: int, *, start_id: int = 1, bad_line: int | None = None) -> str:
    """A batch-status notify CSV of ``n`` rows; ``bad_line`` (file line number) gets a non-integer status."""
    lines = ["id,dest,status,status_text"]
    for i in range(n):
        status = (100, 200, 300)[i % 3]
        lines.append(f"{start_id + i},+39333{3000000 + i:07d},{status},{NOTIFY_TEXT[status]}")
    if bad_line is not None:
        lines[bad_line - 1] = f"{start_id + bad_line},+393330000000,2OO,Delivered"
    return "\r\n".join(lines) + "\r\n"


#: The spec's own mnc example, ragged rows included.
SPEC_MNC_REPORT = (
    "id,dest,status,netcode,status_text\r\n"
    "9186,+393209999999,100,Waiting\r\n"
    "9187,+393339999999,200, TIM\r\n"
    "9188,+393409999999,300,Unknown subscriber\r\n"
)

#: A credits userlog: Rome summer (UTC+2) and winter (UTC+1) times, money at the 4th decimal.
CREDITS_USERLOG = (
    "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n"
    "1\t2024-07-15 12:00:00\t42\tacme\t3\t0.0001\r\n"
    "2\t2024-01-15 12:00:00\t42\tacme\t3\t123456.7891\r\n"
    "3\t2024-10-27 02:30:00\t43\tbeta\t3\t10,5000\r\n"
)


def context(**extra: Any) -> Context:
    """A minimal task context for execute()."""
    return cast("Context", {"run_id": "manual__2024-07-16T00:00:00+00:00", **extra})
