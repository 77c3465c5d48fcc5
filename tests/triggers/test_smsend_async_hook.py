"""SmSendAsyncHook: the connection resolved on the loop, clients built by SmSendHook's own code."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook

URI = (
    "smsend://demo:demo-pass@127.0.0.1:8765/?scheme=http&reseller_username=reseller"
    "&reseller_password=reseller-pass&timeout=7&connect_timeout=2&charset=iso-8859-1"
    "&receive_host=http%3A%2F%2Frecv.test%3A9000"
)


@pytest.fixture
def conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_ASYNC", URI)
    return "smsend_async"


def test_async_client_mirrors_the_sync_hook_without_sync_connection_lookup(conn, monkeypatch):
    hook = SmSendAsyncHook(smsend_conn_id=conn)

    def no_sync(*args, **kwargs):
        raise AssertionError("get_connection must not run on the event loop")

    monkeypatch.setattr(SmSendAsyncHook, "get_connection", classmethod(no_sync))
    client = asyncio.run(hook.get_async_client())
    assert client.base_url == "http://127.0.0.1:8765"
    spec = client._spec
    assert (spec.username, spec.reseller_username, spec.charset) == ("demo", "reseller", "iso-8859-1")
    assert spec.timeout == (2.0, 7.0)
    assert hook.extras["reseller_password"] == "reseller-pass"

    soap = asyncio.run(hook.get_soap_client())
    assert soap.receive_url == "http://recv.test:9000"


def test_same_settings_as_the_sync_hook(conn):
    sync = SmSendHook(smsend_conn_id=conn).client
    client = asyncio.run(SmSendAsyncHook(smsend_conn_id=conn).get_async_client())
    attrs = ("base_url", "username", "reseller_username", "timeout", "charset", "retry")
    assert {a: getattr(client._spec, a) for a in attrs} == {a: getattr(sync, a) for a in attrs}


def test_missing_connection_raises(monkeypatch):
    with pytest.raises(Exception, match="not defined|not found|isn't defined"):
        asyncio.run(SmSendAsyncHook(smsend_conn_id="smsend_nowhere").aload_connection())
