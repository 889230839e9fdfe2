"""The scheduler's trigger rules, each a test, and invariants over random books (Hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.core.triggers import (
    Accounts,
    CadenceRules,
    Decision,
    Frequency,
    Program,
    Trigger,
    Why,
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
    cadence=None,
    cooldown=None,
    frequency=None,
    on_day=None,
    resume=None,
    wide=None,
):
    """A one-account book; the policy's fields (cadence ... wide) are left to the defaults
    unless given."""
    policy = {
        name: np.array([value], dtype=dtype)
        for name, value, dtype in (
            ("cadence_days", cadence, np.int32),
            ("cooldown_days", cooldown, np.int32),
            ("frequency", frequency, np.int8),
            ("on_day", on_day, "datetime64[D]"),
            ("resume_at", resume, "datetime64[s]"),
            ("wide_breached", wide, bool),
        )
        if value is not None
    }
    return Accounts(
        program=np.array([program], dtype=np.int8),
        trigger=np.array([trigger], dtype=np.int8),
        last_rebalance_at=np.array([last], dtype="datetime64[s]"),
        value=np.array([value]),
        breached=np.array([breached]),
        cash_pending=np.array([cash]),
        model_changed=np.array([model]),
        instant=np.array([instant]),
        **policy,
    )


def one(accounts, at=None, rules=DEFAULT_RULES):
    d = decide(accounts, at or window(), rules)
    return Decision(d.decision[0]), Trigger(d.trigger[0]), d.next_check_at[0]


def why(accounts, at=None):
    return Why(decide(accounts, at or window()).why[0])


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
                st.sampled_from(
                    [
                        Trigger.CALENDAR,
                        Trigger.THRESHOLD,
                        Trigger.HYBRID,
                        Trigger.TIERED,
                        Trigger.MANUAL,
                    ]
                ),
                min_size=n,
                max_size=n,
            ),
            "cooldown": st.lists(st.integers(0, 60), min_size=n, max_size=n),
            "days": st.lists(st.one_of(st.none(), st.integers(0, 400)), min_size=n, max_size=n),
            "value": st.lists(st.floats(0, 1e6), min_size=n, max_size=n),
            "flags": st.lists(st.tuples(*[st.booleans()] * 4), min_size=n, max_size=n),
            "wide": st.lists(st.booleans(), min_size=n, max_size=n),
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
        cooldown_days=np.array(b["cooldown"], dtype=np.int32),
        wide_breached=np.array(b["wide"], dtype=bool) & flags[:, 0],  # outside wide: outside
    )


@settings(max_examples=60, deadline=None)
@given(BOOKS, st.booleans())
def test_nothing_runs_while_the_market_is_closed_and_every_look_is_later(b, open_):
    accounts = accounts_of(b)
    at = window(RUN_AT - 3600, market_open=open_)
    d = decide(accounts, at)
    runs = d.decision == Decision.RUN
    assert (~runs | (accounts.instant & open_)).all()
    assert (np.isnat(d.next_check_at) | (d.next_check_at > at.now)).all()


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
        assert alone.next_check_at[0] == d.next_check_at[i] or (
            np.isnat(alone.next_check_at[0]) and np.isnat(d.next_check_at[i])
        )
        assert alone.why[0] == d.why[i]


def test_each_client_directed_account_runs_on_its_own_cadence():
    fortnightly = dict(program=Program.CLIENT_DIRECTED, cadence=14)
    decision, _, next_at = one(book(last=RUN_AT - 7 * DAY, **fortnightly))
    assert (decision, next_at) == (Decision.NOT_DUE, RUN_AT + 7 * DAY)
    assert one(book(last=RUN_AT - 14 * DAY, **fortnightly))[0] is Decision.RUN


def test_no_scheduled_run_inside_the_cooldown_after_a_rebalance():
    cooling = book(trigger=Trigger.THRESHOLD, breached=True, last=RUN_AT - 3 * DAY, cooldown=5)
    decision, _, next_at = one(cooling)
    assert (decision, next_at) == (Decision.NOT_DUE, RUN_AT + 2 * DAY)
    assert why(cooling) is Why.COOLDOWN
    assert one(book(last=RUN_AT - 3 * DAY, cooldown=5))[0] is Decision.NOT_DUE  # calendar too
    assert one(book(last=RUN_AT - 3 * DAY, cooldown=5, model=True))[0] is Decision.NOT_DUE
    # money arriving is invested, and a client's request runs, whatever the cooldown
    assert one(book(last=RUN_AT - 3 * DAY, cooldown=5, cash=True))[:2] == (
        Decision.RUN,
        Trigger.CASH,
    )
    assert one(book(last=RUN_AT - 3 * DAY, cooldown=5, instant=True))[0] is Decision.RUN
    assert one(book(last=RUN_AT - 5 * DAY, cooldown=5))[0] is Decision.RUN


def test_a_hybrid_trigger_looks_on_the_calendar_and_acts_only_outside_the_bands():
    monthly = dict(trigger=Trigger.HYBRID, frequency=Frequency.MONTHLY, last=RUN_AT - 40 * DAY)
    assert one(book(breached=True, **monthly))[:2] == (Decision.RUN, Trigger.HYBRID)
    assert one(book(breached=False, **monthly))[0] is Decision.SKIPPED
    assert why(book(breached=False, **monthly)) is Why.IN_BANDS
    # already looked at this month: nothing before the first of next month
    early = dict(monthly, last=np.datetime64("2026-12-01T19:30:00", "s"))
    decision, _, next_at = one(book(breached=True, **early))
    assert (decision, next_at) == (Decision.NOT_DUE, np.datetime64("2027-01-01T00:00:00", "s"))


def test_a_tiered_trigger_is_checked_like_a_threshold():
    assert one(book(trigger=Trigger.TIERED, breached=True))[:2] == (Decision.RUN, Trigger.TIERED)
    assert one(book(trigger=Trigger.TIERED, breached=False))[0] is Decision.SKIPPED
    assert why(book(trigger=Trigger.TIERED, breached=True, wide=False)) is Why.BREACHED
    assert why(book(trigger=Trigger.TIERED, breached=True, wide=True)) is Why.WIDE_BREACHED


def test_a_tiered_triggers_wide_band_is_looked_at_every_window():
    small = dict(trigger=Trigger.TIERED, value=24_999.99, breached=True)
    quiet = dict(last=RUN_AT - 100 * DAY, **small)
    # inside its wide band, the inner tier waits out the quiet period, looked at every window
    decision, _, next_at = one(book(wide=False, **quiet))
    assert (decision, next_at) == (Decision.NOT_DUE, NEXT_RUN_AT)
    assert why(book(wide=False, **quiet)) is Why.QUIET
    # outside it, the account runs at once
    assert one(book(wide=True, **quiet))[:2] == (Decision.RUN, Trigger.TIERED)
    assert why(book(wide=True, **quiet)) is Why.WIDE_BREACHED
    large = dict(trigger=Trigger.TIERED, value=1e6, breached=True)
    assert one(book(wide=False, **large), window(check_day=False))[0] is Decision.NOT_DUE
    assert one(book(wide=True, **large), window(check_day=False))[0] is Decision.RUN
    # a threshold trigger has no wide tier: the quiet period holds whatever the wide band says
    threshold = dict(quiet, trigger=Trigger.THRESHOLD)
    assert one(book(wide=True, **threshold))[0] is Decision.NOT_DUE


def test_a_cooldown_and_a_client_cadence_hold_the_wide_tier_too():
    tiered = dict(trigger=Trigger.TIERED, breached=True, wide=True, last=RUN_AT - 3 * DAY)
    assert one(book(cooldown=5, **tiered))[0] is Decision.NOT_DUE
    client = dict(tiered, program=Program.CLIENT_DIRECTED)
    assert one(book(**client))[0] is Decision.NOT_DUE
    assert one(book(cooldown=2, **tiered))[0] is Decision.RUN


def test_the_wide_tier_still_waits_for_the_window():
    tiered = book(trigger=Trigger.TIERED, breached=True, wide=True, last=RUN_AT - 100 * DAY)
    decision, _, next_at = one(tiered, window(RUN_AT - 3600, market_open=True))
    assert (decision, next_at) == (Decision.NOT_DUE, RUN_AT)


def test_a_manual_policy_is_never_scheduled_only_asked():
    manual = dict(trigger=Trigger.MANUAL, breached=True, cash=True, model=True)
    decision, _, next_at = one(book(**manual))
    assert decision is Decision.NOT_DUE and np.isnat(next_at)
    assert why(book(**manual)) is Why.MANUAL
    assert one(book(instant=True, **manual))[:2] == (Decision.RUN, Trigger.INSTANT)


def test_calendar_frequencies_run_at_the_first_window_of_their_period():
    cases = {
        Frequency.MONTHLY: ("2026-11-30", "2026-12-01", "2027-01-01"),
        Frequency.QUARTERLY: ("2026-09-30", "2026-10-05", "2027-01-01"),
        Frequency.ANNUAL: ("2025-12-31", "2026-01-02", "2027-01-01"),
    }
    for frequency, (before, inside, following) in cases.items():
        last = np.datetime64(f"{before}T19:30:00", "s")
        assert one(book(frequency=frequency, last=last))[0] is Decision.RUN, frequency
        decision, _, next_at = one(
            book(frequency=frequency, last=np.datetime64(f"{inside}T19:30:00", "s"))
        )
        assert decision is Decision.NOT_DUE, frequency
        assert next_at == np.datetime64(f"{following}T00:00:00", "s"), frequency
        # the frequency replaces a client-directed account's seven days
        client = book(program=Program.CLIENT_DIRECTED, frequency=frequency, last=last)
        assert one(client)[0] is Decision.RUN, frequency


def test_an_on_day_trigger_runs_once_at_the_first_window_on_or_after_its_day():
    later = np.datetime64("2026-12-10", "D")
    decision, _, next_at = one(book(frequency=Frequency.ON_DAY, on_day=later))
    assert (decision, next_at) == (Decision.NOT_DUE, np.datetime64("2026-12-10T00:00:00", "s"))
    passed = np.datetime64("2026-11-28", "D")  # a Saturday: its first window is after it
    assert one(book(frequency=Frequency.ON_DAY, on_day=passed))[0] is Decision.RUN
    ran = book(frequency=Frequency.ON_DAY, on_day=passed, last=RUN_AT - DAY)
    decision, _, next_at = one(ran)
    assert decision is Decision.NOT_DUE and np.isnat(next_at)
    assert why(ran) is Why.DONE


def test_a_postponed_run_waits_for_the_open_then_runs_outside_the_window():
    open_at = RUN_AT + DAY - 5 * 3600  # the next session's open, 9:30 ET
    postponed = book(last=RUN_AT - 2 * DAY, resume=open_at)
    decision, _, next_at = one(postponed, window(RUN_AT + 600))
    assert (decision, next_at) == (Decision.POSTPONED, open_at)
    assert why(postponed, window(RUN_AT + 600)) is Why.POSTPONED
    at_open = Window(open_at, NEXT_RUN_AT, CLOSE + DAY, NEXT_RUN_AT + DAY, market_open=True)
    assert one(postponed, at_open)[0] is Decision.RUN
    assert why(postponed, at_open) is Why.RESUMED
    # once it has run, the postponement is spent
    assert one(book(last=open_at + 60, resume=open_at), at_open)[0] is Decision.NOT_DUE


def test_every_decision_says_why():
    assert why(book(last=RUN_AT - DAY)) is Why.DUE
    assert why(book(trigger=Trigger.THRESHOLD, breached=True)) is Why.BREACHED
    assert why(book(program=Program.CLIENT_DIRECTED, last=RUN_AT - DAY)) is Why.CADENCE
    assert why(book(cash=True)) is Why.CASH
    assert why(book(model=True, last=RUN_AT - DAY)) is Why.TARGET_CHANGE
    assert why(book(last=RUN_AT + 60), window(RUN_AT + 120)) is Why.RAN
    small = book(trigger=Trigger.THRESHOLD, value=10.0, last=RUN_AT - DAY)
    assert why(small) is Why.QUIET
    large = book(trigger=Trigger.THRESHOLD, value=1e6)
    assert why(large, window(check_day=False)) is Why.NOT_CHECK_DAY
    assert why(book(), window(RUN_AT - 3600)) is Why.NEXT_WINDOW
