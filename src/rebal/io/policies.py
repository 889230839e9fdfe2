"""The investment-policy file (policies.csv): one row per account, read and written.

Columns (only ``account`` is required; a blank cell takes the default): ``account``,
``program`` (managed | client_directed), ``trigger`` (calendar | threshold | hybrid | tiered |
manual), ``frequency`` (blank | monthly | quarterly | annual | on_day), ``day`` (YYYY-MM-DD,
for on_day), ``band_abs`` and ``band_rel`` (percentages, as in models.csv), ``cadence_days``
(whole days, default 7), ``cooldown_days`` (whole days, default 0), and ``wide_band_abs`` and
``wide_band_rel`` (percentages, a tiered trigger's wide bands, no narrower than the band of the
same kind on the row). See docs/scheduler.md.

Every problem is collected and raised together as one :class:`~rebal.errors.InputError`
naming the file, line and column, like the book's four tables; nothing is returned half read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from rebal.domain.ids import AccountId
from rebal.domain.policy import (
    DEFAULT_CADENCE_DAYS,
    Frequency,
    InvestmentPolicy,
    Program,
    TriggerKind,
)
from rebal.errors import InputError, Problem
from rebal.io.atomic import write_text_atomic
from rebal.io.csvfiles import _read
from rebal.io.sheet import BoolArray, Sheet, mask
from rebal.io.tables import Schema, _open

POLICIES = Schema(
    ("account",),
    (
        "program",
        "trigger",
        "frequency",
        "day",
        "band_abs",
        "band_rel",
        "cadence_days",
        "cooldown_days",
        "wide_band_abs",
        "wide_band_rel",
    ),
)
_FREQUENCIES = tuple(f.value for f in Frequency if f is not Frequency.PROGRAM)


def _wide_band(sheet: Sheet, kind: str, band: pd.Series, tiered: BoolArray) -> pd.Series:
    """The column ``wide_band_KIND`` as fractions: given only on a tiered trigger's row, and no
    narrower than the row's band of the same kind (``band``)."""
    column = f"wide_band_{kind}"
    _, wide = sheet.percent(column, required=False, noun=column)
    given = mask(wide.notna())
    sheet.flag(given & ~tiered, column, lambda v: f"{column} {v!r} belongs to a tiered trigger")
    narrower = np.array(
        [w is not None and b is not None and w < b for w, b in zip(wide, band, strict=True)],
        dtype=bool,
    )
    sheet.flag(narrower, column, lambda v: f"{column} {v!r} is narrower than band_{kind}")
    return wide


def read_policies(path: Path, known: Collection[str] | None = None) -> list[InvestmentPolicy]:
    """The policies of ``path``, in file order; :class:`InputError` listing every problem. With
    ``known`` (the book's account ids), a policy of any other account is a problem."""
    problems: list[Problem] = []
    sheet = _open(_read(Path(path), problems), POLICIES, problems)
    if sheet is None:
        raise InputError(problems)
    account = sheet.required("account", "account id")
    program = sheet.choice("program", [p.value for p in Program], Program.MANAGED, "program")
    trigger = sheet.choice(
        "trigger", [t.value for t in TriggerKind], TriggerKind.CALENDAR, "trigger"
    )
    frequency = sheet.choice("frequency", _FREQUENCIES, "", "frequency")
    day = sheet.dates("day")
    _, band_abs = sheet.percent("band_abs", required=False, noun="band_abs")
    _, band_rel = sheet.percent("band_rel", required=False, noun="band_rel")
    cadence, cadence_given = sheet.minor_units(
        "cadence_days", 0, required=False, floor="positive", noun="cadence_days"
    )
    cooldown, _ = sheet.minor_units(
        "cooldown_days", 0, required=False, floor="nonnegative", noun="cooldown_days"
    )
    tiered = mask(trigger == TriggerKind.TIERED.value)
    wide_abs = _wide_band(sheet, "abs", band_abs, tiered)
    wide_rel = _wide_band(sheet, "rel", band_rel, tiered)
    on_day = mask(frequency == Frequency.ON_DAY.value)
    has_day = mask(sheet.text("day") != "")
    sheet.flag(on_day & ~has_day, "day", lambda _: "missing day (frequency on_day needs one)")
    sheet.flag(~on_day & has_day, "day", lambda v: f"day {v!r} is given only with on_day")
    timed = mask(trigger.isin([TriggerKind.CALENDAR.value, TriggerKind.HYBRID.value]))
    sheet.flag(
        mask(frequency != "") & ~timed,
        "frequency",
        lambda v: f"frequency {v!r} belongs to a calendar or hybrid trigger",
    )
    first: dict[str, int] = {}
    for position, name in enumerate(account.tolist()):
        if name and name in first:
            sheet.report(
                position,
                "account",
                f"duplicate account {name!r} (first on line {int(sheet.lines[first[name]])})",
            )
        first.setdefault(name, position)
        if known is not None and name and name not in known:
            sheet.report(position, "account", f"unknown account {name!r} (not in the book)")
    if problems:
        raise InputError(problems)
    cadence_days = np.where(cadence_given, cadence, DEFAULT_CADENCE_DAYS)
    return [
        InvestmentPolicy(
            account=AccountId(str(account[i])),
            program=Program(program[i]),
            trigger=TriggerKind(trigger[i]),
            frequency=Frequency(frequency[i]),
            day=day[i],
            band_abs=band_abs[i],
            band_rel=band_rel[i],
            cadence_days=int(cadence_days[i]),
            cooldown_days=int(cooldown[i]),
            wide_band_abs=wide_abs[i],
            wide_band_rel=wide_rel[i],
        )
        for i in range(len(sheet))
    ]


def _percent(fraction: Decimal | None) -> str:
    """A band as the percentage policies.csv holds (0.2 is ``20``), every digit kept."""
    return "" if fraction is None else format(fraction.scaleb(2).normalize(), "f")


def policies_text(policies: Iterable[InvestmentPolicy]) -> str:
    """The policies as the text of a policies.csv that :func:`read_policies` reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(POLICIES.allowed)
    for p in policies:
        writer.writerow(
            [
                p.account,
                p.program.value,
                p.trigger.value,
                p.frequency.value,
                "" if p.day is None else p.day.isoformat(),
                _percent(p.band_abs),
                _percent(p.band_rel),
                p.cadence_days,
                p.cooldown_days,
                _percent(p.wide_band_abs),
                _percent(p.wide_band_rel),
            ]
        )
    return out.getvalue()


def write_policies(path: Path, policies: Sequence[InvestmentPolicy]) -> int:
    """Write ``policies`` to ``path`` atomically; returns the number of rows."""
    write_text_atomic(path, policies_text(policies))
    return len(policies)
