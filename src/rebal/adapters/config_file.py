"""Reading a settings file (``.json`` or ``.toml``) into plain data, with errors that say where.

Every ``--…-config FILE`` option reads its file here and validates the data itself: a syntax
error names the file, the line and the column; a file of another kind, or one that cannot be
read, names the file.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

_TOML_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)")


class ConfigFileError(ValueError):
    """The file cannot be read or parsed; the message names it (and the place of the error)."""


def read_config(path: Path, what: str) -> Any:
    """The data in ``path`` (a ``.json`` or ``.toml`` file of ``what``, e.g. "the broker
    settings"); :class:`ConfigFileError` otherwise."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigFileError(f"{path}: {what} must be a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot be read: {exc}") from exc
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigFileError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_WHERE.search(str(exc))
        place = f"{path}:{where[1]}:{where[2]}" if where else str(path)
        raise ConfigFileError(f"{place}: {_TOML_WHERE.sub('', str(exc)).strip()}") from exc
