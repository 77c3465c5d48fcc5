"""The helpers of tests/operators and tests/transfers, imported (never copied) for these tests.

The suite runs with ``--import-mode=importlib`` and ``tests/`` is not a package, so another
directory's conftest or helper module cannot be imported by a dotted name. This module loads
them by path, once, under private module names:

- ``operators``: ``tests/operators/conftest.py`` (sandbox fixtures, ``build_context``,
  ``FakeTaskInstance``, ``NO_FAULTS``);
- ``sms_tests``: ``tests/operators/test_sms.py`` (``numbers()``, ``FakeTI``, ``KILL_SCRIPT``:
  the bulk send a worker subprocess runs until it is killed);
- ``transfers``: ``tests/transfers/conftest.py`` (the SQLite/PostgreSQL/MariaDB ``target``
  fixture, the requests-mock stub ``gateway``) and ``transfer_helpers`` (``SqlTarget``,
  ``notify_report``, ``CREDITS_USERLOG``, ``require_service`` ...).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent


def load(name: str, path: Path) -> ModuleType:
    """Import the file ``path`` as module ``name`` (once per session)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


operators = load("_smsend_reliability_operators_conftest", TESTS / "operators" / "conftest.py")
sms_tests = load("_smsend_reliability_operators_test_sms", TESTS / "operators" / "test_sms.py")
# The transfers conftest puts its directory on sys.path, so transfer_helpers imports by name.
transfers = load("_smsend_reliability_transfers_conftest", TESTS / "transfers" / "conftest.py")
import transfer_helpers  # noqa: E402

numbers = sms_tests.numbers
build_context = operators.build_context

__all__ = ["ROOT", "TESTS", "build_context", "load", "numbers", "operators", "sms_tests", "transfer_helpers", "transfers"]
