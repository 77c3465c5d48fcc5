"""SmSendInboundSmsEventTrigger: inbound SMS as asset events (``AssetWatcher``), each message once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.inbound_rules import (
    compile_text_pattern,
    find_match,
    reception_key,
    sender_key,
)
from airflow_provider_smsend.client.numbers import DEFAULT_REGION, mask_number
from airflow_provider_smsend.client.soap import check_messages
from airflow_provider_smsend.sql.cursor import DEFAULT_CURSOR_TABLE
from airflow_provider_smsend.sql.transaction import safe_error
from airflow_provider_smsend.triggers.inbound import masked_message, sender_from_sql

if TYPE_CHECKING:
    from airflow_provider_smsend.client.soap import ReceivedSms
    from airflow_provider_smsend.sql.cursor import InboundCursor

log = logging.getLogger(__name__)

#: The longest pause between two polls refused by the gateway (a wrong password), seconds.
MAX_BACKOFF = 3600.0

#: What the shared poll yields: one receiveSms listing, oldest message first.
Listing = tuple["ReceivedSms", ...]


class SmSendInboundSmsEventTrigger(BaseEventTrigger):
    """Fire one event per SMS received on a reception number and share code: for ``AssetWatcher``.

    It lists the latest ``messages`` SMS with receiveSms every ``poll_interval`` seconds and fires
    an event for each message newer than its cursor that matches ``sender`` / ``text_pattern``
    (:func:`~airflow_provider_smsend.client.inbound_rules.find_match`, as the inbound sensor). How
    each message fires once (docs/gateway.md, "Inbound SMS as events"):

    * The cursor is the highest message id fired or passed, in a SQL table
      (:class:`~airflow_provider_smsend.sql.cursor.InboundCursor` on ``cursor_conn_id``), one row
      per ``cursor_key``. Before firing message *n* the trigger moves the row from the id it read to
      *n* with a conditional update: a restarted triggerer starts after the last message fired, and
      of two triggerers running the trigger at once (a failover while the old one still runs) only
      the one whose update landed fires. A trigger stopped between its update and its event gives
      the claim back (:meth:`~airflow_provider_smsend.sql.cursor.InboundCursor.release`), so the
      next run fires it. **At-most-once in one window:** the cursor moves before the event is
      stored, so a triggerer killed (SIGKILL) between the two loses that message's event (it
      never fires twice). Where a miss matters (an opt-out), also schedule a sweep run of
      :class:`~airflow_provider_smsend.transfers.inbound_to_sql.SmSendInboundToSqlOperator`
      without ``message_ids``: it loads every SMS listed, idempotently. Airflow's asset state store (3.3) survives restarts too, but it is keyed
      by asset (a trigger may watch for several) and has no conditional write: two triggerers
      could both read the same id and both fire.
    * A new cursor starts at the highest id listed at its first poll (SMS already there do not
      fire) unless ``fire_existing=True``. ``cursor_key`` defaults to a hash of what selects the
      messages (connection, reception number and ``sender`` in E.164, share code,
      ``text_pattern``, ``ignore_case``): a new ``poll_interval`` or ``messages`` keeps the cursor;
      a new filter starts a new one. Name it to keep a cursor across any change.
    * Message ids grow with reception (the gateway's unique id; docs/gateway.md). Only the latest
      ``messages`` are listed: more SMS than that between two polls are missed (a warning says so).

    One poll loop serves every trigger of a triggerer with the same connection, number, share
    code, ``messages`` and ``poll_interval`` (Airflow 3.3's shared streams,
    :meth:`shared_stream_key`); each trigger filters the listings and keeps its own cursor. On an Airflow without shared streams the triggerer calls :meth:`run`: the same
    code, one poll loop per trigger.

    The event (logged by the triggerer, stored as the asset event's ``extra``) holds the message's
    ``id``, ``received_at`` (ISO 8601, Europe/Rome), ``sender`` and ``rcpt`` masked, ``sharecode``,
    ``reception`` (:func:`~airflow_provider_smsend.client.inbound_rules.reception_key`: which number and share code, exactly) and ``cursor_key``:
    never the text nor a full number. A task reads the text by id
    (:class:`~airflow_provider_smsend.transfers.inbound_to_sql.SmSendInboundToSqlOperator`).
    A non-retryable gateway error (a wrong password) is logged and polled again after a pause that
    doubles up to an hour (:meth:`open_shared_stream`: never a wrong password every few seconds);
    retryable ones and database errors are logged and polled again.

    :param rcpt: the reception number.
    :param sharecode: its share code, as text: ``"001"``.
    :param cursor_conn_id: a SQL connection (any common-sql database) holding the cursor table.
    :param cursor_table: the cursor table (default ``smsend_inbound_cursor``; created if missing).
    :param cursor_key: the cursor's name (at most 64 characters); default: a hash of the settings.
    :param sender: only SMS from this number, optional. Stored in full in Airflow's trigger table
        (the kwargs, plain JSON) and part of the ``cursor_key`` hash in every event: prefer
        ``text_pattern``, ``sender_sql``, or filter by sender in the task.
    :param sender_sql: instead of ``sender``: the query whose first row's first column is the sender,
        run on ``sender_conn_id`` in the triggerer at the first listing
        (:func:`~airflow_provider_smsend.triggers.inbound.sender_from_sql`): the trigger table and
        the ``cursor_key`` hold the query, no number. Until it reads a sender nothing fires nor is passed.
    :param sender_conn_id: the SQL connection of ``sender_sql``.
    :param text_pattern: only SMS whose text matches this regex (``re.search``), optional.
    :param ignore_case: match ``text_pattern`` case-insensitively (default True).
    :param fire_existing: a new cursor fires the SMS already listed (default False: only newer ones).
    :param messages: how many of the latest SMS each poll lists (1..1000, default 50).
    :param region: region of national numbers, for ``sender``.
    :param smsend_conn_id: the smSend connection id.
    :param poll_interval: seconds between polls (default 30).

    Example::

        from airflow.sdk import DAG, Asset, AssetWatcher

        from airflow_provider_smsend.triggers.inbound_event import SmSendInboundSmsEventTrigger

        replies = Asset(
            "smsend://inbound/+393400000001/001",
            watchers=[
                AssetWatcher(
                    name="replies",
                    trigger=SmSendInboundSmsEventTrigger(
                        rcpt="+393400000001", sharecode="001", cursor_conn_id="warehouse"
                    ),
                )
            ],
        )
        with DAG("on_reply", schedule=[replies]):
            ...
    """

    def __init__(
        self,
        *,
        rcpt: str,
        sharecode: str,
        cursor_conn_id: str,
        cursor_table: str = DEFAULT_CURSOR_TABLE,
        cursor_key: str | None = None,
        sender: str | None = None,
        text_pattern: str | None = None,
        ignore_case: bool = True,
        fire_existing: bool = False,
        messages: int = 50,
        region: str = DEFAULT_REGION,
        smsend_conn_id: str = "smsend_default",
        poll_interval: float = 30.0,
        sender_sql: str | None = None,
        sender_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        if sender_sql and sender is not None:
            raise ValueError("Give sender or sender_sql, not both.")
        if sender_sql and not sender_conn_id:
            raise ValueError("sender_sql needs sender_conn_id: the SQL connection it runs on.")
        if not isinstance(sharecode, str) or not sharecode.strip():
            raise ValueError(
                f"sharecode must be text with its leading zeros (like '001'), got {sharecode!r}."
            )
        check_messages(messages)
        if float(poll_interval) <= 0:
            raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}.")
        if cursor_key is not None and not 1 <= len(cursor_key) <= 64:
            raise ValueError(f"cursor_key is 1 to 64 characters, got {cursor_key!r}.")
        self.rcpt = rcpt
        self.sharecode = sharecode
        self.cursor_conn_id = cursor_conn_id
        self.cursor_table = cursor_table
        self.cursor_key = cursor_key
        self.sender = sender
        self.sender_sql = sender_sql or None
        self.sender_conn_id = sender_conn_id
        #: The sender filtered on: ``sender``, or read with ``sender_sql`` at the first listing (never serialized).
        self._sender = sender
        self._sender_read = not self.sender_sql
        self.text_pattern = text_pattern
        self.ignore_case = bool(ignore_case)
        self.fire_existing = bool(fire_existing)
        self.messages = messages
        self.region = region
        self.smsend_conn_id = smsend_conn_id
        self.poll_interval = float(poll_interval)
        self._pattern = compile_text_pattern(text_pattern, ignore_case=self.ignore_case)
        #: Who moves the cursor: this run of the trigger in this process.
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._cursor: InboundCursor | None = None
        self._last: int | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs; ``cls(**kwargs)`` serializes identically. No credentials inside."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "rcpt": self.rcpt,
                "sharecode": self.sharecode,
                "cursor_conn_id": self.cursor_conn_id,
                "cursor_table": self.cursor_table,
                "cursor_key": self.cursor_key,
                "sender": self.sender,
                "text_pattern": self.text_pattern,
                "ignore_case": self.ignore_case,
                "fire_existing": self.fire_existing,
                "messages": self.messages,
                "region": self.region,
                "smsend_conn_id": self.smsend_conn_id,
                "poll_interval": self.poll_interval,
                "sender_sql": self.sender_sql,
                "sender_conn_id": self.sender_conn_id,
            },
        )

    def __repr__(self) -> str:
        """The class and kwargs with the numbers masked (a repr may reach a log)."""
        path, kwargs = self.serialize()
        kwargs["rcpt"] = mask_number(self.rcpt)
        if self.sender:
            kwargs["sender"] = mask_number(self.sender)
        return self.repr(path, kwargs)

    @property
    def key(self) -> str:
        """The cursor's key: ``cursor_key``, or 40 hex digits of SHA-256 of what selects the messages.

        That is the connection, the reception number (E.164), the share code, ``sender`` (E.164),
        ``text_pattern`` and ``ignore_case``: a new ``poll_interval``, ``messages``, region or
        cursor table keeps the cursor (a new cursor would start at the latest id and skip what
        arrived in between).
        """
        if self.cursor_key:
            return self.cursor_key
        selects = {
            "smsend_conn_id": self.smsend_conn_id,
            "rcpt": sender_key(self.rcpt, region=self.region),
            "sharecode": self.sharecode.strip(),
            "sender": None if self.sender is None else sender_key(self.sender, region=self.region),
            "text_pattern": self.text_pattern or None,
            "ignore_case": self.ignore_case,
        }
        if self.sender_sql:  # the query, not the number it reads (unknown until the triggerer runs it)
            selects.update(sender_sql=self.sender_sql, sender_conn_id=self.sender_conn_id)
        settings = json.dumps(selects, sort_keys=True)
        return hashlib.sha256(settings.encode("utf-8")).hexdigest()[:40]

    # ----------------------------------------------------------------- the shared poll

    def shared_stream_key(self) -> Hashable | None:
        """One receiveSms poll per connection, reception number, share code, ``messages`` and
        ``poll_interval`` in a triggerer: a trigger never polls with another's settings.

        The number is hashed (:func:`~airflow_provider_smsend.client.inbound_rules.reception_key`): the triggerer logs the key.
        """
        reception = reception_key(self.rcpt, self.sharecode, region=self.region)
        return ("smsend-inbound", self.smsend_conn_id, reception, self.messages, self.poll_interval)

    @classmethod
    async def open_shared_stream(
        cls, kwargs: dict[str, Any], *, sleep: Callable[[float], Awaitable[Any]] | None = None
    ) -> AsyncIterator[Any]:
        """List the latest SMS now and every ``poll_interval`` seconds; yield each listing, oldest first.

        A retryable gateway error is logged and polled again after ``poll_interval``. A
        non-retryable one (a wrong password, an IP not enabled) is logged and polled again after a
        growing pause: ``poll_interval``, then doubled at each refusal in a row up to
        :data:`MAX_BACKOFF` seconds (an hour), back to ``poll_interval`` at the first listing. It
        does not end the stream: the triggerer would re-create an ``AssetWatcher``'s trigger at
        once and send the wrong password every few seconds (an account or IP lockout risk).

        :param sleep: the pause (default :func:`asyncio.sleep`; a seam for tests).
        """
        from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook, run_soap_call

        pause = sleep or asyncio.sleep
        rcpt, sharecode = kwargs["rcpt"], kwargs["sharecode"]
        interval = float(kwargs.get("poll_interval", 30.0))
        refused = 0
        soap = await SmSendAsyncHook(
            smsend_conn_id=kwargs.get("smsend_conn_id", "smsend_default")
        ).get_soap_client()
        try:
            while True:
                delay = interval
                try:
                    listed = await run_soap_call(
                        soap.receive_sms, rcpt, sharecode, int(kwargs.get("messages", 50))
                    )
                except SmSendError as exc:
                    if exc.retryable:
                        log.warning(
                            "receiveSms on %s (share code %s) failed, polling again: %s",
                            mask_number(rcpt), sharecode, exc,
                        )  # fmt: skip
                    else:
                        refused += 1
                        delay = max(interval, min(MAX_BACKOFF, interval * 2 ** min(refused - 1, 32)))
                        log.error(
                            "receiveSms on %s (share code %s) was refused (%s, %d in a row): %s. Polling "
                            "again in %.0f s (the pause doubles up to %.0f s); fix the connection.",
                            mask_number(rcpt), sharecode, exc.code, refused, exc, delay, MAX_BACKOFF,
                        )  # fmt: skip
                else:
                    refused = 0
                    yield tuple(sorted(listed, key=lambda sms: sms.id))
                await pause(delay)
        finally:
            await run_soap_call(soap.close)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Fire the listings' messages newer than this trigger's cursor that match, each once."""
        async for listing in shared_stream:
            if not await self._read_sender():
                continue  # unknown sender: pass nothing, fire nothing; read it again at the next listing
            for sms in await self._new(listing):
                if self._matches(sms) and await self._claim(sms.id):
                    log.info(
                        "SMS %s from %s on %s: firing (cursor %s).",
                        sms.id, mask_number(sms.sender), mask_number(self.rcpt), self.key,
                    )  # fmt: skip
                    yield TriggerEvent(self.payload(sms))
                elif self._last is None or self._last >= sms.id:
                    break  # another run moved the cursor, or the database failed: read it again
            else:
                if listing and self._last is not None and listing[-1].id > self._last:
                    await self._claim(listing[-1].id)  # the rest did not match: pass them

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Without shared streams (Airflow before 3.3): this trigger's own poll, the same filter."""
        _, kwargs = self.serialize()
        async for event in self.filter_shared_stream(type(self).open_shared_stream(kwargs)):
            yield event

    def payload(self, sms: ReceivedSms) -> dict[str, Any]:
        """The event of ``sms``: id, time, masked numbers, share code, cursor key (no text)."""
        found = {"id": sms.id, "received_at": sms.received_at.isoformat(), "sender": sms.sender}
        return {
            **masked_message(found, rcpt=self.rcpt, sharecode=self.sharecode),
            "reception": reception_key(self.rcpt, self.sharecode, region=self.region),
            "cursor_key": self.key,
        }

    # ----------------------------------------------------------------- the cursor

    def open_cursor(self) -> InboundCursor:
        """The cursor table on ``cursor_conn_id`` (blocking: run it in a thread)."""
        from airflow.sdk import BaseHook

        from airflow_provider_smsend.sql.cursor import InboundCursor
        from airflow_provider_smsend.sql.dialect import dialect_for
        from airflow_provider_smsend.transfers.base import sql_hook

        hook: Any = sql_hook(self.cursor_conn_id)
        conn_type = getattr(hook, "conn_type", None) or BaseHook.get_connection(self.cursor_conn_id).conn_type
        dialect = dialect_for(conn_type, placeholder=getattr(hook, "placeholder", None))
        return InboundCursor(hook.get_conn, dialect=dialect, table=self.cursor_table)

    async def _db(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a cursor call in a thread; None (logged) if the database failed: the next listing retries."""
        try:
            if self._cursor is None:
                self._cursor = await asyncio.to_thread(self.open_cursor)
            return await asyncio.to_thread(getattr(self._cursor, func), *args, **kwargs)
        except Exception as exc:
            log.warning(
                "The inbound cursor %s could not %s (%s); trying again at the next poll.",
                self.key,
                what,
                safe_error(exc),
            )
            self._last = None
            return None

    async def _new(self, listing: Listing) -> list[ReceivedSms]:
        """The messages of ``listing`` newer than the cursor (started at this first listing if new)."""
        if self._last is None:
            start = 0 if self.fire_existing or not listing else listing[-1].id
            self._last = await self._db("be read", "start", self.key, start, owner=self.owner)
            if self._last is None:
                return []
        last = self._last
        new = [sms for sms in listing if sms.id > last]
        if new and len(new) == len(listing) == self.messages and last > 0:
            log.warning(
                "All %d SMS listed on %s are new: more may have arrived since the last poll than one listing "
                "holds. Raise messages= or lower poll_interval.",
                len(new), mask_number(self.rcpt),
            )  # fmt: skip
        return new

    async def _read_sender(self) -> bool:
        """With ``sender_sql``: read the sender once (in a thread); False (logged) if it failed."""
        if self._sender_read:
            return True
        try:
            self._sender = await asyncio.to_thread(
                sender_from_sql, str(self.sender_conn_id), str(self.sender_sql)
            )
        except Exception as exc:
            log.warning(
                "sender_sql of the inbound cursor %s found no sender (%s); trying again at the next poll.",
                self.key, safe_error(exc),
            )  # fmt: skip
            return False
        self._sender_read = True
        return True

    def _matches(self, sms: ReceivedSms) -> bool:
        if self._sender is None and self._pattern is None:
            return True
        found = find_match(
            [sms],
            received_after=sms.received_at,
            sender=self._sender,
            text_pattern=self._pattern,
            region=self.region,
        )
        return found is not None

    async def _claim(self, sms_id: int) -> bool:
        """Move the cursor to ``sms_id``; True if this run did (it may fire). A stop in the middle gives it back."""
        previous = self._last
        if previous is None:
            return False
        claim = asyncio.ensure_future(
            self._db("move", "advance", self.key, previous, sms_id, owner=self.owner)
        )
        try:
            moved = await asyncio.shield(claim)
        except asyncio.CancelledError:
            # The triggerer is stopping this trigger: a claim that landed is handed back, so the
            # message fires at the next run instead of never.
            if await claim:
                await self._db("give a claim back", "release", self.key, sms_id, previous, owner=self.owner)
            raise
        failed = moved is None
        if failed:
            # The database failed: maybe after committing (the answer lost). The row says whose it is.
            moved = await self._db("be read", "read", self.key) == (sms_id, self.owner)
        if moved:
            self._last = sms_id
            return True
        if not failed:
            log.info("The inbound cursor %s moved elsewhere (another triggerer): reading it again.", self.key)
        self._last = None
        return False
