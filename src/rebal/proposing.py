"""Drift and proposals over the four tables, the path every entry point takes; and the planner
of a run from a stored book.

:func:`drift_tables` and :func:`propose_tables` are the use cases of
:mod:`rebal.services.usecases` over validated tables: they arrange the tables into the core's
arrays (with the request's deposits and withdrawals) and run the use case, or the tax-aware run
for a ``tax_aware`` request. ``rebal drift``/``rebal propose`` and :mod:`rebal.api` both call
them, so the two cannot decide differently. They live outside :mod:`rebal.services` because
arranging the tables needs pandas.

A run's use case (:mod:`rebal.services.runs`) knows no tables or arrays; it asks a planner for
the orders of a :class:`~rebal.domain.book.BookSnapshot`. :class:`CorePlanner` is that planner:
the snapshot becomes the four tables (:func:`rebal.io.book_records.book_tables`), validated as a
file would be, arranged by :func:`rebal.io.book_arrays.build_book` and proposed by the core's
engine, and the orders come back as domain records (sells in shares; buys in shares and an estimated
amount, which the run sizes again from the cash the sells actually raised). A harvest run's
planner (:class:`rebal.harvest_planner.HarvestPlanner`) shares the tables (:func:`stored_tables`)
and the orders' conversion (:func:`plan_of`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import pandas as pd

from rebal.core.engine import ChunkExecutor, Proposal, RunConfig, propose
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.money import Money, from_cents, from_micro, to_cents
from rebal.domain.order import LotInstruction, Side
from rebal.domain.proposal import AccountProposal, ProposedOrder
from rebal.domain.run import RunType
from rebal.io.book_arrays import Book, build_book
from rebal.io.book_records import book_tables
from rebal.io.tables import Tables, validate_tables
from rebal.proposal_output import reasons, status_labels, trades_frame
from rebal.services import usecases
from rebal.services.requests import DriftRequest, ProposeRequest
from rebal.services.scheduler import PolicyTerms
from rebal.tax_overlay import TaxAwareProposal, run_tax_aware


@dataclass(frozen=True, slots=True)
class Proposed:
    """A drift or propose result over tables: the book as arrays, the proposal and, for a
    tax-aware request, the tax annotation (its ``proposal`` is ``proposal``)."""

    book: Book
    proposal: Proposal
    tax: TaxAwareProposal | None = None


def drift_tables(
    request: DriftRequest,
    tables: Tables,
    executor: ChunkExecutor | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Proposed:
    """Drift and statuses of every account of ``tables``."""
    book = build_book(tables)
    return Proposed(book, usecases.drift(request, book.arrays, executor, on_progress))


def propose_tables(
    request: ProposeRequest,
    tables: Tables,
    today: date,
    executor: ChunkExecutor | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    holdings_name: str = "holdings",
) -> Proposed:
    """The orders of every account of ``tables``; a tax-aware request's trade date is ``today``
    unless it gives ``as_of``. Raises :class:`rebal.io.book_arrays.FlowError` for a flow the book
    cannot take and, tax-aware, :class:`rebal.errors.InputError` for unusable lots (in
    ``holdings_name``) or dates."""
    settings = request.tax_settings(today)
    if settings is None:
        book = build_book(tables, request.flows())
        return Proposed(book, usecases.propose(request, book.arrays, executor, on_progress))
    book, taxed = run_tax_aware(
        tables, request.config(), settings, request.flows(), holdings_name, on_progress, executor
    )
    return Proposed(book, taxed.proposal, taxed)


#: The core's policy each run type trades to; ``rebalance`` uses the configured one.
_POLICY_OF = {
    RunType.INVEST_CASH: "cash-flow",
    RunType.RAISE_CASH: "cash-flow",
    RunType.LIQUIDATION: "liquidation",
}


def stored_tables(book: BookSnapshot) -> Tables:
    """The four tables of a stored book (with its lots), validated as files would be."""
    texts = book_tables(book)
    frames = [
        pd.read_csv(io.StringIO(texts[name]), dtype=str, keep_default_na=False)
        for name in ("models.csv", "accounts.csv", "holdings.csv", "prices.csv")
    ]
    return validate_tables(*frames)


def arrays_of(book: BookSnapshot, flows: Mapping[AccountId, int] | None = None) -> Book:
    """The core's arrays of a stored book (``flows``: cents to deposit, or withdraw, per
    account): its tables (:func:`stored_tables`) arranged by
    :func:`rebal.io.book_arrays.build_book`."""
    return build_book(stored_tables(book), {str(a): c for a, c in (flows or {}).items()})


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a planner proposes: each account's outcome and the orders, sells first. A buy
    carries both its estimated quantity and its estimated amount (``notional``) so that the
    run can size it in either unit."""

    accounts: tuple[AccountProposal, ...]
    orders: tuple[tuple[ProposedOrder, Money], ...]  # (order, estimated amount)
    #: the lot instruction of a sell, by its account and symbol (none: the oldest lots first)
    lots: Mapping[tuple[AccountId, Symbol], LotInstruction] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CorePlanner:
    """Proposes with the core's engine under ``config`` (policy, bands, trade rules)."""

    config: RunConfig

    def for_policy(self, terms: PolicyTerms) -> CorePlanner:
        """This planner trading an account's own policy terms: ``tiered`` for a tiered
        trigger; its own bands (each kind it sets, the other kind unset) and wide bands."""
        bands = self.config.bands
        if terms.own_bands:
            bands = replace(bands, band_abs=terms.band_abs, band_rel=terms.band_rel)
        if terms.own_wide:
            bands = replace(bands, wide_abs=terms.wide_abs, wide_rel=terms.wide_rel)
        policy = "tiered" if terms.tiered else self.config.policy
        return CorePlanner(replace(self.config, policy=policy, bands=bands))

    def __call__(
        self, book: BookSnapshot, run_type: RunType, flows: Mapping[AccountId, Money]
    ) -> RunPlan:
        """The orders of ``book`` for a run of ``run_type``; ``flows`` are deposits (positive)
        and withdrawals (negative) to trade for, per account."""
        if run_type is RunType.HARVEST:
            raise ValueError("a harvest run is planned by rebal.harvest_planner.HarvestPlanner")
        arrays = arrays_of(book, {a: to_cents(m) for a, m in flows.items()})
        policy = _POLICY_OF.get(run_type, self.config.policy)
        proposal = propose(arrays.arrays, replace(self.config, policy=policy))
        return plan_of(arrays, proposal, run_type, reasons(arrays, proposal))


def plan_of(arrays: Book, proposal: Proposal, run_type: RunType, why: Sequence[str]) -> RunPlan:
    """The :class:`RunPlan` of ``proposal`` on ``arrays``: its orders as domain records (no sells
    in an ``invest_cash`` run) and each account's status with its reason ``why``."""
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
        for a, s, r in zip(ids, status_labels(proposal), why, strict=True)
    )
    return RunPlan(accounts=outcome, orders=tuple(orders))
