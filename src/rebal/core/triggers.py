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
* a **hybrid** trigger comes due on the calendar and then runs only when a band is breached; a
  **manual** one is never scheduled (only an instant request runs it);
* a **tiered** trigger has two tiers, the tiered policy's: its (inner) band is checked like a
  threshold's, on the monitoring cadence; its wide band at every window, so a wide-band breach
  runs even in a small account's quiet period or on a large account's off day (a cooldown and
  a client-directed cadence still hold it); the rule says which tier acted;
* a calendar ``frequency`` replaces the program's cadence: the first window of each month,
  quarter or year, or the first window on or after a given day (once);
* each account's ``cadence_days`` (client-directed) and ``cooldown_days`` (no scheduled run that
  many days after any rebalance; a cash event and an instant request pass it) are its policy's;
* a run **postponed** (a pattern day trade) to an instant waits for it, then runs at once while
  the market trades (the next session's open, outside the managed window);
* no account runs twice in one window, and none runs outside a window: what is due while the
  market is closed (or before the window) is ``postponed`` to the next window.

Each decision carries a :class:`Why`, the rule that made it, for the edge to word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

#: Instants are UTC seconds (``datetime64[s]``); ``NaT`` means never (no rebalance yet).
Instants = npt.NDArray[np.datetime64]


class Program(IntEnum):
    """Who decides when an account is rebalanced (seed 000)."""

    MANAGED = 0
    CLIENT_DIRECTED = 1


class Trigger(IntEnum):
    """What made (or would make) the scheduler act on an account: an account's policy trigger
    (calendar, threshold, hybrid, tiered, manual) or an event (cash, target change, instant)."""

    CALENDAR = 0
    THRESHOLD = 1
    CASH = 2
    TARGET_CHANGE = 3
    INSTANT = 4
    HYBRID = 5
    TIERED = 6
    MANUAL = 7


class Frequency(IntEnum):
    """How often a calendar (or hybrid) trigger comes due; ``PROGRAM``: the program's cadence."""

    PROGRAM = 0
    MONTHLY = 1
    QUARTERLY = 2
    ANNUAL = 3
    ON_DAY = 4


class Decision(IntEnum):
    """The scheduler's answer for one account in one tick. ``BLOCKED`` is the edge's: a run the
    checks refused (pre-trade compliance, an account that cannot trade)."""

    NOT_DUE = 0
    RUN = 1
    SKIPPED = 2
    POSTPONED = 3
    BLOCKED = 4


class Why(IntEnum):
    """The rule behind a decision."""

    DUE = 0  # the calendar (or the program's cadence) says so
    BREACHED = 1  # checked, a band is breached
    IN_BANDS = 2  # checked, inside the bands
    CADENCE = 3  # client-directed: the cadence has not passed since the last rebalance
    QUIET = 4  # small account: inside the quiet period after a rebalance
    COOLDOWN = 5  # inside the policy's cooldown after a rebalance
    RAN = 6  # already rebalanced in this window
    NEXT_WINDOW = 7  # nothing happens before the next window
    CASH = 8  # a deposit or withdrawal is pending
    TARGET_CHANGE = 9  # the model has a new version
    INSTANT = 10  # the client asked
    MANUAL = 11  # a manual policy: never scheduled
    NOT_CHECK_DAY = 12  # a large threshold account: this window is not a check window
    PERIOD = 13  # the calendar frequency's next period has not begun
    POSTPONED = 14  # postponed (pattern day trade) to a later instant
    RESUMED = 15  # the postponement is over: runs at once
    DONE = 16  # an on-day trigger that has run: nothing more to do
    WIDE_BREACHED = 17  # a tiered trigger: its wide band is breached


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


def _empty(dtype: str) -> Callable[[], npt.NDArray[Any]]:
    return lambda: np.zeros(0, dtype=dtype)


@dataclass(frozen=True, slots=True)
class Accounts:
    """The per-account facts a tick reads, one element per account. The policy's arrays
    (``cadence_days`` ... ``resume_at``) may be left empty: the firm's defaults then apply
    (the rules' client cadence, no cooldown, the program's cadence, no postponement)."""

    program: npt.NDArray[np.int8]
    trigger: npt.NDArray[np.int8]
    last_rebalance_at: Instants
    value: npt.NDArray[np.float64]
    breached: npt.NDArray[np.bool_]
    cash_pending: npt.NDArray[np.bool_]
    model_changed: npt.NDArray[np.bool_]
    instant: npt.NDArray[np.bool_] = field(default_factory=_empty("bool"))
    cadence_days: npt.NDArray[np.int32] = field(default_factory=_empty("int32"))
    cooldown_days: npt.NDArray[np.int32] = field(default_factory=_empty("int32"))
    frequency: npt.NDArray[np.int8] = field(default_factory=_empty("int8"))
    on_day: npt.NDArray[np.datetime64] = field(default_factory=_empty("datetime64[D]"))
    resume_at: Instants = field(default_factory=_empty("datetime64[s]"))
    #: a wide band (the tiered policy's) is breached; empty: none is
    wide_breached: npt.NDArray[np.bool_] = field(default_factory=_empty("bool"))

    def __len__(self) -> int:
        return len(self.program)


@dataclass(frozen=True, slots=True)
class Decisions:
    """A tick's answer: decision, trigger acted on, next instant to look (``NaT``: never, for a
    manual policy or an on-day trigger that has run) and the rule, per account."""

    decision: npt.NDArray[np.int8]
    trigger: npt.NDArray[np.int8]
    next_check_at: Instants
    why: npt.NDArray[np.int8]


NAT = np.datetime64("NaT", "s")


def _seconds(delta: timedelta) -> np.timedelta64:
    return np.timedelta64(int(delta.total_seconds()), "s")


def _or(given: npt.NDArray[Any], n: int, default: Any, dtype: Any) -> npt.NDArray[Any]:
    """``given`` when it has one element per account, else ``default`` for each."""
    return given if len(given) == n else np.full(n, default, dtype=dtype)


def _days(days: npt.NDArray[np.int32]) -> npt.NDArray[np.timedelta64]:
    return days.astype(np.int64) * np.timedelta64(86_400, "s")


def _after(last: Instants, delta: npt.NDArray[np.timedelta64] | np.timedelta64) -> Instants:
    """``last + delta``, ``NaT`` where there was no rebalance."""
    return np.where(np.isnat(last), NAT, last + delta)


def _periods(
    frequency: npt.NDArray[np.int8], on_day: npt.NDArray[np.datetime64], at: np.datetime64
) -> tuple[Instants, Instants]:
    """The start of the calendar period the window at ``at`` is in and of the next one, per
    account (midnight UTC of the period's first day; ``NaT`` for the program's cadence). An
    on-day trigger's one period starts on its day and has no next."""
    month = at.astype("datetime64[M]")
    months = month.astype(np.int64)
    quarter = (months - months % 3).astype("datetime64[M]")
    year = at.astype("datetime64[Y]").astype("datetime64[M]")
    starts = {
        Frequency.MONTHLY: (month, month + 1),
        Frequency.QUARTERLY: (quarter, quarter + 3),
        Frequency.ANNUAL: (year, year + 12),
    }
    start = np.full(len(frequency), NAT)
    following = np.full(len(frequency), NAT)
    for code, (begins, ends) in starts.items():
        chosen = frequency == code
        start[chosen] = begins.astype("datetime64[s]")
        following[chosen] = ends.astype("datetime64[s]")
    dated = frequency == Frequency.ON_DAY
    start[dated] = on_day[dated].astype("datetime64[s]")
    return start, following


def decide(accounts: Accounts, window: Window, rules: CadenceRules = CadenceRules()) -> Decisions:
    """Every account's decision for the tick at ``window.now`` (see the module's rules)."""
    n = len(accounts)
    now = window.now
    last = accounts.last_rebalance_at.astype("datetime64[s]")
    never = np.isnat(last)
    instant = _or(accounts.instant, n, False, bool)
    cadence_days = _or(accounts.cadence_days, n, rules.client_cadence.days, np.int32)
    cooldown_days = _or(accounts.cooldown_days, n, 0, np.int32)
    frequency = _or(accounts.frequency, n, Frequency.PROGRAM, np.int8)
    on_day = _or(accounts.on_day, n, np.datetime64("NaT", "D"), "datetime64[D]")
    resume_at = _or(accounts.resume_at, n, NAT, "datetime64[s]").astype("datetime64[s]")
    wide = _or(accounts.wide_breached, n, False, bool)
    trig = accounts.trigger
    manual = trig == Trigger.MANUAL
    calendar = (trig == Trigger.CALENDAR) | (trig == Trigger.HYBRID)
    threshold = (trig == Trigger.THRESHOLD) | (trig == Trigger.TIERED)
    looks = ~calendar | (trig == Trigger.HYBRID)  # runs only when a band is breached
    ran_this_window = ~never & (last >= window.window_at) & window.in_window

    client = accounts.program == Program.CLIENT_DIRECTED
    timed = calendar & (frequency != Frequency.PROGRAM)
    client_ready_at = _after(last, _days(cadence_days))
    client_waiting = client & ~timed & ~never & (client_ready_at > now)
    period_start, next_period = _periods(frequency, on_day, window.window_at)
    period_begun = period_start <= window.window_at
    done = timed & ~never & (last >= period_start)
    period_waiting = timed & (~period_begun | done)
    large = accounts.value >= rules.value_threshold
    quiet_until = _after(last, _seconds(rules.quiet_period))
    in_quiet = threshold & ~large & ~never & (quiet_until > now)
    cooldown_until = _after(last, _days(cooldown_days))
    in_cooldown = (cooldown_days > 0) & ~never & (cooldown_until > now)
    off_day = threshold & large & (not window.check_day)
    tiered = trig == Trigger.TIERED
    wide_tier = tiered & wide  # looked at every window, whatever the monitoring cadence

    calendar_due = calendar & ~client_waiting & ~period_waiting & ~in_cooldown
    checked = threshold & ~client_waiting & ~in_cooldown & ((~in_quiet & ~off_day) | wide_tier)
    cash = accounts.cash_pending & ~manual
    update = cash | (accounts.model_changed & ~manual & ~in_cooldown)
    wants = calendar_due | checked | update

    trigger = trig.astype(np.int8, copy=True)
    trigger[accounts.model_changed & update] = Trigger.TARGET_CHANGE
    trigger[cash] = Trigger.CASH
    trigger[instant] = Trigger.INSTANT

    decision = np.full(n, Decision.NOT_DUE, dtype=np.int8)
    next_check = np.full(n, window.next_window_at if window.in_window else window.window_at)
    if window.in_window:
        act = wants & ~ran_this_window
        runs = act & ((calendar_due & ~looks) | update | accounts.breached | wide_tier)
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
    # a tiered account's wide band is looked at every window, in the quiet period too
    later = np.where(in_quiet & ~tiered, np.maximum(later, quiet_until), later)
    later = np.where(in_cooldown, np.maximum(later, cooldown_until), later)
    later = np.where(timed & ~period_begun, np.maximum(later, period_start), later)
    later = np.where(timed & period_begun & done, np.maximum(later, next_period), later)
    waits = idle & ~update
    next_check = np.where(waits, np.maximum(next_check, later), next_check)
    next_check[waits & (manual | (done & (frequency == Frequency.ON_DAY)))] = NAT

    postponed = ~np.isnat(resume_at) & (never | (last < resume_at)) & ~instant
    resumed = postponed & (resume_at <= now) & window.market_open
    waiting = postponed & (resume_at > now)
    decision[resumed] = Decision.RUN
    decision[waiting] = Decision.POSTPONED
    next_check[waiting] = resume_at[waiting]
    next_check[resumed] = window.next_window_at if window.in_window else window.window_at

    why = np.select(
        [
            waiting,
            resumed,
            instant,
            cash & (decision != Decision.NOT_DUE),
            accounts.model_changed & update & (decision != Decision.NOT_DUE),
            manual,
            ran_this_window & wants,
            decision == Decision.RUN,
            decision == Decision.SKIPPED,
            in_cooldown,
            client_waiting,
            in_quiet,
            done & (frequency == Frequency.ON_DAY),
            period_waiting,
            off_day,
        ],
        [
            Why.POSTPONED,
            Why.RESUMED,
            Why.INSTANT,
            Why.CASH,
            Why.TARGET_CHANGE,
            Why.MANUAL,
            Why.RAN,
            np.where(looks, np.where(wide_tier, Why.WIDE_BREACHED, Why.BREACHED), Why.DUE),
            Why.IN_BANDS,
            Why.COOLDOWN,
            Why.CADENCE,
            Why.QUIET,
            Why.DONE,
            Why.PERIOD,
            Why.NOT_CHECK_DAY,
        ],
        Why.NEXT_WINDOW,
    ).astype(np.int8)
    return Decisions(decision=decision, trigger=trigger, next_check_at=next_check, why=why)
