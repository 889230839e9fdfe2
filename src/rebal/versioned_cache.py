"""Importing this module points numba's cache at this source version's directory.

An entry point imports it before any module that defines compiled kernels (``import
rebal.versioned_cache`` sorts first among rebal's imports), so the source digest is computed
once, at the edge, and never when the core itself is imported (:mod:`rebal.compiled` says why
the cache is versioned). A program that imports the core without an entry point gets numba's
default cache, which numba keys on each kernel's own file.
"""

from __future__ import annotations

from rebal.compiled import use_versioned_cache

#: The cache directory of this run.
CACHE = use_versioned_cache()
