"""Proposals: what a rebalance proposed, as of when, and with which configuration.

A proposal is a record with an identity: its as-of instant, the configuration it ran with (as
canonical JSON text) and that configuration's digest, each account's status and the model
version it was measured against, and the orders proposed. A run trades a proposal; keeping the
proposal lets anyone see later what was intended and why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from rebal.domain.ids import DEFAULT_FIRM, AccountId, FirmId, ModelId, ProposalId, Symbol
from rebal.domain.money import Money, Quantity, check_cents, check_quantity
from rebal.domain.order import Side


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountProposal:
    """One account's outcome: its status (the core's status name), the reason in words, and the
    model version it was measured against (``None`` for an account without a model)."""

    account: AccountId
    status: str
    reason: str
    model: ModelId | None = None
    model_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposedOrder:
    """An order as proposed: sells in shares, buys in shares or a notional amount."""

    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Quantity | None = None
    notional: Money | None = None

    def __post_init__(self) -> None:
        if (self.quantity is None) == (self.notional is None):
            raise ValueError(
                f"proposed {self.side} of {self.symbol} in {self.account}: "
                "give a quantity or a notional, not both"
            )
        check_quantity(self.quantity, f"proposed {self.side} of {self.symbol}")
        check_cents(self.notional, f"proposed {self.side} of {self.symbol}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A proposal with its identity, configuration and outcome."""

    id: ProposalId
    as_of: datetime
    created_at: datetime
    config: str  # canonical JSON of the options it ran with
    accounts: tuple[AccountProposal, ...] = ()
    orders: tuple[ProposedOrder, ...] = ()
    firm: FirmId = DEFAULT_FIRM

    @property
    def digest(self) -> str:
        """SHA-256 of the configuration text: two proposals with one digest ran alike."""
        return hashlib.sha256(self.config.encode("utf-8")).hexdigest()
