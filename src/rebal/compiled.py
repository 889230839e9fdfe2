"""Where numba keeps rebal's compiled kernels: a directory per version of the compiled source.

numba's on-disk cache checks only the file a function is defined in. The backtest loop and the
core's book-wide runs call kernels of :mod:`rebal.core.kernels`, so after a change to a kernel
(an upgrade, an edit) their cached machine code would still run the old kernel. Keying the
cache directory on a digest of every module that defines compiled code makes any such change
start a fresh cache; ``python -m rebal.warmup`` fills it and removes the caches of older
versions.

The digest is computed at the edge: entry points import :mod:`rebal.versioned_cache` before any
kernel is defined; importing the core reads no file.

The directory is ``$NUMBA_CACHE_DIR/<digest>`` when that variable is set, else
``$XDG_CACHE_HOME/rebal/numba/<digest>`` (``~/.cache`` when unset).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

#: The packages whose modules define compiled (numba) functions.
COMPILED_PACKAGES = ("core", "backtest")

DIGEST_LENGTH = 16
#: The module whose decorator compiles every kernel (the core's and the lab's).
KERNEL_MODULE = "rebal.core.kernels"

PACKAGE = Path(__file__).parent


def source_digest(package: Path = PACKAGE) -> str:
    """A digest of the source of every module of ``package`` that defines compiled functions."""
    digest = hashlib.sha256()
    for name in COMPILED_PACKAGES:
        for path in sorted((package / name).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:DIGEST_LENGTH]


def cache_root() -> Path:
    """The directory holding one cache per source digest."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rebal" / "numba"


def use_versioned_cache() -> Path | None:
    """Point numba's cache at this source's directory and return it. It must run before the
    kernels are defined: once :data:`KERNEL_MODULE` is imported they keep the cache they were
    given (numba's default), and this changes nothing and returns None."""
    if KERNEL_MODULE in sys.modules:
        return None
    import numba

    path = cache_root() / source_digest()
    numba.config.CACHE_DIR = str(path)  # type: ignore[attr-defined]
    return path


def remove_stale_caches(current: Path) -> list[Path]:
    """Delete the caches of other source versions next to ``current``; return what went."""
    stale = [
        p
        for p in current.parent.iterdir()
        if p != current and p.is_dir() and len(p.name) == DIGEST_LENGTH and _is_hex(p.name)
    ]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def _is_hex(name: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in name)
