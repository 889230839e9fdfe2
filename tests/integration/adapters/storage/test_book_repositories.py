"""The book's repositories keep every record exactly (Decimals to the last digit, aware UTC
instants), in book order, with the versioning, replacement and history rules of the port; the
same on every implementation (in memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebal.adapters.memory.clock import SimulatedClock
from rebal.domain.account import Account, AccountType, Holding, Price, Target
from rebal.domain.audit import AuditAction, Entity
from rebal.domain.cash import CashFlow, CashFlowState
from rebal.domain.firm import Firm
from rebal.domain.ids import (
    AccountId,
    CashFlowId,
    FirmId,
    HouseholdId,
    LotId,
    ModelId,
    ProposalId,
    Symbol,
)
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Side
from rebal.domain.proposal import AccountProposal, Proposal, ProposedOrder
from rebal.ports.storage import Conflict, NotFound, Store

D = Decimal
GROWTH = ModelId("growth")
TARGETS = (
    Target(symbol=Symbol("VTI"), weight=D("0.6"), band_abs=D("0.05")),
    Target(symbol=Symbol("BND"), weight=D("0.333333333333333333"), rail_rel=D("0.1")),
    Target(symbol=Symbol("CASH"), weight=D("0.066666666666666667")),
)


def _account(name: str = "A1", **changes: object) -> Account:
    fields: dict[str, object] = {
        "id": AccountId(name),
        "model": GROWTH,
        "cash": Money(D("1234.56")),
        "type": AccountType.IRA,
        "household": HouseholdId("H1"),
        "restricted": frozenset({Symbol("TSLA"), Symbol("AAPL")}),
    }
    return Account(**(fields | changes))  # type: ignore[arg-type]


def _holding(account: str, symbol: str, quantity: str, **changes: object) -> Holding:
    return Holding(
        account=AccountId(account), symbol=Symbol(symbol), quantity=Quantity(D(quantity)), **changes
    )  # type: ignore[arg-type]


def _with_book(store: Store, *accounts: Account) -> None:
    with store.unit_of_work(actor="t", reason="book") as uow:
        uow.models.set_targets(GROWTH, TARGETS)
        uow.accounts.save(accounts or (_account(),))
        uow.commit()


# -- firms -------------------------------------------------------------------------------------


def test_a_firm_round_trips_and_its_id_is_unique(bare_store: Store) -> None:
    firm = Firm(
        id=FirmId("acme"),
        name="Acme Advisers",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )
    with bare_store.unit_of_work(actor="t", reason="r", firm=FirmId("acme")) as uow:
        assert uow.firms.get(firm.id) is None
        uow.firms.add(firm)
        uow.commit()
    with bare_store.unit_of_work(actor="t", reason="r", firm=FirmId("acme")) as uow:
        assert uow.firms.get(firm.id) == firm
        with pytest.raises(Conflict):
            uow.firms.add(firm)


def test_nothing_is_stored_for_a_firm_that_does_not_exist(bare_store: Store) -> None:
    with bare_store.unit_of_work(actor="t", reason="r") as uow, pytest.raises(NotFound):
        uow.models.set_targets(GROWTH, TARGETS)


def test_each_firm_sees_only_its_own_records(store: Store) -> None:
    other = FirmId("other")
    with store.unit_of_work(actor="t", reason="r", firm=other) as uow:
        uow.firms.add(Firm(id=other, name="Other", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        uow.models.set_targets(GROWTH, (TARGETS[0], Target(symbol=Symbol("BND"), weight=D("0.4"))))
        uow.accounts.save([_account(cash=Money(D("1.00")), firm=other)])
        with pytest.raises(ValueError, match="firm"):
            uow.accounts.save([_account("A9")])  # a record of the default firm
        uow.commit()
    _with_book(store)
    with store.unit_of_work(actor="t", reason="r") as uow:
        account = uow.accounts.get(AccountId("A1"))
        assert account is not None and account.cash == D("1234.56")
        assert [v.version for v in uow.models.history(GROWTH)] == [1]
        assert uow.models.latest(GROWTH).targets == TARGETS  # type: ignore[union-attr]
    with store.unit_of_work(actor="t", reason="r", firm=other) as uow:
        account = uow.accounts.get(AccountId("A1"))
        assert account is not None and account.cash == D("1.00")
        assert account.firm == other


# -- models ------------------------------------------------------------------------------------


def test_a_target_change_is_a_new_version_and_the_old_one_stays(
    store: Store, clock: SimulatedClock
) -> None:
    with store.unit_of_work(actor="t", reason="r") as uow:
        first = uow.models.set_targets(GROWTH, TARGETS)
        uow.commit()
    clock.advance(timedelta(days=1))
    changed = (
        Target(symbol=Symbol("VTI"), weight=D("0.7")),
        Target(symbol=Symbol("BND"), weight=D("0.30")),
    )
    with store.unit_of_work(actor="t", reason="r") as uow:
        assert uow.models.set_targets(GROWTH, TARGETS) == first  # unchanged: no new version
        second = uow.models.set_targets(GROWTH, changed)
        uow.commit()
    with store.unit_of_work(actor="t", reason="r") as uow:
        assert first.version == 1 and second.version == 2
        assert uow.models.history(GROWTH) == [first, second]
        assert uow.models.version(GROWTH, 1) == first
        assert uow.models.version(GROWTH, 1).targets == TARGETS  # type: ignore[union-attr]
        assert uow.models.latest(GROWTH) == second
        assert second.created_at == first.created_at + timedelta(days=1)
        assert uow.models.version(GROWTH, 3) is None
        assert uow.models.latest(ModelId("nope")) is None
        created = [e.key for e in uow.audit.entries(Entity.MODEL)]
        assert created == ["growth/1", "growth/2"]


def test_current_models_are_in_book_order_and_a_retired_model_can_come_back(
    store: Store,
) -> None:
    names = [ModelId(n) for n in ("zeta", "alpha", "mid")]
    with store.unit_of_work(actor="t", reason="r") as uow:
        for name in names:
            uow.models.set_targets(name, TARGETS)
        uow.models.retire(ModelId("alpha"))
        assert [v.model for v in uow.models.current()] == ["zeta", "mid"]
        assert uow.models.latest(ModelId("alpha")) is not None  # history kept
        back = uow.models.set_targets(ModelId("alpha"), TARGETS)
        assert back.version == 1
        assert [v.model for v in uow.models.current()] == names
        with pytest.raises(NotFound):
            uow.models.retire(ModelId("never"))


# -- accounts ----------------------------------------------------------------------------------


def test_an_account_round_trips_exactly(store: Store) -> None:
    account = _account(
        cash=Money(D("-12.30")), can_trade=False, liquidate=True, pending_cash=Money(D("2500.00"))
    )
    bare = _account(
        "A2", model=None, household=None, restricted=frozenset(), type=AccountType.TAXABLE
    )
    _with_book(store, account, bare)
    with store.unit_of_work(actor="t", reason="r") as uow:
        assert uow.accounts.get(AccountId("A1")) == account
        assert uow.accounts.get(AccountId("A2")) == bare
        assert uow.accounts.get(AccountId("none")) is None
        assert uow.accounts.list() == [account, bare]
        assert uow.accounts.list(model=GROWTH) == [account]


def test_an_account_naming_an_unknown_model_is_refused(store: Store) -> None:
    with store.unit_of_work(actor="t", reason="r") as uow, pytest.raises(NotFound):
        uow.accounts.save([_account(model=ModelId("unknown"))])


def test_pending_cash_is_the_sum_of_pending_flows_and_a_new_amount_restates_it(
    store: Store, clock: SimulatedClock
) -> None:
    _with_book(store, _account(pending_cash=Money(D("100.00"))))
    with store.unit_of_work(actor="t", reason="r") as uow:
        [flow] = uow.cash_flows.pending(AccountId("A1"))
        assert flow.amount == D("100.00") and flow.state is CashFlowState.PENDING
    clock.advance(timedelta(hours=1))
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.accounts.save([_account(pending_cash=Money(D("100.00")))])  # the same: no change
        assert uow.cash_flows.pending(AccountId("A1")) == [flow]
        uow.accounts.save([_account(pending_cash=Money(D("-40.00")))])
        [restated] = uow.cash_flows.pending(AccountId("A1"))
        assert restated.amount == D("-40.00")
        assert uow.cash_flows.get(flow.id).state is CashFlowState.CANCELED  # type: ignore[union-attr]
        assert uow.accounts.get(AccountId("A1")).pending_cash == D("-40.00")  # type: ignore[union-attr]
        uow.accounts.save([_account()])
        assert uow.cash_flows.pending(AccountId("A1")) == []


def test_an_unchanged_account_is_not_rewritten_and_a_change_is_audited(
    store: Store, clock: SimulatedClock
) -> None:
    _with_book(store)
    clock.advance(timedelta(minutes=5))
    with store.unit_of_work(actor="alice", reason="a new cash balance") as uow:
        uow.accounts.save([_account()])
        uow.accounts.save([_account(cash=Money(D("99.99")))])
        uow.commit()
    with store.unit_of_work(actor="t", reason="r") as uow:
        entries = uow.audit.entries(Entity.ACCOUNT, "A1")
    assert [e.action for e in entries] == [AuditAction.CREATE, AuditAction.UPDATE]
    change = entries[1]
    assert (change.actor, change.reason, change.at) == ("alice", "a new cash balance", clock.now())
    assert change.before is not None and '"cash":"1234.56"' in change.before
    assert change.after is not None and '"cash":"99.99"' in change.after


def test_a_closed_account_leaves_the_book_but_not_the_store(
    store: Store, clock: SimulatedClock
) -> None:
    _with_book(store, _account(), _account("A2"))
    closed = _account("A2", closed_at=clock.now())
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.accounts.save([closed])
        assert [a.id for a in uow.accounts.list()] == ["A1"]
        assert uow.accounts.get(AccountId("A2")) == closed
        uow.accounts.save([_account("A2")])
        assert [a.id for a in uow.accounts.list()] == ["A1", "A2"]


# -- holdings ----------------------------------------------------------------------------------


def test_holdings_round_trip_in_order_with_positions_and_lots(store: Store) -> None:
    _with_book(store, _account(), _account("A2"))
    a1 = [
        _holding(
            "A1", "VTI", "10.123456789", cost_basis=Money(D("1000.01")), acquired=date(2022, 4, 5)
        ),
        _holding("A1", "BND", "3"),
        _holding("A1", "VTI", "0.5", cost_basis=Money(D("0.00")), acquired=date(2023, 1, 2)),
    ]
    a2 = [_holding("A2", "AAPL", "1")]
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.holdings.replace({AccountId("A2"): a2, AccountId("A1"): a1})
        uow.commit()
    with store.unit_of_work(actor="t", reason="r") as uow:
        assert uow.holdings.of(AccountId("A1")) == a1
        assert uow.holdings.all() == a1 + a2  # accounts in book order
        assert uow.holdings.positions(AccountId("A1")) == {"VTI": D("10.623456789"), "BND": D(3)}
        assert [(lot.id, lot.quantity) for lot in uow.holdings.lots(AccountId("A1"))] == [
            (LotId("A1/1"), D("10.123456789")),
            (LotId("A1/3"), D("0.5")),
        ]


def test_replacing_holdings_rewrites_only_what_changed_and_audits_it(store: Store) -> None:
    _with_book(store, _account(), _account("A2"))
    with store.unit_of_work(actor="t", reason="first") as uow:
        uow.holdings.replace(
            {
                AccountId("A1"): [_holding("A1", "VTI", "1")],
                AccountId("A2"): [_holding("A2", "VTI", "2")],
            }
        )
        uow.commit()
    with store.unit_of_work(actor="t", reason="second") as uow:
        uow.holdings.replace({AccountId("A1"): [_holding("A1", "VTI", "1")], AccountId("A2"): []})
        assert uow.holdings.of(AccountId("A2")) == []
        trail = [(e.action, e.key, e.reason) for e in uow.audit.entries(Entity.HOLDINGS)]
    assert trail == [
        (AuditAction.CREATE, "A1", "first"),
        (AuditAction.CREATE, "A2", "first"),
        (AuditAction.DELETE, "A2", "second"),
    ]


def test_holdings_of_an_unknown_account_are_refused(store: Store) -> None:
    _with_book(store)
    with store.unit_of_work(actor="t", reason="r") as uow, pytest.raises(NotFound):
        uow.holdings.replace({AccountId("ghost"): [_holding("ghost", "VTI", "1")]})


def test_a_quantity_finer_than_the_store_keeps_is_refused_not_rounded() -> None:
    with pytest.raises(ValueError, match="9 decimal places"):
        _holding("A1", "VTI", "1.0000000001")
    assert _holding("A1", "VTI", "1.0000000000").quantity == 1  # trailing zeros are no places


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantity=st.decimals(min_value=D("0.000000001"), max_value=D("999999999"), places=9),
    cost=st.none() | st.decimals(min_value=0, max_value=D("9999999999999999.99"), places=2),
    price=st.decimals(
        min_value=D("1E-12"), max_value=D("1E+12"), allow_nan=False, allow_infinity=False
    ),
    weight=st.decimals(min_value=0, max_value=1, places=20),
)
def test_decimals_round_trip_to_the_last_digit(
    store: Store, quantity: Decimal, cost: Decimal | None, price: Decimal, weight: Decimal
) -> None:
    """Whatever the digits, a quantity (9 places), a cost (cents), a price and a weight (any
    number of digits) come back equal and with the same digits."""
    with store.unit_of_work(actor="t", reason="r") as uow:  # rolled back: nothing persists
        targets = (
            Target(symbol=Symbol("X"), weight=weight),
            Target(symbol=Symbol("CASH"), weight=1 - weight),
        )
        assert uow.models.set_targets(GROWTH, targets).targets == targets
        kept = uow.models.latest(GROWTH).targets[0].weight  # type: ignore[union-attr]
        assert format(kept, "f") == format(weight, "f")
        uow.accounts.save([_account()])
        held = _holding("A1", "X", str(quantity), cost_basis=cost)
        uow.holdings.replace({AccountId("A1"): [held]})
        [back] = uow.holdings.of(AccountId("A1"))
        assert back == held and back.quantity == quantity
        quote = Price(symbol=Symbol("X"), price=price, at=uow.now)
        uow.prices.record([quote])
        [stored] = uow.prices.current()
        assert stored == quote and format(stored.price, "f") == format(price, "f")


# -- prices ------------------------------------------------------------------------------------


def _quotes(at: datetime, **prices: str) -> list[Price]:
    return [Price(symbol=Symbol(s), price=D(p), at=at) for s, p in prices.items()]


def test_prices_keep_their_history_and_a_new_list_replaces_the_current_one(
    store: Store, clock: SimulatedClock
) -> None:
    t1 = clock.now()
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.prices.record(_quotes(t1, VTI="334.87", TIP="110.8350", BND="73.41"), replace_all=True)
        uow.commit()
    clock.advance(timedelta(hours=2))
    t2 = clock.now()
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.prices.record(_quotes(t2, TIP="111", VTI="335.00"), replace_all=True)
        uow.commit()
    with store.unit_of_work(actor="t", reason="r") as uow:
        assert uow.prices.current() == _quotes(t2, TIP="111", VTI="335.00")
        assert str(uow.prices.history(Symbol("TIP"))[0].price) == "110.8350"
        assert uow.prices.history(Symbol("VTI")) == (
            _quotes(t1, VTI="334.87") + _quotes(t2, VTI="335.00")
        )
        between = uow.prices.quotes(
            [Symbol("VTI"), Symbol("BND"), Symbol("XYZ")], t1 + timedelta(hours=1)
        )
        assert between == {"VTI": _quotes(t1, VTI="334.87")[0], "BND": _quotes(t1, BND="73.41")[0]}
        after = uow.prices.quotes([Symbol("VTI"), Symbol("BND")], t2)
        assert after == {"VTI": _quotes(t2, VTI="335.00")[0]}  # BND left the list at t2
        assert uow.prices.quotes([Symbol("VTI")], t1 - timedelta(seconds=1)) == {}


def test_one_new_quote_supersedes_only_its_symbol(store: Store, clock: SimulatedClock) -> None:
    t1 = clock.now()
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.prices.record(_quotes(t1, VTI="1", BND="2"))
        t2 = t1 + timedelta(minutes=1)
        uow.prices.record(_quotes(t2, VTI="1.5"))
        assert uow.prices.current() == _quotes(t1, BND="2") + _quotes(t2, VTI="1.5")
        with pytest.raises(ValueError, match="older"):
            uow.prices.record(_quotes(t1, VTI="1.4"))
        with pytest.raises(ValueError, match="two quotes"):
            uow.prices.record(_quotes(t2, VTI="1") + _quotes(t2, VTI="2"))


def test_an_instant_keeps_its_moment_to_the_microsecond(store: Store) -> None:
    new_york = timezone(timedelta(hours=-5))
    quoted = datetime(2026, 11, 20, 16, 0, 0, 123456, tzinfo=new_york)
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.prices.record(_quotes(quoted, VTI="1"))
        [back] = uow.prices.current()
    assert back.at == quoted and back.at.tzinfo is not None


# -- cash flows --------------------------------------------------------------------------------


def test_a_cash_flow_is_pending_until_settled_or_canceled(
    store: Store, clock: SimulatedClock
) -> None:
    _with_book(store)
    deposit = CashFlow(
        id=CashFlowId("d1"),
        account=AccountId("A1"),
        amount=Money(D("500.00")),
        created_at=clock.now(),
        note="monthly deposit",
    )
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.cash_flows.add(deposit)
        assert uow.cash_flows.get(CashFlowId("d1")) == deposit
        assert uow.cash_flows.pending() == [deposit]
        assert uow.accounts.get(AccountId("A1")).pending_cash == D("500.00")  # type: ignore[union-attr]
        with pytest.raises(Conflict):
            uow.cash_flows.add(deposit)
        settled = uow.cash_flows.close(CashFlowId("d1"), CashFlowState.SETTLED)
        assert settled.state is CashFlowState.SETTLED and settled.closed_at == uow.now
        assert uow.cash_flows.get(CashFlowId("d1")) == settled
        assert uow.cash_flows.pending(AccountId("A1")) == []
        with pytest.raises(ValueError, match="only a pending flow"):
            uow.cash_flows.close(CashFlowId("d1"), CashFlowState.CANCELED)
        with pytest.raises(NotFound):
            uow.cash_flows.close(CashFlowId("nope"), CashFlowState.CANCELED)
        with pytest.raises(NotFound):
            uow.cash_flows.add(
                CashFlow(
                    id=CashFlowId("x"),
                    account=AccountId("ghost"),
                    amount=Money(D("1.00")),
                    created_at=uow.now,
                )
            )


# -- proposals ---------------------------------------------------------------------------------


def test_a_proposal_round_trips_with_its_accounts_orders_and_digest(
    store: Store, clock: SimulatedClock
) -> None:
    _with_book(store)
    proposal = Proposal(
        id=ProposalId("p1"),
        as_of=clock.now() - timedelta(hours=1),
        created_at=clock.now(),
        config='{"band_rel":"20","policy":"rails"}',
        accounts=(
            AccountProposal(
                account=AccountId("A1"),
                status="rebalance",
                reason="VTI 5.1 pp over target",
                model=GROWTH,
                model_version=1,
            ),
        ),
        orders=(
            ProposedOrder(
                account=AccountId("A1"),
                symbol=Symbol("VTI"),
                side=Side.SELL,
                quantity=Quantity(D("1.5")),
            ),
            ProposedOrder(
                account=AccountId("A1"),
                symbol=Symbol("BND"),
                side=Side.BUY,
                notional=Money(D("503.12")),
            ),
        ),
    )
    later = Proposal(
        id=ProposalId("p2"),
        as_of=clock.now(),
        created_at=clock.now() + timedelta(seconds=1),
        config="{}",
    )
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.proposals.add(proposal)
        uow.proposals.add(later)
        uow.commit()
    with store.unit_of_work(actor="t", reason="r") as uow:
        assert uow.proposals.get(ProposalId("p1")) == proposal
        assert uow.proposals.list() == [later, proposal]
        assert uow.proposals.get(ProposalId("p3")) is None
        with pytest.raises(Conflict):
            uow.proposals.add(proposal)
    assert len(proposal.digest) == 64 and proposal.digest != later.digest
