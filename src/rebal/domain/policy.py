"""An account's investment policy: when the scheduler rebalances it, and within what bands.

The policy is documented per account (seeds 000 and 001) and stored with it:

* ``program``: **managed** (rebalanced at every trading window) or **client_directed** (every
  ``cadence_days``, 7 by default, plus an instant run whenever the client asks);
* ``trigger``: **calendar** (on the program's cadence, or on ``frequency``), **threshold** (checked
  at every check window, run only when a band is breached), **hybrid** (the calendar's look, acted
  on only outside the bands), **tiered** (checked like a threshold; the run's policy decides how
  far to trade) or **manual** (never scheduled: only an instant run);
* ``frequency`` of a calendar or hybrid trigger: ``monthly``, ``quarterly``, ``annual`` (the
  first window of each month, quarter or year) or ``on_day`` (the first window on or after
  ``day``, once); none means the program's cadence;
* ``band_abs`` / ``band_rel``: the account's bands (fractions), replacing the model's;
* ``wide_band_abs`` / ``wide_band_rel`` of a tiered trigger: its wide bands (fractions, no
  narrower than the band of the same kind), replacing the tiered policy's twice the band;
* ``cooldown_days``: no scheduled run within this many days after any rebalance.

A record is checked when it is made (:meth:`InvestmentPolicy.__post_init__`), so a stored policy
is always a coherent one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from rebal.domain.ids import AccountId


class Program(StrEnum):
    """Who decides when the account is rebalanced (seed 000)."""

    MANAGED = "managed"
    CLIENT_DIRECTED = "client_directed"


class TriggerKind(StrEnum):
    """What makes the scheduler look at the account."""

    CALENDAR = "calendar"
    THRESHOLD = "threshold"
    HYBRID = "hybrid"
    TIERED = "tiered"
    MANUAL = "manual"


class Frequency(StrEnum):
    """How often a calendar (or hybrid) trigger comes due; ``PROGRAM`` is the program's cadence."""

    PROGRAM = ""
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"
    ON_DAY = "on_day"


#: The client-directed program's cadence when the policy does not set one (seed 000).
DEFAULT_CADENCE_DAYS = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class InvestmentPolicy:
    """One account's documented policy (see the module docstring)."""

    account: AccountId
    program: Program = Program.MANAGED
    trigger: TriggerKind = TriggerKind.CALENDAR
    frequency: Frequency = Frequency.PROGRAM
    day: date | None = None  # the day of an ``on_day`` frequency
    band_abs: Decimal | None = None
    band_rel: Decimal | None = None
    cadence_days: int = DEFAULT_CADENCE_DAYS
    cooldown_days: int = 0
    wide_band_abs: Decimal | None = None  # a tiered trigger's wide bands
    wide_band_rel: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.frequency is Frequency.ON_DAY) != (self.day is not None):
            raise ValueError(
                f"policy of {self.account}: a day is given with, and only with, frequency on_day"
            )
        if self.frequency is not Frequency.PROGRAM and self.trigger not in (
            TriggerKind.CALENDAR,
            TriggerKind.HYBRID,
        ):
            raise ValueError(
                f"policy of {self.account}: a frequency belongs to a calendar or hybrid trigger, "
                f"not {self.trigger}"
            )
        if self.cadence_days < 1:
            raise ValueError(f"policy of {self.account}: cadence_days must be at least 1")
        if self.cooldown_days < 0:
            raise ValueError(f"policy of {self.account}: cooldown_days must not be negative")
        for name in ("band_abs", "band_rel", "wide_band_abs", "wide_band_rel"):
            value = getattr(self, name)
            if value is not None and not Decimal(0) <= value < Decimal(10):
                raise ValueError(f"policy of {self.account}: {name} must be a fraction >= 0")
        for kind in ("abs", "rel"):
            wide, band = getattr(self, f"wide_band_{kind}"), getattr(self, f"band_{kind}")
            if wide is None:
                continue
            if self.trigger is not TriggerKind.TIERED:
                raise ValueError(
                    f"policy of {self.account}: wide_band_{kind} belongs to a tiered trigger, "
                    f"not {self.trigger}"
                )
            if band is not None and wide < band:
                raise ValueError(
                    f"policy of {self.account}: wide_band_{kind} must be no narrower than "
                    f"band_{kind}"
                )


def default_policy(account: AccountId) -> InvestmentPolicy:
    """The policy of an account that has none stored: managed, on the calendar."""
    return InvestmentPolicy(account=account)
