"""Pre-trade compliance through whole runs: a test per rule, on the in-memory store, SQLite and
PostgreSQL, with the simulated broker beside it. A blocked run sends nothing from the leg it was
blocked at, ends ``error`` with every violation in its reason and its events, and raises a
``run.blocked`` alert; a missing fact never passes."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rundesk import CALENDAR, START, Desk, make_desk, small_book

from rebal.adapters.brokers.simulated import SimulatedBroker
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.compliance.codes import Code
from rebal.domain.account import AccountType, Price, Target
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, HouseholdId, ModelId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import OrderState, Side
from rebal.domain.run import Run, RunState, ScopeKind
from rebal.ports.outbox import OutboxEntry
from rebal.services.compliance import ComplianceConfig, RecordedViolation, recorded_violations
from rebal.services.runs import show_run
from rebal.tax.lots import Term

A1, A2 = AccountId("A1"), AccountId("A2")
VTI, BND = Symbol("VTI"), Symbol("BND")
#: Prices at which the runs' notional buys fill in whole hundredths of a share.
QUOTES = {"VTI": "250.00", "BND": "80.00"}


def _book(n: int) -> BookSnapshot:
    """rundesk's small book (each account all in VTI with 1,000 cash, a 60/40 model) at
    QUOTES."""
    book = small_book(n)
    at = START - timedelta(hours=1)
    return replace(
        book,
        prices=tuple(Price(symbol=Symbol(s), price=Decimal(p), at=at) for s, p in QUOTES.items()),
    )


def _make(backend: str | None, folder: Path, book: BookSnapshot, **sim: object) -> Desk:
    """rundesk's desk on ``backend`` (``None``: the in-memory store)."""
    return make_desk(backend, book, ledger=f"sqlite:///{folder / 'broker.db'}", **sim)


@pytest.fixture
def desk(store_backend: str | None, tmp_path: Path) -> Iterator[Desk]:
    made = _make(store_backend, tmp_path, _book(1))
    yield made
    made.broker.close()


@pytest.fixture
def households(store_backend: str | None, tmp_path: Path) -> Iterator[Desk]:
    """Two accounts of one household H; each must sell VTI and buy BND."""
    made = _make(store_backend, tmp_path, _book(2))
    _edit(made, A1, household=HouseholdId("H"))
    _edit(made, A2, household=HouseholdId("H"))
    yield made
    made.broker.close()


def _edit(desk: Desk, account: AccountId, **changes: object) -> None:
    with desk.store.unit_of_work(actor="test", reason="edit account") as uow:
        stored = uow.accounts.get(account)
        assert stored is not None
        uow.accounts.save([replace(stored, **changes)])  # type: ignore[arg-type]
        uow.commit()


def _retarget(desk: Desk, vti: str, bnd: str) -> None:
    """A new version of the model: the next run moves the accounts to it."""
    with desk.store.unit_of_work(actor="test", reason="new targets") as uow:
        uow.models.set_targets(
            ModelId("balanced"),
            [Target(symbol=VTI, weight=Decimal(vti)), Target(symbol=BND, weight=Decimal(bnd))],
        )
        uow.commit()


def _requote(desk: Desk) -> None:
    """Fresh quotes (the same prices, five minutes old) in the store and the price source."""
    at = desk.clock.now() - timedelta(minutes=5)
    quotes = [Price(symbol=Symbol(s), price=Decimal(p), at=at) for s, p in QUOTES.items()]
    with desk.store.unit_of_work(actor="test", reason="quotes") as uow:
        uow.prices.record(quotes)
        uow.commit()
    for quote in quotes:
        desk.prices.add(quote)


def _codes(run: Run) -> list[str]:
    """The codes of a blocked run's reason, in order."""
    assert run.state is RunState.ERROR
    assert run.reason.startswith("blocked by compliance: "), run.reason
    return [
        part.split(":")[0]
        for part in run.reason.removeprefix("blocked by compliance: ").split("; ")
    ]


def _violations(desk: Desk, run: Run) -> list[RecordedViolation]:
    return recorded_violations(show_run(desk.store, run.id, actor="test").events)


