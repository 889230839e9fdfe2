"""Pre-trade compliance as a use case: gather the facts from the ports, run the rules.

The run layer calls :func:`check_orders` before it sends a run's orders and again before each
buy leg (after the sells have filled). Each fact comes from where it is kept: market hours from
the calendar port, cash, buying power, positions and the day's earlier orders from the broker,
quotes from the price source, the account's status and restrictions from rebal's own record, the
household's recent trades from the tax layer's history. A port that cannot answer (the broker
unreachable, the calendar not covering the date) leaves its fact unknown, and the rules block on
it; nothing here decides anything. ``now`` is passed in: this module reads no clock.

:func:`check_leg` is what a run calls: it reads from the store what rebal recorded (the accounts,
their households, the orders of earlier runs that trading day, the household's recent sales) and
checks each account's orders of the leg. :class:`ComplianceConfig` is the firm's configuration
(``rebal run --compliance-config FILE``, keys in ``docs/compliance.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rebal.compliance.codes import Code
from rebal.compliance.facts import (
    DEFAULT_MAX_PRICE_AGE,
    AccountFacts,
    Limits,
    MarketFacts,
    RealisedLoss,
    UnknownGainSale,
)
from rebal.compliance.hours import AFTER_HOURS, RunKind, extended_window, postponed_to
from rebal.compliance.rules import ComplianceReport, Violation, check, orders_of_day
from rebal.domain.account import Account, Holding, Price
from rebal.domain.ids import AccountId, ClientOrderId, FillId, Symbol, symbol
from rebal.domain.money import amount_of
from rebal.domain.order import Order, Side
from rebal.domain.run import Run, RunEvent, RunState
from rebal.ports.broker import AccountReport, Broker, BrokerError, ReportsAccounts
from rebal.ports.calendar import CalendarUnavailable, MarketCalendar
from rebal.ports.prices import PriceSource
from rebal.ports.storage import Store
from rebal.services.runs import EXCHANGE_TZ
from rebal.tax.rates import AccountType as TaxAccountType
from rebal.tax.realised import RealisedLot, realised_lots, relieve_sale
from rebal.tax.wash_sales import WINDOW_DAYS, Transaction, WashGuard

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
    #: losses rebal recorded in the wash-sale window (see RealisedLoss)
    losses: tuple[RealisedLoss, ...] = ()
    #: sales in the wash-sale window whose gain or loss is not known (see UnknownGainSale)
    unknown_gain: tuple[UnknownGainSale, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """A checked run: its report and, for a scheduled run blocked by a pattern day trade, the
    next session's open it is postponed to (``None`` otherwise)."""

    report: ComplianceReport
    postponed_to: datetime | None


def _known(question: Callable[[], _A]) -> _A | None:
    """The calendar's answer, ``None`` when it has none for the date (a fact unknown)."""
    try:
        return question()
    except CalendarUnavailable:
        return None


def _session_day(calendar: MarketCalendar, now: datetime) -> date | None:
    """The trading day an order sent at ``now`` works in; ``None`` when the calendar cannot say."""
    return _known(lambda: calendar.next_session(now).day)


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
    """Whether the market is open at ``now``, the latest quotes of ``symbols``, and the extended
    hours of the session whose after-hours has not ended at ``now`` (the one trading, or the
    next: :func:`rebal.compliance.hours.extended_window`)."""
    calendar = ports.calendar
    session = _known(lambda: calendar.next_session(now - AFTER_HOURS))
    quotes = ports.prices.quotes(sorted(set(symbols)), now)
    return MarketFacts(
        now=now,
        market_open=_known(lambda: calendar.is_open(now)),
        prices=dict(quotes),
        extended_hours=None if session is None else extended_window(session),
    )


