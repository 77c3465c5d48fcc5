"""The JSON admin/inspection API under ``/_sandbox/`` (never subject to injected faults).

================================ ====== ==========================================================
route                            method what
================================ ====== ==========================================================
/_sandbox/health                 GET    ``{"status": "ok"}``
/_sandbox/messages               GET    ``{"messages": [...]}``; filters ``rcpt``, ``kind``, ``username``
/_sandbox/messages/counts        GET    ``{"counts": {"+39...": 2}}``; filter ``kind``
/_sandbox/reset                  POST   reload the fixture, forget everything
/_sandbox/inbound                GET    ``{"inbound": [...]}``
/_sandbox/inbound                POST   inject an SMS: ``rcpt, sharecode, sender, text[, received_at]``
/_sandbox/clock                  GET    ``{"now", "epoch", "offset"}``
/_sandbox/clock/advance          POST   ``{"seconds": N}`` -> the clock
/_sandbox/faults                 GET    fault settings plus ``injected`` counts
/_sandbox/faults                 PUT    partial update (POST too)
/_sandbox/settings               GET    ``{"delivery_delay", "mnc_report", "allow_ips"}``
/_sandbox/settings               PUT    partial update (POST too)
/_sandbox/stats                  GET    ``{"requests": {path: n}, "total": n, "faults_injected": {...}}``
/_sandbox/stats/reset            POST   zero the request and fault counters
/_sandbox/accounts               GET    ``{"accounts": [...]}``
/_sandbox/accounts/{u_id}/credit GET    ``{"u_id", "username", "credit"}``
/_sandbox/accounts/{u_id}/credit PUT    ``{"credit": "12.5000"}`` (POST too)
/_sandbox/userlog                GET    ``{"userlog": [...]}``
================================ ====== ==========================================================
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from airflow_provider_smsend.sandbox.accounts import format_money, money
from airflow_provider_smsend.sandbox.models import ROME, rome_time

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_smsend.sandbox.state import SandboxState

PREFIX = "/_sandbox"


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def parse_received_at(value: Any) -> float | None:
    """Convert ``received_at`` (epoch seconds or ISO 8601; naive means Europe/Rome) to epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ROME)
    return moment.timestamp()


def build_admin_app(state: SandboxState) -> Starlette:
    """Build the Starlette application serving the admin API for ``state``."""

    def clock_json() -> dict[str, Any]:
        now = state.now()
        return {"now": rome_time(now).isoformat(), "epoch": now, "offset": state.clock_offset}

    def faults_json() -> dict[str, Any]:
        return {**state.faults.settings.to_json(), "injected": dict(state.faults.injected)}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def messages(request: Request) -> JSONResponse:
        q = request.query_params
        return JSONResponse(
            {"messages": state.list_messages(q.get("rcpt"), q.get("kind"), q.get("username"))}
        )

    async def counts(request: Request) -> JSONResponse:
        return JSONResponse({"counts": state.counts(request.query_params.get("kind"))})

    async def reset(request: Request) -> JSONResponse:
        state.reset()
        state.faults.reset_counts()
        return JSONResponse({"status": "reset"})

    async def inbound(request: Request) -> JSONResponse:
        if request.method == "GET":
            with state.lock:
                items = [m.describe() for m in state.inbound]
            return JSONResponse({"inbound": items})
        try:
            body = await _json_body(request)
            missing = [k for k in ("rcpt", "sharecode", "sender", "text") if not body.get(k)]
            if missing:
                return _error(f"missing fields: {missing!r}")
            sms = state.add_inbound(
                str(body["rcpt"]),
                str(body["sharecode"]),
                str(body["sender"]),
                str(body["text"]),
                parse_received_at(body.get("received_at")),
            )
        except ValueError as exc:
            return _error(str(exc))
        return JSONResponse(sms.describe(), status_code=201)

    async def clock(request: Request) -> JSONResponse:
        return JSONResponse(clock_json())

    async def advance(request: Request) -> JSONResponse:
        try:
            seconds = float((await _json_body(request)).get("seconds", 0))
        except (TypeError, ValueError) as exc:
            return _error(f"seconds must be a number: {exc}")
        if seconds < 0:
            return _error("the clock only moves forward: seconds must be >= 0")
        state.advance(seconds)
        return JSONResponse(clock_json())

    async def faults(request: Request) -> JSONResponse:
        if request.method != "GET":
            try:
                state.faults.update(**await _json_body(request))
            except (TypeError, ValueError) as exc:
                return _error(str(exc))
        return JSONResponse(faults_json())

    async def settings(request: Request) -> JSONResponse:
        if request.method != "GET":
            try:
                state.update_settings(**await _json_body(request))
            except (TypeError, ValueError) as exc:
                return _error(str(exc))
        return JSONResponse(state.settings.to_json())

    async def stats(request: Request) -> JSONResponse:
        requests = dict(state.stats)
        return JSONResponse(
            {
                "requests": requests,
                "total": sum(requests.values()),
                "faults_injected": dict(state.faults.injected),
            }
        )

    async def stats_reset(request: Request) -> JSONResponse:
        state.stats.clear()
        state.faults.reset_counts()
        return JSONResponse({"status": "reset"})

    async def accounts(request: Request) -> JSONResponse:
        with state.lock:
            items = [a.to_json() for a in state.accounts.values()]
        return JSONResponse({"accounts": items})

    async def credit(request: Request) -> JSONResponse:
        u_id = int(request.path_params["u_id"])
        account = state.accounts.get(u_id)
        if account is None:
            return _error(f"no account with u_id {u_id}", 404)
        if request.method != "GET":
            try:
                amount = money((await _json_body(request))["credit"])
            except (KeyError, ValueError) as exc:
                return _error(f"a JSON body with 'credit' is required: {exc}")
            state.set_credit(u_id, amount)
        return JSONResponse(
            {"u_id": u_id, "username": account.username, "credit": format_money(account.credit)}
        )

    async def userlog(request: Request) -> JSONResponse:
        with state.lock:
            items = [{**e.__dict__, "created_at": rome_time(e.created_at).isoformat()} for e in state.userlog]
        return JSONResponse({"userlog": items})

    write = ["PUT", "POST"]
    routes = [
        Route(f"{PREFIX}/health", health),
        Route(f"{PREFIX}/messages", messages),
        Route(f"{PREFIX}/messages/counts", counts),
        Route(f"{PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{PREFIX}/inbound", inbound, methods=["GET", "POST"]),
        Route(f"{PREFIX}/clock", clock),
        Route(f"{PREFIX}/clock/advance", advance, methods=["POST"]),
        Route(f"{PREFIX}/faults", faults, methods=["GET", *write]),
        Route(f"{PREFIX}/settings", settings, methods=["GET", *write]),
        Route(f"{PREFIX}/stats", stats),
        Route(f"{PREFIX}/stats/reset", stats_reset, methods=["POST"]),
        Route(f"{PREFIX}/accounts", accounts),
        Route(PREFIX + "/accounts/{u_id:int}/credit", credit, methods=["GET", *write]),
        Route(f"{PREFIX}/userlog", userlog),
    ]
    return Starlette(routes=routes)
