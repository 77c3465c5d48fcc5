"""Accounts, tariffs and profiles of the sandbox gateway, and the JSON fixture they come from.

The fixture (``default_accounts.json`` in this package, or the file given to ``--config``) has
the keys ``resellers``, ``clients``, ``tariffs``, ``profiles``, ``mms_accounts`` and
``reception_numbers``; see ``docs/sandbox.md`` for the defaults. Money is :class:`~decimal.Decimal`
with four decimals, never a float.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

FOUR_PLACES = Decimal("0.0001")
#: Price keys of a tariff: one per SMS quality, plus ``mnc`` (per number) and ``mms`` (per recipient).
PRICE_KEYS = ("ll", "l", "a", "h", "n", "mnc", "mms")


def money(value: Any) -> Decimal:
    """Convert ``value`` to a Decimal rounded to four decimals (euros).

    :param value: a Decimal, int or a string such as ``"12.3456"``.
    :raises ValueError: if ``value`` is not a number.
    """
    try:
        return Decimal(str(value)).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of money: {value!r}") from exc


def format_money(value: Decimal) -> str:
    """Format euros the way the gateway does: four decimals, ``.`` separator (``123.4567``)."""
    return f"{value.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP):.4f}"


@dataclass
class Tariff:
    """A tariff (``bill_id``): prices per SMS segment by quality, per MNC number and per MMS.

    :param bill_id: the tariff's identifier.
    :param name: display name.
    :param default_credit: credit added by ``credit-add.php`` when ``credit`` is omitted.
    :param prices: euros, keyed by :data:`PRICE_KEYS`.
    """

    bill_id: int
    name: str
    default_credit: Decimal
    prices: dict[str, Decimal]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tariff:
        """Build a tariff from its fixture entry."""
        prices = {key: money(value) for key, value in data["prices"].items()}
        missing = [key for key in PRICE_KEYS if key not in prices]
        if missing:
            raise ValueError(f"tariff {data['bill_id']!r} has no price for {missing!r}")
        return cls(int(data["bill_id"]), str(data["name"]), money(data.get("default_credit", "0")), prices)


@dataclass
class Profile:
    """A client profile (``tpl_id``) that ``client-add.php`` may assign."""

    tpl_id: int
    name: str


@dataclass
class Account:
    """A gateway account: a reseller (back-office rights) or a plain client.

    :param u_id: numeric identifier (``u_id`` of the back-office API).
    :param username: login for ``user``/``smsusername``.
    :param password: password for ``pass``/``smspassword``.
    :param is_reseller: True for reseller accounts, which may call the back-office API.
    :param parent: username of the reseller that owns this account (None for top-level resellers).
    :param can_create_resellers: whether ``client-add.php`` with ``reseller=1`` is allowed.
    """

    u_id: int
    username: str
    password: str
    name: str
    is_reseller: bool = False
    parent: str | None = None
    can_create_resellers: bool = False
    active: bool = True
    credit: Decimal = Decimal("0.0000")
    bill_id: int = 1
    tpl_id: int | None = None
    email: str = ""
    contact: str = ""
    ref_id: str = ""
    vhost: str = ""
    created_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (credit as a four-decimal string)."""
        data = asdict(self)
        data["credit"] = format_money(self.credit)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        """Inverse of :meth:`to_json`."""
        values = dict(data)
        values["credit"] = money(values.get("credit", "0"))
        return cls(**values)


@dataclass
class MmsAccount:
    """An MMS (sendMms) account: ``id``, password and authentication mode.

    :param auth: ``"plain"`` (password in the request) or ``"md5"`` (ticket).
    :param u_id: the client account whose credit MMS spend.
    """

    id: str
    password: str
    auth: str
    u_id: int
    active: bool = True


@dataclass
class Fixture:
    """Everything a fixture file declares."""

    accounts: list[Account] = field(default_factory=list)
    tariffs: list[Tariff] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    mms_accounts: list[MmsAccount] = field(default_factory=list)
    reception_numbers: list[str] = field(default_factory=list)


def _account(entry: dict[str, Any], *, is_reseller: bool) -> Account:
    return Account(
        u_id=int(entry["u_id"]),
        username=str(entry["username"]),
        password=str(entry["password"]),
        name=str(entry.get("name", entry["username"])),
        is_reseller=is_reseller,
        parent=entry.get("reseller"),
        can_create_resellers=bool(entry.get("can_create_resellers", False)),
        active=bool(entry.get("active", True)),
        credit=money(entry.get("credit", "0")),
        bill_id=int(entry.get("bill_id", 1)),
        tpl_id=int(entry["tpl_id"]) if entry.get("tpl_id") is not None else None,
        email=str(entry.get("email", "")),
        contact=str(entry.get("contact", "")),
        ref_id=str(entry.get("ref_id", "")),
        vhost=str(entry.get("vhost", "")),
    )


def parse_fixture(data: dict[str, Any]) -> Fixture:
    """Build a :class:`Fixture` from the decoded JSON of a fixture file.

    :param data: the decoded JSON object.
    :raises ValueError: if an entry is incomplete or names an unknown tariff or reseller.
    """
    try:
        accounts = [_account(e, is_reseller=True) for e in data.get("resellers", [])]
        accounts += [
            _account(e, is_reseller=bool(e.get("is_reseller", False))) for e in data.get("clients", [])
        ]
        tariffs = [Tariff.from_dict(e) for e in data.get("tariffs", [])]
        profiles = [Profile(int(e["tpl_id"]), str(e.get("name", ""))) for e in data.get("profiles", [])]
        mms = [
            MmsAccount(
                str(e["id"]),
                str(e["password"]),
                str(e.get("auth", "plain")),
                int(e["u_id"]),
                bool(e.get("active", True)),
            )
            for e in data.get("mms_accounts", [])
        ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"incomplete fixture entry: {exc!r}") from exc
    bill_ids = {t.bill_id for t in tariffs}
    usernames = {a.username for a in accounts}
    u_ids = {a.u_id for a in accounts}
    if len(usernames) != len(accounts) or len(u_ids) != len(accounts):
        raise ValueError("fixture accounts must have unique usernames and u_ids")
    for account in accounts:
        if account.bill_id not in bill_ids:
            raise ValueError(f"account {account.username!r} names unknown bill_id {account.bill_id!r}")
        if account.parent is not None and account.parent not in usernames:
            raise ValueError(f"account {account.username!r} names unknown reseller {account.parent!r}")
    for mms_account in mms:
        if mms_account.auth not in ("plain", "md5"):
            raise ValueError(f"MMS account {mms_account.id!r}: auth must be 'plain' or 'md5'")
        if mms_account.u_id not in u_ids:
            raise ValueError(f"MMS account {mms_account.id!r} names unknown u_id {mms_account.u_id!r}")
    return Fixture(accounts, tariffs, profiles, mms, [str(n) for n in data.get("reception_numbers", [])])


def load_fixture(source: str | Path | dict[str, Any] | None = None) -> Fixture:
    """Load a fixture: the packaged default, a JSON file path, or an already decoded dict.

    :param source: None for ``default_accounts.json``; a path; or a dict.
    """
    if isinstance(source, dict):
        return parse_fixture(source)
    if source is None:
        text = resources.files(__package__).joinpath("default_accounts.json").read_text(encoding="utf-8")
    else:
        text = Path(source).read_text(encoding="utf-8")
    return parse_fixture(json.loads(text))
