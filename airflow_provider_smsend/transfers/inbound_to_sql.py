"""SmSendInboundToSqlOperator: received SMS (receiveSms) -> a warehouse table, opt-outs -> the suppression list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.inbound_rules import DEFAULT_OPT_OUT_KEYWORDS, inbound_frame
from airflow_provider_smsend.client.numbers import DEFAULT_REGION, mask_number, normalize_number
from airflow_provider_smsend.client.soap import check_messages
from airflow_provider_smsend.sql.layouts import INBOUND_TABLE
from airflow_provider_smsend.sql.loader import constant
from airflow_provider_smsend.transfers.base import BaseSmSendToSqlOperator, as_list, sql_hook

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsend.client.soap import ReceivedSms

#: The suppression table the SMS operator reads (sql/suppression.py's default).
DEFAULT_SUPPRESSION_TABLE = "smsend_suppression"


class SmSendInboundToSqlOperator(BaseSmSendToSqlOperator):
    """Load SMS received on a reception number into a table, and record opt-out replies.

    It lists the latest ``messages`` SMS of ``rcpt`` / ``sharecode`` with receiveSms and loads
    one row per message (:data:`~airflow_provider_smsend.sql.layouts.INBOUND_TABLE`): ``id``,
    ``rcpt``, ``sharecode``, ``sender`` (numbers masked, ``+39333****567``, unless
    ``unmask_numbers=True``), ``sender_key`` (16 hex digits of SHA-256 of the sender in E.164,
    joinable with the outcomes' ``recipient_key``), ``received_at`` (UTC), ``text`` (NULL unless
    ``include_text=True``: texts are personal data), ``opt_out`` (the keyword the message is),
    ``loaded_at``, ``dag_run_id``. The default ``load_mode="replace"`` replaces the rows of the
    loaded ids, so a rerun never duplicates a message.

    Which messages: ``message_ids`` if given; else, in a run scheduled by assets, the ids in the
    events of :class:`~airflow_provider_smsend.triggers.inbound_event.SmSendInboundSmsEventTrigger`
    for this number and share code (matched on the event's ``reception``, a hash of the number in
    E.164 and the share code: ``3400000001`` and ``+393400000001`` match, two numbers that mask
    alike do not; a warning when the run has inbound events but none of this number. The event
    carries the id, not the text: the text is read here); else (a manual or timetable run) every
    SMS listed. An id no longer among the latest ``messages`` fails the task before anything is written (raise ``messages``).

    Opt-outs: a message whose whole text is one of ``opt_out_keywords`` (case- and
    accent-insensitive: ``Stop!``, ``cancèllami``;
    :func:`~airflow_provider_smsend.client.inbound_rules.opt_out_keyword`) adds its sender, in
    E.164, to the suppression table (:class:`~airflow_provider_smsend.sql.suppression.SuppressionList`:
    created if missing; a number already there keeps its first reason and time), with the reason
    ``"<KEYWORD> reply"`` and the message's reception time. The SMS operator skips those numbers
    (README, "Consent before sending"). ``opt_out_keywords=[]`` records none.

    Returns (XCom) ``{"rows", "table", "load_mode", "deleted", "method", "seconds", "messages",
    "opt_outs", "suppressed_new"}``: no number, no text.

    :param rcpt: the reception number (templated).
    :param sharecode: its share code, as text: ``"001"`` (templated).
    :param message_ids: only these message ids (a list, or comma/space separated text; templated).
    :param messages: how many of the latest SMS receiveSms lists (1..1000, default 50).
    :param opt_out_keywords: the opt-out keywords (templated; default ``["STOP", "CANCELLAMI"]``).
    :param suppression_conn_id: the SQL connection of the suppression table (default: ``conn_id``).
    :param suppression_table: the suppression table (default ``smsend_suppression``).
    :param unmask_numbers: write full numbers (personal data: an explicit opt-in).
    :param include_text: write the message texts (personal data: an explicit opt-in).
    :param table: the target table (default ``smsend_inbound``).
    :param conn_id: the SQL connection id of the warehouse (any common-sql database).

    Other parameters: see :class:`~airflow_provider_smsend.transfers.base.BaseSmSendToSqlOperator`.

    Example::

        from airflow_provider_smsend.transfers.inbound_to_sql import SmSendInboundToSqlOperator

        record_replies = SmSendInboundToSqlOperator(
            task_id="record_replies",
            rcpt="+393400000001",
            sharecode="001",
            conn_id="warehouse",
            opt_out_keywords=["STOP", "CANCELLAMI", "BASTA"],
        )
    """

    template_fields: Sequence[str] = (
        *BaseSmSendToSqlOperator.template_fields, "rcpt", "sharecode", "message_ids", "opt_out_keywords",
        "suppression_conn_id", "suppression_table",
    )  # fmt: skip
    spec = INBOUND_TABLE

    def __init__(
        self,
        *,
        rcpt: str,
        sharecode: str,
        conn_id: str,
        table: str = "smsend_inbound",
        message_ids: Iterable[int | str] | str | None = None,
        messages: int = 50,
        opt_out_keywords: Iterable[str] | str | None = DEFAULT_OPT_OUT_KEYWORDS,
        suppression_conn_id: str | None = None,
        suppression_table: str = DEFAULT_SUPPRESSION_TABLE,
        unmask_numbers: bool = False,
        include_text: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, conn_id=conn_id, **kwargs)
        check_messages(messages)
        self.rcpt = rcpt
        self.sharecode = sharecode
        self.message_ids = message_ids
        self.messages = messages
        self.opt_out_keywords = (
            list(opt_out_keywords or []) if not isinstance(opt_out_keywords, str) else opt_out_keywords
        )
        self.suppression_conn_id = suppression_conn_id
        self.suppression_table = suppression_table
        self.unmask_numbers = unmask_numbers
        self.include_text = include_text

    def _region(self) -> str:
        return str(self.hook.extras.get("default_region") or DEFAULT_REGION)

    def wanted_ids(self, context: Context) -> set[int] | None:
        """The message ids to load: ``message_ids``, else this run's inbound events' ids; None: all listed."""
        if self.message_ids not in (None, "", []):
            try:
                # A list rendered to text ("[12, 13]") reads too.
                return {int(v.strip("[]'\" ")) for v in as_list(self.message_ids) if v.strip("[]'\" ")}
            except ValueError:
                raise AirflowFailException(
                    f"message_ids must be receiveSms message ids (integers), got {self.message_ids!r}."
                ) from None
        events: Mapping[Any, Iterable[Any]] | None = context.get("triggering_asset_events")
        if not events:
            return None
        from airflow_provider_smsend.client.inbound_rules import reception_key

        ids: set[int] = set()
        inbound = 0
        wanted = reception_key(self.rcpt, self.sharecode, region=self._region())
        for asset_events in events.values():
            for event in asset_events:
                payload = (getattr(event, "extra", None) or {}).get("payload")
                if not isinstance(payload, dict) or "cursor_key" not in payload:
                    continue  # not an inbound SMS event
                inbound += 1
                if "reception" in payload:
                    ours = payload["reception"] == wanted
                else:  # an event fired before events named their reception: the masked number
                    ours = payload.get("sharecode") == self.sharecode and payload.get("rcpt") == mask_number(
                        self.rcpt
                    )
                if ours:
                    ids.add(int(payload["id"]))
        if inbound and not ids:
            self.log.warning(
                "%d inbound SMS event(s) in this run, none of %s (share code %s): nothing loaded from them. "
                "Check that the trigger's rcpt and sharecode are this task's.",
                inbound, mask_number(self.rcpt), self.sharecode,
            )  # fmt: skip
        return ids

    def openlineage_inputs(self) -> list[tuple[str, str]]:
        """The receiveSms service of the connection (its ``receive_host``); the number is not named."""
        return [self.gateway_dataset("receiveSms", self.hook.soap_client.receive_url)]

    def openlineage_extra_outputs(self) -> list[tuple[str, str]]:
        """The suppression table, when opt-out keywords are recorded."""
        if not as_list(self.opt_out_keywords):
            return []
        return [self.sql_dataset(self.suppression_conn_id or self.conn_id, self.suppression_table)]

    def act(self, context: Context) -> dict[str, Any]:
        import pyarrow as pa

        wanted = self.wanted_ids(context)
        keywords = as_list(self.opt_out_keywords)
        if wanted is not None and not wanted:
            self.log.info(
                "No inbound SMS event of %s (share code %s) in this run.",
                mask_number(self.rcpt),
                self.sharecode,
            )
            return {"rows": 0, "table": self.table, "messages": 0, "opt_outs": 0, "suppressed_new": 0}
        listed = self.hook.soap_client.receive_sms(self.rcpt, self.sharecode, self.messages)
        chosen = listed if wanted is None else [m for m in listed if m.id in wanted]
        missing = sorted(wanted - {m.id for m in chosen}) if wanted is not None else []
        if missing:
            raise AirflowFailException(
                f"SMS {', '.join(map(str, missing[:10]))} of {mask_number(self.rcpt)} (share code {self.sharecode}) "
                f"are no longer among the latest {self.messages} receiveSms lists: raise messages= and clear the task. "
                "Nothing was written."
            )
        region = self._region()
        frame = inbound_frame(
            chosen, rcpt=self.rcpt, sharecode=self.sharecode, key=self.hook.pseudonym_key, masked=not self.unmask_numbers,
            include_text=self.include_text, keywords=keywords, region=region,
        )  # fmt: skip
        opt_outs = [
            (m, k) for m, k in zip(chosen, frame["opt_out"].tolist(), strict=True) if isinstance(k, str)
        ]
        added = self.record_opt_outs(opt_outs, region=region)
        summary = {"messages": len(chosen), "opt_outs": len(opt_outs), "suppressed_new": added}
        if not chosen:
            self.log.info("No SMS listed on %s (share code %s).", mask_number(self.rcpt), self.sharecode)
            return {"rows": 0, "table": self.table, **summary}
        self.log.info(
            "Loading %d received SMS of %s into %s (%d opt-out(s), %d new in the suppression list)",
            len(chosen), mask_number(self.rcpt), self.table, len(opt_outs), added,
        )  # fmt: skip
        frame["loaded_at"] = constant(self.now(), len(frame), pa.timestamp("us", tz="UTC"))
        frame["dag_run_id"] = constant(self.run_id(context), len(frame), pa.string())
        frames = self.transformed([frame], ("id", "rcpt", "sharecode", "sender", "sender_key", "received_at"))
        result = self._load(frames, {"id": [m.id for m in chosen]})
        return {**result.as_dict(), **summary}

    def record_opt_outs(self, opt_outs: list[tuple[ReceivedSms, str]], *, region: str) -> int:
        """Add the senders of ``opt_outs`` (message, keyword) to the suppression list; how many were new."""
        if not opt_outs:
            return 0
        from airflow_provider_smsend.sql.suppression import SuppressionList

        hook = (
            self.db_hook
            if self.suppression_conn_id in (None, self.conn_id)
            else sql_hook(self.suppression_conn_id)
        )
        optouts = SuppressionList(hook, self.suppression_table, region=region)
        optouts.ensure()
        added = 0
        for sms, keyword in opt_outs:
            try:
                normalize_number(sms.sender, region=region, allow_landlines=True)
            except SmSendValidationError:
                self.log.warning(
                    "SMS %s is an opt-out (%s) but its sender %s is no phone number: not added to the suppression list.",
                    sms.id, keyword, mask_number(sms.sender),
                )  # fmt: skip
                continue
            added += optouts.add([(sms.sender, f"{keyword} reply"[:64])], since=sms.received_at)
        return added
