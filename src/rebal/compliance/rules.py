"""The pre-trade checks: pure rules over the facts of :mod:`rebal.compliance.facts`.

:func:`check` runs every rule on a run's orders (or on one buy leg) and collects every
violation, not the first only; a report with any violation must not be sent. Each rule fails
closed: a fact it needs that is unknown (``None``, or a price the source did not quote) is a
violation of its code whose message says what is missing. Money is exact: amounts are
``Decimal`` cents computed once by :func:`rebal.domain.money.amount_of`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from rebal.compliance.codes import Code
from rebal.compliance.facts import AccountFacts, Limits, MarketFacts
from rebal.domain.account import Price
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import NO_MONEY, Money, amount_of
from rebal.domain.order import Order, OrderState, OrderType, Side, TimeInForce
from rebal.ports.broker import BrokerOrder


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason not to send: its stable ``code``, a one-line ``message``, and the security
    and order it concerns when it concerns one."""

    code: Code
    message: str
    symbol: Symbol | None = None
    order: ClientOrderId | None = None


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """Every violation found for ``account``'s orders at ``checked_at``."""

    account: AccountId
    checked_at: datetime
    violations: tuple[Violation, ...]

    @property
    def passed(self) -> bool:
        """Whether the orders may be sent (no violation at all)."""
        return not self.violations

    @property
    def codes(self) -> frozenset[Code]:
        """The codes violated."""
        return frozenset(v.code for v in self.violations)

    def to_row(self) -> dict[str, Any]:
        """The report as a JSON row (``account``, ``checked_at``, ``passed``, ``violations``)."""
        return {
            "account": self.account,
            "checked_at": self.checked_at,
            "passed": self.passed,
            "violations": [
                {"code": str(v.code), "message": v.message, "symbol": v.symbol, "order": v.order}
                for v in self.violations
            ],
        }


@dataclass(frozen=True, slots=True)
class _Check:
    """What every rule reads."""

    orders: Sequence[Order]
    account: AccountFacts
    market: MarketFacts
    limits: Limits
    resized_buys: bool = False

    def price(self, symbol: Symbol) -> Price | None:
        return self.market.prices.get(symbol)

    def value(self, order: Order) -> Money | None:
        """The order's money: its notional, or its shares at the quoted price."""
        if order.notional is not None:
            return order.notional
        quote = self.price(order.symbol)
        assert order.quantity is not None
        return None if quote is None else amount_of(order.quantity, quote.price)

    def shares(self, order: Order) -> Decimal | None:
        """The order's shares: its quantity, or its notional at the quoted price."""
        if order.quantity is not None:
            return order.quantity
        quote = self.price(order.symbol)
        assert order.notional is not None
        return None if quote is None else order.notional / quote.price

    def side(self, side: Side) -> list[Order]:
        return [o for o in self.orders if o.side is side]


Rule = Callable[[_Check], Iterable[Violation]]
_O = TypeVar("_O", Order, BrokerOrder)


def _market_closed(c: _Check) -> Iterable[Violation]:
    """Regular orders (and a check of no orders) need the regular session; orders flagged
    extended-hours the extended hours around it."""
    now = c.market.now.isoformat()
    if not c.orders or any(not o.extended_hours for o in c.orders):
        if c.market.market_open is None:
            yield Violation(Code.MARKET_CLOSED, f"no market calendar for {now}: hours unknown")
        elif not c.market.market_open:
            yield Violation(Code.MARKET_CLOSED, f"the market is closed at {now}")
    if not any(o.extended_hours for o in c.orders):
        return
    window = c.market.extended_hours
    if window is None:
        yield Violation(Code.MARKET_CLOSED, f"no market calendar for {now}: extended hours unknown")
    elif not window.holds(c.market.now):
        yield Violation(
            Code.MARKET_CLOSED,
            f"the market is closed at {now}, outside extended hours (the next are"
            f" {window.start.isoformat()} to {window.end.isoformat()})",
        )


