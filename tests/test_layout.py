"""The tests mirror the package: each module of client/, sql/ and the Airflow layer has its test file.

``airflow_provider_smsend/<room>/<module>.py`` is tested in ``tests/<room>/test_<module>.py``. A
private module (``_name.py``) is tested through the public modules that use it: :data:`PRIVATE`
names their test files. The sandbox (``sandbox/``, tested in ``tests/sandbox/test_sandbox_*.py``)
and ``get_provider_info.py`` (``tests/test_provider_info.py``) are outside this rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "airflow_provider_smsend"
TESTS = ROOT / "tests"
ROOMS = ("client", "sql", "hooks", "operators", "sensors", "triggers", "transfers", "notifications")

#: Private modules, and the test files of the public modules through which they are tested.
PRIVATE: dict[str, tuple[str, ...]] = {
    "client/_soap_zeep.py": (
        "client/test_soap.py",
        "client/test_soap_transport.py",
        "client/test_soap_mms.py",
    ),
    "sensors/_base.py": ("sensors/test_batch_status.py", "sensors/test_inbound.py"),
    "triggers/_base.py": ("triggers/test_batch_status.py", "triggers/test_inbound.py"),
}


def modules() -> list[str]:
    """Every module of the rooms, as ``room/name.py`` (package ``__init__`` files aside)."""
    return sorted(
        f"{room}/{path.name}"
        for room in ROOMS
        for path in (PACKAGE / room).glob("*.py")
        if path.name != "__init__.py"
    )


def test_every_room_has_modules() -> None:
    assert {module.split("/")[0] for module in modules()} == set(ROOMS)


@pytest.mark.parametrize("module", [m for m in modules() if not m.split("/")[1].startswith("_")])
def test_each_public_module_has_its_test_file(module: str) -> None:
    room, name = module.split("/")
    expected = TESTS / room / f"test_{name}"
    assert expected.is_file(), (
        f"airflow_provider_smsend/{module} has no test file: add {expected.relative_to(ROOT)}"
    )


@pytest.mark.parametrize("module", [m for m in modules() if m.split("/")[1].startswith("_")])
def test_each_private_module_is_tested_through_its_public_modules(module: str) -> None:
    assert module in PRIVATE, (
        f"airflow_provider_smsend/{module} is private: list the test files covering it in PRIVATE"
    )
    missing = [name for name in PRIVATE[module] if not (TESTS / name).is_file()]
    assert missing == [], f"PRIVATE lists test files of {module} that do not exist: {missing}"


def test_the_private_list_names_only_modules_that_exist() -> None:
    assert sorted(set(PRIVATE) - set(modules())) == []
