"""The store's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Rules every table keeps:

* every row belongs to a firm: ``firm_id`` leads each key, and references between tables
  include it, so a row can only ever point at a row of its own firm;
* money, quantities and prices are decimals (:mod:`rebal.adapters.storage.types`), never
  floats; instants are timezone-aware UTC;
* ``ordinal`` keeps the book's order (models and accounts in the order first stored, targets
  and holdings in the order given) so that an export gives back the files as imported;
  ``seq`` is the store's own order of insertion for append-only rows;
* constraint names follow :data:`NAMING`, so later migrations can name what they alter.

The migrations in ``migrations/versions`` create exactly these tables (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

from rebal.adapters.storage.types import MONEY, QUANTITY, Exact, UtcInstant

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

_ID = sa.String(64)
_SYMBOL = sa.String(32)
_STATE = sa.String(24)
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite counts only INTEGER keys


def _firm() -> sa.Column[str]:
    return sa.Column("firm_id", _ID, sa.ForeignKey("firms.id"), nullable=False)


def _firm_key() -> sa.Column[str]:
    return sa.Column("firm_id", _ID, sa.ForeignKey("firms.id"), primary_key=True)


def _seq() -> sa.Column[int]:
    return sa.Column("seq", _SEQ, primary_key=True, autoincrement=True)


def _one_size() -> sa.CheckConstraint:
    """An order is sized in shares or in money, never both, never neither."""
    return sa.CheckConstraint("(quantity IS NULL) <> (notional IS NULL)", name="one_size")


firms = sa.Table(
    "firms",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", UtcInstant, nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    _firm_key(),
    sa.Column("id", _ID, primary_key=True),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("retired_at", UtcInstant),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    _firm_key(),
    sa.Column("model_id", _ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at", UtcInstant, nullable=False),
    sa.ForeignKeyConstraint(["firm_id", "model_id"], ["models.firm_id", "models.id"]),
)

model_targets = sa.Table(
    "model_targets",
    metadata,
    _firm_key(),
    sa.Column("model_id", _ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("ordinal", sa.Integer, primary_key=True),
    sa.Column("symbol", _SYMBOL, nullable=False),
    sa.Column("weight", Exact, nullable=False),
    sa.Column("band_abs", Exact),
    sa.Column("band_rel", Exact),
    sa.Column("rail_abs", Exact),
    sa.Column("rail_rel", Exact),
    sa.ForeignKeyConstraint(
        ["firm_id", "model_id", "version"],
        ["model_versions.firm_id", "model_versions.model_id", "model_versions.version"],
    ),
    sa.UniqueConstraint("firm_id", "model_id", "version", "symbol"),
)

accounts = sa.Table(
    "accounts",
    metadata,
    _firm_key(),
    sa.Column("id", _ID, primary_key=True),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("model_id", _ID),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("household", _ID),
    sa.Column("can_trade", sa.Boolean, nullable=False),
    sa.Column("liquidate", sa.Boolean, nullable=False),
    sa.Column("cash", MONEY, nullable=False),
    sa.Column("closed_at", UtcInstant),
    sa.Column("updated_at", UtcInstant, nullable=False),
    sa.ForeignKeyConstraint(["firm_id", "model_id"], ["models.firm_id", "models.id"]),
)

account_restrictions = sa.Table(
    "account_restrictions",
    metadata,
    _firm_key(),
    sa.Column("account_id", _ID, primary_key=True),
    sa.Column("symbol", _SYMBOL, primary_key=True),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
)

holdings = sa.Table(
    "holdings",
    metadata,
    _firm_key(),
    sa.Column("account_id", _ID, primary_key=True),
    sa.Column("ordinal", sa.Integer, primary_key=True),
    sa.Column("symbol", _SYMBOL, nullable=False),
    sa.Column("quantity", QUANTITY, nullable=False),
    sa.Column("cost_basis", MONEY),
    sa.Column("acquired", sa.Date),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
)

prices = sa.Table(
    "prices",
    metadata,
    _seq(),
    _firm(),
    sa.Column("symbol", _SYMBOL, nullable=False),
    sa.Column("price", Exact, nullable=False),
    sa.Column("at", UtcInstant, nullable=False),
    sa.Column("until", UtcInstant),  # superseded from this instant; NULL: current
    sa.Index(None, "firm_id", "symbol", "at"),
)

cash_flows = sa.Table(
    "cash_flows",
    metadata,
    _firm_key(),
    sa.Column("id", _ID, primary_key=True),
    sa.Column("account_id", _ID, nullable=False),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("state", _STATE, nullable=False),
    sa.Column("created_at", UtcInstant, nullable=False),
    sa.Column("closed_at", UtcInstant),
    sa.Column("note", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
    sa.Index(None, "firm_id", "account_id", "state"),
)

proposals = sa.Table(
    "proposals",
    metadata,
    _firm_key(),
    sa.Column("id", _ID, primary_key=True),
    sa.Column("as_of", UtcInstant, nullable=False),
    sa.Column("created_at", UtcInstant, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Index(None, "firm_id", "digest"),
)

proposal_accounts = sa.Table(
    "proposal_accounts",
    metadata,
    _firm_key(),
    sa.Column("proposal_id", _ID, primary_key=True),
    sa.Column("ordinal", sa.Integer, primary_key=True),
    sa.Column("account_id", _ID, nullable=False),
    sa.Column("status", _STATE, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("model_id", _ID),
    sa.Column("model_version", sa.Integer),
    sa.ForeignKeyConstraint(["firm_id", "proposal_id"], ["proposals.firm_id", "proposals.id"]),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
    # an account's proposals: the last rebalance of the accounts a tick reads again
    sa.Index(None, "firm_id", "account_id"),
)

proposal_orders = sa.Table(
    "proposal_orders",
    metadata,
    _firm_key(),
    sa.Column("proposal_id", _ID, primary_key=True),
    sa.Column("ordinal", sa.Integer, primary_key=True),
    sa.Column("account_id", _ID, nullable=False),
    sa.Column("symbol", _SYMBOL, nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", QUANTITY),
    sa.Column("notional", MONEY),
    sa.ForeignKeyConstraint(["firm_id", "proposal_id"], ["proposals.firm_id", "proposals.id"]),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
    _one_size(),
)

runs = sa.Table(
    "runs",
    metadata,
    _firm_key(),
    sa.Column("id", _ID, primary_key=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("scope_name", _ID, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("state", _STATE, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("proposal_id", _ID),
    sa.Column("created_at", UtcInstant, nullable=False),
    sa.Column("updated_at", UtcInstant, nullable=False),
    sa.ForeignKeyConstraint(["firm_id", "proposal_id"], ["proposals.firm_id", "proposals.id"]),
    # the run key: starting the same run again finds this one
    sa.UniqueConstraint("firm_id", "scope", "scope_name", "as_of", "type", "model_version"),
    sa.Index(None, "firm_id", "state"),
    sa.Index(None, "firm_id", "proposal_id"),  # the run of a proposal
)

run_events = sa.Table(
    "run_events",
    metadata,
    _seq(),
    _firm(),
    sa.Column("run_id", _ID, nullable=False),
    sa.Column("at", UtcInstant, nullable=False),
    sa.Column("state", _STATE, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(["firm_id", "run_id"], ["runs.firm_id", "runs.id"]),
    sa.Index(None, "firm_id", "run_id"),
)

orders = sa.Table(
    "orders",
    metadata,
    _seq(),
    _firm(),
    sa.Column("client_order_id", _ID, nullable=False),
    sa.Column("run_id", _ID),
    sa.Column("account_id", _ID, nullable=False),
    sa.Column("symbol", _SYMBOL, nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", QUANTITY),
    sa.Column("notional", MONEY),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("limit_price", Exact),
    sa.Column("time_in_force", sa.String(8), nullable=False),
    sa.Column("extended_hours", sa.Boolean, nullable=False),
    sa.Column("state", _STATE, nullable=False),
    sa.Column("filled_quantity", QUANTITY, nullable=False),
    sa.Column("filled_notional", Exact, nullable=False),  # average price = notional / quantity
    sa.Column("broker_order_id", _ID),
    sa.Column("parent", _ID),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UtcInstant, nullable=False),
    sa.Column("submitted_at", UtcInstant),
    sa.Column("updated_at", UtcInstant, nullable=False),
    # a sell's lot instruction as canonical JSON, decimals as exact text; NULL: oldest lots first
    sa.Column("lot_instruction", sa.Text),
    sa.UniqueConstraint("firm_id", "client_order_id"),
    sa.UniqueConstraint("firm_id", "broker_order_id"),
    sa.ForeignKeyConstraint(["firm_id", "run_id"], ["runs.firm_id", "runs.id"]),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
    sa.ForeignKeyConstraint(["firm_id", "parent"], ["orders.firm_id", "orders.client_order_id"]),
    sa.Index(None, "firm_id", "run_id"),
    sa.Index(None, "firm_id", "state"),
    _one_size(),
)

fills = sa.Table(
    "fills",
    metadata,
    _seq(),
    _firm(),
    sa.Column("id", _ID, nullable=False),
    sa.Column("client_order_id", _ID, nullable=False),
    sa.Column("account_id", _ID, nullable=False),
    sa.Column("symbol", _SYMBOL, nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", QUANTITY, nullable=False),
    sa.Column("price", Exact, nullable=False),
    sa.Column("at", UtcInstant, nullable=False),
    sa.Column("recorded_at", UtcInstant, nullable=False),
    sa.UniqueConstraint("firm_id", "id"),
    sa.ForeignKeyConstraint(
        ["firm_id", "client_order_id"], ["orders.firm_id", "orders.client_order_id"]
    ),
    sa.Index(None, "firm_id", "client_order_id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    _seq(),
    _firm(),
    sa.Column("at", UtcInstant, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("entity", sa.String(16), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Index(None, "firm_id", "entity", "key"),
)

# notifications waiting to go out (rebal.ports.outbox): one row per notification and channel,
# written in the transaction of the event it reports
outbox = sa.Table(
    "outbox",
    metadata,
    _firm_key(),
    sa.Column("notification_id", _ID, primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("created_at", UtcInstant, nullable=False),
    sa.Column("account_id", _ID),
    sa.Column("run_id", _ID),
    sa.Column("payload", sa.Text, nullable=False),  # the notification's JSON payload
    sa.Column("state", _STATE, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcInstant),  # NULL: due now
    sa.Column("delivered_at", UtcInstant),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Index(None, "firm_id", "state", "next_attempt_at"),
)

# each account's investment policy (rebal.domain.policy): one row per account that has one
policies = sa.Table(
    "policies",
    metadata,
    _firm_key(),
    sa.Column("account_id", _ID, primary_key=True),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("program", sa.String(16), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("frequency", sa.String(16), nullable=False),
    sa.Column("day", sa.Date),
    sa.Column("band_abs", Exact),
    sa.Column("band_rel", Exact),
    sa.Column("cadence_days", sa.Integer, nullable=False),
    sa.Column("cooldown_days", sa.Integer, nullable=False),
    sa.Column("wide_band_abs", Exact),  # a tiered trigger's wide bands (0005_policy_tiers)
    sa.Column("wide_band_rel", Exact),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
)

# what the scheduler must remember of an account between ticks: an instant request waiting for
# the market, a scheduled run postponed (a pattern day trade) to the next session's open
schedule_marks = sa.Table(
    "schedule_marks",
    metadata,
    _firm_key(),
    sa.Column("account_id", _ID, primary_key=True),
    sa.Column("instant_requested_at", UtcInstant),
    sa.Column("postponed_until", UtcInstant),
    sa.Column("reason", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(["firm_id", "account_id"], ["accounts.firm_id", "accounts.id"]),
)

# what each sell fill realised, one row per lot it relieved (rebal.tax.realised); ``basis``
# and ``acquired`` are NULL for shares the book held without them
realised_lots = sa.Table(
    "realised_lots",
    metadata,
    _firm_key(),
    sa.Column("fill_id", _ID, primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True),
    sa.Column("account_id", _ID, nullable=False),
    sa.Column("symbol", _SYMBOL, nullable=False),
    sa.Column("sold", sa.Date, nullable=False),
    sa.Column("quantity", QUANTITY, nullable=False),
    sa.Column("proceeds", MONEY, nullable=False),
    sa.Column("basis", MONEY),
    sa.Column("acquired", sa.Date),
    sa.ForeignKeyConstraint(["firm_id", "fill_id"], ["fills.firm_id", "fills.id"]),
    sa.Index(None, "firm_id", "sold"),
)
