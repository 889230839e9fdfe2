"""Kill `rebal run` with SIGKILL at random points, restart it with `rebal runs resume`, check.

Each cycle trades one batch run (`rebal run --model mK --db URL --as-of ...`, a model of a few
accounts that each sell VTI and buy BND) in a process that is killed (SIGKILL) after a random
delay; the next process resumes it (`rebal runs resume`, or `rebal run` again when the kill came
before the run was stored) and may be killed too, until one ends on its own. Then the checks,
read from the two records themselves:

* no client order id was received twice by the broker (the simulated broker's ``sim_requests``
  holds one ``submit`` per id);
* no intended order is missing: every order of the proposal has an intent in the book, and
  every intent reached the broker and ended there as it ended in the book;
* positions and cash reconcile exactly (`rebal reconcile` exits 0);
* the run ended ``completed``, and its events say it was resumed after the kills.

With ``--block-orders`` each run trades in block orders (docs/runs.md): then each block's client
order id was received once, each account's order ended as its block ended at the broker, every
ended block was allocated, and the omnibus account holds nothing after the run.

Processes are forked from one server that imported rebal once (``--serve``): importing the CLI
takes seconds on a loaded machine, the run itself well under one, so a fresh interpreter per
kill would spend nearly all its time, and nearly all its kills, before the run begins. A forked
child runs the real command line (the same `typer` app as the `rebal` script) in a process of
its own, and the kill is a real SIGKILL: nothing in the execution code knows about this script.
The kill delays come from ``random.Random(seed)`` and span the time one uninterrupted run takes
(measured first), so the kills land everywhere from the start of a run to its last order.

Usage: ``python scripts/crash_stress.py [--kills 200] [--seed 11] [--db URL] [--accounts 3]
[--block-orders]``
(default database: a SQLite file in a temporary directory; ``--db`` an empty PostgreSQL schema
or database). Prints one line per cycle and a summary; exit 1 when any check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
#: Tuesday 2026-11-24, 10:00 in New York: an ordinary session; the book is priced an hour before.
START = datetime(2026, 11, 24, 10, 0, tzinfo=ET)


# -- the book ---------------------------------------------------------------------------------


def prepare(url: str, models: int, accounts: int) -> None:
    """Create the schema at ``url`` and store a book of ``models`` 60/40 models (``m0``, ...)
    of ``accounts`` accounts each, every account all in VTI with some cash (each must sell VTI
    and buy BND), priced an hour before :data:`START`."""
    from rebal.adapters.memory.clock import SimulatedClock
    from rebal.adapters.storage.database import create_engine
    from rebal.adapters.storage.migrate import upgrade
    from rebal.adapters.storage.unit_of_work import SqlStore
    from rebal.domain.account import Account, Holding, Price, Target
    from rebal.domain.book import BookSnapshot
    from rebal.domain.ids import AccountId, ModelId, Symbol
    from rebal.domain.money import Money, Quantity
    from rebal.services.book import import_book

    targets = (
        Target(symbol=Symbol("VTI"), weight=Decimal("0.6")),
        Target(symbol=Symbol("BND"), weight=Decimal("0.4")),
    )
    book_accounts = tuple(
        Account(
            id=AccountId(f"M{m}A{a}"),
            model=ModelId(f"m{m}"),
            cash=Money(Decimal("1000.00") + a),
        )
        for m in range(models)
        for a in range(accounts)
    )
    book = BookSnapshot(
        models={ModelId(f"m{m}"): targets for m in range(models)},
        accounts=book_accounts,
        holdings=tuple(
            Holding(
                account=a.id,
                symbol=Symbol("VTI"),
                quantity=Quantity(Decimal(40 + i % 7)),
                cost_basis=Money(Decimal("8000.00")),
                acquired=START.date() - timedelta(days=400),
            )
            for i, a in enumerate(book_accounts)
        ),
        prices=(
            Price(symbol=Symbol("VTI"), price=Decimal("250.00"), at=START - timedelta(hours=1)),
            Price(symbol=Symbol("BND"), price=Decimal("72.50"), at=START - timedelta(hours=1)),
        ),
    )
    engine = create_engine(url)
    try:
        upgrade(engine)
        store = SqlStore(engine, SimulatedClock(START - timedelta(minutes=30)))
        with store.unit_of_work(actor="crash-stress", reason="import the book") as uow:
            import_book(uow, book)
            uow.commit()
    finally:
        engine.dispose()


def run_args(url: str, model: str, restart: int, blocks: bool = False) -> list[str]:
    """`rebal run` of ``model``'s accounts (in block orders with ``blocks``); ``restart`` 0 for
    the first start, then later."""
    mode = ["--block-orders"] if blocks else []
    return ["run", "--model", model, "--policy", "full", *mode, *_common(url, restart)]


def resume_args(url: str, restart: int) -> list[str]:
    """`rebal runs resume` (every run left queued or in progress), ``restart`` minutes on."""
    return ["runs", "resume", *_common(url, restart)]


def _common(url: str, restart: int) -> list[str]:
    # a restart comes later on the market's clock, as it would in life
    return ["--as-of", (START + timedelta(minutes=restart)).isoformat(), "--db", url]


# -- the fork server ----------------------------------------------------------------------------


def serve(requests: TextIO, answers: TextIO) -> None:
    """Answer each request line (JSON: ``argv``, ``log``, ``kill_after`` seconds or null) by
    running the `rebal` command line in a forked child, killing it with SIGKILL after
    ``kill_after`` seconds when it is still running; answers a JSON line with its exit status
    (negative: the signal) and how long it ran."""
    import typer

    from rebal.cli.main import app

    command = typer.main.get_command(app)  # built once: typer builds it again on every call
    _warm_up(command)
    answers.write("ready\n")
    answers.flush()
    for line in requests:
        request = json.loads(line)
        began = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: the `rebal` command, its output to the log
            code = 70
            try:
                fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                command.main(args=request["argv"], prog_name="rebal")
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        kill_after = request["kill_after"]
        while True:
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                break
            if kill_after is not None and time.monotonic() - began >= kill_after:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.0005)
        answers.write(
            json.dumps(
                {"status": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - began}
            )
            + "\n"
        )
        answers.flush()


def _warm_up(command: Callable[..., object]) -> None:
    """Run and reconcile once in the server itself, on a book of its own, so every child
    starts with what a first run compiles and caches (the planner's compiled kernels, the
    command line's parsers) and spends its time on the run; the connections are closed
    before anything forks."""
    with tempfile.TemporaryDirectory(prefix="crash-warm-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'warm.db'}"
        prepare(url, 1, 1)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            for argv in (run_args(url, "m0", 0), ["reconcile", "--db", url]):
                with contextlib.suppress(SystemExit):
                    command(args=argv, prog_name="rebal")


class Forker:
    """The fork server, started as a subprocess of its own (so the caller never forks)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.count = 0
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the fork server did not start")

    def run(self, argv: Sequence[str], kill_after: float | None) -> tuple[int, float, Path]:
        """Run `rebal ARGV` in a child, SIGKILLed after ``kill_after`` seconds unless it ended:
        ``(exit status, negative for a signal; seconds; its log)``."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self.count += 1
        log = self.logs / f"{self.count:04d}-{argv[0]}.log"
        request = {"argv": list(argv), "log": str(log), "kill_after": kill_after}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        answer = json.loads(self._proc.stdout.readline())
        return answer["status"], answer["seconds"], log

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)

    def __enter__(self) -> Forker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# -- a cycle and its checks ---------------------------------------------------------------------


@dataclass
class Cycle:
    """One run killed and resumed until it ended: what happened and what the checks found."""

    model: str
    run: str = ""
    kills: int = 0
    processes: int = 0
    state: str = ""
    resumed_events: int = 0
    orders: int = 0
    submits_twice: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    not_at_broker: list[str] = field(default_factory=list)
    disagreeing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return (
            self.state == "completed"
            and self.orders > 0
            and not (self.submits_twice or self.missing or self.not_at_broker or self.disagreeing)
            and (self.kills == 0 or self.resumed_events + self.processes > 1)
        )


class ProcessFailed(RuntimeError):
    """A `rebal` process ended with an error rather than by its kill."""


def stored_run(url: str, model: str) -> tuple[str, str] | None:
    """``(id, state)`` of the stored run of ``model``, ``None`` before it is stored."""
    import sqlalchemy as sa

    from rebal.adapters.storage import tables as t
    from rebal.adapters.storage.database import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(t.runs.c.id, t.runs.c.state).where(t.runs.c.scope_name == model)
            ).first()
    finally:
        engine.dispose()
    return None if row is None else (row.id, row.state)


def trade_with_kills(
    forker: Forker,
    url: str,
    model: str,
    rng: random.Random,
    window: float,
    most: int,
    blocks: bool = False,
) -> Cycle:
    """Trade ``model``'s run, killing each process after a delay drawn in ``[0, window)``
    seconds, at most ``most`` times; then check it (:func:`check`)."""
    cycle = Cycle(model)
    restart = 0
    args = run_args(url, model, restart, blocks)
    while True:
        kill_after = rng.uniform(0, window) if cycle.kills < most else None
        status, _, log = forker.run(args, kill_after)
        cycle.processes += 1
        if status == -signal.SIGKILL:
            cycle.kills += 1
        elif status == 0:
            break
        else:
            raise ProcessFailed(f"rebal {' '.join(args)} exited {status}:\n{log.read_text()}")
        restart += 1
        found = stored_run(url, model)
        args = resume_args(url, restart) if found else run_args(url, model, restart, blocks)
    return check(url, model, cycle, blocks)


def check(url: str, model: str, cycle: Cycle, blocks: bool = False) -> Cycle:
    """Fill in ``cycle``'s checks from the book and the broker's ledger (an account's order
    against its block's there, with ``blocks``)."""
    import sqlalchemy as sa

    from rebal.adapters.brokers.simulated import tables as sim
    from rebal.adapters.brokers.simulated.ledger import OMNIBUS, SimulatedLedger
    from rebal.adapters.storage.database import create_engine
    from rebal.adapters.storage.unit_of_work import SqlStore
    from rebal.clock import SystemClock
    from rebal.domain.ids import RunId
    from rebal.services.blocks import block_order_id

    engine = create_engine(url)
    try:
        found = stored_run(url, model)
        assert found is not None, f"no run of {model} was stored"
        cycle.run, cycle.state = found
        with SqlStore(engine, SystemClock()).unit_of_work(actor="check", reason="check") as uow:
            run = uow.runs.get(RunId(cycle.run))
            assert run is not None and run.proposal is not None
            proposal = uow.proposals.get(run.proposal)
            assert proposal is not None
            orders = list(uow.orders.for_run(run.id))
            events = list(uow.runs.events(run.id))
        cycle.orders = len(orders)
        cycle.resumed_events = sum(e.reason.startswith("resumed") for e in events)
        with engine.connect() as conn:
            submits = conn.execute(
                sa.select(sim.requests.c.client_order_id, sa.func.count())
                .where(sim.requests.c.operation == "submit")
                .group_by(sim.requests.c.client_order_id)
            ).all()
            at_broker = dict(
                conn.execute(sa.select(sim.orders.c.client_order_id, sim.orders.c.state)).all()
            )
            unallocated = conn.execute(
                sa.select(sim.block_legs.c.block).where(sim.block_legs.c.allocated_at.is_(None))
            ).scalars()
            left_over = [f"block {b} not allocated" for b in sorted(set(unallocated))]
        if blocks:
            cash, _, held = SimulatedLedger(engine).holdings(OMNIBUS)
            left_over += [f"the omnibus account holds {q} {s}" for s, q in held.items()]
            if cash:
                left_over.append(f"the omnibus account holds {cash} of cash")
        # where each order went: itself, or (with blocks) its block
        sent = {
            o.client_order_id: block_order_id(run.id, o.symbol, o.side)
            if blocks
            else o.client_order_id
            for o in orders
        }
        mine = {o.client_order_id for o in orders} | set(sent.values())
        cycle.submits_twice = sorted(c for c, n in submits if n > 1 and c in mine)
        intended = {(o.account, o.symbol, o.side) for o in proposal.orders}
        stored = {(o.account, o.symbol, o.side) for o in orders}
        cycle.missing = sorted(f"{a} {s} {side}" for a, s, side in intended - stored)
        cycle.not_at_broker = sorted(
            o.client_order_id for o in orders if sent[o.client_order_id] not in at_broker
        )
        cycle.disagreeing = left_over + sorted(
            f"{o.client_order_id}: book {o.state}, broker {at_broker[sent[o.client_order_id]]}"
            for o in orders
            if sent[o.client_order_id] in at_broker
            and at_broker[sent[o.client_order_id]] != o.state.value
        )
    finally:
        engine.dispose()
    return cycle


@dataclass
class Stress:
    """The cycles, the kill window, and how `rebal reconcile` ended after them all."""

    cycles: list[Cycle]
    window: float
    reconcile_exit: int
    seconds: float

    @property
    def kills(self) -> int:
        """How many processes were killed."""
        return sum(c.kills for c in self.cycles)

    @property
    def failed(self) -> list[Cycle]:
        """The cycles a check failed in."""
        return [c for c in self.cycles if not c.ok]

    @property
    def ok(self) -> bool:
        """Whether every check passed, and the whole book reconciles with the broker."""
        return not self.failed and self.reconcile_exit == 0


def stress(
    url: str,
    kills: int,
    seed: int,
    accounts: int,
    logs: Path,
    most_per_run: int = 8,
    out: TextIO | None = None,
    blocks: bool = False,
) -> Stress:
    """Cycles of :func:`trade_with_kills` on a fresh book at ``url`` until ``kills`` processes
    were killed, then `rebal reconcile` of every account; the first two cycles run
    uninterrupted and measure the kill window (the shorter of the two)."""
    models = 3 * kills + 2  # a cycle whose first kill comes after its end kills nothing
    prepare(url, models, accounts)
    rng = random.Random(seed)
    cycles: list[Cycle] = []
    with Forker(logs) as forker:
        began = time.monotonic()
        times = []
        for model in ("m0", "m1"):  # the first child of a server is the slower one
            status, seconds, log = forker.run(run_args(url, model, 0, blocks), None)
            if status != 0:
                raise ProcessFailed(f"an uninterrupted run exited {status}:\n{log.read_text()}")
            cycles.append(check(url, model, Cycle(model, processes=1), blocks))
            times.append(seconds)
        window = min(times)
        done = 0
        for m in range(2, models):
            cycle = trade_with_kills(
                forker, url, f"m{m}", rng, window, min(most_per_run, kills - done), blocks
            )
            cycles.append(cycle)
            done += cycle.kills
            if out is not None:
                print(_line(cycle), file=out, flush=True)
            if done >= kills:
                break
        reconciled, _, _ = forker.run(["reconcile", "--db", url], None)
        result = Stress(cycles, window, reconciled, time.monotonic() - began)
    if out is not None:
        print(
            f"{result.kills} kills in {len(cycles)} runs, {forker.count} processes, kill window "
            f"{window:.3f} s, rebal reconcile exit {reconciled}, {result.seconds:.1f} s",
            file=out,
        )
    return result


def _line(cycle: Cycle) -> str:
    return (
        f"{cycle.model}: {cycle.kills} kills, {cycle.processes} processes, run {cycle.run} "
        f"{cycle.state}, {cycle.orders} orders, {cycle.resumed_events} resumed events: "
        f"{'ok' if cycle.ok else 'FAILED'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--accounts", type=int, default=3, help="accounts per run")
    parser.add_argument("--db", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the cycles as JSON too")
    parser.add_argument("--block-orders", action="store_true", help="runs in block orders")
    args = parser.parse_args(argv)
    if args.serve:
        serve(sys.stdin, sys.stdout)
        return 0
    with tempfile.TemporaryDirectory(prefix="crash-stress-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'rebal.db'}"
        result = stress(
            url,
            args.kills,
            args.seed,
            args.accounts,
            Path(tmp),
            out=sys.stdout,
            blocks=args.block_orders,
        )
    if args.json:
        print(json.dumps([asdict(c) for c in result.cycles], default=str))
    print(
        f"result: {'ok' if result.ok else 'FAILED'}: {result.kills} kills, "
        f"{len(result.cycles)} runs, {len(result.failed)} failed, rebal reconcile exit "
        f"{result.reconcile_exit}"
        + "".join(f"\n  {_line(c)}: {json.dumps(asdict(c), default=str)}" for c in result.failed)
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
