"""The simulated broker's own ledger: its tables, apart from rebal's book.

The broker is a counterparty, so it keeps its own record of what it was sent and what it did:
accounts and their cash, positions, the transfers that opened or funded them, every order
received, every fill, every request that reached it, and every fault the simulator injected.
Reconciliation compares rebal's book against this record. The tables live in their own
``MetaData``, all named ``sim_*``, with their own migration history (``sim_alembic_version``),
in the same database as the book by default.

Money and quantities are exact: stored as integers of their smallest unit (cents; 10^-9 of a
share or of a price), never as floating point, so SQLite and PostgreSQL hold the same values.
Instants are stored in UTC and read back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

#: The table recording the ledger's migration revision (rebal's book has its own).
VERSION_TABLE = "sim_alembic_version"
PREFIX = "sim_"


class Fixed(sa.types.TypeDecorator[Decimal]):
    """A decimal of at most ``places`` places, stored exactly as an integer count of units."""

    impl = sa.BigInteger
    cache_ok = True

    def __init__(self, places: int) -> None:
        super().__init__()
        self.places = places

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value).scaleb(self.places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.places} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(int(value)).scaleb(-self.places)


class Instant(sa.types.TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC (naive UTC text on SQLite, timestamptz on
    PostgreSQL) and read back aware, in UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"instant {value} has no time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExactDecimal(sa.types.TypeDecorator[Decimal]):
    """A decimal of any precision, stored as its exact text (a running sum of quantity x
    price, whose places add up: no integer or float column holds it exactly)."""

    impl = sa.String(80)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


Money = Fixed(2)
Shares = Fixed(9)
PriceType = Fixed(9)
AccountKey = sa.String(64)
SymbolKey = sa.String(32)
OrderKey = sa.String(128)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _account_ref() -> sa.Column[str]:
    return sa.Column("account", AccountKey, sa.ForeignKey("sim_accounts.account"), nullable=False)


accounts = sa.Table(
    "sim_accounts",
    metadata,
    sa.Column("account", AccountKey, primary_key=True),
    sa.Column("cash", Money, nullable=False),
    sa.Column("opened_at", Instant, nullable=False),
    sa.CheckConstraint("cash >= 0", name="cash_not_negative"),
)

positions = sa.Table(
    "sim_positions",
    metadata,
    sa.Column("account", AccountKey, sa.ForeignKey("sim_accounts.account"), primary_key=True),
    sa.Column("symbol", SymbolKey, primary_key=True),
    sa.Column("quantity", Shares, nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
)

#: What opened an account (one row for its cash, one per position brought in) and each deposit
#: since, under its reference (the cash flow it settles; NULL for an opening), taken once.
transfers = sa.Table(
    "sim_transfers",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    _account_ref(),
    sa.Column("at", Instant, nullable=False),
    sa.Column("symbol", SymbolKey, nullable=True),  # NULL: cash
    sa.Column("quantity", Shares, nullable=True),
    sa.Column("amount", Money, nullable=True),
    sa.Column("reference", OrderKey, nullable=True),
    sa.Index("ix_sim_transfers_reference", "reference", unique=True),
)

orders = sa.Table(
    "sim_orders",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("client_order_id", OrderKey, nullable=False, unique=True),
    sa.Column("broker_order_id", OrderKey, nullable=False, unique=True),
    _account_ref(),
    sa.Column("symbol", SymbolKey, nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("time_in_force", sa.String(4), nullable=False),
    sa.Column("extended_hours", sa.Boolean, nullable=False),
    sa.Column("quantity", Shares, nullable=True),
    sa.Column("notional", Money, nullable=True),
    sa.Column("limit_price", PriceType, nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("filled_quantity", Shares, nullable=False),
    sa.Column("filled_notional", Money, nullable=False),
    sa.Column("filled_value", ExactDecimal, nullable=False),  # sum of quantity x price
    # The fill plan: the parts the order fills in (comma-separated units: 10^-9 shares, or
    # cents of a notional), how many have filled, and the price a quantity buy's reservation
    # of cash is valued at.
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("parts_done", sa.Integer, nullable=False),
    sa.Column("reserve_price", PriceType, nullable=True),
    # Report faults: acknowledgement lost (reported "submitted" until a fill), fills reversed.
    sa.Column("acknowledged", sa.Boolean, nullable=False),
    sa.Column("fills_reversed", sa.Boolean, nullable=False),
    sa.Column("submitted_at", Instant, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
    sa.Column("next_event_at", Instant, nullable=True),  # NULL once the order has ended
    sa.Column("expires_at", Instant, nullable=True),  # the close of a day order's session
    sa.Index("ix_sim_orders_account_seq", "account", "seq"),
    sa.Index("ix_sim_orders_next_event_at", "next_event_at"),
)

fills = sa.Table(
    "sim_fills",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fill_id", OrderKey, nullable=False, unique=True),
    sa.Column("order_seq", sa.Integer, sa.ForeignKey("sim_orders.seq"), nullable=False),
    _account_ref(),
    sa.Column("symbol", SymbolKey, nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("quantity", Shares, nullable=False),
    sa.Column("price", PriceType, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("at", Instant, nullable=False),
    sa.Column("reports", sa.Integer, nullable=False),  # 2: reported twice (a fault)
    sa.Index("ix_sim_fills_account_seq", "account", "seq"),
    sa.Index("ix_sim_fills_order_seq", "order_seq"),
)

#: Every submit and cancel that reached the broker, with what it answered.
requests = sa.Table(
    "sim_requests",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Instant, nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("client_order_id", OrderKey, nullable=False),
    sa.Column("account", AccountKey, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Index("ix_sim_requests_client_order_id", "client_order_id"),
)

#: Every fault the simulator injected (its own knowledge, not the counterparty's record).
faults = sa.Table(
    "sim_faults",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Instant, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("subject", OrderKey, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_sim_faults_kind", "kind"),
)

#: The legs of each block order (rebal.adapters.brokers.simulated.blocks): what each account's
#: order moved to the omnibus account when the block arrived (shares for a sell, money for a
#: buy) and, once the block ended, what it was allocated (NULL until then).
block_legs = sa.Table(
    "sim_block_legs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("block", OrderKey, sa.ForeignKey("sim_orders.client_order_id"), nullable=False),
    sa.Column("client_order_id", OrderKey, nullable=False, unique=True),
    _account_ref(),
    sa.Column("quantity", Shares, nullable=True),
    sa.Column("notional", Money, nullable=True),
    sa.Column("allocated_quantity", Shares, nullable=True),
    sa.Column("allocated_amount", Money, nullable=True),
    sa.Column("allocated_at", Instant, nullable=True),
    sa.Index("ix_sim_block_legs_block", "block"),
)
