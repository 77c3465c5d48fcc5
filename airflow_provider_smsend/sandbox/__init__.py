"""A faithful, stateful local emulator of the smSend gateway (no Airflow import here).

Run it with ``smsend-sandbox`` or ``python -m airflow_provider_smsend.sandbox``; in tests use
:func:`airflow_provider_smsend.sandbox.testing.run_sandbox`. See ``docs/sandbox.md``.
"""

from __future__ import annotations

from airflow_provider_smsend.sandbox.app import SandboxApp, create_app
from airflow_provider_smsend.sandbox.faults import FaultSettings
from airflow_provider_smsend.sandbox.state import SandboxState, Settings

__all__ = ["FaultSettings", "SandboxApp", "SandboxState", "Settings", "create_app"]
