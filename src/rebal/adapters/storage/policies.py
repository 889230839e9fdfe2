"""Investment policies and schedule marks on the database (:mod:`rebal.ports.policies`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.repositories import SqlRepository
from rebal.domain.audit import AuditAction, Entity, changed_records
from rebal.domain.cash import CashFlowState
from rebal.domain.ids import AccountId
from rebal.domain.policy import (
    DEFAULT_CADENCE_DAYS,
    Frequency,
    InvestmentPolicy,
    Program,
    TriggerKind,
)
from rebal.domain.run import RunState
from rebal.ports.policies import LastRun, ScheduleFacts, ScheduleMark

if TYPE_CHECKING:
    from rebal.adapters.storage.unit_of_work import SqlUnitOfWork

#: Runs that did not rebalance: nothing was traded, or the broker could not be reached.
_NOT_RUN = (RunState.CANCELED.value, RunState.ERROR.value)


def _policy(row: sa.Row[Any]) -> InvestmentPolicy:
    return InvestmentPolicy(
        account=AccountId(row.account_id),
        program=Program(row.program),
        trigger=TriggerKind(row.trigger),
        frequency=Frequency(row.frequency),
        day=row.day,
        band_abs=row.band_abs,
        band_rel=row.band_rel,
        cadence_days=row.cadence_days,
        cooldown_days=row.cooldown_days,
        wide_band_abs=row.wide_band_abs,
        wide_band_rel=row.wide_band_rel,
    )


class SqlPolicies(SqlRepository):
    """:class:`rebal.ports.policies.PolicyRepository` in ``policies`` and ``schedule_marks``."""

    def replace(self, policies: Sequence[InvestmentPolicy]) -> int:
        before = {p.account: p for p in self.all()}
        given = {p.account: p for p in policies}
        self._uow.execute(sa.delete(t.policies).where(t.policies.c.firm_id == self._firm))
        self._uow.insert(
            t.policies,
            [
                {
                    "firm_id": self._firm,
                    "account_id": p.account,
                    "ordinal": i,
                    "program": p.program.value,
                    "trigger": p.trigger.value,
                    "frequency": p.frequency.value,
                    "day": p.day,
                    "band_abs": p.band_abs,
                    "band_rel": p.band_rel,
                    "cadence_days": p.cadence_days,
                    "cooldown_days": p.cooldown_days,
                    "wide_band_abs": p.wide_band_abs,
                    "wide_band_rel": p.wide_band_rel,
                }
                for i, p in enumerate(policies, start=1)
            ],
        )
        changes = changed_records(before, given)
        for account, old, new in changes:
            self._uow.record(AuditAction.of(old, new), Entity.POLICY, account, old, new)
        return len(changes)

    def all(self) -> Sequence[InvestmentPolicy]:
        p = t.policies
        return [
            _policy(row)
            for row in self._rows(
                sa.select(p).where(p.c.firm_id == self._firm).order_by(p.c.ordinal)
            )
        ]

    def get(self, account: AccountId) -> InvestmentPolicy | None:
        p = t.policies
        row = self._uow.connection.execute(
            sa.select(p).where(p.c.firm_id == self._firm, p.c.account_id == account)
        ).first()
        return None if row is None else _policy(row)

    def marks(self) -> Mapping[AccountId, ScheduleMark]:
        m = t.schedule_marks
        return {
            AccountId(row.account_id): ScheduleMark(
                account=AccountId(row.account_id),
                instant_requested_at=row.instant_requested_at,
                postponed_until=row.postponed_until,
                reason=row.reason,
            )
            for row in self._rows(sa.select(m).where(m.c.firm_id == self._firm))
        }

    def mark(self, mark: ScheduleMark) -> None:
        m = t.schedule_marks
        before = self.marks().get(mark.account)
        self._uow.execute(
            sa.delete(m).where(m.c.firm_id == self._firm, m.c.account_id == mark.account)
        )
        empty = mark.instant_requested_at is None and mark.postponed_until is None
        if not empty:
            self._uow.execute(
                sa.insert(m).values(
                    firm_id=self._firm,
                    account_id=mark.account,
                    instant_requested_at=mark.instant_requested_at,
                    postponed_until=mark.postponed_until,
                    reason=mark.reason,
                )
            )
        if before != (None if empty else mark):
            self._uow.record(
                AuditAction.UPDATE, Entity.SCHEDULE, mark.account, before, None if empty else mark
            )

    def _last_runs(
        self, at: sa.ColumnElement[Any], accounts: Collection[str] | None = None
    ) -> sa.Select[Any]:
        """Per account (of ``accounts``, or all): its latest run's ``at`` (the proposal's
        as-of) and model version."""
        r, p, a = t.runs, t.proposals, t.proposal_accounts
        return (
            sa.select(a.c.account_id, sa.func.max(at), sa.func.max(a.c.model_version))
            .select_from(r)
            .join(p, sa.and_(p.c.firm_id == r.c.firm_id, p.c.id == r.c.proposal_id))
            .join(a, sa.and_(a.c.firm_id == p.c.firm_id, a.c.proposal_id == p.c.id))
            .where(
                r.c.firm_id == self._firm,
                r.c.state.not_in(_NOT_RUN),
                *among(a.c.account_id, accounts),
            )
            .group_by(a.c.account_id)
        )

    def last_runs(self) -> Mapping[AccountId, LastRun]:
        query = self._last_runs(t.proposals.c.as_of)
        return {
            AccountId(account): LastRun(at=at, model_version=version)
            for account, at, version in self._uow.connection.execute(query)
        }

    def schedule_facts(self, accounts: Collection[str] | None = None) -> ScheduleFacts:
        """The port's facts; with ``accounts``, only those of them that are open (in book
        order): what a tick's snapshot reads again of the accounts that changed."""
        a, p, m, f, v = t.accounts, t.policies, t.schedule_marks, t.cash_flows, t.model_versions
        rows = fetch_rows(
            self._uow,
            sa.select(
                a.c.id,
                a.c.can_trade,
                a.c.model_id,
                p.c.program,
                p.c.trigger,
                p.c.frequency,
                p.c.day,
                _raw(p.c.band_abs),
                _raw(p.c.band_rel),
                p.c.cadence_days,
                p.c.cooldown_days,
                _raw(m.c.instant_requested_at),
                _raw(m.c.postponed_until),
                _raw(p.c.wide_band_abs),
                _raw(p.c.wide_band_rel),
            )
            .select_from(a)
            .outerjoin(p, sa.and_(p.c.firm_id == a.c.firm_id, p.c.account_id == a.c.id))
            .outerjoin(m, sa.and_(m.c.firm_id == a.c.firm_id, m.c.account_id == a.c.id))
            .where(a.c.firm_id == self._firm, a.c.closed_at.is_(None), *among(a.c.id, accounts))
            .order_by(a.c.ordinal),
        )
        cols = list(zip(*rows, strict=True)) or [()] * 15
        ids = pd.Index(cols[0], dtype=object)
        pending = fetch_rows(
            self._uow,
            sa.select(f.c.account_id)
            .where(
                f.c.firm_id == self._firm,
                f.c.state == CashFlowState.PENDING.value,
                *among(f.c.account_id, accounts),
            )
            .group_by(f.c.account_id)
            .having(sa.func.sum(_raw(f.c.amount)) != 0),
        )
        runs = fetch_rows(self._uow, self._last_runs(_raw(t.proposals.c.as_of), accounts))
        latest = dict(
            fetch_rows(
                self._uow,
                sa.select(v.c.model_id, sa.func.max(v.c.version))
                .where(v.c.firm_id == self._firm)
                .group_by(v.c.model_id),
            )
        )
        ran = ids.get_indexer([r[0] for r in runs])
        last_at = np.full(len(ids), np.datetime64("NaT", "s"))
        last_version = np.full(len(ids), -1, dtype=np.int64)
        known = ran >= 0
        last_at[ran[known]] = _utc([r[1] for r in runs])[known]
        versions = np.array([-1 if r[2] is None else int(r[2]) for r in runs], dtype=np.int64)
        last_version[ran[known]] = versions[known]
        model_version = np.array([latest.get(model, 0) for model in cols[2]], dtype=np.int64)
        return ScheduleFacts(
            account=np.array(cols[0], dtype=object),
            can_trade=np.array(cols[1], dtype=bool),
            cash_pending=np.isin(np.array(cols[0], dtype=object), [r[0] for r in pending]),
            program=_or(cols[3], Program.MANAGED.value),
            trigger=_or(cols[4], TriggerKind.CALENDAR.value),
            frequency=_or(cols[5], Frequency.PROGRAM.value),
            day=np.array(cols[6], dtype="datetime64[D]"),
            band_abs=_floats(cols[7]),
            band_rel=_floats(cols[8]),
            cadence_days=np.array(
                [DEFAULT_CADENCE_DAYS if c is None else c for c in cols[9]], dtype=np.int32
            ),
            cooldown_days=np.array([0 if c is None else c for c in cols[10]], dtype=np.int32),
            last_run_at=last_at,
            model_changed=(last_version >= 0) & (model_version > last_version),
            instant_requested=np.array([c is not None for c in cols[11]], dtype=bool),
            postponed_until=_utc(cols[12]),
            wide_band_abs=_floats(cols[13]),
            wide_band_rel=_floats(cols[14]),
        )


