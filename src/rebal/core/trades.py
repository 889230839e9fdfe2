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

from dataclasses import dataclass, fields

import numpy as np

from rebal.core.kernels import inline_kernel, kernel, maximum, row_sum
from rebal.core.step_arrays import KernelRules
from rebal.core.types import BoolArray, FloatArray, IntArray, dense_as

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

    def as_kernel_args(self) -> KernelRules:
        """The rules as the kernels take them."""
        return KernelRules(bool(self.whole_shares), int(self.min_trade_cents))


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


@inline_kernel
def _to_cents(value: float) -> int:
    return int(np.rint(value * 100.0))


@inline_kernel
def account_orders(
    quantity_micro: IntArray,
    price: FloatArray,
    desired: FloatArray,
    cash_cents: int,
    flow_cents: int,
    keep_cents: int,
    tradable: BoolArray,
    rules: KernelRules,
    out: tuple[IntArray, IntArray, IntArray, IntArray],
    wanted_cents: FloatArray,
) -> tuple[int, int]:
    """The orders of one account (steps 1-4 of the module docstring) under ``rules`` (whole
    shares, minimum trade in cents), written into ``out`` (sell micro-shares, sell cents, buy
    cents, buy micro-shares); returns the cash after and the number of trades dropped.
    ``wanted_cents`` is scratch space of K floats."""
    sell_micro, sell_cents, buy_cents, buy_micro = out
    whole_shares, min_trade_cents = rules
    k = price.shape[0]
    dropped = 0
    must_raise = cash_cents + flow_cents < 0

    # 1. Sells, and 2. the minimum trade on sells unless the sales must raise cash.
    proceeds = 0
    selling = False
    for j in range(k):
        sell_micro[j] = 0
        sell_cents[j] = 0
        if not tradable[j]:
            continue
        held = quantity_micro[j]
        held_value = held / MICRO * price[j]
        raw = maximum(held_value - desired[j], 0.0) / price[j] * MICRO
        if desired[j] <= 0.005 and held > 0:
            sold = held
        else:
            if whole_shares:
                rounded = int(np.ceil(raw / WHOLE_SHARE - _FLOAT_SLACK)) * WHOLE_SHARE
            else:
                rounded = int(np.rint(raw))
            sold = min(max(rounded, 0), held)
        cents = _to_cents(sold / MICRO * price[j])
        if sold > 0 and cents < min_trade_cents and not must_raise:
            dropped += 1
            continue
        sell_micro[j] = sold
        sell_cents[j] = cents
        proceeds += cents
        selling |= sold > 0

    # 2b. Rounding the sales to micro-shares and their proceeds to cents can leave a cash flow
    # short by a few cents: the largest sale then sells enough more to cover it.
    short = -(cash_cents + flow_cents + proceeds)
    if short > 0 and selling:
        col = 0  # the first largest sale, as numpy's argmax
        for j in range(1, k):
            if sell_cents[j] > sell_cents[col]:
                col = j
        p = price[col] if tradable[col] else 1.0
        extra = np.ceil(short / 100.0 / p * MICRO + _FLOAT_SLACK)
        if whole_shares:
            extra = np.ceil(extra / WHOLE_SHARE) * WHOLE_SHARE
        room = (quantity_micro[col] if tradable[col] else 0) - sell_micro[col]
        sell_micro[col] += min(int(extra), room)
        cents = _to_cents(sell_micro[col] / MICRO * p)
        proceeds += cents - sell_cents[col]
        sell_cents[col] = cents

    # 3. Cash the buys may spend.
    available = max(cash_cents + flow_cents + proceeds - keep_cents, 0)

    # 4. Buys: wanted, minimum trade, then scaled to the cash available.
    for j in range(k):
        wanted = 0.0
        if tradable[j]:
            wanted = maximum(desired[j] - quantity_micro[j] / MICRO * price[j], 0.0)
        wanted_cents[j] = np.floor(wanted * 100.0 + _FLOAT_SLACK)
        if wanted_cents[j] > 0 and wanted_cents[j] < min_trade_cents:
            wanted_cents[j] = 0.0
            dropped += 1
    total_wanted = row_sum(wanted_cents)
    scale = available / total_wanted if total_wanted > available else 1.0
    spent = 0
    for j in range(k):
        p = price[j] if tradable[j] else 1.0
        bought = int(np.floor(wanted_cents[j] * scale + _FLOAT_SLACK))
        if whole_shares:
            shares = np.floor(bought / (p * 100.0) + _FLOAT_SLACK)
            micro = int(shares) * WHOLE_SHARE
            bought = min(int(np.ceil(shares * p * 100.0 - _FLOAT_SLACK)), bought)
        else:
            micro = int(np.floor(bought / 100.0 / p * MICRO))
        small = 0 < bought < min_trade_cents
        dropped += small
        if small or micro <= 0:
            bought = 0
        buy_cents[j] = bought
        buy_micro[j] = micro if bought > 0 else 0
        spent += bought
    return cash_cents + flow_cents + proceeds - spent, dropped


