"""Sandbox fixtures shared with the other sensor/trigger tests (see smsend_test_support.sensor_fixtures)."""

from smsend_test_support.sensor_fixtures import *  # noqa: F403
