"""A custodian's trade files behind the broker port: orders out as a block-trade CSV for upload,
fills and holdings back from the custodian's files.

Many custodians take a run's orders as one uploaded file rather than through an API. Submitting
writes each order into the block file (rewritten atomically, so an upload never sees half a
file); an order stays ``submitted`` until the custodian's fills file reports it. Reading the
fills file back gives the fills, the orders' states and, with the custodian's holdings file, the
positions and cash that reconciliation compares with rebal's book.

The port's rules hold: an order is written once per client order id (a second submit of the same
id raises :class:`DuplicateOrder` with the order already in the file); fills are keyed by their
``fill_id`` (a fill repeated in the file counts once). A written file cannot be recalled, so
:meth:`TradeFileBroker.cancel` refuses a working order: cancel it with the custodian.

Files (``docs/broker.md`` documents them):

* block file: ``client_order_id,account,symbol,side,quantity,notional,order_type,limit_price,
  time_in_force,submitted_at`` (``submitted_at``: when rebal wrote the order, UTC)
* fills file: ``client_order_id,fill_id,quantity,price,filled_at`` (``filled_at``: ISO 8601,
  with its offset)
* holdings file: ``account,symbol,quantity``; the symbol ``CASH`` gives the account's settled cash
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rebal.domain.ids import AccountId, BrokerOrderId, ClientOrderId, FillId, Symbol, symbol
from rebal.domain.money import NO_MONEY, NO_SHARES, Money, Quantity, amount_of, cents
from rebal.domain.order import Fill, Order, OrderState, OrderType, Side, TimeInForce
from rebal.io.atomic import write_text_atomic
from rebal.ports.broker import (
    BrokerError,
    BrokerOrder,
    DuplicateOrder,
    InvalidOrder,
    UnknownAccount,
    UnknownOrder,
)
from rebal.ports.clock import Clock

BLOCK_COLUMNS = (
    "client_order_id", "account", "symbol", "side", "quantity", "notional",
    "order_type", "limit_price", "time_in_force", "submitted_at",
)  # fmt: skip
FILL_COLUMNS = ("client_order_id", "fill_id", "quantity", "price", "filled_at")
HOLDING_COLUMNS = ("account", "symbol", "quantity")
CASH_SYMBOL = "CASH"


class TradeFileError(BrokerError):
    """A custodian file that cannot be read: names the file, the line and the column."""


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    cells: dict[str, str]


def _rows(path: Path, columns: tuple[str, ...]) -> list[_Row]:
    """The data rows of a CSV file whose header holds ``columns`` (extra columns are kept out)."""
    if not path.exists():
        return []
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    header = next(reader, None)
    if header is None:
        return []
    names = [h.strip().lower() for h in header]
    missing = [c for c in columns if c not in names]
    if missing:
        raise TradeFileError(f"{path}:1: missing column {', '.join(missing)}")
    rows = []
    for line, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(names):
            raise TradeFileError(f"{path}:{line}: {len(record)} cells, the header has {len(names)}")
        cells = {n: c.strip() for n, c in zip(names, record, strict=True)}
        rows.append(_Row(line, {c: cells[c] for c in columns}))
    return rows


def _number(path: Path, row: _Row, column: str, *, positive: bool = True) -> Decimal:
    text = row.cells[column]
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise TradeFileError(f"{path}:{row.line}: {column} {text!r} is not a number") from None
    if not value.is_finite() or (positive and value <= 0) or value < 0:
        raise TradeFileError(f"{path}:{row.line}: {column} {text!r} must be positive")
    return value


class TradeFileBroker:
    """The broker port over a custodian's files."""

    name = "trade-file"

    def __init__(
        self, block_file: Path, fills_file: Path, holdings_file: Path, clock: Clock
    ) -> None:
        self._block = block_file
        self._fills = fills_file
        self._holdings = holdings_file
        self._clock = clock

    # -- orders ------------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        result = self.submit_many([order])[0]
        if isinstance(result, BrokerError):
            raise result
        return result

    def submit_many(self, orders: Sequence[Order]) -> Sequence[BrokerOrder | BrokerError]:
        """Add the orders not yet in the block file to it, in one atomic rewrite."""
        written = self._written()
        results: list[BrokerOrder | BrokerError] = []
        new: list[Order] = []
        for order in orders:
            known = written.get(order.client_order_id)
            if known is not None:
                results.append(DuplicateOrder(self._state(known, self._fills_by_order())))
                continue
            if order.type is OrderType.LIMIT and order.notional is not None:
                results.append(
                    InvalidOrder(f"order {order.client_order_id}: a limit order is in shares")
                )
                continue
            order = replace(order, submitted_at=order.submitted_at or self._clock.now())
            written[order.client_order_id] = order
            new.append(order)
        if new:
            self._write(list(written.values()))
        by_order = self._fills_by_order()
        for order in new:
            results.append(self._state(order, by_order))
        return results

    def cancel(self, client_order_id: ClientOrderId) -> BrokerOrder:
        found = self.order(client_order_id)
        if found is None:
            raise UnknownOrder(f"no order {client_order_id} in {self._block}")
        if found.state.terminal:
            return found
        raise BrokerError(
            f"order {client_order_id} is in the uploaded file {self._block}: "
            "cancel it with the custodian"
        )

    def order(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        order = self._written().get(client_order_id)
        return None if order is None else self._state(order, self._fills_by_order())

    def orders(self, account: AccountId | None = None) -> Sequence[BrokerOrder]:
        by_order = self._fills_by_order()
        return [
            self._state(o, by_order)
            for o in self._written().values()
            if account is None or o.account == account
        ]

    def fills(self, account: AccountId | None = None) -> Sequence[Fill]:
        written = self._written()
        seen: dict[FillId, Fill] = {}
        for row in _rows(self._fills, FILL_COLUMNS):
            cid = ClientOrderId(row.cells["client_order_id"])
            order = written.get(cid)
            if order is None:
                raise TradeFileError(
                    f"{self._fills}:{row.line}: client_order_id {cid} is not in {self._block}"
                )
            try:
                at = datetime.fromisoformat(row.cells["filled_at"])
            except ValueError:
                at = None
            if at is None or at.tzinfo is None:
                raise TradeFileError(
                    f"{self._fills}:{row.line}: filled_at {row.cells['filled_at']!r} must be "
                    "an ISO 8601 time with its offset"
                )
            fill = Fill(
                id=FillId(row.cells["fill_id"]),
                client_order_id=cid,
                account=order.account,
                symbol=order.symbol,
                side=order.side,
                quantity=Quantity(_number(self._fills, row, "quantity")),
                price=_number(self._fills, row, "price"),
                at=at,
            )
            seen.setdefault(fill.id, fill)
        return [f for f in seen.values() if account is None or f.account == account]

    # -- accounts ----------------------------------------------------------------------------

    def accounts(self) -> Sequence[AccountId]:
        return sorted(self._held())

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        held = self._held()
        if account not in held:
            raise UnknownAccount(f"{self._holdings} holds no account {account}")
        return {s: Quantity(q) for s, q in held[account].items() if s != CASH_SYMBOL and q}

    def cash(self, account: AccountId) -> Money:
        held = self._held()
        if account not in held:
            raise UnknownAccount(f"{self._holdings} holds no account {account}")
        return cents(held[account].get(Symbol(CASH_SYMBOL), NO_MONEY))

    def buying_power(self, account: AccountId) -> Money:
        """Settled cash less the buys written and not yet filled."""
        reserved = sum(
            (
                (o.notional or NO_MONEY) - o.filled_notional
                for o in self.orders(account)
                if o.side is Side.BUY and not o.state.terminal and o.notional is not None
            ),
            NO_MONEY,
        )
        return cents(max(self.cash(account) - reserved, NO_MONEY))

    # -- files -------------------------------------------------------------------------------

    def _written(self) -> dict[ClientOrderId, Order]:
        path = self._block
        written: dict[ClientOrderId, Order] = {}
        for row in _rows(path, BLOCK_COLUMNS):
            c = row.cells
            try:
                order = Order(
                    client_order_id=ClientOrderId(c["client_order_id"]),
                    account=AccountId(c["account"]),
                    symbol=symbol(c["symbol"]),
                    side=Side(c["side"]),
                    quantity=Quantity(_number(path, row, "quantity")) if c["quantity"] else None,
                    notional=Money(_number(path, row, "notional")) if c["notional"] else None,
                    type=OrderType(c["order_type"]),
                    limit_price=_number(path, row, "limit_price") if c["limit_price"] else None,
                    time_in_force=TimeInForce(c["time_in_force"]),
                    submitted_at=datetime.fromisoformat(c["submitted_at"]),
                )
            except ValueError as exc:
                raise TradeFileError(f"{path}:{row.line}: {exc}") from None
            written[order.client_order_id] = order
        return written

    def _write(self, orders: list[Order]) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(BLOCK_COLUMNS)
        for o in orders:
            writer.writerow(
                [
                    o.client_order_id, o.account, o.symbol, o.side.value,
                    "" if o.quantity is None else format(o.quantity, "f"),
                    "" if o.notional is None else format(o.notional, "f"),
                    o.type.value,
                    "" if o.limit_price is None else format(o.limit_price, "f"),
                    o.time_in_force.value,
                    o.submitted_at.isoformat() if o.submitted_at else "",
                ]
            )  # fmt: skip
        write_text_atomic(self._block, out.getvalue())

    def _held(self) -> dict[AccountId, dict[Symbol, Decimal]]:
        held: dict[AccountId, dict[Symbol, Decimal]] = {}
        for row in _rows(self._holdings, HOLDING_COLUMNS):
            account = AccountId(row.cells["account"])
            sym = symbol(row.cells["symbol"])
            quantity = _number(self._holdings, row, "quantity", positive=False)
            slot = held.setdefault(account, {})
            if sym in slot:
                raise TradeFileError(
                    f"{self._holdings}:{row.line}: {account} {sym} is listed twice"
                )
            slot[sym] = quantity
        return held

    def _fills_by_order(self) -> dict[ClientOrderId, list[Fill]]:
        by_order: dict[ClientOrderId, list[Fill]] = {}
        for fill in self.fills():
            by_order.setdefault(fill.client_order_id, []).append(fill)
        return by_order

    def _state(self, order: Order, by_order: Mapping[ClientOrderId, list[Fill]]) -> BrokerOrder:
        """The order as far as the fills file has got it."""
        fills = by_order.get(order.client_order_id, [])
        quantity = Quantity(sum((f.quantity for f in fills), NO_SHARES))
        money = Money(sum((amount_of(f.quantity, f.price) for f in fills), NO_MONEY))
        priced = sum((f.quantity * f.price for f in fills), Decimal(0))
        if order.quantity is not None:
            done = quantity >= order.quantity
        else:
            done = money >= (order.notional or NO_MONEY) - Decimal("0.01")
        state = (
            OrderState.FILLED if fills and done
            else OrderState.PARTIALLY_FILLED if fills
            else OrderState.SUBMITTED
        )  # fmt: skip
        written = order.submitted_at or self._clock.now()
        return BrokerOrder.of(
            order, broker_order_id=BrokerOrderId(str(order.client_order_id)), state=state,
            filled_quantity=quantity, filled_notional=money,
            filled_avg_price=(priced / quantity) if quantity else None,
            submitted_at=written, updated_at=max((f.at for f in fills), default=written),
        )  # fmt: skip
