"""The audit trail: every change to a stored record, who made it, when, and why.

A unit of work is opened by an actor for a reason at an instant; every record it creates,
changes or removes appends one :class:`AuditEntry` with the record as it was (``before``) and as
it is (``after``), each as canonical JSON text (:func:`record_json`): the same bytes for the same
record on every backend, so the trail itself can be compared and searched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from functools import partial
from operator import attrgetter, methodcaller
from typing import Any, TypeVar

from rebal.domain.ids import DEFAULT_FIRM, FirmId

_K = TypeVar("_K")
_V = TypeVar("_V")


class AuditAction(StrEnum):
    """What happened to the record."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"

    @classmethod
    def of(cls, old: object, new: object) -> AuditAction:
        """The action that takes a record from ``old`` to ``new`` (``None`` or empty: none)."""
        if not old:
            return cls.CREATE
        return cls.DELETE if not new else cls.UPDATE


class Entity(StrEnum):
    """The kinds of stored record the trail speaks of; ``key`` names the record within its kind
    (an account id, ``model/version``, a client order id; ``""`` for the price list)."""

    FIRM = "firm"
    MODEL = "model"
    ACCOUNT = "account"
    HOLDINGS = "holdings"  # an account's holdings (positions and lots) as a whole
    PRICES = "prices"  # the current price list as a whole
    CASH_FLOW = "cash_flow"
    PROPOSAL = "proposal"
    RUN = "run"
    ORDER = "order"
    FILL = "fill"
    REALISED = "realised"  # what a sell fill realised on one lot (rebal.tax.realised)
    POLICY = "policy"  # an account's investment policy (rebal.domain.policy)
    SCHEDULE = "schedule"  # the scheduler's mark of an account (an instant request, a postponement)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One change: ``before`` is ``None`` for a creation, ``after`` for a removal."""

    at: datetime
    actor: str
    reason: str
    action: AuditAction
    entity: Entity
    key: str
    before: str | None
    after: str | None
    firm: FirmId = DEFAULT_FIRM


def record_json(value: object) -> str:
    """``value`` (a domain record, or a sequence or mapping of them) as canonical JSON: keys
    sorted, no spaces, decimals as exact text, instants in ISO 8601, sets sorted."""
    return json.dumps(
        value, default=_plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _plain(value: object) -> object:
    """What JSON cannot say itself, in terms it can (the encoder recurses into the result)."""
    kind = type(value)
    convert = _CONVERTERS.get(kind)
    if convert is None:
        convert = _CONVERTERS[kind] = _converter(kind)
    return convert(value)


#: :func:`_converter` of each type met so far.
_CONVERTERS: dict[type, Callable[[Any], object]] = {}


def _converter(kind: type) -> Callable[[Any], object]:
    """How :func:`_plain` says a value of ``kind``: found once per type, not tested per value."""
    if issubclass(kind, Decimal):
        return _decimal_text
    if issubclass(kind, Enum):
        return attrgetter("value")
    if issubclass(kind, datetime | date):
        return methodcaller("isoformat")
    if is_dataclass(kind):
        names = tuple(f.name for f in fields(kind))
        return lambda value: {name: getattr(value, name) for name in names}
    if issubclass(kind, Mapping):
        return dict
    if issubclass(kind, frozenset | set):
        return partial(sorted, key=str)
    raise TypeError(f"cannot record a {kind.__name__} in the audit trail")


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")


def changed_records(
    before: Mapping[_K, _V], after: Mapping[_K, _V]
) -> list[tuple[_K, _V | None, _V | None]]:
    """Each key whose record differs between ``before`` and ``after`` (``None`` where it is
    absent), keys of ``before`` first: what a repository replacing ``before`` by ``after``
    records in the audit trail."""
    keys = dict.fromkeys([*before, *after])
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
