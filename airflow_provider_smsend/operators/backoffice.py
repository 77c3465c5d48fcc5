"""Reseller back-office operators: clients, credit, reception share codes, credit checks.

The calls that change state and cannot be repeated harmlessly (client-add, credit-add,
recv-add) are made at most once per task run through the send ledger
(:mod:`~airflow_provider_smsend.client.once_only`): a retried task returns what the earlier
try obtained instead of acting twice. client-status is idempotent, recv-del harmless to repeat,
and the credit checks read only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_smsend.client import validation
from airflow_provider_smsend.client.errors import (
    SmSendAmbiguousOutcomeError,
    SmSendError,
    SmSendNotFoundError,
)
from airflow_provider_smsend.client.ledger import DEFAULT_TABLE, SENDING, UNKNOWN, LedgerEntry
from airflow_provider_smsend.client.numbers import mask_number, normalize_number
from airflow_provider_smsend.client.once_only import OnceOnly, attempt_window, write_budget
from airflow_provider_smsend.hooks.smsend import mask_secret_value
from airflow_provider_smsend.operators.base import (
    DEFAULT_LEDGER_CONN_ID,
    SmSendBaseOperator,
    job_key,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsend.client.http import SmSendClient
    from airflow_provider_smsend.client.ledger import Ledger

ROME = ZoneInfo("Europe/Rome")


def _parse_bool(value: object, *, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "activate", "active", "attivato"):
        return True
    if text in ("0", "false", "no", "off", "deactivate", "inactive", "disattivato"):
        return False
    raise ValueError(f"{name} must be True/False (or 'activate'/'deactivate'), got {value!r}.")


class _BackOfficeOperator(SmSendBaseOperator):
    """The back-office operators' base."""

    ui_color = "#e8f4fd"


