"""SmSendHook: an Airflow Connection of type ``smsend`` turned into configured smSend clients."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook

from airflow_provider_smsend.client.deadline import DEFAULT_MAX_REPORT_BYTES
from airflow_provider_smsend.client.errors import SmSendError, SmSendValidationError
from airflow_provider_smsend.client.http import DEFAULT_BASE_URL, SmSendClient, normalize_base_url
from airflow_provider_smsend.client.numbers import DEFAULT_REGION
from airflow_provider_smsend.client.reports import ROME
from airflow_provider_smsend.client.retry import NO_RETRY, RetryPolicy
from airflow_provider_smsend.client.validation import parse_credit_amount, parse_list_text
from airflow_provider_smsend.get_provider_info import LIMITS

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_smsend.client.soap import SmSendSoapClient

log = logging.getLogger(__name__)

#: Connection extras the hook reads, with their meaning (also the UI form, see get_provider_info).
EXTRA_FIELDS: dict[str, str] = {
    "scheme": "http or https (default https) when host is a bare host name",
    "reseller_username": "back-office login (smsusername); default: the connection login",
    "reseller_password": "back-office password (smspassword); default: the connection password",
    "receive_host": "host of the receiveSms SOAP service (dnsservice); default: the connection host",
    "mms_host": "host of the sendMms SOAP service (dnsservice); default: the connection host",
    "mms_id": "MMS account id given by smSend (e.g. C00000_001)",
    "mms_password": "MMS account password",
    "mms_auth": "plain (password sent) or md5 (ticket; the password never leaves)",
    "timeout": "read timeout in seconds, 0.1 to 3600 (default 30)",
    "retries": "retries of read-only calls after a transient failure, 0 to 10 (default 3; money calls never retry)",
    "connect_timeout": "connect timeout in seconds, 0.1 to 600 (default 5)",
    "max_report_bytes": "the longest report answer read, in bytes (default 536870912, 512 MiB)",
    "default_sender": "sender used when an operator gives none (<= 11 alphanumerics or +number)",
    "default_recipients": "numbers the notifier texts when it names none: comma-separated or a JSON list",
    "default_quality": "ll, l, a, h or n (default h)",
    "default_region": "region for national numbers (default IT)",
    "charset": "request charset: utf-8 (default) or iso-8859-1",
    "price_per_segment": "EUR per SMS segment for cost estimates and max_cost, or a JSON object per quality "
    '({"h": "0.0850", "l": "0.0600"}); default: read from the gateway (credit.php)',
    "wsdl_receive": "URL or path of the receiveSms WSDL instead of the bundled copy",
    "wsdl_mms": "URL or path of the sendMms WSDL instead of the bundled copy",
    "pseudonym_key": "secret key of the numbers' pseudonyms in warehouse tables (recipient_key, sender_key); "
    "default: the connection password",
}
SECRET_EXTRAS = ("reseller_password", "mms_password", "pseudonym_key")


def _float(extras: dict[str, Any], key: str, default: float) -> float:
    value = extras.get(key)
    if value in (None, ""):
        return default
    minimum, maximum = LIMITS[key]
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise SmSendValidationError(
            f"Connection extra {key!r} must be a number of seconds, got {value!r}."
        ) from exc
    upper = float("inf") if maximum is None else maximum
    if isinstance(value, bool) or not minimum <= number <= upper or number == float("inf"):
        raise SmSendValidationError(
            f"Connection extra {key!r} must be a finite number of seconds from {minimum:g} to {upper:g}, "
            f"got {value!r}."
        )
    return number


class SmSendHook(BaseHook):
    """Interact with the smSend SMS/MMS gateway through an Airflow connection.

    The connection: **host** is the gateway host name or full URL (https by default; an explicit
    ``http://`` or the ``scheme`` extra is honoured, which the local sandbox needs), **login** and
    **password** are the SMS API credentials. Extras are listed in :data:`EXTRA_FIELDS`.

    :param smsend_conn_id: the Airflow connection id (default ``smsend_default``).

    Example::

        from airflow_provider_smsend.hooks.smsend import SmSendHook

        hook = SmSendHook(smsend_conn_id="smsend_default")
        result = hook.client.send("+393331234567", "Nightly load done", sender="DATA")
        print(result.cost, result.request_id)

    A connection URI for the sandbox::

        smsend://demo:demo-pass@127.0.0.1:8765/?scheme=http&reseller_username=reseller&reseller_password=reseller-pass
    """

    conn_name_attr = "smsend_conn_id"
    default_conn_name = "smsend_default"
    conn_type = "smsend"
    hook_name = "smSend"

    def __init__(self, *, smsend_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smsend_conn_id = smsend_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form: hide unused fields, relabel login/password, show placeholders."""
        from airflow_provider_smsend.get_provider_info import HIDDEN_FIELDS, PLACEHOLDERS, RELABELING

        return {
            "hidden_fields": list(HIDDEN_FIELDS),
            "relabeling": dict(RELABELING),
            "placeholders": dict(PLACEHOLDERS),
        }

    @cached_property
    def connection(self) -> Connection:
        """The Airflow connection, fetched once; its secrets are registered with the masker."""
        conn = self.get_connection(self.smsend_conn_id)
        mask_secret_value(conn.password)
        for key in SECRET_EXTRAS:
            mask_secret_value(conn.extra_dejson.get(key))
        return conn

    @property
    def extras(self) -> dict[str, Any]:
        """The connection's extras as a dict."""
        return dict(self.connection.extra_dejson)

    @property
    def pseudonym_key(self) -> str:
        """The secret key of the numbers' pseudonyms in warehouse tables (docs/gateway.md, "Pseudonyms").

        The ``pseudonym_key`` extra, else the connection's password: a secret that readers of the
        warehouse do not have. Changing it (a new password) changes every pseudonym: set the extra
        to keep them stable across password changes.

        :raises SmSendValidationError: neither is set.
        """
        key = self.extras.get("pseudonym_key") or self.connection.password
        if not key:
            raise SmSendValidationError(
                f"Connection {self.smsend_conn_id!r} has no password and no pseudonym_key extra: the "
                "numbers' pseudonyms in warehouse tables need a secret key."
            )
        return str(key)

    @property
    def default_recipients(self) -> list[str]:
        """The ``default_recipients`` extra as a list (empty when unset), numbers as written."""
        return recipient_list(self.extras.get("default_recipients"), name="default_recipients")

    def price_per_segment(self, quality: str) -> Decimal | None:
        """The ``price_per_segment`` extra for ``quality`` (EUR), or None when it gives none.

        The extra is one amount for every quality (``"0.0850"``) or a JSON object per quality
        (``{"h": "0.0850", "l": "0.0600"}``); without it the SMS operator reads the price from the
        gateway (docs/gateway.md, "Cost").

        :param quality: the quality code of the send (``ll``, ``l``, ``a``, ``h``, ``n``).
        :raises SmSendValidationError: an amount that is not a positive number with at most 4 decimals.
        """
        value = self.extras.get("price_per_segment")
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise SmSendValidationError(
                    f"Connection extra 'price_per_segment' {value!r} is not a JSON object: give an amount like "
                    '"0.0850" or {"h": "0.0850", "l": "0.0600"}.'
                ) from exc
        if isinstance(value, Mapping):
            value = value.get(quality)
        if value in (None, ""):
            return None
        try:
            return parse_credit_amount(str(value) if isinstance(value, float) else value)
        except SmSendValidationError as exc:
            raise SmSendValidationError(
                f"Connection extra 'price_per_segment' for quality {quality!r} must be a positive amount in EUR "
                f'with at most 4 decimals, like "0.0850"; got {value!r}.'
            ) from exc

    def _base_url(self, host_value: str | None = None) -> str:
        conn = self.connection
        extras = self.extras
        scheme = str(extras.get("scheme") or "https").lower()
        if scheme not in ("http", "https"):
            raise SmSendValidationError(f"Connection extra 'scheme' must be http or https, got {scheme!r}.")
        host = host_value if host_value is not None else (conn.host or DEFAULT_BASE_URL)
        if conn.port and host_value is None and conn.host:
            if "://" not in host:
                host = f"{host}:{conn.port}"
            else:  # a full URL in host: add the port field unless the URL names one
                parts = urlsplit(host)
                if parts.port is None and parts.hostname:
                    host = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{conn.port}"))
        return normalize_base_url(host, default_scheme=scheme)

    def _timeout(self) -> tuple[float, float]:
        extras = self.extras
        return (_float(extras, "connect_timeout", 5.0), _float(extras, "timeout", 30.0))

    def _retry_policy(self) -> RetryPolicy:
        """Retries of read-only calls from the ``retries`` extra (default 3; money calls never retry)."""
        value = self.extras.get("retries")
        if value in (None, ""):
            return RetryPolicy()
        try:
            retries = int(value)
        except (TypeError, ValueError):
            retries = -1
        low, high = LIMITS["retries"]
        if isinstance(value, bool) or not low <= retries <= (high or 0) or str(retries) != str(value).strip():
            raise SmSendValidationError(
                f"Connection extra 'retries' must be an integer from {low:g} to {high:g}, got {value!r}."
            )
        return RetryPolicy(attempts=retries + 1)

    def _max_report_bytes(self) -> int:
        """The ``max_report_bytes`` extra (docs/gateway.md, "Deadlines and size caps")."""
        value = self.extras.get("max_report_bytes")
        if value in (None, ""):
            return DEFAULT_MAX_REPORT_BYTES
        text = str(int(value) if isinstance(value, float) and value.is_integer() else value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < LIMITS["max_report_bytes"][0]:
            raise SmSendValidationError(
                f"Connection extra 'max_report_bytes' must be a positive number of bytes, got {value!r}."
            )
        return int(text)

    @cached_property
    def client(self) -> SmSendClient:
        """The configured :class:`~airflow_provider_smsend.client.SmSendClient` (HTTP API)."""
        conn = self.connection
        extras = self.extras
        if not conn.login or not conn.password:
            raise SmSendValidationError(
                f"Connection {self.smsend_conn_id!r} needs a login and a password (the SMS API user and pass)."
            )
        return SmSendClient(
            base_url=self._base_url(),
            username=conn.login,
            password=conn.password,
            reseller_username=extras.get("reseller_username") or None,
            reseller_password=extras.get("reseller_password") or None,
            timeout=self._timeout(),
            charset=extras.get("charset") or "utf-8",
            default_region=extras.get("default_region") or DEFAULT_REGION,
            default_sender=extras.get("default_sender") or None,
            default_quality=extras.get("default_quality") or "h",
            retry=self._retry_policy(),
            max_report_bytes=self._max_report_bytes(),
        )

    @cached_property
    def soap_client(self) -> SmSendSoapClient:
        """The configured SOAP client (receiveSms, sendMms), built on first use."""
        from airflow_provider_smsend.client.soap import SmSendSoapClient

        conn = self.connection
        extras = self.extras
        receive_host = extras.get("receive_host")
        mms_host = extras.get("mms_host")
        return SmSendSoapClient(
            receive_url=self._base_url(receive_host) if receive_host else self._base_url(),
            mms_url=self._base_url(mms_host) if mms_host else self._base_url(),
            username=conn.login or "",
            password=conn.password or "",
            mms_id=extras.get("mms_id") or None,
            mms_password=extras.get("mms_password") or None,
            mms_auth=extras.get("mms_auth") or "plain",
            timeout=self._timeout(),
            operation_timeout=self._timeout(),
            retry=self._retry_policy(),
            wsdl_receive=extras.get("wsdl_receive") or None,
            wsdl_mms=extras.get("wsdl_mms") or None,
            region=extras.get("default_region") or DEFAULT_REGION,
        )

    def get_conn(self) -> SmSendClient:
        """Return the HTTP API client (Airflow's conventional accessor)."""
        return self.client

    @property
    def backoffice_configured(self) -> bool:
        """Whether the connection names back-office credentials (``reseller_username``/``reseller_password``)."""
        extras = self.extras
        return bool(extras.get("reseller_username") or extras.get("reseller_password"))

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials with read-only calls only: no message is sent, nothing is charged.

        The SMS API user and password with the credit check (credit.php); when the connection
        names back-office credentials, those too with one operation-log request (userlog-get.php,
        today's credits; only its first line is read). The answer names what failed. One attempt
        per call, no retries: the UI's button answers within the connection's timeouts.
        """
        try:
            client = self.client
            policy, client.retry = client.retry, NO_RETRY
            try:
                try:
                    credit = client.credit("credit")
                except SmSendError as exc:
                    return False, f"The SMS API user and password failed the credit check (credit.php): {exc}"
                if not self.backoffice_configured:
                    return True, f"Connection works: available credit {credit} EUR."
                today = datetime.now(ROME).date()
                try:
                    with client.stream_userlog("credits", date_from=today, date_to=today):
                        pass
                except SmSendError as exc:
                    return False, (
                        f"The SMS API works (available credit {credit} EUR), but the back-office credentials "
                        f"(reseller_username, reseller_password) failed the operation-log check "
                        f"(userlog-get.php): {exc}"
                    )
            finally:
                client.retry = policy
        except SmSendError as exc:
            return False, str(exc)
        except Exception as exc:  # the UI needs an answer, never a traceback
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connection works: available credit {credit} EUR; the back-office credentials work."


def recipient_list(value: object, *, name: str = "recipients") -> list[str]:
    """Numbers from a list, or from text: separated by commas or semicolons, or a JSON/Python list.

    :raises SmSendValidationError: text that looks like a list but is not one, or a value of another type.
    """
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
        value = parse_list_text(text, name=name)
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, bool | bytes | Mapping) or not isinstance(value, Iterable):
        raise SmSendValidationError(f"{name} must be numbers as text or a list, got {type(value).__name__}.")
    return [str(v).strip() for v in value if str(v).strip()]


def mask_secret_value(secret: object) -> None:
    """Register ``secret`` with Airflow's secret masker (empty values are ignored)."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older SDK layouts
        return
    mask_secret(str(secret))