def _blocked_alerts(desk: Desk) -> list[OutboxEntry]:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        return [e for e in uow.outbox.entries() if e.notification.topic == "run.blocked"]


def _held_alerts(desk: Desk) -> list[OutboxEntry]:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        return [e for e in uow.outbox.entries() if e.notification.topic == "run.held"]


def _assert_nothing_sent(desk: Desk, run: Run) -> None:
    assert desk.broker.orders() == []
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        orders = uow.orders.for_run(run.id)
    assert orders and all(o.state is OrderState.CANCELED for o in orders)
    assert all(o.reason == "blocked by compliance" for o in orders)


def _run(desk: Desk, config: ComplianceConfig | None = None, **more: object) -> Run:
    run, _ = desk.start()
    return desk.execute(run, compliance=desk.compliance(config, **more))


# -- each rule through a run -----------------------------------------------------------------


def test_market_closed_blocks_the_run_before_anything_is_sent(desk: Desk) -> None:
    desk.clock.advance(timedelta(hours=8))  # 18:00 ET, after the close
    done = _run(desk)
    assert _codes(done) == [Code.MARKET_CLOSED]
    assert "the market is closed at" in done.reason
    _assert_nothing_sent(desk, done)


def test_market_closed_when_the_calendar_has_no_answer_for_the_date(desk: Desk) -> None:
    later = ExchangeCalendar(start=date(2027, 1, 1), end=date(2027, 2, 1))
    run, _ = desk.start()
    done = desk.execute(run, compliance=replace(desk.compliance(), calendar=later))
    assert Code.MARKET_CLOSED in _codes(done)
    assert "no market calendar for" in done.reason
    _assert_nothing_sent(desk, done)


def test_account_cannot_trade_from_the_store_record(desk: Desk) -> None:
    run, _ = desk.start()
    _edit(desk, A1, can_trade=False)  # frozen after the run was proposed
    done = desk.execute(run, compliance=desk.compliance())
    assert _codes(done) == [Code.ACCOUNT_CANNOT_TRADE]
    _assert_nothing_sent(desk, done)


def test_account_cannot_trade_from_the_configuration(desk: Desk) -> None:
    done = _run(desk, ComplianceConfig(cannot_trade=frozenset({A1})))
    assert _codes(done) == [Code.ACCOUNT_CANNOT_TRADE]
    assert "account A1 is not allowed to trade" in done.reason


def test_unfunded_when_the_broker_holds_nothing_for_the_account(desk: Desk) -> None:
    # The custodian's view wins: the account is open there with no cash and no shares.
    desk.broker.open_account(A1, Money(Decimal("0.00")), {})
    done = _run(desk)
    assert Code.UNFUNDED in _codes(done) and Code.SHORT_SALE in _codes(done)
    assert "holds no cash and no shares" in done.reason
    _assert_nothing_sent(desk, done)


def test_insufficient_buying_power_when_the_broker_gives_no_answer(
    store_backend: str | None, tmp_path: Path
) -> None:
    faults = {"timeout": {"probability": 1.0, "operations": ["buying_power"], "seconds": 1.0}}
    desk = _make(store_backend, tmp_path, _book(1), faults=faults)
    try:
        done = _run(desk)
        assert _codes(done) == [Code.INSUFFICIENT_BUYING_POWER]
        assert "no buying power answer from the broker" in done.reason
        _assert_nothing_sent(desk, done)
    finally:
        desk.broker.close()


def test_restricted_security_blocks_the_whole_run_even_its_other_sells(desk: Desk) -> None:
    done = _run(desk, ComplianceConfig(restricted=frozenset({BND})))
    assert _codes(done) == [Code.RESTRICTED_SECURITY]
    assert "BND is on the restricted list: no buy" in done.reason
    _assert_nothing_sent(desk, done)  # the VTI sell is not sent either


def test_restricted_security_from_the_account_record(desk: Desk) -> None:
    run, _ = desk.start()
    _edit(desk, A1, restricted=frozenset({VTI}))  # restricted after the run was proposed
    done = desk.execute(run, compliance=desk.compliance())
    assert _codes(done) == [Code.RESTRICTED_SECURITY]
    assert "VTI is on the restricted list: no sell" in done.reason


