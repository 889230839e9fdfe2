"""A tax-aware run: the engine's proposal, the tax steps in order, the new orders spliced in.

`run_tax_aware` checks the inputs and runs the engine; `apply_tax` runs the steps in order, each
a function of the run's `RunContext` and what the earlier steps decided that returns its own
`Decisions` (households, wash-safe buys, taxable plans, harvesting; the plans also hand the
harvest what the run buys and sells at a loss per household), and lays them over each other.
`splice` re-makes the orders of the rows they re-planned with the core's own `generate_trades`
(same tradable mask, cash kept, minimum trade and share rounding), clears the orders of the
rows held, and reports the tax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from rebal.core.engine import (
    NO_POLICY,
    ChunkExecutor,
    Proposal,
    RunConfig,
    propose,
    weights_after,
)
from rebal.core.status import Unresolved
from rebal.core.trades import Trades, generate_trades
from rebal.errors import InputError, Problem
from rebal.io.book_arrays import Book, build_book
from rebal.io.tables import Tables
from rebal.tax_overlay.context import RunContext
from rebal.tax_overlay.decisions import Decisions
from rebal.tax_overlay.harvesting import harvest
from rebal.tax_overlay.households import rebalance_households
from rebal.tax_overlay.inputs import check_lots, substitute_slots
from rebal.tax_overlay.planning import plan_taxable
from rebal.tax_overlay.run_reports import tax_reports
from rebal.tax_overlay.settings import TaxAwareProposal, TaxSettings
from rebal.tax_overlay.wash import wash_safe_buys


def run_tax_aware(
    tables: Tables,
    config: RunConfig,
    settings: TaxSettings,
    flows: Mapping[str, int] | None = None,
    holdings_name: str = "holdings",
    on_progress: Callable[[int, int], None] | None = None,
    executor: ChunkExecutor | None = None,
) -> tuple[Book, TaxAwareProposal]:
    """Check the lots, build the book (with substitute slots), run the engine, apply the tax
    layer. Raises InputError for unusable lots or withdrawal dates of unknown accounts."""
    check_lots(tables, settings.as_of, holdings_name)
    unknown = sorted(set(settings.withdrawal_dates) - set(tables.accounts["account"]))
    if unknown:
        message = f"unknown account(s): {', '.join(unknown)}"
        raise InputError([Problem("--withdrawal-date", None, None, message)])
    extra = substitute_slots(tables, settings.substitutes) if settings.substitutes else None
    book = build_book(tables, flows, extra)
    proposal = propose(book.arrays, config, on_progress, executor)
    return book, apply_tax(book, tables, proposal, config, settings)


def apply_tax(
    book: Book, tables: Tables, proposal: Proposal, config: RunConfig, settings: TaxSettings
) -> TaxAwareProposal:
    """Re-plan the accounts where tax matters and report every trading account's tax."""
    ctx = RunContext.of(book, tables, proposal, config, settings)
    decided = rebalance_households(ctx) if settings.household else Decisions()
    decided = decided.then(wash_safe_buys(ctx, decided))
    plans, trades = plan_taxable(ctx, decided)
    decided = decided.then(plans)
    if settings.tlh:
        decided = decided.then(harvest(ctx, decided, trades))
    return splice(ctx, decided)


def splice(ctx: RunContext, decided: Decisions) -> TaxAwareProposal:
    """Re-make the orders of the rows `decided` re-plans, clear those of the rows it holds,
    splice them, and report the tax."""
    a, p = ctx.book.arrays, ctx.proposal
    t = p.trades
    fields = {
        "sell_micro": t.sell_micro.copy(),
        "sell_cents": t.sell_cents.copy(),
        "buy_cents": t.buy_cents.copy(),
        "buy_micro": t.buy_micro.copy(),
        "cash_after_cents": t.cash_after_cents.copy(),
        "dropped": t.dropped.copy(),
    }
    policy = p.policy.copy()
    replans = decided.replans
    rows = np.array(sorted(set(replans) - decided.held), dtype=np.int64)
    if rows.size:
        flow = np.where([replans[r].with_flow for r in rows], a.pending_cents[rows], 0)
        new = generate_trades(
            a.quantity_micro[rows],
            a.price[rows],
            np.stack([replans[r].desired for r in rows]),
            a.cash_cents[rows],
            flow,
            ctx.keep[rows],
            ctx.used[rows] & ~a.restricted[rows] & ctx.checkable[rows, None],
            ctx.config.rules,
        )
        for name, values in fields.items():
            values[rows] = getattr(new, name)
    held = np.array(sorted(decided.held), dtype=np.int64)
    if held.size:
        for name in ("sell_micro", "sell_cents", "buy_cents", "buy_micro", "dropped"):
            fields[name][held] = 0
        fields["cash_after_cents"][held] = a.cash_cents[held]
        policy[held] = NO_POLICY
    trades = Trades(**fields)
    # The engine's word on breaches its orders leave stands where its orders do.
    unresolved = p.unresolved.copy()
    unresolved[np.concatenate([rows, held])] = Unresolved.NONE
    proposal = Proposal(
        drift=p.drift,
        statuses=p.statuses,
        policy=policy,
        trades=trades,
        weight_after=weights_after(a, p.drift, trades),
        unresolved=unresolved,
        unresolved_subject=p.unresolved_subject,
    )
    return TaxAwareProposal(proposal, tax_reports(ctx, decided, trades))
