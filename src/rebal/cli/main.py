"""The `rebal` command line."""

import typer

from rebal.cli.backtest import backtest_command
from rebal.cli.book_commands import drift_command, propose_command
from rebal.cli.broker import broker_app
from rebal.cli.broker_open import open_command
from rebal.cli.calendar import calendar_command
from rebal.cli.db import db_app
from rebal.cli.notifications import notifications_app
from rebal.cli.reconcile import reconcile_command
from rebal.cli.runs import run_command, runs_app
from rebal.cli.scheduler import scheduler_command
from rebal.cli.tax import wash_sales_command

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Portfolio rebalancing: drift, statuses, trades and backtests for a book of accounts.",
)
app.command("drift")(drift_command)
app.command("propose")(propose_command)
app.command("wash-sales")(wash_sales_command)
app.command("backtest")(backtest_command)
app.command("calendar")(calendar_command)
app.add_typer(db_app, name="db")
broker_app.command("open")(open_command)
app.add_typer(broker_app, name="broker")
app.command("reconcile")(reconcile_command)
app.command("run")(run_command)
app.add_typer(runs_app, name="runs")
app.command("scheduler")(scheduler_command)
app.add_typer(notifications_app, name="notifications")


@app.command()
def version() -> None:
    """Print the version."""
    from rebal import __version__

    typer.echo(__version__)
