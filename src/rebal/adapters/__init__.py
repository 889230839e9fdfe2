"""Adapters: the implementations of :mod:`rebal.ports` (files, the store, brokers, calendars,
executors). The only layer that does I/O besides the entry points."""
