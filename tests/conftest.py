"""Session-wide test setup: Airflow kept away from the real AIRFLOW_HOME, and the suite's one sandbox.

The sandbox fixtures are defined here and nowhere else (see :mod:`smsend_test_support.sandbox`):
``sandbox_server`` is one sandbox gateway for the session, ``sandbox`` is that gateway reset
before the test (no faults, the suite's settings, zeroed counters, fresh state).
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

import pytest

# Set before any test module imports Airflow (the hook tests do), so that Airflow's config,
# logs and database files land in a throw-away directory, never in a real installation.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="smsend-tests-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from smsend_test_support.sandbox import SETTINGS, reset_sandbox  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_smsend.sandbox.testing import SandboxServer


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox gateway for the whole session (reset by ``sandbox`` before each test)."""
    from airflow_provider_smsend.sandbox.testing import run_sandbox

    with run_sandbox(**SETTINGS) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, reset: fresh state, no faults, the suite's settings, zero counters."""
    return reset_sandbox(sandbox_server)
