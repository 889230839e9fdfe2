"""The core stays pure: no clock, no files, no printing (the import contract covers imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import rebal.core

FORBIDDEN_CALLS = {"open", "print", "input", "now", "today", "utcnow", "time", "perf_counter"}


def test_core_modules_read_no_clock_and_do_no_io():
    offenders = []
    for path in Path(rebal.core.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in FORBIDDEN_CALLS:
                    offenders.append(f"{path.name}:{node.lineno} calls {name}()")
    assert offenders == []


#: Modules the core may not import: parallelism and the machine's resources belong to the
#: entry points, which pass an executor in.
FORBIDDEN_IMPORTS = {"os", "concurrent", "threading", "multiprocessing", "subprocess", "socket"}


def test_core_modules_start_no_threads_and_read_no_machine():
    offenders = []
    for path in Path(rebal.core.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [
                f"{path.name}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] in FORBIDDEN_IMPORTS
            ]
    assert offenders == []
