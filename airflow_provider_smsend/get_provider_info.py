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
    "inbound_to_sql": "smSend received SMS",
}

#: The docs site's how-to page of each transfer module (docs/transfer/).
TRANSFER_HOWTOS = {
    "base": "/docs/transfer/index.md",
    **{module: f"/docs/transfer/{module}.md" for module in TRANSFER_SOURCES if module != "base"},
}

#: The how-to pages of the smSend integration (the docs site, docs/).
HOWTO_GUIDES = [
    "/docs/operators/sms.md",
    "/docs/operators/mms.md",
    "/docs/operators/mnc.md",
    "/docs/operators/backoffice.md",
    "/docs/sensors/batch_status.md",
    "/docs/sensors/inbound.md",
    "/docs/triggers/inbound_event.md",
    "/docs/notifications/smsend_notifier.md",
    "/docs/sandbox.md",
]

#: The connection form (shared with SmSendHook.get_ui_field_behaviour).
HIDDEN_FIELDS = ["schema", "extra"]
RELABELING = {"host": "Gateway host or URL", "login": "SMS API user", "password": "SMS API password"}
PLACEHOLDERS = {
    "host": "app.smsend.it (or your reseller's host, or http://127.0.0.1:8765)",
    "login": "user (Profilo account)",
    "password": "pass",
    "port": "443",
}


#: Bounds of the numeric extras, enforced by the form and by SmSendHook alike: (minimum, maximum).
LIMITS: dict[str, tuple[float, float | None]] = {
    "timeout": (0.1, 3600),
    "connect_timeout": (0.1, 600),
    "retries": (0, 10),
    "max_report_bytes": (1, None),
}

#: The form's sections, in the order the UI shows them.
SECTION_TRANSPORT = "Transport"
SECTION_BACKOFFICE = "Back-office (reseller API)"
SECTION_SOAP = "Web services (receiveSms, sendMms)"
SECTION_SENDING = "Sending defaults"


def _field(
    label: str,
    description: str,
    section: str,
    schema: dict[str, Any],
    *,
    choices: dict[str, str] | None = None,
    unset: str | None = None,
) -> dict:
    """One conn-field: never a stored default (the hook holds the defaults), always nullable.

    ``choices`` makes a drop-down of labelled values; ``unset`` labels the empty choice (the hook's
    default). Airflow 3.3's form reads ``section`` and ``values_display`` from the field's schema.
    """
    schema = {**schema, "section": section}
    if choices is not None:
        schema["enum"] = [*choices, None]
        schema["values_display"] = {**choices, "null": unset or "Not set"}
    return {"label": label, "description": f"Optional. {description}", "schema": schema}


def _string(
    label: str,
    description: str,
    section: str,
    *,
    secret: bool = False,
    choices: dict[str, str] | None = None,
    unset: str | None = None,
) -> dict:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:  # Airflow marks a conn-field sensitive (masked in UI/API) only with format: password
        schema["format"] = "password"
    return _field(label, description, section, schema, choices=choices, unset=unset)


