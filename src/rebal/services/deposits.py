"""A run's pending deposits, funded at the broker before it trades.

A pending deposit (a positive cash flow, an account's ``pending_cash``) is money announced but
not yet at the custodian. A ``rebalance`` or ``invest_cash`` run proposes with it (the buys it
pays for are in the proposal), so before the run sends anything the deposit is brought to the
broker, when the broker takes transfers (:class:`~rebal.ports.broker.TakesDeposits`, the
simulated custodian): each deposit that was pending when the run was started (one announced
later is not in its proposal, and waits for the next run) of an account the run opens at the
broker and buys for (an account whose proposal has no buys, one that cannot be priced say, keeps
its deposit pending for a run that invests it) is sent under its cash flow's id (the broker
takes a reference once), then, in one unit of work, the flow is settled and the account's cash
in the book grows by its amount, the run getting an event naming each deposit funded. Both
ledgers record the transfer and the book's audit trail the change (the run's actor, "run R:
deposits funded at the broker").

Crash-safe: a process that ends between the two steps leaves the flows pending in the book;
the resumed run sends them again under the same references, the broker credits none twice, and
the book settles them then. A withdrawal (a negative flow) is not moved: the run raises its cash
and the payout is the custodian's, outside the run; the end check counts a flow still pending.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from rebal.domain.cash import CashFlow, CashFlowState
from rebal.domain.formatting import number_text
from rebal.domain.ids import AccountId
from rebal.domain.money import Money
from rebal.domain.order import Side
from rebal.domain.run import Run, RunType
from rebal.ports.broker import Deposit, TakesDeposits
from rebal.ports.clock import Clock
from rebal.ports.storage import Store

#: The run types whose proposal invests the accounts' pending deposits, funded before they trade.
FUNDED_RUNS: Final = frozenset({RunType.REBALANCE, RunType.INVEST_CASH})


def fund_deposits(
    store: Store,
    broker: TakesDeposits,
    run: Run,
    accounts: Sequence[AccountId],
    *,
    ask: Callable[[Callable[[], frozenset[str]]], frozenset[str]],
    clock: Clock,
    actor: str,
) -> None:
    """Fund the pending deposits of ``accounts`` (those the run opens at the broker) that its
    proposal spends (an account with proposed buys) at ``broker``, then settle them in the book
    (see the module docstring); ``ask`` makes the broker call, tried again while the broker does
    not answer. Nothing happens for a run whose type does not invest deposits
    (:data:`FUNDED_RUNS`) or whose accounts have none."""
    if run.key.type not in FUNDED_RUNS or not accounts:
        return
    with store.unit_of_work(actor=actor, reason=f"run {run.id}: read deposits") as uow:
        proposal = uow.proposals.get(run.proposal) if run.proposal else None
        buying = {o.account for o in proposal.orders if o.side is Side.BUY} if proposal else set()
        mine = set(accounts) & buying
        flows = [
            f
            for f in uow.cash_flows.pending()
            if f.account in mine and f.amount > 0 and f.created_at <= run.created_at
        ]
    if not flows:
        return
    deposits = [Deposit(reference=f.id, account=f.account, amount=f.amount) for f in flows]
    credited = ask(lambda: broker.deposit(deposits))
    why = f"run {run.id}: deposits funded at the broker"
    with store.unit_of_work(actor=actor, reason=why) as uow:
        # two runs funding one account's deposit at once settle it once: the second waits
        # here, then finds it settled
        uow.lock("settle deposits")
        settled = []
        for flow in flows:
            current = uow.cash_flows.get(flow.id)
            if current is not None and current.state is CashFlowState.PENDING:
                settled.append(uow.cash_flows.close(flow.id, CashFlowState.SETTLED))
        stored = uow.accounts.get_many(sorted({f.account for f in settled}))
        uow.accounts.save(
            [
                replace(a, cash=Money(a.cash + sum(f.amount for f in settled if f.account == a.id)))
                for a in stored.values()
            ]
        )
        if settled:
            uow.runs.note(run.id, clock.now(), _funded(settled, credited))
        uow.commit()


def _funded(settled: Sequence[CashFlow], credited: frozenset[str]) -> str:
    """The event of the deposits funded: each account, amount and cash flow, and those the
    broker had already taken (a resumed run)."""
    parts = []
    for flow in settled:
        again = "" if flow.id in credited else ", already at the broker"
        amount = number_text(flow.amount, 2, grouped=True)
        parts.append(f"{flow.account} {amount} (cash flow {flow.id}{again})")
    return (
        f"funded {len(parts)} pending deposit(s) at the broker before trading, each settled in "
        f"the book: {'; '.join(parts)}"
    )
