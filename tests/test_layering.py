"""The package layout keeps its promises: inspect/ is pure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "kcheckpoint"


def imported_after(code: str, names: tuple[str, ...]) -> str:
    """Which of ``names`` a fresh interpreter has imported once ``code`` ran, comma separated
    (written to stderr, so that stdout stays ``code``'s), and anything else it wrote there."""
    probe = (
        f"{code}\nimport sys\n"
        f"print(','.join(m for m in {names!r} if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return out.stderr.strip()


def test_inspect_imports_no_cli_or_server_framework() -> None:
    code = "import kcheckpoint.inspect, kcheckpoint.inspect.summary"
    assert imported_after(code, ("typer", "fastapi", "grpc", "tabulate", "uvicorn")) == ""


def test_inspect_never_prints_or_exits() -> None:
    for path in (SRC / "inspect").rglob("*.py"):
        text = path.read_text()
        assert "print(" not in text, path
        assert "sys.exit" not in text, path


def test_a_command_imports_only_its_own_module() -> None:
    """Start-up cost: `summary` must not import the capture service or the diff engine."""
    names = (
        "fastapi",
        "grpc",
        "uvicorn",
        "kcheckpoint.cli.commands.diff_cmd",
        "kcheckpoint.cli.commands.serve_cmd",
        "kcheckpoint.inspect.rules.secrets",
        "dask",
        "distributed",
        "fsspec",
        "s3fs",
        "kcheckpoint.remote.fanout",
    )
    code = "from kcheckpoint.cli import main; main(['summary', '--help'])"
    assert imported_after(code, names) == ""


# The rooms of src/kcheckpoint and what each may import (besides itself, the standard library
# and third-party packages). A module belongs to the room with the longest matching name. The
# README's "Layout" section draws the same table.
ROOMS: dict[str, set[str]] = {
    "kcheckpoint": set(),  # the version
    "kcheckpoint.__main__": {"kcheckpoint.cli"},
    "kcheckpoint.errors": set(),
    "kcheckpoint._proto": set(),
    "kcheckpoint.inspect.model": {"kcheckpoint.errors"},
    "kcheckpoint.inspect.rules": set(),
    "kcheckpoint.inspect.reader": {"kcheckpoint.errors", "kcheckpoint.inspect.model"},
    "kcheckpoint.inspect.criu": {
        "kcheckpoint.errors",
        "kcheckpoint._proto",
        "kcheckpoint.inspect.model",
        "kcheckpoint.inspect.rules",
        "kcheckpoint.inspect.reader",
    },
    "kcheckpoint.inspect.evidence": {
        "kcheckpoint.errors",
        "kcheckpoint.inspect.model",
        "kcheckpoint.inspect.reader",
    },
    "kcheckpoint.inspect.memory": {
        "kcheckpoint.errors",
        "kcheckpoint.inspect.model",
        "kcheckpoint.inspect.rules",
        "kcheckpoint.inspect.reader",
        "kcheckpoint.inspect.criu",
    },
    "kcheckpoint.inspect.diff": {
        "kcheckpoint.errors",
        "kcheckpoint.inspect.model",
        "kcheckpoint.inspect.reader",
        "kcheckpoint.inspect.criu",
    },
    "kcheckpoint.inspect.summary": {
        "kcheckpoint.inspect.model",
        "kcheckpoint.inspect.reader",
        "kcheckpoint.inspect.criu",
    },
    # the package itself re-exports the common entry points
    "kcheckpoint.inspect": {"kcheckpoint.inspect.reader", "kcheckpoint.inspect.summary"},
    # checkpoint images and the registry client
    "kcheckpoint.oci": {
        "kcheckpoint.errors",
        "kcheckpoint.inspect.model",
        "kcheckpoint.inspect.reader",
    },
    # remote inputs (fsspec) and fan-out (Dask), both imported only when asked for
    "kcheckpoint.remote": {"kcheckpoint.errors", "kcheckpoint.inspect", "kcheckpoint.oci"},
    "kcheckpoint.render": {"kcheckpoint.inspect"},
    "kcheckpoint.capture": {
        "kcheckpoint",
        "kcheckpoint.errors",
        "kcheckpoint._proto",
        "kcheckpoint.inspect.reader",
    },
    "kcheckpoint.cli": {
        "kcheckpoint",
        "kcheckpoint.errors",
        "kcheckpoint.inspect",
        "kcheckpoint.render",
        "kcheckpoint.capture",
        "kcheckpoint.oci",
        "kcheckpoint.remote",
    },
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    best = ""
    for room in ROOMS:
        if (module == room or module.startswith(room + ".")) and len(room) > len(best):
            best = room
    assert best, f"{module} is in no room: add it to ROOMS"
    return best


def _allowed(importer: str, imported: str) -> bool:
    """An import is allowed inside its own room, and into a room or below one it may import."""
    room = _room(importer)
    target = _room(imported)
    if target == room or target.startswith(room + "."):
        return True
    return any(imported == ok or imported.startswith(ok + ".") for ok in ROOMS[room])


def _imports(path: Path, module: str) -> set[str]:
    """Every kcheckpoint module ``path`` imports, at the top or inside a function."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            modules = {
                f"{source}.{a.name}"
                for a in node.names
                if (SRC.parent / f"{source}.{a.name}".replace(".", "/")).with_suffix(".py").exists()
            }
            # `from . import system` imports the module system, not the package
            found.update(modules or {source})
    return {m for m in found if m == "kcheckpoint" or m.startswith("kcheckpoint.")}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(SRC.rglob("*.py")):
        if "_proto" in path.parts:
            continue
        module = _module_name(path)
        graph[module] = {m for m in _imports(path, module) if m != module}
    return graph


def test_every_import_goes_where_its_room_may_go() -> None:
    bad = [
        f"{importer} -> {imported}"
        for importer, targets in _graph().items()
        for imported in sorted(targets)
        if not _allowed(importer, imported)
    ]
    assert bad == []


def test_the_rooms_themselves_have_no_circle() -> None:
    for room, targets in ROOMS.items():
        for target in targets:
            reached = _reach(ROOMS, target)
            assert room not in reached or room.startswith(target + "."), f"{room} <-> {target}"


def test_no_module_imports_itself_in_a_circle() -> None:
    """Lazy imports inside functions count too: a circle is a circle even when it runs."""
    graph = _graph()
    for module in graph:
        for imported in graph[module]:
            assert module not in _reach(graph, imported), f"circle: {module} -> {imported} -> …"


def test_every_package_says_what_it_holds_and_may_import() -> None:
    for init in SRC.rglob("__init__.py"):
        if "_proto" in init.parts or init.parent in (SRC, SRC / "capture"):
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc, init
        if init.parent.name != "commands":
            assert "May import" in doc or "may import" in doc.lower(), init


def test_no_module_is_over_600_lines() -> None:
    long = [
        f"{p.relative_to(SRC)}: {n}"
        for p in SRC.rglob("*.py")
        if "_proto" not in p.parts and (n := len(p.read_text().splitlines())) > 600
    ]
    assert long == []


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
