"""Rebalancing policies: small objects that say *whether* to trade and *where to end up*.

A policy reads a :class:`PolicyInput` (the measured drift, the frozen slots and the cash it may
spend) and returns, for every account and slot at once, the value each position should have
after trading. It knows nothing of shares, rounding or orders: :mod:`rebal.core.trades` turns
desired values into orders for live use, and the backtest lab applies them continuously. The
same objects therefore drive both, which is the point.

Conventions shared by every policy:

* ``post_total`` is the account's value after the pending cash flow: securities + cash + flow.
  Targets are taken against it, so a deposit is invested and a withdrawal raised.
* ``spendable`` is cash the policy may spend: cash + flow - cash kept (the model's cash target
  or the run's reserve, whichever is larger). Negative means cash must be raised.
* Frozen slots (restricted securities, accounts that cannot trade) keep their value; the other
  targets share what is left in proportion to their weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rebal.core.drift import Drift
from rebal.core.fill import level_fill, proportional_fill
from rebal.core.types import BoolArray, FloatArray, any_per_row


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """What a policy reads: drift, frozen slots (N, K) and spendable cash (N,)."""

    drift: Drift
    frozen: BoolArray
    spendable: FloatArray

    @property
    def held(self) -> FloatArray:
        """Market value per slot, 0 for padding."""
        return self.drift.value

    @property
    def post_total(self) -> FloatArray:
        """Value to be held in securities after trading, plus the cash kept, per account."""
        result: FloatArray = self.held.sum(axis=1) + self.spendable
        return result

    @property
    def target_value(self) -> FloatArray:
        """Target value per free slot, sharing what the frozen slots leave (N, K)."""
        free_target = np.where(self.frozen, 0.0, self.drift.target)
        weight_sum = free_target.sum(axis=1, keepdims=True)
        frozen_value = np.where(self.frozen, self.held, 0.0).sum(axis=1, keepdims=True)
        budget = np.maximum(self.post_total[:, None] - frozen_value, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            result: FloatArray = np.where(weight_sum > 0, free_target / weight_sum * budget, 0.0)
        return result


class Policy(Protocol):
    """A rebalancing policy: a trigger and a destination."""

    @property
    def name(self) -> str:
        """The public name, as given to ``--policy``."""
        ...

    def wants_trade(self, drift: Drift) -> BoolArray:
        """Return, per account, whether the policy would trade on this drift."""
        ...

    def desired_values(self, inp: PolicyInput) -> FloatArray:
        """Return the value each slot should have after trading (N, K)."""
        ...


def whenever_asked(drift: Drift) -> BoolArray:
    """The trigger of policies that trade whenever they are run: every checkable account."""
    return any_per_row(drift.checked)


def _keep_frozen(inp: PolicyInput, desired: FloatArray) -> FloatArray:
    result: FloatArray = np.where(inp.frozen, inp.held, np.maximum(desired, 0.0))
    return result


Fill = Callable[[FloatArray, FloatArray, FloatArray, BoolArray], FloatArray]


def _on_rows(
    fill: Fill, values: FloatArray, amount: FloatArray, target: FloatArray, frozen: BoolArray
) -> FloatArray:
    """Apply ``fill`` only to the accounts with a positive ``amount``: most have none."""
    rows = np.flatnonzero(amount > 0)
    if rows.size == 0:
        return values
    values = values.copy()
    values[rows] = fill(values[rows], amount[rows], target[rows], frozen[rows])
    return values


def _raise(
    values: FloatArray, amount: FloatArray, target: FloatArray, frozen: BoolArray
) -> FloatArray:
    # Most overweight first; beyond the overweights, pro rata to what is left.
    free = ~frozen
    first = level_fill(np.where(free, values - target, 0.0), amount)
    values = values - first
    rest = np.maximum(amount - first.sum(axis=1), 0.0)
    sellable = np.where(free, values, 0.0)
    result: FloatArray = values - proportional_fill(sellable, sellable, rest)
    return result


def _spend(
    values: FloatArray, amount: FloatArray, target: FloatArray, frozen: BoolArray
) -> FloatArray:
    # Most underweight first; beyond every gap, at target weights.
    free = ~frozen
    first = level_fill(np.where(free, target - values, 0.0), amount)
    rest = np.maximum(amount - first.sum(axis=1), 0.0)
    weights = np.where(free, target, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(total > 0, weights / total, 0.0) * rest[:, None]
    result: FloatArray = values + first + second
    return result


def raise_cash(
    inp: PolicyInput, values: FloatArray, amount: FloatArray, target: FloatArray
) -> FloatArray:
    """Sell ``amount`` (N,) from ``values``: most overweight first, then pro rata."""
    return _on_rows(_raise, values, amount, target, inp.frozen)


def spend_cash(
    inp: PolicyInput, values: FloatArray, amount: FloatArray, target: FloatArray
) -> FloatArray:
    """Buy with ``amount`` (N,): most underweight first; beyond every gap, at target weights."""
    return _on_rows(_spend, values, amount, target, inp.frozen)


@dataclass(frozen=True, slots=True)
class Full:
    """Trade every position to target whenever asked (calendar or manual rebalancing)."""

    name: str = "full"

    def wants_trade(self, drift: Drift) -> BoolArray:
        return whenever_asked(drift)

    def desired_values(self, inp: PolicyInput) -> FloatArray:
        return _keep_frozen(inp, inp.target_value)


@dataclass(frozen=True, slots=True)
class Bands:
    """Threshold rebalancing: trade every position to target, only when a band is breached."""

    name: str = "bands"

    def wants_trade(self, drift: Drift) -> BoolArray:
        return drift.any_breach

    def desired_values(self, inp: PolicyInput) -> FloatArray:
        return _keep_frozen(inp, inp.target_value)


@dataclass(frozen=True, slots=True)
class Rails:
    """Opportunistic rebalancing with tolerance bands and inner rails (seed 001, Daryanani).

    On a band breach: every position above its upper inner rail is sold down to that rail; the
    proceeds plus spendable cash buy the positions below target, in proportion to their
    relative distance from target, none past its target. If cash must be raised beyond what
    the rail sells bring, the most overweight positions are sold first.
    """

    name: str = "rails"

    def wants_trade(self, drift: Drift) -> BoolArray:
        return drift.any_breach

    def desired_values(self, inp: PolicyInput) -> FloatArray:
        free = ~inp.frozen
        post_total = inp.post_total[:, None]
        rail_value = inp.drift.edges.rail_high * post_total
        held = inp.held
        values = np.where(free & (held > rail_value), rail_value, held)
        budget = inp.spendable + (held - values).sum(axis=1)
        target = inp.target_value
        values = _on_rows(_buy_by_distance, values, budget, target, inp.frozen)
        values = raise_cash(inp, values, np.maximum(-budget, 0.0), target)
        return _keep_frozen(inp, values)


def _buy_by_distance(
    values: FloatArray, budget: FloatArray, target: FloatArray, frozen: BoolArray
) -> FloatArray:
    # Below-target positions, in proportion to their relative distance, none past target.
    shortfall = np.where(frozen, 0.0, target - values)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(target > 0, shortfall / target, 0.0)
    result: FloatArray = values + proportional_fill(distance, shortfall, budget)
    return result


@dataclass(frozen=True, slots=True)
class Tiered:
    """A small breach trades to the inner rails, a breach of the wide band trades to target."""

    name: str = "tiered"

    def wants_trade(self, drift: Drift) -> BoolArray:
        return drift.any_breach

    def desired_values(self, inp: PolicyInput) -> FloatArray:
        wide = inp.drift.any_wide_breach[:, None]
        return np.where(wide, Full().desired_values(inp), Rails().desired_values(inp))


@dataclass(frozen=True, slots=True)
class CashFlow:
    """Invest deposits and raise withdrawals without otherwise trading.

    A deposit buys the most underweight positions first and never sells; a deposit larger than
    every shortfall fills them all and puts the rest in at target weights. A withdrawal sells
    the most overweight first (holdings outside the model are wholly overweight), then pro rata.
    """

    name: str = "cash-flow"

    def wants_trade(self, drift: Drift) -> BoolArray:
        # Whether cash flows is known only from the input; the caller selects the accounts.
        return whenever_asked(drift)

    def desired_values(self, inp: PolicyInput) -> FloatArray:
        target = inp.target_value
        values = spend_cash(inp, inp.held, np.maximum(inp.spendable, 0.0), target)
        values = raise_cash(inp, values, np.maximum(-inp.spendable, 0.0), target)
        return _keep_frozen(inp, values)


@dataclass(frozen=True, slots=True)
class Liquidation:
    """Sell everything that may be sold."""

    name: str = "liquidation"

    def wants_trade(self, drift: Drift) -> BoolArray:
        return whenever_asked(drift)

    def desired_values(self, inp: PolicyInput) -> FloatArray:
        return _keep_frozen(inp, np.zeros_like(inp.held))


POLICIES: dict[str, Policy] = {
    p.name: p for p in (Full(), Bands(), Rails(), Tiered(), CashFlow(), Liquidation())
}


def policy_by_name(name: str) -> Policy:
    """Return the policy called ``name`` (full, bands, rails, tiered, cash-flow, liquidation)."""
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(POLICIES)
        raise ValueError(f"unknown policy {name!r}; choose one of {known}") from None
