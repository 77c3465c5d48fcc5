"""SmSendSmsOperator: send one SMS or a campaign to thousands of numbers, safely retried."""

from __future__ import annotations

import csv
import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.bulk import (
    SKIPPED,
    UNKNOWN,
    BulkMessage,
    BulkResult,
    BulkSender,
    Estimate,
    RecipientOutcome,
    estimate,
    price_from_credit,
)
from airflow_provider_smsend.client.encoding import non_gsm_characters, to_gsm
from airflow_provider_smsend.client.errors import SmSendError, SmSendValidationError
from airflow_provider_smsend.client.ledger import CAPPED, DEFAULT_TABLE, SUPPRESSED
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.client.once_only import AMBIGUOUS, DO, next_step
from airflow_provider_smsend.client.window import SendWindow
from airflow_provider_smsend.operators.base import (
    DEFAULT_LEDGER_CONN_ID,
    MAX_LEDGER_KEY,
    SmSendBaseOperator,
    check_int,
    job_key,
    smsend_errors,
)
from airflow_provider_smsend.sql.suppression import DEFAULT_SUPPRESSION_TABLE, SuppressionList

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from airflow_provider_smsend.client.bulk import Plan
    from airflow_provider_smsend.client.ledger import Ledger

log = logging.getLogger(__name__)

Recipients = str | int | Sequence[str | int | Mapping[str, Any]]


class SmSendPartialFailure(SmSendError):
    """Some recipients were refused for a passing reason; an Airflow retry resends only those."""

    retryable = True
    default_code = "partial_failure"


_RECIPIENT = re.compile(r"\brecipient\b")
#: The most requests one send keeps in flight (the connection pool's size).
MAX_CONCURRENCY = 64


def _characters(counts: Mapping[str, int]) -> str:
    """``'ë' 3, 'Ł' 1``: characters with their counts, for a log line (no text around them)."""
    return ", ".join(f"{ch!r} {n}" for ch, n in counts.items()) or "none"


def _check_max_cost(max_cost: Decimal | str | int | None) -> Decimal | None:
    if max_cost is None:
        return None
    if isinstance(max_cost, bool | float) or not isinstance(max_cost, Decimal | str | int):
        raise TypeError(
            f"max_cost must be an amount in EUR as a Decimal, int or string like '25.00', got {max_cost!r}."
        )
    try:
        value = Decimal(str(max_cost).strip())
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise ValueError(f"max_cost must be a positive amount in EUR, got {max_cost!r}.")
    return value


def _check_cap(cap: object) -> tuple[int, dt.timedelta] | None:
    """``max_per_recipient`` as ``(count, period)``: a count >= 1 and a positive timedelta or seconds."""
    if cap is None:
        return None
    if not isinstance(cap, tuple | list) or len(cap) != 2:
        raise TypeError(
            f"max_per_recipient must be (count, period), e.g. (2, timedelta(days=7)) or (1, 86400), got {cap!r}."
        )
    count, period = cap
    count = check_int(count, name="max_per_recipient's count", low=1)
    if isinstance(period, int | float) and not isinstance(period, bool):
        period = dt.timedelta(seconds=period)
    if not isinstance(period, dt.timedelta) or period <= dt.timedelta(0):
        raise ValueError(
            f"max_per_recipient's period must be a positive timedelta or number of seconds, got {cap[1]!r}."
        )
    return count, period


def _check_fail_on(fail_on: str | float) -> str | float:
    if fail_on in ("any", "all"):
        return fail_on
    if isinstance(fail_on, int | float) and not isinstance(fail_on, bool) and 0 <= float(fail_on) <= 1:
        return float(fail_on)
    raise ValueError(f"fail_on must be 'any', 'all' or a ratio between 0 and 1, got {fail_on!r}.")


