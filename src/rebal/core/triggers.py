"""Triggers: for every account at once, whether the scheduler runs a rebalance now.

Pure and vectorised: the accounts arrive as arrays (one element per account), the market's
clock arrives as a :class:`Window` the edge builds from the calendar port, and the answer is an
array of decisions with, for each account, the earliest instant worth looking at it again.
Nothing here reads a clock; no Python loop runs per account.

The rules (seed 000's programs, seed 001's monitoring cadence):

* **managed** accounts on a calendar trigger run at every trading window (the managed run time,
  :func:`rebal.compliance.hours.managed_run_at`: 14:30 ET, or the same lead before an early close);
* **client-directed** accounts on a calendar trigger run when ``cadence`` (7 days) has passed
  since their last rebalance; an instant rebalance is a rebalance, so it resets that clock;
* accounts on a **threshold** trigger are checked, and run only when a band is breached
  (otherwise ``skipped``): at or above ``value_threshold`` (25,000) at every check window, below
  it not for ``quiet_period`` (six months) after each rebalance;
* a **cash event** (a deposit or withdrawal pending) or a **target change** (a new model
  version) runs at the next window whatever the trigger or the quiet period;
* an **instant** request runs at once when the market trades, otherwise at the next window;
* no account runs twice in one window, and none runs outside a window: what is due while the
  market is closed (or before the window) is ``postponed`` to the next window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum

import numpy as np
import numpy.typing as npt

#: Instants are UTC seconds (``datetime64[s]``); ``NaT`` means never (no rebalance yet).
Instants = npt.NDArray[np.datetime64]


class Program(IntEnum):
    """Who decides when an account is rebalanced (seed 000)."""

    MANAGED = 0
    CLIENT_DIRECTED = 1


class Trigger(IntEnum):
    """What made (or would make) the scheduler act on an account."""

    CALENDAR = 0
    THRESHOLD = 1
    CASH = 2
    TARGET_CHANGE = 3
    INSTANT = 4


class Decision(IntEnum):
    """The scheduler's answer for one account in one tick."""

    NOT_DUE = 0
    RUN = 1
    SKIPPED = 2
    POSTPONED = 3


@dataclass(frozen=True, slots=True)
class CadenceRules:
    """The firm's configurable cadences (defaults from seeds 000 and 001)."""

    client_cadence: timedelta = timedelta(days=7)
    value_threshold: float = 25_000.0
    quiet_period: timedelta = timedelta(days=182)


@dataclass(frozen=True, slots=True)
class Window:
    """The market's clock at one tick, built at the edge from the calendar.

    ``window_at`` is the run instant of the current session, or of the next one when today's
    has passed or the market does not trade today; ``window_end`` is when that window stops
    (the session's close); ``next_window_at`` is the run instant of the session after it.
    ``market_open`` says whether the market trades at ``now``; ``check_day`` whether this window
    is one of the monitoring windows for large accounts (e.g. three days a week)."""

    now: np.datetime64
    window_at: np.datetime64
    window_end: np.datetime64
    next_window_at: np.datetime64
    market_open: bool
    check_day: bool = True

    @property
    def in_window(self) -> bool:
        """Whether ``now`` is inside the run window (from the run instant to the close)."""
        return bool(self.window_at <= self.now < self.window_end)


@dataclass(frozen=True, slots=True)
class Accounts:
    """The per-account facts a tick reads, one element per account."""

    program: npt.NDArray[np.int8]
    trigger: npt.NDArray[np.int8]
    last_rebalance_at: Instants
    value: npt.NDArray[np.float64]
    breached: npt.NDArray[np.bool_]
    cash_pending: npt.NDArray[np.bool_]
    model_changed: npt.NDArray[np.bool_]
    instant: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.program)


@dataclass(frozen=True, slots=True)
class Decisions:
    """A tick's answer: decision, trigger acted on and next instant to look, per account."""

    decision: npt.NDArray[np.int8]
    trigger: npt.NDArray[np.int8]
    next_check_at: Instants


def _seconds(delta: timedelta) -> np.timedelta64:
    return np.timedelta64(int(delta.total_seconds()), "s")


def decide(accounts: Accounts, window: Window, rules: CadenceRules = CadenceRules()) -> Decisions:
    """Every account's decision for the tick at ``window.now`` (see the module's rules)."""
    n = len(accounts)
    now = window.now
    last = accounts.last_rebalance_at.astype("datetime64[s]")
    never = np.isnat(last)
    instant = accounts.instant if len(accounts.instant) == n else np.zeros(n, dtype=bool)
    calendar = accounts.trigger == Trigger.CALENDAR
    threshold = ~calendar
    ran_this_window = ~never & (last >= window.window_at) & window.in_window

    cadence = _seconds(rules.client_cadence)
    quiet = _seconds(rules.quiet_period)
    client = accounts.program == Program.CLIENT_DIRECTED
    client_ready_at = np.where(never, np.datetime64("NaT", "s"), last + cadence)
    client_waiting = client & ~never & (client_ready_at > now)
    large = accounts.value >= rules.value_threshold
    quiet_until = np.where(never, np.datetime64("NaT", "s"), last + quiet)
    in_quiet = ~large & ~never & (quiet_until > now)

    calendar_due = calendar & ~client_waiting
    checked = threshold & ~client_waiting & ~in_quiet & (~large | window.check_day)
    update = accounts.cash_pending | accounts.model_changed
    wants = calendar_due | checked | update

    trigger = np.where(calendar, np.int8(Trigger.CALENDAR), np.int8(Trigger.THRESHOLD)).astype(
        np.int8
    )
    trigger[accounts.model_changed] = Trigger.TARGET_CHANGE
    trigger[accounts.cash_pending] = Trigger.CASH
    trigger[instant] = Trigger.INSTANT

    decision = np.full(n, Decision.NOT_DUE, dtype=np.int8)
    next_check = np.full(n, window.next_window_at if window.in_window else window.window_at)
    if window.in_window:
        act = wants & ~ran_this_window
        runs = act & (calendar_due | update | accounts.breached)
        decision[act] = Decision.SKIPPED
        decision[runs] = Decision.RUN
    else:
        decision[update] = Decision.POSTPONED
    if window.market_open:
        decision[instant] = Decision.RUN
    else:
        decision[instant] = Decision.POSTPONED
        next_check[instant] = window.window_at

    idle = decision == Decision.NOT_DUE
    later = np.where(client_waiting, client_ready_at, next_check)
    later = np.where(in_quiet & threshold, np.maximum(later, quiet_until), later)
    next_check = np.where(idle & ~update, np.maximum(next_check, later), next_check)
    return Decisions(decision=decision, trigger=trigger, next_check_at=next_check)