@inline_kernel
def no_orders(i: int, cash_cents: IntArray, out: tuple[IntArray, ...]) -> None:
    """Account ``i`` gets no orders and keeps its settled cash (``out``: see :func:`order_rows`)."""
    sell_micro, sell_cents, buy_cents, buy_micro, cash_after, dropped = out
    for j in range(sell_micro.shape[1]):
        sell_micro[i, j] = sell_cents[i, j] = buy_cents[i, j] = buy_micro[i, j] = 0
    cash_after[i], dropped[i] = cash_cents[i], 0


@kernel
def order_rows(
    start: int,
    stop: int,
    quantity_micro: IntArray,
    price: FloatArray,
    desired: FloatArray,
    cash_cents: IntArray,
    flow_cents: IntArray,
    keep_cents: IntArray,
    tradable: BoolArray,
    active: BoolArray,
    rules: KernelRules,
    out: tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray],
) -> None:
    """Orders of the ``active`` accounts among ``start:stop`` into ``out`` (the six arrays of
    :class:`Trades`, in field order), under ``rules`` (whole shares, minimum trade in cents);
    the other accounts get none."""
    sell_micro, sell_cents, buy_cents, buy_micro, cash_after, dropped = out
    wanted = np.empty(price.shape[1])
    for i in range(start, stop):
        if not active[i]:
            no_orders(i, cash_cents, out)
            continue
        cash_after[i], dropped[i] = account_orders(
            quantity_micro[i],
            price[i],
            desired[i],
            cash_cents[i],
            flow_cents[i],
            keep_cents[i],
            tradable[i],
            rules,
            (sell_micro[i], sell_cents[i], buy_cents[i], buy_micro[i]),
            wanted,
        )


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
    n, k = np.shape(price)
    trades = Trades(
        sell_micro=np.empty((n, k), dtype=np.int64),
        sell_cents=np.empty((n, k), dtype=np.int64),
        buy_cents=np.empty((n, k), dtype=np.int64),
        buy_micro=np.empty((n, k), dtype=np.int64),
        cash_after_cents=np.empty(n, dtype=np.int64),
        dropped=np.empty(n, dtype=np.int64),
    )
    order_rows(
        0,
        n,
        dense_as(quantity_micro, np.int64, (n, k)),
        dense_as(price, np.float64, (n, k)),
        dense_as(desired, np.float64, (n, k)),
        dense_as(cash_cents, np.int64, (n,)),
        dense_as(flow_cents, np.int64, (n,)),
        dense_as(keep_cents, np.int64, (n,)),
        dense_as(tradable, np.bool_, (n, k)),
        np.ones(n, dtype=bool),
        rules.as_kernel_args(),
        tuple(getattr(trades, f.name) for f in fields(trades)),
    )
    return trades
