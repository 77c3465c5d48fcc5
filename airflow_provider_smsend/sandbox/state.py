"""The sandbox's state: accounts, credit, messages, share codes, inbound SMS, clock and stats.

Every method that reads or changes state takes one re-entrant lock, so the event loop, the
admin API and a test thread holding :attr:`SandboxServer.app_state` can use it concurrently.
With a :class:`~airflow_provider_smsend.sandbox.persistence.SqliteStore` the records a method
changed are written before the method returns.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.sandbox.accounts import (
    Account,
    Fixture,
    MmsAccount,
    Profile,
    Tariff,
    format_money,
    load_fixture,
    money,
)
from airflow_provider_smsend.sandbox.faults import FaultInjector, FaultSettings
from airflow_provider_smsend.sandbox.models import Batch, InboundSms, Message, UserlogEntry, rome_time

if TYPE_CHECKING:
    from airflow_provider_smsend.sandbox.persistence import SqliteStore

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_SHARECODES = 999


@dataclass
class Settings:
    """Behaviour switches that are not faults.

    :param delivery_delay: seconds until a message reaches its final queue/mnc status (notify: twice).
    :param mnc_report: ``"spec"`` (ragged four-field rows as in the document) or ``"full"``.
    :param allow_ips: addresses/subnets allowed to call the gateway; empty allows everyone.
    """

    delivery_delay: float = 2.0
    mnc_report: str = "spec"
    allow_ips: list[str] = field(default_factory=list)

    def networks(self) -> list[IpNetwork]:
        """Return :attr:`allow_ips` parsed as networks."""
        return [ipaddress.ip_network(item, strict=False) for item in self.allow_ips]

    def to_json(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict."""
        return {
            "delivery_delay": self.delivery_delay,
            "mnc_report": self.mnc_report,
            "allow_ips": self.allow_ips,
        }


