"""Operator fixtures: connections, ledger, Context (see smsend_test_support.operator_fixtures); the
sandbox is the suite's (tests/conftest.py)."""

from smsend_test_support.operator_fixtures import *  # noqa: F403
