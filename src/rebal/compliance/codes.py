"""The stable codes of pre-trade compliance violations.

A code is public (reports, JSON, alerts key on it): a code is never renamed or reused, only
added. ``docs/compliance.md`` explains each with an example.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Why a run or an order must not be sent."""

    MARKET_CLOSED = "MARKET_CLOSED"
    ACCOUNT_CANNOT_TRADE = "ACCOUNT_CANNOT_TRADE"
    UNFUNDED = "UNFUNDED"
    INSUFFICIENT_BUYING_POWER = "INSUFFICIENT_BUYING_POWER"
    RESTRICTED_SECURITY = "RESTRICTED_SECURITY"
    POSITION_LIMIT = "POSITION_LIMIT"
    SHORT_SALE = "SHORT_SALE"
    STALE_PRICE = "STALE_PRICE"
    WASH_SALE = "WASH_SALE"
    PATTERN_DAY_TRADE = "PATTERN_DAY_TRADE"
    EXTENDED_HOURS_LIMIT_ONLY = "EXTENDED_HOURS_LIMIT_ONLY"
