"""Generate rebal's synthetic sample book (models, accounts, holdings, prices CSVs).

The book is what `rebal propose --sample` runs on, so it has to look like a real advisory book
(about 3,000 accounts on four ETF models, drifted by the market, lots with cost bases) and
exercise every condition the engine handles (deposits, withdrawals, liquidations, restricted
symbols, accounts that cannot trade, no model, negative cash, a missing price, a tiny account).

Everything is drawn from one `numpy.random.default_rng(20261122)` stream and written with fixed
formatting, so re-running the script reproduces the shipped files byte for byte. No network.

Usage: `python scripts/make_sample_book.py [--out DIR]` (default: src/rebal/data/sample).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

SEED = 20261122
AS_OF = date(2026, 11, 20)
N_ACCOUNTS = 3000
HISTORY_START = date(2015, 1, 2)
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "rebal" / "data" / "sample"
MICRO = 1_000_000

MODELS_HEADER = ("model", "symbol", "weight", "band_abs", "band_rel", "rail_abs", "rail_rel")
ACCOUNTS_HEADER = (
    "account",
    "model",
    "cash",
    "type",
    "household",
    "can_trade",
    "restricted",
    "pending_cash",
    "liquidate",
)
HOLDINGS_HEADER = ("account", "symbol", "quantity", "cost_basis", "acquired")
PRICES_HEADER = ("symbol", "price")


@dataclass(frozen=True)
class Security:
    """A priced symbol: the snapshot price as written, and the drift/volatility of its history."""

    symbol: str
    price: str
    mu: float
    sigma: float


# A plausible 2026-11-20 snapshot (synthetic, not market data) and annual return parameters for
# the simulated history behind purchase prices. XDELX is deliberately absent: it is the
# delisted fund one account still holds, so the engine must mark that account unable_to_check.
SECURITIES = (
    Security("VTI", "334.87", 0.10, 0.17),
    Security("VXUS", "74.62", 0.06, 0.16),
    Security("VWO", "51.3850", 0.05, 0.19),
    Security("SCHD", "29.14", 0.08, 0.14),
    Security("VNQ", "92.08", 0.04, 0.20),
    Security("BND", "73.41", 0.005, 0.06),
    Security("BNDX", "49.37", 0.005, 0.045),
    Security("TIP", "110.8350", 0.01, 0.055),
    Security("SHY", "82.6425", 0.01, 0.015),
    Security("AAPL", "268.42", 0.18, 0.28),
    Security("VFIAX", "631.57", 0.10, 0.17),
)
UNPRICED_SYMBOL = "XDELX"
# Legacy non-model holdings: symbol -> (micro-shares per unit, fewest units, most units).
# AAPL is held in whole shares, the VFIAX mutual fund in thousandths of a share.
LEGACY_HOLDINGS = {"AAPL": (MICRO, 5, 200), "VFIAX": (1_000, 5_000, 200_000)}

# model -> rows of (symbol, weight in percent, band_abs override in percent or "").
MODELS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "conservative": (
        ("VTI", 20, ""),
        ("VXUS", 10, ""),
        ("BND", 40, ""),
        ("BNDX", 15, ""),
        ("TIP", 10, ""),
        ("SHY", 5, ""),
    ),
    "balanced": (
        ("VTI", 35, ""),
        ("VXUS", 20, ""),
        ("BND", 25, ""),
        ("BNDX", 10, ""),
        ("VNQ", 5, ""),
        ("TIP", 5, ""),
    ),
    "growth": (
        ("VTI", 50, ""),
        ("VXUS", 25, ""),
        ("VWO", 5, ""),
        ("VNQ", 10, "3"),
        ("BND", 10, ""),
    ),
    "income": (
        ("VTI", 15, ""),
        ("SCHD", 20, ""),
        ("BND", 35, ""),
        ("BNDX", 10, ""),
        ("TIP", 8, ""),
        ("VNQ", 10, ""),
        ("CASH", 2, ""),
    ),
}
MODEL_SHARE = {"conservative": 0.25, "balanced": 0.35, "growth": 0.28, "income": 0.12}

# How many accounts carry each special condition (disjoint sets, drawn at random).
CONDITION_COUNTS = {
    "no_model": 30,
    "deposit": 90,
    "withdrawal": 60,
    "liquidate": 15,
    "cannot_trade": 30,
    "restricted_held": 45,
    "restricted_not_held": 45,
    "negative_cash": 9,
    "legacy_holding": 20,
    "unpriced": 1,
    "tiny": 1,
}
ON_TARGET_COUNT = 150
ON_TARGET_MIN_VALUE = 500_000.0
BREACH_SHARE = 0.27
FRACTIONAL_SHARE = 0.30


@dataclass(frozen=True)
class PriceHistory:
    """Simulated daily closes on business days, ending at the snapshot price on AS_OF."""

    days: tuple[date, ...]
    closes: dict[str, np.ndarray]

    def price(self, symbol: str, day: int) -> float:
        """Close of `symbol` on business day number `day` (an index into `days`)."""
        return float(self.closes[symbol][day])


@dataclass(frozen=True)
class Lot:
    """One holdings row: quantity in micro-shares, total cost in cents, acquisition day index."""

    symbol: str
    quantity_micro: int
    cost_cents: int
    day: int


def simulate_history(rng: np.random.Generator) -> PriceHistory:
    """Walk each security's price backwards from its snapshot with geometric Brownian motion."""
    calendar = np.arange(np.datetime64(HISTORY_START), np.datetime64(AS_OF + timedelta(days=1)))
    days = tuple(d.item() for d in calendar[np.is_busday(calendar)])
    dt = 1.0 / 252.0
    closes: dict[str, np.ndarray] = {}
    for sec in SECURITIES:
        shocks = rng.standard_normal(len(days) - 1)
        steps = (sec.mu - sec.sigma**2 / 2) * dt + sec.sigma * math.sqrt(dt) * shocks
        log_now = math.log(float(sec.price))
        back = np.concatenate(([0.0], np.cumsum(steps[::-1])))[::-1]
        closes[sec.symbol] = np.exp(log_now - back)
    return PriceHistory(days, closes)