def test_position_limit_per_security(desk: Desk) -> None:
    # 40 VTI at 250 and 1,000 cash: the run (to the rails of the 60/40 model) would hold
    # 3,740 BND of 11,000 (34 %).
    done = _run(desk, ComplianceConfig(max_security_weight=Decimal("0.30")))
    assert _codes(done) == [Code.POSITION_LIMIT]
    assert "BND would be 34.00% of account A1, above the 30.00% limit per security" in done.reason
    _assert_nothing_sent(desk, done)


def test_position_limit_per_issuer(desk: Desk) -> None:
    config = ComplianceConfig(
        max_issuer_weight=Decimal("0.5"), issuers={VTI: "Vanguard", BND: "Vanguard"}
    )
    done = _run(desk, config)
    assert _codes(done) == [Code.POSITION_LIMIT]
    assert "issuer Vanguard would be 100.00% of account A1" in done.reason


def test_short_sale_when_the_broker_holds_fewer_shares_than_the_book(desk: Desk) -> None:
    desk.broker.open_account(A1, Money(Decimal("1000.00")), {VTI: Quantity(Decimal("10"))})
    done = _run(desk)
    assert Code.SHORT_SALE in _codes(done)
    assert "with 10 held would sell short" in done.reason
    _assert_nothing_sent(desk, done)


def test_stale_price_older_than_the_configured_age(desk: Desk) -> None:
    done = _run(desk, ComplianceConfig(max_price_age=timedelta(minutes=15)))  # quotes are 1 h old
    assert _codes(done) == [Code.STALE_PRICE, Code.STALE_PRICE]
    assert "older than 0:15:00" in done.reason


def test_stale_price_when_the_price_source_has_no_quote(desk: Desk) -> None:
    run, _ = desk.start()
    done = desk.execute(run, compliance=replace(desk.compliance(), prices=InMemoryPrices()))
    assert Code.STALE_PRICE in _codes(done)
    assert "no price for VTI" in done.reason and "no price for BND" in done.reason
    _assert_nothing_sent(desk, done)


def test_stale_price_at_the_buy_leg_after_the_sells_settle(
    store_backend: str | None, tmp_path: Path
) -> None:
    """The check passes before the sells; the sells take ten minutes to fill, and by the buy
    leg the quotes are too old: the sells went, the buys are not sent."""
    desk = _make(store_backend, tmp_path, _book(1), latency_seconds=600.0)
    try:
        done = _run(desk, ComplianceConfig(max_price_age=timedelta(minutes=65)))
        assert set(_codes(done)) == {Code.STALE_PRICE}
        assert {v.leg for v in _violations(desk, done)} == {"buys"}
        sent = desk.broker.orders()
        assert [(o.side, o.state) for o in sent] == [(Side.SELL, OrderState.FILLED)]
        with desk.store.unit_of_work(actor="test", reason="read") as uow:
            buys = [o for o in uow.orders.for_run(done.id) if o.side is Side.BUY]
        assert buys and all(o.state is OrderState.CANCELED for o in buys)
    finally:
        desk.broker.close()


def _at_cost(book: BookSnapshot, cost: str | None) -> BookSnapshot:
    """``book`` with each account's 40 VTI bought for ``cost`` (12000.00: 300 a share, a loss
    at 250; ``None``: lots never imported, no basis)."""
    basis = None if cost is None else Money(Decimal(cost))
    return replace(book, holdings=tuple(replace(h, cost_basis=basis) for h in book.holdings))


def _household(backend: str | None, folder: Path, cost: str | None) -> Desk:
    """Two accounts of one household H, each all in VTI bought for ``cost``."""
    desk = _make(backend, folder, _at_cost(_book(2), cost))
    _edit(desk, A1, household=HouseholdId("H"))
    _edit(desk, A2, household=HouseholdId("H"))
    return desk


@pytest.fixture
def losers(store_backend: str | None, tmp_path: Path) -> Iterator[Desk]:
    """Household H whose first run sells 10.96 VTI in each account at a loss of 548.00."""
    made = _household(store_backend, tmp_path, "12000.00")
    yield made
    made.broker.close()


