"""Accounts, the models they follow, and what they hold.

A model is versioned: a change of targets is a new :class:`ModelVersion`, the old one kept for
history, so a proposal or a run can always say which targets it traded to. Weights and band widths
are exact ``Decimal`` fractions (0.4 = 40 %), as given in percent at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from rebal.domain.ids import (
    CASH,
    DEFAULT_FIRM,
    AccountId,
    FirmId,
    HouseholdId,
    LotId,
    ModelId,
    Symbol,
)
from rebal.domain.money import NO_MONEY, Money, Quantity


class AccountType(StrEnum):
    """How an account is taxed."""

    TAXABLE = "taxable"
    IRA = "ira"
    ROTH = "roth"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One row of a model: a security (or :data:`~rebal.domain.ids.CASH`) and its weight, with
    optional per-security band and rail widths (fractions; ``None``: the run's)."""

    symbol: Symbol
    weight: Decimal
    band_abs: Decimal | None = None
    band_rel: Decimal | None = None
    rail_abs: Decimal | None = None
    rail_rel: Decimal | None = None

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.weight <= Decimal(1):
            raise ValueError(f"weight of {self.symbol} must be within 0-100 %, not {self.weight}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersion:
    """The targets of a model as of one version (1, 2, ...); weights sum to 100 %."""

    model: ModelId
    version: int
    targets: tuple[Target, ...]
    created_at: datetime
    firm: FirmId = DEFAULT_FIRM

    def __post_init__(self) -> None:
        total = sum((t.weight for t in self.targets), Decimal(0))
        if abs(total - 1) > Decimal("0.0001"):
            raise ValueError(f"weights of model {self.model} sum to {total * 100}%, not 100%")
        symbols = [t.symbol for t in self.targets]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"model {self.model} names a symbol twice")

    @property
    def cash_weight(self) -> Decimal | None:
        """The weight of the model's CASH row, ``None`` when it has none."""
        return next((t.weight for t in self.targets if t.symbol == CASH), None)

    def same_targets(self, other: ModelVersion) -> bool:
        """Whether ``other`` has the very targets of this version (a re-import changes nothing)."""
        return self.targets == other.targets


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """An account: the model it follows, how it is taxed, and what may be done with it."""

    id: AccountId
    model: ModelId | None
    cash: Money
    type: AccountType = AccountType.TAXABLE
    household: HouseholdId | None = None
    can_trade: bool = True
    restricted: frozenset[Symbol] = field(default_factory=frozenset)
    pending_cash: Money = NO_MONEY
    liquidate: bool = False
    firm: FirmId = DEFAULT_FIRM


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """A quantity of one security in one account; with a cost basis and an acquired date it is
    also a tax lot (one row of holdings.csv)."""

    account: AccountId
    symbol: Symbol
    quantity: Quantity
    cost_basis: Money | None = None
    acquired: date | None = None

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"quantity of {self.symbol} in {self.account} must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class TaxLot:
    """Shares bought together: their total cost basis and the date the holding period starts."""

    id: LotId
    account: AccountId
    symbol: Symbol
    quantity: Quantity
    cost_basis: Money
    acquired: date


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """A quoted price of a security and the instant it was quoted (timezone-aware)."""

    symbol: Symbol
    price: Decimal
    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a price's time must be timezone-aware")
        if not self.price > 0:
            raise ValueError(f"price of {self.symbol} must be positive, not {self.price}")
