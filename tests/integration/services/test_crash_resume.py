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

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "crash_stress.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_stress", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


KILLS = {"sqlite": 35, "postgresql": 15}


def test_sigkill_at_random_points_then_resume_trades_each_order_once(
    database_url: str, tmp_path: Path
) -> None:
    crash = _script()
    kills = KILLS["sqlite" if database_url.startswith("sqlite") else "postgresql"]
    logs = tmp_path / "logs"
    logs.mkdir()
    result = crash.stress(database_url, kills, seed=11, accounts=2, logs=logs)
    assert result.kills >= kills
    for cycle in result.cycles:
        assert cycle.submits_twice == [], cycle  # no client order id reached the broker twice
        assert cycle.missing == [] and cycle.not_at_broker == [], cycle  # none missing
        assert cycle.disagreeing == [], cycle  # the book and the broker agree on each order
        assert cycle.state == "completed" and cycle.orders == 4, cycle  # a sell, a buy each
    assert result.reconcile_exit == 0  # positions and cash agree exactly with the broker
    # the events tell it: a run killed after it began says, each time it is taken up again,
    # where its orders stood
    assert sum(c.resumed_events for c in result.cycles) > 0
    assert all(c.resumed_events < c.processes for c in result.cycles)


#: kills of runs in block orders (rebal run --block-orders), on top of the 50 above
BLOCK_KILLS = {"sqlite": 10, "postgresql": 5}


def test_sigkill_of_a_run_in_block_orders_then_resume_sends_each_block_once(
    database_url: str, tmp_path: Path
) -> None:
    crash = _script()
    kills = BLOCK_KILLS["sqlite" if database_url.startswith("sqlite") else "postgresql"]
    logs = tmp_path / "logs"
    logs.mkdir()
    result = crash.stress(database_url, kills, seed=7, accounts=3, logs=logs, blocks=True)
    assert result.kills >= kills
    for cycle in result.cycles:
        assert cycle.submits_twice == [], cycle  # no block reached the broker twice
        assert cycle.missing == [] and cycle.not_at_broker == [], cycle
        # each account's order ended as its block did; every block allocated, the omnibus flat
        assert cycle.disagreeing == [], cycle
        assert cycle.state == "completed" and cycle.orders == 6, cycle
    assert result.reconcile_exit == 0


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
