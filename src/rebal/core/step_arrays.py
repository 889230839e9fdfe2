"""The arrays of one compiled step of the engine, by name.

:func:`rebal.core.engine.step_rows` reads a book's :class:`StepInputs`, runs under
:class:`StepSettings`, writes :class:`StepOutputs` and works in :class:`StepScratch`; the live
engine fills them from a whole book and the backtest lab from one simulated account. They are
named tuples, which numba compiles like tuples, so that both callers address every array by its
name and no reordering can silently swap two arrays of the same type.

Shapes: N accounts of K position slots; (N, K) per slot, (N,) per account.
"""

from __future__ import annotations

from typing import NamedTuple

from rebal.core.types import BoolArray, FloatArray, IntArray


class KernelRules(NamedTuple):
    """How desired values become orders, as the kernels take them."""

    whole_shares: bool
    min_trade_cents: int


class StepInputs(NamedTuple):
    """A book as the step reads it."""

    quantity_micro: IntArray  # (N, K) held, in millionths of a share
    price: FloatArray  # (N, K) quoted price, NaN where missing
    model_target: FloatArray  # (N, K) the model's weights
    used: BoolArray  # (N, K) the slot holds a position or a target
    restricted: BoolArray  # (N, K) the position may not be traded
    cash_cents: IntArray  # (N,) settled cash
    pending_cents: IntArray  # (N,) deposit (positive) or withdrawal (negative) to trade for
    cash_target: FloatArray  # (N,) the model's cash weight
    has_cash_target: BoolArray  # (N,) the model has a cash row
    has_model: BoolArray  # (N,)
    can_trade: BoolArray  # (N,)
    liquidate: BoolArray  # (N,)
    band_widths: tuple[FloatArray, ...]  # BandParams' fields, 2-D (rebal.core.bands.widths)
    cash_band_abs: FloatArray  # 2-D, the cash band's absolute width per account (NaN: none)
    cash_band_rel: FloatArray  # 2-D, its relative width


class StepSettings(NamedTuple):
    """How the step runs."""

    policy: int  # the run's policy, index into rebal.core.engine.POLICY_NAMES
    all_accounts: bool  # trade every account the policy wants, not only actionable ones
    trade: bool  # False: measure and classify only
    cash_reserve: float  # fraction of each account's value kept in cash
    rules: KernelRules


class StepOutputs(NamedTuple):
    """What the step writes, every array in place."""

    value: FloatArray  # (N, K)
    weight: FloatArray
    drift: FloatArray
    relative: FloatArray
    band_low: FloatArray
    band_high: FloatArray
    rail_low: FloatArray
    rail_high: FloatArray
    wide_low: FloatArray
    wide_high: FloatArray
    checked: BoolArray  # (N, K)
    breach: BoolArray
    wide_breach: BoolArray
    cash: FloatArray  # (N,)
    total: FloatArray
    cash_weight: FloatArray
    flow: FloatArray
    cash_low: FloatArray
    cash_high: FloatArray
    cash_breach: BoolArray  # (N,)
    priced: BoolArray
    cash_short: BoolArray
    reserve_floor: BoolArray
    status: IntArray  # (N,)
    reason: IntArray
    subject: IntArray
    policy: IntArray
    sell_micro: IntArray  # (N, K)
    sell_cents: IntArray
    buy_cents: IntArray
    buy_micro: IntArray
    cash_after_cents: IntArray  # (N,)
    dropped: IntArray
    weight_after: FloatArray  # (N, K)
    adjusted_target: FloatArray  # (N, K) reserve-adjusted targets; (1, 1) when no reserve
    kept_share: FloatArray  # (N,)
    unresolved: IntArray  # (N,)
    unresolved_subject: IntArray


class StepScratch(NamedTuple):
    """Working space for one account at a time (and one block of accounts)."""

    frozen: BoolArray  # (K,)
    desired: FloatArray  # (K,) desired values
    wanted: FloatArray  # (K,) wanted cents
    slack: FloatArray  # (K,)
    work: FloatArray  # (WORK_ROWS, K)
    tradable: BoolArray  # (BLOCK_ACCOUNTS, K)
    planned: BoolArray  # (BLOCK_ACCOUNTS,) the destination leaves a breach
