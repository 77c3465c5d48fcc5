"""The suite's one sandbox gateway: what "reset" means, and the values a reset test starts from.

``tests/conftest.py`` builds the two fixtures every test directory uses on :func:`reset_sandbox`:

``sandbox_server`` (session)
    One sandbox gateway (:func:`~airflow_provider_smsend.sandbox.testing.run_sandbox`) for the
    whole session, on 127.0.0.1 and a free port.
``sandbox`` (function)
    That gateway reset before the test (:func:`reset_sandbox`): the packaged fixture's accounts
    and credit, no message, batch, share code, inbound SMS or userlog entry, id counters and clock
    offset back to zero, no fault (every :class:`FaultSettings` default, the random generator
    re-seeded), the suite's :data:`SETTINGS`, zero request and fault counters. A test that needs
    another delivery delay, an allowlist or faults sets them through ``sandbox.admin``
    (``set_settings``, ``set_faults``); the next test's reset undoes them.

A module-scoped fixture that must keep gateway state across the tests of its module (data that
is slow to make) takes ``sandbox_server`` and calls :func:`reset_sandbox` itself, before and after.

:func:`soap_client` is the SOAP client of the sandbox's demo account, for every test that talks
SOAP (receiveSms, sendMms) to the suite's sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import SmSendSoapClient
from airflow_provider_smsend.sandbox.faults import FaultSettings

if TYPE_CHECKING:
    from airflow_provider_smsend.sandbox.testing import SandboxServer

#: The suite's settings: messages reach their final status at once (``delivery_delay=0``); the
#: sandbox's own defaults otherwise (every report row as in the document, no allowlist).
SETTINGS: dict[str, Any] = {"delivery_delay": 0.0, "mnc_report": "spec", "allow_ips": []}

#: No fault at all: every field of :class:`FaultSettings` at its default (``seed=None`` re-seeds).
NO_FAULTS: dict[str, Any] = FaultSettings().to_json()


def reset_sandbox(server: SandboxServer, **settings: Any) -> SandboxServer:
    """Put ``server`` back to a fresh sandbox's state under the suite's :data:`SETTINGS`.

    :param server: the running sandbox.
    :param settings: settings that differ from :data:`SETTINGS` (``delivery_delay=0.3``).
    :return: ``server``.
    """
    admin = server.admin
    admin.set_faults(**NO_FAULTS)
    admin.set_settings(**{**SETTINGS, **settings})
    admin.reset()  # the fixture reloaded; request counters, clock offset, fault counters zeroed
    return server


def soap_client(server: Any, **options: Any) -> SmSendSoapClient:
    """The SOAP client of the sandbox's demo account (sandbox/default_accounts.json) on ``server``:
    one attempt per call, 5 s to connect and 10 s to read.

    :param server: the running sandbox (anything with its ``url``).
    :param options: :class:`SmSendSoapClient` arguments that differ (``retry=...``, ``timeout=...``).
    """
    defaults: dict[str, Any] = {
        "receive_url": server.url,
        "mms_url": server.url,
        "username": "demo",
        "password": "demo-pass",
        "mms_id": "C00000_001",
        "mms_password": "mms-pass",
        "retry": RetryPolicy(attempts=1),
        "timeout": (5.0, 10.0),
    }
    return SmSendSoapClient(**{**defaults, **options})
