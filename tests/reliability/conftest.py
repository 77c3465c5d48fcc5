"""Fixtures of the reliability tests: the shared operator fixtures and those of tests/transfers.

The sandbox is the suite's (``tests/conftest.py``): ``sandbox_server`` (one gateway for the
session) and ``sandbox`` (reset: no faults, the suite's settings, zero counters, fresh state).
From ``smsend_test_support.operator_fixtures``: ``smsend_conn_id``, ``add_smsend_connection``,
``ledger_db``, ``ledger_conn_id``, ``make_context``.
From tests/transfers/conftest.py: ``target`` (SQLite, PostgreSQL, MariaDB; a missing service
skips, or FAILS with ``SMSEND_REQUIRE_SERVICES=1``) and ``gateway`` (a requests-mock stub
gateway serving the reports a test puts in it).
"""

from __future__ import annotations

import os
import sys

from smsend_test_support.operator_fixtures import (  # noqa: F401
    add_smsend_connection,
    ledger_conn_id,
    ledger_db,
    make_context,
    smsend_conn_id,
)

sys.path.insert(0, os.path.dirname(__file__))

from _shared import transfers  # noqa: E402

target = transfers.target
gateway = transfers.gateway
