"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

INTEGRATION = "smSend"
_PKG = "airflow_provider_smsend"
#: The transfer modules and the gateway product each loads (its source integration); base.py is
#: the transfers' shared base, listed with the smSend integration.
TRANSFER_SOURCES = {
    "base": INTEGRATION,
    "batch_status_to_sql": "smSend batch status reports",
    "userlog_to_sql": "smSend operation log",
    "credits_to_sql": "smSend credit balances",
    "outcomes_to_sql": "smSend send ledger",
}

#: The connection form (shared with SmSendHook.get_ui_field_behaviour).
HIDDEN_FIELDS = ["schema", "extra"]
RELABELING = {"host": "Gateway host or URL", "login": "SMS API user", "password": "SMS API password"}
PLACEHOLDERS = {
    "host": "app.smsend.it (or your reseller's host, or http://127.0.0.1:8765)",
    "login": "user (Profilo account)",
    "password": "pass",
    "port": "443",
}


def _string(
    label: str,
    description: str,
    *,
    default: str | None = None,
    enum: list[str] | None = None,
    secret: bool = False,
) -> dict:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:  # Airflow marks a conn-field sensitive (masked in UI/API) only with format: password
        schema["format"] = "password"
    if default is not None:
        schema["default"] = default
    if enum is not None:
        schema["enum"] = enum
    return {"label": label, "description": description, "schema": schema}


def _number(label: str, description: str, default: float) -> dict:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["number", "null"], "default": default},
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's hooks, operators, sensors, triggers, notifiers and connection form."""
    return {
        "package-name": "airflow-provider-smsend",
        "name": "smSend",
        # The UI links each URL of the description and runs the next word into it: the link goes last.
        "description": "The SMS and MMS gateway smSend: send, check numbers, wait for delivery, receive "
        "replies, manage reseller clients and load reports. `smSend <https://www.smsend.it>`__",
        "state": "ready",
        "source-date-epoch": 1795861107,  # 0.2.0, 2026-11-28 10:18:27 UTC
        "versions": ["0.2.0", "0.1.0"],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://www.smsend.it",
                "how-to-guide": ["/docs/sandbox.md"],
                "logo": "/docs/integration-logos/smsend.svg",
                "tags": ["service"],
            },
            # One integration per gateway product a transfer loads (Airflow allows one transfer per
            # source/target pair, as Amazon declares S3, DynamoDB, ... for its transfers).
            *(
                {
                    "integration-name": name,
                    "external-doc-url": "https://www.smsend.it",
                    "logo": "/docs/integration-logos/smsend.svg",
                    "tags": ["service"],
                }
                for name in TRANSFER_SOURCES.values()
                if name != INTEGRATION
            ),
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{_PKG}.hooks.smsend", f"{_PKG}.hooks.smsend_async"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{_PKG}.operators.base",
                    f"{_PKG}.operators.sms",
                    f"{_PKG}.operators.mnc",
                    f"{_PKG}.operators.mms",
                    f"{_PKG}.operators.backoffice",
                ],
            }
        ],
        "notifications": [f"{_PKG}.notifications.smsend.SmSendNotifier"],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{_PKG}.sensors._base",
                    f"{_PKG}.sensors.batch_status",
                    f"{_PKG}.sensors.inbound",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{_PKG}.triggers._base",
                    f"{_PKG}.triggers.batch_status",
                    f"{_PKG}.triggers.inbound",
                ],
            }
        ],
        "transfers": [
            {
                "source-integration-name": source,
                "target-integration-name": "Common SQL",
                "python-module": f"{_PKG}.transfers.{module}",
            }
            for module, source in TRANSFER_SOURCES.items()
        ],
        "connection-types": [
            {
                "hook-class-name": f"{_PKG}.hooks.smsend.SmSendHook",
                "hook-name": "smSend",
                "connection-type": "smsend",
                "conn-fields": {
                    "scheme": _string(
                        "Scheme",
                        "https (default) or http for a local sandbox",
                        default="https",
                        enum=["https", "http"],
                    ),
                    "reseller_username": _string(
                        "Reseller user", "Back-office login; default: the SMS API user"
                    ),
                    "reseller_password": _string(
                        "Reseller password",
                        "Back-office password; default: the SMS API password",
                        secret=True,
                    ),
                    "receive_host": _string(
                        "receiveSms host", "dnsservice host of the inbound SMS web service"
                    ),
                    "mms_host": _string("sendMms host", "dnsservice host of the MMS web service"),
                    "mms_id": _string("MMS id", "MMS account id issued by smSend, e.g. C00000_001"),
                    "mms_password": _string("MMS password", "MMS account password", secret=True),
                    "mms_auth": _string(
                        "MMS auth", "plain password or MD5 ticket", default="plain", enum=["plain", "md5"]
                    ),
                    "timeout": _number("Read timeout (s)", "Seconds to wait for an answer", 30),
                    "retries": _number(
                        "Read retries", "Retries of read-only calls (money calls never retry)", 3
                    ),
                    "connect_timeout": _number("Connect timeout (s)", "Seconds to wait for a connection", 5),
                    "max_report_bytes": _number(
                        "Max report bytes",
                        "Longest report answer read (batch-status, userlog), in bytes; 512 MiB by default",
                        536870912,
                    ),
                    "default_sender": _string("Default sender", "Up to 11 letters/digits or +number"),
                    "default_recipients": _string(
                        "Default recipients",
                        "Numbers the notifier texts when it names none: +39333…, +39334…",
                    ),
                    "default_quality": _string(
                        "Default quality",
                        "ll low, l medium, a automatic, h high, n notification",
                        default="h",
                        enum=["ll", "l", "a", "h", "n"],
                    ),
                    "default_region": _string("Default region", "Region of national numbers", default="IT"),
                    "charset": _string(
                        "Request charset",
                        "utf-8 or iso-8859-1",
                        default="utf-8",
                        enum=["utf-8", "iso-8859-1"],
                    ),
                    "price_per_segment": _string(
                        "Price per segment (EUR)",
                        'For cost estimates and max_cost: 0.0850, or per quality {"h": "0.0850", "l": "0.0600"}; '
                        "default: read from the gateway",
                    ),
                },
                "ui-field-behaviour": {
                    "hidden-fields": HIDDEN_FIELDS,
                    "relabeling": RELABELING,
                    "placeholders": PLACEHOLDERS,
                },
            }
        ],
    }
