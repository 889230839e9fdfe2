"""Investment policies and schedule marks on the database (:mod:`rebal.ports.policies`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.repositories import SqlRepository
from rebal.domain.audit import AuditAction, Entity
from rebal.domain.ids import AccountId
from rebal.domain.policy import Frequency, InvestmentPolicy, Program, TriggerKind
from rebal.domain.run import RunState
from rebal.ports.policies import LastRun, ScheduleMark

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
                }
                for i, p in enumerate(policies, start=1)
            ],
        )
        changed = 0
        for account in dict.fromkeys([*before, *given]):
            old, new = before.get(account), given.get(account)
            if old != new:
                action = (
                    AuditAction.CREATE
                    if old is None
                    else AuditAction.DELETE
                    if new is None
                    else AuditAction.UPDATE
                )
                self._uow.record(action, Entity.POLICY, account, old, new)
                changed += 1
        return changed

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

    def last_runs(self) -> Mapping[AccountId, LastRun]:
        r, p, a = t.runs, t.proposals, t.proposal_accounts
        query = (
            sa.select(a.c.account_id, sa.func.max(p.c.as_of), sa.func.max(a.c.model_version))
            .select_from(r)
            .join(p, sa.and_(p.c.firm_id == r.c.firm_id, p.c.id == r.c.proposal_id))
            .join(a, sa.and_(a.c.firm_id == p.c.firm_id, a.c.proposal_id == p.c.id))
            .where(r.c.firm_id == self._firm, r.c.state.not_in(_NOT_RUN))
            .group_by(a.c.account_id)
        )
        return {
            AccountId(account): LastRun(at=at, model_version=version)
            for account, at, version in self._uow.connection.execute(query)
        }
