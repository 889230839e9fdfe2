"""JSON text with exact decimals: a ``Decimal`` is written as a JSON number whose text is the
decimal itself (``20.722181851``, ``1500.00``), never through a float; instants as ISO 8601 text
with their offset. For results that carry 9-decimal quantities and cents (the broker's view)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any


def exact_json(value: Any) -> str:
    """``value`` (mappings, sequences, decimals, instants, text, numbers, booleans, None) as
    JSON text."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a number JSON can hold")
        return format(value, "f")
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}: {exact_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(exact_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def exact_document(key: str, rows: Sequence[Any]) -> str:
    """``{key: rows}`` with one row per line, as the other JSON results are laid out."""
    body = ",\n ".join(exact_json(r) for r in rows)
    return f"{{{json.dumps(key)}: [" + (f"\n {body}\n" if rows else "") + "]}\n"
