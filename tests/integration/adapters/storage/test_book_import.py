"""Importing a book makes the store's book the one given: a changed model is a new version (an
unchanged one is not), holdings and prices are replaced as of the import, accounts left out are
closed, and the audit trail and the price history say what was there before. On every
implementation of the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

from rebal.adapters.memory.clock import SimulatedClock
from rebal.domain.account import Holding, Target
from rebal.domain.audit import AuditAction, Entity
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, ModelId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.io.book_records import book_snapshot, book_tables
from rebal.io.csvfiles import read_tables
from rebal.ports.storage import Store
from rebal.services.book import ImportSummary, export_book, import_book

SAMPLE = Path(str(resources.files("rebal") / "data" / "sample"))


def _sample(clock: SimulatedClock, accounts: int | None = None) -> BookSnapshot:
    """The sample book (its first ``accounts`` accounts: a smaller book runs faster)."""
    tables = read_tables(
        *(SAMPLE / f"{n}.csv" for n in ("models", "accounts", "holdings", "prices"))
    )
    book = book_snapshot(tables, clock.now())
    kept = book.accounts[:accounts]
    names = {a.id for a in kept}
    return replace(
        book, accounts=kept, holdings=tuple(h for h in book.holdings if h.account in names)
    )


def _import(store: Store, book: BookSnapshot, reason: str = "import") -> ImportSummary:
    with store.unit_of_work(actor="ops", reason=reason) as uow:
        summary = import_book(uow, book)
        uow.commit()
    return summary


def _export(store: Store) -> BookSnapshot:
    with store.unit_of_work(actor="ops", reason="export") as uow:
        return export_book(uow)


def test_the_sample_book_goes_in_and_comes_out_the_same(
    bare_store: Store, clock: SimulatedClock
) -> None:
    book = _sample(clock)
    summary = _import(bare_store, book)
    assert (summary.models, summary.accounts, summary.holdings, summary.prices) == (
        4,
        3000,
        24059,
        11,
    )
    assert summary.new_accounts == 3000 and summary.holdings_changed == 3000
    assert _export(bare_store) == book
    files = book_tables(_export(bare_store))
    for name, text in files.items():
        assert text == (SAMPLE / name).read_text(), name  # the sample is in canonical form


def test_importing_the_same_book_again_changes_nothing(
    bare_store: Store, clock: SimulatedClock
) -> None:
    book = _sample(clock, accounts=300)
    _import(bare_store, book)
    with bare_store.unit_of_work(actor="t", reason="r") as uow:
        trail = len(uow.audit.entries())
    clock.advance(timedelta(days=1))
    again = _import(
        bare_store, replace(book, prices=tuple(replace(p, at=clock.now()) for p in book.prices))
    )
    assert (
        again.new_versions,
        again.new_accounts,
        again.changed_accounts,
        again.closed_accounts,
        again.holdings_changed,
    ) == ((), 0, 0, 0, 0)
    with bare_store.unit_of_work(actor="t", reason="r") as uow:
        new_entries = uow.audit.entries()[trail:]
        assert [e.entity for e in new_entries] == [Entity.PRICES]  # re-quoted, nothing else
        assert [v.version for v in uow.models.history(ModelId("growth"))] == [1]


def test_a_reimport_versions_changed_models_and_replaces_holdings_and_prices(
    bare_store: Store, clock: SimulatedClock
) -> None:
    book = _sample(clock, accounts=300)
    _import(bare_store, book)
    first = clock.now()
    clock.advance(timedelta(days=1))
    growth = ModelId("growth")
    targets = [
        replace(t, weight=t.weight + Decimal("0.05"))
        if t.symbol == "VTI"
        else replace(t, weight=t.weight - Decimal("0.05"))
        if t.symbol == "VXUS"
        else t
        for t in book.models[growth]
    ]
    gone = AccountId("ACC-000300")
    changed = AccountId("ACC-000001")
    holdings = tuple(
        replace(h, quantity=Quantity(h.quantity + 1))
        if h.account == changed and h.symbol == "BND"
        else h
        for h in book.holdings
        if h.account != gone
    )
    accounts = tuple(
        replace(a, cash=Money(Decimal("10.00")), pending_cash=Money(Decimal("250.00")))
        if a.id == changed
        else a
        for a in book.accounts
        if a.id != gone
    )
    prices = tuple(
        replace(p, price=p.price * 2, at=clock.now()) for p in book.prices if p.symbol != "AAPL"
    )
    second = replace(
        book,
        models={**book.models, growth: tuple(targets)},
        accounts=accounts,
        holdings=holdings,
        prices=prices,
    )
    summary = _import(bare_store, second, reason="month-end book")

    assert summary.new_versions == ("growth v2",)
    assert (summary.new_accounts, summary.changed_accounts, summary.closed_accounts) == (0, 1, 1)
    assert summary.holdings_changed == 2  # the changed account and the closed one
    assert _export(bare_store) == second
    with bare_store.unit_of_work(actor="t", reason="r") as uow:
        old, new = uow.models.history(growth)
        assert old.targets == book.models[growth] and new.targets == tuple(targets)
        assert new.created_at == clock.now()
        closed = uow.accounts.get(gone)
        assert closed is not None and closed.closed_at == clock.now()
        assert uow.holdings.of(gone) == []
        assert uow.cash_flows.pending(changed)[0].amount == Decimal("250.00")
        # what was there before: in the audit trail and the price history
        [holdings_change] = [
            e for e in uow.audit.entries(Entity.HOLDINGS, changed) if e.reason == "month-end book"
        ]
        assert holdings_change.action is AuditAction.UPDATE
        assert holdings_change.actor == "ops" and holdings_change.at == clock.now()
        assert '"quantity":"261' in (holdings_change.before or "")
        assert '"quantity":"262' in (holdings_change.after or "")
        [closing] = [
            e for e in uow.audit.entries(Entity.HOLDINGS, gone) if e.reason == "month-end book"
        ]
        assert closing.action is AuditAction.DELETE and closing.after is None
        history = uow.prices.history(Symbol("VTI"))
        assert [(p.price, p.at) for p in history] == [
            (Decimal("334.87"), first),
            (Decimal("669.74"), clock.now()),
        ]
        assert uow.prices.quotes([Symbol("AAPL")], clock.now()) == {}
        assert uow.prices.quotes([Symbol("AAPL")], first)[Symbol("AAPL")].price == Decimal("268.42")


def test_a_model_left_out_is_retired_and_comes_back_unchanged(
    bare_store: Store, clock: SimulatedClock
) -> None:
    cash = (Target(symbol=Symbol("CASH"), weight=Decimal(1)),)
    one = BookSnapshot(
        models={ModelId("a"): cash, ModelId("b"): cash}, accounts=(), holdings=(), prices=()
    )
    _import(bare_store, one)
    summary = _import(bare_store, replace(one, models={ModelId("a"): cash}))
    assert summary.retired == ("b",)
    assert list(_export(bare_store).models) == ["a"]
    summary = _import(bare_store, one)
    assert summary.new_versions == () and list(_export(bare_store).models) == ["a", "b"]


def test_a_holding_of_nine_decimals_is_stored_exactly(
    bare_store: Store, clock: SimulatedClock
) -> None:
    book = _sample(clock, accounts=10)
    account = book.accounts[0].id
    fine = Holding(account=account, symbol=Symbol("VTI"), quantity=Quantity(Decimal("0.123456789")))
    _import(bare_store, replace(book, holdings=(*book.holdings, fine)))
    kept = [h for h in _export(bare_store).holdings if h.account == account][-1]
    assert kept == fine and format(kept.quantity.normalize(), "f") == "0.123456789"