def account_facts(
    ports: Ports,
    account: Account,
    now: datetime,
    household: Household,
    recorded: Sequence[Order] = (),
    at_broker: AccountReport | None = None,
) -> AccountFacts:
    """What the broker, the calendar and rebal's records say of ``account`` at ``now``;
    ``recorded`` are the account's orders rebal stored, counted among the day's orders with the
    broker's (the broker's view of an order both know); ``at_broker``: the broker's answers for
    the account, asked beforehand with other accounts' (:func:`broker_reports`), else each is
    asked now."""
    broker, calendar = ports.broker, ports.calendar
    day_start = _previous_close(calendar, now)
    day_orders = None
    if day_start is not None:
        sent = at_broker.orders if at_broker else _ask(lambda: broker.orders(account.id))
        if sent is not None:
            known = {o.client_order_id for o in sent}
            day_orders = orders_of_day(sent, day_start, now) + orders_of_day(
                [o for o in recorded if o.client_order_id not in known], day_start, now
            )
    positions = at_broker.positions if at_broker else _ask(lambda: broker.positions(account.id))
    day = _session_day(calendar, now)
    guard = None
    if household.history is not None and day is not None:
        guard = WashGuard.from_history(household.history, day, household.identical)
    return AccountFacts(
        account=account.id,
        household=account.household or account.id,
        can_trade=account.can_trade and account.closed_at is None,
        cash=at_broker.cash if at_broker else _ask(lambda: broker.cash(account.id)),
        buying_power=(
            at_broker.buying_power if at_broker else _ask(lambda: broker.buying_power(account.id))
        ),
        positions=None if positions is None else dict(positions),
        day_orders=day_orders,
        wash_guard=guard,
        realised_losses=household.losses,
        unknown_gain_sales=household.unknown_gain,
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
    recorded: Sequence[Order] = (),
    resized_buys: bool = False,
    at_broker: AccountReport | None = None,
) -> Decision:
    """Check ``account``'s ``orders`` at ``now`` against every rule (the account's own
    restricted securities added to the firm's), and say where a scheduled run blocked by a
    pattern day trade goes. ``recorded``: the account's orders rebal stored (earlier runs');
    ``resized_buys``: the buys are intents sized later (:func:`rebal.compliance.rules.check`);
    ``at_broker``: the broker's answers, asked beforehand (:func:`account_facts`)."""
    facts = account_facts(ports, account, now, household, recorded, at_broker)
    held = facts.positions or {}
    market = market_facts(ports, now, [*(o.symbol for o in orders), *held])
    own = replace(limits, restricted=limits.restricted | account.restricted)
    report = check(orders, facts, market, own, resized_buys=resized_buys)
    if Code.PATTERN_DAY_TRADE not in report.codes or kind is RunKind.INSTANT:
        return Decision(report, None)
    try:
        later = postponed_to(kind, now, ports.calendar.sessions(now.date(), now.date() + _LOOKBACK))
    except LookupError as exc:  # the calendar does not reach the next session
        unplaced = Violation(Code.PATTERN_DAY_TRADE, f"the run cannot be postponed: {exc}")
        return Decision(replace(report, violations=(*report.violations, unplaced)), None)
    return Decision(report, later)


# -- the firm's configuration ---------------------------------------------------------------------


