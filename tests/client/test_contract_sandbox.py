"""Contract: the client against the live sandbox, and the sandbox's own answers replayed by requests-mock.

Every HTTP endpoint is called through ``SmSendClient`` over real HTTP; the raw answer the sandbox
gave is then replayed through requests-mock to the same call, and both must give the same typed
result (or the same error). The requests-mock tests elsewhere use canned answers: this test pins
those answers' shapes to what a gateway that follows the documentation really sends, so the two
cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import requests

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import NO_RETRY

RECEPTION = "+393400000009"


class Recorder:
    """A requests session that keeps the last raw answer of each path."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.answers: dict[str, tuple[int, str, bytes]] = {}
        self.session.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = requests.utils.urlparse(response.url).path
        self.answers[path] = (
            response.status_code,
            response.headers.get("Content-Type", ""),
            response.content,
        )


def client_for(url: str, session: requests.Session | None = None) -> SmSendClient:
    return SmSendClient(
        base_url=url,
        username="demo",
        password="demo-pass",
        reseller_username="reseller",
        reseller_password="reseller-pass",
        default_sender="ACME",
        retry=NO_RETRY,
        session=session,
    )


def outcome(call: Callable[[SmSendClient], Any], client: SmSendClient) -> Any:
    try:
        return ("ok", call(client))
    except SmSendError as exc:
        return ("error", type(exc).__name__, exc.code, exc.gateway_text)


def stream(frames_cm: Any) -> list[dict[str, Any]]:
    """The rows of a streamed report's frames, as dicts."""
    with frames_cm as frames:
        return [row for frame in frames for row in frame.to_dict("records")]


TODAY = dt.date.today()

#: (name, the call, a check of the typed result from the live sandbox)
CALLS: list[tuple[str, Callable[[SmSendClient], Any], Callable[[Any], bool]]] = [
    ("credit", lambda c: c.credit(), lambda r: isinstance(r, Decimal)),
    ("credit_quality", lambda c: c.credit("h"), lambda r: isinstance(r, int) and r > 0),
    (
        "send",
        lambda c: c.send("+393331234567", "contract"),
        lambda r: isinstance(r.cost, Decimal) and r.cost > 0 and r.request_id.startswith("HTTP"),
    ),
    ("mnc", lambda c: c.mnc(["+393331234567", "+393471234567"]), lambda r: r.startswith("HTTP")),
    (
        "client_add",
        lambda c: c.client_add("Contract Srl", "contract-client", "Secret-1"),
        lambda r: isinstance(r, int),
    ),
    ("credit_add", lambda c: c.credit_add(1001, 1, "1,2345"), lambda r: isinstance(r, int)),
    ("credit_get", lambda c: c.credit_get(1001), lambda r: isinstance(r, Decimal)),
    (
        "recv_add",
        lambda c: c.recv_add(1001, RECEPTION, 2),
        lambda r: len(r) == 2 and all(isinstance(x, str) for x in r),
    ),
    ("client_status_off", lambda c: c.client_status(1002, False), lambda r: r is False),
    ("client_status_on", lambda c: c.client_status(1002, True), lambda r: r is True),
    (
        "userlog_credits",
        lambda c: c.userlog_get("credits", u_id=1001, date_from=TODAY, date_to=TODAY),
        lambda r: r and r[-1].credit == Decimal("1.2345") and r[-1].date.tzinfo is not None,
    ),
    ("userlog_recv_add", lambda c: c.userlog_get("recv_add"), lambda r: r and r[-1].dest == RECEPTION),
    (
        "stream_userlog",
        lambda c: stream(c.stream_userlog("credits")),
        lambda r: bool(r) and r[-1]["credit"] == Decimal("1.2345"),
    ),
]


def test_every_endpoint_agrees_live_and_replayed(sandbox, requests_mock):
    requests_mock.real_http = True  # the live part goes through; replays are registered per path
    recorder = Recorder()
    live_client = client_for(sandbox.url, recorder.session)
    calls = list(CALLS)
    # Report endpoints need ids from the live sends above: add them once known.
    sent = live_client.send("+393471234567", "for reports")
    mnc_id = live_client.mnc(["+393331234567", "+393331230000"])
    share = live_client.recv_add(1001, "+393400000010")[0]
    calls += [
        (
            "batch_queue",
            lambda c: c.batch_status(sent.request_id, "queue"),
            lambda r: r.rows[0].status == 200,
        ),
        (
            "batch_notify",
            lambda c: c.batch_status(sent.request_id, "notify"),
            lambda r: r.rows[0].dest == "+393471234567" and r.rows[0].state == "success",
        ),
        (
            "batch_mnc",
            lambda c: c.batch_status(mnc_id, "mnc"),
            lambda r: {row.status for row in r.rows} == {200, 300} and any(row.netcode for row in r.rows),
        ),
        (
            "stream_batch",
            lambda c: stream(c.stream_batch_status(sent.request_id, "notify")),
            lambda r: [row["dest"] for row in r] == ["+393471234567"],
        ),
        ("recv_del", lambda c: c.recv_del(1001, "+393400000010", share), lambda r: r is None),
        ("bad_u_id", lambda c: c.credit_get(999999), lambda r: False),
    ]
    for name, call, check in calls:
        recorder.answers.clear()
        live = outcome(call, live_client)
        assert len(recorder.answers) == 1, name
        ((path, (status, content_type, body)),) = recorder.answers.items()
        requests_mock.post(
            f"https://replay.test{path}",
            status_code=status,
            content=body,
            headers={"Content-Type": content_type},
        )
        replayed = outcome(call, client_for("https://replay.test"))
        assert replayed == live, name
        if name == "bad_u_id":
            assert live[:3] == ("error", "SmSendNotFoundError", "user_not_found")
        else:
            assert live[0] == "ok" and check(live[1]), (name, live)


def test_refusals_agree_live_and_replayed(sandbox, requests_mock):
    requests_mock.real_http = True
    recorder = Recorder()
    wrong = SmSendClient(
        base_url=sandbox.url,
        username="demo",
        password="wrong",
        retry=NO_RETRY,
        session=recorder.session,
        default_sender="ACME",
    )
    live = outcome(lambda c: c.send("+393331234567", "x"), wrong)
    ((path, (status, content_type, body)),) = recorder.answers.items()
    requests_mock.post(
        f"https://replay.test{path}", status_code=status, content=body, headers={"Content-Type": content_type}
    )
    replay = SmSendClient(
        base_url="https://replay.test",
        username="demo",
        password="wrong",
        retry=NO_RETRY,
        default_sender="ACME",
    )
    assert outcome(lambda c: c.send("+393331234567", "x"), replay) == live
    assert live[0] == "error" and live[1] == "SmSendAuthError"
