"""One scheduler tick: every account of the stored book decided, the due runs created.

A tick at ``now`` reads, in one unit of work, the book, each account's investment policy
(:mod:`rebal.domain.policy`), the scheduler's marks (an instant request waiting for the market,
a run postponed to the next open) and each account's last rebalance (from the runs, whoever
started them). A :class:`Gauge` measures the book's drift (each account's value and breach flag,
which the threshold and hybrid triggers read; :class:`rebal.gauge.StoreGauge` runs the core's
drift, an account's policy bands replacing its model's), it builds the market's window
from the calendar (:func:`rebal.services.scheduling.window_at`) and decides every account at
once with :func:`rebal.core.triggers.decide`: no Python loop per account decides anything.

Each ``run`` decision is then started through :func:`rebal.services.runs.start_run`, whose key
(account, New York date, type, model version) makes a repeated tick, or two schedulers ticking
at once, find the run the first one created instead of creating another. A dry run creates
nothing. With an ``execute`` callback each new run is first checked by pre-trade compliance
(:func:`rebal.services.compliance.check_orders`) on its order intents: a scheduled run blocked
by a pattern day trade is canceled and postponed to the next session's open (the calendar's,
9:30 ET on the NYSE), an instant run so blocked is not rescheduled, any other violation is
``blocked``; a run that passes is executed by the callback.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt

from rebal.compliance.codes import Code
from rebal.compliance.hours import RunKind
from rebal.core import triggers as tr
from rebal.domain.account import Account
from rebal.domain.ids import AccountId, RunId
from rebal.domain.policy import Frequency, InvestmentPolicy, Program, TriggerKind, default_policy
from rebal.domain.run import RunType, ScopeKind
from rebal.ports.calendar import MarketCalendar
from rebal.ports.policies import LastRun, ScheduleMark
from rebal.ports.storage import Conflict, Store
from rebal.services.runs import Planner, RunInputError, RunRequest, cancel_queued, start_run
from rebal.services.scheduling import EVERY_TRADING_DAY, window_at

_PROGRAM = {
    Program.MANAGED: tr.Program.MANAGED,
    Program.CLIENT_DIRECTED: tr.Program.CLIENT_DIRECTED,
}
_TRIGGER = {
    TriggerKind.CALENDAR: tr.Trigger.CALENDAR,
    TriggerKind.THRESHOLD: tr.Trigger.THRESHOLD,
    TriggerKind.HYBRID: tr.Trigger.HYBRID,
    TriggerKind.TIERED: tr.Trigger.TIERED,
    TriggerKind.MANUAL: tr.Trigger.MANUAL,
}
_FREQUENCY = {f: tr.Frequency[f.name] for f in Frequency}
#: The printed name of each core trigger and decision, indexed by its code.
TRIGGER_NAMES = np.array([t.name.lower() for t in sorted(tr.Trigger)], dtype=object)
DECISION_NAMES = np.array([d.name.lower() for d in sorted(tr.Decision)], dtype=object)
#: Each rule's words, indexed by :class:`rebal.core.triggers.Why`.
REASONS = np.array(
    [
        "due on its calendar",
        "a band is breached",
        "checked: inside the bands",
        "client-directed: its cadence has not passed since the last rebalance",
        "below the value threshold: in the quiet period after the last rebalance",
        "in the policy's cooldown after the last rebalance",
        "already rebalanced in this window",
        "waiting for the next trading window",
        "a deposit or withdrawal is pending",
        "its model has a new version",
        "the client asked for an instant rebalance",
        "manual policy: runs only when asked (rebal run --account ID --instant)",
        "not a check window for large accounts",
        "its calendar's next period has not begun",
        "postponed (pattern day trade) to the next session's open",
        "postponed run: the next session has opened",
        "on-day trigger: already ran on or after its day",
    ],
    dtype=object,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TickRow:
    """One account's line of a tick (the JSON keys of docs/output.md)."""

    account: AccountId
    trigger: str
    decision: str
    run_id: RunId | None
    next_check_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class Facts:
    """What a tick reads of the store: the open accounts in book order and, per account, its
    policy, its mark and its last run; the latest model versions."""

    accounts: Sequence[Account]
    policies: Mapping[AccountId, InvestmentPolicy]
    marks: Mapping[AccountId, ScheduleMark]
    last_runs: Mapping[AccountId, LastRun]
    versions: Mapping[str, int]


