"""One scheduler tick: every account of the stored book decided, the due runs created.

A tick at ``now`` reads the store through a :class:`Reader`: each account's investment policy
(:mod:`rebal.domain.policy`), the scheduler's marks (an instant request waiting for the market,
a run postponed to the next open) and each account's last rebalance (from the runs, whoever
started them), read in bulk in one unit of work, and the book's drift (each account's value and
breach flag, which the threshold and hybrid triggers read), measured by the core (an account's
policy bands replacing its model's). :class:`Fresh` reads all of it at every tick (``rebal
scheduler --once``) and measures with a :class:`Gauge` (:class:`rebal.gauge.StoreGauge`);
:class:`rebal.gauge.StoreSnapshot`, the long-running scheduler's, keeps what it read and reads
again only what changed. The tick builds the market's window from the calendar
(:func:`rebal.services.scheduling.window_at`) and decides every account at once with
:func:`rebal.core.triggers.decide`: no Python loop per account decides anything.

Each ``run`` decision is then started through :func:`rebal.services.runs.start_run`, whose key
(account, New York date, type, model version) makes a repeated tick, or two schedulers ticking
at once, find the run the first one created instead of creating another. A dry run creates
nothing. With an ``execute`` callback each new run is executed, through pre-trade compliance
(:mod:`rebal.services.execution`): a run compliance blocked (it ends ``error``, its violations
recorded as events) is ``blocked``, except a scheduled run blocked by a pattern day trade, which
is ``postponed`` to the next session's open (the calendar's, 9:30 ET on the NYSE:
:func:`rebal.compliance.hours.postponed_to`); an instant run so blocked is not rescheduled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rebal.compliance.codes import Code
from rebal.compliance.hours import RunKind, postponed_to
from rebal.core import triggers as tr
from rebal.domain.ids import AccountId, RunId
from rebal.domain.notification import Notification
from rebal.domain.policy import Frequency, Program, TriggerKind
from rebal.domain.run import Run, RunState, RunType, ScopeKind
from rebal.ports.calendar import MarketCalendar
from rebal.ports.policies import ScheduleFacts, ScheduleMark
from rebal.ports.storage import Conflict, Store
from rebal.services.compliance import recorded_violations
from rebal.services.run_notices import CHANNELS, postponed_notice
from rebal.services.runs import Planner, RunInputError, RunRequest, canonical, start_run
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
#: How far ahead the calendar is asked for the session a postponed run goes to.
_LOOKAHEAD = timedelta(days=10)
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
        "a wide band is breached",
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


def read_facts(store: Store, *, actor: str) -> ScheduleFacts:
    """Everything a tick decides on, read in bulk in one unit of work (a consistent view)."""
    with store.unit_of_work(actor=actor, reason="scheduler tick: read the book") as uow:
        return uow.policies.schedule_facts()


class Gauge(Protocol):
    """Measures the stored book for a tick (:class:`rebal.gauge.StoreGauge`): each account's
    value, whether a band is breached and whether a wide band is, for ``accounts`` in that
    order, with each one's policy bands and wide bands (fractions; NaN: the model's, and twice
    the band)."""

    def __call__(
        self,
        store: Store,
        accounts: Sequence[AccountId],
        band_abs: npt.NDArray[np.float64],
        band_rel: npt.NDArray[np.float64],
        wide_abs: npt.NDArray[np.float64],
        wide_rel: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]: ...


def _codes(values: npt.NDArray[np.object_], codes: Mapping[Any, int]) -> npt.NDArray[np.int8]:
    """Each stored value (a policy's program, trigger, frequency) as the core's code: one
    lookup per distinct value, not per account."""
    distinct, inverse = np.unique(values.astype(str), return_inverse=True)
    table = np.array([codes[type(next(iter(codes)))(v)] for v in distinct], dtype=np.int8)
    return table[inverse] if len(values) else np.zeros(0, dtype=np.int8)


def core_accounts(
    facts: ScheduleFacts,
    value: npt.NDArray[np.float64],
    breached: npt.NDArray[np.bool_],
    wide: npt.NDArray[np.bool_],
) -> tr.Accounts:
    """The core's arrays of the facts, one element per open account, with each one's measured
    ``value``, ``breached`` flag and ``wide`` (wide band breached) flag."""
    return tr.Accounts(
        program=_codes(facts.program, _PROGRAM),
        trigger=_codes(facts.trigger, _TRIGGER),
        last_rebalance_at=facts.last_run_at,
        value=value,
        breached=breached,
        cash_pending=facts.cash_pending,
        model_changed=facts.model_changed,
        instant=facts.instant_requested,
        cadence_days=facts.cadence_days,
        cooldown_days=facts.cooldown_days,
        frequency=_codes(facts.frequency, _FREQUENCY),
        on_day=facts.day,
        resume_at=facts.postponed_until,
        wide_breached=wide,
    )


@dataclass(frozen=True, slots=True)
class Reading:
    """What a tick decides on: the facts, and the core's arrays of them with the drift
    measured (element by element the same accounts, in book order)."""

    facts: ScheduleFacts
    accounts: tr.Accounts


class Reader(Protocol):
    """Reads the store for a tick: :class:`Fresh` reads everything each time;
    :class:`rebal.gauge.StoreSnapshot` (the long-running scheduler's) keeps what it read and
    reads again only what changed since."""

    def __call__(self, store: Store, *, actor: str) -> Reading: ...


@dataclass(frozen=True, slots=True)
class Fresh:
    """A :class:`Reader` that reads the facts and measures the book with ``gauge`` at every
    tick (one tick, ``rebal scheduler --once``)."""

    gauge: Gauge

    def __call__(self, store: Store, *, actor: str) -> Reading:
        facts = read_facts(store, actor=actor)
        value, breached, wide = self.gauge(
            store,
            list(facts.account),
            facts.band_abs,
            facts.band_rel,
            facts.wide_band_abs,
            facts.wide_band_rel,
        )
        return Reading(facts=facts, accounts=core_accounts(facts, value, breached, wide))


#: Executes a started run (through pre-trade compliance, :mod:`rebal.services.execution`) as a
#: run of that kind, and gives the run as it ended.
Execute = Callable[[RunId, RunKind], Run]


def _why_blocked(
    store: Store, run: Run, kind: RunKind, calendar: MarketCalendar, *, actor: str
) -> tuple[str, datetime | None] | None:
    """``None`` for a run that was not blocked; else its reason and, for a scheduled run
    blocked by a pattern day trade, the next session's open it is postponed to."""
    if run.state is not RunState.ERROR:
        return None
    with store.unit_of_work(actor=actor, reason=f"scheduler: read run {run.id}") as uow:
        codes = {v.code for v in recorded_violations(uow.runs.events(run.id))}
    if Code.PATTERN_DAY_TRADE not in codes or kind is RunKind.INSTANT:
        return run.reason, None
    at = run.updated_at
    try:
        later = postponed_to(kind, at, calendar.sessions(at.date(), at.date() + _LOOKAHEAD))
    except LookupError as exc:  # the calendar does not reach the next session
        return f"{run.reason}; not postponed: {exc}", None
    return run.reason, later


@dataclass(frozen=True, slots=True, kw_only=True)
class TickSettings:
    """How a tick runs: the firm's cadences, the check weekdays, and whether it only decides."""

    rules: tr.CadenceRules = field(default_factory=tr.CadenceRules)
    check_days: Collection[int] = EVERY_TRADING_DAY
    dry_run: bool = False
    max_price_age: timedelta = timedelta(days=1)
    config: str = "{}"
    #: the outbox channels a postponement is reported on (rebal.services.run_notices)
    channels: tuple[str, ...] = CHANNELS


def _datetime(at: np.datetime64) -> datetime | None:
    if np.isnat(at):
        return None
    return datetime.fromtimestamp(int(at.astype("datetime64[s]").astype(np.int64)), UTC)


@dataclass(frozen=True, slots=True)
class Tick:
    """A tick's outcome as columns, one element per open account in book order (the rows are
    made only when asked for: a tick over a large book prints, or sends, what it needs)."""

    account: npt.NDArray[np.object_]
    trigger: npt.NDArray[np.object_]
    decision: npt.NDArray[np.object_]
    run_id: npt.NDArray[np.object_]
    next_check_at: npt.NDArray[np.datetime64]
    reason: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.account)

    def row(self, i: int) -> TickRow:
        """The ``i``-th account's row."""
        return TickRow(
            account=AccountId(str(self.account[i])),
            trigger=str(self.trigger[i]),
            decision=str(self.decision[i]),
            run_id=self.run_id[i],
            next_check_at=_datetime(self.next_check_at[i]),
            reason=str(self.reason[i]),
        )

    def rows(self) -> list[TickRow]:
        """Every account's row, in book order."""
        return [self.row(i) for i in range(len(self))]

    def set(self, i: int, row: TickRow) -> None:
        """Replace the ``i``-th account's outcome by ``row`` (a run started, blocked, ...)."""
        self.decision[i], self.run_id[i], self.reason[i] = row.decision, row.run_id, row.reason
        self.next_check_at[i] = (
            np.datetime64("NaT", "s")
            if row.next_check_at is None
            else np.datetime64(row.next_check_at.astimezone(UTC).replace(tzinfo=None), "s")
        )


def _width(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


@dataclass(frozen=True, slots=True)
class PolicyTerms:
    """What an account's own investment policy changes in the run the scheduler starts for it:
    a tiered trigger trades the ``tiered`` policy, and bands and wide bands the policy sets
    (fractions; ``None``: not set) replace the run's, so the run trades by the bands its trigger
    was measured with."""

    tiered: bool
    band_abs: float | None
    band_rel: float | None
    wide_abs: float | None
    wide_rel: float | None

    @classmethod
    def of(cls, facts: ScheduleFacts, i: int) -> PolicyTerms | None:
        """The terms of the ``i``-th account's policy; ``None`` when it changes nothing."""
        terms = cls(
            tiered=facts.trigger[i] == TriggerKind.TIERED,
            band_abs=_width(facts.band_abs[i]),
            band_rel=_width(facts.band_rel[i]),
            wide_abs=_width(facts.wide_band_abs[i]),
            wide_rel=_width(facts.wide_band_rel[i]),
        )
        return terms if terms.tiered or terms.own_bands or terms.own_wide else None

    @property
    def own_bands(self) -> bool:
        """Whether the policy sets its own band."""
        return self.band_abs is not None or self.band_rel is not None

    @property
    def own_wide(self) -> bool:
        """Whether the policy sets its own wide band."""
        return self.wide_abs is not None or self.wide_rel is not None

    def options(self) -> dict[str, object]:
        """What the run's config records of them (as ``rebal run``'s options, in percent)."""
        out: dict[str, object] = {"policy": "tiered"} if self.tiered else {}
        names = {"band_abs": self.band_abs, "band_rel": self.band_rel}
        names |= {"wide_band_abs": self.wide_abs, "wide_band_rel": self.wide_rel}
        return out | {k: round(v * 100, 10) for k, v in names.items() if v is not None}


@runtime_checkable
class PolicyPlanner(Protocol):
    """A planner that can trade an account's own policy terms (the core's planner)."""

    def for_policy(self, terms: PolicyTerms) -> Planner:
        """This planner with ``terms`` applied."""
        ...


def tick(
    store: Store,
    calendar: MarketCalendar,
    now: datetime,
    planner: Planner,
    reader: Reader,
    *,
    actor: str,
    settings: TickSettings = TickSettings(),
    execute: Execute | None = None,
) -> Tick:
    """Decide every open account at ``now`` (as ``reader`` reads the store) and start (and,
    with ``execute``, execute) the due runs."""
    reading = reader(store, actor=actor)
    facts = reading.facts
    window = window_at(now, calendar, settings.check_days)
    decided = tr.decide(reading.accounts, window, settings.rules)
    outcome = Tick(
        account=facts.account,
        trigger=TRIGGER_NAMES[decided.trigger],
        decision=DECISION_NAMES[decided.decision],
        run_id=np.full(len(facts), None, dtype=object),
        next_check_at=decided.next_check_at.astype("datetime64[s]"),
        reason=REASONS[decided.why],
    )
    if settings.dry_run:
        return outcome
    marked = facts.marked
    for i in np.flatnonzero(decided.decision == tr.Decision.RUN).tolist():
        kind = RunKind.INSTANT if decided.trigger[i] == tr.Trigger.INSTANT else RunKind.SCHEDULED
        terms = PolicyTerms.of(facts, i)
        started = _start(
            store,
            planner.for_policy(terms) if terms and isinstance(planner, PolicyPlanner) else planner,
            outcome.row(i),
            bool(facts.can_trade[i]),
            now,
            kind,
            settings,
            execute,
            calendar,
            marked=bool(marked[i]),
            actor=actor,
            terms=terms,
        )
        outcome.set(i, started)
    return outcome


def _start(
    store: Store,
    planner: Planner,
    row: TickRow,
    can_trade: bool,
    now: datetime,
    kind: RunKind,
    settings: TickSettings,
    execute: Execute | None,
    calendar: MarketCalendar,
    *,
    marked: bool,
    actor: str,
    terms: PolicyTerms | None = None,
) -> TickRow:
    """Start one due run (idempotently), with the account's own policy ``terms`` when it has
    any, then execute it when asked."""
    account = row.account
    if not can_trade:
        return _blocked(row, f"{Code.ACCOUNT_CANNOT_TRADE}: the account cannot trade")
    config = settings.config
    if terms is not None:
        config = canonical(json.loads(config) | terms.options())
    request = RunRequest(
        scope=ScopeKind.ACCOUNT,
        name=account,
        type=RunType.REBALANCE,
        as_of=now,
        config=config,
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
        clear_mark(store, account, actor=actor)
    started = _replace(
        row,
        run_id=run.id,
        reason=row.reason if new else f"{row.reason} (run {run.id} was started before)",
    )
    if not new and run.state is RunState.ERROR:  # started before, and blocked or failed
        return _blocked(started, run.reason)
    if not new or execute is None:
        return started
    why = _why_blocked(store, execute(run.id, kind), kind, calendar, actor=actor)
    if why is None:
        return started
    reason, later = why
    if later is None:
        return _blocked(started, reason)
    alert = postponed_notice(run.id, account, now, later, reason)
    postpone(store, account, later, reason, actor=actor, alert=(alert, settings.channels))
    return _replace(
        started,
        decision="postponed",
        next_check_at=later,
        reason=f"{reason}; postponed to the next session's open",
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


def postpone(
    store: Store,
    account: AccountId,
    until: datetime,
    reason: str,
    *,
    actor: str,
    alert: tuple[Notification, Sequence[str]] | None = None,
) -> None:
    """Remember that the account's scheduled run waits until ``until`` (the next open); the
    ``alert`` for operations (and its channels) goes to the outbox in the same unit of work."""
    with store.unit_of_work(actor=actor, reason=f"scheduler: postpone {account}") as uow:
        uow.policies.mark(ScheduleMark(account=account, postponed_until=until, reason=reason))
        if alert is not None and alert[1]:
            uow.outbox.add(*alert)
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
