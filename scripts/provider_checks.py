#!/usr/bin/env python
"""Run the checks Airflow's maintainers run on every provider in apache/airflow, adapted to this repo.

Each check names the apache/airflow source it is adapted from; the adaptation is in paths only
(``providers/<name>/src/airflow/providers/<name>`` is ``airflow_provider_smsend``, ``provider.yaml``
is the dict of ``get_provider_info()``, ``providers/<name>/docs`` is ``docs/``, the repository
root is this one):

- ``scripts/ci/prek/check_conn_id_templated.py`` (with the helpers of
  ``scripts/ci/prek/validate_operators_init.py``);
- ``scripts/in_container/run_provider_yaml_files_check.py`` against
  ``airflow/provider.yaml.schema.json`` (authoring) and ``airflow/provider_info.schema.json``
  (runtime, what ``ProvidersManager`` validates), both read from the installed Airflow;
- ``scripts/in_container/verify_providers.py`` (every module imports, without side effects or
  deprecation warnings; classes named for what they are);
- ``.pre-commit-config.yaml``: ``check-for-inclusive-language``, ``end-of-file-fixer``;
- ``scripts/ci/prek/check_notice_files.py`` and the LICENSE/NOTICE/project-URL metadata every
  provider distribution carries (``providers/<name>/pyproject.toml``).

Usage: ``.venv/bin/python scripts/provider_checks.py`` (run by ``tests/test_provider_checks.py``).
Prints each check and its violations; exits 1 if there is any.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import inspect
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import tomllib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "airflow_provider_smsend"
PACKAGE_PATH = ROOT / PACKAGE
DOCS_PATH = ROOT / "docs"
DISTRIBUTION = "airflow-provider-smsend"

CHECKS: list[tuple[str, Callable[[], list[str]]]] = []


def check(title: str) -> Callable[[Callable[[], list[str]]], Callable[[], list[str]]]:
    """Register a check: a function returning its violations, one string each."""

    def register(func: Callable[[], list[str]]) -> Callable[[], list[str]]:
        CHECKS.append((title, func))
        return func

    return register


def provider_info() -> dict[str, Any]:
    from airflow_provider_smsend.get_provider_info import get_provider_info

    return get_provider_info()


def airflow_schema(name: str) -> dict[str, Any]:
    import airflow

    return json.loads((Path(airflow.__file__).parent / name).read_text())


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


def module_of(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")


def repo_files() -> list[Path]:
    """The files git knows about (tracked, and untracked but not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({ROOT / name for name in out.split("\0") if name and (ROOT / name).is_file()})


# --- scripts/ci/prek/check_conn_id_templated.py ------------------------------------------------

CONN_ID_SUFFIX = "conn_id"
OPERATOR_SUFFIXES = ("Operator", "Sensor", "Notifier")
NOT_OPERATOR_SUFFIXES = ("Trigger", "Hook", "Link", "Mixin")


def _resolve_base_name(base: ast.expr) -> str:
    if isinstance(base, ast.Subscript):
        base = base.value
    if isinstance(base, ast.Attribute):
        return base.attr
    if isinstance(base, ast.Name):
        return base.id
    return ""


def _is_super_init_call(node: ast.Call) -> bool:
    return (
        isinstance(node.func, ast.Attribute)
        and node.func.attr == "__init__"
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "super"
    )


def _is_none_check(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (ast.Is, ast.IsNot))
        and isinstance(node.comparators[0], ast.Constant)
        and node.comparators[0].value is None
    )


def _target_name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return target.attr
    if isinstance(target, ast.Name):
        return target.id
    return None


def _collect_sanctioned_uses(ctor: ast.FunctionDef, fields: list[str]) -> set[int]:
    """Node ids of reads that only store or forward the argument (``validate_operators_init``)."""
    sanctioned: set[int] = set()

    def mark(value: ast.expr | None, name: str) -> None:
        if isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or):
            value = value.values[0]
        if isinstance(value, ast.Name) and value.id == name:
            sanctioned.add(id(value))

    for node in ast.walk(ctor):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            pairs: list[tuple[ast.expr, ast.expr | None]]
            if len(targets) == 1 and isinstance(targets[0], ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(targets[0].elts, node.value.elts, strict=False))
            else:
                pairs = [(target, node.value) for target in targets]
            for target, value in pairs:
                name = _target_name(target)
                if name is not None and name in fields:
                    mark(value, name)
        elif isinstance(node, ast.Call) and _is_super_init_call(node):
            for keyword in node.keywords:
                if keyword.arg is not None and keyword.arg in fields:
                    mark(keyword.value, keyword.arg)
        elif isinstance(node, ast.Compare) and _is_none_check(node):
            sanctioned.add(id(node.left))
    return sanctioned


