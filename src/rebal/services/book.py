"""The book in the store: import a book (the four tables) into it, read it back out, and which
lots the sells' fills relieve (:class:`SellRelief`).

An import makes the store's book the one given, as of the unit of work's instant, and keeps
what was there before in the history:

* a model whose targets changed gets a new version (an unchanged one does not); a model no
  longer given is retired (its versions stay);
* accounts are created or updated; an account no longer given is closed (kept, with its
  history, but out of the book) and its holdings and pending cash go;
* each account's holdings are replaced by the given ones (only where they changed);
* the price list is replaced: the given prices are quoted at the import, earlier quotes stay
  in the price history;
* every change is in the audit trail with the unit of work's actor and reason.

All of it happens in the caller's unit of work: the caller commits, or nothing is kept.

A sell fill relieves the lots its order's lot instruction names (a harvest's sells carry one),
fill after fill in the instructed order: a fill takes the instruction's shares from where the
order's earlier fills left off. Shares the instruction cannot place (the lot named is gone or
holds fewer shares, as when the book changed between the plan and the fill) come off the
symbol's remaining lots oldest first, the book's default, and the run gets an event saying so.
A sell without an instruction relieves the oldest lots first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from rebal.domain.account import Account, Holding
from rebal.domain.book import BookSnapshot
from rebal.domain.firm import Firm
from rebal.domain.ids import AccountId, ClientOrderId, ModelId
from rebal.domain.money import NO_MONEY
from rebal.domain.order import Fill, Order, Side
from rebal.ports.storage import UnitOfWork
from rebal.tax.realised import relieve, relieve_sale

#: The steps of an import, in order, as :func:`import_book` reports them.
STEPS = ("models", "accounts", "holdings", "prices")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSummary:
    """What an import found and changed."""

    models: int
    new_versions: tuple[str, ...]  # "growth v2", ...
    retired: tuple[ModelId, ...]
    accounts: int
    new_accounts: int
    changed_accounts: int
    closed_accounts: int
    holdings: int
    holdings_changed: int  # accounts whose holdings were replaced
    prices: int


def _by_account(holdings: Iterable[Holding]) -> dict[AccountId, list[Holding]]:
    grouped: dict[AccountId, list[Holding]] = defaultdict(list)
    for holding in holdings:
        grouped[holding.account].append(holding)
    return grouped


def import_book(
    uow: UnitOfWork, book: BookSnapshot, step: Callable[[str], None] = lambda _: None
) -> ImportSummary:
    """Make the store's book ``book`` (see the module docstring); ``step`` is told the name of
    each step of :data:`STEPS` as it begins."""
    if uow.firms.get(uow.firm) is None:
        uow.firms.add(Firm(id=uow.firm, name=uow.firm, created_at=uow.now))

    step("models")
    before_models = {v.model: v for v in uow.models.current()}
    new_versions = []
    for model, targets in book.models.items():
        known = before_models.get(model) or uow.models.latest(model)
        stored = uow.models.set_targets(model, targets)
        if known is None or stored.version != known.version:
            new_versions.append(f"{model} v{stored.version}")
    retired = tuple(m for m in before_models if m not in book.models)
    for model in retired:
        uow.models.retire(model)

    step("accounts")
    before = {a.id: a for a in uow.accounts.list()}
    given = {a.id for a in book.accounts}
    closed = [
        replace(a, closed_at=uow.now, pending_cash=NO_MONEY)
        for a in before.values()
        if a.id not in given
    ]
    uow.accounts.save([*book.accounts, *closed])

    step("holdings")
    held = _by_account(book.holdings)
    wanted: Mapping[AccountId, Sequence[Holding]] = {
        **{a.id: held.get(a.id, []) for a in book.accounts},
        **{a.id: [] for a in closed},
    }
    replaced = uow.holdings.replace(wanted)

    step("prices")
    uow.prices.record(book.prices, replace_all=True)
    return ImportSummary(
        models=len(book.models),
        new_versions=tuple(new_versions),
        retired=retired,
        accounts=len(book.accounts),
        new_accounts=sum(a.id not in before for a in book.accounts),
        changed_accounts=sum(a.id in before and before[a.id] != a for a in book.accounts),
        closed_accounts=len(closed),
        holdings=len(book.holdings),
        holdings_changed=len(replaced),
        prices=len(book.prices),
    )


def export_book(uow: UnitOfWork) -> BookSnapshot:
    """The store's book: the latest version of every model in it, the open accounts, their
    holdings and the current prices, each in book order."""
    accounts: tuple[Account, ...] = tuple(uow.accounts.list())
    return BookSnapshot(
        models={v.model: v.targets for v in uow.models.current()},
        accounts=accounts,
        holdings=tuple(uow.holdings.all()),
        prices=tuple(uow.prices.current()),
    )


@dataclass(slots=True)
class SellRelief:
    """How one batch of new fills relieves lots (see the module docstring): ``orders`` are the
    instructed sells among their orders, ``placed`` the shares of each instruction already
    placed, ``notes`` the run events of instructions that no longer matched."""

    orders: dict[ClientOrderId, Order]
    placed: dict[ClientOrderId, Decimal]
    notes: list[tuple[Order, str]] = field(default_factory=list)

    @classmethod
    def of(
        cls, uow: UnitOfWork, fills: Sequence[Fill], known: Mapping[ClientOrderId, Order]
    ) -> SellRelief:
        """The relief of ``fills`` (new, already stored): their orders from ``known`` or the
        store, and the shares the instructed ones' earlier fills took."""
        ids = sorted({f.client_order_id for f in fills if f.side is Side.SELL})
        orders = {cid: known.get(cid) or uow.orders.get(cid) for cid in ids}
        instructed = {cid: o for cid, o in orders.items() if o is not None and o.lots is not None}
        new: dict[ClientOrderId, Decimal] = defaultdict(Decimal)
        for fill in fills:
            new[fill.client_order_id] += fill.quantity
        stored = uow.fills.for_orders(sorted(instructed)) if instructed else {}
        placed = {
            cid: sum((f.quantity for f in stored.get(cid, ())), Decimal(0)) - new[cid]
            for cid in instructed
        }
        return cls(instructed, placed)

    def relieve(self, lots: list[Holding], fill: Fill) -> tuple[list[Holding], list[Holding]]:
        """``lots`` less sell ``fill``'s shares, and the shares relieved (a part per lot)."""
        order = self.orders.get(fill.client_order_id)
        if order is None:
            return relieve(lots, fill.account, fill.symbol, fill.quantity)
        start = self.placed[fill.client_order_id]
        self.placed[fill.client_order_id] = start + fill.quantity
        lots, relieved, misses = relieve_sale(
            lots, fill.account, fill.symbol, fill.quantity, order.lots, start
        )
        if misses:
            self.notes.append(
                (
                    order,
                    f"order {order.client_order_id}, fill {fill.id}: the lot instruction no "
                    f"longer matches the book: {'; '.join(misses)}; those shares came off the "
                    "oldest lots instead",
                )
            )
        return lots, relieved

    def record(self, uow: UnitOfWork) -> None:
        """Each instruction that did not match, an event of its order's run."""
        for order, text in self.notes:
            if order.run is not None:
                uow.runs.note(order.run, uow.now, text)