def read_facts(store: Store, *, actor: str) -> Facts:
    """Everything a tick decides on, read in one unit of work (a consistent view)."""
    with store.unit_of_work(actor=actor, reason="scheduler tick: read the book") as uow:
        return Facts(
            accounts=uow.accounts.list(),
            policies={p.account: p for p in uow.policies.all()},
            marks=uow.policies.marks(),
            last_runs=uow.policies.last_runs(),
            versions={v.model: v.version for v in uow.models.current()},
        )


def _instants(values: Sequence[datetime | None]) -> npt.NDArray[np.datetime64]:
    return np.array(
        [None if v is None else v.astimezone(UTC).replace(tzinfo=None) for v in values],
        dtype="datetime64[s]",
    )


class Gauge(Protocol):
    """Measures the stored book for a tick (:class:`rebal.gauge.StoreGauge`): each account's
    value and whether a band is breached, for ``accounts`` in that order, with each one's
    policy bands (fractions; NaN: the model's)."""

    def __call__(
        self,
        store: Store,
        accounts: Sequence[AccountId],
        band_abs: npt.NDArray[np.float64],
        band_rel: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]: ...


def _fraction(value: Decimal | None) -> float:
    return np.nan if value is None else float(value)


def accounts_of(store: Store, facts: Facts, gauge: Gauge) -> tr.Accounts:
    """The core's arrays of the facts, one element per open account (the drift measured by
    ``gauge``)."""
    policies = [facts.policies.get(a.id) or default_policy(a.id) for a in facts.accounts]
    value, breached = gauge(
        store,
        [a.id for a in facts.accounts],
        np.array([_fraction(p.band_abs) for p in policies]),
        np.array([_fraction(p.band_rel) for p in policies]),
    )
    last = [facts.last_runs.get(a.id) for a in facts.accounts]
    marks = [facts.marks.get(a.id) for a in facts.accounts]
    changed = np.array(
        [
            r is not None
            and a.model is not None
            and r.model_version is not None
            and facts.versions.get(a.model, 0) > r.model_version
            for a, r in zip(facts.accounts, last, strict=True)
        ],
        dtype=bool,
    )
    accounts = tr.Accounts(
        program=np.array([_PROGRAM[p.program] for p in policies], dtype=np.int8),
        trigger=np.array([_TRIGGER[p.trigger] for p in policies], dtype=np.int8),
        last_rebalance_at=_instants([None if r is None else r.at for r in last]),
        value=value,
        breached=breached,
        cash_pending=np.array([a.pending_cash != 0 for a in facts.accounts], dtype=bool),
        model_changed=changed,
        instant=np.array([m is not None and m.instant_requested_at is not None for m in marks]),
        cadence_days=np.array([p.cadence_days for p in policies], dtype=np.int32),
        cooldown_days=np.array([p.cooldown_days for p in policies], dtype=np.int32),
        frequency=np.array([_FREQUENCY[p.frequency] for p in policies], dtype=np.int8),
        on_day=np.array([p.day for p in policies], dtype="datetime64[D]"),
        resume_at=_instants([None if m is None else m.postponed_until for m in marks]),
    )
    return accounts


@dataclass(frozen=True, slots=True)
class Blocked:
    """A run that pre-trade compliance refused: the words, and the next session's open a
    scheduled run blocked by a pattern day trade is postponed to (``None``: not postponed)."""

    reason: str
    postponed_to: datetime | None


