"""Fixtures of the reliability tests: those of tests/operators and tests/transfers, reused.

From tests/operators/conftest.py: ``smsend_sandbox`` (one sandbox gateway for the session),
``sandbox`` (reset: no faults, default settings, zero counters), ``smsend_conn_id``,
``add_smsend_connection``, ``ledger_db``, ``ledger_conn_id``, ``make_context``.
From tests/transfers/conftest.py: ``target`` (SQLite, PostgreSQL, MariaDB; a missing service
skips, or FAILS with ``SMSEND_REQUIRE_SERVICES=1``) and ``gateway`` (a requests-mock stub
gateway serving the reports a test puts in it).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _shared import operators, transfers  # noqa: E402

smsend_sandbox = operators.smsend_sandbox
sandbox = operators.sandbox
smsend_conn_id = operators.smsend_conn_id
add_smsend_connection = operators.add_smsend_connection
ledger_db = operators.ledger_db
ledger_conn_id = operators.ledger_conn_id
make_context = operators.make_context
target = transfers.target
gateway = transfers.gateway
