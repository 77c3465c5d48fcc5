"""SmSendMncOperator: mobile number checks (mnc.php) for any number of numbers, in chunks."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendTransportError, SmSendValidationError
from airflow_provider_smsend.client.http import DEFAULT_MNC_CHUNK
from airflow_provider_smsend.client.ledger import DEFAULT_TABLE
from airflow_provider_smsend.client.numbers import mask_number, normalize_number
from airflow_provider_smsend.client.once_only import AMBIGUOUS, OnceOnly, digest, next_step
from airflow_provider_smsend.client.validation import parse_list_text
from airflow_provider_smsend.operators.base import (
    DEFAULT_LEDGER_CONN_ID,
    SmSendBaseOperator,
    check_int,
    job_key,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

_SEPARATORS = re.compile(r"[,;\r\n]+")
_SHOWN_INVALID = 10


class SmSendMncOperator(SmSendBaseOperator):
    """Ask the gateway's mobile number check (MNC) for a list of numbers; return the request ids.

    Numbers come from ``numbers`` (a list, or a string: comma/semicolon/newline separated, or a
    JSON/Python list such as a rendered XCom) or from a CSV file (``csv_path``, column
    ``csv_column``). All are validated and normalised first; invalid ones are reported (masked)
    and never sent: ``on_invalid="fail"`` fails the task before any request, ``"skip"`` leaves
    them out. Duplicates are checked once. The valid numbers go in chunks of ``chunk_size``
    (the gateway's per-call maximum is undocumented; the sandbox allows 500), one request each.

    MNC requests are charged, so they are never repeated: each chunk is one ledger item (its
    index and a hash of its numbers). A retried task does not resend accepted chunks (it reuses
    their request ids), and a chunk an earlier try left in flight (``sending``: the worker died,
    or the answer was lost) is reported in ``unknown_chunks`` and not resent unless
    ``resend_unknown=True``.

    The return value (XCom ``return_value``) is a dict: ``request_ids`` (for the batch-status
    sensor, ``type="mnc"``), ``numbers`` (valid, unique), ``invalid``, ``duplicates``,
    ``chunks``, ``sent_chunks``, ``resumed_chunks`` and ``unknown_chunks`` (indices). The ids
    are also pushed alone under the XCom key ``request_ids``.

    :param numbers: the numbers, or a string holding them (templated, e.g. an XCom pull).
    :param csv_path: path of a CSV file with a header line (templated); instead of ``numbers``.
    :param csv_column: the CSV column holding the numbers (case-insensitive; templated).
    :param csv_delimiter: the CSV delimiter.
    :param chunk_size: numbers per mnc request (default 500).
    :param on_invalid: ``"fail"`` (default) or ``"skip"`` invalid numbers.
    :param resend_unknown: resend chunks whose earlier outcome is unknown (may be charged twice).
    :param smsend_conn_id: the smSend connection.
    :param ledger_conn_id: SQL connection of the ledger; None disables retry safety.
    :param ledger_key: the ledger key of this task's sends (templated); default
        ``dag_id/task_id/run_id/map_index``: a retry resumes, a new run (a manual re-run, a backfill of
        the same date) sends again. Give e.g. ``"{{ dag.dag_id }}/{{ task.task_id }}/{{ dag_run.run_after | ds }}"`` to make
        every run of the same date one job: a second run then sends only what the first did not.
    :param ledger_table: the ledger table.

    Example::

        check = SmSendMncOperator(
            task_id="check_numbers",
            csv_path="/data/customers/{{ dag_run.run_after | ds }}.csv",
            csv_column="mobile",
            on_invalid="skip",
        )
        # downstream: "{{ ti.xcom_pull(task_ids='check_numbers', key='request_ids') }}"
    """

    template_fields: Sequence[str] = (
        "numbers", "csv_path", "csv_column", "smsend_conn_id", "ledger_conn_id", "ledger_key",
    )  # fmt: skip
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        numbers: Iterable[str | int] | str | None = None,
        csv_path: str | Path | None = None,
        csv_column: str = "number",
        csv_delimiter: str = ",",
        chunk_size: int = DEFAULT_MNC_CHUNK,
        on_invalid: Literal["fail", "skip"] = "fail",
        resend_unknown: bool = False,
        ledger_conn_id: str | None = DEFAULT_LEDGER_CONN_ID,
        ledger_key: str | None = None,
        ledger_table: str = DEFAULT_TABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (numbers is None) == (csv_path is None):
            raise ValueError("Pass exactly one of numbers= or csv_path=.")
        check_int(chunk_size, name="chunk_size", low=1)
        if on_invalid not in ("fail", "skip"):
            raise ValueError(f"on_invalid must be 'fail' or 'skip', got {on_invalid!r}.")
        self.numbers = numbers
        self.csv_path = csv_path
        self.csv_column = csv_column
        self.csv_delimiter = csv_delimiter
        self.chunk_size = chunk_size
        self.on_invalid = on_invalid
        self.resend_unknown = resend_unknown
        self.ledger_conn_id = ledger_conn_id
        self.ledger_key = ledger_key
        self.ledger_table = ledger_table

    # ------------------------------------------------------------------ input
    def raw_numbers(self) -> list[object]:
        """The numbers as given (from ``numbers`` or the CSV file), empty entries dropped."""
        if self.csv_path is not None and self.csv_path != "":
            return self._read_csv(Path(self.csv_path))
        return [n for n in parse_numbers(self.numbers) if str(n).strip()]

    def _read_csv(self, path: Path) -> list[object]:
        wanted = str(self.csv_column).strip().lower()
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle, delimiter=self.csv_delimiter)
                header = next(reader, None)
                if header is None:
                    return []
                names = [h.strip().lower() for h in header]
                if wanted not in names:
                    raise AirflowFailException(
                        f"The CSV file {str(path)!r} has no column {self.csv_column!r} (columns: {header!r}): "
                        "set csv_column to the column holding the numbers."
                    )
                index = names.index(wanted)
                return [row[index].strip() for row in reader if len(row) > index and row[index].strip()]
        except OSError as exc:
            raise AirflowFailException(
                f"Cannot read the CSV file {str(path)!r}: {exc.strerror or exc}."
            ) from exc

    def validate(self, raw: list[object], region: str) -> tuple[list[str], list[str], int]:
        """Return ``(valid unique numbers in order, masked invalid ones, duplicate count)``."""
        valid: dict[str, None] = {}
        invalid: list[str] = []
        duplicates = 0
        for number in raw:
            try:
                normalized = normalize_number(
                    number if isinstance(number, int) else str(number), region=region
                )
            except SmSendValidationError:
                invalid.append(mask_number(str(number)))
                continue
            if normalized in valid:
                duplicates += 1
            valid[normalized] = None
        return list(valid), invalid, duplicates

    # ------------------------------------------------------------------ execute
    def act(self, context: Context) -> dict[str, Any]:
        client = self.client
        numbers, invalid, duplicates = self.validate(self.raw_numbers(), client.default_region)
        if invalid:
            shown = ", ".join(invalid[:_SHOWN_INVALID]) + (
                f" and {len(invalid) - _SHOWN_INVALID} more" if len(invalid) > _SHOWN_INVALID else ""
            )
            if self.on_invalid == "fail":
                raise AirflowFailException(
                    f"{len(invalid)} invalid phone number(s): {shown}. Nothing was sent. Fix them (international "
                    "format, +39...) or set on_invalid='skip' to check the valid ones only."
                )
            self.log.warning("Skipping %d invalid phone number(s): %s", len(invalid), shown)
        if duplicates:
            self.log.info("%d duplicate number(s) will be checked once.", duplicates)
        if not numbers:
            raise AirflowFailException("No valid phone number to check: nothing was sent.")
        chunks = [numbers[i : i + self.chunk_size] for i in range(0, len(numbers), self.chunk_size)]
        self.log.info(
            "MNC for %d number(s) in %d chunk(s) of up to %d.", len(numbers), len(chunks), self.chunk_size
        )

        request_ids: list[str] = []
        unknown: list[int] = []
        sent = resumed = 0
        with self.open_ledger(self.ledger_conn_id, self.ledger_table) as ledger:
            once = OnceOnly(
                ledger,
                job_key(context, self.ledger_key),
                what="MNC request",
                owner=self.ledger_owner(context),
            )
            for index, chunk in enumerate(chunks):
                item = f"mnc:{index}:{digest(chunk)}"
                entry = once.previous(item)
                if next_step(entry) == AMBIGUOUS and not self.resend_unknown:
                    self.log.warning(
                        "MNC chunk %d (%d numbers): an earlier try sent it at %s without learning the outcome; "
                        "not resent (it may have been charged). Set resend_unknown=True to resend it.",
                        index,
                        len(chunk),
                        entry.updated_at if entry else "?",
                    )
                    unknown.append(index)
                    continue

                def call(chunk: list[str] = chunk) -> tuple[str | None, str | None]:
                    request_id = client.mnc(chunk, max_numbers=self.chunk_size)
                    if request_id is None:
                        raise SmSendTransportError("The gateway's mnc answer has no request id.")
                    return request_id, None

                try:
                    outcome = once.run(item, call, resend_unknown=True)
                except Exception:
                    self.log.error(
                        "MNC chunk %d of %d failed; %d chunk(s) were sent before it (a retry will not resend them).",
                        index + 1,
                        len(chunks),
                        sent + resumed,
                    )
                    raise
                if outcome.resumed:
                    resumed += 1
                else:
                    sent += 1
                self.log.info(
                    "MNC chunk %d/%d: %d number(s) -> request id %s%s",
                    index + 1,
                    len(chunks),
                    len(chunk),
                    outcome.value,
                    " (sent by an earlier try)" if outcome.resumed else "",
                )
                if outcome.value:
                    request_ids.append(outcome.value)
        result = {
            "request_ids": request_ids,
            "numbers": len(numbers),
            "invalid": len(invalid),
            "duplicates": duplicates,
            "chunks": len(chunks),
            "sent_chunks": sent,
            "resumed_chunks": resumed,
            "unknown_chunks": unknown,
        }
        if unknown:
            self.log.warning(
                "%d chunk(s) have an unknown outcome and no request id: %s.", len(unknown), unknown
            )
        context["ti"].xcom_push(key="request_ids", value=request_ids)
        return result


def parse_numbers(value: object) -> list[object]:
    """Numbers from a list, or from a string (separated values, or a rendered JSON/Python list).

    A rendered XCom of a list arrives as its text (``"['+39333…', '+39334…']"``) unless the DAG
    renders native objects; both forms are accepted.
    """
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return parse_numbers(parse_list_text(text, name="numbers"))
        return [t.strip() for t in _SEPARATORS.split(text) if t.strip()]
    if isinstance(value, dict):
        raise AirflowFailException("numbers must be a list or a string of numbers, not a dict.")
    if isinstance(value, Iterable):
        return list(value)
    raise AirflowFailException(f"numbers must be a list or a string of numbers, got {type(value).__name__}.")
