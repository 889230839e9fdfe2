"""Tax reports of a tax-aware run, and the lots and notes each account's orders carry.

Every taxable account that trades, and every account the tax layer planned, gets its tax report
(`rebal.tax.account_report`): each sell's lots (the planner's own, or by the run's lot method),
realised short/long-term gains, the netted estimated tax and wash-sale flags (against the
household's recent trades and this run's buys). Other IRA/Roth accounts realise no taxable gain and
get the empty report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from rebal.core.trades import Trades
from rebal.tax.account_report import (
    AccountTaxReport,
    TradeTax,
    account_report,
    buy_trade,
    lot_json,
    report_json,
    sell_trade,
)
from rebal.tax.lots import LotMethod, LotSale, TaxLot, relieve_lots
from rebal.tax.money import ZERO, money_shown, shares_shown
from rebal.tax.plan import TaxPlan, evaluate
from rebal.tax.rates import AccountType
from rebal.tax.wash_sales import Side, Transaction, WashGuard
from rebal.tax_overlay.context import RunContext
from rebal.tax_overlay.convert import cents_to_money, isin, micro_to_shares
from rebal.tax_overlay.decisions import Decisions
from rebal.tax_overlay.settings import EMPTY_TAX, AccountTax


def tax_reports(ctx: RunContext, decided: Decisions, trades: Trades) -> dict[int, AccountTax]:
    """Tax reports of the taxable accounts that trade and of the accounts the tax layer
    planned (households), with the notes the steps `decided`; other IRA/Roth accounts get the
    empty report (no taxable gain)."""
    trading = trades.count > 0
    touched = np.zeros_like(trading)
    touched[list(decided.replans)] = True
    traded = [int(i) for i in np.flatnonzero(trading & (ctx.is_taxable | touched))]
    run_buys = _run_buys(ctx, trades, traded)
    out: dict[int, AccountTax] = {}
    for i in sorted(set(traded) | set(decided.notes)):
        note = "; ".join(decided.notes.get(i, ())) or None
        if i not in traded:
            out[i] = AccountTax(EMPTY_TAX | {"method": decided.methods.get(i)}, {}, note)
            continue
        hh = str(ctx.household[i])
        guard = ctx.guard_of(hh, tuple(run_buys.get(hh, ())))
        out[i] = _report(ctx, decided, i, trades, guard, note)
    return out


def _run_buys(ctx: RunContext, trades: Trades, reported: list[int]) -> dict[str, list[Transaction]]:
    """This run's buys in the households of the `reported` accounts, per household (so a
    loss sold while another account of the household buys is flagged)."""
    buyer, slot = np.nonzero(trades.buy_cents > 0)
    keep = isin(ctx.household[buyer], ctx.household[reported])
    buys: dict[str, list[Transaction]] = defaultdict(list)
    for i, k in zip(buyer[keep], slot[keep], strict=True):
        buys[str(ctx.household[i])].append(
            Transaction(
                0,
                ctx.settings.as_of,
                str(ctx.ids[i]),
                str(ctx.household[i]),
                AccountType(ctx.kind[i]),
                str(ctx.symbols[i, k]),
                Side.BUY,
                micro_to_shares(trades.buy_micro[i, k]) or Decimal(1),
                cents_to_money(trades.buy_cents[i, k]),
                f"run-{ctx.ids[i]}-{ctx.symbols[i, k]}",
            )
        )
    return buys


def _report(
    ctx: RunContext,
    decided: Decisions,
    i: int,
    trades: Trades,
    guard: WashGuard,
    note: str | None,
) -> AccountTax:
    """Row `i`'s tax report, its sells' lots, and its note (with the gain budget's effect)."""
    kind = AccountType(ctx.kind[i])
    account, hh = str(ctx.ids[i]), str(ctx.household[i])
    taxes: list[TradeTax] = []
    lots: dict[str, list[dict[str, Any]]] = {}
    sales: dict[str, tuple[LotSale, ...]] = {}
    sold: dict[str, Decimal] = {}
    for k in np.flatnonzero(trades.sell_micro[i] > 0):
        symbol = str(ctx.symbols[i, k])
        shares = micro_to_shares(trades.sell_micro[i, k])
        amount = cents_to_money(trades.sell_cents[i, k])
        trade = _sell(ctx, decided, i, symbol, shares, amount, kind, guard)
        taxes.append(trade)
        lots[symbol] = [lot_json(s) for s in trade.sales]
        sales[symbol] = trade.sales
        sold.update({s.lot_id: s.quantity for s in trade.sales})
    buys: dict[str, Decimal] = {}
    for k in np.flatnonzero(trades.buy_cents[i] > 0):
        symbol = str(ctx.symbols[i, k])
        buys[symbol] = cents_to_money(trades.buy_cents[i, k])
        taxes.append(
            buy_trade(
                account,
                kind,
                symbol,
                micro_to_shares(trades.buy_micro[i, k]),
                ctx.price[symbol],
                household=hh,
                guard=guard,
            )
        )
    report = account_report(account, kind, taxes, ctx.settings.rates)
    tax = report_json(report) | {"method": decided.methods.get(i), "outside_band": {}}
    notes = [note] if note else []
    if i in decided.raised and kind.taxable:
        notes += _given_up(ctx, report)
    problem = decided.problems.get(i)
    budget = ctx.settings.gain_budget
    if problem is not None and kind.taxable:
        try:
            result = evaluate(problem, TaxPlan("final", sold, buys))
        except (KeyError, StopIteration):  # lots sold outside the plan's positions
            result = None
        if result is not None:
            tax["outside_band"] = {s: float(v) for s, v in result.outside_band.items()}
            if result.outside_band and budget is not None:
                left = ", ".join(f"{s} {money_shown(v)}" for s, v in result.outside_band.items())
                notes.append(f"gain budget {money_shown(budget)} left outside the bands: {left}")
    return AccountTax(tax, lots, "; ".join(notes) or None, sales)


def _given_up(ctx: RunContext, report: AccountTaxReport) -> list[str]:
    """What raising the cash owed cost against the run's tax preferences, from the trades
    made: losses a wash sale disallows, short-term gains when forbidden, the gain past the
    budget. Nothing when the cash was raised within them."""
    s = ctx.settings
    out = []
    washed = sorted({t.symbol for t in report.trades if t.side is Side.SELL and t.wash_flag})
    if washed:
        out.append(
            f"losses sold to raise the cash owed although a wash sale disallows them: "
            f"{', '.join(washed)}"
        )
    if not s.short_term_gains and report.short_term_gains > 0:
        out.append(
            f"short-term gains of {money_shown(report.short_term_gains)} realised to raise the "
            "cash owed"
        )
    net = report.realized_st + report.realized_lt
    if s.gain_budget is not None and net > s.gain_budget:
        out.append(
            f"gain budget {money_shown(s.gain_budget)} exceeded by "
            f"{money_shown(net - s.gain_budget)} to raise the cash owed"
        )
    return out


def _sell(
    ctx: RunContext,
    decided: Decisions,
    i: int,
    symbol: str,
    quantity: Decimal,
    amount: Decimal,
    kind: AccountType,
    guard: WashGuard,
) -> TradeTax:
    """The tax of selling `quantity` of `symbol` for the order's `amount` in row `i`, lots by
    the run's method; the lots' proceeds sum exactly to `amount`."""
    account, hh = str(ctx.ids[i]), str(ctx.household[i])
    price = ctx.price[symbol]
    lots = ctx.lots.lots(account, symbol)
    if not lots:
        rationale = (
            f"Sell {shares_shown(quantity)} {symbol}: no tax in an {kind.value.upper()} account."
        )
        return TradeTax(
            account, kind, symbol, Side.SELL, quantity, price, (), ZERO, None, rationale
        )
    as_of, rates = ctx.settings.as_of, ctx.settings.rates
    chosen: Sequence[TaxLot] = lots
    ids: list[str] | None = None
    method = ctx.settings.lot_method
    if method is LotMethod.SPECIFIC:  # no lots named outside a plan: least tax
        method = LotMethod.MIN_TAX
    pieces = decided.lots.get((i, symbol))
    if pieces and quantity <= sum((p.quantity for p in pieces), ZERO):
        # The planner's (or the harvest's) own lots; named "by min-tax" when that is what
        # min-tax order gives anyway.
        named = [p.lot_id for p in pieces]
        planned = relieve_lots(pieces, quantity, LotMethod.SPECIFIC, price, as_of, lot_ids=named)
        natural = relieve_lots(lots, quantity, LotMethod.MIN_TAX, price, as_of, rates=rates)
        same = sorted((s.lot_id, s.quantity) for s in planned.sales) == sorted(
            (s.lot_id, s.quantity) for s in natural.sales
        )
        if not (same and method is LotMethod.MIN_TAX):
            chosen, ids, method = pieces, named, LotMethod.SPECIFIC
    trade, _ = sell_trade(
        account,
        kind,
        symbol,
        chosen,
        quantity,
        price,
        as_of,
        rates,
        method,
        lot_ids=ids,
        household=hh,
        guard=guard,
        proceeds=amount,
    )
    return trade
