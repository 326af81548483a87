"""The import graph keeps the roles apart (README, "Architecture"): the analysis runs without the
portal, the database or the web; the REST client knows nothing else of callcoach; the chat bot and
the report know nothing of the web handlers or the job workflow. Read from the source with ``ast``,
imports inside functions and under TYPE_CHECKING included."""

from __future__ import annotations

import ast
from pathlib import Path

import callcoach

ROOT = Path(callcoach.__file__).parent
WEB = {"handlers", "app", "serve", "services", "context"}
# plain-Python helpers that import nothing of callcoach: anyone may use them
LEAVES = {"values"}

# package -> the callcoach packages and modules it must not import
FORBIDDEN: dict[str, set[str]] = {
    "pipeline": {
        "b24",
        "storage",
        "bot",
        "workflow",
        "report",
        "copilot",
        "installer",
        "portal_clients",
        *WEB,
    },
    "storage": {"b24", "bot", "workflow", "report", "copilot", "llm", "installer", "portal_clients", *WEB},
    "bot": {"workflow", "handlers", "app", "serve", "services", "copilot"},
    "report": {"handlers", "app", "serve", "services", "context", "workflow", "bot", "copilot"},
    "copilot": {"bot", "storage", "workflow", "report", *WEB},
    "llm": {"b24", "storage", "bot", "workflow", "report", "copilot", *WEB},
    "texts": {"b24", "storage", "bot", "workflow", "report", "llm", *WEB},
}


def _imports(path: Path, package: str = "callcoach") -> set[str]:
    """The callcoach modules ``path`` (a module of ``package``) imports, as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("callcoach.")}


def _package(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").parts[0]


def _dotted_package(path: Path) -> str:
    return ".".join(["callcoach", *path.relative_to(ROOT).parent.parts])


def _violations() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        package = _package(path)
        for name in sorted(_imports(path, _dotted_package(path))):
            target = name.split(".")[1]
            if package in LEAVES:
                found.append(f"{path.relative_to(ROOT)} imports {name}: a leaf imports nothing of callcoach")
            elif package == "b24" and target not in ("b24", *LEAVES):
                found.append(f"{path.relative_to(ROOT)} imports {name}: b24 knows nothing else of callcoach")
            elif target in FORBIDDEN.get(package, set()):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_no_import_crosses_a_role_boundary() -> None:
    assert _violations() == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from callcoach.handlers.verify import verify_event\n")
    assert "callcoach.handlers.verify" in _imports(module)


def test_the_check_resolves_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from .errors import B24Error\nfrom ..storage import Store\n")
    assert {"callcoach.b24.errors", "callcoach.storage"} <= _imports(module, "callcoach.b24")