def _buy_vti_back(desk: Desk, days: int) -> Run:
    """``days`` after the first run, a new model version makes every account buy VTI back."""
    desk.clock.advance(timedelta(days=days))
    _requote(desk)
    _retarget(desk, "0.9", "0.1")
    return _run(desk)


def test_wash_sale_a_household_buy_back_within_30_days_of_a_loss_is_blocked(
    losers: Desk,
) -> None:
    first = losers.execute(losers.start()[0])
    assert first.state is RunState.COMPLETED  # both accounts sold VTI at a loss, bought BND
    with losers.store.unit_of_work(actor="test", reason="read") as uow:
        realised = {lot.account: lot for lot in uow.realised.since(START.date())}
    # 10.96 of 40 shares bought for 12,000.00: a basis of 3,288.00, sold for 2,740.00
    assert (realised[A1].proceeds, realised[A1].basis) == (Decimal("2740.00"), Decimal("3288.00"))
    assert realised[A1].result == Decimal("-548.00")
    assert realised[A1].term is Term.LONG
    done = _buy_vti_back(losers, 1)  # Wednesday: no day trade any more
    assert set(_codes(done)) == {Code.WASH_SALE}
    assert (
        "buying VTI would wash the loss of 548.00 realised selling VTI in account A1 on 2026-11-24"
        in done.reason
    )
    assert {v.account for v in _violations(losers, done)} == {A1, A2}
    _assert_no_new_orders(losers, done)


def test_wash_sale_a_sale_at_a_gain_does_not_block_a_buy_back(households: Desk) -> None:
    first = households.execute(households.start()[0])  # VTI bought at 200, sold at 250
    assert first.state is RunState.COMPLETED
    done = _buy_vti_back(households, 1)
    assert done.state is RunState.COMPLETED, done.reason


def test_wash_sale_a_loss_blocks_for_30_days_only(losers: Desk) -> None:
    losers.execute(losers.start()[0])  # the loss, on Tuesday 2026-11-24
    day_30 = _buy_vti_back(losers, 30)  # Thursday 2026-12-24
    assert set(_codes(day_30)) == {Code.WASH_SALE}
    losers.clock.advance(timedelta(days=1))  # Christmas, 31 days after: closed, no wash
    _requote(losers)
    assert set(_codes(_run(losers))) == {Code.MARKET_CLOSED}
    losers.clock.advance(timedelta(days=4))  # Tuesday 2026-12-29
    _requote(losers)
    done = _run(losers)
    assert done.state is RunState.COMPLETED, done.reason


def test_wash_sale_ignores_a_loss_in_an_ira_and_other_households(
    store_backend: str | None, tmp_path: Path
) -> None:
    desk = _make(store_backend, tmp_path, _at_cost(_book(2), "12000.00"))
    try:
        _edit(desk, A1, household=HouseholdId("H"), type=AccountType.IRA)
        _edit(desk, A2, household=HouseholdId("OTHER"))
        desk.execute(desk.start(scope=ScopeKind.ACCOUNT, name="A2")[0])  # A2 sells at a loss
        desk.execute(desk.start(scope=ScopeKind.ACCOUNT, name="A1")[0])  # the IRA too
        desk.clock.advance(timedelta(days=1))
        _requote(desk)
        _retarget(desk, "0.9", "0.1")
        done = desk.execute(desk.start(scope=ScopeKind.ACCOUNT, name="A1")[0])
        assert done.state is RunState.COMPLETED, done.reason
    finally:
        desk.broker.close()


def test_wash_sale_a_sale_of_unknown_basis_still_blocks(
    store_backend: str | None, tmp_path: Path
) -> None:
    """Lots never imported (no basis): the gain or loss of their sale is not known, and the
    buy-back is blocked as a possible wash sale."""
    desk = _household(store_backend, tmp_path, None)
    try:
        desk.execute(desk.start()[0])
        done = _buy_vti_back(desk, 1)
        assert set(_codes(done)) == {Code.WASH_SALE}
        assert (
            "buying VTI may wash a loss: VTI was sold in account A1 on 2026-11-24 and the gain"
            " or loss of that sale is not known" in done.reason
        )
    finally:
        desk.broker.close()