class SmSendSmsOperator(SmSendBaseOperator):
    """Send an SMS to one number, a list, per-recipient personalised texts, or a CSV of numbers.

    Bulk sends run in one task with bounded concurrency over one keep-alive connection pool, an
    optional rate limit and chunks. **No recipient gets the same message twice because Airflow
    retried the task**: progress goes to a ledger table (any SQL connection, ``ledger_conn_id``)
    before each request leaves; a retry resumes with the recipients not yet accepted. A recipient
    whose outcome is ambiguous (the request left, no answer came) is reported as ``unknown`` and
    not resent unless ``resend_unknown=True``.

    :param recipients: a number, a list of numbers, a list of dicts (``number`` plus fields for
        the text, e.g. ``{"number": "+39333…", "name": "Anna"}``), or the path of a CSV file with a
        header (column ``number_field``; the other columns are fields). Templated — so an inline or
        XCom-fed list is stored, as rendered, in the task's Rendered Templates (the metadata
        database, visible to whoever may read the DAG). Keep personal data out of it with a CSV
        path or ``recipients_sql``.
    :param recipients_sql: instead of ``recipients``: a query run when the task runs on
        ``recipients_conn_id`` (any common-sql database); each row is a recipient, its columns the
        fields (``number_field`` among them). Only the query is a template field, never its rows.
    :param recipients_conn_id: the SQL connection of ``recipients_sql`` (templated).
    :param text: the message, a Jinja template (or the name of a ``.txt`` file in the DAG's template
        search path) rendered when the task runs, with the task's context (``{{ dag_run.run_after | ds }}``,
        ``{{ params.x }}``, the DAG's macros) and, per recipient, ``recipient`` (``{{ recipient.name }}``,
        ``{% if recipient.vip %}``). It is rendered by the operator itself, not listed among the
        template fields: so it works the same under ``.partial().expand()`` and ``.expand_kwargs()``,
        and no customer's text is stored in the Rendered Templates tab.
    :param sender: up to 11 letters/digits or a number; default: the connection's default_sender.
    :param quality: ``ll``, ``l``, ``a``, ``h`` or ``n``; default: the connection's (``h``).
    :param operation: TEXT, WAPPUSH, UCS2, MULTITEXT, MULTIUCS2; None chooses from the text.
    :param url: the link of a WAPPUSH message.
    :param number_field: the key/column holding the number in dicts and CSV files.
    :param encoding: the encoding of a CSV file of recipients (default ``utf-8-sig``: UTF-8, with or
        without a byte-order mark; e.g. ``cp1252`` for a file saved by Excel on Windows).
    :param allow_landlines: send to numbers whose type is a landline (phonenumbers ``FIXED_LINE``);
        by default they are rejected before anything is sent or charged (``invalid_number``).
    :param concurrency: requests in flight at once.
    :param rate_limit: messages per second at most (None: no limit).
    :param chunk_size: progress is logged every ``chunk_size`` outcomes. (The ledger marks a
        recipient ``sending`` only when a request is free for it, so a killed worker leaves at most
        ``concurrency`` recipients unknown, whatever this is.)
    :param fail_on: ``"any"`` (default: fail if any recipient is not accepted), ``"all"`` (fail
        only if none is accepted), or a ratio: fail if the share not accepted exceeds it.
        Suppressed and capped recipients are not failures (a ratio counts them as handled).
    :param max_segments: refuse (before sending anything) a message longer than this many segments.
    :param min_credit: fail before sending if the account's credit (euros) is below this (a floor on
        the balance, not a cap on what the task spends: that is ``max_cost``).
    :param check_credit: fail before sending if the SMS available at ``quality`` (credit.php) are
        fewer than the segments needed.
    :param max_cost: the most this task may spend (EUR), all its tries together (one ledger job):
        a send whose estimate (plus what earlier tries spent) exceeds it is refused before any
        request; a send whose spend reaches it starts no request that would pass it, and the
        recipients left are rejected with ``error_code="max_cost"`` (not retryable: raise
        ``max_cost`` and clear the task to send them). Counted at the price per segment of the
        estimate, raised to what the gateway charges as answers come (docs/gateway.md, "Cost").
    :param transliterate: replace the characters outside GSM 03.38 with GSM look-alikes before
        sending (``Zoë`` -> ``Zoe``, ``Łukasz`` -> ``Lukasz``, ``“`` -> ``"``), so one letter in a name
        does not make a message UCS-2 at up to twice the segments; characters without a GSM
        look-alike (emoji) are kept. Off by default: it changes the text.
    :param ledger_conn_id: SQL connection of the ledger (default ``smsend_ledger``); None sends
        without retry safety (a retried task may send again).
    :param ledger_key: the ledger key of this task's sends (templated); default
        ``dag_id/task_id/run_id/map_index``: a retry resumes, a new run (a manual re-run, a backfill of
        the same date) sends again. Give e.g. ``"{{ dag.dag_id }}/{{ task.task_id }}/{{ dag_run.run_after | ds }}"`` to make
        every run of the same date one job: a second run then sends only what the first did not.
    :param ledger_table: the ledger's table name.
    :param resend_unknown: resend recipients whose earlier outcome is unknown (may duplicate).
    :param queue_retries: extra attempts, with backoff, after ``KO Impossibile accodare…`` (the
        gateway queued nothing, so another attempt cannot duplicate).
    :param log_text: log message bodies (off by default: they may be personal).
    :param include_outcomes: also put the per-recipient outcomes in the XCom result (recipients
        masked). Off by default: they stay in the ledger, and ``SmSendOutcomesToSqlOperator`` loads
        them into any warehouse table.
    :param mask_outcomes: mask the recipients of ``outcomes_list`` (default); ``False`` puts full
        numbers in XCom, the metadata database (an explicit opt-in: they are personal data).
    :param suppression_conn_id: a SQL connection (any common-sql database, templated) holding the
        suppression list (opt-outs, README "Consent before sending"): numbers on it are skipped
        before anything is sent, estimated or charged, and reported ``suppressed``; the table is
        created empty if absent (:class:`~airflow_provider_smsend.sql.suppression.SuppressionList`).
    :param suppression_table: the suppression list's table (templated; default ``smsend_suppression``).
    :param campaign: the campaign name a frequency cap counts under (templated): every run and
        ledger key with the same name shares its history. Required with ``max_per_recipient``;
        otherwise the default is the ledger key.
    :param max_per_recipient: ``(count, period)`` (period a ``timedelta`` or seconds): a number that
        had ``count`` sends of the campaign in the last ``period`` (any run, counted from the ledger
        when the task starts; ``accepted``, and ``sending``/``unknown`` too, as they may have reached
        the phone) is skipped and reported ``capped``. Needs ``ledger_conn_id`` and ``campaign``.
        Not atomic across concurrent jobs: two tasks of one campaign running at once each count
        before sending, so both can text a number that was under its cap.
    :param send_window: quiet hours: a :class:`~airflow_provider_smsend.client.window.SendWindow`
        (or its settings as a dict, ``{"start": "09:00", "end": "20:00", "days": "mon-sat", "tz":
        "Europe/Rome"}``). A send started outside it defers (the worker is freed, Airflow's
        triggerer waits) to the next opening; a send that reaches the window's end starts no more
        requests, keeps its progress in the ledger and defers to the next opening, then resumes
        with the recipients not yet sent. Needs ``ledger_conn_id``.
    :param clock: the current time (aware) for the send window and the cap's period; default the
        system clock (tests pass another).
    :param smsend_conn_id: the smSend connection.

    Example::

        SmSendSmsOperator(
            task_id="notify_customers",
            recipients=[{"number": "+393331234567", "name": "Anna"}],
            text="Ciao {{ recipient.name }}, il tuo ordine del {{ dag_run.run_after | ds }} è pronto.",
            sender="ACME",
            rate_limit=50,
        )

    Returns (XCom ``return_value``, a few hundred bytes however many recipients) a dict:

    ==============  =======  =================================================================
    key             type     meaning
    ==============  =======  =================================================================
    totals          dict     ``accepted``, ``rejected``, ``unknown``, ``suppressed`` (on the
                             suppression list), ``capped`` (over ``max_per_recipient``),
                             ``total``: every recipient, all tries of this ledger job
    total_cost      str      credit charged for the accepted messages, all tries (exact, EUR)
    this_try        dict     ``accepted``, ``rejected``, ``unknown``, ``suppressed``, ``capped``
                             and ``cost`` of this try alone
    request_count   int      distinct request ids (one per accepted message)
    outcomes        dict     where the per-recipient outcomes are: ``ledger_conn_id``,
                             ``ledger_table``, ``ledger_key``
    aborted         str      the fatal error that stopped the send early, or None
    estimate        dict     made before sending (also pushed first, under the XCom key
                             ``estimate``): ``messages``, ``segments``, ``by_encoding``
                             (``GSM``/``UCS2``: ``messages``, ``segments``), ``ucs2_characters``
                             (the 10 most frequent characters that forced UCS-2: messages
                             each; characters only, never a name or a text), ``ucs2_extra``
                             (``messages``, ``segments`` UCS-2 adds over GSM look-alikes),
                             ``price_per_segment``, ``price_source`` (``connection``,
                             ``gateway`` or None), ``estimated_cost`` (EUR string or None);
                             None when there is nobody to text
    ==============  =======  =================================================================

    plus ``outcomes_list`` (recipients masked) with ``include_outcomes=True``. The request ids are
    pushed under the XCom key ``request_ids`` (a list, ``[]`` when there is nobody to text; about
    20 bytes per message): ``request_ids=send.output["request_ids"]`` feeds the batch-status sensor
    and transfer.
    """

    template_fields: Sequence[str] = (
        "recipients",
        "recipients_sql",
        "recipients_conn_id",
        "sender",
        "quality",
        "operation",
        "url",
        "ledger_table",
        "ledger_key",
        "ledger_conn_id",
        "suppression_conn_id",
        "suppression_table",
        "campaign",
        "smsend_conn_id",
    )
    ui_color = "#ffcc66"

    def __init__(
        self,
        *,
        recipients: Recipients | None = None,
        text: str,
        recipients_sql: str | None = None,
        recipients_conn_id: str | None = None,
        sender: str | None = None,
        quality: str | None = None,
        operation: str | None = None,
        url: str | None = None,
        number_field: str = "number",
        encoding: str = "utf-8-sig",
        allow_landlines: bool = False,
        concurrency: int = 8,
        rate_limit: float | None = None,
        chunk_size: int = 100,
        fail_on: str | float = "any",
        max_segments: int | None = None,
        min_credit: Decimal | str | int | None = None,
        check_credit: bool = False,
        max_cost: Decimal | str | int | None = None,
        transliterate: bool = False,
        ledger_conn_id: str | None = DEFAULT_LEDGER_CONN_ID,
        ledger_key: str | None = None,
        ledger_table: str = DEFAULT_TABLE,
        resend_unknown: bool = False,
        queue_retries: int = 3,
        log_text: bool = False,
        include_outcomes: bool = False,
        mask_outcomes: bool = True,
        suppression_conn_id: str | None = None,
        suppression_table: str = DEFAULT_SUPPRESSION_TABLE,
        campaign: str | None = None,
        max_per_recipient: tuple[int, dt.timedelta | float] | None = None,
        send_window: SendWindow | Mapping[str, str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (recipients is None) == (recipients_sql is None):
            raise ValueError("Give recipients (numbers, dicts or a CSV path) or recipients_sql, not both.")
        if recipients_sql is not None and not recipients_conn_id:
            raise ValueError("recipients_sql needs recipients_conn_id, the SQL connection to run it on.")
        self.recipients = recipients
        self.recipients_sql = recipients_sql
        self.recipients_conn_id = recipients_conn_id
        self.text = text
        self.sender = sender
        self.quality = quality
        self.operation = operation
        self.url = url
        self.number_field = number_field
        self.encoding = encoding
        self.allow_landlines = allow_landlines
        self.concurrency = check_int(concurrency, name="concurrency", low=1, high=MAX_CONCURRENCY)
        if rate_limit is not None and (
            isinstance(rate_limit, bool) or not isinstance(rate_limit, int | float) or not rate_limit > 0
        ):
            raise ValueError(
                f"rate_limit must be a positive number of messages per second or None, got {rate_limit!r}."
            )
        self.rate_limit = rate_limit
        self.chunk_size = check_int(chunk_size, name="chunk_size", low=1)
        self.fail_on = _check_fail_on(fail_on)
        self.max_segments = max_segments
        self.min_credit = Decimal(str(min_credit)) if min_credit is not None else None
        self.check_credit = check_credit
        self.max_cost = _check_max_cost(max_cost)
        self.transliterate = transliterate
        self.ledger_conn_id = ledger_conn_id
        self.ledger_key = ledger_key
        self.ledger_table = ledger_table
        self.resend_unknown = resend_unknown
        self.queue_retries = check_int(queue_retries, name="queue_retries", low=0, high=10)
        self.log_text = log_text
        self.include_outcomes = include_outcomes
        self.mask_outcomes = mask_outcomes
        self.suppression_conn_id = suppression_conn_id
        self.suppression_table = suppression_table
        self.campaign = campaign
        self.max_per_recipient = _check_cap(max_per_recipient)
        if self.max_per_recipient is not None and ledger_conn_id is None:
            raise ValueError(
                "max_per_recipient needs the send ledger (ledger_conn_id): the cap counts the campaign's "
                "sends there."
            )
        if self.max_per_recipient is not None and (campaign is None or not str(campaign).strip()):
            raise ValueError(
                "max_per_recipient needs a campaign name (campaign=...): without one the sends are counted "
                "under this run's ledger key, so the cap would never limit a number across runs."
            )
        if isinstance(send_window, Mapping):
            send_window = SendWindow(**send_window)
        if send_window is not None and not isinstance(send_window, SendWindow):
            raise TypeError(
                f"send_window must be a SendWindow or a dict of its settings, got {send_window!r}."
            )
        if send_window is not None and ledger_conn_id is None:
            raise ValueError(
                "send_window needs the send ledger (ledger_conn_id): a send that defers resumes from it."
            )
        self.send_window = send_window
        self.clock = clock

    # ----------------------------------------------------------------- recipients

    def _rows(self) -> list[Mapping[str, Any]]:
        if self.recipients_sql is not None:
            return self._query_rows()
        value = self.recipients
        if isinstance(value, str) and value.lower().endswith(".csv"):
            try:
                with open(value, newline="", encoding=self.encoding) as handle:
                    reader = csv.DictReader(handle)
                    if reader.fieldnames is None or self.number_field not in reader.fieldnames:
                        raise AirflowFailException(
                            f"CSV {value!r} has no column {self.number_field!r} (columns: {reader.fieldnames!r})."
                        )
                    return list(reader)
            except UnicodeDecodeError as exc:
                raise AirflowFailException(
                    f"CSV {value!r} is not {self.encoding!r} text (byte {exc.start}: {exc.reason}); pass the "
                    "file's encoding, e.g. encoding='cp1252' for a file saved by Excel on Windows. Nothing was sent."
                ) from exc
        if isinstance(value, Mapping):  # one recipient (what .expand() over a list of dicts gives each task)
            value = [value]
        if isinstance(value, str | int | float) or value is None:
            return [{self.number_field: value}]
        rows: list[Mapping[str, Any]] = []
        for item in value:
            if isinstance(item, Mapping):
                if self.number_field not in item:
                    raise AirflowFailException(f"Recipient {item!r} has no {self.number_field!r} key.")
                rows.append(item)
            else:
                rows.append({self.number_field: item})
        return rows

    def _query_rows(self) -> list[Mapping[str, Any]]:
        """The rows of ``recipients_sql`` on ``recipients_conn_id``, as dicts by column name."""
        from airflow_provider_smsend.transfers.base import query_rows

        return list(
            query_rows(str(self.recipients_conn_id), str(self.recipients_sql), required=self.number_field)
        )

    def messages(self, context: Context | None = None) -> list[BulkMessage]:
        """The recipients with their personalised texts (no request made).

        :param context: the task's context for the text's template (None: no Airflow variables).
        """
        rows = self._rows()
        if not rows:
            return []
        template = self._template()
        values = dict(context or {})
        if not (isinstance(self.text, str) and _RECIPIENT.search(self._source())):
            text = template.render(**values)
            return self._to_gsm([BulkMessage(row[self.number_field], text) for row in rows])
        messages = []
        for row in rows:
            try:
                text = template.render(**values, recipient=dict(row))
            except Exception as exc:
                raise AirflowFailException(
                    f"Cannot fill the text for recipient {mask_number(str(row[self.number_field]))!r}: {exc}. "
                    "Nothing was sent."
                ) from exc
            messages.append(BulkMessage(row[self.number_field], text))
        return self._to_gsm(messages)

    def _to_gsm(self, messages: list[BulkMessage]) -> list[BulkMessage]:
        """With ``transliterate=True``, the messages with GSM look-alikes (logged: characters only)."""
        if not self.transliterate:
            return messages
        out, changed, replaced = [], 0, Counter[str]()
        for message in messages:
            text = to_gsm(message.text)
            if text != message.text:
                changed += 1
                replaced.update(set(non_gsm_characters(message.text)) - set(non_gsm_characters(text)))
            out.append(BulkMessage(message.number, text))
        if changed:
            self.log.info(
                "transliterate=True: %d of %d message(s) take GSM 03.38 look-alikes (characters replaced, "
                "messages each: %s).",
                changed,
                len(messages),
                _characters(replaced),
            )
        return out

    def _template(self) -> Any:
        """The text as a Jinja template of the DAG's environment (its macros, filters and search path)."""
        if not isinstance(self.text, str):
            raise TypeError(f"text must be a string, got {type(self.text).__name__}.")
        if self.has_dag():
            env = self.get_template_env()
        else:  # the operator used outside a DAG (tests, direct use): Airflow's defaults
            from jinja2 import StrictUndefined
            from jinja2.sandbox import SandboxedEnvironment

            env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, cache_size=0)
        if self.text.endswith(".txt"):
            return env.get_template(self.text)
        return env.from_string(self.text)

    def _source(self) -> str:
        """The text's template source (the file's content for a ``.txt`` name)."""
        template = self._template()
        filename = getattr(template, "filename", None)
        if self.text.endswith(".txt") and filename:
            with open(filename, encoding="utf-8") as handle:
                return handle.read()
        return self.text

    # ----------------------------------------------------------------- guards

    def _price(
        self, quality: str, credit: Callable[[str], Decimal | int]
    ) -> tuple[Decimal | None, str | None]:
        """The price of one segment at ``quality`` and where it comes from (docs/gateway.md, "Cost").

        The connection's ``price_per_segment`` extra if it gives one, else what credit.php implies
        (the credit in euros over the SMS it buys at ``quality``). Without ``max_cost`` a gateway
        that cannot say leaves the estimate without a cost; with it, nothing is sent.
        """
        configured = self.hook.price_per_segment(quality)
        if configured is not None:
            return configured, "connection"
        try:
            euros, sms = credit("credit"), credit(quality)
        except SmSendError as exc:
            reason = f"credit.php failed: {exc}"
            price = None
        else:
            price = price_from_credit(Decimal(euros), int(sms))
            reason = f"the credit ({euros} EUR) buys {sms} SMS at quality {quality!r}"
        if price is not None:
            return price, "gateway"
        if self.max_cost is not None:
            raise AirflowFailException(
                f"max_cost={self.max_cost} EUR needs the price of a segment and the gateway does not give it "
                f'({reason}). Set the connection extra price_per_segment (e.g. "0.0850"). Nothing was sent.'
            )
        self.log.warning(
            "No price per segment (%s): the estimate has no cost. The connection extra price_per_segment "
            "gives one.",
            reason,
        )
        return None, None

    def _log_estimate(self, found: Estimate) -> None:
        gsm, ucs2 = found.by_encoding["GSM"], found.by_encoding["UCS2"]
        cost = found.estimated_cost
        self.log.info(
            "Estimate before sending: %d message(s), %d segment(s): GSM %d message(s) in %d segment(s), UCS-2 "
            "%d in %d%s; estimated cost %s.",
            found.messages,
            found.segments,
            gsm["messages"],
            gsm["segments"],
            ucs2["messages"],
            ucs2["segments"],
            f" (characters outside GSM 03.38, messages each: {_characters(found.ucs2_characters)})"
            if ucs2["messages"] and found.ucs2_characters
            else "",
            "unknown (no price per segment)"
            if cost is None
            else f"{cost} EUR at {found.price_per_segment} EUR per segment ({found.price_source})",
        )
        extra = found.ucs2_extra
        if extra["messages"]:
            more = (
                ""
                if found.price_per_segment is None
                else f", about {found.price_per_segment * extra['segments']} EUR"
            )
            self.log.warning(
                "UCS-2 raises the cost of %d of %d message(s): %d segment(s) more than their GSM look-alikes "
                "would need%s (characters outside GSM 03.38, messages each: %s). transliterate=True replaces "
                "them with GSM look-alikes.",
                extra["messages"],
                found.messages,
                extra["segments"],
                more,
                _characters(found.ucs2_characters),
            )

    def _preflight(self, credit: Callable[[str], Decimal | int], sender: BulkSender, plan: Plan) -> None:
        """Cost guard: fail before anything is sent."""
        _, to_send = plan
        if self.max_segments is not None:
            too_long = [(n, p.segments) for _, n, p in to_send if p.segments > self.max_segments]
            if too_long:
                number, segments = too_long[0]
                raise AirflowFailException(
                    f"{len(too_long)} message(s) exceed max_segments={self.max_segments} (e.g. {segments} "
                    f"segments for {mask_number(number)}). Nothing was sent."
                )
        if self.min_credit is not None:
            euros = credit("credit")
            if isinstance(euros, Decimal) and euros < self.min_credit:
                raise AirflowFailException(
                    f"Credit {euros} EUR is below min_credit={self.min_credit}. Nothing was sent: top up first."
                )
        if self.check_credit:
            needed = sum(p.segments for _, _, p in to_send)
            available = credit(sender.quality)
            if int(available) < needed:
                raise AirflowFailException(
                    f"The account can send {available} SMS at quality {sender.quality!r}, these messages need "
                    f"{needed} segments. Nothing was sent: top up first."
                )

    # ----------------------------------------------------------------- consent and frequency

    def _now(self) -> dt.datetime:
        now = self.clock() if self.clock is not None else dt.datetime.now(dt.UTC)
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"clock must return a timezone-aware datetime, got {now!r}.")
        return now

    def _campaign(self, key: str) -> str:
        """The campaign the ledger counts this task's sends under: ``campaign`` as rendered, or the job key."""
        if self.campaign is None:
            return key
        name = str(self.campaign).strip()
        if not name or len(name) > MAX_LEDGER_KEY or "{{" in name:
            raise ValueError(
                f"campaign must be a rendered, non-empty name of at most {MAX_LEDGER_KEY} characters, got "
                f"{self.campaign!r}."
            )
        return name

    def _skip(self, plan: Plan, sender: BulkSender, ledger: Ledger, campaign: str) -> Plan:
        """Take the suppressed and capped recipients out of ``plan`` (before the estimate and any request).

        Every recipient this try would send is checked: those the ledger has still to do, and with
        ``resend_unknown`` those an earlier try left ``sending``/``unknown`` (one accepted by an
        earlier try keeps its outcome, one left ambiguous without ``resend_unknown`` is not sent
        anyway). Each one skipped is recorded in the ledger as ``suppressed`` or ``capped``.
        """
        outcomes, to_send = plan
        if self.suppression_conn_id is None and self.max_per_recipient is None:
            return plan
        entries = sender.once.entries
        sendable = {DO, AMBIGUOUS} if sender.resend_unknown else {DO}
        todo = [number for _, number, _ in to_send if next_step(entries.get(number)) in sendable]
        skipped: dict[str, tuple[str, str, str]] = {}
        if self.suppression_conn_id is not None and todo:
            from airflow_provider_smsend.transfers.base import sql_hook

            optouts = SuppressionList(
                sql_hook(str(self.suppression_conn_id)),
                self.suppression_table,
                region=self.client.default_region,
            )
            optouts.ensure()
            for number in optouts.suppressed(todo):
                skipped[number] = (
                    SUPPRESSED,
                    "suppressed",
                    f"On the suppression list (table {self.suppression_table!r}): not sent.",
                )
        if self.max_per_recipient is not None and todo:
            count, period = self.max_per_recipient
            since = self._now() - period
            left = [n for n in todo if n not in skipped]
            for number, sent in ledger.sent_counts(campaign, left, since).items():
                if sent >= count:
                    skipped[number] = (
                        CAPPED,
                        "max_per_recipient",
                        f"Texted {sent} time(s) under campaign {campaign!r} since {since.isoformat()} "
                        f"(max_per_recipient={count} per {period}): not sent.",
                    )
        if not skipped:
            return plan
        mine = sender.once.skip(skipped)
        outcomes, kept = list(outcomes), []
        for index, number, prepared in to_send:
            if number not in skipped:
                kept.append((index, number, prepared))
                continue
            state, code, error = skipped[number]
            outcomes[index] = (
                RecipientOutcome(number, state, segments=prepared.segments, error_code=code, error=error)
                if number in mine
                else RecipientOutcome(
                    number,
                    UNKNOWN,
                    segments=prepared.segments,
                    error_code="claimed_by_another_try",
                    error="Another try of this task holds this recipient (two tries running at once); its "
                    "outcome is in the ledger. Not sent by this try.",
                )
            )
        states = Counter(state for state, _, _ in skipped.values())
        self.log.info(
            "Skipped before sending: %d recipient(s) on the suppression list, %d over max_per_recipient; "
            "%d of %d left to send.",
            states[SUPPRESSED],
            states[CAPPED],
            len(kept),
            len(to_send),
        )
        return outcomes, kept

    def _failed(self, result: BulkResult) -> bool:
        totals = result.totals
        considered = totals["total"] - sum(totals[s] for s in SKIPPED)
        if considered == 0:
            return False
        if self.fail_on == "any":
            return totals["accepted"] < considered
        if self.fail_on == "all":
            return totals["accepted"] == 0
        return result.failure_ratio() > float(self.fail_on)

    # ----------------------------------------------------------------- quiet hours

    def _defer_to_opening(self, now: dt.datetime, reason: str) -> None:
        """Defer (freeing the worker) until the send window opens next; :meth:`execute_complete` resumes."""
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        assert self.send_window is not None
        opening = self.send_window.next_opening(now)
        self.log.info(
            "%s the send window (%s): deferring until it opens at %s (%s).",
            reason,
            self.send_window.to_dict(),
            opening.isoformat(),
            opening.astimezone(self.send_window.zone).isoformat(),
        )
        self.defer(trigger=DateTimeTrigger(moment=opening), method_name="execute_complete")

    def _keep_going(self) -> Callable[[], bool] | None:
        """What the bulk sender asks before each request: is the send window still open (None: no window)."""
        if self.send_window is None:
            return None
        closes = self.send_window.closes_at(self._now())
        return lambda: self._now() < closes

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the send window opened: send what the ledger has still to do."""
        self.log.info("The send window opened (%s): resuming.", event)
        with smsend_errors():  # the one error policy, as execute applies it
            return self.act(context)

    # ----------------------------------------------------------------- execute

    def act(self, context: Context) -> dict[str, Any]:
        if self.send_window is not None:
            now = self._now()
            if not self.send_window.is_open(now):
                self._defer_to_opening(now, "Started outside")
        key = job_key(context, self.ledger_key)
        campaign = self._campaign(key)
        where = {"ledger_conn_id": self.ledger_conn_id, "ledger_table": self.ledger_table, "ledger_key": key}
        messages = self.messages(context)
        if not messages:
            self.log.info("No recipients: nothing to send.")
            context["ti"].xcom_push(key="request_ids", value=[])
            return BulkResult().to_dict(where=where)
        client = self.client
        reads: dict[str, Decimal | int] = {}

        def credit(kind: str) -> Decimal | int:
            """credit.php, read once per kind for the price and the guards."""
            if kind not in reads:
                reads[kind] = client.credit(kind)
            return reads[kind]

        quality = self.quality or client.default_quality
        price, price_source = self._price(quality, credit)

        def on_chunk(done: int, total: int, partial: BulkResult) -> None:
            now = partial.this_try()
            self.log.info(
                "Sent %d/%d by this try: accepted %d, rejected %d, unknown %d, cost %s EUR",
                done,
                total,
                now["accepted"],
                now["rejected"],
                now["unknown"],
                now["cost"],
            )

        with self.open_ledger(self.ledger_conn_id, self.ledger_table) as ledger:
            sender = BulkSender(
                client,
                ledger=ledger,
                job_key=key,
                sender=self.sender,
                quality=quality,
                operation=self.operation,
                url=self.url,
                concurrency=self.concurrency,
                rate_limit=self.rate_limit,
                chunk_size=self.chunk_size,
                resend_unknown=self.resend_unknown,
                queue_retries=self.queue_retries,
                on_chunk=on_chunk,
                owner=self.ledger_owner(context),
                allow_landlines=self.allow_landlines,
                max_cost=self.max_cost,
                price_per_segment=price,
                campaign=campaign,
                keep_going=self._keep_going(),
            )
            try:
                plan = sender.plan(messages)
            except SmSendValidationError as exc:
                raise SmSendValidationError(f"{exc} Nothing was sent.", code=exc.code) from exc
            plan = self._skip(plan, sender, ledger, campaign)
            found = estimate((p for _, _, p in plan[1]), price_per_segment=price, price_source=price_source)
            self._log_estimate(found)
            context["ti"].xcom_push(key="estimate", value=found.to_dict())
            self._preflight(credit, sender, plan)
            if self.log_text:
                self.log.info("Text of the first message: %s", messages[0].text)
            result = sender.run(messages, plan=plan)
        self._log_rejections(result)
        if self.send_window is not None and result.aborted is None:
            now = self._now()
            stopped = [o for o in result.outcomes if o.error_code == "aborted" and not o.previous_try]
            if stopped and not self.send_window.is_open(now):
                self.log.info(
                    "The send window closed with %d recipient(s) not sent yet; the ledger keeps the progress.",
                    len(stopped),
                )
                self._defer_to_opening(now, "Reached the end of")
        summary = result.to_dict(
            include_outcomes=self.include_outcomes, masked=self.mask_outcomes, where=where, estimate=found
        )
        context["ti"].xcom_push(key="request_ids", value=result.request_ids)
        if result.aborted:
            raise AirflowFailException(
                f"Sending stopped early: {result.aborted} Totals: {result.totals}. A retry resends only the "
                "recipients not accepted."
            )
        if self._failed(result):
            context["ti"].xcom_push(key="partial_result", value=summary)
            considered = result.totals["total"] - sum(result.totals[s] for s in SKIPPED)
            message = (
                f"{considered - result.totals['accepted']} of {considered} recipient(s) to send "
                f"not accepted (fail_on={self.fail_on!r}); totals {result.totals}. Each recipient's outcome is "
                f"in the ledger (table {self.ledger_table!r}, ledger_key {key!r}): SmSendOutcomesToSqlOperator "
                "loads them into a table."
            )
            capped = sum(1 for o in result.outcomes if o.error_code == "max_cost")
            if capped:
                message += (
                    f" {capped} of them were not sent because max_cost={self.max_cost} EUR was reached: raise "
                    "max_cost and clear the task to send them (the ledger sends only those)."
                )
            if any(o.status == "rejected" and o.retryable for o in result.outcomes):
                # Some were refused for a passing reason (queue full, no connection): let Airflow retry;
                # the ledger makes the retry send only those.
                raise SmSendPartialFailure(message + " A retry resends only the recipients not accepted.")
            unknown = result.totals["unknown"]
            if unknown:
                raise AirflowFailException(
                    f"{message} {unknown} recipient(s) are unknown: their request left but no answer came, so "
                    "they may have received the SMS. A retry does not resend them; clear the task with "
                    "resend_unknown=True to resend them, at the risk of texting them twice."
                )
            raise AirflowFailException(message + " A retry would not change it.")
        return summary

    def _log_rejections(self, result: BulkResult) -> None:
        shown = 0
        for outcome in result.outcomes:
            if outcome.status not in ("accepted", *SKIPPED) and shown < 20:
                shown += 1
                self.log.warning(
                    "%s %s: %s", mask_number(outcome.recipient), outcome.status, outcome.error_code
                )
        t, now = result.totals, result.this_try()
        self.log.info(
            "This try: accepted %d, rejected %d, unknown %d, cost %s EUR. All tries of this ledger job: "
            "%d recipient(s), accepted %d, rejected %d, unknown %d, suppressed %d, capped %d, cost %s EUR, "
            "%d request id(s).",
            now["accepted"],
            now["rejected"],
            now["unknown"],
            now["cost"],
            t["total"],
            t["accepted"],
            t["rejected"],
            t["unknown"],
            t["suppressed"],
            t["capped"],
            result.total_cost,
            len(result.request_ids),
        )