#: Checks a new run before it is executed: ``None`` when it may go, else why not.
Check = Callable[[RunId, AccountId, datetime, RunKind], Blocked | None]
#: Executes a run that passed the checks.
Execute = Callable[[RunId], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class TickSettings:
    """How a tick runs: the firm's cadences, the check weekdays, and whether it only decides."""

    rules: tr.CadenceRules = field(default_factory=tr.CadenceRules)
    check_days: Collection[int] = EVERY_TRADING_DAY
    dry_run: bool = False
    max_price_age: timedelta = timedelta(days=1)
    config: str = "{}"


def _datetime(at: np.datetime64) -> datetime | None:
    if np.isnat(at):
        return None
    return datetime.fromtimestamp(int(at.astype("datetime64[s]").astype(np.int64)), UTC)


def tick(
    store: Store,
    calendar: MarketCalendar,
    now: datetime,
    planner: Planner,
    gauge: Gauge,
    *,
    actor: str,
    settings: TickSettings = TickSettings(),
    check: Check | None = None,
    execute: Execute | None = None,
) -> list[TickRow]:
    """Decide every open account at ``now`` and start (and, with ``execute``, check and
    execute) the due runs; one row per account, in book order."""
    facts = read_facts(store, actor=actor)
    accounts = accounts_of(store, facts, gauge)
    window = window_at(now, calendar, settings.check_days)
    decided = tr.decide(accounts, window, settings.rules)
    triggers = TRIGGER_NAMES[decided.trigger]
    decisions = DECISION_NAMES[decided.decision]
    reasons = REASONS[decided.why]
    rows = [
        TickRow(
            account=a.id,
            trigger=str(triggers[i]),
            decision=str(decisions[i]),
            run_id=None,
            next_check_at=_datetime(decided.next_check_at[i]),
            reason=str(reasons[i]),
        )
        for i, a in enumerate(facts.accounts)
    ]
    if settings.dry_run:
        return rows
    for i in np.flatnonzero(decided.decision == tr.Decision.RUN).tolist():
        account = facts.accounts[i]
        kind = RunKind.INSTANT if decided.trigger[i] == tr.Trigger.INSTANT else RunKind.SCHEDULED
        rows[i] = _start(
            store,
            planner,
            rows[i],
            account,
            now,
            kind,
            settings,
            check,
            execute,
            marked=account.id in facts.marks,
            actor=actor,
        )
    return rows


def _start(
    store: Store,
    planner: Planner,
    row: TickRow,
    account: Account,
    now: datetime,
    kind: RunKind,
    settings: TickSettings,
    check: Check | None,
    execute: Execute | None,
    *,
    marked: bool,
    actor: str,
) -> TickRow:
    """Start one due run (idempotently), then check and execute it when asked."""
    if not account.can_trade:
        return _blocked(row, f"{Code.ACCOUNT_CANNOT_TRADE}: the account cannot trade")
    request = RunRequest(
        scope=ScopeKind.ACCOUNT,
        name=account.id,
        type=RunType.REBALANCE,
        as_of=now,
        config=settings.config,
        max_price_age=settings.max_price_age,
    )
    try:
        try:
            run, new = start_run(store, request, planner, actor=actor)
        except Conflict:  # another scheduler stored this run's proposal a moment ago: find it
            run, new = start_run(store, request, planner, actor=actor)
    except RunInputError as exc:
        return _blocked(row, str(exc))
    if marked:
        clear_mark(store, account.id, actor=actor)
    started = _replace(
        row,
        run_id=run.id,
        reason=row.reason if new else f"{row.reason} (run {run.id} was started before)",
    )
    if not new or execute is None:
        return started
    refused = None if check is None else check(run.id, account.id, now, kind)
    if refused is None:
        execute(run.id)
        return started
    cancel_queued(store, run.id, actor=actor)
    if refused.postponed_to is None:
        return _blocked(started, refused.reason)
    postpone(store, account.id, refused.postponed_to, refused.reason, actor=actor)
    return _replace(
        started,
        decision="postponed",
        next_check_at=refused.postponed_to,
        reason=f"{refused.reason}; postponed to the next session's open",
    )


def _replace(row: TickRow, **changes: object) -> TickRow:
    fields = {name: getattr(row, name) for name in TickRow.__slots__} | changes
    return TickRow(**fields)


def _blocked(row: TickRow, reason: str) -> TickRow:
    return _replace(row, decision="blocked", reason=reason)


def clear_mark(store: Store, account: AccountId, *, actor: str) -> None:
    """Forget the account's instant request and postponement: its run has started."""
    with store.unit_of_work(actor=actor, reason=f"scheduler: a run of {account} started") as uow:
        uow.policies.mark(ScheduleMark(account=account))
        uow.commit()


def postpone(store: Store, account: AccountId, until: datetime, reason: str, *, actor: str) -> None:
    """Remember that the account's scheduled run waits until ``until`` (the next open)."""
    with store.unit_of_work(actor=actor, reason=f"scheduler: postpone {account}") as uow:
        uow.policies.mark(ScheduleMark(account=account, postponed_until=until, reason=reason))
        uow.commit()


def request_instant(store: Store, account: AccountId, at: datetime, *, actor: str) -> None:
    """Remember an instant request the market is closed for: the next window runs it."""
    with store.unit_of_work(actor=actor, reason=f"instant rebalance of {account} asked") as uow:
        if uow.accounts.get(account) is None:
            raise RunInputError(f"unknown account {account!r}")
        uow.policies.mark(
            ScheduleMark(
                account=account,
                instant_requested_at=at,
                reason="instant rebalance asked while the market is closed",
            )
        )
        uow.commit()
