"""The simulated broker, the default adapter of :mod:`rebal.ports.broker` (``docs/broker.md``).

A counterparty with its own ledger (:mod:`.tables`), its market's hours from a calendar, prices
from a price source, time from a clock, and seeded, reproducible faults (:mod:`.settings`).
"""

from rebal.adapters.brokers.simulated.broker import SimulatedBroker
from rebal.adapters.brokers.simulated.ledger import LedgerMissing, SimulatedLedger
from rebal.adapters.brokers.simulated.settings import (
    SettingsError,
    SimulatorSettings,
    load_settings,
)

__all__ = [
    "LedgerMissing",
    "SettingsError",
    "SimulatedBroker",
    "SimulatedLedger",
    "SimulatorSettings",
    "load_settings",
]
