"""What a pre-trade check knows: typed, frozen facts, each of which may be unknown.

A fact the use case could not establish is ``None`` (no answer from the broker, no calendar for
the date, no record of today's orders); a price the source did not quote is absent from
``prices``. The rules read ``None`` as "unknown" and block with the reason, never as zero or
"allowed". The limits are the firm's configuration (:class:`Limits`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final

from rebal.compliance.hours import Window
from rebal.domain.account import Price
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order
from rebal.ports.broker import BrokerOrder
from rebal.tax.wash_sales import WashGuard

#: How old a quote may be when none is configured.
DEFAULT_MAX_PRICE_AGE: Final = timedelta(minutes=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The firm's pre-trade limits.

    ``max_security_weight`` and ``max_issuer_weight`` are fractions of the account's value (0.25
    for 25 %) that a buy may not take one security, or the securities of one issuer, above;
    ``None`` sets no limit. ``issuers`` maps a symbol to its issuer (share classes, an issuer's
    bonds and shares); with an issuer limit set, a bought symbol with no issuer is blocked.
    """

    restricted: frozenset[Symbol] = frozenset()
    max_security_weight: Decimal | None = None
    max_issuer_weight: Decimal | None = None
    issuers: Mapping[Symbol, str] = field(default_factory=dict)
    max_price_age: timedelta = DEFAULT_MAX_PRICE_AGE

    def __post_init__(self) -> None:
        for name in ("max_security_weight", "max_issuer_weight"):
            value = getattr(self, name)
            if value is not None and not Decimal(0) < value <= Decimal(1):
                raise ValueError(f"{name} must be a fraction in (0, 1], not {value}")
        if self.max_price_age < timedelta(0):
            raise ValueError(f"max_price_age must not be negative, not {self.max_price_age}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketFacts:
    """The market at the instant of the check: ``now`` (timezone-aware), whether the market is
    open then (``None``: the calendar has no answer for the date), the latest quotes, and the
    extended hours of the session trading at ``now`` or next to
    (:func:`rebal.compliance.hours.extended_window`; ``None``: the calendar has no answer, and
    an extended-hours order is blocked)."""

    now: datetime
    market_open: bool | None
    prices: Mapping[Symbol, Price]
    extended_hours: Window | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("the check's instant must be timezone-aware")


@dataclass(frozen=True, slots=True)
class UnknownGainSale:
    """A sale in the household, inside the wash-sale window, whose gain or loss is not known
    (about to be sent and not estimated at a clear gain, or recorded without the basis of the
    lots it sold: lots never imported): a loss, and so a wash sale by buying the security back,
    cannot be ruled out."""

    account: AccountId
    symbol: Symbol
    sold: date


@dataclass(frozen=True, slots=True)
class RealisedLoss:
    """A loss realised in a taxable account of the household inside the wash-sale window, as
    rebal recorded it when the sale's lots were relieved: ``amount`` (positive) is the sum of
    the losses of the lots that account's sales of ``symbol`` relieved at a loss on ``sold``."""

    account: AccountId
    symbol: Symbol
    sold: date
    amount: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountFacts:
    """One account as the broker and rebal's records know it.

    ``can_trade``: whether the account may trade (not frozen, closed or restricted).
    ``cash``, ``buying_power``, ``positions``: the broker's answers. ``day_orders``: the orders
    already placed for the account in the current trading day (earlier runs', as rebal stored
    them or as the broker reports them), see
    :func:`rebal.compliance.rules.orders_of_day`. ``wash_guard``: the household's recent trades
    as the tax layer reads them; only buys need it. ``realised_losses``: the losses rebal
    recorded in the household's taxable accounts in the wash-sale window; a buy of the same (or
    a substantially identical) security would wash them. ``unknown_gain_sales``: the
    household's sales in the wash-sale window whose gain or loss nobody knows; such a buy is
    blocked as a possible wash sale.
    """

    account: AccountId
    household: str
    can_trade: bool | None
    cash: Money | None
    buying_power: Money | None
    positions: Mapping[Symbol, Quantity] | None
    day_orders: tuple[Order | BrokerOrder, ...] | None
    wash_guard: WashGuard | None
    realised_losses: tuple[RealisedLoss, ...] = ()
    unknown_gain_sales: tuple[UnknownGainSale, ...] = ()
