"""Executors: where independent pieces of work run (threads on this machine today)."""
