"""A run's result in people's and programs' terms: DataFrames, the JSON document, reasons.

Exact quantities leave the core as integer micro-shares and cents; here they become
``Decimal`` (``Decimal(n).scaleb(-6)``), never passing through a float. Analytics (weights,
drift, band edges) are float64 rounded explicitly to 4 decimals of a percent.

The JSON document (``docs/output.md`` is its reference) has top-level keys ``accounts`` and
``blotter``; keys are a public interface: extend, never rename.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rebal.book import Book
from rebal.core.engine import NO_POLICY, POLICY_NAMES, Proposal
from rebal.core.status import CASH_SLOT, Reason, Status
from rebal.taxaware import TaxAwareProposal

PCT_DECIMALS = 4


def _cents(n: int) -> Decimal:
    return Decimal(int(n)).scaleb(-2)


def _micro(n: int) -> Decimal:
    return Decimal(int(n)).scaleb(-6).normalize() if n else Decimal(0)


def _money_text(cents: int) -> str:
    return f"{_cents(cents):,.2f}"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def reasons(book: Book, proposal: Proposal, rows: np.ndarray | None = None) -> list[str]:
    """Return a sentence per account (or per account of ``rows``) saying why it has its status."""
    symbols = book.symbols()
    st = proposal.statuses
    breached = proposal.drift.any_breach
    picked = range(book.arrays.n_accounts) if rows is None else rows
    out: list[str] = []
    for i in picked:
        k = int(st.subject[i])
        sym = symbols[i, k] if k >= 0 else ""
        why = Reason(int(st.reason[i]))
        out.append(_reason_text(why, int(i), k, sym, bool(breached[i]), book, proposal))
    return out


def _reason_text(
    why: Reason, i: int, k: int, sym: str, breached: bool, book: Book, proposal: Proposal
) -> str:
    arrays, drift = book.arrays, proposal.drift
    if why in (Reason.BREACH, Reason.RESTRICTED_BREACH):
        prefix = "restricted " if why is Reason.RESTRICTED_BREACH else ""
        return (
            f"{prefix}{sym} at {_pct(drift.weight[i, k])} is outside its band "
            f"{_pct(drift.edges.band_low[i, k])}–{_pct(drift.edges.band_high[i, k])} "
            f"(target {_pct(drift.target[i, k])})"
        )
    if why is Reason.CASH_BREACH and k == CASH_SLOT:
        return (
            f"cash at {_pct(drift.cash_weight[i])} is outside its band (target "
            f"{_pct(drift.cash_target[i])})"
        )
    pending = int(arrays.pending_cents[i])
    match why:
        case Reason.NO_MODEL:
            return "no model assigned"
        case Reason.MISSING_PRICE:
            return f"no price for {sym}"
        case Reason.NO_VALUE:
            return "account has no positive value to weigh"
        case Reason.RESTRICTED_OFF_MODEL:
            return f"restricted {sym} is held outside the model and cannot be sold"
        case Reason.NEGATIVE_CASH:
            return f"cash is negative ({_money_text(arrays.cash_cents[i])})"
        case Reason.WITHDRAWAL_TOO_LARGE:
            value = round(np.nan_to_num(drift.total[i]) * 100)
            return (
                f"withdrawal of {_money_text(-pending)} exceeds the account value "
                f"{_money_text(value)}"
            )
        case Reason.LIQUIDATE:
            return "marked for liquidation: sell everything that may be sold"
        case Reason.WITHDRAWAL:
            return f"withdrawal of {_money_text(-pending)} to raise"
        case Reason.DEPOSIT:
            return f"deposit of {_money_text(pending)} to invest"
    if why is Reason.CANNOT_TRADE:
        needs = []
        if breached:
            needs.append("is out of tolerance")
        if pending:
            needs.append("has a pending cash flow")
        if arrays.liquidate[i]:
            needs.append("is marked for liquidation")
        if arrays.cash_cents[i] < 0:
            needs.append("has negative cash")
        return "account cannot trade but " + " and ".join(needs)
    if why is Reason.INSIDE:
        note = "" if arrays.can_trade[i] else " (account cannot trade)"
        return "every position is inside its band" + note
    raise AssertionError(f"no text for reason {why!r}")


def positions_frame(book: Book, proposal: Proposal) -> pd.DataFrame:
    """One row per used slot: quantity, price, value, weights, drift and band, in percent."""
    arrays, drift = book.arrays, proposal.drift
    rows, cols = np.nonzero(arrays.used)
    symbols = book.symbols()
    pct = lambda a: np.round(100 * a[rows, cols], PCT_DECIMALS)  # noqa: E731
    return pd.DataFrame(
        {
            "row": rows,
            "account": book.accounts["account"].to_numpy()[rows],
            "symbol": symbols[rows, cols],
            "quantity_micro": arrays.quantity_micro[rows, cols],
            "price": arrays.price[rows, cols],
            "value": np.round(drift.value[rows, cols], 2),
            "weight": pct(drift.weight),
            "target": pct(drift.target),
            "drift": pct(drift.drift),
            "band_low": pct(drift.edges.band_low),
            "band_high": pct(drift.edges.band_high),
            "weight_after": pct(proposal.weight_after),
        }
    )


def trades_frame(book: Book, proposal: Proposal) -> pd.DataFrame:
    """One row per order, sells first: account, symbol, side, quantity, amount (Decimal)."""
    t = proposal.trades
    symbols = book.symbols()
    ids = book.accounts["account"].to_numpy()
    parts = []
    for side, mask, qty, cents in (
        ("sell", t.sell_micro > 0, t.sell_micro, t.sell_cents),
        ("buy", t.buy_cents > 0, t.buy_micro, t.buy_cents),
    ):
        r, c = np.nonzero(mask)
        parts.append(
            pd.DataFrame(
                {
                    "row": r,
                    "account": ids[r],
                    "symbol": symbols[r, c],
                    "side": side,
                    "quantity_micro": qty[r, c],
                    "amount_cents": cents[r, c],
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    frame["order"] = np.where(frame["side"] == "sell", 0, 1)
    frame = frame.sort_values(["row", "order", "symbol"], kind="stable").drop(columns="order")
    return frame.reset_index(drop=True)


def blotter_frame(trades: pd.DataFrame, net: bool = False) -> pd.DataFrame:
    """Trades aggregated by symbol and side across accounts (or netted per symbol)."""
    if trades.empty:
        return pd.DataFrame(
            columns=["symbol", "side", "quantity_micro", "amount_cents", "accounts"]
        )
    if net:
        sign = np.where(trades["side"] == "buy", 1, -1)
        signed = trades.assign(
            quantity_micro=trades["quantity_micro"] * sign,
            amount_cents=trades["amount_cents"] * sign,
        )
        agg = signed.groupby("symbol", sort=True).agg(
            quantity_micro=("quantity_micro", "sum"),
            amount_cents=("amount_cents", "sum"),
            accounts=("account", "nunique"),
        )
        agg = agg[agg["amount_cents"] != 0].reset_index()
        agg.insert(1, "side", np.where(agg["amount_cents"] > 0, "buy", "sell"))
        agg["quantity_micro"] = agg["quantity_micro"].abs()
        agg["amount_cents"] = agg["amount_cents"].abs()
        return agg
    agg = trades.groupby(["symbol", "side"], sort=True).agg(
        quantity_micro=("quantity_micro", "sum"),
        amount_cents=("amount_cents", "sum"),
        accounts=("account", "nunique"),
    )
    return agg.reset_index()


def status_labels(proposal: Proposal) -> np.ndarray:
    """The status name of every account."""
    names = np.array([s.label for s in Status], dtype=object)
    return names[proposal.statuses.status]


def policy_labels(proposal: Proposal) -> np.ndarray:
    """The policy each account followed ('' where none)."""
    names = np.array((*POLICY_NAMES, ""), dtype=object)
    return names[np.where(proposal.policy == NO_POLICY, len(POLICY_NAMES), proposal.policy)]


def document(
    book: Book,
    proposal: Proposal,
    *,
    include_trades: bool,
    net: bool = False,
    tax: TaxAwareProposal | None = None,
) -> dict[str, Any]:
    """Return the JSON document of a run (``drift`` has no trades, ``propose`` has them).

    With ``tax`` (a ``--tax-aware`` run, whose ``proposal`` is ``tax.proposal``) each account
    gets a ``tax`` object, each sell a ``lot`` list, and the reason a note on what tax changed.
    """
    arrays = book.arrays
    labels = status_labels(proposal)
    why = reasons(book, proposal)
    policies = policy_labels(proposal)
    positions = positions_frame(book, proposal)
    trades = trades_frame(book, proposal)
    by_row_pos = {r: g for r, g in positions.groupby("row", sort=False)}
    by_row_trades = {r: g for r, g in trades.groupby("row", sort=False)}
    accounts: list[dict[str, Any]] = []
    for i, acc in enumerate(book.accounts.itertuples(index=False)):
        total = proposal.drift.total[i]
        annotation = None if tax is None else tax.annotation(i)
        note = "" if annotation is None or not annotation.note else f"; {annotation.note}"
        entry: dict[str, Any] = {
            "account": acc.account,
            "model": acc.model or None,
            "status": labels[i],
            "reason": why[i] + note,
            "value": None if np.isnan(total) else round(float(total), 2),
            "cash": float(_cents(arrays.cash_cents[i])),
            "pending_cash": float(_cents(arrays.pending_cents[i])),
            "positions": _positions_json(by_row_pos.get(i)),
        }
        if include_trades:
            entry["policy"] = policies[i] or None
            entry["cash_after"] = float(_cents(proposal.trades.cash_after_cents[i]))
            lots = None if annotation is None else annotation.lots
            entry["trades"] = _trades_json(by_row_trades.get(i), lots)
            entry["dropped_small_trades"] = int(proposal.trades.dropped[i])
            pos = by_row_pos.get(i)
            entry["weights_after"] = (
                {}
                if pos is None or not proposal.drift.priced[i]
                else {s: float(w) for s, w in zip(pos["symbol"], pos["weight_after"], strict=True)}
            )
        if annotation is not None:
            entry["tax"] = annotation.tax
        accounts.append(entry)
    doc: dict[str, Any] = {"accounts": accounts}
    if include_trades:
        doc["blotter"] = [
            {
                "symbol": r.symbol,
                "side": r.side,
                "quantity": float(_micro(r.quantity_micro)),
                "amount": float(_cents(r.amount_cents)),
                "accounts": int(r.accounts),
            }
            for r in blotter_frame(trades, net).itertuples(index=False)
        ]
    return doc


def _positions_json(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None:
        return []
    return [
        {
            "symbol": r.symbol,
            "quantity": float(_micro(r.quantity_micro)),
            "price": None if np.isnan(r.price) else float(r.price),
            "value": None if np.isnan(r.value) else float(r.value),
            "weight": _num(r.weight),
            "target": _num(r.target),
            "drift": _num(r.drift),
            "band_low": _num(r.band_low),
            "band_high": _num(r.band_high),
        }
        for r in frame.itertuples(index=False)
    ]


def _trades_json(
    frame: pd.DataFrame | None, lots: dict[str, list[dict[str, Any]]] | None = None
) -> list[dict[str, Any]]:
    """Orders as JSON; with ``lots`` (tax-aware runs) every sell carries its ``lot`` list."""
    if frame is None:
        return []
    out = []
    for r in frame.itertuples(index=False):
        trade: dict[str, Any] = {
            "symbol": r.symbol,
            "side": r.side,
            "quantity": float(_micro(r.quantity_micro)),
            "amount": float(_cents(r.amount_cents)),
        }
        if lots is not None and r.side == "sell":
            trade["lot"] = lots.get(r.symbol, [])
        out.append(trade)
    return out


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