class SandboxState:
    """Everything the sandbox gateway knows.

    :param fixture: accounts source: None (packaged default), a path or a decoded dict.
    :param settings: behaviour switches; defaults apply when None.
    :param faults: fault settings; none when None.
    :param store: optional SQLite store; state found in it wins over the fixture.
    """

    def __init__(
        self,
        *,
        fixture: str | dict[str, Any] | None = None,
        settings: Settings | None = None,
        faults: FaultSettings | None = None,
        store: SqliteStore | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.fixture_source = fixture
        self.settings = settings or Settings()
        self._networks = self.settings.networks()
        self.faults = FaultInjector(faults or FaultSettings())
        self.store = store
        self.stats: Counter[str] = Counter()
        self.clock_offset = 0.0
        self._load(load_fixture(fixture))
        if store is not None:
            if store.is_empty():
                self._persist_all()
            else:
                self._restore(store)

    # ----------------------------------------------------------------- setup
    def _load(self, fixture: Fixture) -> None:
        self.accounts: dict[int, Account] = {a.u_id: a for a in fixture.accounts}
        self.by_username: dict[str, Account] = {a.username: a for a in fixture.accounts}
        self.tariffs: dict[int, Tariff] = {t.bill_id: t for t in fixture.tariffs}
        self.profiles: dict[int, Profile] = {p.tpl_id: p for p in fixture.profiles}
        self.mms_accounts: dict[str, MmsAccount] = {m.id: m for m in fixture.mms_accounts}
        self.reception_numbers = set(fixture.reception_numbers)
        self.messages: dict[int, Message] = {}
        self.batches: dict[str, Batch] = {}
        self.userlog: list[UserlogEntry] = []
        self.shares: dict[str, dict[str, int]] = {}
        self.inbound: list[InboundSms] = []
        self.counters = {"message": 0, "request": 0, "credit": 0, "userlog": 0, "inbound": 0}
        now = self.now()
        for account in self.accounts.values():
            account.created_at = now

    def _persist_all(self) -> None:
        store = self.store
        if store is None:
            return
        for account in self.accounts.values():
            store.put("account", account.u_id, account.to_json())
        self._persist_meta()
        store.commit()

    def _persist_meta(self) -> None:
        if self.store is not None:
            self.store.set_meta("counters", self.counters)
            self.store.set_meta("clock_offset", self.clock_offset)

    def _restore(self, store: SqliteStore) -> None:
        for data in store.records("account"):
            account = Account.from_json(data)
            self.accounts[account.u_id] = account
        self.by_username = {a.username: a for a in self.accounts.values()}
        for data in store.records("message"):
            message = Message(**data)
            self.messages[message.id] = message
        for data in store.records("batch"):
            batch = Batch(**data)
            self.batches[batch.request_id] = batch
        self.userlog = sorted((UserlogEntry(**d) for d in store.records("userlog")), key=lambda e: e.id)
        for data in store.records("share"):
            self.shares[data["dest"]] = {code: int(u_id) for code, u_id in data["codes"].items()}
        self.inbound = sorted((InboundSms(**d) for d in store.records("inbound")), key=lambda m: m.id)
        meta = store.meta()
        self.counters.update(meta.get("counters", {}))
        self.clock_offset = float(meta.get("clock_offset", 0.0))

    def _commit(self) -> None:
        if self.store is not None:
            self._persist_meta()
            self.store.commit()

    def reset(self) -> None:
        """Forget everything and reload the fixture; clears stats and the clock offset."""
        with self.lock:
            self.clock_offset = 0.0
            self.stats.clear()
            self._load(load_fixture(self.fixture_source))
            if self.store is not None:
                self.store.clear()
                self._persist_all()

    # ----------------------------------------------------------------- clock, settings
    def now(self) -> float:
        """Current time on the sandbox clock (epoch seconds): wall clock plus the advanced offset."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock forward by ``seconds``; return the new time."""
        with self.lock:
            self.clock_offset += float(seconds)
            self._commit()
            return self.now()

    def update_settings(self, **changes: Any) -> Settings:
        """Change :class:`Settings` fields; unknown names raise ``ValueError``."""
        with self.lock:
            candidate = Settings(**{**self.settings.to_json(), **changes})
            if candidate.mnc_report not in ("spec", "full"):
                raise ValueError("mnc_report must be 'spec' or 'full'")
            if candidate.delivery_delay < 0:
                raise ValueError("delivery_delay must be >= 0")
            networks = candidate.networks()
            self.settings, self._networks = candidate, networks
            return candidate

    def ip_allowed(self, ip: str | None) -> bool:
        """Return True if ``ip`` may call the gateway (always, when no allowlist is set)."""
        if not self._networks:
            return True
        try:
            address = ipaddress.ip_address(ip or "")
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    # ----------------------------------------------------------------- accounts
    def authenticate(self, username: str, password: str) -> Account | None:
        """Return the account with these credentials, or None."""
        account = self.by_username.get(username)
        if account is None or account.password != password or not username:
            return None
        return account

    def client_of(self, reseller: Account, u_id: int) -> Account | None:
        """Return the account ``u_id`` if ``reseller`` owns it, else None."""
        account = self.accounts.get(u_id)
        if account is None or account.parent != reseller.username:
            return None
        return account

    def add_client(
        self,
        reseller: Account,
        *,
        name: str,
        username: str,
        password: str,
        is_reseller: bool,
        tpl_id: int | None,
        email: str,
        contact: str,
        ref_id: str,
        vhost: str,
    ) -> Account | None:
        """Create a client of ``reseller``; return None if the username is taken."""
        with self.lock:
            if username in self.by_username:
                return None
            u_id = max(self.accounts, default=1000) + 1
            account = Account(
                u_id=u_id,
                username=username,
                password=password,
                name=name,
                is_reseller=is_reseller,
                parent=reseller.username,
                active=True,
                credit=Decimal("0.0000"),
                bill_id=reseller.bill_id,
                tpl_id=tpl_id,
                email=email,
                contact=contact,
                ref_id=ref_id,
                vhost=vhost,
                created_at=self.now(),
            )
            self.accounts[u_id] = account
            self.by_username[username] = account
            self._save_account(account)
            self._commit()
            return account

    def _save_account(self, account: Account) -> None:
        if self.store is not None:
            self.store.put("account", account.u_id, account.to_json())

    def add_credit(self, reseller: Account, client: Account, tariff: Tariff, amount: Decimal) -> int:
        """Add ``amount`` euros to ``client`` under ``tariff``; log it; return the credit id."""
        with self.lock:
            client.credit = money(client.credit + amount)
            client.bill_id = tariff.bill_id
            self.counters["credit"] += 1
            credit_id = self.counters["credit"]
            self._log(
                UserlogEntry(
                    0,
                    "credits",
                    self.now(),
                    client.u_id,
                    client.username,
                    reseller.username,
                    bill_id=tariff.bill_id,
                    credit=format_money(amount),
                ),
                credit_id,
            )
            self._save_account(client)
            self._commit()
            return credit_id

    def set_credit(self, u_id: int, amount: Decimal) -> Account | None:
        """Set an account's credit (admin API); return the account or None if unknown."""
        with self.lock:
            account = self.accounts.get(u_id)
            if account is None:
                return None
            account.credit = money(amount)
            self._save_account(account)
            self._commit()
            return account

    def set_active(self, client: Account, active: bool) -> None:
        """Enable or disable an account."""
        with self.lock:
            client.active = active
            self._save_account(client)
            self._commit()

    def price(self, account: Account, key: str) -> Decimal:
        """Price in euros of one unit of ``key`` (a quality, ``mnc`` or ``mms``) for ``account``."""
        return self.tariffs[account.bill_id].prices[key]

    # ----------------------------------------------------------------- userlog
    def _log(self, entry: UserlogEntry, entry_id: int | None = None) -> None:
        self.counters["userlog"] += 1
        entry.id = entry_id if entry_id is not None else self.counters["userlog"]
        self.userlog.append(entry)
        if self.store is not None:
            self.store.put("userlog", f"{entry.type}:{entry.id}", entry.__dict__)

    def userlog_entries(
        self, reseller: Account, kind: str, u_id: int | None, start: date | None, end: date | None
    ) -> list[UserlogEntry]:
        """Return the ``kind`` entries of ``reseller``'s calls, filtered by client and local date."""
        with self.lock:
            result = []
            for entry in self.userlog:
                if entry.type != kind or entry.reseller != reseller.username:
                    continue
                if u_id is not None and entry.u_id != u_id:
                    continue
                day = rome_time(entry.created_at).date()
                if (start and day < start) or (end and day > end):
                    continue
                result.append(entry)
            return result

    # ----------------------------------------------------------------- share codes, inbound
    def add_sharecodes(self, reseller: Account, client: Account, dest: str, count: int) -> list[str] | None:
        """Create ``count`` share codes on ``dest`` for ``client``; None if the number is full."""
        with self.lock:
            codes = self.shares.setdefault(dest, {})
            free = [f"{n:03d}" for n in range(1, MAX_SHARECODES + 1) if f"{n:03d}" not in codes][:count]
            if len(free) < count:
                return None
            for code in free:
                codes[code] = client.u_id
                self._log(
                    UserlogEntry(
                        0,
                        "recv_add",
                        self.now(),
                        client.u_id,
                        client.username,
                        reseller.username,
                        dest=dest,
                        sharecode=code,
                    )
                )
            self._save_shares(dest)
            self._commit()
            return free

    def _save_shares(self, dest: str) -> None:
        if self.store is not None:
            self.store.put("share", dest, {"dest": dest, "codes": self.shares.get(dest, {})})

    def delete_sharecode(self, reseller: Account, client: Account, dest: str, code: str) -> bool:
        """Revoke share code ``code`` of ``dest`` from ``client``; False if not assigned to it."""
        with self.lock:
            codes = self.shares.get(dest, {})
            if codes.get(code) != client.u_id:
                return False
            del codes[code]
            self._log(
                UserlogEntry(
                    0,
                    "recv_del",
                    self.now(),
                    client.u_id,
                    client.username,
                    reseller.username,
                    dest=dest,
                    sharecode=code,
                )
            )
            self._save_shares(dest)
            self._commit()
            return True

    def sharecode_owner(self, dest: str, code: str) -> int | None:
        """Return the u_id a share code of ``dest`` is assigned to, or None."""
        return self.shares.get(dest, {}).get(code)

    def add_inbound(
        self, rcpt: str, sharecode: str, sender: str, text: str, received_at: float | None
    ) -> InboundSms:
        """Record an SMS received on ``rcpt`` for ``sharecode``."""
        with self.lock:
            self.counters["inbound"] += 1
            sms = InboundSms(
                self.counters["inbound"],
                rcpt,
                sharecode,
                sender,
                text,
                self.now() if received_at is None else received_at,
            )
            self.inbound.append(sms)
            if self.store is not None:
                self.store.put("inbound", sms.id, sms.__dict__)
            self._commit()
            return sms

    def inbound_for(self, rcpt: str, sharecode: str, limit: int) -> list[InboundSms]:
        """Return up to ``limit`` most recent SMS received on ``rcpt``/``sharecode``, newest first."""
        with self.lock:
            found = [m for m in self.inbound if m.rcpt == rcpt and m.sharecode == sharecode]
        found.sort(key=lambda m: (m.received_at, m.id), reverse=True)
        return found[:limit]

    # ----------------------------------------------------------------- messages
    def _next_request_id(self) -> str:
        self.counters["request"] += 1
        return f"HTTP{self.counters['request']:011d}"

    def record_batch(
        self, account: Account, kind: str, cost_per_rcpt: Decimal, items: list[dict[str, Any]]
    ) -> str | None:
        """Charge ``account`` and record one message per item; None (nothing done) if credit is short.

        :param kind: ``"sms"``, ``"mnc"`` or ``"mms"``.
        :param cost_per_rcpt: euros charged per item.
        :param items: Message fields for each recipient (at least ``rcpt``).
        :return: the new request id.
        """
        with self.lock:
            total = cost_per_rcpt * len(items)
            if account.credit < total:
                return None
            account.credit = money(account.credit - total)
            request_id = self._next_request_id()
            now = self.now()
            ids = []
            for item in items:
                self.counters["message"] += 1
                message = Message(
                    id=self.counters["message"],
                    request_id=request_id,
                    kind=kind,
                    u_id=account.u_id,
                    username=account.username,
                    created_at=now,
                    cost=format_money(cost_per_rcpt),
                    **item,
                )
                self.messages[message.id] = message
                ids.append(message.id)
                if self.store is not None:
                    self.store.put("message", message.id, message.to_json())
            batch = Batch(request_id, kind, account.u_id, ids)
            self.batches[request_id] = batch
            if self.store is not None:
                self.store.put("batch", request_id, batch.__dict__)
            self._save_account(account)
            self._commit()
            return request_id

    def batch_messages(self, batch: Batch) -> list[Message]:
        """Return the messages of ``batch`` in order."""
        with self.lock:
            return [self.messages[i] for i in batch.message_ids]

    def list_messages(
        self, rcpt: str | None = None, kind: str | None = None, username: str | None = None
    ) -> list[dict[str, Any]]:
        """Describe the recorded messages (admin API), optionally filtered."""
        with self.lock:
            now, delay = self.now(), self.settings.delivery_delay
            return [
                m.describe(now, delay)
                for m in self.messages.values()
                if (rcpt is None or m.rcpt == rcpt)
                and (kind is None or m.kind == kind)
                and (username is None or m.username == username)
            ]

    def counts(self, kind: str | None = None) -> dict[str, int]:
        """Return how many messages each recipient got (admin API)."""
        with self.lock:
            counter = Counter(m.rcpt for m in self.messages.values() if kind is None or m.kind == kind)
        return dict(counter)
