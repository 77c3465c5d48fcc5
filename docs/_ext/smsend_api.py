"""The docs site's Sphinx extension: the API reference's module lists, and the package's references.

- ``.. smsend-modules:: airflow_provider_smsend.<room>`` documents every module of a room (a
  section and an ``automodule`` each), so a module added to the package is in the API reference
  without editing a page. A private module (``_base.py``) is documented only when
  ``get_provider_info()`` lists it (the sensors' and triggers' bases); ``__main__`` never is
  (importing it runs the sandbox).
- ``.. smsend-examples::`` shows every example DAG of ``dags_examples/`` whole (a section and a
  ``literalinclude`` each), so a new example is on the examples page without editing it.
- A reference into the package that the Python domain cannot find is resolved here: a name a
  package re-exports (``client.SmSendClient``) links to where it is documented
  (``client.http.SmSendClient``); a private object, a type variable or a module constant (autodoc
  documents no value without a ``#:`` comment) is not documented and stays plain text. Any other
  miss, a name that does not exist above all, stays missing: the nitpicky build fails on it.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

PACKAGE = "airflow_provider_smsend"


def listed_modules() -> set[str]:
    """The modules ``get_provider_info()`` declares (hooks, operators, sensors, triggers, transfers)."""
    from airflow_provider_smsend.get_provider_info import get_provider_info

    info = get_provider_info()
    modules = {t["python-module"] for t in info.get("transfers", [])}
    for kind in ("hooks", "operators", "sensors", "triggers"):
        modules.update(m for entry in info.get(kind, []) for m in entry["python-modules"])
    return modules


def room_modules(room: str) -> list[str]:
    """The documented modules of a subpackage (``airflow_provider_smsend.client``), sorted."""
    package = importlib.import_module(room)
    folder = Path(package.__file__ or "").parent
    listed = listed_modules()
    names = []
    for path in sorted(folder.glob("*.py")):
        if path.stem in ("__init__", "__main__"):
            continue
        name = f"{room}.{path.stem}"
        if path.stem.startswith("_") and name not in listed:
            continue
        names.append(name)
    return names


class SmSendModules(SphinxDirective):
    """``.. smsend-modules:: <subpackage>``: a section with an ``automodule`` per module."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        room = self.arguments[0]
        lines = []
        for name in room_modules(room):
            title = f"``{name.removeprefix(PACKAGE + '.')}``"
            lines += [title, "-" * len(title), "", f".. automodule:: {name}", ""]
        source, _ = self.get_source_info()
        content = StringList(lines, source=source)
        section = nodes.section()
        nested_parse_with_titles(self.state, content, section)
        return section.children


MISSING = object()


class SmSendExamples(SphinxDirective):
    """``.. smsend-examples::``: a section with a ``literalinclude`` per example DAG."""

    def run(self) -> list[nodes.Node]:
        examples = Path(self.env.srcdir).parent / "dags_examples"
        lines = []
        for path in sorted(examples.glob("*.py")):
            title = f"``{path.stem}``"
            lines += [title, "-" * len(title), "", f".. literalinclude:: /../dags_examples/{path.name}"]
            lines += ["   :language: python", ""]
            self.env.note_dependency(str(path))
        source, _ = self.get_source_info()
        section = nodes.section()
        nested_parse_with_titles(self.state, StringList(lines, source=source), section)
        return section.children


def _own_object(target: str) -> Any:
    """The package's object a dotted name points to, or MISSING."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name, MISSING)
            if obj is MISSING:
                break
        return obj
    return MISSING


def _is_data(obj: Any) -> bool:
    return not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj))


def resolve_own_reference(app: Sphinx, env: BuildEnvironment, node: Any, contnode: Any) -> Any:
    """Resolve a missed reference into the package (see the module's docstring), or return None."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith(PACKAGE + "."):
        return None
    obj = _own_object(target)
    if obj is MISSING:
        return None
    private = any(part.startswith("_") for part in target.split("."))
    if (
        private
        or isinstance(obj, typing.TypeVar)
        or (node["reftype"] in ("data", "const", "obj") and _is_data(obj))
    ):
        return contnode
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or f"{module}.{qualname}" == target:
        return None
    node["reftarget"] = f"{module}.{qualname}"
    return env.domains.python_domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], node["reftarget"], node, contnode
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("smsend-modules", SmSendModules)
    app.add_directive("smsend-examples", SmSendExamples)
    app.connect("missing-reference", resolve_own_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