def fetch_rows(uow: SqlUnitOfWork, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """Every row of ``query`` as the driver gives it (no per-value conversion: the columns are
    read raw), fetched in one call: the bulk reads of a scheduler tick."""
    text = str(
        query.compile(dialect=uow.connection.dialect, compile_kwargs={"literal_binds": True})
    )
    cursor = uow.connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(text)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def among(
    column: sa.ColumnElement[Any], keys: Collection[Any] | None
) -> list[sa.ColumnElement[bool]]:
    """The condition that ``column`` is one of ``keys`` (none when ``keys`` is ``None``: all
    rows), to spread into a ``where``."""
    return [] if keys is None else [column.in_(sorted(keys))]


def _raw(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A column as the database stores it, not through its Python type."""
    return sa.type_coerce(column, sa.types.NullType())


def _or(values: Sequence[Any], default: str) -> npt.NDArray[np.object_]:
    return np.array([default if v is None else v for v in values], dtype=object)


def _floats(values: Sequence[Any]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _utc(values: Sequence[Any]) -> npt.NDArray[np.datetime64]:
    """Stored instants (SQLite: UTC wall-time text; PostgreSQL: aware datetimes) as UTC
    ``datetime64[s]``, ``NaT`` for none."""
    if not len(values):
        return np.zeros(0, dtype="datetime64[s]")
    parsed = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