def model_targets(model: str) -> tuple[list[str], np.ndarray, float]:
    """The model's securities, their weights as fractions of the securities part, and CASH."""
    rows = [(s, w) for s, w, _ in MODELS[model] if s != "CASH"]
    cash = sum(w for s, w, _ in MODELS[model] if s == "CASH") / 100.0
    weights = np.array([w for _, w in rows], dtype=float)
    return [s for s, _ in rows], weights / weights.sum(), cash


def drifted_weights(
    rng: np.random.Generator,
    targets: np.ndarray,
    growth: np.ndarray,
    max_drift: float,
) -> np.ndarray:
    """Weights that started at `targets`, moved with the market, scaled to a given max drift.

    The market move since purchase (`growth`, price now over purchase price) plus a little
    account-specific noise gives the direction of drift; the size is then set so the largest
    relative deviation from target is exactly `max_drift` (0 keeps the account on target).
    """
    moved = targets * growth * np.exp(0.05 * rng.standard_normal(len(targets)))
    direction: np.ndarray = moved / moved.sum() - targets
    largest = float(np.max(np.abs(direction) / targets))
    if max_drift == 0.0 or largest == 0.0:
        return targets.copy()
    return targets + direction * (max_drift / largest)


def split_into_lots(
    rng: np.random.Generator,
    history: PriceHistory,
    symbol: str,
    units: int,
    unit_micro: int,
    first_day: int,
) -> list[Lot]:
    """Split a position of `units` (shares or micro-shares) into 1-3 lots bought on distinct days.

    The first lot is bought on the account's purchase day, later ones on random later days;
    each lot's cost basis is its quantity at that day's simulated close, with a little slippage.
    """
    count = min(int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1])), units)
    cuts: list[int] = []
    days = [first_day]
    if count > 1:
        cuts = sorted(1 + int(c) for c in rng.choice(units - 1, count - 1, replace=False))
        later = rng.choice(len(history.days) - 25 - first_day, count - 1, replace=False)
        days += sorted(first_day + 20 + int(d) for d in later)
    sizes = np.diff([0, *cuts, units])
    lots = []
    for size, day in zip(sizes, days, strict=True):
        quantity_micro = int(size) * unit_micro
        price = history.price(symbol, day) * (1.0 + 0.001 * rng.standard_normal())
        lots.append(Lot(symbol, quantity_micro, round(quantity_micro * price / 10_000), day))
    return lots