def _extended_limit_only(c: _Check) -> Iterable[Violation]:
    for order in c.orders:
        if order.extended_hours and (
            order.type is not OrderType.LIMIT or order.time_in_force is not TimeInForce.DAY
        ):
            yield Violation(
                Code.EXTENDED_HOURS_LIMIT_ONLY,
                f"{order.side} of {order.symbol} is flagged extended-hours but is not a limit"
                f" order good for the day ({order.type}, {order.time_in_force}): extended"
                " hours take only those",
                order.symbol,
                order.client_order_id,
            )


def _cannot_trade(c: _Check) -> Iterable[Violation]:
    if c.account.can_trade is None:
        yield Violation(
            Code.ACCOUNT_CANNOT_TRADE, f"account {c.account.account}: trading status unknown"
        )
    elif not c.account.can_trade:
        yield Violation(
            Code.ACCOUNT_CANNOT_TRADE, f"account {c.account.account} is not allowed to trade"
        )


def _unfunded(c: _Check) -> Iterable[Violation]:
    account = c.account
    if account.cash is None or account.positions is None:
        missing = "cash" if account.cash is None else "positions"
        yield Violation(Code.UNFUNDED, f"account {account.account}: {missing} unknown")
    elif account.cash <= 0 and not any(q > 0 for q in account.positions.values()):
        yield Violation(
            Code.UNFUNDED, f"account {account.account} holds no cash and no shares to rebalance"
        )


def _buying_power(c: _Check) -> Iterable[Violation]:
    buys = c.side(Side.BUY)
    if not buys:
        return
    if c.account.buying_power is None:
        yield Violation(
            Code.INSUFFICIENT_BUYING_POWER,
            f"account {c.account.account}: no buying power answer from the broker",
        )
        return
    if c.resized_buys:  # intents sized later to the cash raised: the buy leg checks the sum
        return
    needed = NO_MONEY
    for order in buys:
        value = c.value(order)
        if value is None:
            yield Violation(
                Code.INSUFFICIENT_BUYING_POWER,
                f"buy of {order.quantity} {order.symbol}: no price to cost it",
                order.symbol,
                order.client_order_id,
            )
            return
        needed = Money(needed + value)
    # Sells go first; their proceeds at the quoted price count (a sell with no price, none).
    proceeds = sum((c.value(o) or NO_MONEY for o in c.side(Side.SELL)), NO_MONEY)
    available = Money(c.account.buying_power + proceeds)
    if needed > available:
        yield Violation(
            Code.INSUFFICIENT_BUYING_POWER,
            f"account {c.account.account}: buys of {needed} exceed buying power"
            f" {c.account.buying_power} plus sell proceeds {proceeds}",
        )


def _restricted(c: _Check) -> Iterable[Violation]:
    for order in c.orders:
        if order.symbol in c.limits.restricted:
            yield Violation(
                Code.RESTRICTED_SECURITY,
                f"{order.symbol} is on the restricted list: no {order.side}",
                order.symbol,
                order.client_order_id,
            )


def _position_limit(c: _Check) -> Iterable[Violation]:
    limits, account = c.limits, c.account
    buys = c.side(Side.BUY)
    if not buys or (limits.max_security_weight is None and limits.max_issuer_weight is None):
        return
    if account.positions is None or account.cash is None:
        yield Violation(Code.POSITION_LIMIT, f"account {account.account}: holdings unknown")
        return
    after: dict[Symbol, Decimal] = defaultdict(Decimal)
    for symbol, quantity in account.positions.items():
        quote = c.price(symbol)
        if quote is None:
            yield Violation(
                Code.POSITION_LIMIT, f"no price for held {symbol}: account value unknown", symbol
            )
            return
        after[symbol] += amount_of(quantity, quote.price)
    total = account.cash + sum(after.values(), Decimal(0))
    if total <= 0:
        yield Violation(Code.POSITION_LIMIT, f"account {account.account} has no value to limit")
        return
    for order in c.orders:
        value = c.value(order)
        if value is None:
            yield Violation(
                Code.POSITION_LIMIT,
                f"no price for {order.symbol}",
                order.symbol,
                order.client_order_id,
            )
            return
        after[order.symbol] += value if order.side is Side.BUY else -value
    bought = list(dict.fromkeys(o.symbol for o in buys))
    if limits.max_security_weight is not None:
        for symbol in bought:
            weight = after[symbol] / total
            if weight > limits.max_security_weight:
                yield Violation(
                    Code.POSITION_LIMIT,
                    f"{symbol} would be {weight:.2%} of account {account.account},"
                    f" above the {limits.max_security_weight:.2%} limit per security",
                    symbol,
                )
    if limits.max_issuer_weight is not None:
        yield from _issuer_limit(c, bought, after, total, limits.max_issuer_weight)


