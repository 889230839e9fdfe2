"""Per-account tax report of a proposal: realised gains and losses, estimated tax, lots sold,
wash-sale flags and a plain-words rationale per trade.

Each sell is priced lot by lot (`rebal.tax.lots.relieve_lots` with the account's lot method);
its own tax effect is the marginal estimate (short-term result × short-term rate + long-term
result × long-term rate, negative when it saves tax), while the account's estimated tax nets all
its trades first (`rebal.tax.rates.estimated_tax`). IRA and Roth accounts realise no taxable gain:
their lots sold are listed, their realised and taxed amounts are zero. JSON (docs/output.md) has a
``tax`` object per account (``realized_st``, ``realized_lt``, ``estimated_tax``,
``wash_sale_flags``) and a ``lot`` list on each sell trade.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from rebal.tax.lots import LotMethod, LotSale, Relief, TaxLot, Term, relieve_lots
from rebal.tax.money import ZERO, money_shown, shares_shown, to_cents
from rebal.tax.rates import AccountType, TaxRates, estimated_tax
from rebal.tax.wash_sales import Side, WashGuard


@dataclass(frozen=True)
class TradeTax:
    """The tax effect of one trade; `sales` is empty for a buy."""

    account: str
    account_type: AccountType
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    sales: tuple[LotSale, ...]
    marginal_tax: Decimal
    wash_flag: str | None
    rationale: str


def _marginal(sales: Sequence[LotSale], rates: TaxRates, account_type: AccountType) -> Decimal:
    if not account_type.taxable:
        return ZERO
    st = sum((s.gain for s in sales if s.term is Term.SHORT), ZERO)
    lt = sum((s.gain for s in sales if s.term is Term.LONG), ZERO)
    return to_cents(st * rates.short_term_total + lt * rates.long_term_total)


def _describe(sale: LotSale) -> str:
    kind = "gain" if sale.gain >= 0 else "loss"
    return (
        f"{shares_shown(sale.quantity)} of lot {sale.lot_id} (acquired {sale.acquired}, "
        f"{sale.term}-term {kind} {money_shown(abs(sale.gain))})"
    )


def sell_trade(
    account: str,
    account_type: AccountType,
    symbol: str,
    lots: Sequence[TaxLot],
    quantity: Decimal,
    price: Decimal,
    as_of: date,
    rates: TaxRates,
    method: LotMethod,
    *,
    lot_ids: Sequence[str] | None = None,
    household: str | None = None,
    guard: WashGuard | None = None,
    proceeds: Decimal | None = None,
) -> tuple[TradeTax, Relief]:
    """Relieve the lots of a sell and explain its tax effect; also returns the relief.

    `proceeds` is the order's amount in cents when it is known: the lots' proceeds are split
    from it (cent-rounded, summing exactly to it), so a sell and its lots never differ by a
    cent; without it they are split from `quantity * price`.

    ``min-tax`` ranks lots by tax per share at `rates`, the order the rule-based rebalancer
    (`rebal.tax.rulebased`) sells in within a position; when short-term gains are forbidden
    the planned lots must be named instead (``specific`` with `lot_ids`).
    """
    relief = relieve_lots(
        lots, quantity, method, price, as_of, lot_ids=lot_ids, proceeds=proceeds, rates=rates
    )
    tax = _marginal(relief.sales, rates, account_type)
    flag = None
    loss = any(s.gain < 0 for s in relief.sales)
    if guard is not None and loss and account_type.taxable:
        in_full = {(account, s.lot_id) for s in relief.sales}
        buy = guard.loss_sale_blocker(household or account, symbol, in_full)
        if buy is not None:
            flag = (
                f"wash sale: the loss on {symbol} is disallowed, {buy.symbol} was bought on "
                f"{buy.trade_date} in {buy.account}"
            )
    parts = "; ".join(_describe(s) for s in relief.sales)
    if account_type.taxable:
        effect = (
            f"estimated tax {money_shown(tax)}"
            if tax >= 0
            else f"estimated tax saved {money_shown(-tax)}"
        )
    else:
        effect = f"no tax in an {account_type.value.upper()} account"
    rationale = f"Sell {shares_shown(quantity)} {symbol} by {method.value}: {parts}; {effect}."
    if flag:
        rationale += f" Warning: {flag}."
    sales = relief.sales
    trade = TradeTax(
        account, account_type, symbol, Side.SELL, quantity, price, sales, tax, flag, rationale
    )
    return trade, relief


def buy_trade(
    account: str,
    account_type: AccountType,
    symbol: str,
    quantity: Decimal,
    price: Decimal,
    *,
    household: str | None = None,
    guard: WashGuard | None = None,
) -> TradeTax:
    """A buy has no tax effect of its own, unless it washes a recent loss."""
    flag = None
    loss = guard.buy_blocker(household or account, symbol) if guard is not None else None
    if loss is not None:
        flag = (
            f"wash sale: buying {symbol} disallows the loss on {loss.symbol} sold on {loss.sold} "
            f"in {loss.account}"
        )
    rationale = f"Buy {shares_shown(quantity)} {symbol}: no tax effect."
    if flag:
        rationale = f"Buy {shares_shown(quantity)} {symbol}. Warning: {flag}."
    return TradeTax(
        account, account_type, symbol, Side.BUY, quantity, price, (), ZERO, flag, rationale
    )


@dataclass(frozen=True)
class AccountTaxReport:
    """Realised gains and losses of one account's trades and the tax they cost."""

    account: str
    account_type: AccountType
    trades: tuple[TradeTax, ...]
    short_term_gains: Decimal
    short_term_losses: Decimal
    long_term_gains: Decimal
    long_term_losses: Decimal
    estimated_tax: Decimal

    @property
    def realized_st(self) -> Decimal:
        """Net short-term result (taxable accounts only)."""
        return self.short_term_gains - self.short_term_losses

    @property
    def realized_lt(self) -> Decimal:
        """Net long-term result (taxable accounts only)."""
        return self.long_term_gains - self.long_term_losses

    @property
    def wash_sale_flags(self) -> tuple[str, ...]:
        """Every trade's wash-sale warning."""
        return tuple(t.wash_flag for t in self.trades if t.wash_flag)

    @property
    def lots_sold(self) -> tuple[tuple[str, LotSale], ...]:
        """(symbol, lot part) of every sell."""
        return tuple((t.symbol, s) for t in self.trades for s in t.sales)


