"""Records the sandbox keeps: messages, batches, back-office log entries, inbound SMS.

Message statuses are not stored: they are computed from the message's creation time, the
sandbox clock and the delivery delay (:meth:`Message.statuses`), so no background task is needed
and advancing the clock moves every message at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_smsend.sandbox.outcomes import PENDING_MNC, PENDING_NOTIFY, PENDING_QUEUE, outcome_for

ROME = ZoneInfo("Europe/Rome")


def rome_time(epoch: float) -> datetime:
    """Return ``epoch`` as an aware Europe/Rome datetime, to the second."""
    return datetime.fromtimestamp(int(epoch), ROME)


def rome_text(epoch: float) -> str:
    """Format ``epoch`` as ``YYYY-MM-DD HH:MM:SS`` in Europe/Rome local time (the gateway's format)."""
    return rome_time(epoch).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Message:
    """One SMS, MNC lookup or MMS recipient the sandbox accepted.

    :param id: row id in batch-status reports.
    :param request_id: the batch id (``HTTP00000000001``) the message belongs to.
    :param kind: ``"sms"``, ``"mnc"`` or ``"mms"``.
    :param created_at: epoch seconds on the sandbox clock.
    :param cost: euros charged for this message, four decimals, as text.
    """

    id: int
    request_id: str
    kind: str
    u_id: int
    username: str
    rcpt: str
    created_at: float
    sender: str = ""
    text: str = ""
    qty: str = ""
    operation: str = ""
    url: str = ""
    subject: str = ""
    segments: int = 0
    cost: str = "0.0000"
    attachments: list[str] = field(default_factory=list)

    def statuses(self, now: float, delay: float) -> dict[str, tuple[int, str]]:
        """Return the current ``queue``, ``notify`` and ``mnc`` (status, text) of this message.

        Queue and mnc reach their final status ``delay`` seconds after acceptance; notify
        (delivery) after ``2 * delay``.

        :param now: the sandbox clock's current time.
        :param delay: the delivery delay in seconds.
        """
        outcome = outcome_for(self.rcpt)
        age = now - self.created_at
        queue = outcome.queue if outcome.queue and age >= delay else PENDING_QUEUE
        notify = outcome.notify if outcome.notify and age >= 2 * delay else PENDING_NOTIFY
        mnc = outcome.mnc if outcome.mnc and age >= delay else PENDING_MNC
        return {"queue": queue, "notify": notify, "mnc": mnc}

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-friendly dict."""
        return asdict(self)

    def describe(self, now: float, delay: float) -> dict[str, Any]:
        """Return the record plus its current statuses and network, for the admin API."""
        data = self.to_json()
        data["created_at"] = rome_time(self.created_at).isoformat()
        for name, (status, text) in self.statuses(now, delay).items():
            data[f"{name}_status"] = status
            data[f"{name}_text"] = text
        outcome = outcome_for(self.rcpt)
        data["netcode"] = outcome.netcode
        data["network"] = outcome.network
        return data


@dataclass
class Batch:
    """A request id and the messages it covers.

    :param kind: ``"sms"`` (queue/notify reports) or ``"mnc"`` (mnc report).
    """

    request_id: str
    kind: str
    u_id: int
    message_ids: list[int]


@dataclass
class UserlogEntry:
    """One back-office operation for ``userlog-get.php``.

    :param type: ``"credits"``, ``"recv_add"`` or ``"recv_del"``.
    :param reseller: username of the reseller that made the call.
    """

    id: int
    type: str
    created_at: float
    u_id: int
    username: str
    reseller: str
    bill_id: int | None = None
    credit: str = ""
    dest: str = ""
    sharecode: str = ""


@dataclass
class InboundSms:
    """An SMS received on a shared number with a share code (injected via the admin API)."""

    id: int
    rcpt: str
    sharecode: str
    sender: str
    text: str
    received_at: float

    def describe(self) -> dict[str, Any]:
        """Return the record for the admin API (``received_at`` ISO 8601, Europe/Rome)."""
        data = asdict(self)
        data["received_at"] = rome_time(self.received_at).isoformat()
        return data