def _issuer_limit(
    c: _Check, bought: list[Symbol], after: Mapping[Symbol, Decimal], total: Decimal, limit: Decimal
) -> Iterable[Violation]:
    issuers = c.limits.issuers
    seen: set[str] = set()
    for symbol in bought:
        issuer = issuers.get(symbol)
        if issuer is None:
            yield Violation(
                Code.POSITION_LIMIT,
                f"issuer of {symbol} unknown: the issuer limit cannot be checked",
                symbol,
            )
            continue
        if issuer in seen:
            continue
        seen.add(issuer)
        exposure = sum((v for s, v in after.items() if issuers.get(s) == issuer), Decimal(0))
        if exposure / total > limit:
            yield Violation(
                Code.POSITION_LIMIT,
                f"issuer {issuer} would be {exposure / total:.2%} of account {c.account.account},"
                f" above the {limit:.2%} limit per issuer",
                symbol,
            )


def _short_sale(c: _Check) -> Iterable[Violation]:
    sells = c.side(Side.SELL)
    if not sells:
        return
    if c.account.positions is None:
        yield Violation(Code.SHORT_SALE, f"account {c.account.account}: positions unknown")
        return
    selling: dict[Symbol, Decimal] = defaultdict(Decimal)
    for order in sells:
        shares = c.shares(order)
        if shares is None:
            yield Violation(
                Code.SHORT_SALE,
                f"sell of {order.notional} of {order.symbol}: no price to count its shares",
                order.symbol,
                order.client_order_id,
            )
            continue
        selling[order.symbol] += shares
    for symbol, shares in selling.items():
        held = c.account.positions.get(symbol, Decimal(0))
        if shares > held:
            yield Violation(
                Code.SHORT_SALE,
                f"selling {shares} {symbol} with {held} held would sell short",
                symbol,
            )


def _stale_price(c: _Check) -> Iterable[Violation]:
    now, oldest = c.market.now, c.limits.max_price_age
    for symbol in dict.fromkeys(o.symbol for o in c.orders):
        quote = c.price(symbol)
        if quote is None:
            yield Violation(Code.STALE_PRICE, f"no price for {symbol}", symbol)
        elif quote.at > now:
            yield Violation(
                Code.STALE_PRICE,
                f"the price of {symbol} is quoted at {quote.at.isoformat()}, after the check",
                symbol,
            )
        elif now - quote.at > oldest:
            yield Violation(
                Code.STALE_PRICE,
                f"the price of {symbol} is from {quote.at.isoformat()}, older than {oldest}",
                symbol,
            )


def _washes(bought: Symbol, amount: Decimal, sold: str, account: str, day: date) -> Violation:
    """The wash sale of buying ``bought``: it would wash the loss of ``amount`` realised selling
    ``sold`` in ``account`` on ``day``."""
    return Violation(
        Code.WASH_SALE,
        f"buying {bought} would wash the loss of {amount} realised selling {sold}"
        f" in account {account} on {day}",
        bought,
    )


