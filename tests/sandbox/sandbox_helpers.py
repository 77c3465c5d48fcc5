"""Shared constants and helpers of the sandbox tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

    from airflow_provider_smsend.sandbox.testing import SandboxServer

DEMO = {"user": "demo", "pass": "demo-pass"}
RESELLER = {"smsusername": "reseller", "smspassword": "reseller-pass"}


def post(session: requests.Session, sandbox: SandboxServer, path: str, **params: str) -> str:
    """POST form parameters to ``path``; assert HTTP 200 and UTF-8 text; return the body."""
    answer = session.post(f"{sandbox.url}{path}", data=params, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    return answer.text
