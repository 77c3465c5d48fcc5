"""The polling loop shared by the smSend triggers, and the events they send back to their sensors.

Every trigger event payload is a JSON-able dict with a ``status``:

=========== =============================================================== ==========================
status      meaning                                                         the sensor
=========== =============================================================== ==========================
``success`` the condition holds; ``xcom`` is the value to return            returns ``xcom``
``failed``  the condition can no longer hold (``summary`` says why)         AirflowFailException
``error``   a non-retryable gateway error (``error_type``, ``code``)        AirflowFailException
``timeout`` the sensor's absolute ``end_time`` passed                       AirflowSensorTimeout
=========== =============================================================== ==========================

(``soft_fail``/``never_fail`` turn the last three into a skip, as in poke mode.)
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_smsend.client.batch_rules import next_poll_interval
from airflow_provider_smsend.client.errors import SmSendError

if TYPE_CHECKING:
    from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook

SUCCESS = "success"
FAILED = "failed"
ERROR = "error"
TIMEOUT = "timeout"
#: Seconds a poll may run past the end time (so a poll started at the end time still gets a look).
END_TIME_GRACE = 0.5


def error_payload(exc: BaseException, what: str) -> dict[str, Any]:
    """The event payload of a non-retryable error: the message says what to do next."""
    return {
        "status": ERROR,
        "message": f"{what} failed and will not succeed by waiting: {exc}",
        "error_type": type(exc).__name__,
        "code": getattr(exc, "code", None),
    }


def timeout_payload(end_time: float, what: str, last_error: str | None = None) -> dict[str, Any]:
    """The event payload once the sensor's absolute end time has passed."""
    return {
        "status": TIMEOUT,
        "message": f"Sensor has timed out: {what} not satisfied by the end time "
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(end_time))}."
        + (f" Last error: {last_error}" if last_error else ""),
    }


class SmSendPollingTrigger(BaseTrigger):
    """Base of the smSend triggers: poll the gateway with exponential backoff until a decision.

    Subclasses implement :meth:`poll` (one look at the gateway: an event payload to finish, or
    None to poll again) and :meth:`serialize`. Credentials are never in the kwargs: the triggerer
    resolves ``smsend_conn_id`` itself through :class:`SmSendAsyncHook`.

    :param smsend_conn_id: the Airflow connection id.
    :param poll_interval: seconds before the first poll, and the first backoff interval.
    :param max_poll_interval: cap of the doubling interval; None or <= ``poll_interval``: constant.
    :param end_time: absolute deadline, UTC epoch seconds; None waits forever.
    """

    #: What the trigger waits for, in log and error messages.
    description = "smSend condition"

    def __init__(
        self,
        *,
        smsend_conn_id: str,
        poll_interval: float,
        max_poll_interval: float | None = None,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.smsend_conn_id = smsend_conn_id
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = None if max_poll_interval is None else float(max_poll_interval)
        self.end_time = None if end_time is None else float(end_time)

    def _base_kwargs(self) -> dict[str, Any]:
        return {
            "smsend_conn_id": self.smsend_conn_id,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "end_time": self.end_time,
        }

    def _hook(self) -> SmSendAsyncHook:
        from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook

        return SmSendAsyncHook(smsend_conn_id=self.smsend_conn_id)

    async def setup(self, hook: SmSendAsyncHook) -> None:
        """Prepare clients (connection fetched here, inside the triggerer). Errors end the trigger."""

    async def teardown(self) -> None:
        """Release what :meth:`setup` opened."""

    @abstractmethod
    async def poll(self) -> dict[str, Any] | None:
        """Look at the gateway once: return an event payload to finish, or None to poll again.

        Raise :class:`SmSendError`: a retryable one is logged and polled again, any other ends the
        trigger with an ``error`` event.
        """

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Sleep, poll, back off; yield exactly one event."""
        try:
            await self.setup(self._hook())
        except Exception as exc:  # a missing connection, bad extras: waiting will not fix them
            yield TriggerEvent(error_payload(exc, f"Preparing to wait for {self.description}"))
            return
        try:
            interval: float | None = None
            last_error: str | None = None
            while True:
                interval = next_poll_interval(
                    interval, initial=self.poll_interval, maximum=self.max_poll_interval
                )
                wait = (
                    interval
                    if self.end_time is None
                    else min(interval, max(0.0, self.end_time - time.time()))
                )
                self.log.debug("Next smSend poll in %.1f s", wait)
                await asyncio.sleep(wait)
                try:
                    if self.end_time is None:
                        payload = await self.poll()
                    else:
                        # A hung gateway must not hold the trigger past the sensor's end time (one poll
                        # can take every retry's read timeout); the last poll gets a short grace.
                        # asyncio.timeout, not wait_for: no extra task per poll (a tenth of a
                        # millisecond of the triggerer's loop, times every poll of every trigger).
                        remaining = max(0.0, self.end_time - time.time()) + END_TIME_GRACE
                        async with asyncio.timeout(remaining):
                            payload = await self.poll()
                except TimeoutError:
                    last_error = "the gateway had not answered the last poll by the end time."
                    payload = None
                except SmSendError as exc:
                    if not exc.retryable:
                        yield TriggerEvent(error_payload(exc, f"Waiting for {self.description}"))
                        return
                    self.log.warning(
                        "Retryable smSend error while waiting for %s: %s; polling again",
                        self.description,
                        exc,
                    )
                    last_error = str(exc)
                    payload = None
                if payload is not None:
                    yield TriggerEvent(payload)
                    return
                if self.end_time is not None and time.time() >= self.end_time:
                    yield TriggerEvent(timeout_payload(self.end_time, self.description, last_error))
                    return
        finally:
            await self.teardown()
