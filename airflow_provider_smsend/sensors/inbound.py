"""SmSendInboundSmsSensor: wait for an SMS received on a reception number (receiveSms)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.inbound_rules import (
    compile_text_pattern,
    find_match,
    parse_received_after,
)
from airflow_provider_smsend.client.numbers import DEFAULT_REGION, mask_number
from airflow_provider_smsend.sensors._base import SmSendBaseSensor, is_templated

if TYPE_CHECKING:
    import re

    from airflow.sdk import Context

    from airflow_provider_smsend.triggers.inbound import SmSendInboundSmsTrigger


class SmSendInboundSmsSensor(SmSendBaseSensor):
    """Wait for an SMS on a reception number + share code, from a sender and/or matching a regex.

    Each poke lists the latest ``messages`` SMS with the SOAP receiveSms call and picks the
    earliest one received at or after ``received_after`` that matches (see
    :func:`~airflow_provider_smsend.client.inbound_rules.find_match`; the deferrable trigger uses
    the same function). It returns (pushes to XCom) the message's ``id``, ``received_at`` (ISO
    8601, Europe/Rome), ``sender`` and ``rcpt`` masked, and ``sharecode``; with
    ``include_message=True`` also the full ``sender`` and ``rcpt``, the ``text`` and the regex's
    ``match``, ``groups`` and ``named_groups`` (handy for a 2FA code): texts and numbers are
    personal data, so they reach XCom only on that opt-in. ``include_groups=True`` adds only the
    regex's ``named_groups`` to the masked form (a SI/NO answer to branch on, without the text).
    Deferred, the trigger's event carries the masked form only (the triggerer logs every event);
    the sensor re-reads the message by its id when it resumes.

    ``sender_sql`` (on ``sender_conn_id``, any common-sql database) reads the sender's number when
    the sensor starts, so a DAG run can name its customer by a key and the number never becomes a
    DAG-run conf, a rendered template field or a log line; deferred, the trigger runs the query
    again in the triggerer, so its kwargs (stored in the metadata database while it waits) hold the
    query, not the number.

    ``received_after`` defaults to the moment the sensor first ran, kept across reschedules (the
    first reschedule date) and deferrals (it travels in the trigger), so replies received before
    the sensor started, such as yesterday's "SI", never count. Pass it explicitly (e.g.
    ``"{{ ti.start_date }}"`` of the task that sent the question) to also accept replies that
    arrived before this task started. Message texts are never logged (they may hold codes);
    numbers are masked.

    :param rcpt: the reception number (templated).
    :param sharecode: its share code, as text: ``"001"`` (templated).
    :param sender: only SMS from this number, optional (templated).
    :param sender_sql: instead of ``sender``: a query whose first row's first column is the sender's
        number, run on ``sender_conn_id`` when the sensor starts (templated).
    :param sender_conn_id: the SQL connection of ``sender_sql`` (templated).
    :param text_pattern: only SMS whose text matches this regex (``re.search``), optional (templated).
    :param ignore_case: match ``text_pattern`` case-insensitively (default True).
    :param received_after: ignore SMS received before this datetime / ISO 8601 text (naive: UTC);
        default: when the sensor started (templated).
    :param messages: how many of the latest SMS receiveSms lists at each poke (1..1000, default 50).
    :param include_message: return the full numbers, the text and the regex's groups (personal
        data in XCom: an explicit opt-in).
    :param include_groups: return the masked form plus the regex's ``named_groups`` only (what
        they capture reaches XCom: keep them to the answer).
    :param smsend_conn_id: the Airflow connection id (templated).
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param max_poll_interval: backoff cap: intervals start at ``poke_interval`` and double up to it.

    Example::

        from airflow_provider_smsend.sensors.inbound import SmSendInboundSmsSensor

        wait_for_yes = SmSendInboundSmsSensor(
            task_id="wait_for_yes",
            rcpt="+393400000001",
            sharecode="001",
            sender="{{ params.customer_number }}",
            text_pattern=r"^\\s*(si|sì|yes)\\b",
            poke_interval=20,
            max_poll_interval=120,
            timeout=30 * 60,
            deferrable=True,
        )
    """

    template_fields: Sequence[str] = (
        "rcpt",
        "sharecode",
        "sender",
        "sender_sql",
        "sender_conn_id",
        "text_pattern",
        "received_after",
        "smsend_conn_id",
    )
    ui_color = "#d5e8f7"

    def __init__(
        self,
        *,
        rcpt: str,
        sharecode: str,
        sender: str | None = None,
        text_pattern: str | None = None,
        ignore_case: bool = True,
        received_after: datetime | str | None = None,
        messages: int = 50,
        include_message: bool = False,
        include_groups: bool = False,
        sender_sql: str | None = None,
        sender_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sender is not None and sender_sql is not None:
            raise ValueError("Give sender or sender_sql, not both.")
        if sender_sql is not None and not sender_conn_id:
            raise ValueError("sender_sql needs sender_conn_id, the SQL connection to run it on.")
        self.include_message = include_message
        self.include_groups = include_groups
        self.rcpt = rcpt
        self.sharecode = sharecode
        self.sender = sender
        self.sender_sql = sender_sql
        self.sender_conn_id = sender_conn_id
        self.text_pattern = text_pattern
        self.ignore_case = ignore_case
        self.received_after = received_after
        self.messages = messages
        if not is_templated(sharecode) and not isinstance(sharecode, str):
            raise ValueError(
                f"sharecode must be text with its leading zeros (like '001'), got {sharecode!r}."
            )
        if isinstance(text_pattern, str) and not is_templated(text_pattern):
            compile_text_pattern(text_pattern, ignore_case=ignore_case)
        self._after: datetime | None = None
        self._sender: str | None = None

    @property
    def started_after(self) -> datetime | None:
        """The ``received_after`` in force (set by the first execute)."""
        return self._after

    def _pattern(self) -> re.Pattern[str] | None:

        return compile_text_pattern(self.text_pattern or None, ignore_case=self.ignore_case)

    def prepare(self, context: Context) -> None:
        """Validate the rendered pattern and fix ``received_after`` once for the whole wait."""
        from airflow.sdk.exceptions import AirflowFailException

        self._pattern()
        if not isinstance(self.sharecode, str) or not self.sharecode.strip():
            raise AirflowFailException(
                f"{self.task_id}: sharecode must be non-empty text, got {self.sharecode!r}."
            )
        if self.received_after not in (None, ""):
            after = parse_received_after(self.received_after)
        else:
            first: datetime | None = None
            if self.reschedule and not self.deferrable:
                # Keep the start across reschedules, as BaseSensorOperator does for its timeout.
                first = context["ti"].get_first_reschedule_date(context)
            after = first or datetime.now(UTC)
        # Kept off the template field: the rendered fields never hold a number read from SQL.
        self._sender = self._sender_from_sql() if self.sender_sql else (self.sender or None)
        # The gateway's dates have whole seconds: an SMS in the sensor's first second still counts.
        self._after = after.replace(microsecond=0)
        self.log.info(
            "Waiting for an SMS on %s (share code %s) received at or after %s.",
            mask_number(self.rcpt),
            self.sharecode,
            self._after.isoformat(),
        )

    def _sender_from_sql(self) -> str:
        """The sender ``sender_sql`` selects (checked here, in the worker, before any wait)."""
        from airflow_provider_smsend.triggers.inbound import sender_from_sql

        sender = sender_from_sql(str(self.sender_conn_id), str(self.sender_sql))
        self.log.info("Waiting for the sender %s (from sender_sql).", mask_number(sender))
        return sender

    def _region(self) -> str:
        return str(self.hook.extras.get("default_region") or DEFAULT_REGION)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """List the latest SMS once and look for a match."""
        if self._after is None:
            self.prepare(context)
        assert self._after is not None
        try:
            listed = self.hook.soap_client.receive_sms(self.rcpt, self.sharecode, self.messages)
        except SmSendError as exc:
            self.handle_gateway_error(exc, f"listing the SMS received on {mask_number(self.rcpt)}")
            return False
        found = find_match(
            listed,
            received_after=self._after,
            sender=self._sender,
            text_pattern=self._pattern(),
            region=self._region(),
        )
        if found is None:
            self.log.info("No matching SMS yet among the %d listed.", len(listed))
            return False
        matched = {**found, "rcpt": self.rcpt, "sharecode": self.sharecode}
        return PokeReturnValue(is_done=True, xcom_value=self.complete(context, matched))

    def make_trigger(self, end_time: float) -> SmSendInboundSmsTrigger:
        """The trigger with the same criteria and the same ``received_after``, until ``end_time``."""
        from airflow_provider_smsend.triggers.inbound import SmSendInboundSmsTrigger

        assert self._after is not None, "prepare() runs first"
        return SmSendInboundSmsTrigger(
            rcpt=self.rcpt,
            sharecode=self.sharecode,
            received_after=self._after.isoformat(),
            sender=self.sender or None,  # the trigger reads sender_sql itself: no number in its kwargs
            sender_sql=self.sender_sql or None,
            sender_conn_id=self.sender_conn_id if self.sender_sql else None,
            text_pattern=self.text_pattern or None,
            ignore_case=self.ignore_case,
            messages=self.messages,
            region=self._region(),
            smsend_conn_id=self.smsend_conn_id,
            poll_interval=self.poke_interval,
            max_poll_interval=self.max_poll_interval,
            end_time=end_time,
        )

    def complete(self, context: Context, xcom: Any) -> Any:
        """Log the matched SMS (id and masked sender, never its text) and return it: masked, or in
        full with ``include_message=True`` (re-read by its id when the trigger's masked event is all
        there is)."""
        from airflow_provider_smsend.triggers.inbound import masked_message

        if not isinstance(xcom, dict):
            return xcom
        self.log.info(
            "Matched SMS %s from %s received at %s.",
            xcom.get("id"),
            mask_number(str(xcom.get("sender", ""))),
            xcom.get("received_at"),
        )
        if not self.include_message and not self.include_groups:
            return masked_message(xcom, rcpt=self.rcpt, sharecode=self.sharecode)
        full = xcom if "text" in xcom else self._reread(xcom)  # poke mode: the message itself
        if self.include_message:
            return full
        return {
            **masked_message(full, rcpt=self.rcpt, sharecode=self.sharecode),
            "named_groups": full["named_groups"],
        }

    def _reread(self, event: dict[str, Any]) -> dict[str, Any]:
        """The full message of a trigger's masked event, listed again and found by its id."""
        listed = self.hook.soap_client.receive_sms(self.rcpt, self.sharecode, self.messages)
        same = [sms for sms in listed if sms.id == event["id"]]
        found = (
            find_match(
                same,
                received_after=same[0].received_at,
                text_pattern=self._pattern(),
                region=self._region(),
            )
            if same
            else None
        )
        if found is None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"SMS {event['id']} matched, but receiveSms no longer lists it among the latest {self.messages}: "
                "its text cannot be read again. Raise messages=, or use it without include_message and include_groups."
            )
        return {**found, "rcpt": self.rcpt, "sharecode": self.sharecode}
