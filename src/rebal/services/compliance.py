"""Pre-trade compliance as a use case: gather the facts from the ports, run the rules.

The run layer calls :func:`check_orders` before it sends a run's orders and again before each
buy leg (after the sells have filled). Each fact comes from where it is kept: market hours from
the calendar port, cash, buying power, positions and the day's earlier orders from the broker,
quotes from the price source, the account's status and restrictions from rebal's own record, the
household's recent trades from the tax layer's history. A port that cannot answer (the broker
unreachable, the calendar not covering the date) leaves its fact unknown, and the rules block on
it; nothing here decides anything. ``now`` is passed in: this module reads no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TypeVar

from rebal.compliance.codes import Code
from rebal.compliance.facts import AccountFacts, Limits, MarketFacts
from rebal.compliance.hours import RunKind, postponed_to
from rebal.compliance.rules import ComplianceReport, Violation, check, orders_of_day
from rebal.domain.account import Account
from rebal.domain.ids import Symbol
from rebal.domain.order import Order
from rebal.ports.broker import Broker, BrokerError
from rebal.ports.calendar import CalendarUnavailable, MarketCalendar
from rebal.ports.prices import PriceSource
from rebal.tax.wash_sales import Transaction, WashGuard

#: How far back (and ahead) the calendar is asked for the previous close (the next open): more
#: than any run of days without a session.
_LOOKBACK = timedelta(days=10)


_A = TypeVar("_A")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    """Where the facts come from."""

    calendar: MarketCalendar
    broker: Broker
    prices: PriceSource


@dataclass(frozen=True, slots=True, kw_only=True)
class Household:
    """The household's trades the wash-sale rule reads (``None``: not known, buys are blocked)
    and the groups of substantially identical securities."""

    history: Sequence[Transaction] | None
    identical: Collection[Collection[str]] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Decision:
    """A checked run: its report and, for a scheduled run blocked by a pattern day trade, the
    next session's open it is postponed to (``None`` otherwise)."""

    report: ComplianceReport
    postponed_to: datetime | None


def _session_day(calendar: MarketCalendar, now: datetime) -> date | None:
    """The trading day an order sent at ``now`` works in; ``None`` when the calendar cannot say."""
    try:
        return calendar.next_session(now).day
    except CalendarUnavailable:
        return None


def _previous_close(calendar: MarketCalendar, now: datetime) -> datetime | None:
    """The last close at or before ``now``: where the current trading day starts."""
    try:
        sessions = calendar.sessions(now.date() - _LOOKBACK, now.date())
    except CalendarUnavailable:
        return None
    closes = [s.close for s in sessions if s.close <= now]
    return closes[-1] if closes else None


def _ask(question: Callable[[], _A]) -> _A | None:
    """The broker's answer, ``None`` when it gives none (unreachable, an account it does not
    keep): an unknown fact, for the rules to block on."""
    try:
        return question()
    except BrokerError:
        return None


def market_facts(ports: Ports, now: datetime, symbols: Iterable[Symbol]) -> MarketFacts:
    """Whether the market is open at ``now`` and the latest quotes of ``symbols``."""
    try:
        market_open: bool | None = ports.calendar.is_open(now)
    except CalendarUnavailable:
        market_open = None
    quotes = ports.prices.quotes(sorted(set(symbols)), now)
    return MarketFacts(now=now, market_open=market_open, prices=dict(quotes))


def account_facts(
    ports: Ports, account: Account, now: datetime, household: Household
) -> AccountFacts:
    """What the broker, the calendar and rebal's records say of ``account`` at ``now``."""
    broker, calendar = ports.broker, ports.calendar
    day_start = _previous_close(calendar, now)
    day_orders = None
    if day_start is not None:
        sent = _ask(lambda: broker.orders(account.id))
        day_orders = None if sent is None else orders_of_day(sent, day_start, now)
    positions = _ask(lambda: broker.positions(account.id))
    day = _session_day(calendar, now)
    guard = None
    if household.history is not None and day is not None:
        guard = WashGuard.from_history(household.history, day, household.identical)
    return AccountFacts(
        account=account.id,
        household=account.household or account.id,
        can_trade=account.can_trade and account.closed_at is None,
        cash=_ask(lambda: broker.cash(account.id)),
        buying_power=_ask(lambda: broker.buying_power(account.id)),
        positions=None if positions is None else dict(positions),
        day_orders=day_orders,
        wash_guard=guard,
    )


def check_orders(
    orders: Sequence[Order],
    *,
    account: Account,
    now: datetime,
    ports: Ports,
    limits: Limits,
    household: Household,
    kind: RunKind = RunKind.SCHEDULED,
) -> Decision:
    """Check ``account``'s ``orders`` at ``now`` against every rule (the account's own
    restricted securities added to the firm's), and say where a scheduled run blocked by a
    pattern day trade goes."""
    facts = account_facts(ports, account, now, household)
    held = facts.positions or {}
    market = market_facts(ports, now, [*(o.symbol for o in orders), *held])
    own = replace(limits, restricted=limits.restricted | account.restricted)
    report = check(orders, facts, market, own)
    if Code.PATTERN_DAY_TRADE not in report.codes or kind is RunKind.INSTANT:
        return Decision(report, None)
    try:
        later = postponed_to(kind, now, ports.calendar.sessions(now.date(), now.date() + _LOOKBACK))
    except LookupError as exc:  # the calendar does not reach the next session
        unplaced = Violation(Code.PATTERN_DAY_TRADE, f"the run cannot be postponed: {exc}")
        return Decision(replace(report, violations=(*report.violations, unplaced)), None)
    return Decision(report, later)
