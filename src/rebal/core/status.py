"""One status per account, with the reason behind it.

When several conditions hold, the first in this order wins (the order an operations team works
an exception list in: what cannot be judged, what needs a person, then what the engine acts on):

1. ``no_portfolio_assigned`` - the account has no model.
2. ``unable_to_check`` - a held or target security has no price, or the account has no
   positive value to weigh, even counting a pending deposit.
3. ``needs_attention`` - the account cannot trade but something calls for action; a restricted
   security is outside its band; a restricted holding outside the model cannot be sold; cash is
   negative; a withdrawal exceeds the account's value.
4. ``liquidation`` - the account is to be sold out.
5. ``new_withdrawal`` / 6. ``new_deposit`` - a pending cash flow.
7. ``out_of_tolerance`` - a position (or the cash target) is outside its band.
8. ``inside_tolerance``.

Each account also gets a reason code and, where one position explains it, the slot of that
position (the worst breach, the unpriced symbol, ...), from which a sentence is written at the
edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from rebal.core.drift import Drift
from rebal.core.types import BoolArray, IntArray, any_per_row

CASH_SLOT = -2  # ``subject`` value naming the account's cash


class Status(IntEnum):
    """Account statuses, in priority order (lower wins)."""

    NO_PORTFOLIO_ASSIGNED = 0
    UNABLE_TO_CHECK = 1
    NEEDS_ATTENTION = 2
    LIQUIDATION = 3
    NEW_WITHDRAWAL = 4
    NEW_DEPOSIT = 5
    OUT_OF_TOLERANCE = 6
    INSIDE_TOLERANCE = 7

    @property
    def label(self) -> str:
        """The public name, e.g. ``out_of_tolerance``."""
        return self.name.lower()


class Reason(IntEnum):
    """Why an account has its status."""

    NO_MODEL = 0
    MISSING_PRICE = 1
    NO_VALUE = 2
    CANNOT_TRADE = 3
    RESTRICTED_BREACH = 4
    RESTRICTED_OFF_MODEL = 5
    NEGATIVE_CASH = 6
    WITHDRAWAL_TOO_LARGE = 7
    LIQUIDATE = 8
    WITHDRAWAL = 9
    DEPOSIT = 10
    BREACH = 11
    CASH_BREACH = 12
    INSIDE = 13


# Status that acting on the account can resolve (the engine proposes trades for these).
ACTIONABLE = (
    Status.NEEDS_ATTENTION,
    Status.LIQUIDATION,
    Status.NEW_WITHDRAWAL,
    Status.NEW_DEPOSIT,
    Status.OUT_OF_TOLERANCE,
)


@dataclass(frozen=True, slots=True)
class Statuses:
    """Status, reason and subject slot per account (subject -1: none, -2: cash)."""

    status: IntArray
    reason: IntArray
    subject: IntArray


def _first_slot(mask: BoolArray) -> IntArray:
    result: IntArray = np.where(any_per_row(mask), mask.argmax(axis=1), -1)
    return result


def worst_breach(drift: Drift) -> IntArray:
    """Slot furthest outside its band per account (-1 where none is)."""
    edges = drift.edges
    outside = np.maximum(edges.band_low - drift.weight, drift.weight - edges.band_high)
    outside = np.where(drift.breach, outside, -np.inf)
    result: IntArray = np.where(any_per_row(drift.breach), outside.argmax(axis=1), -1)
    return result


def classify(
    drift: Drift,
    *,
    has_model: BoolArray,
    can_trade: BoolArray,
    liquidate: BoolArray,
    flow: np.ndarray,
    restricted: BoolArray,
    used: BoolArray,
) -> Statuses:
    """Return one status per account, with its reason and subject slot.

    ``flow`` is the pending cash flow per account (deposit positive), in any money unit
    consistent with ``drift.cash``; ``restricted`` and ``used`` are (N, K) slot masks.
    """
    n = drift.total.shape[0]
    status = np.full(n, int(Status.INSIDE_TOLERANCE), dtype=np.int64)
    reason = np.full(n, int(Reason.INSIDE), dtype=np.int64)
    subject = np.full(n, -1, dtype=np.int64)

    unpriced_slot = _first_slot(used & ~drift.priced[:, None] & np.isnan(drift.value))
    breach_slot = worst_breach(drift)
    restricted_breach = drift.breach & restricted
    off_model = restricted & used & (drift.target == 0) & (drift.value > 0)
    any_breach = drift.any_breach
    wants_action = any_breach | liquidate | (flow != 0) | (drift.cash < 0)

    # Rules from lowest to highest priority: each later assignment overrides an earlier one.
    security_breach = breach_slot >= 0
    rules: list[tuple[BoolArray, Status, Reason | IntArray, IntArray | int]] = [
        (
            any_breach,
            Status.OUT_OF_TOLERANCE,
            np.where(security_breach, int(Reason.BREACH), int(Reason.CASH_BREACH)),
            np.where(security_breach, breach_slot, CASH_SLOT),
        ),
        (flow > 0, Status.NEW_DEPOSIT, Reason.DEPOSIT, -1),
        (flow < 0, Status.NEW_WITHDRAWAL, Reason.WITHDRAWAL, -1),
        (liquidate, Status.LIQUIDATION, Reason.LIQUIDATE, -1),
        (-flow > drift.total, Status.NEEDS_ATTENTION, Reason.WITHDRAWAL_TOO_LARGE, -1),
        (drift.cash < 0, Status.NEEDS_ATTENTION, Reason.NEGATIVE_CASH, -1),
        (
            any_per_row(off_model),
            Status.NEEDS_ATTENTION,
            Reason.RESTRICTED_OFF_MODEL,
            _first_slot(off_model),
        ),
        (
            any_per_row(restricted_breach),
            Status.NEEDS_ATTENTION,
            Reason.RESTRICTED_BREACH,
            _first_slot(restricted_breach),
        ),
        (~can_trade & wants_action, Status.NEEDS_ATTENTION, Reason.CANNOT_TRADE, -1),
        # A new account funded by its first deposit has no value yet but is not empty.
        (~(drift.total + np.maximum(flow, 0) > 0), Status.UNABLE_TO_CHECK, Reason.NO_VALUE, -1),
        (~drift.priced, Status.UNABLE_TO_CHECK, Reason.MISSING_PRICE, unpriced_slot),
        (~has_model, Status.NO_PORTFOLIO_ASSIGNED, Reason.NO_MODEL, -1),
    ]
    for mask, st, why, slot in rules:
        status = np.where(mask, int(st), status)
        reason = np.where(mask, why, reason)
        subject = np.where(mask, slot, subject)
    return Statuses(status=status, reason=reason, subject=subject)
