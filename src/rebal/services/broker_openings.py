"""Opening the book's accounts at a broker that accounts can be brought to (the simulated
custodian): each account arrives as a transfer-in of exactly the cash and shares the book holds,
so that, before anything trades, the book and the broker reconcile."""

from __future__ import annotations

from collections.abc import Mapping

from rebal.domain.ids import AccountId
from rebal.ports.broker import Opening, OpensAccounts
from rebal.services.reconcile import Holdings


def open_from_book(
    broker: OpensAccounts, book: Mapping[AccountId, Holdings]
) -> frozenset[AccountId]:
    """Open every account of ``book`` (:func:`rebal.services.reconcile.book_holdings`) that the
    broker does not keep yet, with the book's cash and positions; an account already open is
    left as it is. Returns the accounts opened now."""
    return broker.open_accounts(
        {a: Opening(cash=h.cash, positions=dict(h.positions)) for a, h in book.items()}
    )
