"""The simulated broker's settings (``--broker-config FILE``, JSON or TOML), validated strictly.

Every key is known and typed: an unknown key, a wrong type (``false`` for a number, ``"3"`` for
an integer) or a value out of range is refused with a message naming the file and the key, so a
mistyped fault never silently turns into no fault. A missing key takes its default, and the
defaults are a well-behaved market: no latency, no slippage, no partial fills, no rejections, no
faults. ``docs/broker.md`` lists every key with an example.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rebal.adapters.config_file import ConfigFileError, read_config
from rebal.compliance.hours import AFTER_HOURS, PRE_MARKET

#: The broker calls a timeout or a disconnect can be injected into.
Operation = Literal[
    "submit", "cancel", "order", "orders", "fills", "accounts", "positions", "cash", "buying_power"
]
Probability = Field(default=0.0, ge=0.0, le=1.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PartialFills(_Strict):
    """With ``probability``, an order fills in 2 to ``max_parts`` parts, ``interval_seconds``
    apart (what is left at a day order's close expires)."""

    probability: float = Probability
    max_parts: int = Field(default=3, ge=2, le=100)
    interval_seconds: float = Field(default=60.0, ge=0.0)


class Rejections(_Strict):
    """Orders refused by the simulated exchange: every order in ``symbols``, and others with
    ``probability``; the order is rejected with ``reason``."""

    probability: float = Probability
    symbols: list[str] = Field(default_factory=list)
    reason: str = "rejected by the simulated exchange"


class ExtendedHours(_Strict):
    """How long before the open and after the close an extended-hours order may fill (the
    defaults are the pre-market from 04:00 and the after-hours to 20:00 New York time, as
    durations from the calendar's open and close, so an early close moves them too)."""

    before_open_minutes: int = Field(default=PRE_MARKET // timedelta(minutes=1), ge=0, le=720)
    after_close_minutes: int = Field(default=AFTER_HOURS // timedelta(minutes=1), ge=0, le=720)


class CallFault(_Strict):
    """A fault of a call, drawn per call among ``operations``, injected at most ``at_most``
    times (no bound when absent)."""

    probability: float = Probability
    operations: list[Operation] = Field(default_factory=lambda: list[Operation](["submit"]))
    at_most: int | None = Field(default=None, ge=0)


class Timeout(CallFault):
    """The broker does what was asked but answers after ``seconds`` (the clock moves on that
    much) and the caller gets no answer."""

    seconds: float = Field(default=30.0, ge=0.0)


class Disconnect(CallFault):
    """The connection drops: with probability ``reached`` after the request reached the broker
    (it is done), otherwise before (nothing is done); the caller cannot tell which."""

    reached: float = Field(default=0.5, ge=0.0, le=1.0)


class OrderFault(_Strict):
    """A fault of an order's reports, drawn per order (per fill for a duplicate report),
    injected at most ``at_most`` times."""

    probability: float = Probability
    at_most: int | None = Field(default=None, ge=0)


class Faults(_Strict):
    """The injectable faults (``docs/broker.md`` says what state each leaves)."""

    timeout: Timeout = Timeout()
    disconnect: Disconnect = Disconnect()
    ack_lost: OrderFault = OrderFault()
    duplicate_fill_report: OrderFault = OrderFault()
    out_of_order_fills: OrderFault = OrderFault()


class SimulatorSettings(_Strict):
    """How the simulated market behaves. The same ``seed`` and the same calls at the same
    simulated times give the same ledger."""

    seed: int = 0
    latency_seconds: float = Field(default=0.0, ge=0.0)
    latency_jitter_seconds: float = Field(default=0.0, ge=0.0)
    slippage_bps: float = Field(default=0.0, ge=0.0, lt=10_000.0)
    price_decimals: int = Field(default=4, ge=0, le=9)
    limit_recheck_seconds: float = Field(default=60.0, gt=0.0)
    partial_fills: PartialFills = PartialFills()
    rejections: Rejections = Rejections()
    extended_hours: ExtendedHours = ExtendedHours()
    faults: Faults = Faults()


class SettingsError(ValueError):
    """The settings file cannot be read or does not validate; the message names file and key."""


def _parse(path: Path) -> Any:
    try:
        return read_config(path, "the broker settings")
    except ConfigFileError as exc:
        raise SettingsError(str(exc)) from exc


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = SimulatorSettings
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return []
        if not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return list(model.model_fields)


def _problem(error: Any) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        known = ", ".join(_known_keys(loc[:-1]))
        return f"unknown key {key!r} (known here: {known})"
    return f"{key}: {error['msg']} (got {error['input']!r})"


def settings_from(data: Any, source: str = "settings") -> SimulatorSettings:
    """Validate ``data`` (what a settings file holds) into settings; every problem named by key."""
    try:
        return SimulatorSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise SettingsError(f"{source}: {problems}") from None


def load_settings(path: Path) -> SimulatorSettings:
    """The settings in ``path`` (``.json`` or ``.toml``); :class:`SettingsError` names the file,
    the line and column of a syntax error, and the key of every invalid value."""
    return settings_from(_parse(path), str(path))