def _swapping(backend: str | None, folder: Path, vti_cost: str | None) -> Desk:
    """Household H: A1 holds 40 VTI bought for ``vti_cost`` (``None``: no basis) and must sell
    13.6 of them (for 3,400.00 at 250) to buy BND, while A2 holds 100 BND bought for 6,000.00
    and sells 55 of them (4,400.00 at 80, a clear gain) to buy VTI: in one run, each account
    buys what the other sells."""
    book = _book(2)
    basis = None if vti_cost is None else Money(Decimal(vti_cost))
    a1 = replace(book.holdings[0], cost_basis=basis)
    a2 = replace(
        book.holdings[1],
        symbol=BND,
        quantity=Quantity(Decimal("100")),
        cost_basis=Money(Decimal("6000.00")),
    )
    desk = _make(backend, folder, replace(book, holdings=(a1, a2)))
    _edit(desk, A1, household=HouseholdId("H"))
    _edit(desk, A2, household=HouseholdId("H"))
    return desk


@pytest.mark.parametrize(
    "vti_cost",
    [
        "8000.00",  # 200 a share: a gain of 680.00 (20 % of the proceeds)
        "9850.00",  # 246.25 a share: a gain of 51.00, 1.5 % of the proceeds, above the margin
    ],
)
def test_wash_sale_a_household_sale_at_a_clear_gain_does_not_block_the_buy_in_the_same_run(
    store_backend: str | None, tmp_path: Path, vti_cost: str
) -> None:
    """The run's own sells are estimated from the book's lots at the quote: A1's sale of VTI
    and A2's sale of BND are clear gains, and neither buy is blocked."""
    desk = _swapping(store_backend, tmp_path, vti_cost)
    try:
        done = _run(desk)
        assert done.state is RunState.COMPLETED, done.reason
        with desk.store.unit_of_work(actor="test", reason="read") as uow:
            filled = {
                (o.account, o.side, o.symbol)
                for o in uow.orders.for_run(done.id)
                if o.state is OrderState.FILLED
            }
        assert (A2, Side.BUY, VTI) in filled
        assert (A1, Side.BUY, BND) in filled
    finally:
        desk.broker.close()


@pytest.mark.parametrize(
    "vti_cost",
    [
        "12000.00",  # 300 a share: a loss of 680.00
        "9950.00",  # 248.75 a share: a gain of 17.00, 0.5 % of the proceeds, within the margin
        "10000.00",  # 250 a share: neither gain nor loss
        None,  # lots never imported: the basis is not known
    ],
)
def test_wash_sale_a_household_sale_at_a_loss_or_near_break_even_holds_the_buyer_back(
    store_backend: str | None, tmp_path: Path, vti_cost: str | None
) -> None:
    """A1's sale of VTI is estimated at a loss, within the margin of break-even (the fill may
    come below the quote) or from lots without a basis: A2's buy of VTI in the same run may
    wash it, so A2 is held back before either sell goes (nothing of A2 is sent) and A1 trades;
    A2's sale of BND, a clear gain, blocks nothing."""
    desk = _swapping(store_backend, tmp_path, vti_cost)
    try:
        done = _run(desk)
        assert done.state is RunState.COMPLETED_ADJUSTED, done.reason
        assert "account A2 held back by compliance (WASH_SALE)" in done.reason
        assert "canceled" not in done.reason  # A2's orders are said once, by its line
        notes = [v.message for v in _violations(desk, done)]
        assert any(
            m.startswith("buying VTI may wash a loss: VTI was sold in account A1") for m in notes
        )
        assert not any(m.startswith("buying BND") for m in notes)
        assert {(v.leg, v.account) for v in _violations(desk, done)} == {("sells", A2)}
        assert {o.account for o in desk.broker.orders()} == {A1}
        assert {e.notification.account for e in _held_alerts(desk)} == {A2}
    finally:
        desk.broker.close()