@dataclass
class ClassInfo:
    name: str
    path: Path
    node: ast.ClassDef
    bases: list[str] = field(init=False)
    init: ast.FunctionDef | None = field(init=False)
    template_fields: ast.expr | None = field(init=False)

    def __post_init__(self) -> None:
        self.bases = [_resolve_base_name(base) for base in self.node.bases]
        self.init = next(
            (i for i in self.node.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"), None
        )
        self.template_fields = None
        for item in self.node.body:
            if isinstance(item, ast.Assign):
                target, value = item.targets[0], item.value
            elif isinstance(item, ast.AnnAssign):
                target, value = item.target, item.value  # type: ignore[assignment]
            else:
                continue
            if isinstance(target, ast.Name) and target.id == "template_fields" and value is not None:
                self.template_fields = value


def _parse_classes(path: Path) -> list[ClassInfo]:
    tree = ast.parse(path.read_text())
    return [ClassInfo(node.name, path, node) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _iter_ancestors(
    cls: ClassInfo, index: dict[str, ClassInfo], seen: set[str] | None = None
) -> Iterator[ClassInfo]:
    seen = set() if seen is None else seen
    if cls.name in seen:
        return
    seen.add(cls.name)
    yield cls
    for base in cls.bases:
        if base in index:
            yield from _iter_ancestors(index[base], index, seen)


def _is_operator(cls: ClassInfo, index: dict[str, ClassInfo]) -> bool:
    if cls.name.endswith(NOT_OPERATOR_SUFFIXES):
        return False
    return any(
        a.name.endswith(OPERATOR_SUFFIXES) or any(b.endswith(OPERATOR_SUFFIXES) for b in a.bases)
        for a in _iter_ancestors(cls, index)
    )


def _resolve_template_fields(
    cls: ClassInfo, index: dict[str, ClassInfo], seen: frozenset[str] = frozenset()
) -> set[str] | None:
    if cls.name in seen:
        return None
    seen = seen | {cls.name}
    if cls.template_fields is not None:
        fields: set[str] = set()
        for node in ast.walk(cls.template_fields):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                fields.add(node.value)
            elif isinstance(node, ast.Attribute) and node.attr == "template_fields":
                owner = _resolve_base_name(node.value)
                if owner in index:
                    fields |= _resolve_template_fields(index[owner], index, seen) or set()
        return fields
    for base in cls.bases:
        if base in index:
            resolved = _resolve_template_fields(index[base], index, seen)
            if resolved is not None:
                return resolved
    return None


def _conn_id_params(init: ast.FunctionDef) -> list[str]:
    args = init.args
    return [
        a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if a.arg.endswith(CONN_ID_SUFFIX)
    ]


def _is_read_in_init(init: ast.FunctionDef, param: str) -> bool:
    sanctioned = _collect_sanctioned_uses(init, [param])
    for node in ast.walk(init):
        if id(node) in sanctioned or not isinstance(getattr(node, "ctx", None), ast.Load):
            continue
        if isinstance(node, ast.Name) and node.id == param:
            return True
        if isinstance(node, ast.Attribute) and node.attr == param and isinstance(node.value, ast.Name):
            if node.value.id == "self":
                return True
    return False


def _stores_attribute(cls: ClassInfo, attr: str, index: dict[str, ClassInfo]) -> bool:
    for ancestor in _iter_ancestors(cls, index):
        if ancestor.init is None:
            continue
        for node in ast.walk(ancestor.init):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == attr:
                    if isinstance(target.value, ast.Name) and target.value.id == "self":
                        return True
    return False


def _required_conn_ids(cls: ClassInfo, index: dict[str, ClassInfo]) -> set[str]:
    chain = [a for a in _iter_ancestors(cls, index) if a.init is not None]
    declared = {param for a in chain for param in _conn_id_params(a.init)}  # type: ignore[arg-type]
    return {
        param
        for param in declared
        if _stores_attribute(cls, param, index) and not any(_is_read_in_init(a.init, param) for a in chain)  # type: ignore[arg-type]
    }


@check("check_conn_id_templated: every *conn_id argument of an operator, sensor or notifier is templated")
def check_conn_id_templated() -> list[str]:
    return conn_id_violations(sorted(PACKAGE_PATH.rglob("*.py")))


def conn_id_violations(files: list[Path]) -> list[str]:
    """The classes of ``files`` with a ``*conn_id`` argument missing from their template fields."""
    index: dict[str, ClassInfo] = {}
    for path in files:
        for info in _parse_classes(path):
            index.setdefault(info.name, info)
    errors = []
    for path in files:
        if CONN_ID_SUFFIX not in path.read_text():
            continue
        for cls in _parse_classes(path):
            if not _is_operator(cls, index):
                continue
            missing = _required_conn_ids(cls, index) - (_resolve_template_fields(cls, index) or set())
            if missing:
                errors.append(
                    f"{rel(path)}:{cls.node.lineno}: {cls.name}: {sorted(missing)} missing from "
                    "template_fields; add them (spreading the parent's fields if the class redefines "
                    "them), or read the argument only in execute()."
                )
    return errors


# --- scripts/in_container/run_provider_yaml_files_check.py -------------------------------------

RESOURCE_TYPES = ("sensors", "operators", "hooks", "triggers", "bundles")


def _expected_modules(resource_type: str) -> set[str]:
    """Every module under <package>/<resource_type>/ except __init__ (``parse_module_data``)."""
    return {module_of(p) for p in (PACKAGE_PATH / resource_type).rglob("*.py") if p.name != "__init__.py"}


def _deprecations(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, airflow_deprecations())]


def airflow_deprecations() -> tuple[type[Warning], ...]:
    """The warning categories by which Airflow announces a deprecation."""
    from airflow.exceptions import AirflowProviderDeprecationWarning, RemovedInAirflow4Warning
    from airflow.sdk.exceptions import RemovedInAirflow4Warning as SdkRemovedInAirflow4Warning
    from airflow.utils.deprecation_tools import DeprecatedImportWarning

    return (
        AirflowProviderDeprecationWarning,
        RemovedInAirflow4Warning,
        SdkRemovedInAirflow4Warning,
        DeprecatedImportWarning,
    )


def _check_object(name: str, resource_type: str, want_class: bool) -> list[str]:
    """``check_if_objects_exist_and_belong_to_package`` for one module or class."""
    errors = []
    if not name.startswith(PACKAGE):
        errors.append(f"The {name!r} object in {resource_type} does not start with {PACKAGE!r}.")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if want_class:
                module_name, _, attr = name.rpartition(".")
                obj: Any = getattr(importlib.import_module(module_name), attr)
            else:
                obj = importlib.import_module(name)
    except Exception as exc:
        return [*errors, f"The {name!r} object in {resource_type} does not exist: {exc!r}"]
    if not (inspect.isclass(obj) if want_class else inspect.ismodule(obj)):
        errors.append(
            f"The {name!r} object in {resource_type} is not a {'class' if want_class else 'module'}."
        )
    errors += [f"The {name!r} object in {resource_type} is deprecated: {m}" for m in _deprecations(caught)]
    return errors


def _diff(expected: set[str], current: set[str], what: str) -> list[str]:
    errors = [
        f"{what}: {m!r} is in the package but not in get_provider_info()" for m in sorted(expected - current)
    ]
    errors += [
        f"{what}: {m!r} is in get_provider_info() but not in the package" for m in sorted(current - expected)
    ]
    return errors


@check("provider.yaml.schema.json: get_provider_info() is valid for the authoring schema")
def check_authoring_schema() -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(airflow_schema("provider.yaml.schema.json"))
    return [
        f"provider.yaml.schema.json: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(provider_info())
    ]


@check("provider_info.schema.json: get_provider_info() is valid for the runtime schema")
def check_runtime_schema() -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(airflow_schema("provider_info.schema.json"))
    return [
        f"provider_info.schema.json: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(provider_info())
    ]


@check("Checking completeness of list of {sensors, hooks, operators, triggers, bundles}")
def check_module_lists() -> list[str]:
    info = provider_info()
    errors = []
    for resource_type in RESOURCE_TYPES:
        current = {m for entry in info.get(resource_type, []) for m in entry.get("python-modules", [])}
        for name in sorted(current):
            errors += _check_object(name, resource_type, want_class=False)
        errors += _diff(_expected_modules(resource_type), current, f"{resource_type}/python-modules")
    return errors


@check("Checking completeness of list of transfers")
def check_transfer_list() -> list[str]:
    current = {entry["python-module"] for entry in provider_info().get("transfers", [])}
    errors = []
    for name in sorted(current):
        errors += _check_object(name, "transfers", want_class=False)
    return errors + _diff(_expected_modules("transfers"), current, "transfers/python-module")


@check("Checking notifications belong to package, exist and are classes (and cover notifications/)")
def check_notifications() -> list[str]:
    current = set(provider_info().get("notifications", []))
    errors = []
    for name in sorted(current):
        errors += _check_object(name, "notifications", want_class=True)
    # The notifications list names classes, not modules: each module must contribute one.
    listed_modules = {name.rpartition(".")[0] for name in current}
    errors += [
        f"notifications: no class of {m!r} is listed in get_provider_info()"
        for m in sorted(_expected_modules("notifications") - listed_modules)
    ]
    return errors


@check("Checking hook classes, extra-links, executors, queues and plugins exist and belong to package")
def check_class_lists() -> list[str]:
    info = provider_info()
    errors = []
    for conn in info.get("connection-types", []):
        errors += _check_object(conn["hook-class-name"], "connection-types", want_class=True)
    for resource_type in ("extra-links", "executors", "queues"):
        for name in info.get(resource_type, []):
            errors += _check_object(name, resource_type, want_class=True)
    for plugin in info.get("plugins", []):
        errors += _check_object(plugin["plugin-class"], "plugins", want_class=True)
    return errors


def _installed_integrations() -> dict[str, str]:
    """Integration name -> provider package, over every installed provider (``get_all_integration_names``)."""
    from airflow.providers_manager import ProvidersManager

    owners: dict[str, str] = {}
    for package, provider in ProvidersManager().providers.items():
        for integration in provider.data.get("integrations", []):
            owners.setdefault(integration["integration-name"], package)
    return owners


@check(
    "Checking integration duplicates, duplicated integration names and transfers, unregistered integrations"
)
def check_integrations() -> list[str]:
    info = provider_info()
    errors = []
    ours = [i["integration-name"] for i in info.get("integrations", [])]
    errors += [f"integrations: {name!r} is declared {n} times" for name, n in Counter(ours).items() if n > 1]
    others = {name: pkg for name, pkg in _installed_integrations().items() if pkg != DISTRIBUTION}
    errors += [
        f"integrations: {name!r} is already an integration of {others[name]}"
        for name in ours
        if name in others
    ]
    for resource_type in RESOURCE_TYPES:
        counts = Counter(entry.get("integration-name", "") for entry in info.get(resource_type, []))
        errors += [
            f"Duplicated content of '{resource_type}/integration-name/{name}'"
            for name, n in counts.items()
            if n > 1
        ]
        errors += [
            f"{resource_type}/integration-name: {name!r} is not a declared integration"
            for name in counts
            if name not in ours
        ]
    pairs = Counter(
        (entry.get("source-integration-name", ""), entry.get("target-integration-name", ""))
        for entry in info.get("transfers", [])
    )
    errors += [
        f"Duplicated content of 'transfers/source-integration-name/{s}' 'transfers/target-integration-name/{t}'"
        for (s, t), n in pairs.items()
        if n > 1
    ]
    known = set(ours) | set(others) | {"Local"}
    for key in ("source-integration-name", "target-integration-name"):
        errors += [
            f"transfers/{key}: {entry[key]!r} is not an integration of any installed provider"
            for entry in info.get("transfers", [])
            if entry[key] not in known
        ]
    return errors


@check("Checking doc files (how-to-guide) and logos")
def check_doc_files() -> list[str]:
    info = provider_info()
    current_docs = [g for i in info.get("integrations", []) for g in i.get("how-to-guide", [])]
    current_docs += [t["how-to-guide"] for t in info.get("transfers", []) if "how-to-guide" in t]
    current_logos = {i["logo"] for i in info.get("integrations", []) if "logo" in i}
    errors = []
    if not any(
        i.get("how-to-guide") for i in info.get("integrations", []) if i["integration-name"] == "smSend"
    ):
        errors.append("integrations: the smSend integration has no how-to-guide")
    if not current_logos:
        errors.append("integrations: no integration has a logo")
    for url in sorted(set(current_docs)) + sorted(current_logos):
        if not url.startswith("/docs/"):
            errors.append(f"{url!r}: a how-to-guide or logo path starts with '/docs/'")
        elif not (ROOT / url.lstrip("/")).is_file():
            errors.append(f"{url!r} is listed in get_provider_info() but {url.lstrip('/')} does not exist")
    # Every how-to page of the docs and every logo is listed (the reverse direction of the check).
    pages = itertools.chain(
        *(
            DOCS_PATH.glob(f"{kind}/**/*.{ext}")
            for kind in ("operators", "sensors", "transfer")
            for ext in ("rst", "md")
        ),
        *(
            DOCS_PATH.glob(f"{kind}.{ext}")
            for kind in ("operators", "sensors", "transfer")
            for ext in ("rst", "md")
        ),
    )
    expected_docs = {f"/{rel(p)}" for p in pages if p.stem != "index" and "_partials" not in p.parts}
    errors += [
        f"{url!r} is a how-to page not listed in any how-to-guide"
        for url in sorted(expected_docs - set(current_docs))
    ]
    logos = itertools.chain(
        DOCS_PATH.glob("integration-logos/*.png"), DOCS_PATH.glob("integration-logos/*.svg")
    )
    expected_logos = {f"/{rel(p)}" for p in logos}
    errors += [f"{url!r} is a logo no integration lists" for url in sorted(expected_logos - current_logos)]
    return errors


@check("Checking if provider names are unique; state, source-date-epoch and versions")
def check_identity() -> list[str]:
    from airflow.providers_manager import ProvidersManager

    info = provider_info()
    errors = []
    names = Counter(p.data.get("name") for p in ProvidersManager().providers.values())
    if names[info["name"]] > 1:
        errors.append(f"Provider name must be unique: {info['name']!r} is used by another installed provider")
    if info.get("state") not in ("ready", "not-ready", "suspended", "removed"):
        errors.append(f"state: {info.get('state')!r} (ready, not-ready, suspended or removed)")
    if not isinstance(info.get("source-date-epoch"), int):
        errors.append("source-date-epoch: missing (seconds since the epoch of the release)")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        version = tomllib.load(fh)["project"]["version"]
    versions = info.get("versions", [])
    if versions and version not in versions and not re.search(r"(dev|a|b|rc)\d*$", version):
        errors.append(f"versions: the package version {version!r} is not in {versions!r}")
    if versions != sorted(versions, key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v)), reverse=True):
        errors.append(f"versions: {versions!r} is not sorted newest first")
    return errors


