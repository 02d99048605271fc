"""The migrations build exactly the schema the code's tables describe, and undo cleanly."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import ebank.tables  # noqa: F401  (every table on the metadata)
from ebank.core.db import metadata
from ebank.migrations import alembic_config, upgrade


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_the_migrations_form_one_line_of_history(db_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(db_url))
    assert len(script.get_heads()) == 1


def test_the_migrated_schema_matches_the_tables(engine: Engine) -> None:
    assert _differences(engine) == []


def test_downgrading_to_the_start_and_upgrading_again_gives_the_same_schema(
    db_url: str, engine: Engine
) -> None:
    command.downgrade(alembic_config(db_url), "base")
    upgrade(db_url)
    assert _differences(engine) == []
