"""Alembic's entry for the simulated broker's ledger: runs on the connection the broker passes
in (``config.attributes["connection"]``), seeing only the ``sim_*`` tables."""

from alembic import context

from rebal.adapters.brokers.simulated.schema import migration_options

context.configure(connection=context.config.attributes["connection"], **migration_options())
with context.begin_transaction():
    context.run_migrations()
