"""A batch run killed (SIGKILL) at random points and resumed with `rebal runs resume` trades each
order once, misses none, reconciles exactly, and its events say what happened.

The processes are real: `rebal` command lines forked from the server of scripts/crash_stress.py
(its docstring says why forked) and killed after seeded random delays spanning a whole run; the
checks read the book and the simulated broker's own ledger. 35 kills on SQLite and 15 on
PostgreSQL: at least 50 in the suite (the script runs 200 by default); and 15 more of runs in
block orders.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "crash_stress.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_stress", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


#: kills per backend: each account trading its own orders; in block orders (--block-orders)
KILLS = {False: {"sqlite": 35, "postgresql": 15}, True: {"sqlite": 10, "postgresql": 5}}


@pytest.mark.parametrize("blocks", [False, True], ids=["own-orders", "block-orders"])
def test_sigkill_at_random_points_then_resume_trades_each_order_once(
    database_url: str, tmp_path: Path, blocks: bool
) -> None:
    crash = _script()
    kills = KILLS[blocks]["sqlite" if database_url.startswith("sqlite") else "postgresql"]
    logs = tmp_path / "logs"
    logs.mkdir()
    accounts = 3 if blocks else 2
    result = crash.stress(
        database_url, kills, seed=7 if blocks else 11, accounts=accounts, logs=logs, blocks=blocks
    )
    assert result.kills >= kills
    for cycle in result.cycles:
        # no client order id (an account's order, or with blocks a block) reached the broker twice
        assert cycle.submits_twice == [], cycle
        assert cycle.missing == [] and cycle.not_at_broker == [], cycle  # none missing
        # the book and the broker agree on each order (with blocks: each account's order ended
        # as its block did, every block was allocated, the omnibus account holds nothing)
        assert cycle.disagreeing == [], cycle
        assert cycle.state == "completed" and cycle.orders == 2 * accounts, cycle
    assert result.reconcile_exit == 0  # positions and cash agree exactly with the broker
    if not blocks:
        # the events tell it: a run killed after it began says, each time it is taken up
        # again, where its orders stood
        assert sum(c.resumed_events for c in result.cycles) > 0
    assert all(c.resumed_events < c.processes for c in result.cycles)


def test_the_resumed_event_says_where_the_orders_stood() -> None:
    from rebal.domain.ids import AccountId, ClientOrderId, Symbol
    from rebal.domain.money import Quantity
    from rebal.domain.order import Order, OrderState, Side
    from rebal.services.execution import _resumed

    def order(n: int, state: OrderState) -> Order:
        return Order(
            client_order_id=ClientOrderId(f"C{n}"),
            account=AccountId("A1"),
            symbol=Symbol("VTI"),
            side=Side.SELL,
            quantity=Quantity(Decimal(1)),
            state=state,
        )

    states = [OrderState.NEW, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.FILLED]
    text = _resumed([order(n, s) for n, s in enumerate(states)])
    assert text.startswith("resumed after an interruption: 2 order(s) possibly sent")
    assert "1 intent(s) not sent yet; 1 ended" in text
