"""The scheduler's trigger rules, each a test, and invariants over random books (Hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.core.triggers import (
    Accounts,
    CadenceRules,
    Decision,
    Program,
    Trigger,
    Window,
    decide,
)

DAY = np.timedelta64(86_400, "s")
#: A Wednesday's managed run (14:30 ET = 19:30 UTC) and close (21:00 UTC).
RUN_AT = np.datetime64("2026-12-02T19:30:00", "s")
CLOSE = np.datetime64("2026-12-02T21:00:00", "s")
NEXT_RUN_AT = RUN_AT + DAY
NEVER = np.datetime64("NaT", "s")
DEFAULT_RULES = CadenceRules()


def window(now=RUN_AT, *, market_open=True, check_day=True):
    """The tick at ``now`` in today's session (run at 14:30 ET, close at 16:00 ET)."""
    return Window(now, RUN_AT, CLOSE, NEXT_RUN_AT, market_open=market_open, check_day=check_day)


def book(
    *,
    program=Program.MANAGED,
    trigger=Trigger.CALENDAR,
    last=NEVER,
    value=100_000.0,
    breached=False,
    cash=False,
    model=False,
    instant=False,
):
    """A one-account book."""
    return Accounts(
        program=np.array([program], dtype=np.int8),
        trigger=np.array([trigger], dtype=np.int8),
        last_rebalance_at=np.array([last], dtype="datetime64[s]"),
        value=np.array([value]),
        breached=np.array([breached]),
        cash_pending=np.array([cash]),
        model_changed=np.array([model]),
        instant=np.array([instant]),
    )


def one(accounts, at=None, rules=DEFAULT_RULES):
    d = decide(accounts, at or window(), rules)
    return Decision(d.decision[0]), Trigger(d.trigger[0]), d.next_check_at[0]


def test_managed_accounts_run_every_trading_day_at_the_managed_run_time():
    decision, trigger, next_at = one(book(last=RUN_AT - DAY))
    assert (decision, trigger, next_at) == (Decision.RUN, Trigger.CALENDAR, NEXT_RUN_AT)


def test_a_managed_account_runs_once_per_window():
    assert one(book(last=RUN_AT + 60), window(RUN_AT + 120))[0] is Decision.NOT_DUE


def test_client_directed_accounts_run_every_seven_days():
    client = dict(program=Program.CLIENT_DIRECTED)
    assert one(book(last=RUN_AT - 7 * DAY, **client))[0] is Decision.RUN
    decision, _, next_at = one(book(last=RUN_AT - 6 * DAY, **client))
    assert decision is Decision.NOT_DUE
    assert next_at == NEXT_RUN_AT


def test_an_instant_rebalance_resets_the_seven_day_clock():
    # the instant run two days ago is the last rebalance: the weekly run waits 7 days from it
    decision, _, next_at = one(book(program=Program.CLIENT_DIRECTED, last=RUN_AT - 2 * DAY))
    assert decision is Decision.NOT_DUE
    assert next_at == RUN_AT + 5 * DAY


def test_an_instant_request_runs_at_once_while_the_market_trades():
    morning = Window(RUN_AT - 3 * 3600, RUN_AT, CLOSE, NEXT_RUN_AT, market_open=True)
    decision, trigger, _ = one(book(program=Program.CLIENT_DIRECTED, instant=True), morning)
    assert (decision, trigger) == (Decision.RUN, Trigger.INSTANT)


def test_updates_outside_market_hours_wait_for_the_next_trading_window():
    night = Window(CLOSE + 3600, NEXT_RUN_AT, CLOSE + DAY, NEXT_RUN_AT + DAY, market_open=False)
    for update in ({"cash": True}, {"model": True}, {"instant": True}):
        decision, _, next_at = one(book(last=RUN_AT, **update), night)
        assert (decision, next_at) == (Decision.POSTPONED, NEXT_RUN_AT), update


def test_a_cash_event_or_a_target_change_runs_at_the_next_window():
    assert one(book(cash=True, trigger=Trigger.THRESHOLD))[:2] == (Decision.RUN, Trigger.CASH)
    model = book(model=True, trigger=Trigger.THRESHOLD)
    assert one(model)[:2] == (Decision.RUN, Trigger.TARGET_CHANGE)


def test_threshold_accounts_run_only_outside_their_bands():
    assert one(book(trigger=Trigger.THRESHOLD, breached=True))[0] is Decision.RUN
    assert one(book(trigger=Trigger.THRESHOLD, breached=False))[0] is Decision.SKIPPED


def test_large_accounts_are_checked_at_every_check_window_only():
    large = book(trigger=Trigger.THRESHOLD, value=25_000.0, breached=True)
    assert one(large)[0] is Decision.RUN
    assert one(large, window(check_day=False))[0] is Decision.NOT_DUE


def test_small_accounts_are_not_checked_for_six_months_after_a_rebalance():
    small = dict(trigger=Trigger.THRESHOLD, value=24_999.99, breached=True)
    decision, _, next_at = one(book(last=RUN_AT - 100 * DAY, **small))
    assert decision is Decision.NOT_DUE
    assert next_at == RUN_AT + 82 * DAY
    assert one(book(last=RUN_AT - 182 * DAY, **small))[0] is Decision.RUN
    shorter = CadenceRules(quiet_period=CadenceRules().client_cadence)
    assert one(book(last=RUN_AT - 100 * DAY, **small), rules=shorter)[0] is Decision.RUN


BOOKS = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "program": st.lists(st.sampled_from(list(Program)), min_size=n, max_size=n),
            "trigger": st.lists(
                st.sampled_from([Trigger.CALENDAR, Trigger.THRESHOLD]), min_size=n, max_size=n
            ),
            "days": st.lists(st.one_of(st.none(), st.integers(0, 400)), min_size=n, max_size=n),
            "value": st.lists(st.floats(0, 1e6), min_size=n, max_size=n),
            "flags": st.lists(st.tuples(*[st.booleans()] * 4), min_size=n, max_size=n),
        }
    )
)


def accounts_of(b) -> Accounts:
    flags = np.array(b["flags"], dtype=bool).reshape(-1, 4)
    last = [NEVER if d is None else RUN_AT - d * DAY for d in b["days"]]
    return Accounts(
        program=np.array(b["program"], dtype=np.int8),
        trigger=np.array(b["trigger"], dtype=np.int8),
        last_rebalance_at=np.array(last, dtype="datetime64[s]"),
        value=np.array(b["value"]),
        breached=flags[:, 0],
        cash_pending=flags[:, 1],
        model_changed=flags[:, 2],
        instant=flags[:, 3],
    )


@settings(max_examples=60, deadline=None)
@given(BOOKS, st.booleans())
def test_nothing_runs_while_the_market_is_closed_and_every_look_is_later(b, open_):
    accounts = accounts_of(b)
    at = window(RUN_AT - 3600, market_open=open_)
    d = decide(accounts, at)
    runs = d.decision == Decision.RUN
    assert (~runs | (accounts.instant & open_)).all()
    assert (d.next_check_at > at.now).all()


@settings(max_examples=60, deadline=None)
@given(BOOKS)
def test_each_account_is_decided_alone(b):
    accounts = accounts_of(b)
    d = decide(accounts, window())
    for i in range(len(accounts)):
        single = Accounts(
            *(np.asarray(getattr(accounts, f))[i : i + 1] for f in Accounts.__slots__)
        )
        alone = decide(single, window())
        assert (alone.decision[0], alone.trigger[0]) == (d.decision[i], d.trigger[i])
        assert alone.next_check_at[0] == d.next_check_at[i]
