"""Proposals for a run, from a stored book: the same path ``rebal propose`` takes.

A run's use case (:mod:`rebal.services.runs`) knows no tables or arrays; it asks a planner for
the orders of a :class:`~rebal.domain.book.BookSnapshot`. :class:`CorePlanner` is that planner:
the snapshot becomes the four tables (:func:`rebal.io.book_records.book_tables`), validated as a
file would be, arranged by :func:`rebal.book.build_book` and proposed by the core's engine, and
the orders come back as domain records (sells in shares; buys in shares and an estimated
amount, which the run sizes again from the cash the sells actually raised).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, replace

import pandas as pd

from rebal.book import build_book
from rebal.core.engine import RunConfig, propose
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.money import Money, from_cents, from_micro, to_cents
from rebal.domain.order import Side
from rebal.domain.proposal import AccountProposal, ProposedOrder
from rebal.domain.run import RunType
from rebal.io.book_records import book_tables
from rebal.io.tables import validate_tables
from rebal.report import reasons, status_labels, trades_frame

#: The core's policy each run type trades to; ``rebalance`` uses the configured one.
_POLICY_OF = {
    RunType.INVEST_CASH: "cash-flow",
    RunType.RAISE_CASH: "cash-flow",
    RunType.LIQUIDATION: "liquidation",
}


@dataclass(frozen=True, slots=True)
class Plan:
    """What a planner proposes: each account's outcome and the orders, sells first. A buy
    carries both its estimated quantity and its estimated amount (``notional``) so that the
    run can size it in either unit."""

    accounts: tuple[AccountProposal, ...]
    orders: tuple[tuple[ProposedOrder, Money], ...]  # (order, estimated amount)


@dataclass(frozen=True, slots=True)
class CorePlanner:
    """Proposes with the core's engine under ``config`` (policy, bands, trade rules)."""

    config: RunConfig

    def __call__(
        self, book: BookSnapshot, run_type: RunType, flows: Mapping[AccountId, Money]
    ) -> Plan:
        """The orders of ``book`` for a run of ``run_type``; ``flows`` are deposits (positive)
        and withdrawals (negative) to trade for, per account."""
        if run_type is RunType.HARVEST:
            raise ValueError("harvest runs are not available yet: use rebal propose --tlh")
        texts = book_tables(book)
        frames = [
            pd.read_csv(io.StringIO(texts[name]), dtype=str, keep_default_na=False)
            for name in ("models.csv", "accounts.csv", "holdings.csv", "prices.csv")
        ]
        tables = validate_tables(*frames)
        arrays = build_book(tables, {a: to_cents(m) for a, m in flows.items()})
        policy = _POLICY_OF.get(run_type, self.config.policy)
        proposal = propose(arrays.arrays, replace(self.config, policy=policy))
        trades = trades_frame(arrays, proposal)
        orders = []
        columns = ("account", "symbol", "side", "quantity_micro", "amount_cents")
        for account, symbol, side_name, micro, amount in zip(
            *(trades[c].tolist() for c in columns), strict=True
        ):
            side = Side(side_name)
            if side is Side.SELL and run_type is RunType.INVEST_CASH:
                continue
            order = ProposedOrder(
                account=AccountId(str(account)),
                symbol=Symbol(str(symbol)),
                side=side,
                quantity=from_micro(int(micro)),
            )
            orders.append((order, from_cents(int(amount))))
        ids = arrays.accounts["account"].to_numpy()
        outcome = tuple(
            AccountProposal(account=AccountId(str(a)), status=str(s), reason=str(r))
            for a, s, r in zip(ids, status_labels(proposal), reasons(arrays, proposal), strict=True)
        )
        return Plan(accounts=outcome, orders=tuple(orders))
