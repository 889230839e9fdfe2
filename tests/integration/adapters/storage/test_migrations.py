"""The shipped migrations build, from an empty database, exactly the schema of the tables; they
are safe to run again; a database at another schema is refused with what to do; and they ship
in the wheel, so an installed rebal can create its store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.migrate import check_current, head, upgrade
from rebal.adapters.storage.tables import metadata
from rebal.ports.storage import SchemaNotCurrent

PROJECT = Path(__file__).resolve().parents[4]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def test_migrations_build_the_tables_from_empty_and_are_safe_to_repeat(
    engine: sa.Engine,
) -> None:
    first = upgrade(engine)
    assert (first.before, first.after, first.changed) == (None, head(), True)
    again = upgrade(engine)
    assert (again.before, again.after, again.changed) == (head(), head(), False)
    check_current(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        names = set(sa.inspect(connection).get_table_names())
    assert names == set(metadata.tables) | {"alembic_version"}


def test_sqlite_enforces_references_after_a_migration(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'rebal.db'}")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
                connection.execute(
                    sa.insert(metadata.tables["models"]).values(firm_id="nobody", id="m", ordinal=1)
                )
    finally:
        engine.dispose()


def test_a_database_without_the_schema_or_with_an_unknown_one_is_refused(
    engine: sa.Engine,
) -> None:
    with pytest.raises(SchemaNotCurrent, match="rebal db init"):
        check_current(engine)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaNotCurrent, match="newer rebal"):
        check_current(engine)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rebal built as a wheel (from a copy of the sources) and installed into a directory of
    its own."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "project"
    shutil.copytree(
        PROJECT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(root / "dist")],
        check=True,
        cwd=source,
    )
    [wheel] = (root / "dist").glob("rebal-*.whl")
    site = root / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    return site


def test_the_migrations_ship_in_the_wheel(installed: Path, database_url: str) -> None:
    script = (
        "import sys, rebal\n"
        "assert rebal.__file__.startswith(sys.argv[1]), rebal.__file__\n"
        "from rebal.adapters.storage.database import create_engine\n"
        "from rebal.adapters.storage.migrate import upgrade\n"
        "print(upgrade(create_engine(sys.argv[2])).after)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(installed), database_url],
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == head()
