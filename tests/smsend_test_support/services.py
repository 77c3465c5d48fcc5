"""The local services some tests need (PostgreSQL, MariaDB): skip when absent, fail when required."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest


def services_required() -> bool:
    """True when ``SMSEND_REQUIRE_SERVICES=1``: a missing service is a failure, not a skip."""
    return os.environ.get("SMSEND_REQUIRE_SERVICES", "").strip().lower() in ("1", "true", "yes")


def require_service(name: str, probe: Callable[[], object]) -> None:
    """Run ``probe``; if it raises, skip the test with the reason (or fail when services are required)."""
    try:
        probe()
    except Exception as exc:  # any failure to reach the service
        reason = f"{name} is not available ({type(exc).__name__}: {exc})"
        if services_required():
            pytest.fail(f"{reason}; SMSEND_REQUIRE_SERVICES=1 makes this a failure.", pytrace=False)
        pytest.skip(reason)