def _bounded(label: str, description: str, section: str, key: str, *, integer: bool) -> dict:
    minimum, maximum = LIMITS[key]
    schema: dict[str, Any] = {"type": ["integer" if integer else "number", "null"], "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return _field(label, description, section, schema)


def conn_fields() -> dict[str, dict]:
    """The smsend connection form: every extra SmSendHook reads (hooks/smsend.py ``EXTRA_FIELDS``)."""
    transport, backoffice, soap, sending = (
        SECTION_TRANSPORT,
        SECTION_BACKOFFICE,
        SECTION_SOAP,
        SECTION_SENDING,
    )
    return {
        "scheme": _string(
            "Scheme",
            "Used when the host is a bare host name; an http:// or https:// in the host wins.",
            transport,
            choices={"https": "https", "http": "http (a local sandbox or gateway)"},
            unset="Not set: https",
        ),
        "charset": _string(
            "Request charset",
            "The charset of the requests' form data.",
            transport,
            choices={"utf-8": "UTF-8", "iso-8859-1": "ISO-8859-1 (Latin-1)"},
            unset="Not set: UTF-8",
        ),
        "connect_timeout": _bounded(
            "Connect timeout (s)",
            "Seconds to wait for a connection. Default: 5.",
            transport,
            "connect_timeout",
            integer=False,
        ),
        "timeout": _bounded(
            "Read timeout (s)",
            "Seconds to wait for an answer. Default: 30.",
            transport,
            "timeout",
            integer=False,
        ),
        "retries": _bounded(
            "Read retries",
            "Retries of read-only calls after a transient failure; calls that spend money never retry. "
            "Default: 3.",
            transport,
            "retries",
            integer=True,
        ),
        "max_report_bytes": _bounded(
            "Max report bytes",
            "The longest report answer read (batch-status, userlog-get), in bytes. Default: 536870912 (512 MiB).",
            transport,
            "max_report_bytes",
            integer=True,
        ),
        "reseller_username": _string(
            "Reseller user", "Back-office login (smsusername). Default: the SMS API user.", backoffice
        ),
        "reseller_password": _string(
            "Reseller password",
            "Back-office password (smspassword). Default: the SMS API password.",
            backoffice,
            secret=True,
        ),
        "receive_host": _string(
            "receiveSms host", "The dnsservice host of the inbound SMS web service. Default: the host.", soap
        ),
        "wsdl_receive": _string(
            "receiveSms WSDL", "URL or path of the receiveSms WSDL. Default: the copy in the package.", soap
        ),
        "mms_host": _string(
            "sendMms host", "The dnsservice host of the MMS web service. Default: the host.", soap
        ),
        "wsdl_mms": _string(
            "sendMms WSDL", "URL or path of the sendMms WSDL. Default: the copy in the package.", soap
        ),
        "mms_id": _string(
            "MMS id", "The MMS account id issued by smSend, e.g. C00000_001. Needed for MMS.", soap
        ),
        "mms_password": _string(
            "MMS password", "The MMS account password. Needed for MMS.", soap, secret=True
        ),
        "mms_auth": _string(
            "MMS auth",
            "How sendMms authenticates.",
            soap,
            choices={"plain": "Plain password", "md5": "MD5 ticket (the password never leaves)"},
            unset="Not set: plain password",
        ),
        "default_sender": _string(
            "Default sender",
            "Sender when an operator names none: up to 11 letters/digits or a +number.",
            sending,
        ),
        "default_recipients": _string(
            "Default recipients",
            "Numbers the notifier texts when it names none, comma-separated: +39333…, +39334…",
            sending,
        ),
        "default_quality": _string(
            "Default quality",
            "The SMS quality when an operator names none.",
            sending,
            choices={
                "ll": "ll: low",
                "l": "l: medium",
                "a": "a: automatic",
                "h": "h: high",
                "n": "n: notification",
            },
            unset="Not set: h (high)",
        ),
        "default_region": _string(
            "Default region", "Region (ISO 3166 code) of numbers written without +. Default: IT.", sending
        ),
        "pseudonym_key": _string(
            "Pseudonym key",
            "Secret key of the numbers' pseudonyms (recipient_key, sender_key) in warehouse tables. "
            "Default: the SMS API password; set it to keep them stable when the password changes.",
            sending,
            secret=True,
        ),
        "price_per_segment": _string(
            "Price per segment (EUR)",
            'For cost estimates and max_cost: 0.0850, or per quality {"h": "0.0850", "l": "0.0600"}. '
            "Default: read from the gateway (credit.php).",
            sending,
        ),
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
                "how-to-guide": HOWTO_GUIDES,
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
                    f"{_PKG}.triggers.inbound_event",
                ],
            }
        ],
        "transfers": [
            {
                "source-integration-name": source,
                "target-integration-name": "Common SQL",
                "python-module": f"{_PKG}.transfers.{module}",
                "how-to-guide": TRANSFER_HOWTOS[module],
            }
            for module, source in TRANSFER_SOURCES.items()
        ],
        "connection-types": [
            {
                "hook-class-name": f"{_PKG}.hooks.smsend.SmSendHook",
                "hook-name": "smSend",
                "connection-type": "smsend",
                "conn-fields": conn_fields(),
                "ui-field-behaviour": {
                    "hidden-fields": HIDDEN_FIELDS,
                    "relabeling": RELABELING,
                    "placeholders": PLACEHOLDERS,
                },
            }
        ],
    }
