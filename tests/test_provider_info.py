"""Provider metadata: valid for Airflow's own schema, every module and class resolvable, entry point wired.

Written generically: it reads whatever hooks/operators/sensors/triggers/transfers/notifications
get_provider_info() lists, so it keeps passing (or fails usefully) as modules are added.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from pathlib import Path

from airflow_provider_smsend.get_provider_info import get_provider_info

PACKAGE = "airflow-provider-smsend"


def _airflow_schema(name: str) -> dict:
    import airflow

    path = Path(airflow.__file__).parent / name
    assert path.is_file(), f"Airflow ships {name} next to its package"
    return json.loads(path.read_text())


def _resolve(dotted: str) -> object:
    module_name, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _listed_modules(info: dict) -> list[str]:
    modules: list[str] = []
    for key in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(key, []):
            modules.extend(entry["python-modules"])
    for entry in info.get("transfers", []):
        modules.append(entry["python-module"])
    return modules


def test_validates_against_airflow_provider_info_schema():
    import jsonschema

    schema = _airflow_schema("provider_info.schema.json")
    jsonschema.validate(instance=get_provider_info(), schema=schema)


def test_validates_against_airflow_authoring_schema():
    # provider.yaml.schema.json is the stricter one: it describes conn-fields and ui-field-behaviour.
    import jsonschema

    schema = _airflow_schema("provider.yaml.schema.json")
    errors = [
        f"{list(e.path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(get_provider_info())
    ]
    assert not errors, errors


def test_ui_field_behaviour_validates_against_airflow_schema():
    import jsonschema

    from airflow_provider_smsend.hooks.smsend import SmSendHook

    schema = _airflow_schema("customized_form_field_behaviours.schema.json")
    for conn in get_provider_info()["connection-types"]:
        behaviour = conn.get("ui-field-behaviour")
        if behaviour:
            converted = {
                "hidden_fields": behaviour.get("hidden-fields", []),
                "relabeling": behaviour.get("relabeling", {}),
                "placeholders": behaviour.get("placeholders", {}),
            }
            jsonschema.validate(instance=converted, schema=schema)
    jsonschema.validate(instance=SmSendHook.get_ui_field_behaviour(), schema=schema)


def test_basic_identity():
    info = get_provider_info()
    assert info["package-name"] == PACKAGE
    assert info["name"] and info["description"]
    assert importlib.metadata.version(PACKAGE) in info.get("versions", [importlib.metadata.version(PACKAGE)])


def test_every_listed_module_is_importable():
    modules = _listed_modules(get_provider_info())
    assert "airflow_provider_smsend.hooks.smsend" in modules
    for name in modules:
        importlib.import_module(name)


IMPORT_LISTED_WITH_DEPRECATIONS_AS_ERRORS = """
import importlib, re, sys, warnings
from airflow.exceptions import AirflowProviderDeprecationWarning, RemovedInAirflow4Warning
from airflow.sdk.exceptions import RemovedInAirflow4Warning as SdkRemovedInAirflow4Warning
from airflow.utils.deprecation_tools import DeprecatedImportWarning
for category in (
    RemovedInAirflow4Warning, SdkRemovedInAirflow4Warning, AirflowProviderDeprecationWarning, DeprecatedImportWarning
):
    warnings.simplefilter("error", category)
# A DeprecationWarning that Airflow raises, or that points at our code (stacklevel=2).
warnings.filterwarnings("error", category=DeprecationWarning, module=r"(airflow|airflow_provider_smsend)(\\.|$)")
from airflow_provider_smsend.get_provider_info import get_provider_info
for name in sys.argv[1:]:
    module, _, attr = name.partition(":")
    obj = importlib.import_module(module)
    if attr:
        getattr(obj, attr)
