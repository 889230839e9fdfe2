"""Cash flows: money announced to come into an account (a deposit, positive) or to go out of it
(a withdrawal, negative) that has not happened yet.

An account's pending cash (``Account.pending_cash``, the ``pending_cash`` column of
accounts.csv) is the sum of its pending flows. A flow ends settled (the money moved) or
canceled; it is never deleted, so the store can always say what was announced and when.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from rebal.domain.ids import AccountId, CashFlowId
from rebal.domain.money import NO_MONEY, Money, check_cents

#: The note of the flow that restates an account's pending cash when the account is saved with
#: another amount (an import of accounts.csv): the flows pending before are canceled.
RESTATED = "pending cash restated"


class CashFlowState(StrEnum):
    """Where a flow is: still expected, done, or called off."""

    PENDING = "pending"
    SETTLED = "settled"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True, kw_only=True)
class CashFlow:
    """One announced deposit (amount > 0) or withdrawal (amount < 0) of one account."""

    id: CashFlowId
    account: AccountId
    amount: Money
    created_at: datetime
    state: CashFlowState = CashFlowState.PENDING
    closed_at: datetime | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not self.amount:
            raise ValueError(f"cash flow {self.id} of {self.account} has no amount")
        check_cents(self.amount, f"cash flow {self.id}")
        if (self.state is CashFlowState.PENDING) != (self.closed_at is None):
            raise ValueError(f"cash flow {self.id}: a closed flow has a closing time, no other")


def pending_total(flows: Iterable[CashFlow]) -> Money:
    """The pending cash of an account: the sum of its pending flows."""
    return Money(sum((f.amount for f in flows if f.state is CashFlowState.PENDING), NO_MONEY))