class ComplianceConfigError(ValueError):
    """The compliance configuration does not validate; the message names the source and keys."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplianceConfig:
    """The firm's compliance configuration, on top of each account's own record (its
    ``can_trade`` flag and restricted securities in the store).

    ``restricted``: securities no account may trade. ``max_security_weight`` and
    ``max_issuer_weight`` with ``issuers``: the position limits (:class:`Limits`).
    ``max_price_age``: how old a quote may be when an order is sent (``None``: the caller's
    default). ``cannot_trade``: accounts barred from trading whatever their record says.
    ``identical``: groups of substantially identical securities for the wash-sale rule.
    """

    restricted: frozenset[Symbol] = frozenset()
    max_security_weight: Decimal | None = None
    max_issuer_weight: Decimal | None = None
    issuers: Mapping[Symbol, str] = field(default_factory=dict)
    max_price_age: timedelta | None = None
    cannot_trade: frozenset[AccountId] = frozenset()
    identical: tuple[frozenset[Symbol], ...] = ()

    def limits(self, default_age: timedelta = DEFAULT_MAX_PRICE_AGE) -> Limits:
        """The rules' limits, a quote's age ``default_age`` unless configured."""
        return Limits(
            restricted=self.restricted,
            max_security_weight=self.max_security_weight,
            max_issuer_weight=self.max_issuer_weight,
            issuers=dict(self.issuers),
            max_price_age=default_age if self.max_price_age is None else self.max_price_age,
        )


class _ConfigFile(BaseModel):
    """The keys of a compliance configuration file (documented in docs/compliance.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    restricted: list[str] = Field(default_factory=list)
    cannot_trade: list[str] = Field(default_factory=list)
    max_security_weight: Decimal | None = Field(default=None, gt=0, le=1)
    max_issuer_weight: Decimal | None = Field(default=None, gt=0, le=1)
    issuers: dict[str, str] = Field(default_factory=dict)
    max_price_age_minutes: float | None = Field(default=None, ge=0)
    identical: list[list[str]] = Field(default_factory=list)


def compliance_config(data: Any, source: str = "compliance configuration") -> ComplianceConfig:
    """Validate ``data`` (what a configuration file holds); every problem named by its key."""
    try:
        parsed = _ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ComplianceConfigError(f"{source}: {problems}") from None
    age = parsed.max_price_age_minutes
    return ComplianceConfig(
        restricted=frozenset(symbol(s) for s in parsed.restricted),
        max_security_weight=parsed.max_security_weight,
        max_issuer_weight=parsed.max_issuer_weight,
        issuers={symbol(s): issuer for s, issuer in parsed.issuers.items()},
        max_price_age=None if age is None else timedelta(minutes=age),
        cannot_trade=frozenset(AccountId(a.strip()) for a in parsed.cannot_trade),
        identical=tuple(frozenset(symbol(s) for s in group) for group in parsed.identical),
    )


# -- a run's legs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCompliance:
    """What a run's checks read besides the store and the broker: the market's calendar, the
    quotes, the firm's configuration, a quote's age when none is configured, and how the run
    came about (a scheduled run blocked by a day trade is postponed, an instant one not)."""

    calendar: MarketCalendar
    prices: PriceSource
    config: ComplianceConfig = field(default_factory=ComplianceConfig)
    default_price_age: timedelta = DEFAULT_MAX_PRICE_AGE
    kind: RunKind = RunKind.SCHEDULED


#: The legs of a run that are checked: ``sells`` before anything is sent (the sells and every
#: intended buy), ``buys`` before the buys are sent (sized from what the sells raised).
_NOTE = re.compile(r"compliance (sells|buys) leg: (\S+) ([A-Z_]+): (.*)", re.DOTALL)
#: How a blocked run's reason starts.
BLOCKED = "blocked by compliance: "


@dataclass(frozen=True, slots=True)
class RecordedViolation:
    """A violation as a run's events keep it: when, at which leg, for which account."""

    at: datetime
    leg: str
    account: AccountId
    code: Code
    message: str

    def to_row(self) -> dict[str, Any]:
        """The violation as a JSON row (``at``, ``leg``, ``account``, ``code``, ``message``)."""
        return {
            "at": self.at,
            "leg": self.leg,
            "account": self.account,
            "code": str(self.code),
            "message": self.message,
        }


def violation_note(leg: str, account: AccountId, violation: Violation) -> str:
    """The run event that records ``violation`` of ``account``'s orders at ``leg``."""
    return f"compliance {leg} leg: {account} {violation.code}: {violation.message}"


def recorded_violations(events: Iterable[RunEvent]) -> list[RecordedViolation]:
    """The violations a run's ``events`` record, in order."""
    found = []
    for event in events:
        match = _NOTE.fullmatch(event.reason)
        if match and match[3] in Code.__members__:
            found.append(
                RecordedViolation(event.at, match[1], AccountId(match[2]), Code(match[3]), match[4])
            )
    return found


def blocked(run: Run) -> bool:
    """Whether pre-trade compliance blocked ``run`` as a whole (it ended ``error``, its reason
    ``blocked by compliance: ...``)."""
    return run.state is RunState.ERROR and run.reason.startswith(BLOCKED)


def blocked_reason(reports: Iterable[ComplianceReport]) -> str:
    """A blocked run's reason: every violation as ``CODE: message``, ``; ``-separated."""
    return BLOCKED + "; ".join(f"{v.code}: {v.message}" for r in reports for v in r.violations)


@dataclass(frozen=True, slots=True)
class _Record:
    """What rebal's store says for a check: the accounts, the orders of recent runs, and the
    losses and the sales of unknown result of each household in the wash-sale window."""

    accounts: Mapping[AccountId, Account]
    orders: Sequence[Order]
    losses: Mapping[str, tuple[RealisedLoss, ...]]
    sales: Mapping[str, tuple[UnknownGainSale, ...]]


def _household(account: Account) -> str:
    return account.household or account.id


#: How far above its basis a sale not yet sent must be estimated to count as a gain: by more
#: than 1 % of its estimated proceeds (each lot it relieves), as the fill may come below the quote.
GAIN_MARGIN: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class _Quotes:
    """The quotes a check estimates the run's own sales at: those ``at`` most ``max_age`` old."""

    prices: Mapping[Symbol, Price]
    now: datetime
    max_age: timedelta

    def fresh(self, sold: Symbol) -> Price | None:
        quote = self.prices.get(sold)
        if quote is None or not timedelta(0) <= self.now - quote.at <= self.max_age:
            return None
        return quote


def _clear_gains(
    selling: Sequence[Order], book: Mapping[AccountId, Sequence[Holding]], quotes: _Quotes
) -> set[ClientOrderId]:
    """The sells of ``selling`` not yet filled that are estimated at a clear gain: the book's
    lots they will relieve (as their lot instructions say, else oldest first; each account's
    sells in turn, as execution applies their fills) all have a known basis, and at the symbol's
    fresh quote each lot's part of the proceeds exceeds its basis by more than ``GAIN_MARGIN``
    of that part. A sell at an estimated loss, near break-even, of shares without a basis, in
    money rather than shares, or without a fresh quote is not among them: its result stays
    unknown (the check fails closed)."""
    lots = {account: list(held) for account, held in book.items()}
    gains = set()
    for order in selling:
        if order.side is not Side.SELL or order.quantity is None:
            continue
        left = order.quantity - order.filled_quantity
        if left <= 0:
            continue
        lots[order.account], relieved, _ = relieve_sale(
            lots.get(order.account, []),
            order.account,
            order.symbol,
            left,
            order.lots,
            order.filled_quantity,
        )
        quote = quotes.fresh(order.symbol)
        if quote is None:
            continue
        estimate = realised_lots(
            FillId(f"estimate {order.client_order_id}"),
            sold=quotes.now.astimezone(EXCHANGE_TZ).date(),
            proceeds=amount_of(left, quote.price),
            relieved=relieved,
        )
        if all(p.result is not None and p.result > GAIN_MARGIN * p.proceeds for p in estimate):
            gains.add(order.client_order_id)
    return gains


def _record(
    store: Store, now: datetime, actor: str, selling: Sequence[Order], quotes: _Quotes
) -> _Record:
    """The store's accounts, the orders of runs that may have traded in the wash-sale window
    (which holds the trading day), and, for the taxable accounts of each household, the losses
    their sales realised in that window (the sums of the lots relieved at a loss, by account,
    symbol and day) and the sales whose result is not known: a fill recorded without what it
    realised, or with a lot of unknown basis, and each sale about to be sent (``selling``)
    unless estimated at a clear gain from the book's lots at ``quotes`` (:func:`_clear_gains`)."""
    today = now.astimezone(EXCHANGE_TZ).date()
    first = today - timedelta(days=WINDOW_DAYS)
    since = now - timedelta(days=WINDOW_DAYS + 1)
    with store.unit_of_work(actor=actor, reason="compliance: read rebal's record") as uow:
        accounts = {a.id: a for a in uow.accounts.list()}
        orders = [
            o
            for r in uow.runs.list()
            if not r.state.terminal or r.updated_at >= since
            for o in uow.orders.for_run(r.id)
        ]
        filled = [o for o in orders if o.side is Side.SELL and o.filled_quantity > 0]
        fills = uow.fills.for_orders([o.client_order_id for o in filled]) if filled else {}
        sold_by = [(order, fill) for order in filled for fill in fills[order.client_order_id]]
        realised = [lot for lot in uow.realised.since(first) if lot.sold <= today]
        sellers = list(dict.fromkeys(o.account for o in selling if o.side is Side.SELL))
        book = uow.holdings.of_many(sellers) if sellers else {}

    def taxable(account: AccountId) -> Account | None:
        seller = accounts.get(account)
        if seller is None or not TaxAccountType(seller.type.value).taxable:
            return None  # a loss in an IRA or a Roth is not deductible: there is nothing to wash
        return seller

    parts: dict[FillId, list[RealisedLot]] = {}
    lost: dict[tuple[str, AccountId, Symbol, date], Decimal] = {}
    for lot in realised:
        parts.setdefault(lot.fill, []).append(lot)
        seller = taxable(lot.account)
        if seller is not None and lot.result is not None and lot.result < 0:
            key = (_household(seller), seller.id, lot.symbol, lot.sold)
            lost[key] = lost.get(key, Decimal(0)) - lot.result
    unknown = [
        (order, fill.at.astimezone(EXCHANGE_TZ).date())
        for order, fill in sold_by
        if not parts.get(fill.id) or any(p.basis is None for p in parts[fill.id])
    ]
    gains = _clear_gains(selling, book, quotes)
    pending = [o for o in selling if o.side is Side.SELL and o.client_order_id not in gains]
    sales: dict[str, dict[UnknownGainSale, None]] = {}
    for order, sold in [*unknown, *((o, today) for o in pending)]:
        seller = taxable(order.account)
        if seller is not None and first <= sold <= today:
            sale = UnknownGainSale(seller.id, order.symbol, sold)
            sales.setdefault(_household(seller), {})[sale] = None
    losses: dict[str, list[RealisedLoss]] = {}
    for (household, account, sold_symbol, sold), amount in sorted(lost.items()):
        losses.setdefault(household, []).append(RealisedLoss(account, sold_symbol, sold, amount))
    return _Record(
        accounts,
        orders,
        {h: tuple(found) for h, found in losses.items()},
        {h: tuple(found) for h, found in sales.items()},
    )


def broker_reports(
    broker: Broker, accounts: Sequence[AccountId]
) -> Mapping[AccountId, AccountReport]:
    """The broker's answers for ``accounts`` in one request, when it gives them
    (:class:`~rebal.ports.broker.ReportsAccounts`); empty when it does not or cannot, and then
    each account is asked on its own, so a fault or an account the broker does not keep leaves
    only that account's facts unknown."""
    if not accounts or not isinstance(broker, ReportsAccounts):
        return {}
    try:
        return broker.account_reports(accounts)
    except BrokerError:
        return {}


def check_leg(
    store: Store,
    broker: Broker,
    compliance: RunCompliance,
    orders: Sequence[Order],
    *,
    now: datetime,
    actor: str,
    resized_buys: bool = False,
) -> tuple[ComplianceReport, ...]:
    """Check one leg of a run, ``orders`` of one or more accounts, at ``now``: a report per
    account. An account rebal does not keep cannot trade; the firm's ``cannot_trade`` list
    overrides an account's record. ``resized_buys``: the buys are the proposal's intents, sized
    later to the cash raised (the check before the sells)."""
    config = compliance.config
    limits = config.limits(compliance.default_price_age)
    sold = sorted({o.symbol for o in orders if o.side is Side.SELL})
    quotes = _Quotes(compliance.prices.quotes(sold, now), now, limits.max_price_age)
    record = _record(store, now, actor, orders, quotes)
    ports = Ports(calendar=compliance.calendar, broker=broker, prices=compliance.prices)
    leg: dict[AccountId, list[Order]] = {}
    for order in orders:
        leg.setdefault(order.account, []).append(order)
    recorded: dict[AccountId, list[Order]] = {}
    for order in record.orders:
        recorded.setdefault(order.account, []).append(order)
    answers = broker_reports(broker, [a for a in leg if a in record.accounts])
    reports = []
    for account_id, mine in leg.items():
        account = record.accounts.get(account_id)
        if account is None:
            unknown = Violation(
                Code.ACCOUNT_CANNOT_TRADE, f"account {account_id} is not in rebal's store"
            )
            reports.append(ComplianceReport(account_id, now, (unknown,)))
            continue
        if account_id in config.cannot_trade:
            account = replace(account, can_trade=False)
        household = Household(
            history=[],  # the store's sales come as recorded losses and unknown_gain
            identical=config.identical,
            losses=record.losses.get(_household(account), ()),
            unknown_gain=record.sales.get(_household(account), ()),
        )
        decision = check_orders(
            mine,
            account=account,
            now=now,
            ports=ports,
            limits=limits,
            household=household,
            kind=compliance.kind,
            recorded=recorded.get(account_id, []),
            resized_buys=resized_buys,
            at_broker=answers.get(account_id),
        )
        reports.append(decision.report)
    return tuple(reports)
