"""How a tax-aware run composes its steps' decisions, and what it trades per household.

The reference is the bookkeeping the steps used to do on one shared, mutable state: each step
writes its rows' desired values and methods over the earlier ones, adds held rows, and appends
its notes; a household's first buyer of a symbol stays its buyer.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.tax_overlay.decisions import Decisions, Replan
from rebal.tax_overlay.run_trades import NO_TRADES, with_buys

ROWS = st.integers(0, 5)


@st.composite
def steps(draw: st.DrawFn) -> Decisions:
    """One step's decisions over a few rows."""
    replanned = draw(st.lists(ROWS, unique=True, max_size=3))
    return Decisions(
        replans={i: Replan(np.full(2, float(draw(ROWS))), draw(st.booleans())) for i in replanned},
        held=frozenset(draw(st.sets(ROWS, max_size=2))),
        notes={
            i: tuple(draw(st.lists(st.text("ab", max_size=2), min_size=1, max_size=2)))
            for i in draw(st.sets(ROWS, max_size=3))
        },
        methods={
            i: draw(st.sampled_from(["household", "rule-based", "harvest"])) for i in replanned
        },
        raised=frozenset(draw(st.sets(ROWS, max_size=2))),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(steps(), max_size=4))
def test_merged_decisions_are_the_steps_written_in_turn(parts: list[Decisions]) -> None:
    desired: dict[int, list[float]] = {}
    flow: dict[int, bool] = {}
    methods: dict[int, str] = {}
    notes: dict[int, list[str]] = {}
    held: set[int] = set()
    for part in parts:
        for i, replan in part.replans.items():
            desired[i], flow[i] = list(replan.desired), replan.with_flow
        methods.update(part.methods)
        for i, texts in part.notes.items():
            notes.setdefault(i, []).extend(texts)
        held |= part.held
    merged = Decisions.merge(parts)
    assert list(merged.replans) == list(desired)  # rows in the order first re-planned
    assert {i: list(r.desired) for i, r in merged.replans.items()} == desired
    assert {i: r.with_flow for i, r in merged.replans.items()} == flow
    assert merged.methods == methods
    assert {i: list(t) for i, t in merged.notes.items()} == notes
    assert merged.held == held
    assert merged.raised == set().union(*(p.raised for p in parts))


def test_a_households_first_buyer_stays_its_buyer() -> None:
    trades = with_buys({}, [("h", 3, "VTI"), ("h", 1, "VTI"), ("h", 1, "BND"), ("g", 2, "VTI")])
    assert trades["h"].bought == {"VTI", "BND"}
    assert trades["h"].buyers == {"VTI": 3, "BND": 1}
    assert trades["g"].buyers == {"VTI": 2}
    later = trades["h"].buying(5, ["BND", "AGG"]).losing(["VXUS"])
    assert later.buyers == {"VTI": 3, "BND": 1, "AGG": 5}
    assert later.lost == {"VXUS"}
    assert trades["h"].lost == frozenset()  # the earlier trades are unchanged
    assert NO_TRADES.buying(0, []) is NO_TRADES
