"""Accounts, the models they follow, and what they hold.

A model is versioned: a change of targets is a new :class:`ModelVersion`, the old one kept for
history, so a proposal or a run can always say which targets it traded to. Weights and band widths
are exact ``Decimal`` fractions (0.4 = 40 %), as given in percent at the edges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from rebal.domain.money import NO_MONEY, Money, Quantity, check_cents, check_quantity


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
    closed_at: datetime | None = None  # set when the book no longer holds the account
    firm: FirmId = DEFAULT_FIRM

    def __post_init__(self) -> None:
        check_cents(self.cash, f"cash of {self.id}")
        check_cents(self.pending_cash, f"pending cash of {self.id}")
        if self.closed_at is not None and self.closed_at.tzinfo is None:
            raise ValueError(f"closing time of {self.id} must be timezone-aware")


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
        check_quantity(self.quantity, f"quantity of {self.symbol} in {self.account}")
        check_cents(self.cost_basis, f"cost basis of {self.symbol} in {self.account}")


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


def positions_of(holdings: Iterable[Holding]) -> dict[Symbol, Quantity]:
    """Shares per symbol of one account's holdings (the sum of its rows), in holding order."""
    held: dict[Symbol, Quantity] = {}
    for h in holdings:
        held[h.symbol] = Quantity(held.get(h.symbol, Decimal(0)) + h.quantity)
    return held


def lots_of(account: AccountId, holdings: Iterable[Holding]) -> tuple[TaxLot, ...]:
    """The holdings of ``account`` that are tax lots (a cost basis and an acquired date), each
    named ``ACCOUNT/N`` by its place among the holdings (from 1)."""
    return tuple(
        TaxLot(
            id=LotId(f"{account}/{n}"),
            account=account,
            symbol=h.symbol,
            quantity=h.quantity,
            cost_basis=h.cost_basis,
            acquired=h.acquired,
        )
        for n, h in enumerate(holdings, start=1)
        if h.cost_basis is not None and h.acquired is not None
    )


def check_new_quotes(quotes: Iterable[Price], current: Mapping[Symbol, Price]) -> None:
    """Raise ``ValueError`` unless ``quotes`` name each symbol once and none is older than its
    symbol's ``current`` quote (history is recorded forwards)."""
    seen: set[Symbol] = set()
    for quote in quotes:
        if quote.symbol in seen:
            raise ValueError(f"two quotes of {quote.symbol} given at once")
        seen.add(quote.symbol)
        held = current.get(quote.symbol)
        if held is not None and quote.at < held.at:
            raise ValueError(
                f"quote of {quote.symbol} at {quote.at.isoformat()} is older than the current "
                f"one ({held.at.isoformat()})"
            )
