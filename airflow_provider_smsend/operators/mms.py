"""SmSendMmsOperator: send one MMS (sendMms SOAP service), validated first, at most once per task run."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.ledger import COUNTED, DEFAULT_TABLE
from airflow_provider_smsend.client.mms import AttachmentInput, MmsMessage, build_mms_message
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.client.once_only import OnceOnly, digest
from airflow_provider_smsend.operators.base import (
    DEFAULT_LEDGER_CONN_ID,
    SmSendBaseOperator,
    job_key,
)
from airflow_provider_smsend.operators.mnc import parse_numbers

if TYPE_CHECKING:
    from airflow.sdk import Context


def ledger_item(message: MmsMessage) -> str:
    """The ledger item of an MMS: a hash of its recipients (as a set: a query's rows in another
    order are the same MMS), subject, text and attachments."""
    parts: list[str | bytes] = [",".join(sorted(set(message.recipients))), message.subject, message.text]
    for attachment in (message.image, message.sound, message.video):
        parts.append(attachment.data if attachment is not None else b"")
    return f"mms:{digest(parts)}"


class SmSendMmsOperator(SmSendBaseOperator):
    """Send an MMS with a subject, a text and optional image, sound and video.

    Returns (XCom) ``{"cost": str (exact euros), "cost_units": str, "recipients": int,
    "resumed": bool}`` (``resumed``: an earlier try sent it; nothing was sent now).

    Everything is validated before the network is touched: subject (<= 25 characters) and text
    (<= 2400), both ISO-8859-1; the recipients; each attachment (<= 100 kB, type decided from
    the content: image JPEG/GIF/PNG, sound MIDI/MP3, video MOV/3GP). Authentication follows the
    connection: ``mms_id``/``mms_password`` extras, ``mms_auth`` ``plain`` (password sent) or
    ``md5`` (ticket sent, the password never leaves).

    An MMS is charged, so it is sent at most once per task run: a ledger item (a hash of the
    recipients and content) is marked before sending. A retry after success returns the stored
    cost; a retry after an unknown outcome (timeout, lost answer, killed worker) fails with an
    actionable message and sends nothing, unless ``resend_unknown=True``.

    :param subject: the subject (templated).
    :param text: the text (templated).
    :param recipients: one number, numbers separated by commas, or a list (templated — so an inline
        or XCom-fed list is stored, as rendered, in the task's Rendered Templates, the metadata
        database; keep the numbers out of it with ``recipients_sql``).
    :param recipients_sql: instead of ``recipients``: a query run when the task runs on
        ``recipients_conn_id`` (any common-sql database), one recipient per row, the number in
        column ``number_field``. Only the query is a template field, never its rows.
    :param recipients_conn_id: the SQL connection of ``recipients_sql`` (templated).
    :param number_field: the column of ``recipients_sql`` holding the number.
    :param image: the image: a file path (templated) or its bytes.
    :param sound: the sound: a file path (templated) or its bytes.
    :param video: the video: a file path (templated) or its bytes.
    :param resend_unknown: send again after an unknown earlier outcome (may send twice).
    :param smsend_conn_id: the smSend connection, with the MMS account extras.
    :param ledger_conn_id: SQL connection of the ledger; None disables retry safety.
    :param ledger_key: the ledger key of this task's sends (templated); default
        ``dag_id/task_id/run_id/map_index``: a retry resumes, a new run (a manual re-run, a backfill of
        the same date) sends again. Give e.g. ``"{{ dag.dag_id }}/{{ task.task_id }}/{{ dag_run.run_after | ds }}"`` to make
        every run of the same date one job: a second run then sends only what the first did not.
    :param ledger_table: the ledger table.
    :return: the credit charged, in euros, as a decimal string (``"0.3700"``).

    Example::

        mms = SmSendMmsOperator(
            task_id="send_offer",
            subject="Offer {{ dag_run.run_after | ds }}",
            text="Show this picture at the till.",
            recipients=["+393331234567", "+393337654321"],
            image="/data/offers/{{ dag_run.run_after | ds }}.png",
        )
    """

    template_fields: Sequence[str] = (
        "subject",
        "text",
        "recipients",
        "recipients_sql",
        "recipients_conn_id",
        "image",
        "sound",
        "video",
        "smsend_conn_id",
        "ledger_conn_id",
        "ledger_key",
    )
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        subject: str,
        text: str,
        recipients: str | Iterable[str] | None = None,
        recipients_sql: str | None = None,
        recipients_conn_id: str | None = None,
        number_field: str = "number",
        image: AttachmentInput | None = None,
        sound: AttachmentInput | None = None,
        video: AttachmentInput | None = None,
        resend_unknown: bool = False,
        ledger_conn_id: str | None = DEFAULT_LEDGER_CONN_ID,
        ledger_key: str | None = None,
        ledger_table: str = DEFAULT_TABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (recipients is None) == (recipients_sql is None):
            raise ValueError("Give recipients (numbers) or recipients_sql: one of them, not both.")
        if recipients_sql is not None and not recipients_conn_id:
            raise ValueError("recipients_sql needs recipients_conn_id, the SQL connection to run it on.")
        self.subject = subject
        self.text = text
        self.recipients = recipients
        self.recipients_sql = recipients_sql
        self.recipients_conn_id = recipients_conn_id
        self.number_field = number_field
        self.image = image
        self.sound = sound
        self.video = video
        self.resend_unknown = resend_unknown
        self.ledger_conn_id = ledger_conn_id
        self.ledger_key = ledger_key
        self.ledger_table = ledger_table

    def build_message(self, region: str) -> MmsMessage:
        """Validate everything (no request to the gateway; ``recipients_sql`` is run): the message
        as it will be sent.

        :raises SmSendValidationError: on any invalid input (nothing was sent).
        """
        if self.recipients_sql is not None:
            from airflow_provider_smsend.transfers.base import query_rows

            rows = query_rows(
                str(self.recipients_conn_id), str(self.recipients_sql), required=self.number_field
            )
            if not rows:
                raise AirflowFailException("recipients_sql found no recipient: nothing was sent.")
            recipients = [
                "" if row[self.number_field] is None else str(row[self.number_field]) for row in rows
            ]
        else:
            recipients = [str(r) for r in parse_numbers(self.recipients)]
        return build_mms_message(
            self.subject,
            self.text,
            recipients,
            image=_attachment(self.image),
            sound=_attachment(self.sound),
            video=_attachment(self.video),
            region=region,
        )

    def act(self, context: Context) -> dict[str, Any]:
        soap = self.hook.soap_client
        message = self.build_message(soap.region)
        extras = self.hook.extras
        if not extras.get("mms_id") or not extras.get("mms_password"):
            raise AirflowFailException(
                f"Connection {self.smsend_conn_id!r} has no MMS account: set the mms_id and mms_password extras "
                "(issued by smSend), and mms_auth=md5 if the account uses MD5 tickets. Nothing was sent."
            )
        item = ledger_item(message)

        def call() -> tuple[str | None, str | None]:
            result = soap.send_mms(
                message.subject,
                message.text,
                message.recipients,
                image=message.image.data if message.image else None,
                sound=message.sound.data if message.sound else None,
                video=message.video.data if message.video else None,
            )
            return str(result.cost_units), f"{result.cost:.4f}"

        with self.open_ledger(self.ledger_conn_id, self.ledger_table) as ledger:
            once = OnceOnly(
                ledger,
                job_key(context, self.ledger_key),
                what=f"MMS to {len(message.recipients)} recipient(s)",
                owner=self.ledger_owner(context),
            )
            other = [
                i
                for i, e in once.entries.items()
                if i != item and i.startswith("mms:") and e.state in COUNTED
            ]
            if other:  # an earlier try of this job sent (or may have sent) another MMS
                raise AirflowFailException(
                    "An earlier try of this job sent, or may have sent, an MMS with other recipients or content "
                    f"(ledger item {other[0]}, state {once.entries[other[0]].state}): nothing was sent now, so "
                    "that nobody gets it twice. If the recipients' query gives other rows now, make it stable "
                    "for the run (e.g. select by a date), or give a new ledger_key to send this MMS as well."
                )
            outcome = once.run(
                item,
                call,
                resend_unknown=self.resend_unknown,
                advice="Check whether the recipients received it, or the MMS account's credit, first.",
            )
        cost = outcome.cost or "0.0000"
        self.log.info(
            "MMS to %s %s; cost %s EUR.",
            ", ".join(mask_number(n) for n in message.recipients[:5])
            + (f" and {len(message.recipients) - 5} more" if len(message.recipients) > 5 else ""),
            "was already sent by an earlier try" if outcome.resumed else "sent",
            cost,
        )
        return {
            "cost": cost,
            "cost_units": outcome.value,
            "recipients": len(message.recipients),
            "resumed": outcome.resumed,
        }


def _attachment(value: AttachmentInput | None) -> AttachmentInput | None:
    """None for an empty value (a template rendered to ``""``), else the value."""
    if value is None or (isinstance(value, str | os.PathLike) and not str(value).strip()):
        return None
    return value
