"""Optional SQLite persistence of the sandbox state (``--state-file``).

The store is a plain key/value table of JSON documents, ``records(kind, key, data)``, plus a
``meta`` table for counters and the clock offset. The state writes the records a request
changed and commits once per request, so a worker killed with SIGKILL loses nothing that was
answered. Without ``--state-file`` no store exists and the in-memory mode pays nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class SqliteStore:
    """A small SQLite-backed store of JSON records.

    :param path: the database file; created if missing.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._pending: dict[tuple[str, str], str | None] = {}
        self._pending_meta: dict[str, str] = {}

    def put(self, kind: str, key: str | int, data: dict[str, Any]) -> None:
        """Stage a record for the next :meth:`commit`."""
        self._pending[(kind, str(key))] = json.dumps(data, separators=(",", ":"))

    def delete(self, kind: str, key: str | int) -> None:
        """Stage the deletion of a record."""
        self._pending[(kind, str(key))] = None

    def set_meta(self, name: str, value: Any) -> None:
        """Stage a meta value (JSON-encoded)."""
        self._pending_meta[name] = json.dumps(value)

    def commit(self) -> None:
        """Write every staged change in one transaction."""
        if not self._pending and not self._pending_meta:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
            meta, self._pending_meta = self._pending_meta, {}
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                for (kind, key), data in pending.items():
                    if data is None:
                        cur.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
                    else:
                        cur.execute(
                            "INSERT OR REPLACE INTO records (kind, key, data) VALUES (?, ?, ?)",
                            (kind, key, data),
                        )
                for name, value in meta.items():
                    cur.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def clear(self) -> None:
        """Delete everything (used by a state reset)."""
        with self._lock:
            self._pending.clear()
            self._pending_meta.clear()
            self._conn.execute("DELETE FROM records")
            self._conn.execute("DELETE FROM meta")

    def is_empty(self) -> bool:
        """Return True if the database holds no state yet."""
        row = self._conn.execute("SELECT COUNT(*) FROM meta").fetchone()
        return not row or row[0] == 0

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Return every record of ``kind``, decoded."""
        rows = self._conn.execute("SELECT data FROM records WHERE kind = ?", (kind,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def meta(self) -> dict[str, Any]:
        """Return every meta value, decoded."""
        return {name: json.loads(value) for name, value in self._conn.execute("SELECT name, value FROM meta")}

    def close(self) -> None:
        """Commit what is staged and close the database."""
        self.commit()
        self._conn.close()
