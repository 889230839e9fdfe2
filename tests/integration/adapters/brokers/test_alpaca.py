"""The Alpaca adapter against recorded Alpaca responses replayed by an HTTP server on loopback.

The responses in ``alpaca_responses.json`` have the shape Alpaca's trading API answers with
(orders, positions, the account, fill activities, and its error bodies); the server replays them
per request and keeps what it was sent, so each test checks both what went out (sells by
quantity, buys by notional, the day, the client order id, the credentials in headers) and what the
adapter made of the answer. Nothing here reaches the network.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rebal.adapters.brokers.alpaca import AlpacaBroker, AlpacaSettings
from rebal.adapters.memory.clock import SimulatedClock
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order, OrderState, OrderType, Side
from rebal.ports.broker import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    DuplicateOrder,
    InvalidOrder,
    UnknownAccount,
)

RECORDED = json.loads((Path(__file__).with_name("alpaca_responses.json")).read_text())
ACCOUNT = AccountId("ACC-1")
KEY, SECRET = "PKTESTKEY123", "s3cr3t-never-shown"
NOW = datetime(2026, 11, 20, 19, 30, tzinfo=UTC)


@dataclass
class Replay:
    """What the server answers per (method, path) and what it received."""

    answers: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0

    def on(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        self.answers[(method, path)] = list(answers)


@pytest.fixture
def replay() -> Iterator[tuple[Replay, str]]:
    state = Replay()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.received.append(
                {
                    "method": self.command,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "body": body,
                    "headers": dict(self.headers),
                }
            )
            time.sleep(state.delay)
            queue = state.answers.get((self.command, url.path))
            status, payload = (
                queue.pop(0) if queue else (404, {"code": 40410000, "message": "not found"})
            )
            if queue == [] and (self.command, url.path) in state.answers:
                state.answers[(self.command, url.path)] = [(status, payload)]
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def broker(url: str, timeout: float = 5.0) -> AlpacaBroker:
    settings = AlpacaSettings.from_env(
        ACCOUNT, {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET, "APCA_API_BASE_URL": url}
    )
    return AlpacaBroker(
        AlpacaSettings(
            account=settings.account,
            key_id=settings.key_id,
            secret_key=settings.secret_key,
            url=settings.url,
            timeout=timeout,
        ),
        SimulatedClock(NOW),
    )


def order(cid: str, side: str, **size: str) -> Order:
    amounts: dict[str, Any] = {}
    if "quantity" in size:
        amounts["quantity"] = Quantity(Decimal(size["quantity"]))
    if "notional" in size:
        amounts["notional"] = Money(Decimal(size["notional"]))
    return Order(
        client_order_id=ClientOrderId(cid),
        account=ACCOUNT,
        symbol=Symbol("VTI"),
        side=Side(side),
        **amounts,
    )


def test_the_adapter_is_a_broker(replay: tuple[Replay, str]) -> None:
    adapter: Broker = broker(replay[1])
    assert adapter.name == "alpaca"
    assert adapter.accounts() == [ACCOUNT]


def test_a_sell_goes_out_by_quantity_for_the_day_with_rebal_s_client_order_id(
    replay: tuple[Replay, str],
) -> None:
    state, url = replay
    state.on("POST", "/v2/orders", (200, RECORDED["sell_accepted"]))

    placed = broker(url).submit(order("run1-ACC-1-VTI-sell", "sell", quantity="4.123456789"))

    sent = state.received[0]
    assert sent["body"]["side"] == "sell"
    assert sent["body"]["type"] == "market"
    assert sent["body"]["time_in_force"] == "day"
    assert sent["body"]["qty"] == "4.123456789"
    assert "notional" not in sent["body"]
    assert sent["body"]["client_order_id"] == "run1-ACC-1-VTI-sell"
    assert sent["headers"]["APCA-API-KEY-ID"] == KEY
    assert placed.state is OrderState.ACCEPTED
    assert placed.quantity == Decimal("4.123456789")
    assert placed.client_order_id == "run1-ACC-1-VTI-sell"
    assert placed.broker_order_id == RECORDED["sell_accepted"]["id"]


def test_a_buy_goes_out_by_notional(replay: tuple[Replay, str]) -> None:
    state, url = replay
    state.on("POST", "/v2/orders", (200, RECORDED["buy_filled"]))

    placed = broker(url).submit(order("run1-ACC-1-BND-buy", "buy", notional="1234.56"))

    body = state.received[0]["body"]
    assert body["notional"] == "1234.56"
    assert "qty" not in body
    assert placed.state is OrderState.FILLED
    assert placed.notional == Decimal("1234.56")
    assert placed.filled_quantity == Decimal("17.087302")
    assert placed.filled_avg_price == Decimal("72.25")
    assert placed.filled_notional == Decimal("1234.56")


def test_a_reused_client_order_id_returns_the_order_alpaca_has_and_sends_nothing_new(
    replay: tuple[Replay, str],
) -> None:
    state, url = replay
    state.on("POST", "/v2/orders", (422, RECORDED["duplicate_client_order_id"]))
    state.on("GET", "/v2/orders:by_client_order_id", (200, RECORDED["sell_accepted"]))

    with pytest.raises(DuplicateOrder) as raised:
        broker(url).submit(order("run1-ACC-1-VTI-sell", "sell", quantity="4.123456789"))

    assert raised.value.existing.broker_order_id == RECORDED["sell_accepted"]["id"]
    posts = [r for r in state.received if r["method"] == "POST"]
    assert len(posts) == 1
    lookup = state.received[1]
    assert lookup["query"] == {"client_order_id": ["run1-ACC-1-VTI-sell"]}


def test_an_order_alpaca_refuses_comes_back_rejected_with_its_reason(
    replay: tuple[Replay, str],
) -> None:
    state, url = replay
    state.on("POST", "/v2/orders", (403, RECORDED["insufficient_buying_power"]))

    placed = broker(url).submit(order("run1-ACC-1-BND-buy", "buy", notional="99999.00"))

    assert placed.state is OrderState.REJECTED
    assert placed.reason == "insufficient buying power"
    assert placed.submitted_at == NOW


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_an_unknown_outcome(replay: tuple[Replay, str], status: int) -> None:
    state, url = replay
    state.on("POST", "/v2/orders", (status, {"code": 50010000, "message": "internal error"}))

    with pytest.raises(BrokerUnavailable):
        broker(url).submit(order("c1", "sell", quantity="1"))


def test_a_silent_server_is_an_unknown_outcome_not_a_hang(replay: tuple[Replay, str]) -> None:
    state, url = replay
    state.delay = 1.0
    state.on("POST", "/v2/orders", (200, RECORDED["sell_accepted"]))

    with pytest.raises(BrokerUnavailable):
        broker(url, timeout=0.2).submit(order("c1", "sell", quantity="1"))


def test_an_order_alpaca_never_received_is_none(replay: tuple[Replay, str]) -> None:
    state, url = replay
    state.on("GET", "/v2/orders:by_client_order_id", (404, RECORDED["order_not_found"]))

    assert broker(url).order(ClientOrderId("never-sent")) is None


def test_orders_alpaca_cannot_take_are_refused_before_anything_is_sent(
    replay: tuple[Replay, str],
) -> None:
    state, url = replay
    adapter = broker(url)
    with pytest.raises(InvalidOrder, match="extended hours"):
        adapter.submit(
            Order(
                client_order_id=ClientOrderId("c1"),
                account=ACCOUNT,
                symbol=Symbol("VTI"),
                side=Side.BUY,
                notional=Money(Decimal("10.00")),
                type=OrderType.MARKET,
                extended_hours=True,
            )
        )
    with pytest.raises(UnknownAccount):
        adapter.submit(
            Order(
                client_order_id=ClientOrderId("c2"),
                account=AccountId("OTHER"),
                symbol=Symbol("VTI"),
                side=Side.SELL,
                quantity=Quantity(Decimal(1)),
            )
        )
    assert state.received == []


def test_positions_cash_and_buying_power_are_exact(replay: tuple[Replay, str]) -> None:
    state, url = replay
    state.on("GET", "/v2/positions", (200, RECORDED["positions"]))
    state.on("GET", "/v2/account", (200, RECORDED["account"]))
    adapter = broker(url)

    assert adapter.positions(ACCOUNT) == {
        Symbol("VTI"): Decimal("12.123456789"),
        Symbol("BND"): Decimal("40"),
    }
    assert adapter.cash(ACCOUNT) == Decimal("4235.55")
    assert adapter.buying_power(ACCOUNT) == Decimal("4235.55")


def test_a_blocked_account_has_no_buying_power(replay: tuple[Replay, str]) -> None:
    state, url = replay
    state.on("GET", "/v2/account", (200, {**RECORDED["account"], "trading_blocked": True}))

    assert broker(url).buying_power(ACCOUNT) == 0


def test_fills_name_rebal_s_client_order_ids(replay: tuple[Replay, str]) -> None:
    state, url = replay
    state.on("GET", "/v2/account/activities/FILL", (200, RECORDED["fill_activities"]))
    state.on("GET", "/v2/orders", (200, [RECORDED["sell_accepted"], RECORDED["buy_filled"]]))

    fills = broker(url).fills()

    assert [f.client_order_id for f in fills] == ["run1-ACC-1-BND-buy", "run1-ACC-1-BND-buy"]
    assert sum(f.quantity for f in fills) == Decimal("17.087302")
    assert all(f.at.tzinfo is not None for f in fills)


def test_credentials_come_from_the_environment_and_are_never_shown(
    replay: tuple[Replay, str],
) -> None:
    state, url = replay
    with pytest.raises(BrokerError, match="APCA_API_SECRET_KEY"):
        AlpacaSettings.from_env(ACCOUNT, {"APCA_API_KEY_ID": KEY})
    settings = AlpacaSettings.from_env(
        ACCOUNT, {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    )
    assert settings.paper
    assert SECRET not in repr(settings) and KEY not in repr(settings)
    adapter = broker(url)
    assert SECRET not in repr(adapter)
    state.on("POST", "/v2/orders", (500, {"code": 50010000, "message": "internal error"}))
    with pytest.raises(BrokerUnavailable) as raised:
        adapter.submit(order("c1", "sell", quantity="1"))
    assert SECRET not in str(raised.value) and KEY not in str(raised.value)


def test_a_large_quantity_goes_out_exactly(replay: tuple[Replay, str]) -> None:
    state, url = replay
    state.on("POST", "/v2/orders", (200, RECORDED["sell_accepted"]))

    broker(url).submit(order("c-big", "sell", quantity="340000000000.123456789"))

    assert state.received[0]["body"]["qty"] == "340000000000.123456789"