print("imported", len(sys.argv) - 1)
"""


def test_listed_modules_import_without_airflow_deprecation_warnings():
    import subprocess
    import sys

    info = get_provider_info()
    names = _listed_modules(info)
    names += ["{}:{}".format(*path.rsplit(".", 1)) for path in info.get("notifications", [])]
    names += ["{}:{}".format(*c["hook-class-name"].rsplit(".", 1)) for c in info["connection-types"]]
    # A fresh interpreter: modules this test session imported already would not warn again.
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_LISTED_WITH_DEPRECATIONS_AS_ERRORS, *names],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"imported {len(names)}"


def test_listed_modules_belong_to_declared_integrations():
    info = get_provider_info()
    integrations = {i["integration-name"] for i in info.get("integrations", [])}
    for key in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(key, []):
            assert entry["integration-name"] in integrations, (key, entry)
    for entry in info.get("transfers", []):
        for side in ("source-integration-name", "target-integration-name"):
            # The target may be another provider's integration (e.g. SQL); the source is ours.
            if side == "source-integration-name":
                assert entry[side] in integrations, entry


def test_every_class_path_resolves():
    info = get_provider_info()
    paths = [conn["hook-class-name"] for conn in info.get("connection-types", [])]
    paths += list(info.get("notifications", []))
    paths += list(info.get("hook-class-names", []))
    for entry in info.get("extra-links", []):
        paths.append(entry)
    assert paths, "at least the hook's class is listed"
    for path in paths:
        assert isinstance(_resolve(path), type), path


def test_connection_types_match_their_hooks():
    from airflow.sdk import BaseHook

    for conn in get_provider_info()["connection-types"]:
        hook = _resolve(conn["hook-class-name"])
        assert issubclass(hook, BaseHook)
        assert hook.conn_type == conn["connection-type"]
        assert getattr(hook, "hook_name", None) == conn.get("hook-name", hook.hook_name)
        assert hook.conn_name_attr and hook.default_conn_name


def test_conn_fields_are_well_formed():
    for conn in get_provider_info()["connection-types"]:
        for name, field in conn.get("conn-fields", {}).items():
            assert field.get("label"), name
            assert isinstance(field.get("schema"), dict), name
            schema = field["schema"]
            if "default" in schema and "enum" in schema:
                assert schema["default"] in schema["enum"], name


def test_secret_conn_fields_are_marked_as_passwords():
    # Airflow treats a conn-field as sensitive (masked in the UI and API) only with format: password.
    for conn in get_provider_info()["connection-types"]:
        for name, field in conn.get("conn-fields", {}).items():
            if "password" in name or "secret" in name or "token" in name:
                assert field["schema"].get("format") == "password", name


def _smsend_conn_fields() -> dict[str, dict]:
    (conn,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "smsend"]
    return conn["conn-fields"]


def test_conn_fields_are_exactly_the_extras_the_hook_reads():
    from airflow_provider_smsend.hooks import smsend

    assert set(_smsend_conn_fields()) == set(smsend.EXTRA_FIELDS)


def test_conn_fields_store_no_defaults_and_say_they_are_optional():
    # The hook holds the defaults: a connection made in the UI must not carry a copy of each.
    for name, field in _smsend_conn_fields().items():
        schema = field["schema"]
        assert "default" not in schema, name
        assert "null" in schema["type"], name  # an empty field is valid
        assert field["description"].startswith("Optional. "), name
        assert schema["section"], name


def test_conn_fields_are_grouped_in_sections():
    sections = {field["schema"]["section"] for field in _smsend_conn_fields().values()}
    assert len(sections) >= 3
    by_section = {
        section: {n for n, f in _smsend_conn_fields().items() if f["schema"]["section"] == section}
        for section in sections
    }
    assert any({"reseller_username", "reseller_password"} == names for names in by_section.values())
    assert any({"wsdl_receive", "wsdl_mms", "mms_id"} <= names for names in by_section.values())


def test_choices_are_labelled_and_can_be_left_unset():
    fields = _smsend_conn_fields()
    assert {"scheme", "default_quality", "charset", "mms_auth"} <= {
        n for n, f in fields.items() if "enum" in f["schema"]
    }
    for name, field in fields.items():
        schema = field["schema"]
        if "enum" not in schema:
            continue
        assert None in schema["enum"], name
        # The UI looks a value's label up by its text ("null" for None).
        keys = {"null" if value is None else str(value) for value in schema["enum"]}
        assert set(schema["values_display"]) == keys, name
        assert all(label.strip() for label in schema["values_display"].values()), name
    quality = fields["default_quality"]["schema"]["values_display"]
    assert quality["h"] != "h" and "high" in quality["h"]


def test_numeric_fields_are_bounded():
    fields = _smsend_conn_fields()
    assert fields["retries"]["schema"]["type"] == ["integer", "null"]
    assert fields["max_report_bytes"]["schema"]["type"] == ["integer", "null"]
    for name in ("timeout", "connect_timeout", "retries"):
        schema = fields[name]["schema"]
        assert 0 <= schema["minimum"] < schema["maximum"], name


def test_airflow_api_serves_the_form_without_values():
    # What Airflow 3.3's connection form receives (GET /ui/connections/hook_meta).
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "smsend"]
    assert meta.extra_fields is not None
    assert set(meta.extra_fields) == set(_smsend_conn_fields())
    for name, spec in meta.extra_fields.items():
        assert spec["value"] is None, name
        assert spec["schema"]["title"] and spec["schema"]["section"], name
    assert meta.extra_fields["default_quality"]["schema"]["values_display"]["n"] == "n: notification"
    assert meta.extra_fields["retries"]["schema"]["maximum"] == 10
    assert meta.standard_fields is not None and meta.standard_fields.host is not None
    assert meta.standard_fields.host.title == "Gateway host or URL"


def test_entry_point_is_registered():
    eps = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.value.startswith("airflow_provider_smsend")]
    assert len(ours) == 1, [ep.value for ep in eps]
    (ep,) = ours
    assert ep.value == "airflow_provider_smsend.get_provider_info:get_provider_info"
    assert ep.load() is get_provider_info
    assert ep.dist is not None and ep.dist.name == PACKAGE


def test_airflow_providers_manager_discovers_the_provider():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert PACKAGE in manager.providers
    behaviour = manager.field_behaviours.get("smsend")
    assert (
        behaviour
        and behaviour["hidden_fields"]
        == get_provider_info()["connection-types"][0]["ui-field-behaviour"]["hidden-fields"]
    )
    widgets = {k: v for k, v in manager.connection_form_widgets.items() if k.startswith("extra__smsend__")}
    assert widgets
    assert widgets["extra__smsend__reseller_password"].is_sensitive