# --- scripts/in_container/verify_providers.py --------------------------------------------------

IMPORT_ALL = textwrap.dedent(
    """
    import contextlib, io, json, pkgutil, sys, threading, warnings, importlib, inspect
    package = importlib.import_module(sys.argv[1])
    before = {t.ident for t in threading.enumerate()}
    out, failures, deprecations, classes = io.StringIO(), [], [], []
    from airflow.exceptions import AirflowProviderDeprecationWarning, RemovedInAirflow4Warning
    from airflow.sdk.exceptions import RemovedInAirflow4Warning as SdkRemovedInAirflow4Warning
    from airflow.utils.deprecation_tools import DeprecatedImportWarning
    airflow_categories = (
        AirflowProviderDeprecationWarning, RemovedInAirflow4Warning, SdkRemovedInAirflow4Warning, DeprecatedImportWarning
    )
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
                warnings.simplefilter("always")
                module = importlib.import_module(info.name)
        except Exception as exc:
            failures.append(f"{info.name}: {exc!r}")
            continue
        for w in caught:
            airflow_made = issubclass(w.category, airflow_categories)
            ours = issubclass(w.category, DeprecationWarning) and "/airflow" in w.filename.replace("\\\\", "/")
            if airflow_made or ours:
                deprecations.append(f"{info.name}: {w.category.__name__}: {w.message} ({w.filename}:{w.lineno})")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == info.name:
                classes.append(f"{info.name}.{name}")
    threads = [t.name for t in threading.enumerate() if t.ident not in before and not t.daemon]
    print(json.dumps({"failures": failures, "deprecations": deprecations, "classes": classes,
                      "stdout": out.getvalue(), "threads": threads}))
    """
)
IMPORT_TIMEOUT = 300

