"""Deterministic outcomes by recipient number, and the Italian mobile networks by prefix.

The last four digits of a number decide what happens to a message sent to it (see
``docs/sandbox.md``):

======== ============================================================================
ending   outcome
======== ============================================================================
0000     unknown subscriber: queue 200 Sent, notify 300 Unknown subscriber, mnc 300
0001     temporary failure: queue 302, notify 302, mnc 302 Temporary failure
0002     stays pending forever: queue 100 Queued, notify 100 Waiting, mnc 100 Waiting
0003     ``KO Operatore sconosciuto.`` at send (sendMms: fault ``KO 109``)
other    queue 200 Sent, notify 200 Delivered, mnc 200 with the network of the prefix
======== ============================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: International format: ``+``, a non-zero digit, 6 to 15 digits in all.
INTERNATIONAL_NUMBER = re.compile(r"^\+[1-9][0-9]{5,14}$")

PENDING_QUEUE = (100, "Queued")
PENDING_NOTIFY = (100, "Waiting")
PENDING_MNC = (100, "Waiting")
SENT = (200, "Sent")
DELIVERED = (200, "Delivered")
UNKNOWN_SUBSCRIBER = (300, "Unknown subscriber")
TEMPORARY_FAILURE = (302, "Temporary failure")

#: Italian mobile prefixes (after ``+39``) -> (netcode MCC+MNC, network name).
ITALIAN_NETWORKS: dict[str, tuple[str, str]] = {
    "33": ("22201", "TIM"),
    "36": ("22201", "TIM"),
    "34": ("22210", "Vodafone"),
    "32": ("22288", "WindTre"),
    "38": ("22288", "WindTre"),
    "39": ("22288", "WindTre"),
    "35": ("22250", "Iliad"),
}
OTHER_NETWORK = ("99999", "Other")


@dataclass(frozen=True)
class Outcome:
    """What happens to a message sent to one number.

    :param unknown_operator: the send is refused with ``KO Operatore sconosciuto.``.
    :param queue: final (status, text) of the queue report; None if it stays pending.
    :param notify: final (status, text) of the notify report; None if it stays pending.
    :param mnc: final (status, text) of the mnc report; None if it stays pending.
    :param netcode: MCC+MNC of the number's network, for a successful mnc row.
    :param network: name of the number's network.
    """

    unknown_operator: bool
    queue: tuple[int, str] | None
    notify: tuple[int, str] | None
    mnc: tuple[int, str] | None
    netcode: str
    network: str


def is_international(number: str) -> bool:
    """Return True if ``number`` is in international format (``+39...``)."""
    return bool(INTERNATIONAL_NUMBER.match(number))


def network_of(number: str) -> tuple[str, str]:
    """Return ``(netcode, name)`` of the network a number belongs to, by Italian prefix."""
    if number.startswith("+393") and len(number) > 5:
        return ITALIAN_NETWORKS.get(number[3:5], OTHER_NETWORK)
    return OTHER_NETWORK


def outcome_for(number: str) -> Outcome:
    """Return the deterministic :class:`Outcome` of a message to ``number``."""
    netcode, network = network_of(number)
    ending = number[-4:]
    if ending == "0000":
        return Outcome(False, SENT, UNKNOWN_SUBSCRIBER, UNKNOWN_SUBSCRIBER, netcode, network)
    if ending == "0001":
        return Outcome(False, TEMPORARY_FAILURE, TEMPORARY_FAILURE, TEMPORARY_FAILURE, netcode, network)
    if ending == "0002":
        return Outcome(False, None, None, None, netcode, network)
    return Outcome(ending == "0003", SENT, DELIVERED, (200, network), netcode, network)
