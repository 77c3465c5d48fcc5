"""SmSendClient.stream_batch_status_blocks: a report's raw bytes, checked for KO before any is yielded."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_smsend.client.errors import SmSendError, SmSendTransportError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import NO_RETRY, RetryPolicy

BASE = "https://gw.test"
PATH = "/sms/batch-status.php"
REPORT = b"id,dest,status,status_text\n9182,+393209999999,100,Queued\n"


def make_client(retry: RetryPolicy = NO_RETRY) -> SmSendClient:
    return SmSendClient(base_url=BASE, username="acct-user9", password="pw-Secret9", retry=retry)


def test_chunks_are_the_body_with_its_content_type(requests_mock) -> None:
    requests_mock.post(BASE + PATH, content=REPORT, headers={"Content-Type": "text/csv; charset=ISO-8859-1"})

    with make_client().stream_batch_status_blocks("HTTP1", "queue") as (chunks, content_type):
        body = b"".join(chunks)

    assert body == REPORT and content_type == "text/csv; charset=ISO-8859-1"
    form = requests_mock.last_request.text
    assert "id=HTTP1" in form and "type=queue" in form


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"KO Parametro id non corretto.", SmSendError, "id"),
        (b"\r\nKO Parametro id non corretto.\n", None, None),  # a KO after a blank first line is the parser's
        (b"", SmSendTransportError, "empty body"),
        (b"KO Parametro id non corretto.\rid,dest\r", SmSendError, "id"),  # CR line ends
    ],
)
def test_ko_or_empty_answers_raise_before_any_chunk(requests_mock, content, error, message) -> None:
    requests_mock.post(BASE + PATH, content=content)
    if error is None:
        with make_client().stream_batch_status_blocks("HTTP1") as (chunks, _):
            assert b"".join(chunks) == content
        return
    with pytest.raises(error, match=message):
        with make_client().stream_batch_status_blocks("HTTP1"):
            pytest.fail("no chunk may be yielded")


def test_a_refused_connection_is_retried(requests_mock) -> None:
    refused = requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    requests_mock.post(BASE + PATH, [{"exc": refused}, {"content": REPORT}])

    with make_client(RetryPolicy(attempts=2, initial_wait=0, max_wait=0)).stream_batch_status_blocks("H") as (
        chunks,
        _,
    ):
        assert b"".join(chunks) == REPORT
    assert requests_mock.call_count == 2


def test_invalid_report_type_is_refused_before_sending(requests_mock) -> None:
    with pytest.raises(SmSendError, match="report type"):
        with make_client().stream_batch_status_blocks("HTTP1", "sent"):
            pass
    assert requests_mock.call_count == 0