def test_wash_sale_counts_substantially_identical_securities(
    store_backend: str | None, tmp_path: Path
) -> None:
    """Selling VTI (estimated at a loss) and buying BND, configured substantially identical, in
    one run: the run is blocked before it sells."""
    desk = _make(store_backend, tmp_path, _at_cost(_book(1), "12000.00"))
    try:
        identical = ComplianceConfig(identical=(frozenset({VTI, BND}),))
        done = desk.execute(desk.start()[0], compliance=desk.compliance(identical))
        assert _codes(done) == [Code.WASH_SALE]
        assert "buying BND may wash a loss: VTI was sold in account A1 on 2026-11-24" in done.reason
        _assert_nothing_sent(desk, done)
    finally:
        desk.broker.close()


def test_wash_sale_not_identical_by_default(desk: Desk) -> None:
    desk.execute(desk.start()[0])
    desk.clock.advance(timedelta(days=1))
    _requote(desk)
    _retarget(desk, "0.2", "0.8")  # sells VTI again and buys more BND
    done = desk.execute(desk.start()[0])
    assert done.state is RunState.COMPLETED, done.reason


def test_pattern_day_trade_against_an_earlier_run_that_day(desk: Desk) -> None:
    first = desk.execute(desk.start()[0])  # 10:00: sells VTI, buys BND
    assert first.state is RunState.COMPLETED
    desk.clock.advance(timedelta(hours=4, minutes=30))  # 14:30 ET, the same session
    _retarget(desk, "0.2", "0.8")  # would sell VTI again and buy BND again: no day trade
    again = desk.execute(desk.start()[0])
    assert again.state is RunState.COMPLETED, again.reason
    desk.clock.advance(timedelta(minutes=10))
    _retarget(desk, "0.9", "0.1")  # sells the BND bought today, buys back the VTI sold today
    done = desk.execute(desk.start()[0])
    codes = _codes(done)
    assert Code.PATTERN_DAY_TRADE in codes
    assert "BND would be bought and sold in one trading day against an earlier run's buy" in (
        done.reason
    )
    assert "VTI would be bought and sold in one trading day against an earlier run's sell" in (
        done.reason
    )
    _assert_no_new_orders(desk, done)


def test_pattern_day_trade_reads_earlier_runs_from_the_store(
    store_backend: str | None, tmp_path: Path
) -> None:
    """The broker of the second run never saw the morning's orders (a new custodian session):
    the store's record of them still blocks the day trade."""
    desk = _make(store_backend, tmp_path, _book(1))
    try:
        desk.execute(desk.start()[0])
        desk.clock.advance(timedelta(hours=1))
        fresh = SimulatedBroker(
            f"sqlite:///{tmp_path / 'other-broker.db'}",
            clock=desk.clock,
            prices=desk.prices,
            calendar=CALENDAR,
        )
        _retarget(desk, "0.9", "0.1")
        moved = replace(desk, broker=fresh)
        done = moved.execute(moved.start()[0])
        assert Code.PATTERN_DAY_TRADE in _codes(done)
        assert fresh.orders() == []
        fresh.close()
    finally:
        desk.broker.close()


def test_a_resumed_run_is_checked_at_the_leg_it_has_not_sent(desk: Desk) -> None:
    """A crash after the sells went: on resume the sells are not checked again, the buys are
    (and here blocked, BND having been restricted meanwhile)."""
    from rebal.services.execution import ExecutionSettings, _Execution

    run, _ = desk.start()
    crashed = _Execution(
        store=desk.store,
        broker=desk.broker,
        run=run.id,
        clock=desk.clock,
        settings=ExecutionSettings(),
        actor="test",
    )
    crashed.begin()
    crashed.send(crashed.stored_run())  # the sells are sent, then the process dies
    desk.clock.advance(timedelta(minutes=1))
    done = desk.execute(
        run, compliance=desk.compliance(ComplianceConfig(restricted=frozenset({BND})))
    )
    assert _codes(done) == [Code.RESTRICTED_SECURITY]
    assert [v.leg for v in _violations(desk, done)] == ["buys"]
    assert [(o.side, o.state) for o in desk.broker.orders()] == [(Side.SELL, OrderState.FILLED)]


def _assert_no_new_orders(desk: Desk, run: Run) -> None:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        orders = uow.orders.for_run(run.id)
    assert all(o.state is OrderState.CANCELED for o in orders)
    assert not [o for o in desk.broker.orders() if o.client_order_id.startswith(run.id)]


