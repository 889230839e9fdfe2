"""The broker port: orders in, fills, positions and cash out.

One small interface for every counterparty (the simulated broker, Alpaca, a custodian's trade
file). The rules that keep a run from trading twice live here in the contract:

* an order is identified by rebal's ``client_order_id``; submitting an id the broker already has
  never creates a second order (the broker answers :class:`DuplicateOrder` with the order it has);
* after a timeout or a lost connection (:class:`BrokerUnavailable`) the outcome of a request is
  unknown: the caller asks :meth:`Broker.order` before sending anything again;
* an order the broker refuses comes back from :meth:`Broker.submit` in state ``rejected`` with
  the reason (no money, no shares to sell, an order the broker does not take);
* an order whose acknowledgement was lost comes back in state ``submitted``: the broker has it,
  and later answers tell how far it got;
* a fill may be reported more than once and fills may be reported out of order: a reader keys
  fills by their ``id`` and orders them by their time, never by their place in the list;
* each fill moves cash by exactly ``amount_of(quantity, price)`` (:mod:`rebal.domain.money`),
  so cash is the opening cash plus sells less buys, to the cent.

``tests/integration/adapters/brokers/test_broker_contract.py`` holds these rules as tests that every
adapter passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from rebal.domain.ids import AccountId, BrokerOrderId, ClientOrderId, Symbol
from rebal.domain.money import NO_MONEY, NO_SHARES, Money, Quantity, check_cents
from rebal.domain.order import Fill, Order, OrderState, OrderType, Side


class BrokerError(Exception):
    """The broker could not do what was asked."""


class BrokerUnavailable(BrokerError):
    """No answer (timeout, disconnect): the outcome of the request is unknown."""


class UnknownAccount(BrokerError):
    """The broker keeps no account with this id."""


class UnknownOrder(BrokerError):
    """The broker has no order with this client order id."""


class InvalidOrder(BrokerError):
    """The order cannot be expressed to the broker (a quantity finer than 10^-9 of a share, a
    notional finer than a cent): refused as a malformed request, nothing recorded."""


class DuplicateOrder(BrokerError):
    """The client order id is already known to the broker; ``existing`` is its order."""

    def __init__(self, existing: BrokerOrder) -> None:
        super().__init__(f"client order id {existing.client_order_id} is already known")
        self.existing = existing


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerOrder:
    """An order as the broker sees it: what was asked (``side``, ``quantity`` or ``notional``,
    ``type``, ``limit_price``) and how far it has got. ``filled_notional`` is the money the
    fills moved (the sum of their amounts), ``filled_avg_price`` the quantity-weighted average
    price of the fills (``None`` before any)."""

    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Quantity | None
    notional: Money | None
    type: OrderType
    limit_price: Decimal | None
    state: OrderState
    filled_quantity: Quantity
    filled_notional: Money
    filled_avg_price: Decimal | None
    submitted_at: datetime
    updated_at: datetime
    reason: str = ""

    @classmethod
    def of(
        cls,
        order: Order,
        *,
        broker_order_id: BrokerOrderId,
        state: OrderState,
        submitted_at: datetime,
        updated_at: datetime,
        filled_quantity: Quantity = NO_SHARES,
        filled_notional: Money = NO_MONEY,
        filled_avg_price: Decimal | None = None,
        reason: str = "",
    ) -> BrokerOrder:
        """``order`` as a broker holds it: what it asked, and how far it has got."""
        return cls(
            client_order_id=order.client_order_id, broker_order_id=broker_order_id,
            account=order.account, symbol=order.symbol, side=order.side,
            quantity=order.quantity, notional=order.notional, type=order.type,
            limit_price=order.limit_price, state=state, filled_quantity=filled_quantity,
            filled_notional=filled_notional, filled_avg_price=filled_avg_price,
            submitted_at=submitted_at, updated_at=updated_at, reason=reason,
        )  # fmt: skip


class Broker(Protocol):
    """A counterparty that takes orders and keeps accounts."""

    name: str

    def submit(self, order: Order) -> BrokerOrder:
        """Send ``order``; raises :class:`DuplicateOrder` for a known client order id,
        :class:`UnknownAccount` for an account the broker does not keep, :class:`InvalidOrder`
        for an order it cannot express and :class:`BrokerUnavailable` when the outcome is
        unknown."""
        ...

    def submit_many(self, orders: Sequence[Order]) -> Sequence[BrokerOrder | BrokerError]:
        """Send several orders (a batch's sells, say): for each, in order, what :meth:`submit`
        would return or the error it would raise (:class:`DuplicateOrder`,
        :class:`UnknownAccount`, :class:`InvalidOrder`). Raises :class:`BrokerUnavailable`
        when the outcome is unknown: then any of them may have reached the broker. An adapter
        without a batch request submits them one by one."""
        ...

    def cancel(self, client_order_id: ClientOrderId) -> BrokerOrder:
        """Ask to cancel a working order; returns the order as it then stands (an order that
        has already ended comes back unchanged). Raises :class:`UnknownOrder`."""
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

    def accounts(self) -> Sequence[AccountId]:
        """The accounts the broker keeps, by id."""
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Opening:
    """What an account brings to a broker that opens it: its cash and its shares."""

    cash: Money
    positions: Mapping[Symbol, Quantity]


@runtime_checkable
class OpensAccounts(Protocol):
    """A broker that accounts can be brought to, as a transfer-in of cash and shares (the
    simulated custodian; a real broker's accounts are opened by their owners)."""

    def open_accounts(self, openings: Mapping[AccountId, Opening]) -> frozenset[AccountId]:
        """Open each account of ``openings`` that is not open yet, once; an account already
        open is left as it is. Returns the accounts opened now."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposit:
    """Cash brought to an account at the broker: ``amount`` (positive, whole cents) under
    ``reference``, the id of the cash flow it settles, by which the broker takes it once."""

    reference: str
    account: AccountId
    amount: Money

    def __post_init__(self) -> None:
        check_cents(self.amount, f"deposit {self.reference}")
        if not self.amount > 0:
            raise ValueError(f"deposit {self.reference}: the amount must be positive")


@runtime_checkable
class TakesDeposits(Protocol):
    """A broker that cash can be transferred to on rebal's word (the simulated custodian; at a
    real custodian the owner's bank sends it, and the deposit is pending until it arrives)."""

    def deposit(self, deposits: Sequence[Deposit]) -> frozenset[str]:
        """Credit each deposit whose reference the broker has not taken before, as a transfer-in
        of cash, all at once; returns the references credited now (a reference already taken
        is left as it is: asking again after a lost answer never credits twice). Raises
        :class:`UnknownAccount`, crediting nothing, for an account the broker does not keep."""
        ...


@runtime_checkable
class ReportsHoldings(Protocol):
    """A broker that reports many accounts' settled cash and positions in one request, so that
    reconciling a book of thousands of accounts asks once rather than twice per account."""

    def holdings(
        self, accounts: Sequence[AccountId]
    ) -> Mapping[AccountId, tuple[Money, Mapping[Symbol, Quantity]]]:
        """Each account's ``(cash, positions)`` as :meth:`Broker.cash` and
        :meth:`Broker.positions` would answer them, all as of one instant; raises
        :class:`UnknownAccount` for an account the broker does not keep."""
        ...


@runtime_checkable
class SubmitsMany(Protocol):
    """A broker that takes several orders in one request (the run sends a block at a time)."""

    def submit_many(self, orders: Sequence[Order]) -> list[BrokerOrder | BrokerError]:
        """Each order received as :meth:`Broker.submit` would receive it; the answer for each,
        in order, is the order as the broker then has it or the error it met
        (:class:`DuplicateOrder` for a client id already known). A lost answer loses the whole
        request's (:class:`BrokerUnavailable`)."""
        ...


@runtime_checkable
class ReportsFills(Protocol):
    """A broker that reports the fills of many orders in one request."""

    def fills_of(
        self, accounts: Sequence[AccountId], orders: Sequence[ClientOrderId]
    ) -> Sequence[Fill]:
        """The fills of ``orders`` (orders of ``accounts``) as of now, as :meth:`Broker.fills`
        reports them."""
        ...


@runtime_checkable
class ReportsBuyingPower(Protocol):
    """A broker that reports many accounts' buying power in one request."""

    def buying_powers(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, Money]:
        """Each account's buying power as :meth:`Broker.buying_power` would answer it."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountReport:
    """One account as the broker stands at one instant: what :meth:`Broker.cash`,
    :meth:`Broker.buying_power`, :meth:`Broker.positions` and :meth:`Broker.orders` answer."""

    cash: Money
    buying_power: Money
    positions: Mapping[Symbol, Quantity]
    orders: Sequence[BrokerOrder]


@runtime_checkable
class ReportsAccounts(Protocol):
    """A broker that reports many accounts' cash, buying power, positions and orders in one
    request, so that a leg's pre-trade check asks once rather than four times per account."""

    def account_reports(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, AccountReport]:
        """Each account's report, all as of one instant; raises :class:`UnknownAccount` for an
        account the broker does not keep."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockLeg:
    """One account's order in a block order: its client order id (never sent itself) and what
    it asks, shares (a sell) or money (a buy)."""

    client_order_id: ClientOrderId
    account: AccountId
    quantity: Quantity | None = None
    notional: Money | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """What an account's order gets of its block's fill: shares, and the money they moved."""

    client_order_id: ClientOrderId
    account: AccountId
    quantity: Quantity
    amount: Money


@runtime_checkable
class TradesBlocks(Protocol):
    """A broker that trades block orders from an omnibus account and allocates their fills to
    the accounts (``rebal run --block-orders``, rebal.services.blocks)."""

    #: the broker's own account a block order is placed in
    omnibus: AccountId

    def submit_block(self, order: Order, legs: Sequence[BlockLeg]) -> BrokerOrder:
        """Receive the block ``order`` (of :attr:`omnibus`), funded, in the same request, by
        each leg's shares (a sell) or money (a buy) moved from its account to the omnibus
        account; as :meth:`Broker.submit` otherwise (:class:`DuplicateOrder` for a known
        client order id; ``rejected`` with the reason, nothing moved, when a leg's account
        lacks the shares or the buying power)."""
        ...

    def allocate(
        self, block: ClientOrderId, allocations: Sequence[Allocation]
    ) -> Sequence[Allocation]:
        """Move the ended ``block``'s fill to its legs' accounts as ``allocations`` say (their
        quantities and amounts summing to the block's fill), and what did not fill back to
        them; once: a repeated call changes nothing and returns the allocations made first.
        ``ValueError`` for allocations that do not add up to the fill."""
        ...
