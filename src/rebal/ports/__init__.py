"""Ports: every way rebal touches the outside world, as small typed protocols.

Use cases depend on these, never on an adapter; the entry points choose the adapters (the
simulated or a real broker, SQLite or PostgreSQL, the exchange calendar, threads or Dask) and
pass them in. Each port has an in-memory implementation for tests in
:mod:`rebal.adapters.memory`.
"""
