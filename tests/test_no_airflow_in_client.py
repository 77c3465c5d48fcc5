"""The client and sql rooms (and the sandbox) never import Airflow; client never imports sql;
heavy libraries load lazily.

Each check runs in a fresh interpreter, so that what other tests imported does not hide a leak.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import airflow_provider_smsend

PACKAGE_DIR = Path(airflow_provider_smsend.__file__).parent

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    def airflow_loaded():
        found = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
        if CLIENT_ONLY:  # the gateway room must not pull in the storage room either
            found += sorted(m for m in sys.modules if m.startswith("airflow_provider_smsend.sql"))
        return found

    results = {}
    for package in PACKAGES:
        try:
            pkg = importlib.import_module(package)
        except ModuleNotFoundError:
            continue
        names = [package] + [
            info.name for info in pkgutil.walk_packages(pkg.__path__, prefix=package + ".")
            if not info.name.endswith(".__main__")  # importing __main__ would run the program
        ]
        for name in names:
            importlib.import_module(name)
            leaked = airflow_loaded()
            results[name] = leaked
            if leaked:
                break
    print(json.dumps(results))
    """
)


def _run(code: str) -> str:
    code = code if "CLIENT_ONLY" in code.split("\n", 1)[0] else "CLIENT_ONLY = False\n" + code
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def import_results() -> dict[str, list[str]]:
    packages = ["airflow_provider_smsend.client"]
    if (PACKAGE_DIR / "sandbox").is_dir():
        packages.append("airflow_provider_smsend.sandbox")
    return json.loads(_run(f"PACKAGES = {packages!r}\n" + PROBE))


@pytest.fixture(scope="module")
def client_only_results() -> dict[str, list[str]]:
    return json.loads(_run("CLIENT_ONLY = True\nPACKAGES = ['airflow_provider_smsend.client']\n" + PROBE))


@pytest.fixture(scope="module")
def sql_results() -> dict[str, list[str]]:
    return json.loads(_run("PACKAGES = ['airflow_provider_smsend.sql']\n" + PROBE))


def test_client_never_imports_the_sql_room(client_only_results):
    leaks = {name: mods for name, mods in client_only_results.items() if mods}
    assert client_only_results and not leaks, f"client modules importing airflow or sql: {leaks}"


def test_no_sql_module_imports_airflow(sql_results):
    expected = {p.stem for p in (PACKAGE_DIR / "sql").glob("*.py") if p.stem != "__init__"}
    assert {k.rsplit(".", 1)[-1] for k in sql_results} >= expected, "every sql module was imported"
    leaks = {name: mods for name, mods in sql_results.items() if mods}
    assert not leaks, f"sql modules importing Airflow: {leaks}"


def test_client_package_does_not_import_airflow(import_results):
    assert import_results.get("airflow_provider_smsend.client") == []


def test_no_client_module_imports_airflow(import_results):
    client_modules = {
        k: v for k, v in import_results.items() if k.startswith("airflow_provider_smsend.client")
    }
    expected = {p.stem for p in (PACKAGE_DIR / "client").glob("*.py") if p.stem != "__init__"}
    assert {k.rsplit(".", 1)[-1] for k in client_modules} >= expected, "every client module was imported"
    leaks = {name: mods for name, mods in client_modules.items() if mods}
    assert not leaks, f"client modules importing Airflow: {leaks}"


def test_no_sandbox_module_imports_airflow(import_results):
    if not (PACKAGE_DIR / "sandbox").is_dir():
        pytest.skip("no sandbox package yet")
    sandbox_modules = {
        k: v for k, v in import_results.items() if k.startswith("airflow_provider_smsend.sandbox")
    }
    assert sandbox_modules
    leaks = {name: mods for name, mods in sandbox_modules.items() if mods}
    assert not leaks, f"sandbox modules importing Airflow: {leaks}"


HEAVY = ("pandas", "zeep", "phonenumbers", "requests", "airflow")


@pytest.mark.parametrize(
    "module",
    [
        "airflow_provider_smsend.client.http",
        "airflow_provider_smsend.client",
        "airflow_provider_smsend.client.reports",
        "airflow_provider_smsend.client.numbers",
    ],
)
def test_heavy_libraries_are_imported_lazily(module):
    code = f"import sys, json, {module}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    assert json.loads(_run(code)) == []


def test_phonenumbers_loads_on_first_use():
    code = (
        "import sys, json\n"
        "from airflow_provider_smsend.client.numbers import normalize_number\n"
        "before = 'phonenumbers' in sys.modules\n"
        "normalize_number('3331234567')\n"
        "print(json.dumps([before, 'phonenumbers' in sys.modules]))"
    )
    assert json.loads(_run(code)) == [False, True]
