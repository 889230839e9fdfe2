"""What each sell fill realised, lot by lot, on the database
(:class:`rebal.ports.storage.RealisedRepository`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.repositories import SqlRepository
from rebal.domain.audit import AuditAction, Entity
from rebal.domain.ids import AccountId, FillId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.tax.realised import RealisedLot


def _lot(row: sa.Row[Any]) -> RealisedLot:
    return RealisedLot(
        fill=FillId(row.fill_id),
        part=row.part,
        account=AccountId(row.account_id),
        symbol=Symbol(row.symbol),
        sold=row.sold,
        quantity=Quantity(row.quantity),
        proceeds=Money(row.proceeds),
        basis=None if row.basis is None else Money(row.basis),
        acquired=row.acquired,
    )


class SqlRealised(SqlRepository):
    """:class:`rebal.ports.storage.RealisedRepository` in ``realised_lots``: a part recorded
    twice is a duplicate key (a conflict), a part of a fill not stored a missing reference."""

    def add(self, lots: Sequence[RealisedLot]) -> None:
        self._uow.insert(
            t.realised_lots,
            [
                {
                    "firm_id": self._firm,
                    "fill_id": lot.fill,
                    "part": lot.part,
                    "account_id": lot.account,
                    "symbol": lot.symbol,
                    "sold": lot.sold,
                    "quantity": lot.quantity,
                    "proceeds": lot.proceeds,
                    "basis": lot.basis,
                    "acquired": lot.acquired,
                }
                for lot in lots
            ],
        )
        for lot in lots:
            self._uow.record(
                AuditAction.CREATE, Entity.REALISED, f"{lot.fill}/{lot.part}", None, lot
            )

    def since(self, day: date) -> Sequence[RealisedLot]:
        r = t.realised_lots
        return [
            _lot(row)
            for row in self._rows(
                sa.select(r)
                .where(r.c.firm_id == self._firm, r.c.sold >= day)
                .order_by(r.c.fill_id, r.c.part)
            )
        ]
