"""Reconciliation's comparison and the allocation check, as pure functions: every difference
listed once and exactly, floats refused, the 0.5 percentage point rule at its edge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebal.domain.ids import CASH, AccountId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.services.reconcile import (
    Difference,
    DifferenceKind,
    Holdings,
    ReconcileError,
    check_allocation,
    compare,
    reconcile,
)

A1, A2, A3 = AccountId("A1"), AccountId("A2"), AccountId("A3")
K = DifferenceKind


def d(text: str) -> Decimal:
    return Decimal(text)


def held(cash: str, **positions: str) -> Holdings:
    return Holdings(Money(d(cash)), {Symbol(s): Quantity(d(q)) for s, q in positions.items()})


class Ledger:
    """A broker's answers from a fixed record (what the broker port's holdings calls give)."""

    def __init__(self, accounts: Mapping[AccountId, Holdings]) -> None:
        self.record = dict(accounts)

    def accounts(self) -> Sequence[AccountId]:
        return list(self.record)

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        return self.record[account].positions

    def cash(self, account: AccountId) -> Money:
        return self.record[account].cash


def test_equal_records_agree_and_equal_decimals_are_equal() -> None:
    assert compare(A1, held("10.00", VTI="6"), held("10.0", VTI="6.000000000")) == ()


def test_each_kind_of_difference_is_listed_with_both_sides() -> None:
    book = held("100.00", VTI="6", BND="10.5", GLD="1")
    broker = held("99.99", VTI="6", BND="10.500000001", IAU="2")
    assert compare(A1, book, broker) == (
        Difference(A1, K.CASH, None, d("100.00"), d("99.99")),
        Difference(A1, K.QUANTITY, Symbol("BND"), d("10.5"), d("10.500000001")),
        Difference(A1, K.MISSING_AT_BROKER, Symbol("GLD"), d("1"), None),
        Difference(A1, K.MISSING_IN_BOOK, Symbol("IAU"), None, d("2")),
    )
    differences = [x.difference for x in compare(A1, book, broker)]
    assert differences == [d("-0.01"), d("0.000000001"), d("-1"), d("2")]


def test_a_float_is_refused_not_compared() -> None:
    with pytest.raises(TypeError, match="cash must be a finite Decimal"):
        Holdings(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="quantity of VTI"):
        Holdings(Money(d("1.00")), {Symbol("VTI"): 6.0})  # type: ignore[dict-item]


def test_reconcile_compares_the_brokers_accounts_and_lists_the_unopened() -> None:
    book = {A1: held("1.00", VTI="1"), A2: held("2.00"), A3: held("3.00")}
    broker = Ledger({A1: held("1.00", VTI="1"), A2: held("2.01"), AccountId("Z9"): held("0")})
    result = reconcile(book, broker)
    assert [a.account for a in result.accounts] == [A1, A2, "Z9"]
    assert result.unopened == (A3,)
    assert not result.reconciled
    assert result.differences == (
        Difference(A2, K.CASH, None, d("2.00"), d("2.01")),
        Difference(AccountId("Z9"), K.ACCOUNT_MISSING_IN_BOOK),
    )


def test_one_account_asked_for_and_bad_requests() -> None:
    book = {A1: held("1.00"), A2: held("2.00")}
    broker = Ledger({A1: held("1.00")})
    assert reconcile(book, broker, A1).reconciled
    (missing,) = reconcile(book, broker, A2).differences
    assert missing == Difference(A2, K.ACCOUNT_MISSING_AT_BROKER)
    with pytest.raises(ReconcileError, match="unknown account NOPE"):
        reconcile(book, broker, AccountId("NOPE"))
    with pytest.raises(ReconcileError, match="ledger is empty"):
        reconcile(book, Ledger({}))


# -- the property: a book and its copy reconcile; one change is reported exactly once ---------

SYMBOLS = [Symbol(s) for s in ("VTI", "BND", "VXUS", "GLD", "TIP")]
cash = st.integers(0, 10**12).map(lambda c: Money(Decimal(c).scaleb(-2)))
quantity = st.integers(1, 10**15).map(lambda q: Quantity(Decimal(q).scaleb(-9)))
holdings = st.builds(
    Holdings, cash, st.dictionaries(st.sampled_from(SYMBOLS), quantity, max_size=len(SYMBOLS))
)
books = st.dictionaries(
    st.integers(1, 50).map(lambda n: AccountId(f"ACC-{n:03d}")),
    holdings,
    min_size=1,
    max_size=8,
)


@given(books)
def test_a_book_and_a_broker_that_holds_the_same_reconcile(book: dict[AccountId, Holdings]) -> None:
    result = reconcile(book, Ledger(book))
    assert result.reconciled and result.differences == () and result.unopened == ()
    assert [a.account for a in result.accounts] == list(book)


@st.composite
def perturbed(draw: st.DrawFn) -> tuple[dict[AccountId, Holdings], Ledger, Difference]:
    """A book, a broker holding the same but for one change, and the difference expected."""
    book = draw(books)
    account = draw(st.sampled_from(sorted(book)))
    mine = book[account]
    step = draw(st.integers(1, 10**6) | st.integers(-(10**6), -1))
    held_symbols = sorted(mine.positions)
    others = [s for s in SYMBOLS if s not in mine.positions]
    kinds = ["cash"] + (["quantity", "drop"] if held_symbols else []) + (["add"] if others else [])
    kind = draw(st.sampled_from(kinds))
    positions = dict(mine.positions)
    new_cash = mine.cash
    if kind == "cash":
        new_cash = Money(mine.cash + Decimal(step).scaleb(-2))
        expected = Difference(account, K.CASH, None, mine.cash, new_cash)
    elif kind == "quantity":
        symbol = draw(st.sampled_from(held_symbols))
        moved = Quantity(positions[symbol] + Decimal(step).scaleb(-9))
        if moved <= 0:
            moved = Quantity(positions[symbol] + Decimal(abs(step)).scaleb(-9))
        positions[symbol] = moved
        expected = Difference(account, K.QUANTITY, symbol, mine.positions[symbol], moved)
    elif kind == "drop":
        symbol = draw(st.sampled_from(held_symbols))
        del positions[symbol]
        expected = Difference(account, K.MISSING_AT_BROKER, symbol, mine.positions[symbol], None)
    else:
        symbol = draw(st.sampled_from(others))
        positions[symbol] = draw(quantity)
        expected = Difference(account, K.MISSING_IN_BOOK, symbol, None, positions[symbol])
    broker = dict(book) | {account: Holdings(new_cash, positions)}
    return book, Ledger(broker), expected


@given(perturbed())
def test_any_single_change_at_the_broker_is_reported_exactly_once(
    case: tuple[dict[AccountId, Holdings], Ledger, Difference],
) -> None:
    book, broker, expected = case
    result = reconcile(book, broker)
    assert result.differences == (expected,)
    assert [a.account for a in result.accounts if not a.reconciled] == [expected.account]


# -- the allocation a run reached ------------------------------------------------------------

TARGETS = {Symbol("VTI"): d("0.6"), Symbol("BND"): d("0.4")}
PRICES = {Symbol("VTI"): d("100"), Symbol("BND"): d("50")}


def test_an_allocation_within_half_a_point_is_not_flagged_up_to_the_edge() -> None:
    # 6.05 VTI at 100 = 605.00, 7.9 BND at 50 = 395.00: 60.5% and 39.5%, exactly 0.5 pp off.
    edge = check_allocation(
        A1,
        TARGETS,
        {Symbol("VTI"): Quantity(d("6.05")), Symbol("BND"): Quantity(d("7.9"))},
        PRICES,
        Money(d("0.00")),
    )
    assert not edge.flagged and edge.reason == ""
    assert [(w.symbol, w.reached) for w in edge.weights] == [
        ("VTI", d("0.605")),
        ("BND", d("0.395")),
        (CASH, d("0")),
    ]
    # One cent more of VTI (6.0501 shares): 605.01 / 1000.01 = 60.50035...% and BND
    # 395 / 1000.01 = 39.49960...%: both just past the edge, both named (shown to 2 places).
    past = check_allocation(
        A1,
        TARGETS,
        {Symbol("VTI"): Quantity(d("6.0501")), Symbol("BND"): Quantity(d("7.9"))},
        PRICES,
        Money(d("0.00")),
    )
    assert past.flagged
    assert past.reason == (
        "account A1 is off its intended allocation by more than 0.50 percentage points: "
        "VTI 60.50% vs 60.00% intended; BND 39.50% vs 40.00% intended"
    )


def test_cash_and_untargeted_holdings_count_and_are_named() -> None:
    # 5 VTI = 500, 8 BND = 400, 1 GLD at 20 = 20, cash 80: total 1000.
    check = check_allocation(
        A1,
        TARGETS,
        {
            Symbol("VTI"): Quantity(d("5")),
            Symbol("BND"): Quantity(d("8")),
            Symbol("GLD"): Quantity(d("1")),
        },
        PRICES | {Symbol("GLD"): d("20")},
        Money(d("80.00")),
    )
    assert [(w.symbol, w.intended, w.reached) for w in check.weights] == [
        ("VTI", d("0.6"), d("0.5")),
        ("BND", d("0.4"), d("0.4")),
        ("GLD", d("0"), d("0.02")),
        (CASH, d("0"), d("0.08")),
    ]
    assert check.reason.endswith(
        "VTI 50.00% vs 60.00% intended; GLD 2.00% vs 0.00% intended; CASH 8.00% vs 0.00% intended"
    )


def test_an_allocation_that_cannot_be_measured_is_flagged_with_why() -> None:
    no_price = check_allocation(
        A1, TARGETS, {Symbol("VTI"): Quantity(d("1"))}, {}, Money(d("0.00"))
    )
    assert no_price.flagged and "no price for VTI" in no_price.reason
    empty = check_allocation(A1, TARGETS, {}, PRICES, Money(d("0.00")))
    assert empty.flagged and "has no value" in empty.reason
