"""rebal: portfolio rebalancing over a whole book of accounts.

Importing rebal reads no file and imports no numba: the entry points (the command line, the
Python API, ``python -m rebal.warmup``, the benchmarks) point numba's cache at the directory of
this version of the compiled source first, by importing :mod:`rebal.versioned_cache`.
"""

__version__ = "0.1.0"
