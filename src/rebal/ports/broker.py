"""The broker port: orders in, fills, positions and cash out.

One small interface for every counterparty (the simulated broker, Alpaca, a custodian's trade
file). The rules that keep a run from trading twice live here in the contract:

* an order is identified by rebal's ``client_order_id``; submitting an id the broker already has
  never creates a second order (the broker answers :class:`DuplicateOrder` with the order it has);
* after a timeout or a lost connection the outcome of a submission is unknown: the caller asks
  :meth:`Broker.order` before sending anything again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from rebal.domain.ids import AccountId, BrokerOrderId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Fill, Order, OrderState


class BrokerError(Exception):
    """The broker could not do what was asked."""


class BrokerUnavailable(BrokerError):
    """No answer (timeout, disconnect): the outcome of the request is unknown."""


class DuplicateOrder(BrokerError):
    """The client order id is already known to the broker; ``existing`` is its order."""

    def __init__(self, existing: BrokerOrder) -> None:
        super().__init__(f"client order id {existing.client_order_id} is already known")
        self.existing = existing


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerOrder:
    """An order as the broker sees it."""

    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId
    account: AccountId
    symbol: Symbol
    state: OrderState
    filled_quantity: Quantity
    filled_avg_price: Decimal | None
    submitted_at: datetime
    updated_at: datetime
    reason: str = ""


class Broker(Protocol):
    """A counterparty that takes orders and keeps accounts."""

    name: str

    def submit(self, order: Order) -> BrokerOrder:
        """Send ``order``; raises :class:`DuplicateOrder` for a known client order id and
        :class:`BrokerUnavailable` when the outcome is unknown."""
        ...

    def cancel(self, client_order_id: ClientOrderId) -> BrokerOrder:
        """Ask to cancel a working order; returns the order as it then stands."""
        ...

    def order(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        """The order with this client order id, ``None`` when the broker never received it."""
        ...

    def orders(self, account: AccountId | None = None) -> Sequence[BrokerOrder]:
        """Every order the broker has (of ``account``), oldest first."""
        ...

    def fills(self, account: AccountId | None = None) -> Sequence[Fill]:
        """Every fill (of ``account``), in the order the broker reports them."""
        ...

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        """Shares held per symbol (no zero positions)."""
        ...

    def cash(self, account: AccountId) -> Money:
        """Settled cash."""
        ...

    def buying_power(self, account: AccountId) -> Money:
        """What the account may spend now (cash less what working buys have reserved)."""
        ...
