"""`python -m echo_stream.conversations migrate`: apply the migrations to `DATABASE_URL` now.

For deployments that set `DB_MIGRATE_ON_START=false` and migrate in a release step instead.
"""

from __future__ import annotations

import asyncio
import sys

from echo_stream.conversations.db import create_engine, database_url, migrate
from echo_stream.settings import Settings


async def _migrate() -> None:
    engine = create_engine(database_url(Settings()))
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    """Run the command named in `argv`; returns the exit status."""
    if argv != ["migrate"]:
        print("usage: python -m echo_stream.conversations migrate", file=sys.stderr)
        return 2
    asyncio.run(_migrate())
    print("conversation store migrated to the newest revision")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
