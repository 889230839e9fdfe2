"""Typed identifiers: an account id is not a symbol is not a model name, even though all are text.

``NewType`` costs nothing at run time and lets mypy refuse a symbol where an account is expected.
Symbols are normalised by :func:`symbol` (trimmed, upper case), the one rule every reader of a
file uses, so that ``bnd`` in one file and ``BND`` in another are the same security.
"""

from __future__ import annotations

from typing import NewType

FirmId = NewType("FirmId", str)
AccountId = NewType("AccountId", str)
HouseholdId = NewType("HouseholdId", str)
ModelId = NewType("ModelId", str)
Symbol = NewType("Symbol", str)
LotId = NewType("LotId", str)
RunId = NewType("RunId", str)
ClientOrderId = NewType("ClientOrderId", str)
BrokerOrderId = NewType("BrokerOrderId", str)
FillId = NewType("FillId", str)
ProposalId = NewType("ProposalId", str)
CashFlowId = NewType("CashFlowId", str)

#: The firm every record belongs to when none is named (a single-tenant installation).
DEFAULT_FIRM = FirmId("default")

#: The model row that names the cash weight instead of a security.
CASH = Symbol("CASH")


def symbol(text: str) -> Symbol:
    """A security's symbol as rebal keys it: surrounding space removed, upper case."""
    return Symbol(text.strip().upper())