# -- every violation, recorded and reported --------------------------------------------------


def test_every_violation_is_collected_in_the_reason_the_events_and_the_alert(desk: Desk) -> None:
    config = ComplianceConfig(restricted=frozenset({BND}), max_price_age=timedelta(minutes=15))
    done = _run(desk, config)
    assert _codes(done) == [Code.RESTRICTED_SECURITY, Code.STALE_PRICE, Code.STALE_PRICE]
    recorded = _violations(desk, done)
    assert [(v.leg, v.account, v.code) for v in recorded] == [
        ("sells", A1, Code.RESTRICTED_SECURITY),
        ("sells", A1, Code.STALE_PRICE),
        ("sells", A1, Code.STALE_PRICE),
    ]
    assert "; ".join(f"{v.code}: {v.message}" for v in recorded) in done.reason
    alerts = _blocked_alerts(desk)
    assert sorted(e.channel for e in alerts) == ["email", "webhook"]
    payload = alerts[0].notification.payload
    assert payload["reason"] == done.reason and payload["accounts"] == ["A1"]
    assert [v["code"] for v in payload["violations"]] == [str(v.code) for v in recorded]
    assert alerts[0].notification.id == f"{done.id}-error"


def test_a_blocked_run_executed_again_stays_blocked_and_queues_nothing_more(desk: Desk) -> None:
    done = _run(desk, ComplianceConfig(restricted=frozenset({BND})))
    before = _blocked_alerts(desk)
    again = desk.execute(done, compliance=desk.compliance())
    assert again == done and _blocked_alerts(desk) == before
    assert desk.broker.orders() == []


def test_a_clean_run_passes_and_raises_no_alert(desk: Desk) -> None:
    done = _run(desk)
    assert done.state is RunState.COMPLETED, done.reason
    assert _violations(desk, done) == [] and _blocked_alerts(desk) == []


# -- an invariant ----------------------------------------------------------------------------


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    restricted=st.sets(st.sampled_from(["VTI", "BND"]), min_size=1),
    vti=st.integers(min_value=0, max_value=100),
    cash=st.integers(min_value=100, max_value=20_000),
    held=st.integers(min_value=0, max_value=80),
)
def test_a_restricted_security_is_never_traded_by_any_run(
    restricted: set[str], vti: int, cash: int, held: int
) -> None:
    book = _book(1)
    book = replace(
        book,
        models={
            ModelId("balanced"): (
                Target(symbol=VTI, weight=Decimal(vti) / 100),
                Target(symbol=BND, weight=Decimal(100 - vti) / 100),
            )
        },
        accounts=tuple(replace(a, cash=Money(Decimal(cash))) for a in book.accounts),
        holdings=tuple(replace(h, quantity=Quantity(Decimal(held))) for h in book.holdings)
        if held
        else (),
    )
    with tempfile.TemporaryDirectory() as folder:
        desk = _make(None, Path(folder), book)
        try:
            config = ComplianceConfig(restricted=frozenset(Symbol(s) for s in restricted))
            run, _ = desk.start()
            done = desk.execute(run, compliance=desk.compliance(config))
            traded = {o.symbol for o in desk.broker.orders()}
            assert not traded & restricted
            assert done.state in (RunState.ERROR, RunState.COMPLETED), done.reason
        finally:
            desk.broker.close()


def test_each_leg_asks_the_broker_once_for_every_accounts_facts(
    households: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[AccountId]] = []
    reports = households.broker.account_reports

    def counted(accounts: list[AccountId]) -> object:
        asked.append(list(accounts))
        return reports(accounts)

    def single(*_: object) -> None:
        raise AssertionError("a fact was asked account by account")

    monkeypatch.setattr(households.broker, "account_reports", counted)
    for name in ("cash", "buying_power", "positions", "orders"):
        monkeypatch.setattr(households.broker, name, single)
    done = _run(households)
    assert done.state is RunState.COMPLETED, done.reason
    assert asked == [[A1, A2], [A1, A2]]  # the sells' leg, then the buys'
