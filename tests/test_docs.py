"""The docs site (docs/, built by scripts/docs.sh) covers the package and includes what it shows.

The Sphinx build itself (warnings as errors, run by ``make test`` after mypy) fails on a broken
include or reference; these checks catch, without a build, what a build would not: a module left
out of the API reference, a public class autodoc would skip, an example marker a page lost.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "airflow_provider_smsend"

AUTOMODULE = re.compile(r"^\.\. automodule:: (\S+)", re.MULTILINE)
ROOM = re.compile(r"^\.\. smsend-modules:: (\S+)", re.MULTILINE)
LITERALINCLUDE = re.compile(
    r"```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?::[^\n]*\n)*)```", re.MULTILINE
)
MARKER = re.compile(r'^:(?P<kind>start-after|end-before): "(?P<text>[^"]+)"$', re.MULTILINE)


def load_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smsend_api", DOCS / "_ext" / "smsend_api.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_modules() -> set[str]:
    """The modules the API pages document: each ``automodule``, and each module of a room that a
    ``smsend-modules`` directive (docs/_ext/smsend_api.py) lists."""
    extension = load_extension()
    modules = set()
    for page in (DOCS / "api").glob("*.rst"):
        text = page.read_text()
        modules.update(AUTOMODULE.findall(text))
        for room in ROOM.findall(text):
            modules.update(extension.room_modules(room))
    return modules


def package_modules() -> set[str]:
    """Every module of the package but ``__main__`` (``python -m``'s entry: importing it runs the sandbox)."""
    modules = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        modules.add(".".join(p for p in parts if p != "__init__"))
    return modules


def is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def test_every_public_module_is_in_the_api_reference():
    missing = sorted(m for m in package_modules() - documented_modules() if not is_private(m))
    assert not missing, f"not in any page of docs/api/ (a new room needs its page): {missing}"


def test_private_modules_are_documented_only_when_the_provider_info_lists_them():
    private = {m for m in documented_modules() if is_private(m)}
    assert private == {m for m in load_extension().listed_modules() if is_private(m)}
    assert "airflow_provider_smsend.sensors._base" in private


def test_the_api_reference_names_only_existing_modules():
    assert not sorted(documented_modules() - package_modules())


@pytest.mark.parametrize("module", sorted(m for m in package_modules() if not is_private(m)))
def test_every_public_class_and_function_is_documented(module):
    """``automodule`` with ``:members:`` documents what the module defines and has a docstring."""
    if module not in documented_modules():
        pytest.skip("not in the API reference (the test above fails)")
    namespace = vars(importlib.import_module(module))
    undocumented = [
        name
        for name, obj in namespace.items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module
        and not (obj.__doc__ or "").strip()
    ]
    assert not undocumented, f"{module}: no docstring, so not in the API reference: {undocumented}"


def included_examples() -> list[tuple[Path, Path, str, str]]:
    """(page, example file, start marker, end marker) of every marked literalinclude of the docs."""
    found = []
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        for match in LITERALINCLUDE.finditer(page.read_text()):
            options = {m["kind"]: m["text"] for m in MARKER.finditer(match["options"])}
            if options:
                source = (page.parent / match["path"]).resolve()
                found.append((page, source, options["start-after"], options["end-before"]))
    return found


def test_the_how_to_pages_show_code_of_the_example_dags():
    examples = included_examples()
    sources = {source.relative_to(ROOT).parts[0] for _, source, _, _ in examples}
    assert sources == {"dags_examples"}
    pages = {page.relative_to(DOCS).parts[0] for page, _, _, _ in examples}
    assert {"operators", "sensors", "transfer", "notifications"} <= pages


@pytest.mark.parametrize(
    ("page", "source", "start", "end"),
    included_examples(),
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_every_example_marker_is_in_its_dag_once_with_code_between(page, source, start, end):
    lines = [line.strip() for line in source.read_text().splitlines()]
    assert lines.count(start) == 1, f"{page.name}: {start!r} in {source.name}"
    assert lines.count(end) == 1, f"{page.name}: {end!r} in {source.name}"
    first, last = lines.index(start), lines.index(end)
    assert last - first > 1, f"{page.name}: nothing between {start!r} and {end!r} in {source.name}"
    assert start.replace("[START ", "[END ") == end


def test_make_test_builds_the_docs_with_warnings_as_errors():
    docs_sh = (ROOT / "scripts" / "docs.sh").read_text()
    assert re.search(r"sphinx-build -W -n --keep-going .*-b html docs docs/_build/html", docs_sh)
    assert "bash scripts/docs.sh" in (ROOT / "scripts" / "test.sh").read_text()
    assert "docs/_build/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_examples_page_shows_every_example_dag():
    assert ".. smsend-examples::" in (DOCS / "examples.rst").read_text().splitlines()


CITATION = re.compile(r'(?P<file>(?:/?docs/)?(?:[\w-]+/)*[\w-]+\.md)\b(?:, "(?P<section>[^"]+)")?')


def cited_pages() -> list[tuple[str, str, str | None]]:
    """(where, page, section) of every ``*.md`` the code, examples, tests, scripts and benches cite."""
    found = []
    for folder in ("airflow_provider_smsend", "dags_examples", "tests", "scripts", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for match in CITATION.finditer(line):
                    where = f"{path.relative_to(ROOT)}:{number}"
                    found.append((where, match["file"], match["section"]))
    return found


def test_the_code_cites_only_pages_of_the_repository_and_their_sections():
    """Docstrings and comments point at docs/gateway.md and friends, never at a file outside."""
    problems = []
    for where, name, section in cited_pages():
        name = name.lstrip("/")  # get_provider_info's how-to paths are rooted at the repository
        page = next((p for p in (ROOT / name, DOCS / name) if p.is_file()), None)
        if page is None:
            problems.append(f"{where}: {name} is not in the repository")
            continue
        lines = [line.lstrip("#").strip() for line in page.read_text().splitlines()]
        if section and not any(line.startswith(section) for line in lines):
            problems.append(f"{where}: {name} has no section {section!r}")
    assert not problems, "\n".join(problems)
    assert any(name == "docs/gateway.md" for _, name, _ in cited_pages())


def test_the_nitpicky_build_links_reexported_names_and_fails_on_names_that_do_not_exist(tmp_path):
    """The docs' extension (docs/_ext/smsend_api.py) in a small Sphinx project of its own."""
    from io import StringIO

    from sphinx.application import Sphinx

    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['sphinx.ext.autodoc', 'smsend_api']\n"
        "nitpicky = True\n"
    )
    (source / "index.rst").write_text(
        "Index\n=====\n\n"
        ".. automodule:: airflow_provider_smsend.client.http\n   :members: SmSendClient\n\n"
        "Re-exported: :class:`airflow_provider_smsend.client.SmSendClient`.\n"
        "Private: :func:`airflow_provider_smsend.client.http._send_fields`.\n"
        "Nothing: :class:`airflow_provider_smsend.client.SmSendNoSuchClient`.\n"
    )
    warnings = StringIO()
    app = Sphinx(
        str(source), str(source), str(tmp_path / "html"), str(tmp_path / "doctrees"), "html",
        status=None, warning=warnings, freshenv=True,
    )  # fmt: skip
    app.build()
    page = (tmp_path / "html" / "index.html").read_text()
    assert 'href="#airflow_provider_smsend.client.http.SmSendClient"' in page
    assert "_send_fields" in page
    assert "SmSendNoSuchClient" in warnings.getvalue()
    assert "SmSendClient [ref" not in warnings.getvalue()
    assert "_send_fields" not in warnings.getvalue()
