"""The smSend gateway client, with no Airflow inside.

Example::

    from airflow_provider_smsend.client import SmSendClient

    with SmSendClient(username="user", password="secret", default_sender="ACME") as client:
        result = client.send("+393331234567", "Hello")
        print(result.cost, result.request_id)
"""

from __future__ import annotations

from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendError,
    SmSendGatewayError,
    SmSendInsufficientCreditError,
    SmSendInternalError,
    SmSendInvalidParameterError,
    SmSendNotFoundError,
    SmSendReportError,
    SmSendTemporaryError,
    SmSendTimeoutError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.http import DEFAULT_BASE_URL, SendResult, SmSendClient
from airflow_provider_smsend.client.reports import BatchStatusReport, BatchStatusRow, UserlogEntry
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.validation import PreparedMessage

__all__ = [
    "DEFAULT_BASE_URL",
    "BatchStatusReport",
    "BatchStatusRow",
    "PreparedMessage",
    "RetryPolicy",
    "SendResult",
    "SmSendAuthError",
    "SmSendClient",
    "SmSendError",
    "SmSendGatewayError",
    "SmSendInsufficientCreditError",
    "SmSendInternalError",
    "SmSendInvalidParameterError",
    "SmSendNotFoundError",
    "SmSendReportError",
    "SmSendTemporaryError",
    "SmSendTimeoutError",
    "SmSendTransportError",
    "SmSendValidationError",
    "UserlogEntry",
]