def _wash_sale(c: _Check) -> Iterable[Violation]:
    guard, household = c.account.wash_guard, c.account.household
    for symbol in dict.fromkeys(o.symbol for o in c.side(Side.BUY)):
        if guard is None:
            yield Violation(
                Code.WASH_SALE,
                f"household {household}: recent sales unknown, {symbol} not bought",
                symbol,
            )
            continue
        loss = guard.buy_blocker(household, symbol)
        if loss is not None:
            amount = loss.basis - loss.proceeds - loss.disallowed
            yield _washes(symbol, amount, loss.symbol, loss.account, loss.sold)
            continue
        recorded = next(
            (r for r in c.account.realised_losses if guard.same_security(r.symbol, symbol)), None
        )
        if recorded is not None:
            yield _washes(symbol, recorded.amount, recorded.symbol, recorded.account, recorded.sold)
            continue
        unknown = next(
            (s for s in c.account.unknown_gain_sales if guard.same_security(s.symbol, symbol)),
            None,
        )
        if unknown is not None:
            yield Violation(
                Code.WASH_SALE,
                f"buying {symbol} may wash a loss: {unknown.symbol} was sold in account"
                f" {unknown.account} on {unknown.sold} and the gain or loss of that sale is"
                " not known",
                symbol,
            )


def _day_trade(c: _Check) -> Iterable[Violation]:
    if not c.orders:
        return
    earlier = c.account.day_orders
    if earlier is None:
        yield Violation(
            Code.PATTERN_DAY_TRADE, f"account {c.account.account}: today's earlier orders unknown"
        )
        return
    sides: dict[Symbol, set[Side]] = defaultdict(set)
    before: dict[Symbol, set[Side]] = defaultdict(set)
    for order in earlier:
        if order.account == c.account.account and counts_as_trade(order):
            sides[order.symbol].add(order.side)
            before[order.symbol].add(order.side)
    for order in c.orders:
        sides[order.symbol].add(order.side)
    for symbol in dict.fromkeys(o.symbol for o in c.orders):
        if len(sides[symbol]) == 2:
            against = (
                " against an earlier run's " + "/".join(sorted(before[symbol]))
                if before[symbol]
                else ""
            )
            yield Violation(
                Code.PATTERN_DAY_TRADE,
                f"{symbol} would be bought and sold in one trading day{against}",
                symbol,
            )


#: Every rule, in the order its violations are reported.
RULES: tuple[Rule, ...] = (
    _market_closed,
    _extended_limit_only,
    _cannot_trade,
    _unfunded,
    _buying_power,
    _restricted,
    _position_limit,
    _short_sale,
    _stale_price,
    _wash_sale,
    _day_trade,
)


def counts_as_trade(order: Order | BrokerOrder) -> bool:
    """Whether an order placed earlier is a trade for the day-trade rule: it is working or has
    filled at least in part (a rejected order, or one that ended with no fill, traded nothing)."""
    if order.state is OrderState.REJECTED:
        return False
    return not order.state.terminal or order.filled_quantity > 0


def orders_of_day(orders: Iterable[_O], after: datetime, until: datetime) -> tuple[_O, ...]:
    """The orders sent in one trading day: after the previous session's close ``after`` and no
    later than ``until`` (the check's instant), by their ``submitted_at``; an order never sent
    is not among them."""
    return tuple(
        o for o in orders if o.submitted_at is not None and after < o.submitted_at <= until
    )


def check(
    orders: Sequence[Order],
    account: AccountFacts,
    market: MarketFacts,
    limits: Limits,
    *,
    resized_buys: bool = False,
) -> ComplianceReport:
    """Every violation of every rule for ``account``'s ``orders`` (a whole run before anything
    is sent, or one buy leg) at ``market.now``. With ``resized_buys`` the buys are intents the
    run will size down to the cash its sells raise and the buying power: their sum is not held
    against the buying power (the check of the sized buys does that), but the buying power
    must still be known."""
    strangers = sorted({o.client_order_id for o in orders if o.account != account.account})
    if strangers:
        raise ValueError(f"orders {', '.join(strangers)} are not of account {account.account}")
    facts = _Check(orders, account, market, limits, resized_buys)
    found = tuple(v for rule in RULES for v in rule(facts))
    return ComplianceReport(account.account, market.now, found)