def account_report(
    account: str, account_type: AccountType, trades: Sequence[TradeTax], rates: TaxRates
) -> AccountTaxReport:
    """Sum an account's trades into its tax report."""
    sums = {(term, gain): ZERO for term in Term for gain in (True, False)}
    if account_type.taxable:
        for trade in trades:
            for sale in trade.sales:
                sums[(sale.term, sale.gain >= 0)] += abs(sale.gain)
    st_gain, st_loss = sums[(Term.SHORT, True)], sums[(Term.SHORT, False)]
    lt_gain, lt_loss = sums[(Term.LONG, True)], sums[(Term.LONG, False)]
    tax = estimated_tax(st_gain - st_loss, lt_gain - lt_loss, rates, account_type)
    return AccountTaxReport(
        account, account_type, tuple(trades), st_gain, st_loss, lt_gain, lt_loss, tax
    )


def lot_json(sale: LotSale) -> dict[str, Any]:
    """One lot part sold, for the ``lot`` list of a sell trade in JSON."""
    return {
        "lot_id": sale.lot_id,
        "quantity": float(sale.quantity),
        "acquired": sale.acquired.isoformat(),
        "term": str(sale.term),
        "basis": float(to_cents(sale.basis)),
        "proceeds": float(to_cents(sale.proceeds)),
        "gain": float(to_cents(sale.gain)),
    }


def report_json(report: AccountTaxReport) -> dict[str, Any]:
    """The ``tax`` object of an account in the JSON output."""
    money = {
        "realized_st": report.realized_st,
        "realized_lt": report.realized_lt,
        "short_term_gains": report.short_term_gains,
        "short_term_losses": report.short_term_losses,
        "long_term_gains": report.long_term_gains,
        "long_term_losses": report.long_term_losses,
        "estimated_tax": report.estimated_tax,
    }
    return {
        **{key: float(to_cents(value)) for key, value in money.items()},
        "wash_sale_flags": list(report.wash_sale_flags),
        "trades": [
            {
                "symbol": t.symbol,
                "side": str(t.side),
                "quantity": float(t.quantity),
                "lot": [lot_json(s) for s in t.sales],
                "marginal_tax": float(t.marginal_tax),
                "rationale": t.rationale,
            }
            for t in report.trades
        ],
    }
