"""Every account gets exactly one status, by the documented priority, with a reason."""

from __future__ import annotations

from rebal.core.engine import RunConfig, propose
from rebal.core.status import Status
from rebal.proposal_output import reasons
from rebal.testkit import make_book

MODELS = [("m", "A", "60"), ("m", "B", "40")]
PRICES = {"A": "10", "B": "10"}
COLUMNS = ("account", "model", "cash", "can_trade", "restricted", "pending_cash", "liquidate")


def _status(accounts, holdings, prices=PRICES):
    book = make_book(MODELS, accounts, holdings, prices, account_columns=COLUMNS)
    result = propose(book.arrays, RunConfig())
    return [Status(s) for s in result.statuses.status], reasons(book, result)


def _acct(name, model="m", cash="0", can_trade="true", restricted="", pending="0", liq="false"):
    return (name, model, cash, can_trade, restricted, pending, liq)


def test_each_condition_maps_to_its_status_and_reason():
    on_target = [("A", "60"), ("B", "40")]
    drifted = [("A", "90"), ("B", "10")]
    cases = {
        "none": (_acct("none", model=""), on_target, Status.NO_PORTFOLIO_ASSIGNED, "no model"),
        "empty": (_acct("empty"), [], Status.UNABLE_TO_CHECK, "no positive value"),
        "frozen": (
            _acct("frozen", can_trade="false"),
            drifted,
            Status.NEEDS_ATTENTION,
            "cannot trade but is out of tolerance",
        ),
        "debit": (_acct("debit", cash="-5"), on_target, Status.NEEDS_ATTENTION, "negative"),
        "rbreach": (
            _acct("rbreach", restricted="A"),
            drifted,
            Status.NEEDS_ATTENTION,
            "restricted A at 90.00% is outside its band",
        ),
        "sellout": (_acct("sellout", liq="true"), on_target, Status.LIQUIDATION, "liquidation"),
        "out": (
            _acct("out", pending="-100"),
            on_target,
            Status.NEW_WITHDRAWAL,
            "withdrawal of 100.00",
        ),
        "dep": (_acct("dep", pending="250"), drifted, Status.NEW_DEPOSIT, "deposit of 250.00"),
        "drift": (
            _acct("drift"),
            drifted,
            Status.OUT_OF_TOLERANCE,
            "B at 10.00% is outside its band 32.00%–48.00% (target 40.00%)",
        ),
        "fine": (_acct("fine"), on_target, Status.INSIDE_TOLERANCE, "inside its band"),
        "idle": (
            _acct("idle", can_trade="false"),
            on_target,
            Status.INSIDE_TOLERANCE,
            "cannot trade",
        ),
    }
    accounts = [c[0] for c in cases.values()]
    holdings = [(name, s, q) for name, c in cases.items() for s, q in c[1]]

    statuses, why = _status(accounts, holdings)

    for i, (name, (_, _, status, text)) in enumerate(cases.items()):
        assert statuses[i] is status, name
        assert text in why[i], (name, why[i])


def test_missing_price_makes_the_account_unable_to_check_and_names_the_symbol():
    statuses, why = _status([_acct("x")], [("x", "A", "1"), ("x", "B", "1")], {"A": "10"})
    assert statuses == [Status.UNABLE_TO_CHECK]
    assert why == ["no price for B"]


def test_a_withdrawal_larger_than_the_account_needs_attention():
    statuses, why = _status([_acct("x", pending="-5000")], [("x", "A", "60"), ("x", "B", "40")])
    assert statuses == [Status.NEEDS_ATTENTION]
    assert "exceeds the account value 1,000.00" in why[0]


def test_no_model_outranks_everything_else():
    statuses, _ = _status([_acct("x", model="", cash="-5", liq="true")], [("x", "A", "1")])
    assert statuses == [Status.NO_PORTFOLIO_ASSIGNED]


def test_a_new_account_funded_by_its_first_deposit_is_invested():
    book = make_book(MODELS, [_acct("new", pending="5000")], [], PRICES, account_columns=COLUMNS)
    result = propose(book.arrays, RunConfig())
    assert Status(result.statuses.status[0]) is Status.NEW_DEPOSIT
    assert result.trades.buy_cents[0].tolist() == [300000, 200000]
    assert result.trades.cash_after_cents[0] == 0
