"""Atomic output: the target holds the old content or the new, never a partial write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rebal.io import atomic
from rebal.io.atomic import write_bytes_atomic, write_text_atomic


def test_writes_a_new_file_and_replaces_an_old_one(tmp_path: Path) -> None:
    target = tmp_path / "trades.csv"
    write_text_atomic(target, "a,b\n1,2\n")
    assert target.read_text(encoding="utf-8") == "a,b\n1,2\n"
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["trades.csv"]


def test_text_is_utf8(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    write_text_atomic(target, "drift ±5 €")
    assert target.read_bytes() == "drift ±5 €".encode()


def test_unencodable_text_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "trades.csv"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "bad \udcff surrogate")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["trades.csv"]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failure_mid_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "trades.csv"
    target.write_text("old", encoding="utf-8")

    def fail(*args: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(atomic.os, failing, fail)
    with pytest.raises(OSError, match="disk on fire"):
        write_bytes_atomic(target, b"new content")
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["trades.csv"]


def test_existing_permissions_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "trades.csv"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_missing_directory_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "no" / "trades.csv", "x")
    assert os.listdir(tmp_path) == []
