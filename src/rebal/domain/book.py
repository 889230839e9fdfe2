"""A book as one set of records: the models' targets, the accounts, their holdings and the
prices, at one instant. It is what ``rebal db import`` brings into the store and what
``rebal db export`` reads back out of it; the four CSV tables are its file form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rebal.domain.account import Account, Holding, Price, Target
from rebal.domain.ids import ModelId


@dataclass(frozen=True, slots=True, kw_only=True)
class BookSnapshot:
    """Every model's targets (in book order, targets in model order), every open account, every
    holding (lots of one account in their order) and the current prices."""

    models: Mapping[ModelId, tuple[Target, ...]]
    accounts: tuple[Account, ...]
    holdings: tuple[Holding, ...]
    prices: tuple[Price, ...]
