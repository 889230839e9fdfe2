"""A run's end reports itself through the outbox, in the transaction that ended it: every
rebalance that happened (account, run, trades, why), and an alert for a run that timed out."""

from __future__ import annotations

from rundesk import Desk, make_desk, small_book

from rebal.domain.notification import DeliveryState, NotificationKind
from rebal.domain.order import Side
from rebal.domain.run import RunState
from rebal.ports.outbox import OutboxEntry


def _outbox(desk: Desk) -> list[OutboxEntry]:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        return list(uow.outbox.entries())


def test_every_account_rebalanced_gets_a_notification_with_its_trades(desk: Desk) -> None:
    run, _ = desk.start()
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED
    entries = _outbox(desk)
    assert sorted((e.notification.account, e.channel) for e in entries) == [
        ("A1", "email"),
        ("A1", "webhook"),
        ("A2", "email"),
        ("A2", "webhook"),
    ]
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        orders = uow.orders.for_run(run.id)
    for entry in entries:
        n = entry.notification
        assert entry.state is DeliveryState.PENDING and entry.attempts == 0
        assert n.kind is NotificationKind.REBALANCE and n.topic == "run.completed"
        assert n.run == run.id and n.id == f"{run.id}-{n.account}-completed"
        assert n.payload["reason"]  # why the account was rebalanced, from the proposal
        mine = [o for o in orders if o.account == n.account]
        assert [(t["side"], t["symbol"], t["quantity"]) for t in n.payload["trades"]] == [
            (o.side.value, o.symbol, str(o.filled_quantity.normalize())) for o in mine
        ]
        assert {t["side"] for t in n.payload["trades"]} == {Side.SELL.value, Side.BUY.value}


def test_executing_an_ended_run_again_queues_nothing_more(desk: Desk) -> None:
    run, _ = desk.start()
    desk.execute(run)
    before = _outbox(desk)
    desk.execute(run)
    assert _outbox(desk) == before


def test_a_run_whose_orders_do_not_fill_in_time_raises_a_delayed_order_alert(
    database_url: str,
) -> None:
    desk = make_desk(database_url, small_book(1), latency_seconds=600.0)
    try:
        run, _ = desk.start()
        done = desk.execute(run, max_wait_seconds=60.0, poll_seconds=10.0, channels=("webhook",))
        assert done.state is RunState.TIMEOUT
        (entry,) = _outbox(desk)
        n = entry.notification
        assert (n.kind, n.topic, n.account, n.run) == (
            NotificationKind.ALERT,
            "order.delayed",
            "A1",
            run.id,
        )
        assert n.payload["orders"] and all(o.startswith(run.id) for o in n.payload["orders"])
        assert entry.channel == "webhook"
    finally:
        desk.store.engine.dispose()


def test_no_channels_configured_queues_nothing(desk: Desk) -> None:
    run, _ = desk.start()
    desk.execute(run, channels=())
    assert _outbox(desk) == []
