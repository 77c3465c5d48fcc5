"""The notifier tests reuse the operator tests' fixtures (sandbox, connections, Context).

See ``tests/operators/conftest.py`` for what each fixture does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "smsend_operator_test_fixtures"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        _NAME, Path(__file__).resolve().parents[1] / "operators" / "conftest.py"
    )
    assert _spec is not None and _spec.loader is not None
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])
_fixtures = sys.modules[_NAME]

smsend_sandbox = _fixtures.smsend_sandbox
sandbox = _fixtures.sandbox
smsend_conn_id = _fixtures.smsend_conn_id
add_smsend_connection = _fixtures.add_smsend_connection
make_context = _fixtures.make_context
render = _fixtures.render
build_context = _fixtures.build_context
