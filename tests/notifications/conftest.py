"""Operator fixtures: sandbox, connections, ledger, Context (see smsend_test_support.operator_fixtures)."""

from smsend_test_support.operator_fixtures import *  # noqa: F403
