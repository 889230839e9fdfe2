"""The book in the store: import a book (the four tables) into it, read it back out.

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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from rebal.domain.account import Account, Holding
from rebal.domain.book import BookSnapshot
from rebal.domain.firm import Firm
from rebal.domain.ids import AccountId, ModelId
from rebal.domain.money import NO_MONEY
from rebal.ports.storage import UnitOfWork

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