class _LedgerOperator(_BackOfficeOperator):
    """A back-office operator whose action is done at most once per task run."""

    template_fields: Sequence[str] = (*SmSendBaseOperator.template_fields, "ledger_conn_id")

    def __init__(
        self,
        *,
        ledger_conn_id: str | None = DEFAULT_LEDGER_CONN_ID,
        ledger_key: str | None = None,
        ledger_table: str = DEFAULT_TABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ledger_conn_id = ledger_conn_id
        self.ledger_key = ledger_key
        self.ledger_table = ledger_table


class SmSendCreateClientOperator(_LedgerOperator):
    """Create a client of the reseller (client-add).

    Returns (XCom) ``{"client_id": int, "username": str, "resumed": bool}`` (``resumed``: an
    earlier try created it); the id is also pushed alone under the XCom key ``client_id``
    (``create.output["client_id"]``).

    ``reseller`` defaults to False and is always sent: the gateway's own default creates a
    reseller. Retry-safe: a try that finds the client already created by an earlier try of the
    same task run returns the stored id (a plain retry would hit ``KO Username già esistente``).

    :param name: the client's name.
    :param username: login of the new client (unique on the gateway).
    :param password: password of the new client; masked in logs, never logged.
    :param client_email: the client's e-mail (``email`` of client-add; ``email`` itself is
        Airflow's alert address of the task).
    :param tpl_id: the profile to assign.
    :param contact: free "Contatto" field.
    :param ref_id: free "Riferimento" field.
    :param reseller: create a reseller instead of a plain client (default False).
    :param vhost: the domain of a reseller's own clients.
    :param smsend_conn_id: the smSend connection, with the reseller credentials.
    :param ledger_conn_id: SQL connection of the ledger; None disables retry safety.
    :param ledger_key: the ledger key of this task's sends (templated); default
        ``dag_id/task_id/run_id/map_index``: a retry resumes, a new run (a manual re-run, a backfill of
        the same date) sends again. Give e.g. ``"{{ dag.dag_id }}/{{ task.task_id }}/{{ dag_run.run_after | ds }}"`` to make
        every run of the same date one job: a second run then sends only what the first did not.
    :param ledger_table: the ledger table.

    Example::

        create = SmSendCreateClientOperator(
            task_id="create_client",
            name="{{ params.company }}",
            username="{{ params.login }}",
            password="{{ var.value.new_client_password }}",
            client_email="ops@example.com",
        )
    """

    template_fields: Sequence[str] = (
        "name",
        "username",
        "password",
        "client_email",
        "tpl_id",
        "contact",
        "ref_id",
        "vhost",
        "smsend_conn_id",
        "ledger_conn_id",
        "ledger_key",
    )

    def __init__(
        self,
        *,
        name: str,
        username: str,
        password: str,
        client_email: str | None = None,
        tpl_id: int | str | None = None,
        contact: str | None = None,
        ref_id: str | None = None,
        reseller: bool = False,
        vhost: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.username = username
        self.password = password
        self.client_email = client_email
        self.tpl_id = tpl_id
        self.contact = contact
        self.ref_id = ref_id
        self.reseller = reseller
        self.vhost = vhost

    def act(self, context: Context) -> dict[str, Any]:
        mask_secret_value(self.password)
        validation.validate_text_field(self.name, name="name")
        username = validation.validate_text_field(self.username, name="username").strip()
        validation.validate_text_field(self.password, name="password")
        tpl_id = (
            None if self.tpl_id in (None, "") else validation.validate_positive_id(self.tpl_id, name="tpl_id")
        )
        client = self.client
        item = f"client_add:{username}"
        with self.open_ledger(self.ledger_conn_id, self.ledger_table) as ledger:
            once = OnceOnly(
                ledger,
                job_key(context, self.ledger_key),
                what=f"creation of client {username!r}",
                owner=self.ledger_owner(context),
            )
            previous = once.previous(item)

            def call() -> tuple[str | None, str | None]:
                new_id = client.client_add(
                    self.name,
                    username,
                    self.password,
                    email=self.client_email or None,
                    tpl_id=tpl_id,
                    contact=self.contact or None,
                    ref_id=self.ref_id or None,
                    reseller=self.reseller,
                    vhost=self.vhost or None,
                )
                return str(new_id), None

            try:
                # An ambiguous earlier try is safe to repeat here: the gateway refuses a taken
                # username, so a second client can never be created.
                outcome = once.run(
                    item, call, resend_unknown=True, repeat_reason="the gateway refuses a taken username"
                )
            except SmSendError as exc:
                if not (
                    previous is not None
                    and previous.state in (SENDING, UNKNOWN)
                    and exc.code == "username_exists"
                ):
                    raise
                once.record(
                    [
                        LedgerEntry(
                            once.job_key,
                            item,
                            UNKNOWN,
                            error="username exists after an ambiguous try",
                            updated_at=previous.updated_at,
                        )
                    ]
                )
                raise SmSendAmbiguousOutcomeError(
                    f"Client {username!r} already exists, and an earlier try of this task started creating it "
                    f"at {previous.updated_at} without learning the outcome: it was most likely created then, "
                    "but its id is unknown. Look the client up in the reseller back-office and use its id "
                    "downstream (or mark this task successful); choose another username to create a new client."
                ) from exc
        client_id = int(outcome.value or 0)
        self.log.info(
            "Client %r %s with id %s (reseller=%s).",
            username,
            "was already created by an earlier try" if outcome.resumed else "created",
            client_id,
            self.reseller,
        )
        context["ti"].xcom_push(key="client_id", value=client_id)
        return {"client_id": client_id, "username": username, "resumed": outcome.resumed}


class SmSendAssignCreditOperator(_LedgerOperator):
    """Assign credit to a client (credit-add).

    Returns (XCom) ``{"credit_id": int, "u_id": int, "bill_id": int, "credit": str | None,
    "resumed": bool}``; the credit id is also pushed alone under the XCom key ``credit_id``.

    **A retried task never assigns credit twice.** The ledger item is marked ``sending`` before
    the call and ``accepted`` with the credit id after. When an earlier try's outcome is
    unknown (timeout, killed worker), the next try reads ``userlog-get type=credits`` for the
    client from the mark's day to today (Europe/Rome) and looks for a credit with the same
    tariff and amount at or after the mark's time: found, it is the earlier try's and nothing is
    assigned; not found, the task fails with an actionable message and assigns nothing, unless
    ``resend_unknown=True``. (The search assumes the worker's and the gateway's clocks agree; a
    gateway clock behind ours makes it fail safe: nothing is assigned.) With ``credit=None``
    the tariff's default amount is assigned, and the search matches the tariff only.

    :param u_id: the client id.
    :param bill_id: the tariff id.
    :param credit: euros: a ``Decimal``, an int or a string (``"12.3456"`` or ``"12,3456"``);
        never a float. None assigns the tariff's default.
    :param resend_unknown: assign again after an unresolved unknown outcome (may assign twice).
    :param smsend_conn_id: the smSend connection, with the reseller credentials.
    :param ledger_conn_id: SQL connection of the ledger; None disables retry safety.
    :param ledger_key: the ledger key of this task's sends (templated); default
        ``dag_id/task_id/run_id/map_index``: a retry resumes, a new run (a manual re-run, a backfill of
        the same date) sends again. Give e.g. ``"{{ dag.dag_id }}/{{ task.task_id }}/{{ dag_run.run_after | ds }}"`` to make
        every run of the same date one job: a second run then sends only what the first did not.
    :param ledger_table: the ledger table.

    Example::

        top_up = SmSendAssignCreditOperator(
            task_id="top_up",
            u_id="{{ ti.xcom_pull(task_ids='create_client', key='client_id') }}",
            bill_id=1,
            credit="25.00",
        )
    """

    template_fields: Sequence[str] = (
        "u_id",
        "bill_id",
        "credit",
        "smsend_conn_id",
        "ledger_conn_id",
        "ledger_key",
    )

    def __init__(
        self,
        *,
        u_id: int | str,
        bill_id: int | str,
        credit: Decimal | int | str | None = None,
        resend_unknown: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.u_id = u_id
        self.bill_id = bill_id
        self.credit = credit
        self.resend_unknown = resend_unknown

    def act(self, context: Context) -> dict[str, Any]:
        u_id = validation.validate_positive_id(self.u_id, name="u_id")
        bill_id = validation.validate_positive_id(self.bill_id, name="bill_id")
        amount: Decimal | None = None
        if self.credit not in (None, ""):
            amount = validation.parse_credit_amount(self.credit)
        shown = (
            f"{validation.format_credit(amount)} EUR" if amount is not None else "the tariff's default credit"
        )
        client = self.client
        item = f"credit_add:{u_id}:{bill_id}:{validation.format_credit(amount) if amount is not None else 'default'}"

        def call() -> tuple[str | None, str | None]:
            credit_id = client.credit_add(u_id, bill_id, amount)
            return str(credit_id), validation.format_credit(amount) if amount is not None else None

        with self.open_ledger(self.ledger_conn_id, self.ledger_table) as ledger:
            once = OnceOnly(
                ledger,
                job_key(context, self.ledger_key),
                what=f"credit assignment of {shown} to client {u_id}",
                owner=self.ledger_owner(context),
            )
            outcome = once.run(
                item,
                call,
                resend_unknown=self.resend_unknown,
                resolve=lambda entry: self._resolve(client, ledger, entry, u_id, bill_id, amount),
                advice=(
                    f"The gateway's credit log (userlog-get type=credits, u_id={u_id}) shows no credit that only "
                    "this try can have assigned; check the client's credit in the back-office."
                ),
            )
        credit_id = int(outcome.value or 0)
        self.log.info(
            "Credit %s for client %s, tariff %s: credit id %s%s.",
            shown,
            u_id,
            bill_id,
            credit_id,
            " (assigned by an earlier try, not assigned again)" if outcome.resumed else "",
        )
        context["ti"].xcom_push(key="credit_id", value=credit_id)
        return {
            "credit_id": credit_id,
            "u_id": u_id,
            "bill_id": bill_id,
            "credit": outcome.cost,
            "resumed": outcome.resumed,
        }

    def _resolve(
        self,
        client: SmSendClient,
        ledger: Ledger,
        entry: LedgerEntry,
        u_id: int,
        bill_id: int,
        amount: Decimal | None,
    ) -> tuple[str | None, str | None] | None:
        """The credit an ambiguous earlier attempt assigned, if the gateway's credit log proves it.

        A credit of the log is this attempt's only if it falls in the attempt's window (from its
        ``sending`` mark to the end of the longest call, :func:`~.once_only.attempt_window`), has
        the same tariff and amount, and no credit entry of the ledger already holds its id (another
        task's, or another try's). One such credit is adopted; none gives None; more than one is ambiguous.
        """
        start, end = attempt_window(entry, write_budget(client.timeout, client.retry))
        self.log.info(
            "Resolving an unknown credit-add outcome: credits of client %s from %s to %s.", u_id, start, end
        )
        entries = client.userlog_get(
            "credits",
            u_id=u_id,
            date_from=start.astimezone(ROME).date(),
            date_to=max(end.astimezone(ROME).date(), dt.datetime.now(ROME).date()),
        )
        matches = sorted(
            (
                e
                for e in entries
                if e.u_id == u_id
                and e.bill_id == bill_id
                and (amount is None or e.credit == amount)
                and start <= e.date <= end
                and not any(h.item.startswith("credit_add:") for h in ledger.holders(str(e.id)))
            ),
            key=lambda e: (e.date, e.id),
        )
        if not matches:
            return None
        if len(matches) > 1:
            raise SmSendAmbiguousOutcomeError(
                f"An earlier try of this task started assigning this credit at {entry.updated_at} without "
                f"learning the outcome, and the credit log shows {len(matches)} matching credits in that "
                f"attempt's window (ids {', '.join(str(m.id) for m in matches)}) that no ledger entry explains: "
                "which one is this task's cannot be told. Nothing is assigned. Check them in the back-office, "
                "then mark this task successful, or set resend_unknown=True and clear it."
            )
        found = matches[0]
        return str(found.id), None if found.credit is None else validation.format_credit(found.credit)


class SmSendSetClientStatusOperator(_BackOfficeOperator):
    """Activate or deactivate a client (client-status).

    Returns (XCom) ``{"u_id": int, "active": bool}`` (whether the client is now active).

    Idempotent: repeating it on a retry does no harm.

    :param u_id: the client id.
    :param active: True/``"activate"`` to enable, False/``"deactivate"`` to disable.
    :param smsend_conn_id: the smSend connection, with the reseller credentials.

    Example::

        suspend = SmSendSetClientStatusOperator(task_id="suspend", u_id=1001, active=False)
    """

    template_fields: Sequence[str] = ("u_id", "active", "smsend_conn_id")

    def __init__(self, *, u_id: int | str, active: bool | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.u_id = u_id
        self.active = active

    def act(self, context: Context) -> dict[str, Any]:
        u_id = validation.validate_positive_id(self.u_id, name="u_id")
        active = _parse_bool(self.active, name="active")
        state = self.client.client_status(u_id, active)
        self.log.info("Client %s is now %s.", u_id, "active" if state else "inactive")
        return {"u_id": u_id, "active": state}


class SmSendAddReceptionOperator(_LedgerOperator):
    """Create reception share codes on a number for a client (recv-add).

    Returns (XCom) ``{"sharecodes": [str], "u_id": int, "dest": str (masked), "resumed": bool}``;
    the codes are also pushed alone under the XCom key ``sharecodes``.

    Retry-safe: a retry returns the codes an earlier try created. An unknown earlier outcome is
    resolved through ``userlog-get type=recv_add`` (codes created for that client and number at
    or after the mark); unresolved, the task fails unless ``resend_unknown=True``.

    :param u_id: the client id.
    :param dest: the reception number (international format).
    :param num: how many share codes to create, 1..20.
    :param resend_unknown: create again after an unresolved unknown outcome.
    :param smsend_conn_id: the smSend connection, with the reseller credentials.
    :param ledger_conn_id: SQL connection of the ledger; None disables retry safety.
    :param ledger_key: the ledger key of this task's sends (templated); default
        ``dag_id/task_id/run_id/map_index``: a retry resumes, a new run (a manual re-run, a backfill of
        the same date) sends again. Give e.g. ``"{{ dag.dag_id }}/{{ task.task_id }}/{{ dag_run.run_after | ds }}"`` to make
        every run of the same date one job: a second run then sends only what the first did not.
    :param ledger_table: the ledger table.

    Example::

        codes = SmSendAddReceptionOperator(task_id="codes", u_id=1001, dest="+393331234567", num=2)
    """

    template_fields: Sequence[str] = ("u_id", "dest", "num", "smsend_conn_id", "ledger_conn_id", "ledger_key")

    def __init__(
        self,
        *,
        u_id: int | str,
        dest: str,
        num: int | str = 1,
        resend_unknown: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.u_id = u_id
        self.dest = dest
        self.num = num
        self.resend_unknown = resend_unknown

    def act(self, context: Context) -> dict[str, Any]:
        u_id = validation.validate_positive_id(self.u_id, name="u_id")
        num = validation.validate_positive_id(self.num, name="num")
        if num > 20:
            raise ValueError(f"num must be from 1 to 20, got {num!r}.")
        client = self.client
        dest = normalize_number(self.dest, region=client.default_region, allow_landlines=True)
        item = f"recv_add:{u_id}:{dest}:{num}"

        def call() -> tuple[str | None, str | None]:
            return ",".join(client.recv_add(u_id, dest, num)), None

        def resolve(entry: LedgerEntry) -> tuple[str | None, str | None] | None:
            # Codes created for this client and number within the attempt's window (its mark to the
            # end of its longest call): a recv-add creates them together, so all or none are there.
            start, end = attempt_window(entry, write_budget(client.timeout, client.retry))
            day = start.astimezone(ROME).date()
            entries = client.userlog_get(
                "recv_add", u_id=u_id, date_from=day, date_to=max(day, dt.datetime.now(ROME).date())
            )
            found = [e for e in entries if e.dest == dest and start <= e.date <= end and e.sharecode]
            if len(found) < num:
                return None
            found.sort(key=lambda e: (e.date, e.id))
            return ",".join(str(e.sharecode) for e in found[:num]), None

        with self.open_ledger(self.ledger_conn_id, self.ledger_table) as ledger:
            once = OnceOnly(
                ledger,
                job_key(context, self.ledger_key),
                what=f"creation of {num} share code(s) for client {u_id}",
                owner=self.ledger_owner(context),
            )
            outcome = once.run(
                item,
                call,
                resend_unknown=self.resend_unknown,
                resolve=resolve,
                advice="Check the client's reception numbers in the back-office (userlog-get type=recv_add).",
            )
        codes = [c for c in (outcome.value or "").split(",") if c]
        self.log.info(
            "Share code(s) %s on %s for client %s%s.",
            ", ".join(codes),
            mask_number(dest),
            u_id,
            " (created by an earlier try)" if outcome.resumed else "",
        )
        context["ti"].xcom_push(key="sharecodes", value=codes)
        return {"sharecodes": codes, "u_id": u_id, "dest": mask_number(dest), "resumed": outcome.resumed}


class SmSendRevokeReceptionOperator(_BackOfficeOperator):
    """Revoke a reception share code (recv-del).

    Returns (XCom) ``{"u_id": int, "sharecode": str, "revoked": bool}`` (``False``: it was not
    assigned and ``missing_ok=True``).

    :param u_id: the client id.
    :param dest: the reception number.
    :param sharecode: the share code to revoke (text, keep leading zeros: ``"001"``).
    :param missing_ok: succeed when the share code is not (or no longer) assigned, e.g. on a
        retry after a timeout of a revocation that went through.
    :param smsend_conn_id: the smSend connection, with the reseller credentials.

    Example::

        revoke = SmSendRevokeReceptionOperator(
            task_id="revoke", u_id=1001, dest="+393331234567", sharecode="001", missing_ok=True
        )
    """

    template_fields: Sequence[str] = ("u_id", "dest", "sharecode", "smsend_conn_id")

    def __init__(
        self, *, u_id: int | str, dest: str, sharecode: str, missing_ok: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.u_id = u_id
        self.dest = dest
        self.sharecode = sharecode
        self.missing_ok = missing_ok

    def act(self, context: Context) -> dict[str, Any]:
        u_id = validation.validate_positive_id(self.u_id, name="u_id")
        client = self.client
        dest = normalize_number(self.dest, region=client.default_region, allow_landlines=True)
        sharecode = validation.validate_text_field(str(self.sharecode), name="sharecode").strip()
        try:
            client.recv_del(u_id, dest, sharecode)
        except SmSendNotFoundError as exc:
            if self.missing_ok and exc.code == "sharecode_not_found":
                self.log.info(
                    "Share code %s on %s is not assigned to client %s: nothing to revoke.",
                    sharecode,
                    mask_number(dest),
                    u_id,
                )
                return {"u_id": u_id, "sharecode": sharecode, "revoked": False}
            raise
        self.log.info("Share code %s on %s revoked for client %s.", sharecode, mask_number(dest), u_id)
        return {"u_id": u_id, "sharecode": sharecode, "revoked": True}


class SmSendCreditCheckOperator(_BackOfficeOperator):
    """Read the available credit (euros) and optionally require a minimum.

    Returns (XCom) ``{"credit": str (exact euros), "u_id": int | None, "min_credit": str | None}``.

    Without ``u_id`` the connection's own SMS account is read (credit.php); with ``u_id`` a
    client of the reseller (credit-get.php). Below ``min_credit``, ``mode="fail"`` fails the
    task (no retries) and ``mode="skip"`` raises ``AirflowSkipException``: this task is skipped
    and, with the default ``all_success`` trigger rule, so is everything downstream.

    :param u_id: a client id of the reseller, or None for the connection's account.
    :param min_credit: the minimum required, in euros (``Decimal``, int or ``"5.00"``), or None.
    :param mode: ``"fail"`` or ``"skip"`` when the credit is below ``min_credit``.
    :param smsend_conn_id: the smSend connection.

    Example::

        enough = SmSendCreditCheckOperator(task_id="enough_credit", min_credit="10", mode="skip")
        enough >> send_campaign
    """

    template_fields: Sequence[str] = ("u_id", "min_credit", "smsend_conn_id")

    def __init__(
        self,
        *,
        u_id: int | str | None = None,
        min_credit: Decimal | int | str | None = None,
        mode: Literal["fail", "skip"] = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("fail", "skip"):
            raise ValueError(f"mode must be 'fail' or 'skip', got {mode!r}.")
        self.u_id = u_id
        self.min_credit = min_credit
        self.mode = mode

    def act(self, context: Context) -> dict[str, Any]:
        minimum: Decimal | None = None
        if self.min_credit not in (None, ""):
            if isinstance(self.min_credit, float):
                raise TypeError(
                    f"min_credit {self.min_credit!r} must be a Decimal, int or string, not a float."
                )
            try:
                minimum = Decimal(str(self.min_credit).strip().replace(",", "."))
            except ArithmeticError as exc:
                raise ValueError(f"Invalid min_credit {self.min_credit!r}: use a form like '10.00'.") from exc
        client = self.client
        if self.u_id in (None, ""):
            value = client.credit("credit")
            whose = "the account"
        else:
            u_id = validation.validate_positive_id(self.u_id, name="u_id")
            value = client.credit_get(u_id)
            whose = f"client {u_id}"
        credit = Decimal(value)
        self.log.info("Available credit of %s: %s EUR.", whose, credit)
        if minimum is not None and credit < minimum:
            message = (
                f"Credit of {whose} is {credit} EUR, below the required {minimum} EUR: top it up "
                "(SmSendAssignCreditOperator or the back-office) before sending."
            )
            if self.mode == "skip":
                raise AirflowSkipException(message)
            raise AirflowFailException(message)
        return {
            "credit": str(credit),
            "u_id": None if self.u_id in (None, "") else u_id,
            "min_credit": None if minimum is None else str(minimum),
        }
