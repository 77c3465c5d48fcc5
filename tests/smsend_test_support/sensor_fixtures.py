"""Fixtures for the smSend sensor and trigger tests: connections to the suite's sandbox, helpers.

Used by ``tests/sensors/conftest.py`` and ``tests/triggers/conftest.py``; the sandbox itself is
the suite's ``sandbox`` fixture (``tests/conftest.py``: reset before each test).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

SECRETS = ("demo-pass", "reseller-pass", "mms-pass")


#: Seconds until a sent message reaches its final status: long enough for a sensor or trigger to
#: see it pending at its first poll, short enough to see it final a few polls later.
DELIVERY_DELAY = 0.3


@pytest.fixture
def gateway(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox (reset) delivering after :data:`DELIVERY_DELAY`, with ``smsend_default``
    (valid) and ``smsend_bad`` (wrong password)."""
    sandbox.admin.set_settings(delivery_delay=DELIVERY_DELAY)
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_DEFAULT", sandbox.connection_uri)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMSEND_BAD", sandbox.connection_uri.replace(":demo-pass@", ":wrong-pass@")
    )
    return sandbox


def sync_client(sandbox: Any) -> Any:
    from airflow_provider_smsend.client.http import SmSendClient

    return SmSendClient(
        username="demo",
        password="demo-pass",
        base_url=sandbox.url,
        reseller_username="reseller",
        reseller_password="reseller-pass",
        default_sender="ACME",
    )


def send(sandbox: Any, *numbers: str) -> list[str]:
    """Send one SMS to each number; return the request ids."""
    client = sync_client(sandbox)
    return [client.send(number, "hello").request_id for number in numbers]


def first_event(trigger: Any, *, timeout: float = 20.0) -> Any:
    """Run ``trigger`` in a real event loop and return its first event."""

    async def go() -> Any:
        async def first() -> Any:
            async for event in trigger.run():
                return event
            return None

        return await asyncio.wait_for(first(), timeout)

    return asyncio.run(go())


def reinstantiate(trigger: Any) -> Any:
    """What the triggerer does: import the class path and call it with the serialized kwargs."""
    import importlib

    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The module's helpers, for test modules (conftest is not importable)."""
    return SimpleNamespace(
        sync_client=sync_client,
        send=send,
        first_event=first_event,
        reinstantiate=reinstantiate,
        secrets=SECRETS,
    )
