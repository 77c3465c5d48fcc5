"""The helpers of the other test directories, imported (never copied) for these tests.

- ``smsend_test_support.operator_fixtures`` (importable: ``pythonpath = ["tests"]``): the
  connection and ledger fixtures, ``build_context``, ``FakeTaskInstance``;
- ``sms_tests``: ``tests/operators/test_sms.py`` (``numbers()`` and ``KILL_SCRIPT``, the bulk send
  a worker subprocess runs until it is killed);
- ``transfers``: ``tests/transfers/conftest.py`` (the SQLite/PostgreSQL/MariaDB ``target``
  fixture, the requests-mock stub ``gateway``) and ``transfer_helpers`` (``SqlTarget``,
  ``notify_report``, ``CREDITS_USERLOG``, ``require_service`` ...).

The suite runs with ``--import-mode=importlib`` and a test module or a conftest cannot be
imported by a dotted name, so those two are loaded by path, once, under private module names.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from smsend_test_support.operator_fixtures import build_context

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


sms_tests = load("_smsend_reliability_operators_test_sms", TESTS / "operators" / "test_sms.py")
# The transfers conftest puts its directory on sys.path, so transfer_helpers imports by name.
transfers = load("_smsend_reliability_transfers_conftest", TESTS / "transfers" / "conftest.py")
import transfer_helpers  # noqa: E402

numbers = sms_tests.numbers

__all__ = ["ROOT", "TESTS", "build_context", "load", "numbers", "sms_tests", "transfer_helpers", "transfers"]
