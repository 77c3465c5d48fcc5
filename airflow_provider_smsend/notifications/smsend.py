"""SmSendNotifier: an SMS for task and DAG callbacks (failure, success, retry...)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_smsend.client.encoding import analyse_text
from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.hooks.smsend import SmSendHook

if TYPE_CHECKING:
    from airflow.sdk import Context

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


def describe(context: Context | dict[str, Any]) -> dict[str, Any]:
    """What the default text tells: status, DAG and task ids, run id, try number, log URL."""
    ctx: dict[str, Any] = dict(context)
    ti = ctx.get("ti") or ctx.get("task_instance")
    dag_run = ctx.get("dag_run")
    dag = ctx.get("dag")
    info: dict[str, Any] = {"kind": "task" if ti is not None else "DAG run"}
    info["dag_id"] = (
        getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", None) or "?"
    )
    info["task_id"] = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", None)
    if info["task_id"] is not None and isinstance(map_index, int) and map_index >= 0:
        info["task_id"] = f"{info['task_id']}[{map_index}]"
    info["run_id"] = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or ctx.get("run_id")
    info["try_number"] = getattr(ti, "try_number", None)
    try:
        info["log_url"] = getattr(ti, "log_url", None) if ti is not None else None
    except Exception:  # log_url reads configuration; a notifier must not fail on it
        info["log_url"] = None
    state = _value(getattr(ti, "state", None)) if ti is not None else _value(getattr(dag_run, "state", None))
    if ctx.get("exception") is not None and state not in ("up_for_retry", "failed"):
        state = "failed"
    if state is None and ti is None and ctx.get("reason"):
        state = str(ctx["reason"])[:20]
    info["status"] = _STATUS_WORDS.get(state or "", state or "event")
    return info


def _compose(
    info: dict[str, Any], *, run_id: str | None, log: bool, try_: bool, compact: bool = False
) -> str:
    task = info["task_id"]
    if compact:
        ids = f"{info['dag_id']}.{task}" if task else info["dag_id"]
        return f"Airflow {info['status']}: {ids}"
    lines = [f"Airflow {info['kind']} {info['status']}", f"DAG: {info['dag_id']}"]
    if task:
        lines.append(f"Task: {task}")
    if run_id:
        lines.append(f"Run: {run_id}")
    if try_ and info["try_number"] is not None:
        lines.append(f"Try: {info['try_number']}")
    if log and info["log_url"]:
        lines.append(f"Log: {info['log_url']}")
    return "\n".join(lines)


def default_text(context: Context | dict[str, Any], *, max_segments: int = 1) -> str:
    """The default notification text, fitted to ``max_segments``.

    Parts are cut least useful first: the log URL, then the run id is shortened (then cut
    further, then dropped), then the try number, then the labels; the DAG and task ids are never
    cut, so a text whose ids alone exceed the limit is sent longer than ``max_segments``.
    """
    info = describe(context)
    run_id = info["run_id"]
    full = _compose(info, run_id=run_id, log=True, try_=True)
    if fits(full, max_segments):
        return full
    candidates = [_compose(info, run_id=run_id, log=False, try_=True)]
    if run_id:
        short = shorten_run_id(run_id)
        candidates.append(_compose(info, run_id=short, log=False, try_=True))
        for length in range(len(short) - 1, _MIN_RUN_CHARS - 1, -1):
            candidates.append(_compose(info, run_id=short[: length - 2] + "..", log=False, try_=True))
    candidates.append(_compose(info, run_id=None, log=False, try_=True))
    candidates.append(_compose(info, run_id=None, log=False, try_=False))
    for candidate in candidates:
        if fits(candidate, max_segments):
            return candidate
    return _compose(info, run_id=None, log=False, try_=False, compact=True)


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


def _recipients(value: str | Iterable[str]) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            from airflow_provider_smsend.operators.mnc import parse_numbers

            return [str(n) for n in parse_numbers(text)]
        return [part.strip() for part in text.split(",") if part.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


class SmSendNotifier(BaseNotifier):
    """Send an SMS from a task or DAG callback (``on_failure_callback``, ``on_success_callback``...).

    Without ``text`` the message tells the status, the DAG id, the task id, the run id, the try
    number and the log URL, fitted to ``max_segments`` SMS segments by cutting the least useful
    parts first (the log URL, then the run id, shortened before it is dropped, then the try
    number); the DAG and task ids are never cut. A ``text`` of your own is templated and cut at
    the end to fit.

    The notifier never raises: a failure (unknown connection, invalid number, ``KO`` answer,
    gateway down) is logged at ERROR with the gateway's reason, and the callback path goes on.
    (Airflow's task runner logs an exception raised by a callback too, but the DAG processor
    and the triggerer run notifiers where an exception is noisier; an alert must not become an
    incident of its own.) Recipients are masked in logs; the text is never logged.

    :param recipients: one number, numbers separated by commas, or a list (templated).
    :param text: the message (templated); None for the default text.
    :param smsend_conn_id: the smSend connection.
    :param sender: the sender (<= 11 letters/digits or a number); default: the connection's
        ``default_sender`` extra.
    :param quality: ``ll``, ``l``, ``a``, ``h`` or ``n``; default: the connection's (``h``).
        More than one segment needs ``h`` or ``n``.
    :param max_segments: the most SMS segments one notification may take (default 1).

    Example::

        from airflow_provider_smsend.notifications.smsend import send_smsend_notification

        BashOperator(
            task_id="load",
            bash_command="load.sh",
            on_failure_callback=send_smsend_notification(
                recipients=["+393331234567"], sender="ETL"
            ),
        )
    """

    template_fields: Sequence[str] = ("recipients", "text", "sender", "quality", "smsend_conn_id")

    def __init__(
        self,
        *,
        recipients: str | Iterable[str],
        text: str | None = None,
        smsend_conn_id: str = SmSendHook.default_conn_name,
        sender: str | None = None,
        quality: str | None = None,
        max_segments: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(max_segments, bool) or not isinstance(max_segments, int) or not 1 <= max_segments <= 6:
            raise ValueError(f"max_segments must be an integer from 1 to 6, got {max_segments!r}.")
        self.recipients = recipients
        self.text = text
        self.smsend_conn_id = smsend_conn_id
        self.sender = sender
        self.quality = quality
        self.max_segments = max_segments

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render each template field on its own; a broken ``text`` template falls back to the default text.

        The notifier must not break the callback path: a rendering error is logged at ERROR.
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

    def build_text(self, context: Context | dict[str, Any]) -> str:
        """The text that will be sent for ``context``."""
        if self.text:
            return fit_text(self.text, self.max_segments)
        return default_text(context, max_segments=self.max_segments)

    def notify(self, context: Context) -> None:
        """Send the SMS to every recipient; log failures, never raise."""
        try:
            self._send(context)
        except SmSendError as exc:
            log.error("smSend notification not sent: %s", exc)
        except Exception as exc:
            log.error("smSend notification not sent: %s: %s", type(exc).__name__, exc)

    async def async_notify(self, context: Context) -> None:
        """Async twin of :meth:`notify`: the sync client runs in a worker thread."""
        try:
            await asyncio.to_thread(self.notify, context)
        except Exception as exc:  # to_thread itself failing (interpreter shutdown...)
            log.error("smSend notification not sent: %s: %s", type(exc).__name__, exc)

    def _send(self, context: Context) -> None:
        recipients = _recipients(self.recipients)
        if not recipients:
            log.error("smSend notification not sent: no recipient.")
            return
        text = self.build_text(context)
        client = SmSendHook(smsend_conn_id=self.smsend_conn_id).client
        try:
            sent = 0
            for rcpt in recipients:
                try:
                    result = client.send(rcpt, text, sender=self.sender or None, quality=self.quality or None)
                except SmSendError as exc:
                    log.error("smSend notification to %s not sent: %s", mask_number(rcpt), exc)
                    continue
                sent += 1
                log.info(
                    "smSend notification sent to %s (%d segment(s), cost %s EUR, request id %s).",
                    mask_number(result.recipient),
                    result.message.segments,
                    result.cost,
                    result.request_id,
                )
        finally:
            client.close()
        if sent < len(recipients):
            log.error("smSend notification reached %d of %d recipient(s).", sent, len(recipients))


send_smsend_notification = SmSendNotifier
