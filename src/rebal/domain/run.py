"""Rebalance runs: a persisted piece of work with a key, a state machine and a trail of events.

A run trades one account, a model's accounts (a batch) or the whole book, once: its
:class:`RunKey` (scope, as-of date, type, model version) is unique, so starting the same run
again finds the existing one. Its states and their legal transitions are :data:`TRANSITIONS`;
every transition is a :class:`RunEvent` with its time and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final

from rebal.domain.ids import DEFAULT_FIRM, FirmId, ProposalId, RunId


class RunType(StrEnum):
    """What a run does."""

    REBALANCE = "rebalance"  # the account's policy
    INVEST_CASH = "invest_cash"  # deposits, no sells
    RAISE_CASH = "raise_cash"  # a withdrawal: sell to raise exactly the amount
    LIQUIDATION = "liquidation"
    HARVEST = "harvest"  # tax-loss harvesting


class RunState(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    COMPLETED_ADJUSTED = "completed_adjusted"  # some orders were dropped or changed
    CANCELED = "canceled"
    CANCELED_MID_RUN = "canceled_mid_run"
    ERROR = "error"
    TIMEOUT = "timeout"

    @property
    def terminal(self) -> bool:
        """Whether the run has ended."""
        return not TRANSITIONS[self]


_R = RunState
TRANSITIONS: Final[dict[RunState, frozenset[RunState]]] = {
    _R.QUEUED: frozenset({_R.IN_PROGRESS, _R.CANCELED, _R.ERROR}),
    _R.IN_PROGRESS: frozenset(
        {_R.COMPLETED, _R.COMPLETED_ADJUSTED, _R.CANCELED_MID_RUN, _R.ERROR, _R.TIMEOUT}
    ),
    _R.COMPLETED: frozenset(),
    _R.COMPLETED_ADJUSTED: frozenset(),
    _R.CANCELED: frozenset(),
    _R.CANCELED_MID_RUN: frozenset(),
    _R.ERROR: frozenset(),
    _R.TIMEOUT: frozenset(),
}


class IllegalRunTransition(ValueError):
    """A run state change the table does not allow."""


def check_transition(run: RunId, current: RunState, new: RunState) -> None:
    """Raise :class:`IllegalRunTransition` unless ``current -> new`` is in :data:`TRANSITIONS`."""
    if new not in TRANSITIONS[current]:
        raise IllegalRunTransition(f"run {run} cannot go from {current} to {new}")


def check_start(run: Run) -> None:
    """Raise ``ValueError`` unless ``run`` is fit to be stored as a new run: queued."""
    if run.state is not RunState.QUEUED:
        raise ValueError(f"run {run.id} starts queued, not {run.state}")


class ScopeKind(StrEnum):
    """What a run covers."""

    ACCOUNT = "account"
    MODEL = "model"
    BOOK = "book"


@dataclass(frozen=True, slots=True)
class RunKey:
    """What makes a run the same run: its scope, as-of date, type and model version (0 for a
    run over the whole book, whose accounts follow several models)."""

    scope: ScopeKind
    name: str  # the account id, the model name, or "" for the book
    as_of: date
    type: RunType
    model_version: int

    def text(self) -> str:
        """The key as one string, for a unique column."""
        return "|".join(
            (self.scope, self.name, self.as_of.isoformat(), self.type, str(self.model_version))
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """A run as stored: its key, where it stands and why, and the proposal it trades."""

    id: RunId
    key: RunKey
    state: RunState
    created_at: datetime
    updated_at: datetime
    reason: str = ""
    proposal: ProposalId | None = None
    firm: FirmId = DEFAULT_FIRM


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    """One step in a run's life: the state it entered (or kept), when, and why."""

    run: RunId
    at: datetime
    state: RunState
    reason: str
