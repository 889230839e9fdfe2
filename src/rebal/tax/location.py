"""Household asset location: where a household's target holdings go among its accounts.

`rebal propose --tax-aware --household` treats the accounts of one household on one model as a
single portfolio. This module decides, for such a household, the value of every security in
every account after rebalancing (pure numpy over the household's accounts × securities):

1. The household target of each security is its model weight × the household's investable value
   (every account's value after its cash flow, less the cash it keeps).
2. Taxable accounts sell nothing (no realised gain): each keeps its holdings and invests its
   spare cash in the securities still below their household target, tax-efficient ones first
   (tax-inefficient assets, such as bonds, are better held in tax-deferred accounts).
3. The tax-deferred accounts (IRA, then Roth) hold the rest, so every sale of an appreciated
   position happens in a tax-deferred account: tax-inefficient securities are placed first, in
   traditional IRAs before Roth accounts (a Roth's tax-free growth is best spent on equities).
   Each account stays fully invested: what it holds after equals its investable value.
4. When the taxable accounts already hold more of a security than the household target, the
   excess cannot be moved without selling in a taxable account; it is reported (`over`), and the
   rest of the household is scaled to fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebal.core.types import BoolArray, FloatArray


@dataclass(frozen=True)
class Location:
    """Value per account and security after rebalancing; `over` is the money per security the
    household stays above its target because taxable accounts hold it."""

    desired: FloatArray  # (A, S)
    over: FloatArray  # (S,)


def _pour(
    amount: float, gaps: FloatArray, order: list[BoolArray], weight: FloatArray
) -> FloatArray:
    """Split `amount` over positive `gaps`, group by group in `order` (pro rata to the gaps,
    none past its gap); what is left after every gap is closed goes pro rata to `weight`."""
    out = np.zeros_like(gaps)
    for group in order:
        open_gaps = np.where(group, np.maximum(gaps - out, 0.0), 0.0)
        need = open_gaps.sum()
        if amount <= 0 or need <= 0:
            continue
        share = min(amount, need)
        out += open_gaps * (share / need)
        amount -= share
    if amount > 0 and weight.sum() > 0:
        out += weight / weight.sum() * amount
    return out


def locate(
    investable: FloatArray,
    held: FloatArray,
    weight: FloatArray,
    taxable: BoolArray,
    roth: BoolArray,
    inefficient: BoolArray,
) -> Location:
    """Place a household's target holdings in its accounts (module docstring).

    Parameters
    ----------
    investable
        Per account (A,): value after the cash flow less the cash kept; what it holds after.
    held
        Value held per account and security (A, S).
    weight
        Household target weight per security (S,), summing to 1 (0 outside the model).
    taxable, roth
        Account kinds (A,); accounts neither taxable nor Roth are traditional IRAs.
    inefficient
        Tax-inefficient securities (S,), placed in tax-deferred accounts first.
    """
    target = weight * investable.sum()
    desired = np.zeros_like(held)
    taxable_rows = np.flatnonzero(taxable)
    desired[taxable_rows] = held[taxable_rows]
    efficient_first = [~inefficient, inefficient]
    for a in taxable_rows:
        spare = investable[a] - held[a].sum()
        gaps = target - desired[taxable_rows].sum(axis=0)
        desired[a] += _pour(spare, gaps, efficient_first, weight)
    residual = target - desired[taxable_rows].sum(axis=0)
    over = np.maximum(-residual, 0.0)
    residual = np.maximum(residual, 0.0)
    deferred = np.flatnonzero(~taxable)
    if residual.sum() > 0:
        residual *= investable[deferred].sum() / residual.sum()
    accounts = deferred[np.argsort(roth[deferred], kind="stable")]  # IRAs before Roths
    room = investable[accounts].copy()
    symbols = np.argsort(~inefficient, kind="stable")  # inefficient first
    for s in symbols:
        for j, a in enumerate(accounts):
            put = min(residual[s], room[j])
            if put <= 0:
                continue
            desired[a, s] += put
            residual[s] -= put
            room[j] -= put
    return Location(desired=desired, over=over)
