"""Alpaca behind the broker port (``alpaca-py``'s trading client, one Alpaca account per key).

Orders go out as Alpaca expects them: sells by quantity, buys by notional (or by quantity for a
whole-share account), market or limit, good for the day, extended hours only for limit orders
(Alpaca refuses the rest), each with rebal's ``client_order_id``. The rules of the port hold:

* a reused client order id is answered 422 by Alpaca; the adapter then fetches the order it has
  and raises :class:`DuplicateOrder` with it, so a retry never makes a second order;
* no answer (a timeout, a refused connection, a 5xx) is :class:`BrokerUnavailable`: the caller
  asks :meth:`AlpacaBroker.order` before sending again;
* an order Alpaca refuses outright (insufficient buying power, an asset it does not trade) comes
  back in state ``rejected`` with Alpaca's message, and is not recorded at Alpaca;
* money and quantities are read from Alpaca's decimal strings into ``Decimal``, never floats.

Responses are read as raw JSON (``raw_data=True``): alpaca-py's models lag the live API and refuse
values they do not know. Credentials come from the environment (``APCA_API_KEY_ID``,
``APCA_API_SECRET_KEY``) and are held as secrets: never printed, logged or put in an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from pydantic import SecretStr

from rebal.domain.ids import AccountId, BrokerOrderId, ClientOrderId, FillId, Symbol, symbol
from rebal.domain.money import NO_MONEY, NO_SHARES, Money, Quantity, amount_of, cents
from rebal.domain.order import Fill, Order, OrderState, OrderType, Side, TimeInForce
from rebal.ports.broker import (
    BrokerError,
    BrokerOrder,
    BrokerUnavailable,
    DuplicateOrder,
    InvalidOrder,
    UnknownAccount,
    UnknownOrder,
)
from rebal.ports.clock import Clock

#: Alpaca's answer to a client order id it already has.
DUPLICATE_CLIENT_ORDER_ID = 40010001

#: Alpaca's order statuses -> rebal's. ``done_for_day`` still has the day's fills and may resume;
#: ``replaced`` orders are never made by rebal (it does not replace orders).
_STATES: dict[str, OrderState] = {
    "pending_new": OrderState.SUBMITTED,
    "new": OrderState.ACCEPTED,
    "accepted": OrderState.ACCEPTED,
    "accepted_for_bidding": OrderState.ACCEPTED,
    "calculated": OrderState.ACCEPTED,
    "held": OrderState.ACCEPTED,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "done_for_day": OrderState.PARTIALLY_FILLED,
    "pending_cancel": OrderState.PENDING_CANCEL,
    "pending_replace": OrderState.PENDING_CANCEL,
    "stopped": OrderState.ACCEPTED,
    "suspended": OrderState.ACCEPTED,
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "replaced": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaSettings:
    """Where and as whom to trade. ``account`` is rebal's id of the one account the key trades;
    ``url`` overrides Alpaca's endpoint (a proxy, or the tests' replay server); ``timeout`` bounds
    every request in seconds, so a silent server is :class:`BrokerUnavailable`, not a hang."""

    account: AccountId
    key_id: SecretStr
    secret_key: SecretStr
    paper: bool = True
    url: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_env(cls, account: AccountId, env: Mapping[str, str] | None = None) -> AlpacaSettings:
        """The settings from ``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``, ``APCA_PAPER``
        (``false`` for live trading; paper otherwise) and ``APCA_API_BASE_URL`` (optional)."""
        env = os.environ if env is None else env
        missing = [k for k in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY") if not env.get(k)]
        if missing:
            raise BrokerError(f"Alpaca needs {' and '.join(missing)} in the environment")
        return cls(
            account=account,
            key_id=SecretStr(env["APCA_API_KEY_ID"]),
            secret_key=SecretStr(env["APCA_API_SECRET_KEY"]),
            paper=env.get("APCA_PAPER", "true").strip().lower() != "false",
            url=env.get("APCA_API_BASE_URL") or None,
        )


class _BoundedSession(requests.Session):
    """A session whose every request has a timeout (alpaca-py sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


def _decimal(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _plain(value: Decimal) -> str:
    """A decimal as plain digits (no exponent), as Alpaca reads it."""
    return format(value.normalize(), "f")


def _shares(value: Any) -> Quantity | None:
    amount = _decimal(value)
    return None if amount is None else Quantity(amount)


def _money(value: Any) -> Money | None:
    """Alpaca's money strings (``"4235.5500"``) as cents."""
    amount = _decimal(value)
    return None if amount is None else cents(amount)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class AlpacaBroker:
    """The broker port on one Alpaca account."""

    name = "alpaca"

    def __init__(
        self, settings: AlpacaSettings, clock: Clock, client: TradingClient | None = None
    ) -> None:
        self._account = settings.account
        self._clock = clock
        self._client = client or TradingClient(
            api_key=settings.key_id.get_secret_value(),
            secret_key=settings.secret_key.get_secret_value(),
            paper=settings.paper,
            raw_data=True,
            url_override=settings.url,
        )
        # alpaca-py retries 429 and 504 itself, waiting between tries; its session gets a bound.
        self._client._session = _BoundedSession(settings.timeout)

    def __repr__(self) -> str:
        return f"AlpacaBroker(account={self._account!r})"

    # -- orders ------------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        self._check_account(order.account)
        request = self._request(order)
        try:
            raw = self._call(self._client.post, "/orders", request)
        except APIError as exc:
            if _code(exc) == DUPLICATE_CLIENT_ORDER_ID:
                existing = self.order(order.client_order_id)
                if existing is None:  # Alpaca says it has it but cannot show it: unknown
                    raise BrokerUnavailable(f"order {order.client_order_id}: {exc}") from None
                raise DuplicateOrder(existing) from None
            return self._refused(order, _message(exc))
        return self._order(raw)

    def submit_many(self, orders: Sequence[Order]) -> Sequence[BrokerOrder | BrokerError]:
        """One request per order (Alpaca has no batch order request)."""
        results: list[BrokerOrder | BrokerError] = []
        for order in orders:
            try:
                results.append(self.submit(order))
            except (DuplicateOrder, UnknownAccount, InvalidOrder) as exc:
                results.append(exc)
        return results

    def cancel(self, client_order_id: ClientOrderId) -> BrokerOrder:
        found = self.order(client_order_id)
        if found is None:
            raise UnknownOrder(f"Alpaca has no order {client_order_id}")
        if found.state.terminal:
            return found
        try:
            self._call(self._client.cancel_order_by_id, str(found.broker_order_id))
        except APIError as exc:
            if _status(exc) != 422:  # 422: the order can no longer be canceled (it has ended)
                raise BrokerError(
                    f"Alpaca did not cancel {client_order_id}: {_message(exc)}"
                ) from None
        after = self.order(client_order_id)
        assert after is not None
        return after

    def order(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        try:
            raw = self._call(self._client.get_order_by_client_id, str(client_order_id))
        except APIError as exc:
            if _status(exc) == 404:
                return None
            raise BrokerError(f"Alpaca: {_message(exc)}") from None
        return self._order(raw)

    def orders(self, account: AccountId | None = None) -> Sequence[BrokerOrder]:
        if account is not None and account != self._account:
            return []
        request = GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500, direction=Sort.ASC)
        raw = self._call(self._client.get_orders, request)
        return [self._order(r) for r in raw]

    def fills(self, account: AccountId | None = None) -> Sequence[Fill]:
        """Alpaca's ``FILL`` account activities, each with the client order id of its order."""
        if account is not None and account != self._account:
            return []
        activities = self._call(self._client.get, "/account/activities/FILL", {"direction": "asc"})
        client_ids = {o.broker_order_id: o.client_order_id for o in self.orders()}
        fills = []
        for a in activities:
            cid = client_ids.get(BrokerOrderId(a["order_id"]))
            if cid is None:  # a fill of an order rebal did not place (a manual trade)
                cid = ClientOrderId(f"alpaca:{a['order_id']}")
            fills.append(
                Fill(
                    id=FillId(a["id"]),
                    client_order_id=cid,
                    account=self._account,
                    symbol=symbol(a["symbol"]),
                    side=Side(a["side"]),
                    quantity=Quantity(Decimal(a["qty"])),
                    price=Decimal(a["price"]),
                    at=_time(a["transaction_time"]),
                )
            )
        return fills

    # -- accounts ----------------------------------------------------------------------------

    def accounts(self) -> Sequence[AccountId]:
        return [self._account]

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        self._check_account(account)
        raw = self._call(self._client.get_all_positions)
        held = {symbol(p["symbol"]): Quantity(Decimal(p["qty"])) for p in raw}
        return {s: q for s, q in held.items() if q}

    def cash(self, account: AccountId) -> Money:
        self._check_account(account)
        return cents(Decimal(self._call(self._client.get_account)["cash"]))

    def buying_power(self, account: AccountId) -> Money:
        """Alpaca's ``non_marginable_buying_power``: what may be spent without borrowing."""
        self._check_account(account)
        raw = self._call(self._client.get_account)
        if raw.get("trading_blocked") or raw.get("account_blocked"):
            return NO_MONEY
        return cents(Decimal(raw["non_marginable_buying_power"]))

    # -- translation -------------------------------------------------------------------------

    def _check_account(self, account: AccountId) -> None:
        if account != self._account:
            raise UnknownAccount(f"this Alpaca key trades account {self._account}, not {account}")

    def _request(self, order: Order) -> dict[str, Any]:
        """The JSON body of Alpaca's order request, sizes and prices as decimal strings (exact:
        alpaca-py's request models would carry them as floats)."""
        if order.time_in_force is not TimeInForce.DAY and (
            order.notional is not None or (order.quantity is not None and order.quantity % 1)
        ):
            raise InvalidOrder(
                f"order {order.client_order_id}: Alpaca takes fractional orders for the day only"
            )
        if order.extended_hours and order.type is not OrderType.LIMIT:
            raise InvalidOrder(
                f"order {order.client_order_id}: Alpaca trades extended hours only by limit orders"
            )
        body: dict[str, Any] = {
            "symbol": str(order.symbol),
            "side": order.side.value,
            "type": order.type.value,
            "time_in_force": order.time_in_force.value,
            "client_order_id": str(order.client_order_id),
            "extended_hours": order.extended_hours,
        }
        if order.quantity is not None:
            body["qty"] = _plain(order.quantity)
        else:
            body["notional"] = _plain(order.notional or NO_MONEY)
        if order.limit_price is not None:
            body["limit_price"] = _plain(order.limit_price)
        return body

    def _order(self, raw: Mapping[str, Any]) -> BrokerOrder:
        filled = _shares(raw.get("filled_qty")) or NO_SHARES
        average = _decimal(raw.get("filled_avg_price"))
        return BrokerOrder(
            client_order_id=ClientOrderId(raw["client_order_id"]),
            broker_order_id=BrokerOrderId(raw["id"]),
            account=self._account,
            symbol=symbol(raw["symbol"]),
            side=Side(raw["side"]),
            quantity=_shares(raw.get("qty")),
            notional=_money(raw.get("notional")),
            type=OrderType.LIMIT if raw.get("type") == "limit" else OrderType.MARKET,
            limit_price=_decimal(raw.get("limit_price")),
            state=_STATES.get(raw["status"], OrderState.ACCEPTED),
            filled_quantity=filled,
            filled_notional=amount_of(filled, average) if average is not None else NO_MONEY,
            filled_avg_price=average,
            submitted_at=_time(raw.get("submitted_at") or raw["created_at"]),
            updated_at=_time(raw.get("updated_at") or raw["created_at"]),
        )

    def _refused(self, order: Order, reason: str) -> BrokerOrder:
        """An order Alpaca would not take, as the port reports it: rejected, never recorded."""
        now = self._clock.now()
        return BrokerOrder.of(
            order, broker_order_id=BrokerOrderId(""), state=OrderState.REJECTED,
            submitted_at=now, updated_at=now, reason=reason,
        )  # fmt: skip

    @staticmethod
    def _call(method: Any, *args: Any) -> Any:
        """``method(*args)``; no answer, or a server error, is :class:`BrokerUnavailable`."""
        try:
            return method(*args)
        except requests.RequestException as exc:
            raise BrokerUnavailable(f"Alpaca did not answer: {type(exc).__name__}") from None
        except APIError as exc:
            if (_status(exc) or 500) >= 500:
                raise BrokerUnavailable(f"Alpaca answered {_status(exc)}") from None
            raise


def _status(exc: APIError) -> int | None:
    status = exc.status_code
    return int(status) if status is not None else None


def _code(exc: APIError) -> int | None:
    try:
        return int(exc.code)
    except (ValueError, KeyError, TypeError):
        return None


def _message(exc: APIError) -> str:
    try:
        return str(exc.message)
    except (ValueError, KeyError, TypeError):
        return f"HTTP {_status(exc)}"
