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
7. ``out_of_tolerance`` - a position (or the cash target) is outside its band, or cash is short
   of the run's reserve (:mod:`rebal.core.reserve`).
8. ``inside_tolerance``.

Each account also gets a reason code and, where one position explains it, the slot of that
position (the worst breach, the unpriced symbol, ...), from which a sentence is written at the
edge; and, after its orders, an :class:`Unresolved` code saying why a position it may trade is
still outside its band.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from rebal.core.drift import Drift
from rebal.core.kernels import inline_kernel, kernel, maximum
from rebal.core.types import BoolArray, FloatArray, IntArray, dense, dense_as

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
    RESERVE_SHORT = 14


class Unresolved(IntEnum):
    """Why a position the account may trade is still outside its band after the orders of a
    policy that trades to the bands (``full``, ``bands``, ``rails``, ``tiered``)."""

    NONE = 0  # every tradable position ends inside its band
    RESTRICTED = 1  # restricted positions (holdings and targets) leave the others no room
    MIN_TRADE = 2  # an order below the minimum trade was dropped
    WHOLE_SHARES = 3  # orders rounded to whole shares
    ROUNDING = 4  # orders rounded to micro-shares and cents (more than a couple of cents)


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


@inline_kernel
def _status_of(
    has_model: bool,
    priced: bool,
    total: float,
    cash: float,
    flow: float,
    can_trade: bool,
    liquidate: bool,
    cash_state: tuple[bool, bool],
    slots: tuple[int, int, int, int],
) -> tuple[int, int, int]:
    """Status, reason and subject slot of one account: the rules of the module docstring, the
    first that holds wins. ``cash_state``: whether cash is outside its band, and short of the
    run's reserve; ``slots`` name the account's first unpriced slot, its worst breach, its first
    restricted breach and its first restricted holding outside the model (-1: none).
    """
    cash_breach, cash_short = cash_state
    unpriced, worst, restricted_breach, off_model = slots
    any_breach = worst >= 0 or cash_breach
    if not has_model:
        return Status.NO_PORTFOLIO_ASSIGNED, Reason.NO_MODEL, -1
    if not priced:
        return Status.UNABLE_TO_CHECK, Reason.MISSING_PRICE, unpriced
    # A new account funded by its first deposit has no value yet but is not empty.
    if not total + maximum(flow, 0.0) > 0:
        return Status.UNABLE_TO_CHECK, Reason.NO_VALUE, -1
    if not can_trade and (any_breach or liquidate or flow != 0 or cash < 0):
        return Status.NEEDS_ATTENTION, Reason.CANNOT_TRADE, -1
    if restricted_breach >= 0:
        return Status.NEEDS_ATTENTION, Reason.RESTRICTED_BREACH, restricted_breach
    if off_model >= 0:  # a restricted holding the model does not want cannot be sold
        return Status.NEEDS_ATTENTION, Reason.RESTRICTED_OFF_MODEL, off_model
    if cash < 0:
        return Status.NEEDS_ATTENTION, Reason.NEGATIVE_CASH, -1
    if -flow > total:
        return Status.NEEDS_ATTENTION, Reason.WITHDRAWAL_TOO_LARGE, -1
    if liquidate:
        return Status.LIQUIDATION, Reason.LIQUIDATE, -1
    if flow < 0:
        return Status.NEW_WITHDRAWAL, Reason.WITHDRAWAL, -1
    if flow > 0:
        return Status.NEW_DEPOSIT, Reason.DEPOSIT, -1
    if worst >= 0:
        return Status.OUT_OF_TOLERANCE, Reason.BREACH, worst
    if cash_breach:
        why = Reason.RESERVE_SHORT if cash_short else Reason.CASH_BREACH
        return Status.OUT_OF_TOLERANCE, why, CASH_SLOT
    return Status.INSIDE_TOLERANCE, Reason.INSIDE, -1


@kernel
def status_rows(
    start: int,
    stop: int,
    drift_slots: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
    masks: tuple[BoolArray, BoolArray, BoolArray],
    drift_accounts: tuple[BoolArray, FloatArray, FloatArray, BoolArray, BoolArray],
    flags: tuple[BoolArray, BoolArray, BoolArray],
    flow: FloatArray,
    out: tuple[IntArray, IntArray, IntArray],
) -> None:
    """:func:`_status_of` of accounts ``start:stop``: ``drift_slots`` are value, target, weight,
    band low and band high, ``masks`` breach, restricted and used, ``drift_accounts`` priced,
    total, cash, cash breach and cash short of the reserve, ``flags`` has a model, can trade and
    liquidate."""
    value, target, weight, low, high = drift_slots
    breach, restricted, used = masks
    priced, total, cash, cash_breach, cash_short = drift_accounts
    has_model, can_trade, liquidate = flags
    status, reason, subject = out
    for i in range(start, stop):
        unpriced = worst = restricted_breach = off_model = -1
        furthest = -np.inf
        for j in range(value.shape[1]):
            if unpriced < 0 and used[i, j] and np.isnan(value[i, j]):
                unpriced = j
            if breach[i, j]:
                # The slot furthest outside its band: numpy's argmax, the first NaN or maximum.
                distance = maximum(low[i, j] - weight[i, j], weight[i, j] - high[i, j])
                if furthest == furthest and (
                    worst < 0 or distance > furthest or distance != distance
                ):
                    worst, furthest = j, distance
                if restricted_breach < 0 and restricted[i, j]:
                    restricted_breach = j
            held_off_model = used[i, j] and target[i, j] == 0 and value[i, j] > 0
            if off_model < 0 and restricted[i, j] and held_off_model:
                off_model = j
        status[i], reason[i], subject[i] = _status_of(
            has_model[i],
            priced[i],
            total[i],
            cash[i],
            flow[i],
            can_trade[i],
            liquidate[i],
            (cash_breach[i], cash_short[i]),
            (unpriced, worst, restricted_breach, off_model),
        )


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
    statuses = Statuses(
        status=np.empty(n, dtype=np.int64),
        reason=np.empty(n, dtype=np.int64),
        subject=np.empty(n, dtype=np.int64),
    )
    shape = np.shape(drift.weight)
    edges = drift.edges
    status_rows(
        0,
        n,
        (
            dense(drift.value, shape),
            dense(drift.target, shape),
            dense(drift.weight, shape),
            dense(edges.band_low, shape),
            dense(edges.band_high, shape),
        ),
        (dense(drift.breach, shape), dense(restricted, shape), dense(used, shape)),
        (
            dense_as(drift.priced, np.bool_, (n,)),
            dense_as(drift.total, np.float64, (n,)),
            dense_as(drift.cash, np.float64, (n,)),
            dense_as(drift.cash_breach, np.bool_, (n,)),
            dense_as(drift.cash_short, np.bool_, (n,)),
        ),
        (
            dense_as(has_model, np.bool_, (n,)),
            dense_as(can_trade, np.bool_, (n,)),
            dense_as(liquidate, np.bool_, (n,)),
        ),
        dense_as(flow, np.float64, (n,)),
        (statuses.status, statuses.reason, statuses.subject),
    )
    return statuses
