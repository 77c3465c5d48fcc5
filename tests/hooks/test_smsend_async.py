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


def counting_fetches(monkeypatch) -> list[str]:
    """Record each connection fetch the hooks make (the triggerer asks its supervisor for each)."""
    fetched: list[str] = []
    real = SmSendAsyncHook.aget_connection.__func__

    async def counting(cls, conn_id):
        fetched.append(conn_id)
        await asyncio.sleep(0.01)  # a round trip: concurrent callers overlap
        return await real(cls, conn_id)

    monkeypatch.setattr(SmSendAsyncHook, "aget_connection", classmethod(counting))
    return fetched


def test_hooks_of_one_loop_fetch_a_connection_once(conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_OTHER", URI.replace("demo:demo-pass", "other:other-pass"))
    fetched = counting_fetches(monkeypatch)

    async def start(count: int) -> list:
        hooks = [SmSendAsyncHook(smsend_conn_id=conn) for _ in range(count)]
        hooks.append(SmSendAsyncHook(smsend_conn_id="smsend_other"))
        clients = await asyncio.gather(*(hook.get_async_client() for hook in hooks))
        return [(c._spec.username, c._spec.timeout) for c in clients]

    settings = asyncio.run(start(50))  # fifty triggers starting at once
    assert fetched == [conn, "smsend_other"]
    assert settings == [("demo", (2.0, 7.0))] * 50 + [("other", (2.0, 7.0))]
    asyncio.run(start(1))  # another loop fetches for itself
    assert fetched == [conn, "smsend_other"] * 2


def test_an_edited_connection_is_seen_once_the_cache_expires(conn, monkeypatch):
    from airflow_provider_smsend.hooks import smsend_async

    monkeypatch.setattr(smsend_async, "CONNECTION_CACHE_SECONDS", 0.2)

    async def hosts() -> list[str]:
        seen = [(await SmSendAsyncHook(smsend_conn_id=conn).get_async_client()).base_url]
        monkeypatch.setenv("AIRFLOW_CONN_SMSEND_ASYNC", URI.replace("8765", "8766"))
        seen.append((await SmSendAsyncHook(smsend_conn_id=conn).get_async_client()).base_url)
        await asyncio.sleep(0.3)
        seen.append((await SmSendAsyncHook(smsend_conn_id=conn).get_async_client()).base_url)
        return seen

    assert asyncio.run(hosts()) == ["http://127.0.0.1:8765", "http://127.0.0.1:8765", "http://127.0.0.1:8766"]


def test_a_failed_fetch_is_not_kept(monkeypatch):
    fetched = counting_fetches(monkeypatch)

    async def go() -> list[str]:
        outcomes = await asyncio.gather(
            *(SmSendAsyncHook(smsend_conn_id="smsend_late").aload_connection() for _ in range(3)),
            return_exceptions=True,
        )
        assert all("isn't defined" in str(o) for o in outcomes)  # every waiter gets the error
        monkeypatch.setenv("AIRFLOW_CONN_SMSEND_LATE", URI)  # the connection is created meanwhile
        conn = await SmSendAsyncHook(smsend_conn_id="smsend_late").aload_connection()
        return [conn.login]

    assert asyncio.run(go()) == ["demo"]
    assert fetched == ["smsend_late", "smsend_late"]


def test_a_finished_fetch_keeps_its_result_not_its_loop(conn):
    """The cache is weak on the event loop: a finished fetch is stored as its result (a task would
    hold its loop, and the loop's entries, password included, for ever)."""
    import gc

    from airflow_provider_smsend.hooks import smsend_async

    async def fetch() -> object:
        await SmSendAsyncHook(smsend_conn_id=conn).aload_connection()
        entries = smsend_async._fetches[asyncio.get_running_loop()]
        return entries[conn][1]

    for _ in range(3):
        cached = asyncio.run(fetch())
        assert not isinstance(cached, asyncio.Future)
    gc.collect()
    # Three loops came and went; Airflow's SDK keeps a reference to the last one it saw.
    assert len(smsend_async._fetches) <= 1