OPERATORS_PATTERN = r".*Operator$"
SENSORS_PATTERN = r".*Sensor$"
HOOKS_PATTERN = r".*Hook$"
SECRETS_PATTERN = r".*Backend$"
TRANSFERS_PATTERN = r".*To[A-Z0-9].*Operator$"
WRONG_TRANSFERS_PATTERN = r".*Transfer$|.*TransferOperator$"
TRIGGER_PATTERN = r".*Trigger$"
NOTIFICATION_PATTERN = r".*Notifier|.*send_.*_notification$"
ALL_PATTERNS = {
    OPERATORS_PATTERN,
    SENSORS_PATTERN,
    HOOKS_PATTERN,
    SECRETS_PATTERN,
    TRANSFERS_PATTERN,
    WRONG_TRANSFERS_PATTERN,
    TRIGGER_PATTERN,
    NOTIFICATION_PATTERN,
}


def _import_all_modules() -> dict[str, Any]:
    """Import every module of the package in a fresh interpreter, as ``import_all_classes`` does."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", IMPORT_ALL, PACKAGE],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"importing every module of {PACKAGE} did not finish in {IMPORT_TIMEOUT} s: a module does "
            "work on import (a server, a loop); guard it with if __name__ == '__main__'"
        ) from exc
    if proc.returncode != 0:
        raise RuntimeError(f"importing every module of {PACKAGE} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_IMPORTED: dict[str, Any] = {}


def imported() -> dict[str, Any]:
    if not _IMPORTED:
        _IMPORTED.update(_import_all_modules())
    return _IMPORTED


@check("verify_providers: every module imports, with no side effect and no deprecation warning")
def check_import_all() -> list[str]:
    try:
        result = imported()
    except RuntimeError as exc:
        return [str(exc)]
    errors = [f"import failed: {f}" for f in result["failures"]]
    errors += [f"deprecation on import: {d}" for d in result["deprecations"]]
    if result["stdout"]:
        errors.append(f"importing the package's modules printed to stdout: {result['stdout'][:300]!r}")
    if result["threads"]:
        errors.append(f"importing the package's modules started threads: {result['threads']!r}")
    if not result["classes"]:
        errors.append("Something is seriously wrong - no classes imported")
    return errors


@check("verify_providers: operators, sensors, hooks, transfers, triggers and notifiers are properly named")
def check_class_names() -> list[str]:
    try:
        classes = imported()["classes"]
    except RuntimeError as exc:
        return [str(exc)]
    from airflow.sdk import BaseHook, BaseNotifier, BaseOperator, BaseSensorOperator
    from airflow.triggers.base import BaseTrigger

    kinds = [
        # (sub-package, ancestor, excluded ancestor, expected pattern, unexpected patterns, suffix)
        (
            "operators",
            BaseOperator,
            BaseSensorOperator,
            OPERATORS_PATTERN,
            ALL_PATTERNS - {OPERATORS_PATTERN},
            "Operator",
        ),
        (
            "sensors",
            BaseSensorOperator,
            None,
            SENSORS_PATTERN,
            ALL_PATTERNS - {OPERATORS_PATTERN, SENSORS_PATTERN},
            "Sensor",
        ),
        ("hooks", BaseHook, None, HOOKS_PATTERN, ALL_PATTERNS - {HOOKS_PATTERN}, "Hook"),
        (
            "transfers",
            BaseOperator,
            None,
            TRANSFERS_PATTERN,
            ALL_PATTERNS - {OPERATORS_PATTERN, TRANSFERS_PATTERN},
            "Operator",
        ),
        ("triggers", BaseTrigger, None, TRIGGER_PATTERN, ALL_PATTERNS - {TRIGGER_PATTERN}, "Trigger"),
        (
            "notifications",
            BaseNotifier,
            None,
            NOTIFICATION_PATTERN,
            ALL_PATTERNS - {NOTIFICATION_PATTERN},
            "Notifier",
        ),
    ]
    errors = []
    for dotted in classes:
        module_name, _, class_name = dotted.rpartition(".")
        the_class = getattr(importlib.import_module(module_name), class_name)
        for sub, ancestor, excluded, expected, unexpected, suffix in kinds:
            if (
                f".{sub}." not in f"{module_name}."
                or the_class is ancestor
                or not issubclass(the_class, ancestor)
            ):
                continue
            if excluded is not None and issubclass(the_class, excluded):
                continue
            if (
                sub == "notifications"
                and class_name.startswith("send_")
                and class_name.endswith("_notification")
            ):
                continue  # the functional alias of a notifier (check_if_classes_are_properly_named)
            if not re.match(expected, class_name):
                errors.append(f"The class name {dotted} is wrong. It should match {expected}")
            errors += [
                f"The class name {dotted} is wrong. It should not match {pattern}"
                for pattern in sorted(unexpected)
                if re.match(pattern, class_name)
            ]
            bare = class_name[1:] if class_name.startswith("_") else class_name
            if not (bare[:1].isupper() and not (bare.islower() or bare.isupper() or "_" in bare)):
                errors.append(f"The class {dotted} is not CamelCaseWithACRONYMS")
            if not class_name.endswith(suffix):
                errors.append(f"The class {dotted} is one of the {sub}, so it should end with {suffix}")
    return errors


# --- .pre-commit-config.yaml: check-for-inclusive-language, end-of-file-fixer -------------------

INCLUSIVE_LANGUAGE = re.compile(
    r"""(?ix)
    (black|white)[_-]?list|
    \bshe\b|
    \bhe\b|
    \bher\b|
    \bhis\b|
    \bmaster\b|
    \bslave\b|
    \bsanity\b|
    \bdummy\b
    """
)
# Airflow's exclusions that apply here: changelogs, tests (``^providers/.*/tests/``), images,
# lock files and the check itself.
INCLUSIVE_LANGUAGE_EXCLUDE = re.compile(
    r"""(?x)
    ^.*changelog\.(rst|txt|md)$|
    ^.*CHANGELOG\.(rst|txt|md)$|
    ^tests/|
    ^.*\.(png|gif|jp[e]?g|svg|tgz|lock)$|
    ^scripts/provider_checks\.py$
    """
)


def _text(path: Path) -> bytes | None:
    data = path.read_bytes()
    return None if b"\0" in data[:8192] else data


@check("check-for-inclusive-language: language the Airflow community does not accept")
def check_inclusive_language() -> list[str]:
    errors = []
    for path in repo_files():
        if INCLUSIVE_LANGUAGE_EXCLUDE.match(rel(path)) or (data := _text(path)) is None:
            continue
        for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if match := INCLUSIVE_LANGUAGE.search(line):
                errors.append(f"{rel(path)}:{lineno}: {match.group(0)!r}: {line.strip()[:120]}")
    return errors


@check("end-of-file-fixer: every text file ends with exactly one newline")
def check_end_of_file() -> list[str]:
    errors = []
    for path in repo_files():
        data = _text(path)
        if not data:
            continue
        if not data.endswith(b"\n"):
            errors.append(f"{rel(path)}: no newline at the end of the file")
        elif not data.strip(b"\r\n"):
            errors.append(f"{rel(path)}: only newlines (make it empty)")
        elif data.endswith((b"\n\n", b"\r\n\r\n")):
            errors.append(f"{rel(path)}: blank lines at the end of the file")
    return errors


# --- LICENSE, NOTICE (scripts/ci/prek/check_notice_files.py), distribution metadata ------------


def _words(text: str) -> list[str]:
    return text.split()


def _reference_license() -> str:
    """The Apache-2.0 text every provider distribution ships (common-sql's, from the installed wheel)."""
    import importlib.metadata

    dist = importlib.metadata.distribution("apache-airflow-providers-common-sql")
    for file in dist.files or []:
        if file.name == "LICENSE":
            return file.read_text()
    raise RuntimeError("apache-airflow-providers-common-sql ships no LICENSE to compare with")


@check("LICENSE is the Apache License 2.0; NOTICE names the copyright holder and the current year")
def check_license_notice() -> list[str]:
    errors = []
    license_path, notice_path = ROOT / "LICENSE", ROOT / "NOTICE"
    if not license_path.is_file():
        errors.append("LICENSE: missing (the Apache License 2.0 text)")
    else:
        reference = _words(_reference_license())
        ours = _words(license_path.read_text())
        # The license proper ends at the appendix; providers ship it with or without the appendix.
        end = reference.index("APPENDIX:") if "APPENDIX:" in reference else len(reference)
        if ours[:end] != reference[:end]:
            errors.append("LICENSE: not the text of the Apache License, Version 2.0")
    if not notice_path.is_file():
        errors.append("NOTICE: missing")
    else:
        notice = notice_path.read_text()
        year = str(dt.datetime.now(dt.UTC).year)
        copyright_lines = [line for line in notice.splitlines() if line.startswith("Copyright")]
        if not copyright_lines:
            errors.append("NOTICE: no Copyright line")
        elif not any(re.search(rf"\b(\d{{4}}-)?{year}\b", line) for line in copyright_lines):
            errors.append(f"NOTICE: the Copyright line does not include the current year {year}")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    lic = project.get("license")
    if not (lic == "Apache-2.0" or (isinstance(lic, dict) and lic.get("text") == "Apache-2.0")):
        errors.append(f"pyproject.toml: license is {lic!r}, not Apache-2.0")
    return errors


#: The project URLs every provider's pyproject.toml carries that apply to an unpublished package.
REQUIRED_URLS = ("Documentation", "Source", "Changelog")
URL_IN_TEXT = re.compile(r"https?://[\w.-]+(?:\.?:[\w.-]+)*(?:[#/?][\w!#$%&'()*+,./:;=?@\[\]~-]*)?")


def _ui_description(description: str) -> str:
    """The description as Airflow 3.3's Providers page shows it.

    The API strips ``[`_<>]`` (``_remove_rst_syntax``); the page then splits on spaces and renders
    each URL as a link with no space after it, every other word followed by a space.
    """
    text = re.sub("[`_<>]", "", description.strip(" \n."))
    urls = URL_IN_TEXT.findall(text)
    words = re.sub(r"\n(?:and)?", " ", text).split(" ")
    return "".join(w if w in urls else f"{w} " for w in words)


@check("Distribution metadata: [project.urls], descriptions that read as words")
def check_metadata() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    errors = []
    urls = project.get("urls", {})
    for key in REQUIRED_URLS:
        if not str(urls.get(key, "")).startswith(("https://", "http://")):
            errors.append(f"pyproject.toml: [project.urls] has no {key} URL")
    for key, url in urls.items():
        if "airflow.apache.org/docs/" in url or "pypi.org/project/" in url:
            errors.append(
                f"pyproject.toml: [project.urls] {key} = {url!r} is a page this package does not have"
            )
    import importlib.metadata

    installed = importlib.metadata.distribution(DISTRIBUTION).metadata.get_all("Project-URL") or []
    documentation = [
        u.split(",", 1)[1].strip() for u in installed if u.split(",", 1)[0].strip() == "Documentation"
    ]
    if urls.get("Documentation") and documentation != [urls["Documentation"]]:
        errors.append(
            f"the installed {DISTRIBUTION} has Documentation {documentation!r} (the UI's link), pyproject.toml "
            f"{urls['Documentation']!r}: reinstall it (bash scripts/bootstrap.sh)"
        )
    info = provider_info()
    errors += description_violations(info["description"])
    shown = _ui_description(info["description"])
    if glued := re.findall(r"[a-z]\.[A-Z][a-z]|\w[,;:][A-Za-z]", project.get("description", "")):
        errors.append(f"pyproject.toml description: words run together: {glued!r}")
    if glued := re.findall(r"[a-z]\.[A-Z][a-z]|\w[,;:][A-Za-z]", shown):
        errors.append(f"UI description: words run together: {glued!r}")
    return errors


def description_violations(description: str) -> list[str]:
    """The URLs of a provider description that the Providers page runs into the next word."""
    errors = []
    shown = _ui_description(description)
    for url in URL_IN_TEXT.findall(re.sub("[`_<>]", "", description)):
        rest = shown.split(url, 1)[1] if url in shown else ""
        if rest.strip():
            errors.append(
                f"get_provider_info() description: the Providers page shows {url + rest[:12]!r}, the "
                "link run into the next word; put the link last"
            )
    return errors


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    total = 0
    for title, func in CHECKS:
        print(f"==> {title}", flush=True)
        started = time.monotonic()
        violations = func()
        for violation in violations:
            print(f"    {violation}")
        print(
            f"    {len(violations)} violation{'' if len(violations) == 1 else 's'} ({time.monotonic() - started:.1f} s)"
        )
        total += len(violations)
    print(f"{len(CHECKS)} checks, {total} violation{'' if total == 1 else 's'}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
