"""A run's result in people's and programs' terms: DataFrames, the JSON document, reasons.

Exact quantities leave the core as integer micro-shares and cents; they, and the money value of
each position (its exact quantity times its price as written, rounded to the cent once), reach
every output as ``Decimal``: the API's DataFrames hold them, JSON writes numbers whose text is
the exact decimal (never through a float), tables and CSV write them with
:mod:`rebal.domain.formatting`. Analytics (weights, drift, band edges) are float64 rounded
explicitly to 4 decimals of a percent.

The JSON document (``docs/output.md`` is its reference) has top-level keys ``accounts`` and
``blotter``; keys are a public interface: extend, never rename.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rebal.core.drift import Drift
from rebal.core.engine import NO_POLICY, POLICY_NAMES, Proposal
from rebal.core.status import CASH_SLOT, Reason, Status, Unresolved
from rebal.domain.formatting import money_text, percent_text
from rebal.domain.money import cents, from_cents, from_micro
from rebal.io.book_arrays import Book
from rebal.io.exact_json import exact_json
from rebal.tax_overlay import TaxAwareProposal

PCT_DECIMALS = 4


def _money_text(n: int) -> str:
    return money_text(n, grouped=True)


_pct = percent_text


def reasons(book: Book, proposal: Proposal, rows: np.ndarray | None = None) -> list[str]:
    """Return a sentence per account (or per account of ``rows``) saying why it has its status,
    with what else the account must know: cash short of the reserve, a position the orders
    leave outside its band and why."""
    symbols = book.symbols()
    st = proposal.statuses
    drift = proposal.drift
    breached = drift.any_breach
    picked = range(book.arrays.n_accounts) if rows is None else rows
    out: list[str] = []
    for i in picked:
        k = int(st.subject[i])
        sym = symbols[i, k] if k >= 0 else ""
        why = Reason(int(st.reason[i]))
        text = _reason_text(why, int(i), k, sym, bool(breached[i]), book, proposal)
        if drift.cash_short[i] and why is not Reason.RESERVE_SHORT:
            text += "; " + _reserve_text(drift, int(i))
        left = Unresolved(int(proposal.unresolved[i]))
        if left is not Unresolved.NONE:
            slot = int(proposal.unresolved_subject[i])
            text += "; " + _unresolved_text(left, str(symbols[i, slot]), int(i), slot, proposal)
        out.append(text)
    return out


_UNRESOLVED = {
    Unresolved.RESTRICTED: "the restricted positions, which cannot trade, leave it no room there",
    Unresolved.MIN_TRADE: "orders below the minimum trade were dropped",
    Unresolved.WHOLE_SHARES: "orders are rounded to whole shares",
    Unresolved.ROUNDING: "orders are rounded to micro-shares and cents",
}


def _unresolved_text(why: Unresolved, sym: str, i: int, k: int, proposal: Proposal) -> str:
    edges = proposal.drift.edges
    return (
        f"after the orders {sym} is at {_pct(proposal.weight_after[i, k])}, outside its band "
        f"{_pct(edges.band_low[i, k])}–{_pct(edges.band_high[i, k])}: {_UNRESOLVED[why]}"
    )


def _reserve_text(drift: Drift, i: int) -> str:
    return (
        f"cash at {_pct(drift.cash_weight[i])} is short of the {_pct(drift.cash_target[i])} "
        f"cash reserve (tolerated down to {_pct(drift.cash_low[i])})"
    )


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
            f"cash at {_pct(drift.cash_weight[i])} is outside its band "
            f"{_pct(drift.cash_low[i])}–{_pct(drift.cash_high[i])} (target "
            f"{_pct(drift.cash_target[i])})"
        )
    if why is Reason.RESERVE_SHORT:
        return _reserve_text(drift, i)
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


def _products(
    book: Book, rows: np.ndarray, cols: np.ndarray, quantities: list[Decimal]
) -> list[Decimal | None]:
    """Exact quantity (``quantities``, of each slot) times the price as written of each slot
    (None where the price is missing), before any rounding."""
    prices = book.exact_prices
    symbols = book.arrays.symbol[rows, cols].tolist()
    out: list[Decimal | None] = []
    for k, q in zip(symbols, quantities, strict=True):
        price = prices[k] if k >= 0 else None
        out.append(None if price is None else q * price)
    return out


def account_values(book: Book, proposal: Proposal) -> list[Decimal | None]:
    """Each account's value, exact: its positions at their prices as written plus settled cash,
    rounded to the cent once; None where a price is missing."""
    rows, cols = np.nonzero(book.arrays.used)
    totals: list[Decimal | None] = [from_cents(c) for c in book.arrays.cash_cents.tolist()]
    products = _products(book, rows, cols, book.exact_quantities(rows, cols))
    for i, product in zip(rows.tolist(), products, strict=True):
        total = totals[i]
        totals[i] = None if product is None or total is None else total + product
    priced = proposal.drift.priced.tolist()
    return [
        cents(t) if t is not None and ok else None for t, ok in zip(totals, priced, strict=True)
    ]


def positions_frame(book: Book, proposal: Proposal) -> pd.DataFrame:
    """One row per used slot: quantity (``quantity_exact``, to the nano-share, and
    ``quantity_micro``, the whole micro-shares the core trades), price, value (exact
    ``Decimal``), and in percent weights, drift (absolute and relative to target), band and
    inner-rail edges."""
    arrays, drift = book.arrays, proposal.drift
    rows, cols = np.nonzero(arrays.used)
    quantities = book.exact_quantities(rows, cols)
    values = [None if v is None else cents(v) for v in _products(book, rows, cols, quantities)]
    symbols = book.symbols()

    def pct(a: np.ndarray) -> np.ndarray:
        return np.round(100 * a[rows, cols], PCT_DECIMALS)

    return pd.DataFrame(
        {
            "row": rows,
            "account": book.accounts["account"].to_numpy()[rows],
            "symbol": symbols[rows, cols],
            "quantity_micro": arrays.quantity_micro[rows, cols],
            "quantity_exact": pd.Series(quantities, dtype=object),
            "price": pd.Series(
                [book.exact_prices[k] if k >= 0 else None for k in arrays.symbol[rows, cols]],
                dtype=object,
            ),
            "value": pd.Series(values, dtype=object),
            "weight": pct(drift.weight),
            "target": pct(drift.target),
            "drift": pct(drift.drift),
            "band_low": pct(drift.edges.band_low),
            "band_high": pct(drift.edges.band_high),
            "relative_drift": pct(drift.relative),
            "rail_low": pct(drift.edges.rail_low),
            "rail_high": pct(drift.edges.rail_high),
            "weight_after": pct(proposal.weight_after),
        }
    )


ORDER_TYPES = {"sell": "shares", "buy": "notional"}


def trades_frame(book: Book, proposal: Proposal) -> pd.DataFrame:
    """One row per order, sells first: account, symbol, side, quantity_micro, amount_cents,
    and what a broker needs to enter it: the account's model and status, the price used
    (as written) and the order type (``shares`` for a sell, ``notional`` for a buy)."""
    t = proposal.trades
    symbols = book.symbols()
    ids = book.accounts["account"].to_numpy()
    models = book.accounts["model"].to_numpy()
    labels = status_labels(proposal)
    parts = []
    for side, mask, qty, amounts in (
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
                    "amount_cents": amounts[r, c],
                    "model": models[r],
                    "status": labels[r],
                    "price": pd.Series(
                        [book.exact_prices[k] for k in book.arrays.symbol[r, c]], dtype=object
                    ),
                    "order_type": ORDER_TYPES[side],
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


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    # Analytics columns as floats (NaN -> null); exact columns pass as they are.
    values = frame[name].to_numpy()
    if values.dtype.kind == "f":
        return [None if v != v else v for v in values.tolist()]
    return values.tolist()


def _plain(quantity: Decimal) -> Decimal:
    # Shares with the decimals they need (24.000000 is 24, not 24.000000 or 2.4E+1).
    return quantity.normalize() + 0


def _shares(micro: int) -> Decimal:
    return _plain(from_micro(micro))


def _quantities(frame: pd.DataFrame, name: str = "quantity_micro") -> list[Decimal]:
    return [_shares(m) for m in frame[name].tolist()]


def _amounts(values: Any) -> list[Decimal]:
    return [from_cents(c) for c in np.asarray(values).tolist()]


def _offsets(rows: pd.Series, n: int) -> list[int]:
    result: list[int] = np.searchsorted(rows.to_numpy(), np.arange(n + 1)).tolist()
    return result


def account_entries(
    book: Book,
    proposal: Proposal,
    *,
    include_trades: bool,
    tax: TaxAwareProposal | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the JSON object of each account in turn (see ``docs/output.md``).

    Columns are converted to Python values once, in bulk; each account then takes its slice,
    so a book of a million accounts streams out without a DataFrame per account.
    """
    arrays = book.arrays
    n = arrays.n_accounts
    labels = status_labels(proposal).tolist()
    why = reasons(book, proposal)
    policies = policy_labels(proposal).tolist()
    ids = book.accounts["account"].tolist()
    models = book.accounts["model"].tolist()
    totals = account_values(book, proposal)
    cash = _amounts(arrays.cash_cents)
    pending = _amounts(arrays.pending_cents)
    cash_after = _amounts(proposal.trades.cash_after_cents)
    dropped = proposal.trades.dropped.tolist()
    priced = proposal.drift.priced.tolist()

    positions = positions_frame(book, proposal)
    p_off = _offsets(positions["row"], n)
    p_cols = {
        "symbol": _column(positions, "symbol"),
        "quantity": [_plain(q) for q in positions["quantity_exact"].tolist()],
        "price": _column(positions, "price"),
        "value": _column(positions, "value"),
        **{name: _column(positions, name) for name in _PERCENT_KEYS},
    }
    weight_after = _column(positions, "weight_after")
    trades = trades_frame(book, proposal)
    t_off = _offsets(trades["row"], n)
    t_cols = {
        "symbol": _column(trades, "symbol"),
        "side": _column(trades, "side"),
        "quantity": _quantities(trades),
        "amount": _amounts(trades["amount_cents"]),
        "model": [m or None for m in _column(trades, "model")],
        **{name: _column(trades, name) for name in ("status", "price", "order_type")},
    }
    p_keys, t_keys = tuple(p_cols), tuple(t_cols)
    p_rows = list(zip(*p_cols.values(), strict=True))
    t_rows = list(zip(*t_cols.values(), strict=True))

    for i in range(n):
        annotation = None if tax is None else tax.annotation(i)
        note = "" if annotation is None or not annotation.note else f"; {annotation.note}"
        lo, hi = p_off[i], p_off[i + 1]
        entry: dict[str, Any] = {
            "account": ids[i],
            "model": models[i] or None,
            "status": labels[i],
            "reason": why[i] + note,
            "value": totals[i],
            "cash": cash[i],
            "pending_cash": pending[i],
            "positions": [dict(zip(p_keys, row, strict=True)) for row in p_rows[lo:hi]],
        }
        if include_trades:
            lots = None if annotation is None else annotation.lots
            orders = [
                dict(zip(t_keys, row, strict=True)) for row in t_rows[t_off[i] : t_off[i + 1]]
            ]
            if lots is not None:
                for order in orders:
                    if order["side"] == "sell":
                        order["lot"] = lots.get(order["symbol"], [])
            entry["policy"] = policies[i] or None
            entry["cash_after"] = cash_after[i]
            entry["trades"] = orders
            entry["dropped_small_trades"] = dropped[i]
            entry["weights_after"] = (
                dict(zip(p_cols["symbol"][lo:hi], weight_after[lo:hi], strict=True))
                if priced[i]
                else {}
            )
        if annotation is not None:
            entry["tax"] = annotation.tax
        yield entry


