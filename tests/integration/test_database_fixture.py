"""The database fixture gives each test an empty store of its own and leaves nothing behind."""

import sqlalchemy as sa


def test_each_test_gets_an_empty_database_of_its_own(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("CREATE TABLE probe (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT x FROM probe")).scalar_one() == 1
    finally:
        engine.dispose()
