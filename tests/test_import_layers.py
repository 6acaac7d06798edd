"""The house's import rules, read from the code (ast; cimports by pattern).

LAYERS is the one rule table (README "Layout" quotes it): bottom to top, a
module may import its own part or any part on a lower line; parts on the same
line never import each other.  The simulated phones stand beside the product:
they may use the SIP, media and media-port helpers, and nothing in the
product imports them.  Besides the layers: no import circles between modules
(any import counts, also one inside a function or under TYPE_CHECKING), and
no module takes another module's private (``_name``) names.

Tests and benchmarks are not checked: they may import anything.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

LAYERS: list[tuple[str, ...]] = [
    ("acdcore",),
    ("ivrflows",),
    ("sipagent.tasks",),
    ("sipagent.mediaports", "sipagent.store", "sipagent.logs", "sipagent.metrics",
     "sipagent.loop_watchdog"),
    ("sipagent.sip",),
    ("sipagent.media",),
    ("sipagent.queue", "sipagent.voicemail", "sipagent.fax", "sipagent.cluster"),
    ("sipagent.calls",),
    ("sipagent.engine",),
    ("sipagent.config",),
    ("sipagent.api",),
    ("sipagent.cli",),
    ("sipagent.__main__",),
]
SIMPHONES = "simphones"
SIMPHONES_MAY_IMPORT = ("sipagent.sip", "sipagent.media", "sipagent.mediaports")
PACKAGES = ("acdcore", "ivrflows", "sipagent", SIMPHONES)

_CIMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+cimport|cimport\s+([\w.]+))", re.M)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_modules(root: Path) -> dict[str, Path]:
    """Every product module under ``root``: dotted name -> file."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".pyx", ".pxd") and "__pycache__" not in path.parts:
                found.setdefault(_module_name(root, path), path)
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest known module that ``name`` is or lies in (``a.b.C`` -> ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for each import in the file."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[str, list[str]]] = []
    if path.suffix != ".py":
        for m in _CIMPORT.finditer(text):
            found.append((_resolve(m.group(1) or m.group(2), modules), []))
        text = "\n".join(line for line in text.splitlines() if "cimport" not in line)
        try:
            tree = ast.parse(text)
        except SyntaxError:     # Cython syntax: the cimports above are what matter
            return [f for f in found if f[0]]
    else:
        tree = ast.parse(text, filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(_resolve(a.name, modules), []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod itself.
                target = _resolve(f"{base}.{alias.name}", modules)
                if target == f"{base}.{alias.name}":
                    found.append((target, []))
                else:
                    found.append((_resolve(base, modules), [alias.name]))
    return [f for f in found if f[0]]


def part_of(module: str) -> tuple[int, str] | None:
    """(layer index, part) for a product module; None for the simulated phones
    and the bare ``sipagent`` package."""
    for level, parts in enumerate(LAYERS):
        for part in parts:
            if module == part or module.startswith(part + "."):
                return level, part
    return None


def layer_problems(graph: dict[str, list[tuple[str, list[str]]]]) -> list[str]:
    problems = []
    for importer, edges in graph.items():
        for imported, names in edges:
            if importer == imported:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                problems.append(f"{importer} takes private {', '.join(private)} from {imported}")
            if importer.split(".")[0] == SIMPHONES:
                if imported.split(".")[0] in ("sipagent",) and not any(
                        imported == p or imported.startswith(p + ".")
                        for p in SIMPHONES_MAY_IMPORT):
                    problems.append(f"{importer} (simulated phones) imports {imported}")
                continue
            if imported.split(".")[0] == SIMPHONES:
                problems.append(f"{importer} imports the simulated phones ({imported})")
                continue
            mine, theirs = part_of(importer), part_of(imported)
            if mine is None or theirs is None or mine[1] == theirs[1]:
                continue
            if theirs[0] > mine[0]:
                problems.append(f"{importer} (layer {mine[1]}) imports {imported}, "
                                f"a layer above it ({theirs[1]})")
            elif theirs[0] == mine[0]:
                problems.append(f"{importer} imports {imported}: {mine[1]} and {theirs[1]} "
                                "stand on one layer and never import each other")
    return problems


def circles(graph: dict[str, list[tuple[str, list[str]]]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt, _ in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph(root: Path) -> dict[str, list[tuple[str, list[str]]]]:
    modules = read_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def house_problems(root: Path) -> list[str]:
    graph = import_graph(root)
    return layer_problems(graph) + [
        "import circle: " + " -> ".join(group) for group in circles(graph)]


def test_the_house_keeps_its_layers():
    graph = import_graph(REPO)
    assert len(graph) > 100, "the product's modules were not found"
    assert house_problems(REPO) == []


def test_every_product_module_belongs_to_a_layer():
    unplaced = [m for m in read_modules(REPO)
                if part_of(m) is None and m not in ("sipagent",)
                and m.split(".")[0] != SIMPHONES]
    assert unplaced == []


# -- the check itself can fail -----------------------------------------------------------

def _house(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != tmp_path and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("files, expected", [
    ({"sipagent/sip/leg.py": "from sipagent.queue.runtime import QueueRuntime\n",
      "sipagent/queue/runtime.py": ""},
     "sipagent.sip.leg (layer sipagent.sip) imports sipagent.queue.runtime, a layer above"),
    ({"sipagent/fax/verbs.py": "def f():\n    from sipagent.voicemail import store\n",
      "sipagent/voicemail/store.py": ""},
     "stand on one layer"),
    ({"acdcore/kpi.py": "import ivrflows.call\n", "ivrflows/call.py": ""},
     "acdcore.kpi (layer acdcore) imports ivrflows.call"),
    ({"sipagent/engine.py": "from simphones import tones\n", "simphones/tones.py": ""},
     "sipagent.engine imports the simulated phones"),
    ({"simphones/phone.py": "from sipagent.queue.runtime import X\n",
      "sipagent/queue/runtime.py": ""},
     "simphones.phone (simulated phones) imports sipagent.queue.runtime"),
    ({"sipagent/config/fax.py": "from sipagent.config.voicemail import _as_tuple\n",
      "sipagent/config/voicemail.py": ""},
     "sipagent.config.fax takes private _as_tuple from sipagent.config.voicemail"),
    ({"sipagent/queue/runtime.py": "from .callback import CallbackLine\n",
      "sipagent/queue/callback.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                    "    from sipagent.queue.runtime import QueueRuntime\n"},
     "import circle: sipagent.queue.callback -> sipagent.queue.runtime"),
    ({"simphones/fax_memory.pyx": "from sipagent.store.files cimport x\n",
      "sipagent/store/files.py": ""},
     "simphones.fax_memory (simulated phones) imports sipagent.store.files"),
])
def test_the_check_finds_what_breaks_the_rules(tmp_path, files, expected):
    problems = house_problems(_house(tmp_path, files))
    assert any(expected in p for p in problems), problems


def test_the_check_accepts_downward_imports(tmp_path):
    root = _house(tmp_path, {
        "sipagent/cli/main.py": "from sipagent.engine import Engine\nfrom ..config import load\n",
        "sipagent/engine.py": "from sipagent.queue import runtime\nimport acdcore.kpi\n",
        "sipagent/config/load.py": "",
        "sipagent/queue/runtime.py": "from sipagent.sip.leg import CallLeg\n",
        "sipagent/sip/leg.py": "from sipagent.mediaports import fax\n",
        "sipagent/mediaports/fax.pxd": "cdef struct FaxLine:\n    int x\n",
        "sipagent/mediaports/cng.pyx": "from sipagent.mediaports.fax cimport FaxLine\n",
        "simphones/phone.py": "from sipagent.sip import leg\n",
        "acdcore/kpi.py": "",
    })
    assert house_problems(root) == []
