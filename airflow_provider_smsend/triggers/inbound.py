"""SmSendInboundSmsTrigger: the deferrable half of SmSendInboundSmsSensor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client.inbound_rules import (
    compile_text_pattern,
    find_match,
    parse_received_after,
)
from airflow_provider_smsend.client.numbers import DEFAULT_REGION, mask_number
from airflow_provider_smsend.triggers._base import SUCCESS, SmSendPollingTrigger

if TYPE_CHECKING:
    from airflow_provider_smsend.client.soap import SmSendSoapClient
    from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook


class SmSendInboundSmsTrigger(SmSendPollingTrigger):
    """Poll receiveSms until an SMS received after a moment matches a sender and/or a text regex.

    The zeep call is blocking: it runs on the SOAP calls' own bounded executor
    (:func:`~airflow_provider_smsend.hooks.smsend_async.run_soap_call`), so neither the triggerer's
    event loop nor other triggers' ``asyncio.to_thread`` ever wait on it. Matching is
    :func:`~airflow_provider_smsend.client.inbound_rules.find_match`, as in the sensor's poke mode.
    Its kwargs hold no secret: the triggerer resolves the connection.

    :param rcpt: the reception number.
    :param sharecode: the share code assigned with the number (text: ``"001"``).
    :param received_after: ISO 8601 moment; older messages are ignored.
    :param sender: only messages from this number, optional.
    :param sender_sql: instead of ``sender``: the query whose first row's first column is the sender,
        run on ``sender_conn_id`` when the trigger starts in the triggerer (:func:`sender_from_sql`):
        the trigger's kwargs, stored in the metadata database while it waits, hold no number.
    :param sender_conn_id: the SQL connection of ``sender_sql``.
    :param text_pattern: only messages whose text matches this regex (``re.search``), optional.
    :param ignore_case: match ``text_pattern`` case-insensitively.
    :param messages: how many of the latest messages receiveSms lists at each poll.
    :param region: region of national numbers, for ``sender``.
    :param smsend_conn_id: the Airflow connection id.
    :param poll_interval: first interval in seconds, doubled at each poll ...
    :param max_poll_interval: ... up to this cap (None: constant interval).
    :param end_time: absolute deadline (UTC epoch seconds); then a ``timeout`` event.

    Example (what :class:`~airflow_provider_smsend.sensors.inbound.SmSendInboundSmsSensor` defers with)::

        SmSendInboundSmsTrigger(
            rcpt="+393400000001",
            sharecode="001",
            sender="+393331234567",
            text_pattern=r"^\\s*si\\b",
            received_after="2024-05-01T09:00:00+00:00",
            smsend_conn_id="smsend_default",
            poll_interval=20,
            end_time=time.time() + 900,
        )
    """

    description = "an inbound SMS"

    def __init__(
        self,
        *,
        rcpt: str,
        sharecode: str,
        received_after: str,
        sender: str | None = None,
        text_pattern: str | None = None,
        ignore_case: bool = True,
        messages: int = 50,
        region: str = DEFAULT_REGION,
        sender_sql: str | None = None,
        sender_conn_id: str | None = None,
        smsend_conn_id: str = "smsend_default",
        poll_interval: float = 60.0,
        max_poll_interval: float | None = None,
        end_time: float | None = None,
    ) -> None:
        super().__init__(
            smsend_conn_id=smsend_conn_id,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            end_time=end_time,
        )
        self.rcpt = rcpt
        self.sharecode = sharecode
        self.received_after = received_after
        self.sender = sender
        self.sender_sql = sender_sql
        self.sender_conn_id = sender_conn_id
        self._sender = sender  # with sender_sql: read in setup(), never serialized
        self.text_pattern = text_pattern
        self.ignore_case = bool(ignore_case)
        self.messages = int(messages)
        self.region = region
        # Fail in the worker, at defer time, rather than in the triggerer.
        self._after = parse_received_after(received_after)
        self._pattern = compile_text_pattern(text_pattern, ignore_case=self.ignore_case)
        self._soap: SmSendSoapClient | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs; ``cls(**kwargs)`` serializes identically. No credentials inside."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "rcpt": self.rcpt,
                "sharecode": self.sharecode,
                "received_after": self.received_after,
                "sender": self.sender,
                "text_pattern": self.text_pattern,
                "ignore_case": self.ignore_case,
                "messages": self.messages,
                "region": self.region,
                "sender_sql": self.sender_sql,
                "sender_conn_id": self.sender_conn_id,
                **self._base_kwargs(),
            },
        )

    async def setup(self, hook: SmSendAsyncHook) -> None:
        """Resolve the connection in the triggerer and build the SOAP client (no I/O yet)."""
        self._soap = await hook.get_soap_client()
        if self.sender_sql:
            import asyncio

            self._sender = await asyncio.to_thread(sender_from_sql, str(self.sender_conn_id), self.sender_sql)

    async def teardown(self) -> None:
        """Close the SOAP client's session on the SOAP executor (it is a blocking call)."""
        from airflow_provider_smsend.hooks.smsend_async import run_soap_call

        if self._soap is not None:
            soap, self._soap = self._soap, None
            await run_soap_call(soap.close)

    async def poll(self) -> dict[str, Any] | None:
        """List the latest messages (on the SOAP executor) and look for a match."""
        from airflow_provider_smsend.hooks.smsend_async import run_soap_call

        soap = self._soap
        assert soap is not None, "setup() builds the SOAP client"
        listed = await run_soap_call(soap.receive_sms, self.rcpt, self.sharecode, self.messages)
        found = find_match(
            listed,
            received_after=self._after,
            sender=self._sender,
            text_pattern=self._pattern,
            region=self.region,
        )
        if found is None:
            self.log.info(
                "No matching SMS yet on %s (share code %s) among %d listed.",
                mask_number(self.rcpt),
                self.sharecode,
                len(listed),
            )
            return None
        self.log.info(
            "Matching SMS %s from %s on %s.",
            found["id"],
            mask_number(found["sender"]),
            mask_number(self.rcpt),
        )
        # The event is logged by the triggerer and stored in the metadata database: no text, no
        # full number. The sensor re-reads the message by its id when it resumes.
        return {"status": SUCCESS, "xcom": masked_message(found, rcpt=self.rcpt, sharecode=self.sharecode)}


def sender_from_sql(conn_id: str, sql: str) -> str:
    """The first column of ``sql``'s first row on the common-sql connection ``conn_id`` (blocking).

    :raises AirflowFailException: if the query finds no sender, or the connection is no SQL database.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_smsend.transfers.base import sql_hook

    row = sql_hook(conn_id).get_first(sql)
    if not row or row[0] in (None, ""):
        raise AirflowFailException(
            f"sender_sql found no sender on {conn_id!r}: check the query and the key it selects."
        )
    return str(row[0])


def masked_message(found: dict[str, Any], *, rcpt: str, sharecode: str) -> dict[str, Any]:
    """What may leave the matching code without an opt-in: the message's id and time, numbers masked."""
    return {
        "id": found["id"],
        "received_at": found["received_at"],
        "sender": mask_number(str(found["sender"])),
        "rcpt": mask_number(rcpt),
        "sharecode": sharecode,
    }
