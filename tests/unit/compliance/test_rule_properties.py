"""Invariants of the pre-trade rules over drawn runs and facts: a restricted security is never
passed, forgetting a fact never clears a violation (fail closed), and restricting one more
security never changes the violations of any other code."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from factbook import PRICES, account, buy, market, sell
from hypothesis import given
from hypothesis import strategies as st

from rebal.compliance.codes import Code
from rebal.compliance.facts import AccountFacts, Limits, MarketFacts
from rebal.compliance.rules import check
from rebal.domain.ids import Symbol
from rebal.domain.order import Order

SYMBOLS = sorted(PRICES)

order = st.one_of(
    st.builds(
        lambda s, cents: buy(s, str(Decimal(cents).scaleb(-2))),
        st.sampled_from(SYMBOLS),
        st.integers(1, 2_000_000),
    ),
    st.builds(lambda s, q: sell(s, str(q)), st.sampled_from(SYMBOLS), st.integers(1, 400)),
)
orders = st.lists(order, max_size=6)
limits = st.builds(
    Limits,
    restricted=st.frozensets(st.sampled_from(SYMBOLS).map(Symbol), max_size=2),
    max_security_weight=st.none() | st.sampled_from([Decimal("0.2"), Decimal("0.5"), Decimal(1)]),
)

#: Each fact a check may not know, and how to forget it.
FORGET = {
    "market hours": lambda a, m: (a, replace(m, market_open=None)),
    "a price": lambda a, m: (
        a,
        replace(m, prices={k: v for k, v in m.prices.items() if k != "VTI"}),
    ),
    "trading status": lambda a, m: (replace(a, can_trade=None), m),
    "cash": lambda a, m: (replace(a, cash=None), m),
    "buying power": lambda a, m: (replace(a, buying_power=None), m),
    "positions": lambda a, m: (replace(a, positions=None), m),
    "today's orders": lambda a, m: (replace(a, day_orders=None), m),
    "household history": lambda a, m: (replace(a, wash_guard=None), m),
}


def _violations(run: list[Order], a: AccountFacts, m: MarketFacts, lim: Limits) -> set[Code]:
    return set(check(run, a, m, lim).codes)


@given(orders, limits, st.sampled_from(SYMBOLS))
def test_restricted_security_is_never_passed(run: list[Order], lim: Limits, symbol: str) -> None:
    run = [*run, buy(symbol, "1.00")]
    restricted = replace(lim, restricted=lim.restricted | {Symbol(symbol)})
    report = check(run, account(), market(), restricted)
    assert not report.passed
    assert Symbol(symbol) in {
        v.symbol for v in report.violations if v.code is Code.RESTRICTED_SECURITY
    }


@given(orders, limits, st.sampled_from(sorted(FORGET)))
def test_forgetting_a_fact_never_clears_a_violation(
    run: list[Order], lim: Limits, fact: str
) -> None:
    known = _violations(run, account(), market(), lim)
    a, m = FORGET[fact](account(), market())
    assert known <= _violations(run, a, m, lim)


@given(orders, limits, st.sampled_from(SYMBOLS))
def test_restricting_a_symbol_leaves_other_codes_unchanged(
    run: list[Order], lim: Limits, symbol: str
) -> None:
    before = check(run, account(), market(), lim).violations
    more = replace(lim, restricted=lim.restricted | {Symbol(symbol)})
    after = check(run, account(), market(), more).violations
    others = [v for v in before if v.code is not Code.RESTRICTED_SECURITY]
    assert others == [v for v in after if v.code is not Code.RESTRICTED_SECURITY]