def position_units(value: float, price: float, fractional: bool) -> tuple[int, int]:
    """Quantity buying `value` at `price`: (units, micro-shares per unit), whole or fractional."""
    if fractional:
        return round(value / price * MICRO), 1
    return round(value / price), MICRO


def choose_conditions(
    rng: np.random.Generator, values: np.ndarray, fractional: np.ndarray
) -> tuple[dict[int, str], set[int]]:
    """Assign the special conditions to disjoint random accounts, then the on-target accounts.

    On-target accounts are taken from those whose quantities can actually sit on target:
    fractional-share accounts or accounts large enough that whole-share rounding is negligible.
    """
    order = [int(i) for i in rng.permutation(len(values))]
    condition: dict[int, str] = {}
    position = 0
    for name, count in CONDITION_COUNTS.items():
        for index in order[position : position + count]:
            condition[index] = name
        position += count
    eligible = [i for i in order[position:] if fractional[i] or values[i] >= ON_TARGET_MIN_VALUE]
    return condition, set(eligible[:ON_TARGET_COUNT])


def money(cents: int) -> str:
    """Format integer cents as a signed decimal with exactly 2 places."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def quantity(micro: int) -> str:
    """Format micro-shares as a decimal with up to 6 places, without trailing zeros."""
    whole, frac = divmod(micro, MICRO)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".")


def households(rng: np.random.Generator, count: int) -> list[str]:
    """Household ids for `count` consecutive accounts, grouping them 1-3 at a time."""
    ids: list[str] = []
    while len(ids) < count:
        size = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
        ids.extend([f"HH-{len(ids) + 1:06d}"] * size)
    return ids[:count]


def drift_and_cash(
    rng: np.random.Generator, kind: str, on_target: bool, cash_target: float
) -> tuple[float, float]:
    """The account's maximum relative drift and its cash as a share of its value."""
    if on_target:
        return 0.0, cash_target + rng.uniform(0.0, 0.0025)
    if kind == "restricted_held" or rng.random() < BREACH_SHARE:
        drift, cash_share = rng.uniform(0.3, 0.8), rng.uniform(0.0, 0.05)
    elif cash_target:
        # Inside tolerance means the CASH target too.
        drift, cash_share = rng.uniform(0.0, 0.12), cash_target + rng.uniform(-0.003, 0.003)
    else:
        drift, cash_share = rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.05)
    return drift, -rng.uniform(0.002, 0.03) if kind == "negative_cash" else cash_share


def model_lots(
    rng: np.random.Generator,
    history: PriceHistory,
    model: str,
    invested: float,
    fractional: bool,
    first_day: int,
    drift: float,
) -> tuple[list[Lot], str]:
    """Lots of the model's securities bought on `first_day` and drifted since, worth `invested`.

    Also returns the symbol that drifted furthest (relative to its target).
    """
    symbols, targets, _ = model_targets(model)
    last = len(history.days) - 1
    growth = np.array([history.price(s, last) / history.price(s, first_day) for s in symbols])
    weights = drifted_weights(rng, targets, growth, drift)
    lots: list[Lot] = []
    for symbol, weight in zip(symbols, weights, strict=True):
        price = history.price(symbol, last)
        units, unit_micro = position_units(invested * weight, price, fractional)
        if units > 0:
            lots += split_into_lots(rng, history, symbol, units, unit_micro, first_day)
    return lots, symbols[int(np.argmax(np.abs(weights - targets) / targets))]


def special_lots(
    rng: np.random.Generator, history: PriceHistory, kind: str, first_day: int
) -> list[Lot]:
    """Extra lots some conditions add: a legacy non-model holding, or the unpriced fund."""
    if kind == "legacy_holding":
        symbol = str(rng.choice(list(LEGACY_HOLDINGS)))
        unit_micro, fewest, most = LEGACY_HOLDINGS[symbol]
        units = int(rng.integers(fewest, most + 1))
        bought = int(rng.integers(0, first_day))
        return split_into_lots(rng, history, symbol, units, unit_micro, bought)
    if kind == "unpriced":
        return [Lot(UNPRICED_SYMBOL, 250 * MICRO, 412_550, first_day)]
    return []