_PERCENT_KEYS = (
    "weight",
    "target",
    "drift",
    "band_low",
    "band_high",
    "relative_drift",
    "rail_low",
    "rail_high",
)


def blotter_entries(book: Book, proposal: Proposal, net: bool = False) -> list[dict[str, Any]]:
    """The blotter rows of the JSON document."""
    blotter = blotter_frame(trades_frame(book, proposal), net)
    columns = ("symbol", "side", "quantity_micro", "amount_cents", "accounts")
    return [
        {
            "symbol": symbol,
            "side": side,
            "quantity": _shares(micro),
            "amount": from_cents(amount),
            "accounts": int(accounts),
        }
        for symbol, side, micro, amount, accounts in zip(
            *(blotter[c].tolist() for c in columns), strict=True
        )
    ]


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
    doc: dict[str, Any] = {
        "accounts": list(account_entries(book, proposal, include_trades=include_trades, tax=tax))
    }
    if include_trades:
        doc["blotter"] = blotter_entries(book, proposal, net)
    return doc


def document_chunks(
    book: Book,
    proposal: Proposal,
    *,
    include_trades: bool,
    net: bool = False,
    tax: TaxAwareProposal | None = None,
) -> Iterator[str]:
    """Yield the JSON text of :func:`document` in pieces, one account at a time."""
    yield '{"accounts": ['
    entries = account_entries(book, proposal, include_trades=include_trades, tax=tax)
    for k, entry in enumerate(entries):
        yield ("\n " if k == 0 else ",\n ") + exact_json(entry)
    yield "\n]"
    if include_trades:
        rows = ",\n ".join(exact_json(row) for row in blotter_entries(book, proposal, net))
        yield ',\n"blotter": [' + (f"\n {rows}\n" if rows else "") + "]"
    yield "}\n"
