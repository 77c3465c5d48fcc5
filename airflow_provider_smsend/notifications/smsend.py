"""SmSendNotifier: an SMS for task and DAG callbacks, human-in-the-loop requests and missed deadlines."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_smsend.client.encoding import analyse_text
from airflow_provider_smsend.client.errors import SmSendError, SmSendValidationError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.hooks.smsend import SmSendHook, recipient_list

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.definitions.callback import AsyncCallback

    from airflow_provider_smsend.client.http import SmSendClient
    from airflow_provider_smsend.client.ledger import Ledger, LedgerEntry

log = logging.getLogger(__name__)

_RUN_PREFIXES = (
    ("scheduled__", "sch "),
    ("manual__", "man "),
    ("backfill__", "bf "),
    ("asset_triggered__", "asset "),
    ("dataset_triggered__", "asset "),
)
_SECONDS_AND_ZONE = re.compile(r"(T\d\d:\d\d):\d\d(?:\.\d+)?(?:\+00:00|Z)?$")
_STATUS_WORDS = {
    "failed": "FAILED",
    "success": "succeeded",
    "up_for_retry": "up for retry",
    "up_for_reschedule": "rescheduled",
    "skipped": "skipped",
    "running": "running",
    "upstream_failed": "upstream failed",
}
#: The shortest a shortened run id may be before it is dropped altogether.
_MIN_RUN_CHARS = 8
#: A national number as written (digits and the usual separators); its region is the connection's.
_NATIONAL_NUMBER = re.compile(r"^[0-9][0-9 ().\-/]*$")
#: The ledger connection of the storm guard: the operators' send ledger.
DEFAULT_LEDGER_CONN_ID = "smsend_ledger"
#: Ledger job keys of the storm guard start with this (one job per DAG run).
STORM_KEY_PREFIX = "smsend-notifier"
#: Seconds the storm guard retries a failing ledger before it sends without it.
STORM_LEDGER_RETRY_SECONDS = 10.0


def _segments(text: str) -> int:
    return analyse_text(text).segments


def fits(text: str, max_segments: int) -> bool:
    """True if ``text`` takes at most ``max_segments`` SMS segments (GSM 03.38 or UCS-2)."""
    return _segments(text) <= max_segments


def shorten_run_id(run_id: str) -> str:
    """A shorter run id keeping what tells runs apart: ``scheduled__2024-05-01T00:00:00+00:00`` -> ``sch 2024-05-01T00:00``."""
    text = run_id
    for prefix, short in _RUN_PREFIXES:
        if text.startswith(prefix):
            text = short + text[len(prefix) :]
            break
    return _SECONDS_AND_ZONE.sub(r"\1", text)


def _value(state: Any) -> str | None:
    if state is None:
        return None
    return str(getattr(state, "value", state))


def _field(obj: Any, *names: str) -> Any:
    """The first of ``names`` that ``obj`` has, as an attribute or a key (a deadline's dag_run is a dict)."""
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _deadline_time(deadline: Mapping[str, Any]) -> str | None:
    moment = deadline.get("deadline_time")
    if isinstance(moment, str):  # a context that went through JSON
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            return None
    if not isinstance(moment, dt.datetime):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _awaited_input(ctx: Mapping[str, Any], ti: Any) -> Any:
    """The human-in-the-loop operator of ``ctx`` when it is asking for input, else None."""
    task = ctx.get("task")
    if task is None or ti is None or not hasattr(task, "generate_link_to_ui"):
        return None
    try:
        from airflow.providers.standard.operators.hitl import HITLOperator
    except Exception:  # Airflow before 3.1, or no standard provider
        return None
    if not isinstance(task, HITLOperator) or ctx.get("exception") is not None:
        return None
    # Its notifiers are called while the task runs; a callback of the same task (failed...) is not a request.
    return task if _value(getattr(ti, "state", None)) in (None, "running") else None


def _action_link(task: Any, ti: Any) -> str | None:
    try:
        return str(task.generate_link_to_ui(task_instance=ti))
    except Exception as exc:  # no [api] base_url: the text goes without its link
        log.warning("smSend notification: no link to the pending action (%s); set [api] base_url.", exc)
        return None


def describe(context: Context | Mapping[str, Any]) -> dict[str, Any]:
    """What the default text tells: kind, status, DAG and task ids, run id, try number, links.

    ``kind`` is ``task``, ``DAG run``, ``deadline`` (a Deadline Alert's context) or ``input`` (a
    human-in-the-loop operator asking for input; ``action_url`` links to the pending action).
    """
    ctx: dict[str, Any] = dict(context)
    ti = ctx.get("ti") or ctx.get("task_instance")
    dag_run = ctx.get("dag_run")
    dag = ctx.get("dag")
    deadline = ctx.get("deadline")
    info: dict[str, Any] = {"kind": "task" if ti is not None else "DAG run"}
    info["dag_id"] = (
        getattr(ti, "dag_id", None) or _field(dag_run, "dag_id") or getattr(dag, "dag_id", None) or "?"
    )
    info["task_id"] = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", None)
    if info["task_id"] is not None and isinstance(map_index, int) and map_index >= 0:
        info["task_id"] = f"{info['task_id']}[{map_index}]"
    info["run_id"] = (
        getattr(ti, "run_id", None) or _field(dag_run, "run_id", "dag_run_id") or ctx.get("run_id")
    )
    try_number = getattr(ti, "try_number", None)
    info["detail"] = f"Try: {try_number}" if try_number is not None else None
    try:
        info["log_url"] = getattr(ti, "log_url", None) if ti is not None else None
    except Exception:  # log_url reads configuration; a notifier must not fail on it
        info["log_url"] = None
    state = _value(getattr(ti, "state", None)) if ti is not None else _value(_field(dag_run, "state"))
    if ctx.get("exception") is not None and state not in ("up_for_retry", "failed"):
        state = "failed"
    if state is None and ti is None and ctx.get("reason"):
        state = str(ctx["reason"])[:20]
    info["status"] = _STATUS_WORDS.get(state or "", state or "event")
    info["header"] = f"Airflow {info['kind']} {info['status']}"
    info["subject"] = info["action_url"] = None
    task = _awaited_input(ctx, ti)
    if task is not None:
        info.update(kind="input", status="input required", header="Airflow input required", detail=None)
        info["subject"] = str(task.subject or "").strip() or None
        info["action_url"] = _action_link(task, ti)
        info["log_url"] = None
    elif isinstance(deadline, Mapping) and ti is None:
        moment = _deadline_time(deadline)
        info.update(kind="deadline", status="deadline missed", header="Airflow deadline missed")
        info["detail"] = f"Deadline: {moment}" if moment else None
    return info


def _compose(
    info: dict[str, Any],
    *,
    run_id: str | None,
    log: bool,
    detail: bool,
    subject: str | None = None,
    compact: bool = False,
) -> str:
    task = info["task_id"]
    link = info["action_url"]
    if compact:
        ids = f"{info['dag_id']}.{task}" if task else info["dag_id"]
        return f"Airflow {info['status']}: {ids}" + (f"\n{link}" if link else "")
    lines = [info["header"]]
    if subject:
        lines.append(subject)
    lines.append(f"DAG: {info['dag_id']}")
    if task:
        lines.append(f"Task: {task}")
    if run_id:
        lines.append(f"Run: {run_id}")
    if detail and info["detail"]:
        lines.append(info["detail"])
    if log and info["log_url"]:
        lines.append(f"Log: {info['log_url']}")
    if link:
        lines.append(link)
    return "\n".join(lines)


def default_text(context: Context | Mapping[str, Any], *, max_segments: int = 1) -> str:
    """The default notification text, fitted to ``max_segments``.

    Parts are cut least useful first: the log URL, then the run id is shortened (then cut
    further, then dropped), then the try number (or the deadline's time), then a human-in-the-loop
    request's subject (shortened, then dropped), then the labels. The DAG and task ids and the link
    to a pending action are never cut, so a text whose ids and link alone exceed the limit is sent
    longer than ``max_segments``.
    """
    info = describe(context)
    run_id = info["run_id"]
    subject = info["subject"]
    full = _compose(info, run_id=run_id, log=True, detail=True, subject=subject)
    if fits(full, max_segments):
        return full
    candidates = [_compose(info, run_id=run_id, log=False, detail=True, subject=subject)]
    if run_id:
        short = shorten_run_id(run_id)
        candidates.append(_compose(info, run_id=short, log=False, detail=True, subject=subject))
        for length in range(len(short) - 1, _MIN_RUN_CHARS - 1, -1):
            cut = short[: length - 2] + ".."
            candidates.append(_compose(info, run_id=cut, log=False, detail=True, subject=subject))
    candidates.append(_compose(info, run_id=None, log=False, detail=True, subject=subject))
    candidates.append(_compose(info, run_id=None, log=False, detail=False, subject=subject))
    for candidate in candidates:
        if fits(candidate, max_segments):
            return candidate
    if subject:
        bare = _compose(info, run_id=None, log=False, detail=False)
        if fits(bare, max_segments):  # the longest subject that still fits
            for length in range(len(subject) - 1, 0, -1):
                with_subject = _compose(
                    info, run_id=None, log=False, detail=False, subject=subject[:length].rstrip() + ".."
                )
                if fits(with_subject, max_segments):
                    return with_subject
            return bare
    return _compose(info, run_id=None, log=False, detail=False, compact=True)


def fit_text(text: str, max_segments: int) -> str:
    """Cut a user's text at the end (``..``) to ``max_segments``; unchanged if it fits."""
    if fits(text, max_segments):
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the marker
        middle = (low + high + 1) // 2
        if fits(text[:middle].rstrip() + "..", max_segments):
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ".."


def _templated(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _check_literal_number(number: str) -> str | None:
    """None if a literal number is valid as far as can be known before the connection is read, else its mask.

    International numbers (``+…``, ``00…``) are checked in full; a national number only for its
    form, since its region is the connection's ``default_region``.
    """
    from airflow_provider_smsend.client.numbers import normalize_number

    text = number.strip()
    if text.startswith(("+", "00")):
        try:
            normalize_number(text)
        except SmSendValidationError:
            return mask_number(text)
        return None
    digits = sum(ch.isdigit() for ch in text)
    return None if _NATIONAL_NUMBER.match(text) and 6 <= digits <= 15 else mask_number(text)


def _check_literal_recipients(recipients: object) -> None:
    if recipients is None or _templated(recipients):
        return
    try:
        numbers = recipient_list(recipients)
    except SmSendValidationError as exc:
        raise ValueError(f"SmSendNotifier: {exc}") from None
    if not numbers:
        raise ValueError(
            f"SmSendNotifier: recipients={recipients!r} names no number; leave recipients out to text the "
            "connection's default_recipients extra."
        )
    bad = [masked for n in numbers if not _templated(n) and (masked := _check_literal_number(n))]
    if bad:
        raise ValueError(
            f"SmSendNotifier: {len(bad)} invalid recipient(s): {', '.join(repr(b) for b in bad)}. Give numbers in "
            "international format (+39…) or as national numbers (digits only) of the connection's region."
        )


def _check_literal_sender(sender: object) -> None:
    from airflow_provider_smsend.client.validation import validate_sender

    if sender is None or _templated(sender):
        return
    if not isinstance(sender, str) or not sender.strip():
        raise ValueError(
            f"SmSendNotifier: sender={sender!r} is empty; leave sender out to use the connection's default_sender."
        )
    try:
        validate_sender(sender)
    except SmSendValidationError as exc:
        raise ValueError(f"SmSendNotifier sender: {exc}") from None


def _check_collapse_minutes(value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"collapse_minutes must be a positive number of minutes or None, got {value!r}.")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _storm_keys(info: dict[str, Any], recipients: Sequence[str]) -> tuple[str, str] | None:
    """The storm guard's ledger job key (one per DAG run) and item (one per recipient set).

    None for what is never collapsed: a human-in-the-loop request, a deadline alert, a context without a run.
    """
    if info["kind"] not in ("task", "DAG run") or not info["run_id"] or info["dag_id"] == "?":
        return None
    key = f"{STORM_KEY_PREFIX}/{info['dag_id']}/{info['run_id']}"
    if len(key) > 255:
        key = f"{STORM_KEY_PREFIX}/{hashlib.sha256(key.encode()).hexdigest()[:32]}"
    # The numbers are hashed: the ledger does not need to hold who is on call.
    item = "to " + hashlib.sha256("\x1f".join(sorted(recipients)).encode()).hexdigest()[:16]
    return key, item


def _recent(entry: LedgerEntry, window: dt.timedelta) -> bool:
    """True if ``entry`` holds an SMS sent (or being sent) less than ``window`` ago."""
    from airflow_provider_smsend.client.ledger import ACCEPTED, SENDING

    if entry.state not in (ACCEPTED, SENDING):
        return False  # the last one reached nobody: this one goes
    try:
        moment = dt.datetime.fromisoformat(entry.updated_at)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return _utcnow() - moment < window


class _StormGuard:
    """At most one SMS per DAG run and recipient set in a window, through a claim on the send ledger."""

    def __init__(self, ledger_conn_id: str, minutes: float, keys: tuple[str, str]) -> None:
        from airflow_provider_smsend.client.ledger import new_owner

        self.ledger_conn_id = ledger_conn_id
        self.window = dt.timedelta(minutes=minutes)
        self.key, self.item = keys
        self.owner = new_owner("notifier")
        self.ledger: Ledger | None = None

    def admit(self) -> bool:
        """Claim the window; False if an SMS of this run already went out in it. A ledger failure admits."""
        from airflow_provider_smsend.operators.base import ledger_for

        try:
            self.ledger = ledger_for(self.ledger_conn_id)
            self.ledger.retry_for = STORM_LEDGER_RETRY_SECONDS  # an alert waits less than a task would
            seen = self.ledger.load(self.key).get(self.item)
            if seen is not None and _recent(seen, self.window):
                log.info(
                    "smSend notification collapsed: one for this DAG run went out at %s (collapse_minutes=%s).",
                    seen.updated_at,
                    self.window.total_seconds() / 60,
                )
                return False
            mine = self.ledger.claim(
                self.key, [self.item], owner=self.owner, seen={self.item: seen} if seen is not None else None
            )
        except Exception as exc:  # an alert is not lost to its storm guard
            log.error(
                "smSend notification: the storm guard's ledger %r failed (%s: %s); sending without it.",
                self.ledger_conn_id,
                type(exc).__name__,
                exc,
            )
            self.close()
            return True
        if self.item not in mine:
            log.info("smSend notification collapsed: another process is sending this DAG run's SMS.")
        return self.item in mine

    def record(self, sent: int, cost: Any) -> None:
        """Store the outcome: a window that reached nobody does not hold back the next alert."""
        from airflow_provider_smsend.client.ledger import ACCEPTED, REJECTED, LedgerEntry

        if self.ledger is None:
            return
        state = ACCEPTED if sent else REJECTED
        try:
            self.ledger.record(
                [
                    LedgerEntry(
                        self.key, self.item, state, cost=str(cost) if sent else None, retryable=not sent
                    )
                ],
                owner=self.owner,
            )
        except Exception as exc:
            log.error("smSend notification: the storm guard's ledger could not record (%s).", exc)

    def close(self) -> None:
        from airflow_provider_smsend.operators.base import close_ledger

        if self.ledger is not None:
            close_ledger(self.ledger)
            self.ledger = None


class SmSendNotifier(BaseNotifier):
    """Send an SMS from a callback, a human-in-the-loop operator or a Deadline Alert.

    Without ``text`` the message tells the status, the DAG id, the task id, the run id, the try
    number and the log URL, fitted to ``max_segments`` SMS segments by cutting the least useful
    parts first (the log URL, then the run id, shortened before it is dropped, then the try
    number); the DAG and task ids are never cut. A ``text`` of your own is templated and cut at
    the end to fit. For a human-in-the-loop operator the default text carries the request's
    subject and the link to the pending action (never cut); for a missed deadline, the run and
    the deadline's time.

    Every call renders the templates into a copy: one instance serves any number of callbacks,
    at once or one after the other (the dag-processor reuses it), and a template that fails for
    one context (logged; the default text goes out instead of ``text``) does not change the next.

    Literal values are checked when the notifier is made, that is when the DAG file is parsed,
    so a mistake is an import error in the UI rather than a lost alert: international numbers
    (``+…``, ``00…``) in full, national numbers for their form (their region is the connection's
    ``default_region``, read only when sending), the sender, the quality. Templated values
    (containing ``{{``) are checked once rendered: an invalid number is logged and skipped, an
    invalid sender stops the notification (logged). Without ``recipients`` the connection's
    ``default_recipients`` extra is texted; without ``sender``, its ``default_sender``: the
    connection is read only when sending, so their absence is logged then.

    The notifier never raises once made: a failure (unknown connection, invalid number, ``KO``
    answer, gateway down) is logged at ERROR with the gateway's reason, and the callback path goes
    on. Numbers are masked in logs; the text is never logged.

    **Storm collapse.** With ``collapse_minutes=N``, a task or DAG callback sends at most one
    SMS per DAG run (and set of recipients) every N minutes: when twenty tasks of a run fail
    together, the first failure texts and the others are logged as collapsed. Human-in-the-loop
    requests and deadline alerts are never collapsed. The tasks of a run fail in different
    workers and a DAG callback runs in the dag-processor, so the window is a row of the send
    ledger (``ledger_conn_id``, the common-sql connection the operators use), taken with the
    ledger's conditional write: of failures at the same instant exactly one sends. (Airflow
    Variables have no compare-and-set, so two workers would both send; the task-state store is
    per task instance, not per run.) Limits: the window runs from the last SMS that reached
    someone, on the clocks of the machines that send (one that reached nobody does not hold the
    next back; a process killed while sending holds its window); the ledger must be reachable
    wherever the callbacks run, and when it is not the SMS is sent anyway, with an ERROR. A row
    is keyed by DAG id, run id and a hash of the recipients: no number is stored.

    :param recipients: one number, numbers separated by commas, a JSON list, or a list (templated);
        None for the connection's ``default_recipients`` extra.
    :param text: the message (templated); None for the default text.
    :param smsend_conn_id: the smSend connection (templated).
    :param sender: the sender (<= 11 letters/digits or a number, templated); default: the
        connection's ``default_sender`` extra.
    :param quality: ``ll``, ``l``, ``a``, ``h`` or ``n``; default: the connection's (``h``).
        More than one segment needs ``h`` or ``n``.
    :param max_segments: the most SMS segments one notification may take (default 1).
    :param collapse_minutes: send at most one SMS per DAG run every this many minutes (None: every
        call sends). See *Storm collapse*.
    :param ledger_conn_id: the SQL connection holding the storm collapse's windows (templated).

    On a task or DAG callback (the default text fits one SMS)::

        from airflow_provider_smsend.notifications.smsend import SmSendNotifier

        DAG(
            ...,
            default_args={"on_failure_callback": SmSendNotifier(recipients="+393331234567", sender="ETL")},
            on_failure_callback=SmSendNotifier(text="DAG {{ dag.dag_id }} failed ({{ run_id }})"),
        )

    On a human-in-the-loop operator (Airflow 3.1+; the link needs ``[api] base_url``)::

        from airflow.providers.standard.operators.hitl import ApprovalOperator

        ApprovalOperator(
            task_id="approve_release",
            subject="Release {{ params.version }} to production?",
            notifiers=[SmSendNotifier(recipients=["+393331234567"], max_segments=2)],
        )

    As a Deadline Alert (run by the triggerer, asynchronously; checked when the DAG is parsed)::

        from airflow.sdk import DeadlineAlert, DeadlineReference

        DAG(
            ...,
            deadline=DeadlineAlert(
                reference=DeadlineReference.DAGRUN_QUEUED_AT,
                interval=timedelta(hours=1),
                callback=SmSendNotifier.deadline_callback(recipients="+393331234567"),
            ),
        )

    Against alert storms (at most one SMS per run every 15 minutes)::

        default_args={"on_failure_callback": SmSendNotifier(collapse_minutes=15)}
    """

    template_fields: Sequence[str] = (
        "recipients",
        "text",
        "sender",
        "quality",
        "smsend_conn_id",
        "ledger_conn_id",
    )

    def __init__(
        self,
        *,
        recipients: str | Iterable[str] | None = None,
        text: str | None = None,
        smsend_conn_id: str = SmSendHook.default_conn_name,
        sender: str | None = None,
        quality: str | None = None,
        max_segments: int = 1,
        collapse_minutes: float | None = None,
        ledger_conn_id: str = DEFAULT_LEDGER_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(max_segments, bool) or not isinstance(max_segments, int) or not 1 <= max_segments <= 6:
            raise ValueError(f"max_segments must be an integer from 1 to 6, got {max_segments!r}.")
        _check_collapse_minutes(collapse_minutes)
        _check_literal_recipients(recipients)
        _check_literal_sender(sender)
        if quality is not None and not _templated(quality):
            from airflow_provider_smsend.client.validation import validate_quality

            try:
                validate_quality(quality)
            except SmSendValidationError as exc:
                raise ValueError(f"SmSendNotifier: {exc}") from None
        for name, conn_id in (("smsend_conn_id", smsend_conn_id), ("ledger_conn_id", ledger_conn_id)):
            if not isinstance(conn_id, str) or not conn_id.strip():
                raise ValueError(f"SmSendNotifier: {name} must name a connection, got {conn_id!r}.")
        self.recipients = recipients
        self.text = text
        self.smsend_conn_id = smsend_conn_id
        self.sender = sender
        self.quality = quality
        self.max_segments = max_segments
        self.collapse_minutes = collapse_minutes
        self.ledger_conn_id = ledger_conn_id
        self._unrendered: set[str] = set()

    @classmethod
    def deadline_callback(cls, **kwargs: Any) -> AsyncCallback:
        """An ``AsyncCallback`` for a ``DeadlineAlert``, its arguments checked now (when the DAG is parsed).

        The triggerer makes the notifier from ``kwargs`` when the deadline is missed and awaits it.

        :param kwargs: the notifier's arguments (JSON values: they are stored with the serialized DAG).
        """
        from airflow.sdk.definitions.callback import AsyncCallback

        cls(**kwargs)
        return AsyncCallback(cls, kwargs=kwargs)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render each template field of this instance on its own; a broken ``text`` falls back to the default text.

        Calling the notifier renders a copy (see :meth:`rendered`). A rendering error is logged at ERROR.
        """
        env = jinja_env
        if env is None:
            try:
                env = self.get_template_env(dag=context.get("dag"))
            except AttributeError:
                # DAG callbacks of ``airflow dags test`` get a SerializedDAG, which has no Jinja
                # environment of its own: fall back to the default one.
                env = self.get_template_env()
        for name in self.template_fields:
            try:
                self._do_render_template_fields(self, [name], context, env, set())
            except Exception as exc:
                log.error(
                    "smSend notification: the %s template failed to render (%s: %s)%s.",
                    name,
                    type(exc).__name__,
                    exc,
                    "; using the default text" if name == "text" else "",
                )
                if name == "text":
                    self.text = None
                else:
                    self._unrendered.add(name)

    def rendered(self, context: Context | Mapping[str, Any]) -> SmSendNotifier:
        """A copy of this notifier with its templates rendered for ``context``; this one is left as it is."""
        twin = copy.copy(self)
        twin._unrendered = set()
        merged: dict[str, Any] = dict(context)  # the caller's context is not changed either
        twin._update_context(merged)  # type: ignore[arg-type]
        twin.render_template_fields(merged)  # type: ignore[arg-type]
        return twin

    def __call__(self, *args: Any) -> None:
        """Send the notification for a callback's context, rendered into a copy."""
        if len(args) == 1:
            context = args[0]
        else:  # the legacy (dag, task_list, blocking_task_list, blocking_tis) form of BaseNotifier
            context = {
                "dag": args[0],
                "task_list": args[1],
                "blocking_task_list": args[2],
                "blocking_tis": args[3],
            }
        try:
            twin = self.rendered(context)
        except Exception as exc:
            log.error("smSend notification not sent: its templates failed (%s: %s).", type(exc).__name__, exc)
            return
        twin.notify(context)

    def __await__(self) -> Any:
        """Send the notification for the context given at construction (the triggerer's), rendered into a copy."""
        try:
            twin = self.rendered(self.context)
        except Exception as exc:
            log.error("smSend notification not sent: its templates failed (%s: %s).", type(exc).__name__, exc)
            return asyncio.sleep(0).__await__()
        return twin.async_notify(self.context).__await__()

    def build_text(self, context: Context | Mapping[str, Any]) -> str:
        """The text that will be sent for ``context`` (with this instance's fields as they are)."""
        if self.text:
            return fit_text(self.text, self.max_segments)
        return default_text(context, max_segments=self.max_segments)

    def notify(self, context: Context) -> None:
        """Send the SMS to every recipient; log failures, never raise."""
        try:
            self._send(context, SmSendHook(smsend_conn_id=self.smsend_conn_id))
        except SmSendError as exc:
            log.error("smSend notification not sent: %s", exc)
        except Exception as exc:
            log.error("smSend notification not sent: %s: %s", type(exc).__name__, exc)

    async def async_notify(self, context: Context) -> None:
        """Send the SMS from an event loop (the triggerer's): the connection is fetched asynchronously,
        the sends run in a worker thread; log failures, never raise."""
        from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook

        try:
            hook = SmSendAsyncHook(smsend_conn_id=self.smsend_conn_id)
            await hook.aload_connection()
            await asyncio.to_thread(self._send, context, hook)
        except SmSendError as exc:
            log.error("smSend notification not sent: %s", exc)
        except Exception as exc:
            log.error("smSend notification not sent: %s: %s", type(exc).__name__, exc)

    def _send(self, context: Context | Mapping[str, Any], hook: SmSendHook) -> None:
        if self._unrendered:
            log.error(
                "smSend notification not sent: %s did not render (see above).",
                ", ".join(sorted(self._unrendered)),
            )
            return
        client = hook.client
        try:
            recipients, invalid = self._recipients(hook, client)
            if not recipients:
                if invalid:
                    log.error("smSend notification reached 0 of %d recipient(s).", invalid)
                return
            from airflow_provider_smsend.client.validation import validate_sender

            sender = validate_sender(self.sender or client.default_sender, region=client.default_region)
            quality = self.quality or client.default_quality
            prepared = client.prepare(self.build_text(context), quality=quality)
            guard = None
            keys = _storm_keys(describe(context), recipients) if self.collapse_minutes else None
            if keys is not None and self.collapse_minutes is not None:
                guard = _StormGuard(self.ledger_conn_id, self.collapse_minutes, keys)
                if not guard.admit():
                    guard.close()
                    return
            sent, cost = 0, Decimal(0)
            try:
                for rcpt in recipients:
                    try:
                        result = client.send_prepared(rcpt, prepared, sender=sender, quality=quality)
                    except SmSendError as exc:
                        log.error("smSend notification to %s not sent: %s", mask_number(rcpt), exc)
                        continue
                    sent += 1
                    cost += result.cost
                    log.info(
                        "smSend notification sent to %s (%d segment(s), cost %s EUR, request id %s).",
                        mask_number(result.recipient),
                        result.message.segments,
                        result.cost,
                        result.request_id,
                    )
            finally:
                if guard is not None:
                    guard.record(sent, cost)
                    guard.close()
        finally:
            client.close()
        if sent < len(recipients) + invalid:
            log.error("smSend notification reached %d of %d recipient(s).", sent, len(recipients) + invalid)

    def _recipients(self, hook: SmSendHook, client: SmSendClient) -> tuple[list[str], int]:
        """The recipients in E.164, each once, and how many were invalid (logged, masked, left out)."""
        from airflow_provider_smsend.client.numbers import normalize_number

        given = recipient_list(self.recipients) if self.recipients is not None else hook.default_recipients
        if not given:
            log.error(
                "smSend notification not sent: no recipient; pass recipients= or set the default_recipients "
                "extra of connection %r.",
                hook.smsend_conn_id,
            )
            return [], 0
        numbers: dict[str, None] = {}
        invalid = 0
        for raw in given:
            try:
                numbers[normalize_number(raw, region=client.default_region)] = None
            except SmSendValidationError as exc:
                invalid += 1
                log.error("smSend notification to %s not sent: %s", mask_number(raw), exc)
        return list(numbers), invalid


send_smsend_notification = SmSendNotifier
