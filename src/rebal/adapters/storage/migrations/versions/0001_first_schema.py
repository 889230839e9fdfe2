"""The store's first schema: firms, models as versions, accounts, holdings, prices with their
history, cash flows, proposals, runs and their events, orders, fills and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-12-02

A frozen snapshot: later changes are new revisions, never edits of this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rebal.adapters.storage.types import MONEY, QUANTITY, Exact, UtcInstant

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.String(64)
_SYMBOL = sa.String(32)
_STATE = sa.String(24)
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TABLES = (
    "firms",
    "models",
    "model_versions",
    "model_targets",
    "accounts",
    "account_restrictions",
    "holdings",
    "prices",
    "cash_flows",
    "proposals",
    "proposal_accounts",
    "proposal_orders",
    "runs",
    "run_events",
    "orders",
    "fills",
    "audit_log",
)


def _firm(table: str) -> list[sa.Column[str] | sa.ForeignKeyConstraint]:
    """The firm column every table leads with, and its reference to the firm."""
    return [
        sa.Column("firm_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f(f"fk_{table}_firm_id_firms")),
    ]


def _seq(table: str) -> list[sa.Column[int] | sa.PrimaryKeyConstraint]:
    return [
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f(f"pk_{table}")),
    ]


def _refers(
    table: str, columns: list[str], target: str, keys: list[str]
) -> sa.ForeignKeyConstraint:
    name = f"fk_{table}_{'_'.join(columns)}_{target}"
    return sa.ForeignKeyConstraint(columns, [f"{target}.{k}" for k in keys], name=op.f(name))


def _to_account(table: str) -> sa.ForeignKeyConstraint:
    return _refers(table, ["firm_id", "account_id"], "accounts", ["firm_id", "id"])


def _one_size(table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        "(quantity IS NULL) <> (notional IS NULL)", name=op.f(f"ck_{table}_one_size")
    )


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "firms",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", UtcInstant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firms")),
    )
    op.create_table(
        "models",
        *_firm("models"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("retired_at", UtcInstant),
        sa.PrimaryKeyConstraint("firm_id", "id", name=op.f("pk_models")),
    )
    op.create_table(
        "model_versions",
        *_firm("model_versions"),
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UtcInstant, nullable=False),
        sa.PrimaryKeyConstraint("firm_id", "model_id", "version", name=op.f("pk_model_versions")),
        _refers("model_versions", ["firm_id", "model_id"], "models", ["firm_id", "id"]),
    )
    op.create_table(
        "model_targets",
        *_firm("model_targets"),
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("symbol", _SYMBOL, nullable=False),
        sa.Column("weight", Exact, nullable=False),
        sa.Column("band_abs", Exact),
        sa.Column("band_rel", Exact),
        sa.Column("rail_abs", Exact),
        sa.Column("rail_rel", Exact),
        sa.PrimaryKeyConstraint(
            "firm_id", "model_id", "version", "ordinal", name=op.f("pk_model_targets")
        ),
        _refers(
            "model_targets",
            ["firm_id", "model_id", "version"],
            "model_versions",
            ["firm_id", "model_id", "version"],
        ),
        sa.UniqueConstraint(
            "firm_id",
            "model_id",
            "version",
            "symbol",
            name=op.f("uq_model_targets_firm_id_model_id_version_symbol"),
        ),
    )
    op.create_table(
        "accounts",
        *_firm("accounts"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("model_id", _ID),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("household", _ID),
        sa.Column("can_trade", sa.Boolean, nullable=False),
        sa.Column("liquidate", sa.Boolean, nullable=False),
        sa.Column("cash", MONEY, nullable=False),
        sa.Column("closed_at", UtcInstant),
        sa.Column("updated_at", UtcInstant, nullable=False),
        sa.PrimaryKeyConstraint("firm_id", "id", name=op.f("pk_accounts")),
        _refers("accounts", ["firm_id", "model_id"], "models", ["firm_id", "id"]),
    )
    op.create_table(
        "account_restrictions",
        *_firm("account_restrictions"),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("symbol", _SYMBOL, nullable=False),
        sa.PrimaryKeyConstraint(
            "firm_id", "account_id", "symbol", name=op.f("pk_account_restrictions")
        ),
        _to_account("account_restrictions"),
    )
    op.create_table(
        "holdings",
        *_firm("holdings"),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("symbol", _SYMBOL, nullable=False),
        sa.Column("quantity", QUANTITY, nullable=False),
        sa.Column("cost_basis", MONEY),
        sa.Column("acquired", sa.Date),
        sa.PrimaryKeyConstraint("firm_id", "account_id", "ordinal", name=op.f("pk_holdings")),
        _to_account("holdings"),
    )
    op.create_table(
        "prices",
        *_seq("prices"),
        *_firm("prices"),
        sa.Column("symbol", _SYMBOL, nullable=False),
        sa.Column("price", Exact, nullable=False),
        sa.Column("at", UtcInstant, nullable=False),
        sa.Column("until", UtcInstant),
    )
    _index("prices", "firm_id", "symbol", "at")
    op.create_table(
        "cash_flows",
        *_firm("cash_flows"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("state", _STATE, nullable=False),
        sa.Column("created_at", UtcInstant, nullable=False),
        sa.Column("closed_at", UtcInstant),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("firm_id", "id", name=op.f("pk_cash_flows")),
        _to_account("cash_flows"),
    )
    _index("cash_flows", "firm_id", "account_id", "state")
    op.create_table(
        "proposals",
        *_firm("proposals"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("as_of", UtcInstant, nullable=False),
        sa.Column("created_at", UtcInstant, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("firm_id", "id", name=op.f("pk_proposals")),
    )
    _index("proposals", "firm_id", "digest")
    op.create_table(
        "proposal_accounts",
        *_firm("proposal_accounts"),
        sa.Column("proposal_id", _ID, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("status", _STATE, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("model_id", _ID),
        sa.Column("model_version", sa.Integer),
        sa.PrimaryKeyConstraint(
            "firm_id", "proposal_id", "ordinal", name=op.f("pk_proposal_accounts")
        ),
        _refers("proposal_accounts", ["firm_id", "proposal_id"], "proposals", ["firm_id", "id"]),
        _to_account("proposal_accounts"),
    )
    op.create_table(
        "proposal_orders",
        *_firm("proposal_orders"),
        sa.Column("proposal_id", _ID, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("symbol", _SYMBOL, nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", QUANTITY),
        sa.Column("notional", MONEY),
        sa.PrimaryKeyConstraint(
            "firm_id", "proposal_id", "ordinal", name=op.f("pk_proposal_orders")
        ),
        _refers("proposal_orders", ["firm_id", "proposal_id"], "proposals", ["firm_id", "id"]),
        _to_account("proposal_orders"),
        _one_size("proposal_orders"),
    )
    op.create_table(
        "runs",
        *_firm("runs"),
        sa.Column("id", _ID, nullable=False),
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
        sa.PrimaryKeyConstraint("firm_id", "id", name=op.f("pk_runs")),
        _refers("runs", ["firm_id", "proposal_id"], "proposals", ["firm_id", "id"]),
        sa.UniqueConstraint(
            "firm_id",
            "scope",
            "scope_name",
            "as_of",
            "type",
            "model_version",
            name=op.f("uq_runs_firm_id_scope_scope_name_as_of_type_model_version"),
        ),
    )
    _index("runs", "firm_id", "state")
    op.create_table(
        "run_events",
        *_seq("run_events"),
        *_firm("run_events"),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("at", UtcInstant, nullable=False),
        sa.Column("state", _STATE, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _refers("run_events", ["firm_id", "run_id"], "runs", ["firm_id", "id"]),
    )
    _index("run_events", "firm_id", "run_id")
    op.create_table(
        "orders",
        *_seq("orders"),
        *_firm("orders"),
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
        sa.Column("filled_notional", Exact, nullable=False),
        sa.Column("broker_order_id", _ID),
        sa.Column("parent", _ID),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", UtcInstant, nullable=False),
        sa.Column("submitted_at", UtcInstant),
        sa.Column("updated_at", UtcInstant, nullable=False),
        sa.UniqueConstraint(
            "firm_id", "client_order_id", name=op.f("uq_orders_firm_id_client_order_id")
        ),
        sa.UniqueConstraint(
            "firm_id", "broker_order_id", name=op.f("uq_orders_firm_id_broker_order_id")
        ),
        _refers("orders", ["firm_id", "run_id"], "runs", ["firm_id", "id"]),
        _to_account("orders"),
        _refers("orders", ["firm_id", "parent"], "orders", ["firm_id", "client_order_id"]),
        _one_size("orders"),
    )
    _index("orders", "firm_id", "run_id")
    _index("orders", "firm_id", "state")
    op.create_table(
        "fills",
        *_seq("fills"),
        *_firm("fills"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("client_order_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("symbol", _SYMBOL, nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", QUANTITY, nullable=False),
        sa.Column("price", Exact, nullable=False),
        sa.Column("at", UtcInstant, nullable=False),
        sa.Column("recorded_at", UtcInstant, nullable=False),
        sa.UniqueConstraint("firm_id", "id", name=op.f("uq_fills_firm_id_id")),
        _refers("fills", ["firm_id", "client_order_id"], "orders", ["firm_id", "client_order_id"]),
    )
    _index("fills", "firm_id", "client_order_id")
    op.create_table(
        "audit_log",
        *_seq("audit_log"),
        *_firm("audit_log"),
        sa.Column("at", UtcInstant, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )
    _index("audit_log", "firm_id", "entity", "key")


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
