"""Firms: the tenants of a store. Every stored record belongs to exactly one firm, so that one
database can hold the books of several advisers without any of them seeing another's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rebal.domain.ids import FirmId


@dataclass(frozen=True, slots=True, kw_only=True)
class Firm:
    """A tenant: its id (the key every record carries), a display name, when it was created."""

    id: FirmId
    name: str
    created_at: datetime


def check_firm(expected: FirmId, record: object) -> None:
    """Raise ``ValueError`` unless ``record`` (anything with a ``firm``) belongs to
    ``expected``: a unit of work of one firm never writes another's records."""
    found = getattr(record, "firm", expected)
    if found != expected:
        raise ValueError(f"{type(record).__name__} of firm {found!r} given to firm {expected!r}")
