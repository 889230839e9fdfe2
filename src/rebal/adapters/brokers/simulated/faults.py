"""Injected faults: which call or order meets which fault, drawn from the seed, and the log of
every fault injected.

A call fault (timeout, disconnect) is drawn per call from the seed, the operation, its subject
(a client order id or an account) and the simulated instant of the call, so a retry at a later
instant draws again while a replay of the same calls meets the same faults. An order fault
(acknowledgement lost, fills reported out of order) is drawn per client order id, a duplicate
fill report per fill id. Each setting's ``at_most`` bounds how many times its fault is injected,
counted in the ``sim_faults`` log, which survives a restart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from rebal.adapters.brokers.simulated import tables as t
from rebal.adapters.brokers.simulated.draws import happens
from rebal.adapters.brokers.simulated.settings import CallFault, OrderFault, SimulatorSettings


class Lost(StrEnum):
    """How a call that meets a fault goes wrong."""

    TIMEOUT = "timeout"  # done, answered too late
    BEFORE = "disconnect before reaching the broker"  # not done
    AFTER = "disconnect after reaching the broker"  # done, no answer


class Faults:
    """Draws faults from the settings and keeps their log."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings.faults
        self.seed = settings.seed

    def _allowed(self, conn: sa.Connection, kind: str, fault: CallFault | OrderFault) -> bool:
        if fault.at_most is None:
            return True
        count = conn.execute(
            sa.select(sa.func.count()).select_from(t.faults).where(t.faults.c.kind == kind)
        ).scalar_one()
        return int(count) < fault.at_most

    def record(
        self,
        conn: sa.Connection,
        at: datetime,
        kind: str,
        operation: str,
        subject: str,
        detail: str = "",
    ) -> None:
        """Log an injected fault."""
        conn.execute(
            sa.insert(t.faults).values(
                at=at, kind=kind, operation=operation, subject=subject, detail=detail
            )
        )

    def call(self, engine: sa.Engine, operation: str, subject: str, at: datetime) -> Lost | None:
        """The fault this call meets, if any (logged at once, in its own transaction)."""
        kinds: tuple[tuple[str, CallFault], ...] = (
            ("timeout", self.settings.timeout),
            ("disconnect", self.settings.disconnect),
        )
        for kind, fault in kinds:
            if operation not in fault.operations:
                continue
            if not happens(fault.probability, self.seed, kind, operation, subject, at.isoformat()):
                continue
            with engine.begin() as conn:
                if not self._allowed(conn, kind, fault):
                    continue
                if kind == "timeout":
                    lost = Lost.TIMEOUT
                else:
                    reached = happens(
                        self.settings.disconnect.reached,
                        self.seed,
                        "reached",
                        operation,
                        subject,
                        at.isoformat(),
                    )
                    lost = Lost.AFTER if reached else Lost.BEFORE
                self.record(conn, at, kind, operation, subject, lost.value)
            return lost
        return None

    def drawn(self, kind: str, subject: str) -> bool:
        """Whether the draw for the order (or fill) ``subject`` picks the report fault ``kind``
        (``ack_lost``, ``out_of_order_fills``, ``duplicate_fill_report``); nothing is logged."""
        fault: OrderFault = getattr(self.settings, kind)
        return happens(fault.probability, self.seed, kind, subject)

    def inject(self, conn: sa.Connection, kind: str, subject: str, at: datetime) -> bool:
        """Whether the report fault ``kind`` is injected into ``subject`` (drawn, and not yet
        injected ``at_most`` times); logged when it is."""
        fault: OrderFault = getattr(self.settings, kind)
        if not self.drawn(kind, subject) or not self._allowed(conn, kind, fault):
            return False
        operation = "fills" if kind == "duplicate_fill_report" else "submit"
        self.record(conn, at, kind, operation, subject)
        return True
