"""The simulated broker's settings file: JSON or TOML, every key known and typed, every problem
named by file and key (or line and column for a syntax error)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rebal.adapters.brokers.simulated import SettingsError, SimulatorSettings, load_settings

DOCS = Path(__file__).resolve().parents[4] / "docs" / "broker.md"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_empty_file_is_a_well_behaved_market(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "b.toml", "")) == SimulatorSettings()
    quiet = SimulatorSettings()
    assert quiet.latency_seconds == quiet.slippage_bps == quiet.partial_fills.probability == 0
    assert quiet.faults.timeout.probability == quiet.faults.disconnect.probability == 0


def test_json_and_toml_say_the_same(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        "b.toml",
        "seed = 3\nslippage_bps = 2.5\n"
        '[faults.timeout]\nprobability = 0.1\noperations = ["submit", "order"]\n',
    )
    data = {
        "seed": 3,
        "slippage_bps": 2.5,
        "faults": {"timeout": {"probability": 0.1, "operations": ["submit", "order"]}},
    }
    assert load_settings(toml) == load_settings(write(tmp_path, "b.json", json.dumps(data)))


def test_an_unknown_key_is_named_with_the_keys_known_there(tmp_path: Path) -> None:
    path = write(tmp_path, "b.toml", "[faults.timeout]\nprobabilty = 0.5\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: unknown key 'faults.timeout.probabilty'")
    assert "probability" in message and "seconds" in message


def test_a_wrong_type_is_refused_not_coerced(tmp_path: Path) -> None:
    path = write(tmp_path, "b.json", '{"latency_seconds": false, "seed": "3"}')
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    assert "latency_seconds: Input should be a valid number (got False)" in str(raised.value)
    assert "seed: Input should be a valid integer (got '3')" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"partial_fills": {"probability": 1.5}}', "partial_fills.probability"),
        (
            '{"faults": {"disconnect": {"operations": ["sumbit"]}}}',
            "faults.disconnect.operations.0",
        ),
        ('{"price_decimals": 12}', "price_decimals"),
    ],
)
def test_a_value_out_of_range_is_named_by_its_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(problem)):
        load_settings(write(tmp_path, "b.json", text))


def test_a_syntax_error_names_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "b.json", '{\n  "seed": 1,\n  "latency_seconds" 2\n}')
    with pytest.raises(SettingsError, match=re.escape(f"{path}:3:21: Expecting ':' delimiter")):
        load_settings(path)
    path = write(tmp_path, "b.toml", "seed = 1\nlatency_seconds = = 2\n")
    with pytest.raises(SettingsError, match=re.escape(f"{path}:2:19: ")):
        load_settings(path)


def test_only_json_and_toml_files_are_read(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"\.json or \.toml"):
        load_settings(write(tmp_path, "b.yaml", "seed: 1"))
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings(tmp_path / "missing.toml")


def test_the_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/broker.md shows an example settings file"
    settings = load_settings(write(tmp_path, "example.toml", blocks[0]))
    assert settings != SimulatorSettings()
