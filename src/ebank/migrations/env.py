"""Alembic environment: runs migrations on an ebank engine (same pragmas as the app)."""

from alembic import context

import ebank.tables  # noqa: F401  (registers every table on the metadata)
from ebank.core.db import make_engine, metadata

config = context.config
engine = make_engine(config.attributes["url"])
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
