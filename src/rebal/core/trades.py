"""From desired values to exact orders: sells in shares, buys in notional, never overspending.

The policies say what each position should be worth; this module turns that into orders a
broker can take, for every account at once:

1. Sells: the value above the desired value, converted to shares at the quoted price and
   rounded to the share precision (micro-shares, or whole shares rounded *up* so a sale raises
   at least what was asked; a position sold to zero sells exactly what is held). Never more
   than is held: no short sales.
2. Sells worth less than the minimum trade are dropped, unless the account must raise cash (a
   withdrawal or negative cash): then every sale is kept, and if rounding left it a few cents
   short, its largest sale sells enough more.
3. Cash for buys = cash + pending flow + estimated sale proceeds - cash kept. Buys never spend
   more: when the wanted buys exceed it, they are scaled down together.
4. Buys are notional amounts in cents, rounded down, with an estimated quantity; with whole
   shares, the quantity is rounded down and the notional is that many shares' cost. Buys worth
   less than the minimum trade are dropped (which only leaves more cash).

Money is integer cents and quantities integer micro-shares (10^-6), so the resulting cash
balance is exact; the float64 arithmetic before the rounding is explicit and local.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebal.core.types import BoolArray, FloatArray, IntArray

MICRO = 1_000_000
WHOLE_SHARE = MICRO
_FLOAT_SLACK = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRules:
    """How desired values become orders."""

    whole_shares: bool = False
    min_trade_cents: int = 100

    def __post_init__(self) -> None:
        if self.min_trade_cents < 0:
            raise ValueError(f"minimum trade must not be negative, received {self.min_trade_cents}")


@dataclass(frozen=True, slots=True)
class Trades:
    """Orders for a book, (N, K) per slot and (N,) per account; integers are exact."""

    sell_micro: IntArray  # shares to sell, in millionths
    sell_cents: IntArray  # estimated proceeds at the quoted price
    buy_cents: IntArray  # notional to buy
    buy_micro: IntArray  # estimated shares bought at the quoted price
    cash_after_cents: IntArray  # cash + flow + proceeds - buys (negative: a flow not covered)
    dropped: IntArray  # trades dropped as smaller than the minimum trade

    @property
    def count(self) -> IntArray:
        """Orders per account."""
        result: IntArray = ((self.sell_micro > 0) | (self.buy_cents > 0)).sum(axis=1)
        return result


def _to_cents(value: FloatArray) -> IntArray:
    return np.rint(value * 100.0).astype(np.int64)


def _cover_shortfall(
    cash: IntArray,
    sell_micro: IntArray,
    sell_cents: IntArray,
    held_micro: IntArray,
    price: FloatArray,
    rules: TradeRules,
) -> tuple[IntArray, IntArray]:
    short = -(cash + sell_cents.sum(axis=1))
    rows = np.flatnonzero((short > 0) & (sell_micro > 0).any(axis=1))
    if rows.size == 0:
        return sell_micro, sell_cents
    sell_micro, sell_cents = sell_micro.copy(), sell_cents.copy()
    col = sell_cents[rows].argmax(axis=1)
    p = price[rows, col]
    extra = np.ceil(short[rows] / 100.0 / p * MICRO + _FLOAT_SLACK)
    if rules.whole_shares:
        extra = np.ceil(extra / WHOLE_SHARE) * WHOLE_SHARE
    room = held_micro[rows, col] - sell_micro[rows, col]
    sell_micro[rows, col] += np.minimum(extra.astype(np.int64), room)
    sell_cents[rows, col] = _to_cents(sell_micro[rows, col] / MICRO * p)
    return sell_micro, sell_cents


def generate_trades(
    quantity_micro: IntArray,
    price: FloatArray,
    desired: FloatArray,
    cash_cents: IntArray,
    flow_cents: IntArray,
    keep_cents: IntArray,
    tradable: BoolArray,
    rules: TradeRules,
) -> Trades:
    """Return the orders that move each account from its holdings towards ``desired`` values.

    Parameters
    ----------
    quantity_micro
        Shares held per slot, in millionths (N, K).
    price
        Quoted price per slot (N, K); slots without a price must not be ``tradable``.
    desired
        Value each slot should have after trading (N, K), from a policy.
    cash_cents, flow_cents, keep_cents
        Settled cash, the pending flow (deposit positive, withdrawal negative) and the cash to
        keep aside (model cash target or reserve), per account.
    tradable
        Slots that may trade (N, K): False for restricted securities, accounts that cannot
        trade, accounts not selected, and padding.
    rules
        Share precision and minimum trade.
    """
    safe_price = np.where(tradable, price, 1.0)
    held_micro = np.where(tradable, quantity_micro, 0)
    held_value = held_micro / MICRO * safe_price

    # 1. Sells.
    excess = np.where(tradable, held_value - desired, 0.0)
    sell_all = tradable & (desired <= 0.005) & (held_micro > 0)
    raw = np.maximum(excess, 0.0) / safe_price * MICRO
    if rules.whole_shares:
        rounded = np.ceil(raw / WHOLE_SHARE - _FLOAT_SLACK).astype(np.int64) * WHOLE_SHARE
    else:
        rounded = np.rint(raw).astype(np.int64)
    sell_micro = np.where(sell_all, held_micro, np.minimum(np.maximum(rounded, 0), held_micro))
    sell_cents = _to_cents(sell_micro / MICRO * safe_price)

    # 2. Minimum trade on sells, except where the sales must raise cash (a withdrawal, a debit).
    must_raise = (cash_cents + flow_cents < 0)[:, None]
    small_sell = (sell_micro > 0) & (sell_cents < rules.min_trade_cents) & ~must_raise
    sell_micro = np.where(small_sell, 0, sell_micro)
    sell_cents = np.where(small_sell, 0, sell_cents)

    # 2b. Rounding the sales to micro-shares and their proceeds to cents can leave a cash flow
    # short by a few cents: the largest sale then sells enough more to cover it.
    sell_micro, sell_cents = _cover_shortfall(
        cash_cents + flow_cents, sell_micro, sell_cents, held_micro, safe_price, rules
    )

    # 3. Cash the buys may spend.
    available = cash_cents + flow_cents + sell_cents.sum(axis=1) - keep_cents
    available = np.maximum(available, 0)

    # 4. Buys: wanted, minimum trade, then scaled to the cash available.
    wanted = np.where(tradable, np.maximum(desired - held_value, 0.0), 0.0)
    wanted_cents = np.floor(wanted * 100.0 + _FLOAT_SLACK)
    small_wanted = (wanted_cents > 0) & (wanted_cents < rules.min_trade_cents)
    wanted_cents = np.where(small_wanted, 0.0, wanted_cents)
    total_wanted = wanted_cents.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(total_wanted > available, available / total_wanted, 1.0)
    buy_cents = np.floor(wanted_cents * scale[:, None] + _FLOAT_SLACK).astype(np.int64)
    if rules.whole_shares:
        shares = np.floor(buy_cents / (safe_price * 100.0) + _FLOAT_SLACK)
        buy_micro = shares.astype(np.int64) * WHOLE_SHARE
        cost = np.ceil(shares * safe_price * 100.0 - _FLOAT_SLACK).astype(np.int64)
        buy_cents = np.minimum(cost, buy_cents)
    else:
        buy_micro = np.floor(buy_cents / 100.0 / safe_price * MICRO).astype(np.int64)
    small_buy = (buy_cents > 0) & (buy_cents < rules.min_trade_cents)
    buy_cents = np.where(small_buy | (buy_micro <= 0), 0, buy_cents)
    buy_micro = np.where(buy_cents > 0, buy_micro, 0)

    dropped = (small_sell | small_wanted | (small_buy & ~small_wanted)).sum(axis=1)
    cash_after = cash_cents + flow_cents + sell_cents.sum(axis=1) - buy_cents.sum(axis=1)
    return Trades(
        sell_micro=sell_micro.astype(np.int64),
        sell_cents=sell_cents.astype(np.int64),
        buy_cents=buy_cents,
        buy_micro=buy_micro,
        cash_after_cents=cash_after.astype(np.int64),
        dropped=dropped.astype(np.int64),
    )
