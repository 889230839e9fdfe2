"""The policy port: each account's investment policy, and what the scheduler remembers between
ticks, as a repository of the unit of work (``uow.policies``).

A policy is stored per account (:class:`~rebal.domain.policy.InvestmentPolicy`); an account
without one follows :func:`~rebal.domain.policy.default_policy`. A :class:`ScheduleMark` keeps an
instant request waiting for the market to open and a scheduled run postponed to the next
session's open (a pattern day trade), so the next tick, in whatever process, sees them.
:meth:`PolicyRepository.last_runs` reads, from the runs, when each account was last rebalanced
and on which model version: the clocks of the triggers (cadence, quiet period, cooldown) start
there, whoever started the run (the scheduler, ``rebal run``, an instant request).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rebal.domain.ids import AccountId
from rebal.domain.policy import InvestmentPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleMark:
    """What a tick must know of an account beyond its policy: an instant request not run yet
    (the market was closed) and a run postponed until an instant, with the reason."""

    account: AccountId
    instant_requested_at: datetime | None = None
    postponed_until: datetime | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LastRun:
    """An account's latest rebalance: the run's as-of instant and the model version it used."""

    at: datetime
    model_version: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleFacts:
    """What a scheduler tick decides on, as columns: one element per open account, in book
    order. Policy columns hold the default policy's values for an account without one; instants
    are UTC ``datetime64[s]``, ``NaT`` for none; bands are fractions, NaN where not set."""

    account: npt.NDArray[np.object_]  # the ids (str)
    can_trade: npt.NDArray[np.bool_]
    cash_pending: npt.NDArray[np.bool_]  # pending deposits and withdrawals do not sum to zero
    program: npt.NDArray[np.object_]  # Program values
    trigger: npt.NDArray[np.object_]  # TriggerKind values
    frequency: npt.NDArray[np.object_]  # Frequency values
    day: npt.NDArray[np.datetime64]  # datetime64[D]
    band_abs: npt.NDArray[np.float64]
    band_rel: npt.NDArray[np.float64]
    cadence_days: npt.NDArray[np.int32]
    cooldown_days: npt.NDArray[np.int32]
    last_run_at: npt.NDArray[np.datetime64]
    model_changed: npt.NDArray[np.bool_]  # the model has a version newer than the last run's
    instant_requested: npt.NDArray[np.bool_]
    postponed_until: npt.NDArray[np.datetime64]
    #: a tiered trigger's wide bands (fractions, NaN where not set: twice the band)
    wide_band_abs: npt.NDArray[np.float64]
    wide_band_rel: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.account)

    @property
    def marked(self) -> npt.NDArray[np.bool_]:
        """Accounts with a schedule mark (an instant request or a postponement)."""
        result: npt.NDArray[np.bool_] = self.instant_requested | ~np.isnat(self.postponed_until)
        return result


def instants(values: Sequence[Any]) -> npt.NDArray[np.datetime64]:
    """Timezone-aware datetimes (or ``None``) as UTC ``datetime64[s]`` (``NaT`` for ``None``)."""
    return np.array(
        [None if v is None else v.astimezone(UTC).replace(tzinfo=None) for v in values],
        dtype="datetime64[s]",
    )


class PolicyRepository(Protocol):
    """Investment policies and schedule marks."""

    def replace(self, policies: Sequence[InvestmentPolicy]) -> int:
        """The stored policies become exactly these (in this order; accounts not named fall back
        to the default policy); returns how many were created, changed or removed. Every
        account must be stored (:class:`~rebal.ports.storage.NotFound`)."""
        ...

    def all(self) -> Sequence[InvestmentPolicy]:
        """Every stored policy, in the order given."""
        ...

    def get(self, account: AccountId) -> InvestmentPolicy | None:
        """The account's stored policy, ``None`` when it follows the default."""
        ...

    def marks(self) -> Mapping[AccountId, ScheduleMark]:
        """Every account's mark (accounts without one are absent)."""
        ...

    def mark(self, mark: ScheduleMark) -> None:
        """Store the account's mark (an empty one removes it)."""
        ...

    def last_runs(self) -> Mapping[AccountId, LastRun]:
        """Each account's latest run that traded or may still trade (not canceled, not ended in
        error), by its as-of instant; accounts never run are absent."""
        ...

    def schedule_facts(self) -> ScheduleFacts:
        """The open accounts' tick facts in bulk (:class:`ScheduleFacts`), from one consistent
        read: policies, marks, pending cash, last runs and model versions."""
        ...
