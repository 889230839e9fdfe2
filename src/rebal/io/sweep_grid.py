"""Read sweep specifications, the grids of policy variants: ``--sweep`` specs and grid files.

A grid is given as ``name=values`` specs whose cartesian product varies a base variant:
``band_rel=5:30:5`` (start:stop:step, stop included), ``policy=threshold,rails``
(a list), or as a CSV grid file with one variant per row and the same names as columns.
Names: ``policy``, ``band_abs``, ``band_rel``, ``rail_abs``, ``rail_rel``, ``wide_abs``,
``wide_rel`` (in percent, like every band option of the command line: ``band_rel=20`` is a 20 %
relative band), ``frequency``, ``day``, ``look`` and ``cooldown``.

Numbers are read by :func:`rebal.io.sheet.parse_float`, as in every other file. The lab
(:func:`rebal.backtest.lab.simulate_lab`) runs the variants made here.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np

from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import BAND_FIELDS
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec
from rebal.errors import InputError, Problem
from rebal.io.sheet import parse_float

SCHEDULE_FIELDS = ("frequency", "day", "look", "cooldown")
GRID_FIELDS = ("policy", *BAND_FIELDS, *SCHEDULE_FIELDS)
#: Largest grid a single call accepts.
MAX_VARIANTS = 100_000


def _number(name: str, text: str) -> float:
    value = parse_float(text)
    if value is None:
        raise ValueError(f"{name}: {text!r} is not a number")
    return value


def _values(name: str, text: str) -> list[str]:
    """Expand ``a:b:step`` (inclusive) or ``a,b,c`` into strings."""
    if ":" in text and name not in ("policy", "frequency"):
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"sweep {name}: a range is start:stop:step, received {text!r}")
        start, stop, step = (_number(name, p) for p in parts)
        if step <= 0 or stop < start:
            raise ValueError(f"sweep {name}: need start <= stop and step > 0 in {text!r}")
        count = int(np.floor((stop - start) / step + 1e-9)) + 1
        return [f"{round(start + i * step, 12):g}" for i in range(count)]
    return [v.strip() for v in text.split(",") if v.strip()]


def vary(base: Variant, settings: dict[str, str]) -> Variant:
    """Return ``base`` with the named grid settings replaced (values as text, bands in %)."""
    unknown = set(settings) - set(GRID_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown sweep parameter(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(GRID_FIELDS)}"
        )
    bands = {f: getattr(base.bands, f) for f in BAND_FIELDS}
    schedule: dict[str, str | int | None] = {
        "frequency": base.schedule.frequency,
        "day": base.schedule.day,
        "look": base.schedule.look,
        "cooldown": base.schedule.cooldown,
    }
    for name, text in settings.items():
        if name in BAND_FIELDS:
            bands[name] = None if text in ("", "none") else _number(name, text) / 100.0
        elif name == "frequency":
            schedule[name] = text
        elif name in ("day", "look", "cooldown"):
            schedule[name] = None if text in ("", "none") else int(_number(name, text))
    # A grid that sets one kind of band only means that kind alone.
    for kind, other in (("band_abs", "band_rel"), ("band_rel", "band_abs")):
        if kind in settings and other not in settings and bands[kind] is not None:
            bands[other] = None
    policy = settings.get("policy", base.policy)
    return Variant(
        policy=policy,
        bands=BandSpec(**bands),
        schedule=ScheduleSpec(
            frequency=str(schedule["frequency"]),
            day=int(schedule["day"] or 1),
            look=None if schedule["look"] is None else int(schedule["look"]),
            cooldown=int(schedule["cooldown"] or 0),
        ),
    )


def expand_grid(base: Variant, specs: list[str]) -> list[Variant]:
    """Return the cartesian product of ``name=values`` specs applied to ``base``."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or not text:
            raise ValueError(f"a sweep is name=values, received {spec!r}")
        axes.append((name.strip(), _values(name.strip(), text)))
    count = int(np.prod([len(values) for _, values in axes]))
    if count > MAX_VARIANTS:
        raise ValueError(f"the sweep has {count} variants, more than {MAX_VARIANTS}")
    names = [name for name, _ in axes]
    return [
        vary(base, dict(zip(names, combo, strict=True)))
        for combo in itertools.product(*(values for _, values in axes))
    ]


def read_grid(path: Path, base: Variant) -> list[Variant]:
    """Read a CSV grid file (one variant per row); every bad row is reported with its line."""
    problems: list[Problem] = []
    variants: list[Variant] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError([Problem(path.name, None, None, f"cannot read: {exc.strerror}")]) from exc
    for line, row in enumerate(rows, start=2):
        # An empty cell keeps the base value; "none" unsets a band.
        settings = {k.strip(): v.strip() for k, v in row.items() if k and v and v.strip()}
        try:
            variants.append(vary(base, settings))
        except (ValueError, TypeError) as exc:
            problems.append(Problem(path.name, line, None, str(exc)))
    if not variants and not problems:
        problems.append(Problem(path.name, None, None, "no variants (empty grid file)"))
    if problems:
        raise InputError(problems)
    return variants