def restriction(rng: np.random.Generator, kind: str, most_drifted: str) -> str:
    """The `restricted` cell: the out-of-band held symbol, symbols not held, or blank."""
    if kind == "restricted_held":
        return most_drifted
    if kind == "restricted_not_held":
        return ";".join(sorted(rng.choice(["AAPL", "TSLA", "XOM", "MO"], 2, replace=False)))
    return ""


def pending(rng: np.random.Generator, kind: str, total_cents: int) -> int:
    """Pending cash in cents: a deposit or a withdrawal in whole $100, smaller than the account."""
    if kind == "deposit":
        return 10_000 * max(1, round(total_cents * rng.uniform(0.01, 0.3) / 10_000))
    if kind == "withdrawal":
        return -10_000 * max(1, round(total_cents * rng.uniform(0.02, 0.6) / 10_000))
    return 0


def build_book(rng: np.random.Generator) -> dict[str, list[tuple[str, ...]]]:
    """Draw the whole book and return the rows of each CSV (header first)."""
    history = simulate_history(rng)
    last = len(history.days) - 1
    values = np.clip(rng.lognormal(math.log(120_000), 1.15, N_ACCOUNTS), 3_000, 5_000_000)
    account_models = rng.choice(list(MODELS), size=N_ACCOUNTS, p=list(MODEL_SHARE.values()))
    types = rng.choice(["taxable", "ira", "roth"], size=N_ACCOUNTS, p=[0.5, 0.35, 0.15])
    fractional = rng.random(N_ACCOUNTS) < FRACTIONAL_SHARE
    household_ids = households(rng, N_ACCOUNTS)
    condition, on_target = choose_conditions(rng, values, fractional)
    earliest_purchase = bisect.bisect_left(history.days, AS_OF - timedelta(days=5 * 365))
    latest_purchase = bisect.bisect_left(history.days, AS_OF - timedelta(days=365))

    accounts: list[tuple[str, ...]] = [ACCOUNTS_HEADER]
    holdings: list[tuple[str, ...]] = [HOLDINGS_HEADER]
    for i in range(N_ACCOUNTS):
        account, kind, model = f"ACC-{i + 1:06d}", condition.get(i, ""), str(account_models[i])
        drift, cash_share = drift_and_cash(rng, kind, i in on_target, model_targets(model)[2])
        cash_cents = round(float(values[i]) * cash_share * 100)
        first_day = int(rng.integers(earliest_purchase, latest_purchase + 1))
        invested = float(values[i]) - cash_cents / 100
        lots, most_drifted = model_lots(
            rng, history, model, invested, bool(fractional[i]), first_day, drift
        )
        lots += special_lots(rng, history, kind, first_day)
        if kind == "tiny":
            lots, cash_cents = [Lot("VTI", 4_512, 131, first_day)], 125
        total_cents = cash_cents + sum(
            round(lot.quantity_micro * history.price(lot.symbol, last) / 10_000)
            for lot in lots
            if lot.symbol != UNPRICED_SYMBOL
        )
        accounts.append(
            (
                account,
                "" if kind == "no_model" else model,
                money(cash_cents),
                str(types[i]),
                household_ids[i],
                "false" if kind == "cannot_trade" else "true",
                restriction(rng, kind, most_drifted),
                money(pending(rng, kind, total_cents)),
                "true" if kind == "liquidate" else "false",
            )
        )
        holdings += [
            (
                account,
                lot.symbol,
                quantity(lot.quantity_micro),
                money(lot.cost_cents),
                history.days[lot.day].isoformat(),
            )
            for lot in sorted(lots, key=lambda lot: (lot.symbol, lot.day))
        ]

    models: list[tuple[str, ...]] = [MODELS_HEADER]
    for name, rows in MODELS.items():
        models += [(name, sym, str(weight), band, "", "", "") for sym, weight, band in rows]
    prices: list[tuple[str, ...]] = [PRICES_HEADER]
    prices += [(sec.symbol, sec.price) for sec in sorted(SECURITIES, key=lambda s: s.symbol)]
    return {"models": models, "accounts": accounts, "holdings": holdings, "prices": prices}


def write_book(book: dict[str, list[tuple[str, ...]]], out: Path) -> None:
    """Write each table as `<name>.csv` in `out` with Unix line endings."""
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in book.items():
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, build the book from the fixed seed and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    write_book(build_book(np.random.default_rng(SEED)), args.out)


if __name__ == "__main__":
    main()
