"""The operating job `make run` shows after the proposal: a store, a run of the whole book through
the simulated broker, reconciliation, on the embedded defaults (a SQLite file, the simulated
broker, the sample book).

The steps are the commands a user types (docs/runs.md), in this order, on a fresh SQLite file
``rebal-demo.db`` in the working directory (deleted and recreated each time):

1. ``rebal db init``;
2. ``rebal db import --sample --as-of T``: the prices are quoted at ``T``, so a run at ``T``
   finds them fresh whatever the wall clock says;
3. ``rebal run --all --as-of T``: one rebalance run of the whole book through the simulated
   broker whose market clock starts at ``T`` (its first line is shown: the run's state and
   reason; ``rebal runs show RUN_ID`` lists its orders and events). With ``--account A``
   (repeatable) a run of each account instead, each shown in full;
4. ``rebal reconcile``: the book against the broker's ledger, and each run's allocation against
   the one intended;
5. a summary: the runs by state, their orders and fills.

``T`` is 2026-11-20 14:30 New York time: the sample book's as-of date, a regular session whose
managed run (1 h 30 before the 16:00 close, ``rebal calendar``) is at 14:30. On the sample book
the run ends ``completed_adjusted``: pre-trade compliance holds back the few accounts that would
buy what another account of their household sells the same day, possibly at a loss (WASH_SALE,
printed on stderr), the other accounts trade, their pending deposits funded at the simulated
custodian first.

It is deterministic: the same run ids, orders and fills every time (only the time each run was
queued, its first event, is the wall clock's: the store stamps it). Exit 0 only when
every step succeeded and everything reconciles; otherwise the status of the first failing step
(reconcile's 1 when anything does not reconcile).

Usage: ``python scripts/demo.py [--db FILE] [--as-of T] [--account A ...] [--book DIR]``
(``--book``: a folder with models.csv, accounts.csv, holdings.csv and prices.csv instead of the
sample book; the acceptance test runs the same steps on a small book that way).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rebal.cli.main import app

#: The run's time: the sample book's as-of date at its managed run, 14:30 New York time.
AS_OF = "2026-11-20T14:30:00-05:00"
DB_FILE = "rebal-demo.db"
TABLES = ("models", "accounts", "holdings", "prices")


def rebal(args: Sequence[str], *, quiet: bool = False) -> tuple[int, str]:
    """Run ``rebal ARGS`` in this process (the same app as the ``rebal`` script): its exit
    status and what it printed, echoed unless ``quiet``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            status = app(list(args), prog_name="rebal", standalone_mode=False)
        except SystemExit as exc:  # pragma: no cover - click exits this way on usage errors
            status = exc.code if isinstance(exc.code, int) else 1
    text = out.getvalue()
    if not quiet:
        sys.stdout.write(text)
    return (status if isinstance(status, int) else 0), text


def book_args(book: Path | None) -> list[str]:
    """The import's book: the sample, or the four files of ``book``."""
    if book is None:
        return ["--sample"]
    return [f"--{table}={book / f'{table}.csv'}" for table in TABLES]


def summary(runs_json: str) -> str:
    """The runs by state, their orders and how many filled, from ``rebal runs --format json``."""
    runs = json.loads(runs_json)["runs"]
    states = Counter(r["state"] for r in runs)
    orders = [o for r in runs for o in r["orders"]]
    filled = sum(1 for o in orders if o["state"] == "filled")
    partly = sum(1 for o in orders if o["state"] != "filled" and o["filled_quantity"])
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return (
        f"runs: {len(runs)} ({by_state}); orders: {len(orders)}, "
        f"{filled} filled, {partly} partly filled, {len(orders) - filled - partly} unfilled"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path(DB_FILE), help="the SQLite file")
    parser.add_argument("--as-of", default=AS_OF, help="the runs' time (ISO 8601, with a zone)")
    parser.add_argument(
        "--account", action="append", dest="accounts", help="an account to run (repeatable)"
    )
    parser.add_argument("--book", type=Path, help="a folder of the four CSV files")
    options = parser.parse_args(argv)
    db = options.db
    db.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + ".claims"), ignore_errors=True)
    url = ["--db", f"sqlite:///{db}"]
    at = ["--as-of", options.as_of]
    steps = [
        ["db", "init", *url],
        ["db", "import", *book_args(options.book), *at, *url],
        *(
            (["run", "--account", a, *at, *url] for a in options.accounts)
            if options.accounts
            else [["run", "--all", *at, *url]]
        ),
        ["reconcile", *url],
    ]
    for step in steps:
        print(f"\n$ rebal {' '.join(step)}", flush=True)
        whole_book = step[:2] == ["run", "--all"]
        status, text = rebal(step, quiet=whole_book)
        if whole_book:  # the run's line, not its thousands of orders
            print(text.splitlines()[0] if text else "", flush=True)
        if status:
            print(f"rebal {step[0]} exited {status}", file=sys.stderr)
            return status
    status, runs = rebal(["runs", "--format", "json", *url], quiet=True)
    if status:
        return status
    print(f"\n{summary(runs)}; everything reconciles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
