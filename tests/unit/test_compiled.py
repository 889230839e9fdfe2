"""Compiled kernels are cached per version of their source, so an edited kernel is never stale."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from rebal.compiled import PACKAGE, cache_root, remove_stale_caches, source_digest


def test_the_running_cache_is_the_one_of_this_source() -> None:
    assert Path(numba.config.CACHE_DIR) == cache_root() / source_digest()


def test_a_change_to_any_compiled_module_moves_the_cache(tmp_path: Path) -> None:
    copy = tmp_path / "rebal"
    for name in ("core", "backtest"):
        shutil.copytree(PACKAGE / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest(copy)
    assert before == source_digest(PACKAGE)
    kernels = copy / "core" / "kernels.py"
    kernels.write_text(kernels.read_text() + "\n# a change\n")
    assert source_digest(copy) != before
    # A module other than the caller's: numba's own check would miss it; the digest does not.
    (copy / "core" / "kernels.py").write_text((PACKAGE / "core" / "kernels.py").read_text())
    assert source_digest(copy) == before


def test_the_cache_honours_numba_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path


def test_warmup_removes_only_the_caches_of_other_versions(tmp_path: Path) -> None:
    current = tmp_path / "0123456789abcdef"
    old = tmp_path / "fedcba9876543210"
    other = tmp_path / "notes"
    for path in (current, old, other):
        path.mkdir()
    assert remove_stale_caches(current) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0123456789abcdef", "notes"]


def _in_a_fresh_interpreter(code: str) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_importing_the_core_hashes_no_file() -> None:
    """The digest is the entry points' job: the core's import reads no source file."""
    code = (
        "import sys, numba; import rebal.core.engine, rebal.services.usecases; "
        "print('rebal.compiled' in sys.modules, repr(numba.config.CACHE_DIR))"
    )
    assert _in_a_fresh_interpreter(code) == "False ''"


@pytest.mark.parametrize("entry", ["rebal.cli.main", "rebal.api", "rebal.warmup"])
def test_every_entry_point_uses_the_versioned_cache(entry: str) -> None:
    code = f"import numba, {entry}; print(numba.config.CACHE_DIR)"
    assert _in_a_fresh_interpreter(code).endswith(source_digest())
