"""Fixtures of the sandbox tests: one sandbox per session, reset before every test."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_smsend.sandbox.testing import run_sandbox

# The test modules import sandbox_helpers (beside this file) in any pytest import mode.
sys.path.insert(0, os.path.dirname(__file__))

from sandbox_helpers import NO_FAULTS  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_smsend.sandbox.testing import SandboxServer


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with run_sandbox(delivery_delay=2.0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """A sandbox back to its fixture, with no faults, default settings and zeroed stats."""
    sandbox_server.admin.set_faults(**NO_FAULTS)
    sandbox_server.admin.set_settings(delivery_delay=2.0, mnc_report="spec", allow_ips=[])
    sandbox_server.admin.reset()
    return sandbox_server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
